"""Stack rules: resources that must be linked to each other through property dependencies."""

from __future__ import annotations

from typing import Any

import pytest

from mlops_guardrails.export import STACK_TYPE, resource_state, urn
from mlops_platform.policy_check import PolicyPackServer
from mlops_platform.rendered import RenderedStack
from tests.policies.cases import KEY_ARN, TAGS
from tests.policies.conftest import check, deployment_resources, of_rule, state

REPOSITORY = "aws:ecr/repository:Repository"


def without(resources: list[dict[str, Any]], name_suffix: str) -> list[dict[str, Any]]:
    return [r for r in resources if not r["urn"].endswith(f"::{name_suffix}")]


def test_every_stack_passes_the_bucket_guards(
    pack: PolicyPackServer, rendered: RenderedStack
) -> None:
    assert of_rule(check(pack, deployment_resources(rendered)), "s3-bucket-guards") == []


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
    [finding] = of_rule(check(pack, resources), "s3-bucket-guards")
    assert finding.message == f"bucket artifacts-models-bucket lacks {missing}"
    assert finding.urn.endswith("::artifacts-models-bucket")


def test_the_log_target_bucket_needs_no_logs_of_its_own(
    pack: PolicyPackServer, rendered_stacks: dict[str, RenderedStack]
) -> None:
    resources = deployment_resources(rendered_stacks["dev"])
    assert not [r for r in resources if r["urn"].endswith("::artifacts-access-logs-access-logging")]
    assert of_rule(check(pack, resources), "s3-bucket-guards") == []


def test_a_bucket_that_is_no_log_target_must_log(pack: PolicyPackServer) -> None:
    bucket = state("aws:s3/bucket:Bucket", {"tags": TAGS}, name="lonely")
    [finding] = of_rule(check(pack, [bucket]), "s3-bucket-guards")
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
    [finding] = of_rule(check(pack, [unscanned]), "ecr-image-scanning")
    assert finding.urn == unscanned["urn"]


def test_scan_on_push_or_registry_scanning_satisfies_the_scanning_rule(
    pack: PolicyPackServer,
) -> None:
    on_push = repository("a", imageScanningConfiguration={"scanOnPush": True})
    assert of_rule(check(pack, [on_push]), "ecr-image-scanning") == []
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
    assert of_rule(check(pack, [repository("b"), registry]), "ecr-image-scanning") == []


def test_repositories_need_a_linked_lifecycle_policy(pack: PolicyPackServer) -> None:
    kept, bare = repository("kept"), repository("bare")
    policy = linked(
        "aws:ecr/lifecyclePolicy:LifecyclePolicy", "kept-lifecycle", kept, {"policy": "{}"}
    )
    [finding] = of_rule(check(pack, [kept, bare, policy]), "ecr-lifecycle-policy")
    assert finding.urn == bare["urn"]


def test_every_vpc_in_the_plans_has_flow_logs_and_a_closed_default_group(
    pack: PolicyPackServer, rendered: RenderedStack
) -> None:
    findings = check(pack, deployment_resources(rendered))
    assert of_rule(findings, "vpc-flow-logs") == []
    assert of_rule(findings, "vpc-default-security-group-closed") == []


def test_a_vpc_without_flow_logs_is_flagged(
    pack: PolicyPackServer, rendered_stacks: dict[str, RenderedStack]
) -> None:
    resources = without(deployment_resources(rendered_stacks["prod"]), "network-flow-logs")
    resources = [r for r in resources if r["type"] != "aws:ec2/flowLog:FlowLog"]
    [finding] = of_rule(check(pack, resources), "vpc-flow-logs")
    assert finding.urn.endswith("::network-vpc")


def test_a_default_security_group_left_alone_or_with_rules_is_flagged(
    pack: PolicyPackServer, rendered_stacks: dict[str, RenderedStack]
) -> None:
    resources = deployment_resources(rendered_stacks["prod"])
    left_alone = without(resources, "network-default-security-group")
    [finding] = of_rule(check(pack, left_alone), "vpc-default-security-group-closed")
    assert "left with AWS's open rules" in finding.message
    group = next(r for r in resources if r["urn"].endswith("::network-default-security-group"))
    group["outputs"]["ingress"] = [{"protocol": "-1", "fromPort": 0, "toPort": 0, "self": True}]
    [finding] = of_rule(check(pack, resources), "vpc-default-security-group-closed")
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
    [finding] = of_rule(check(pack, pools, cap), "gpu-environment-ceiling")
    assert "ceilings add up to 70, above this environment's 64" in finding.message
    # Reported on the largest pool: the first place to look for room.
    assert finding.urn == pools[0]["urn"]
    assert of_rule(check(pack, pools[:1], cap), "gpu-environment-ceiling") == []


def test_the_gpu_cap_counts_each_accelerator_kind_on_its_own(pack: PolicyPackServer) -> None:
    pools = [gpu_pool("gpus", ceiling=40), gpu_pool("neuron", ceiling=40, vendor="neuron")]
    cap = {"all": "mandatory", "gpu-environment-ceiling": {"maxAccelerators": 64}}
    assert of_rule(check(pack, pools, cap), "gpu-environment-ceiling") == []


def test_every_stack_stays_within_its_gpu_cap_and_has_an_alerting_budget(
    pack: PolicyPackServer, rendered: RenderedStack
) -> None:
    findings = check(pack, deployment_resources(rendered))
    assert of_rule(findings, "gpu-environment-ceiling") == []
    assert of_rule(findings, "cost-budget-alerts") == []


def test_a_budget_that_alerts_no_one_is_flagged_on_the_stack(pack: PolicyPackServer) -> None:
    stack = resource_state(
        urn=urn("prod", "mlops-platform", STACK_TYPE, "mlops-platform-prod"),
        type=STACK_TYPE,
        custom=False,
        inputs={},
        outputs={},
    )
    silent = state("aws:budgets/budget:Budget", {"budgetType": "COST", "limitAmount": "10"})
    [finding] = of_rule(check(pack, [stack, silent]), "cost-budget-alerts")
    assert "has no cost budget that alerts anyone" in finding.message
    assert finding.urn == stack["urn"]
    [missing] = of_rule(check(pack, [stack]), "cost-budget-alerts")
    assert "has no cost budget:" in missing.message
