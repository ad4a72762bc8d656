"""Stack rules: resources that must be linked to each other through property dependencies."""

from __future__ import annotations

from typing import Any

import pytest

from mlops_guardrails.export import STACK_TYPE, resource_state, urn
from mlops_platform.policy_check import Finding, PolicyPackServer
from mlops_platform.rendered import RenderedStack
from tests.policies.cases import KEY_ARN, TAGS
from tests.policies.conftest import (
    check_rule,
    deployment_resources,
    key_without_event_rules,
    state,
)

REPOSITORY = "aws:ecr/repository:Repository"


def without(resources: list[dict[str, Any]], name_suffix: str) -> list[dict[str, Any]]:
    return [r for r in resources if not r["urn"].endswith(f"::{name_suffix}")]


@pytest.mark.parametrize(
    ("removed", "missing"),
    [
        ("artifacts-models-encryption", "default encryption"),
        ("artifacts-models-public-access-block", "public access block"),
        ("artifacts-models-versioning", "versioning"),
        ("artifacts-models-ownership", "ownership controls"),
        ("artifacts-models-policy", "a bucket policy"),
        ("artifacts-models-lifecycle", "lifecycle rules"),
        ("artifacts-models-access-logging", "access logging"),
    ],
)
def test_a_bucket_missing_a_guard_is_flagged_on_the_bucket(
    pack: PolicyPackServer, rendered_stacks: dict[str, RenderedStack], removed: str, missing: str
) -> None:
    resources = without(deployment_resources(rendered_stacks["prod"]), removed)
    [finding] = check_rule(pack, "s3-bucket-guards", resources)
    assert finding.message == f"bucket artifacts-models-bucket lacks {missing}"
    assert finding.urn.endswith("::artifacts-models-bucket")


def test_the_log_target_bucket_needs_no_logs_of_its_own(
    pack: PolicyPackServer, rendered_stacks: dict[str, RenderedStack]
) -> None:
    resources = deployment_resources(rendered_stacks["dev"])
    assert not [r for r in resources if r["urn"].endswith("::artifacts-access-logs-access-logging")]
    assert check_rule(pack, "s3-bucket-guards", resources) == []


def test_a_bucket_that_is_no_log_target_must_log(pack: PolicyPackServer) -> None:
    bucket = state("aws:s3/bucket:Bucket", {"tags": TAGS}, name="lonely")
    [finding] = check_rule(pack, "s3-bucket-guards", [bucket])
    assert finding.message.endswith("lifecycle rules, access logging")


def repository(name: str, **props: Any) -> dict[str, Any]:
    base = {
        "imageTagMutability": "IMMUTABLE",
        "encryptionConfigurations": [{"encryptionType": "KMS", "kmsKey": KEY_ARN}],
        "tags": TAGS,
    }
    return state(REPOSITORY, {**base, **props}, name=name)


def linked(
    resource_type: str, name: str, to: dict[str, Any], props: dict[str, Any]
) -> dict[str, Any]:
    resource = state(resource_type, props, name=name)
    resource["propertyDependencies"] = {"repository": [to["urn"]]}
    return resource


def test_a_repository_without_any_scanning_is_flagged(pack: PolicyPackServer) -> None:
    unscanned = repository("models")
    [finding] = check_rule(pack, "ecr-image-scanning", [unscanned])
    assert finding.urn == unscanned["urn"]


def test_scan_on_push_or_registry_scanning_satisfies_the_scanning_rule(
    pack: PolicyPackServer,
) -> None:
    on_push = repository("a", imageScanningConfiguration={"scanOnPush": True})
    assert check_rule(pack, "ecr-image-scanning", [on_push]) == []
    registry = state(
        "aws:ecr/registryScanningConfiguration:RegistryScanningConfiguration",
        {
            "scanType": "ENHANCED",
            "rules": [
                {
                    "scanFrequency": "CONTINUOUS_SCAN",
                    "repositoryFilters": [{"filter": "*", "filterType": "WILDCARD"}],
                }
            ],
        },
    )
    assert check_rule(pack, "ecr-image-scanning", [repository("b"), registry]) == []


