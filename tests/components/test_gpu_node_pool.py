"""GPU pools on managed node groups, in each stack's plan and in one-off stacks."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from components.accelerators import pool_hardware
from components.gpu_node_pool import GpuPoolSpec, PoolTaint, scale_from_zero_tags
from mlops_platform.engine import render_stack
from mlops_platform.project import PulumiProject
from mlops_platform.rendered import RecordedResource, RenderedStack
from tests.conftest import named

NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"


def node_group(rendered: RenderedStack, pool: str) -> RecordedResource:
    return named(rendered, NODE_GROUP, f"gpu-{pool}-node-group")


def template_of(rendered: RenderedStack, group: RecordedResource) -> RecordedResource:
    [template] = [
        t for t in rendered.of_type(TEMPLATE) if t.id == group.inputs["launchTemplate"]["id"]
    ]
    return template


def asg_tags(rendered: RenderedStack, pool: str) -> dict[str, str]:
    group = node_group(rendered, pool)
    asg = group.outputs["resources"][0]["autoscalingGroups"][0]["name"]
    tags = {}
    for tag in rendered.of_type("aws:autoscaling/tag:Tag"):
        if tag.name.startswith(f"gpu-{pool}-"):
            assert tag.inputs["autoscalingGroupName"] == asg
            assert tag.inputs["tag"]["propagateAtLaunch"] is False
            tags[tag.inputs["tag"]["key"]] = tag.inputs["tag"]["value"]
    return tags


@pytest.fixture
def prod(rendered_stacks: dict[str, RenderedStack]) -> RenderedStack:
    return rendered_stacks["prod"]


def test_training_pool_runs_the_nvidia_ami_tainted_and_labelled(prod: RenderedStack) -> None:
    group = node_group(prod, "training")
    assert group.inputs["amiType"] == "AL2023_x86_64_NVIDIA"
    assert group.inputs["instanceTypes"] == ["p5.48xlarge"]
    assert group.inputs["taints"][0] == {
        "key": "nvidia.com/gpu",
        "value": "true",
        "effect": "NO_SCHEDULE",
    }
    assert group.inputs["labels"] == {
        "mlops.platform/pool": "training",
        "mlops.platform/purpose": "training",
        "mlops.platform/accelerator": "nvidia",
    }
    assert group.inputs["scalingConfig"] == {"minSize": 0, "desiredSize": 0, "maxSize": 4}
    assert group.ignore_changes == ["scalingConfig.desiredSize"]


def test_training_pool_has_efa_in_one_zone_and_a_cluster_placement_group(
    prod: RenderedStack,
) -> None:
    group = node_group(prod, "training")
    [first_private] = [
        s for s in prod.of_type("aws:ec2/subnet:Subnet") if s.name == "network-private-az1"
    ]
    assert group.inputs["subnetIds"] == [first_private.id]
    template = template_of(prod, group)
    [interface] = template.inputs["networkInterfaces"]
    cluster = prod.of_type("aws:eks/cluster:Cluster")[0]
    assert interface["interfaceType"] == "efa"
    assert interface["securityGroups"] == [cluster.outputs["vpcConfig"]["clusterSecurityGroupId"]]
    placement = named(prod, "aws:ec2/placementGroup:PlacementGroup", "gpu-training-placement")
    assert placement.inputs["strategy"] == "cluster"
    assert template.inputs["placement"]["groupName"] == placement.outputs["name"]


def test_every_gpu_pool_keeps_the_secure_launch_template(rendered: RenderedStack) -> None:
    for group in rendered.of_type(NODE_GROUP):
        if not group.name.startswith("gpu-"):
            continue
        template = template_of(rendered, group)
        assert template.inputs["metadataOptions"]["httpTokens"] == "required"
        assert template.inputs["metadataOptions"]["httpPutResponseHopLimit"] == 1
        [root] = template.inputs["blockDeviceMappings"]
        assert root["ebs"]["encrypted"] == "true"
        assert root["ebs"]["volumeSize"] == 200


def test_pools_carry_the_autoscaler_node_template_so_they_scale_from_zero(
    prod: RenderedStack,
) -> None:
    prefix = "k8s.io/cluster-autoscaler/node-template"
    assert asg_tags(prod, "training") == {
        f"{prefix}/label/mlops.platform/accelerator": "nvidia",
        f"{prefix}/label/mlops.platform/pool": "training",
        f"{prefix}/label/mlops.platform/purpose": "training",
        f"{prefix}/taint/nvidia.com/gpu": "true:NoSchedule",
        f"{prefix}/resources/nvidia.com/gpu": "8",
    }


def test_pools_declare_their_ceiling_for_the_policy_pack(prod: RenderedStack) -> None:
    tags = node_group(prod, "training").inputs["tags"]
    assert (tags["mlops:accelerator-ceiling"], tags["mlops:accelerators-per-node"]) == ("32", "8")


def test_dev_inference_is_spot_and_time_sliced(rendered_stacks: dict[str, RenderedStack]) -> None:
    dev = rendered_stacks["dev"]
    group = node_group(dev, "inference")
    assert group.inputs["capacityType"] == "SPOT"
    assert group.inputs["labels"]["nvidia.com/device-plugin.config"] == "inference"
    tags = asg_tags(dev, "inference")
    assert (
        tags["k8s.io/cluster-autoscaler/node-template/label/nvidia.com/device-plugin.config"]
        == "inference"
    )


def test_cluster_autoscaler_may_resize_only_this_clusters_groups(prod: RenderedStack) -> None:
    policy = named(prod, "aws:iam/rolePolicy:RolePolicy", "cluster-autoscaler-role-inline")
    statements = {s["Sid"]: s for s in json.loads(policy.inputs["policy"])["Statement"]}
    assert statements["ScaleThisClustersGroups"]["Condition"] == {
        "StringEquals": {"aws:ResourceTag/k8s.io/cluster-autoscaler/mlops-platform-prod": "owned"}
    }
    release = named(prod, "kubernetes:helm.sh/v3:Release", "cluster-autoscaler-release")
    assert release.inputs["version"] == "9.43.2"
    assert release.inputs["values"]["autoDiscovery"] == {"clusterName": "mlops-platform-prod"}
    assert release.inputs["values"]["nodeSelector"] == {"mlops.platform/pool": "system"}
    role = named(prod, "aws:iam/role:Role", "cluster-autoscaler-role-role")
    condition = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]["Condition"][
        "StringEquals"
    ]
    assert condition["aws:RequestTag/kubernetes-service-account"] == "cluster-autoscaler"


GPU_STACK = """
config:
  aws:region: eu-west-1
  mlops-platform:platform:
    environment: dev
    eks: {{endpoint: {{publicAccessCidrs: ["203.0.113.0/24"]}}}}
    gpu:
      pools:
        {pools}
