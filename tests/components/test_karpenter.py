"""The Karpenter backend in the staging plan: controller, interruption handling, per-pool
NodePool and EC2NodeClass."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mlops_platform.rendered import RecordedResource, RenderedStack
from tests.conftest import named

CUSTOM = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"


@pytest.fixture
def staging(rendered_stacks: dict[str, RenderedStack]) -> RenderedStack:
    return rendered_stacks["staging"]


def by_name(rendered: RenderedStack, type_token: str) -> dict[str, RecordedResource]:
    return {r.inputs["metadata"]["name"]: r for r in rendered.of_type(type_token)}


def test_the_backend_switch_replaces_node_groups_with_karpenter(staging: RenderedStack) -> None:
    node_groups = [g.name for g in staging.of_type("aws:eks/nodeGroup:NodeGroup")]
    assert node_groups == ["eks-system-node-group"]
    assert sorted(by_name(staging, NODE_POOL)) == ["inference", "training"]
    assert staging.of_type("mlops:cluster_autoscaler:ClusterAutoscaler") == []


def test_node_classes_keep_the_node_hardening(staging: RenderedStack) -> None:
    ebs_key = named(staging, "aws:kms/key:Key", "ebs-key").outputs["arn"]
    node_role = named(staging, "aws:iam/role:Role", "eks-node-role").outputs["name"]
    for node_class in by_name(staging, CUSTOM).values():
        spec = node_class.inputs["spec"]
        assert spec["role"] == node_role
        assert spec["metadataOptions"]["httpTokens"] == "required"
        assert spec["metadataOptions"]["httpPutResponseHopLimit"] == 1
        [root] = spec["blockDeviceMappings"]
        assert root["ebs"]["encrypted"] is True
        assert root["ebs"]["kmsKeyID"] == ebs_key
        assert spec["subnetSelectorTerms"] == [
            {"tags": {"karpenter.sh/discovery": "mlops-platform-staging"}}
        ]


def test_node_pools_limit_gpus_taint_and_consolidate_by_purpose(staging: RenderedStack) -> None:
    pools = by_name(staging, NODE_POOL)
    training, inference = pools["training"].inputs["spec"], pools["inference"].inputs["spec"]
    assert training["limits"] == {"nvidia.com/gpu": "8"}
    assert inference["limits"] == {"nvidia.com/gpu": "4"}
    assert training["disruption"] == {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "1h"}
    assert inference["disruption"] == {
        "consolidationPolicy": "WhenEmpty",
        "consolidateAfter": "10m",
    }
    template = training["template"]["spec"]
    assert template["taints"][0] == {
        "key": "nvidia.com/gpu",
        "value": "true",
        "effect": "NoSchedule",
    }
    requirements = {r["key"]: r["values"] for r in template["requirements"]}
    assert requirements["node.kubernetes.io/instance-type"] == ["g6e.12xlarge"]
    assert requirements["karpenter.sh/capacity-type"] == ["on-demand"]
    assert len(requirements["topology.kubernetes.io/zone"]) == 3


def test_node_pools_wait_for_karpenters_crds(staging: RenderedStack) -> None:
    release = named(staging, "kubernetes:helm.sh/v3:Release", "karpenter-release")
    for resource in [*staging.of_type(NODE_POOL), *staging.of_type(CUSTOM)]:
        assert release.urn in resource.dependencies


def test_interruptions_reach_an_encrypted_tls_only_queue(staging: RenderedStack) -> None:
    queue = named(staging, "aws:sqs/queue:Queue", "karpenter-interruptions")
    assert queue.inputs["sqsManagedSseEnabled"] is True
    rules = staging.of_type("aws:cloudwatch/eventRule:EventRule")
    detail_types = sorted(json.loads(r.inputs["eventPattern"])["detail-type"][0] for r in rules)
    assert detail_types == [
        "AWS Health Event",
        "EC2 Instance Rebalance Recommendation",
        "EC2 Instance State-change Notification",
        "EC2 Spot Instance Interruption Warning",
    ]
    targets = staging.of_type("aws:cloudwatch/eventTarget:EventTarget")
    assert {t.inputs["arn"] for t in targets} == {queue.outputs["arn"]}
    policy = named(staging, "aws:sqs/queuePolicy:QueuePolicy", "karpenter-interruptions")
    denies = [s for s in json.loads(policy.inputs["policy"])["Statement"] if s["Effect"] == "Deny"]
    assert denies[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def statements(resource: RecordedResource, field: str) -> dict[str, Any]:
    return {s["Sid"]: s for s in json.loads(resource.inputs[field])["Statement"]}


def test_the_controller_may_pass_only_the_node_role(staging: RenderedStack) -> None:
    node_role = named(staging, "aws:iam/role:Role", "eks-node-role").outputs["arn"]
    policy = statements(
        named(staging, "aws:iam/rolePolicy:RolePolicy", "karpenter-controller-inline"), "policy"
    )
    assert policy["PassTheNodeRole"]["Resource"] == node_role
    assert policy["PassTheNodeRole"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}
    }
    assert policy["RetireOnlyThisClustersNodes"]["Condition"] == {
        "StringEquals": {"aws:ResourceTag/kubernetes.io/cluster/mlops-platform-staging": "owned"}
    }
    boundary = statements(
        named(staging, "aws:iam/policy:Policy", "eks-workload-boundary"), "policy"
    )
    assert boundary["PassTheNodeRole"]["Resource"] == node_role


def test_the_controller_role_trusts_exactly_its_service_account(staging: RenderedStack) -> None:
    role = named(staging, "aws:iam/role:Role", "karpenter-controller-role")
    condition = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]["Condition"][
        "StringEquals"
    ]
    assert condition["aws:RequestTag/kubernetes-namespace"] == "kube-system"
    assert condition["aws:RequestTag/kubernetes-service-account"] == "karpenter"
    release = named(staging, "kubernetes:helm.sh/v3:Release", "karpenter-release")
    assert release.inputs["chart"] == "oci://public.ecr.aws/karpenter/karpenter"
    assert release.inputs["version"] == "1.12.1"
    assert (
        release.inputs["values"]["settings"]["interruptionQueue"]
        == named(staging, "aws:sqs/queue:Queue", "karpenter-interruptions").outputs["name"]
    )