def test_repositories_need_a_linked_lifecycle_policy(pack: PolicyPackServer) -> None:
    kept, bare = repository("kept"), repository("bare")
    policy = linked(
        "aws:ecr/lifecyclePolicy:LifecyclePolicy", "kept-lifecycle", kept, {"policy": "{}"}
    )
    [finding] = check_rule(pack, "ecr-lifecycle-policy", [kept, bare, policy])
    assert finding.urn == bare["urn"]


def test_a_vpc_without_flow_logs_is_flagged(
    pack: PolicyPackServer, rendered_stacks: dict[str, RenderedStack]
) -> None:
    resources = without(deployment_resources(rendered_stacks["prod"]), "network-flow-logs")
    resources = [r for r in resources if r["type"] != "aws:ec2/flowLog:FlowLog"]
    [finding] = check_rule(pack, "vpc-flow-logs", resources)
    assert finding.urn.endswith("::network-vpc")


def test_a_default_security_group_left_alone_or_with_rules_is_flagged(
    pack: PolicyPackServer, rendered_stacks: dict[str, RenderedStack]
) -> None:
    resources = deployment_resources(rendered_stacks["prod"])
    left_alone = without(resources, "network-default-security-group")
    [finding] = check_rule(pack, "vpc-default-security-group-closed", left_alone)
    assert "left with AWS's open rules" in finding.message
    group = next(r for r in resources if r["urn"].endswith("::network-default-security-group"))
    group["outputs"]["ingress"] = [{"protocol": "-1", "fromPort": 0, "toPort": 0, "self": True}]
    [finding] = check_rule(pack, "vpc-default-security-group-closed", resources)
    assert finding.urn == group["urn"]


def gpu_pool(name: str, *, ceiling: int, vendor: str = "nvidia") -> dict[str, Any]:
    """A Karpenter GPU pool limited to `ceiling` accelerators."""
    resource = "nvidia.com/gpu" if vendor == "nvidia" else "aws.amazon.com/neuron"
    return state(
        "kubernetes:karpenter.sh/v1:NodePool",
        {
            "spec": {
                "limits": {resource: str(ceiling)},
                "template": {"metadata": {"labels": {"mlops.platform/accelerator": vendor}}},
            }
        },
        name=name,
    )


def test_pools_together_may_not_pass_the_environments_gpu_cap(pack: PolicyPackServer) -> None:
    pools = [gpu_pool("train", ceiling=40), gpu_pool("serve", ceiling=30)]
    cap = {"all": "mandatory", "gpu-environment-ceiling": {"maxAccelerators": 64}}
    [finding] = check_rule(pack, "gpu-environment-ceiling", pools, cap)
    assert "ceilings add up to 70, above this environment's 64" in finding.message
    # Reported on the largest pool: the first place to look for room.
    assert finding.urn == pools[0]["urn"]
    assert check_rule(pack, "gpu-environment-ceiling", pools[:1], cap) == []


def test_the_gpu_cap_counts_each_accelerator_kind_on_its_own(pack: PolicyPackServer) -> None:
    pools = [gpu_pool("gpus", ceiling=40), gpu_pool("neuron", ceiling=40, vendor="neuron")]
    cap = {"all": "mandatory", "gpu-environment-ceiling": {"maxAccelerators": 64}}
    assert check_rule(pack, "gpu-environment-ceiling", pools, cap) == []


def test_a_budget_that_alerts_no_one_is_flagged_on_the_stack(pack: PolicyPackServer) -> None:
    stack = resource_state(
        urn=urn("prod", "mlops-platform", STACK_TYPE, "mlops-platform-prod"),
        type=STACK_TYPE,
        custom=False,
        inputs={},
        outputs={},
    )
    cluster = state("aws:eks/cluster:Cluster", {}, name="eks-cluster")
    silent = state("aws:budgets/budget:Budget", {"budgetType": "COST", "limitAmount": "10"})
    [finding] = check_rule(pack, "cost-budget-alerts", [stack, cluster, silent])
    assert "has no cost budget that alerts anyone" in finding.message
    assert finding.urn == stack["urn"]
    [missing] = check_rule(pack, "cost-budget-alerts", [stack, cluster])
    assert "has no cost budget:" in missing.message
    # A project deploying onto the environment (no cluster of its own) is in its budget.
    assert check_rule(pack, "cost-budget-alerts", [stack]) == []