"""


def test_a_capacity_block_pool_launches_into_its_reservation(
    make_project: Callable[[str, str], PulumiProject],
) -> None:
    pools = (
        "block: {purpose: training, instanceTypes: [p5.48xlarge], maxNodes: 2, maxGpus: 16, "
        "capacity: {type: capacity-block, reservationId: cr-0123456789abcdef0}}"
    )
    rendered = render_stack(make_project("dev", GPU_STACK.format(pools=pools)), "dev")
    group = node_group(rendered, "block")
    assert group.inputs["capacityType"] == "CAPACITY_BLOCK"
    template = template_of(rendered, group)
    assert template.inputs["instanceMarketOptions"] == {"marketType": "capacity-block"}
    assert template.inputs["capacityReservationSpecification"] == {
        "capacityReservationTarget": {"capacityReservationId": "cr-0123456789abcdef0"}
    }


def test_a_neuron_pool_gets_the_neuron_ami_taint_and_device_plugin(
    make_project: Callable[[str, str], PulumiProject],
) -> None:
    pools = (
        "serve: {purpose: inference, instanceTypes: [inf2.xlarge, inf2.8xlarge], "
        "maxNodes: 2, maxGpus: 2}"
    )
    rendered = render_stack(make_project("dev", GPU_STACK.format(pools=pools)), "dev")
    group = node_group(rendered, "serve")
    assert group.inputs["amiType"] == "AL2023_x86_64_NEURON"
    assert group.inputs["taints"][0]["key"] == "aws.amazon.com/neuron"
    assert (
        asg_tags(rendered, "serve")[
            "k8s.io/cluster-autoscaler/node-template/resources/aws.amazon.com/neuron"
        ]
        == "1"
    )
    releases = {r.inputs["name"] for r in rendered.of_type("kubernetes:helm.sh/v3:Release")}
    assert "neuron-device-plugin" in releases
    assert "nvidia-device-plugin" not in releases


def test_scale_from_zero_promises_the_smallest_instance_types_gpus() -> None:
    spec = GpuPoolSpec(
        name="mixed",
        purpose="inference",
        instance_types=("g6.xlarge", "g6.12xlarge"),
        hardware=pool_hardware(["g6.xlarge", "g6.12xlarge"]),
        capacity="on-demand",
        min_nodes=0,
        desired_nodes=0,
        max_nodes=2,
        max_accelerators=8,
        root_volume_gib=200,
        root_volume_throughput=500,
        min_per_node=1,
        taints=(PoolTaint("team", "research", "NoExecute"),),
    )
    tags = scale_from_zero_tags(spec)
    assert tags["k8s.io/cluster-autoscaler/node-template/resources/nvidia.com/gpu"] == "1"
    assert tags["k8s.io/cluster-autoscaler/node-template/taint/team"] == "research:NoExecute"