CLUSTER_TYPE = "aws:eks/cluster:Cluster"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"


def private_cluster_with(*rules: dict[str, Any]) -> list[dict[str, Any]]:
    """A private-only cluster and ingress rules on its security group (linked as Pulumi links
    them: through the property that takes the cluster's security group id)."""
    cluster = state(
        CLUSTER_TYPE,
        {"vpcConfig": {"endpointPublicAccess": False, "endpointPrivateAccess": True}},
        name="eks-cluster",
    )
    linked = []
    for index, props in enumerate(rules):
        rule = state(INGRESS, {"ipProtocol": "tcp", **props}, name=f"api-{index}")
        rule["propertyDependencies"] = {"securityGroupId": [cluster["urn"]]}
        linked.append(rule)
    return [cluster, *linked]


def test_a_private_cluster_nothing_can_reach_is_flagged(pack: PolicyPackServer) -> None:
    resources = private_cluster_with({"fromPort": 22, "toPort": 22, "cidrIpv4": "10.0.0.0/8"})
    [finding] = check_rule(pack, "eks-private-api-reachable", resources)
    assert finding.urn == resources[0]["urn"]
    assert "nothing can reach its API" in finding.message


@pytest.mark.parametrize(
    "rule",
    [
        {"fromPort": 443, "toPort": 443, "referencedSecurityGroupId": "sg-runner"},
        {"fromPort": 443, "toPort": 443, "cidrIpv4": "10.100.0.0/16"},
        {"ipProtocol": "-1", "cidrIpv4": "10.100.0.0/16"},
    ],
    ids=["runner", "vpn-cidr", "all-traffic"],
)
def test_https_from_a_runner_or_a_network_is_a_path_to_the_api(
    pack: PolicyPackServer, rule: dict[str, Any]
) -> None:
    assert check_rule(pack, "eks-private-api-reachable", private_cluster_with(rule)) == []


TRACKING_SERVER = "aws:sagemaker/mlflowTrackingServer:MlflowTrackingServer"


def tracking_server(pack: PolicyPackServer, uri: str, *, from_bucket: bool) -> list[Finding]:
    bucket = state("aws:s3/bucket:Bucket", {"tags": TAGS}, name="experiments")
    server = state(TRACKING_SERVER, {"artifactStoreUri": uri, "tags": TAGS}, name="tracking")
    server["propertyDependencies"] = {"artifactStoreUri": [bucket["urn"]] if from_bucket else []}
    return check_rule(pack, "mlflow-artifacts-guarded", [bucket, server])


def test_a_tracking_server_keeps_its_artifacts_under_a_prefix_of_a_stack_bucket(
    pack: PolicyPackServer,
) -> None:
    assert tracking_server(pack, "s3://experiments-1a2b3c4/mlflow/", from_bucket=True) == []
    [outside] = tracking_server(pack, "s3://someone-elses/mlflow/", from_bucket=False)
    assert "that this stack does not create" in outside.message
    [root] = tracking_server(pack, "s3://experiments-1a2b3c4/", from_bucket=True)
    assert "not under a prefix of the bucket" in root.message


def test_a_queue_whose_key_shuts_out_its_sender_is_flagged(
    pack: PolicyPackServer, rendered_stacks: dict[str, RenderedStack]
) -> None:
    """EventBridge writes to the artifact event queues with its own permissions on their key:
    the key policy must say so, or every event is lost to the dead-letter queue."""
    resources = deployment_resources(rendered_stacks["dev"])
    assert check_rule(pack, "sqs-key-admits-senders", resources) == []
    found = check_rule(pack, "sqs-key-admits-senders", key_without_event_rules(resources))
    assert sorted(f.urn.rsplit("::", 1)[-1] for f in found) == [
        "artifact-events-datasets-dead-letter",
        "artifact-events-datasets-queue",
        "artifact-events-models-dead-letter",
        "artifact-events-models-queue",
    ]
    assert "admits events.amazonaws.com, but its key events-key does not let" in found[0].message
