"""GPU pools on managed node groups: the GpuNodePool component in each of its modes, the cluster
autoscaler that scales them, the spec a pool's config becomes, and where the program puts them."""

from __future__ import annotations

import json
from operator import attrgetter
from typing import Any

import pytest

from components.cluster_autoscaler import ClusterAutoscaler, ClusterAutoscalerArgs
from components.gpu_node_pool import GpuNodePool, GpuNodePoolArgs, GpuPoolSpec
from components.node_pool import AmiRelease, RootVolume
from infra.program import pool_spec
from mlops_guardrails import charts
from mlops_guardrails.vocabulary import Taint
from mlops_platform.rendered import RecordedResource, RenderedStack
from tests.components.gpu_fixtures import (
    AMI_RELEASE,
    CLUSTER_NAME,
    EBS_KEY_ARN,
    NODE_ROLE_ARN,
    RESERVATION_ID,
    TAGS,
    gpu_platform,
    gpu_spec,
)
from tests.configs import profile
from tests.conftest import named, run_component

NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
NODE_TEMPLATE = "k8s.io/cluster-autoscaler/node-template"
SUBNETS = ["subnet-0a", "subnet-0b", "subnet-0c"]
CLUSTER_SECURITY_GROUP = "sg-0cluster"
OTHER_RESERVATION_ID = "cr-0fedcba9876543210"
TEAM_TAINT = Taint("team", "research", "NoExecute")

# One pool per mode: NVIDIA x86 with EFA, NVIDIA ARM, Neuron, time-sliced spot with extra labels
# and taints, a capacity block and an On-Demand Capacity Reservation.
POOLS: dict[str, GpuPoolSpec] = {
    spec.name: spec
    for spec in (
        gpu_spec(
            "train",
            max_nodes=4,
            max_accelerators=32,
            efa=True,
            root_volume=RootVolume(size_gib=400, throughput=1000, iops=4000),
        ),
        gpu_spec("arm", ("g5g.xlarge", "g5g.16xlarge"), purpose="inference"),
        gpu_spec("serve", ("inf2.xlarge", "inf2.8xlarge"), purpose="inference"),
        gpu_spec(
            "chat",
            ("g6.xlarge", "g6.12xlarge"),
            purpose="inference",
            capacity="spot",
            min_nodes=1,
            desired_nodes=1,
            max_accelerators=8,
            time_slicing_replicas=4,
            labels={"team": "research"},
            taints=(TEAM_TAINT,),
        ),
        gpu_spec("block", capacity="capacity-block", reservation_id=RESERVATION_ID),
        gpu_spec(
            "reserved",
            ("g6e.12xlarge",),
            capacity="reservation",
            reservation_id=OTHER_RESERVATION_ID,
        ),
    )
}


def pool_args(spec: GpuPoolSpec) -> GpuNodePoolArgs:
    return GpuNodePoolArgs(
        spec=spec,
        cluster_name=CLUSTER_NAME,
        node_role_arn=NODE_ROLE_ARN,
        # EFA nodes share one placement group, so the program gives them one zone's subnet.
        subnet_ids=SUBNETS[:1] if spec.efa else SUBNETS,
        cluster_security_group_id=CLUSTER_SECURITY_GROUP,
        ebs_kms_key_arn=EBS_KEY_ARN,
        tags=TAGS,
    )


@pytest.fixture(scope="module")
def pools() -> RenderedStack:
    return run_component(
        lambda: [GpuNodePool(f"gpu-{name}", pool_args(spec)) for name, spec in POOLS.items()]
    )


def node_group(rendered: RenderedStack, pool: str) -> RecordedResource:
    return named(rendered, NODE_GROUP, f"gpu-{pool}-node-group")


def template_of(rendered: RenderedStack, group: RecordedResource) -> RecordedResource:
    [template] = [
        t for t in rendered.of_type(TEMPLATE) if t.id == group.inputs["launchTemplate"]["id"]
    ]
    return template


def asg_tags(rendered: RenderedStack, pool: str) -> dict[str, str]:
    """The pool's Auto Scaling group tags, each checked to be on its group and not on nodes."""
    asg = node_group(rendered, pool).outputs["resources"][0]["autoscalingGroups"][0]["name"]
    tags = {}
    for tag in rendered.of_type("aws:autoscaling/tag:Tag"):
        if tag.name.startswith(f"gpu-{pool}-"):
            assert tag.inputs["autoscalingGroupName"] == asg
            assert tag.inputs["tag"]["propagateAtLaunch"] is False
            tags[tag.inputs["tag"]["key"]] = tag.inputs["tag"]["value"]
    return tags


@pytest.mark.parametrize(
    ("pool", "ami", "taint_key"),
    [
        ("train", "AL2023_x86_64_NVIDIA", "nvidia.com/gpu"),
        ("arm", "AL2023_ARM_64_NVIDIA", "nvidia.com/gpu"),
        ("serve", "AL2023_x86_64_NEURON", "aws.amazon.com/neuron"),
    ],
)
def test_a_pool_runs_its_hardwares_ami_behind_the_accelerator_taint(
    pools: RenderedStack, pool: str, ami: str, taint_key: str
) -> None:
    group = node_group(pools, pool)
    assert group.inputs["amiType"] == ami
    assert group.inputs["instanceTypes"] == list(POOLS[pool].instance_types)
    assert group.inputs["taints"][0] == {"key": taint_key, "value": "true", "effect": "NO_SCHEDULE"}


@pytest.mark.parametrize(
    ("pool", "labels"),
    [
        (
            # An EFA pool's nodes are what the EFA device plugin selects.
            "train",
            {
                "mlops.platform/pool": "train",
                "mlops.platform/purpose": "training",
                "mlops.platform/accelerator": "nvidia",
                "mlops.platform/efa": "true",
                "k8s.amazonaws.com/accelerator": "nvidia-h100",
            },
        ),
        (
            "serve",
            {
                "mlops.platform/pool": "serve",
                "mlops.platform/purpose": "inference",
                "mlops.platform/accelerator": "neuron",
            },
        ),
        (
            # Time-sliced nodes name their device plugin config, which is named after the pool.
            "chat",
            {
                "team": "research",
                "mlops.platform/pool": "chat",
                "mlops.platform/purpose": "inference",
                "mlops.platform/accelerator": "nvidia",
                "nvidia.com/device-plugin.config": "chat",
                "k8s.amazonaws.com/accelerator": "nvidia-l4",
            },
        ),
    ],
)
def test_nodes_are_labelled_with_their_pool_purpose_and_accelerator(
    pools: RenderedStack, pool: str, labels: dict[str, str]
) -> None:
    assert node_group(pools, pool).inputs["labels"] == labels


def test_extra_taints_follow_the_accelerator_taint_in_eks_spelling(pools: RenderedStack) -> None:
    assert node_group(pools, "chat").inputs["taints"] == [
        {"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"},
        {"key": "team", "value": "research", "effect": "NO_EXECUTE"},
    ]


@pytest.mark.parametrize(("pool", "sizes"), [("train", (0, 0, 4)), ("chat", (1, 1, 2))])
def test_the_spec_sizes_the_pool_and_the_autoscaler_owns_its_running_size(
    pools: RenderedStack, pool: str, sizes: tuple[int, int, int]
) -> None:
    group = node_group(pools, pool)
    minimum, desired, maximum = sizes
    assert group.inputs["scalingConfig"] == {
        "minSize": minimum,
        "desiredSize": desired,
        "maxSize": maximum,
    }
    assert group.ignore_changes == ["scalingConfig.desiredSize"]


@pytest.mark.parametrize(
    ("pool", "capacity_type", "market", "reservation"),
    [
        ("train", "ON_DEMAND", None, None),
        ("chat", "SPOT", None, None),
        ("block", "CAPACITY_BLOCK", {"marketType": "capacity-block"}, RESERVATION_ID),
        ("reserved", "ON_DEMAND", None, OTHER_RESERVATION_ID),
    ],
)
def test_the_capacity_type_decides_the_market_and_the_reservation_launched_into(
    pools: RenderedStack,
    pool: str,
    capacity_type: str,
    market: dict[str, str] | None,
    reservation: str | None,
) -> None:
    group = node_group(pools, pool)
    assert group.inputs["capacityType"] == capacity_type
    template = template_of(pools, group)
    assert template.inputs.get("instanceMarketOptions") == market
    assert template.inputs.get("capacityReservationSpecification") == (
        {"capacityReservationTarget": {"capacityReservationId": reservation}}
        if reservation
        else None
    )


def test_an_efa_pool_gets_efa_interfaces_in_a_cluster_placement_group(
    pools: RenderedStack,
) -> None:
    group = node_group(pools, "train")
    assert group.inputs["subnetIds"] == SUBNETS[:1]
    template = template_of(pools, group)
    interfaces = template.inputs["networkInterfaces"]
    # p5.48xlarge: 32 network cards, an EFA interface on each.
    assert [i["networkCardIndex"] for i in interfaces] == list(range(32))
    # EKS takes the node's addresses from the primary, so every one carries the cluster's group.
    assert {tuple(i["securityGroups"]) for i in interfaces} == {(CLUSTER_SECURITY_GROUP,)}
    placement = named(pools, "aws:ec2/placementGroup:PlacementGroup", "gpu-train-placement")
    assert placement.inputs["strategy"] == "cluster"
    assert template.inputs["placement"]["groupName"] == placement.outputs["name"]


def test_pools_without_efa_keep_the_default_network_and_no_placement_group(
    pools: RenderedStack,
) -> None:
    [placement] = pools.of_type("aws:ec2/placementGroup:PlacementGroup")
    assert placement.parent == named(pools, GpuNodePool.TYPE, "gpu-train").urn
    for pool in sorted(POOLS.keys() - {"train"}):
        group = node_group(pools, pool)
        assert group.inputs["subnetIds"] == SUBNETS
        template = template_of(pools, group)
        assert "networkInterfaces" not in template.inputs
        assert "placement" not in template.inputs


def test_every_pool_keeps_the_secure_launch_template_sized_by_its_spec(
    pools: RenderedStack,
) -> None:
    for pool, spec in POOLS.items():
        template = template_of(pools, node_group(pools, pool))
        assert template.inputs["metadataOptions"]["httpTokens"] == "required"
        assert template.inputs["metadataOptions"]["httpPutResponseHopLimit"] == 1
        [root] = template.inputs["blockDeviceMappings"]
        assert root["ebs"]["encrypted"] == "true"
        assert root["ebs"]["kmsKeyId"] == EBS_KEY_ARN
        assert root["ebs"]["volumeSize"] == spec.root_volume.size_gib
        assert root["ebs"]["throughput"] == spec.root_volume.throughput
        assert root["ebs"].get("iops") == spec.root_volume.provisioned_iops


@pytest.mark.parametrize(
    ("pool", "tags"),
    [
        (
            "train",
            {
                f"{NODE_TEMPLATE}/label/k8s.amazonaws.com/accelerator": "nvidia-h100",
                f"{NODE_TEMPLATE}/label/mlops.platform/accelerator": "nvidia",
                f"{NODE_TEMPLATE}/label/mlops.platform/efa": "true",
                f"{NODE_TEMPLATE}/label/mlops.platform/pool": "train",
                f"{NODE_TEMPLATE}/label/mlops.platform/purpose": "training",
                f"{NODE_TEMPLATE}/taint/nvidia.com/gpu": "true:NoSchedule",
                f"{NODE_TEMPLATE}/resources/nvidia.com/gpu": "8",
                # An EFA job requests its interfaces: an empty pool must promise all 32.
                f"{NODE_TEMPLATE}/resources/vpc.amazonaws.com/efa": "32",
            },
        ),
        (
            "serve",
            {
                f"{NODE_TEMPLATE}/label/mlops.platform/accelerator": "neuron",
                f"{NODE_TEMPLATE}/label/mlops.platform/pool": "serve",
                f"{NODE_TEMPLATE}/label/mlops.platform/purpose": "inference",
                f"{NODE_TEMPLATE}/taint/aws.amazon.com/neuron": "true:NoSchedule",
                f"{NODE_TEMPLATE}/resources/aws.amazon.com/neuron": "1",
            },
        ),
        (
            # The smallest instance type's GPUs (g6.xlarge: 1, not g6.12xlarge: 4), so a
            # scale-up never promises more than it gets, as the node advertises them: four
            # time-sliced shares of the one GPU. Extra labels and taints carry over.
            "chat",
            {
                f"{NODE_TEMPLATE}/label/k8s.amazonaws.com/accelerator": "nvidia-l4",
                f"{NODE_TEMPLATE}/label/mlops.platform/accelerator": "nvidia",
                f"{NODE_TEMPLATE}/label/mlops.platform/pool": "chat",
                f"{NODE_TEMPLATE}/label/mlops.platform/purpose": "inference",
                f"{NODE_TEMPLATE}/label/nvidia.com/device-plugin.config": "chat",
                f"{NODE_TEMPLATE}/label/team": "research",
                f"{NODE_TEMPLATE}/taint/nvidia.com/gpu": "true:NoSchedule",
                f"{NODE_TEMPLATE}/taint/team": "research:NoExecute",
                f"{NODE_TEMPLATE}/resources/nvidia.com/gpu": "4",
            },
        ),
    ],
)
def test_pools_carry_the_autoscaler_node_template_so_they_scale_from_zero(
    pools: RenderedStack, pool: str, tags: dict[str, str]
) -> None:
    template = {k: v for k, v in asg_tags(pools, pool).items() if "autoscaling-options" not in k}
    assert template == tags


@pytest.mark.parametrize(
    ("pool", "options"),
    [
        (
            "train",
            {
                "scaledownutilizationthreshold": "0",
                "scaledowngpuutilizationthreshold": "0",
                "ignoredaemonsetsutilization": "true",
            },
        ),
        ("chat", {}),
    ],
)
def test_the_autoscaler_removes_a_training_node_only_once_no_job_runs_there(
    pools: RenderedStack, pool: str, options: dict[str, str]
) -> None:
    """cluster-autoscaler 1.35 removes a node at or below its utilization threshold (a GPU
    node's is its GPU requests alone; default 0.5), evicting Job pods with it. A threshold of 0,
    DaemonSets ignored, leaves a training node until nothing else asks anything of it; the
    AWS provider reads the thresholds from these ASG tags (cloudprovider/aws aws_manager.go)."""
    prefix = f"{NODE_TEMPLATE}/autoscaling-options/"
    found = {
        k.removeprefix(prefix): v for k, v in asg_tags(pools, pool).items() if k.startswith(prefix)
    }
    assert found == options


@pytest.mark.parametrize(("pool", "ceiling", "per_node"), [("train", 32, 8), ("chat", 8, 4)])
def test_pools_declare_their_ceiling_for_the_policy_pack(
    pools: RenderedStack, pool: str, ceiling: int, per_node: int
) -> None:
    tags = node_group(pools, pool).inputs["tags"]
    assert (tags["mlops:accelerator-ceiling"], tags["mlops:accelerators-per-node"]) == (
        str(ceiling),
        str(per_node),
    )


def test_the_cluster_autoscaler_may_resize_only_its_clusters_groups() -> None:
    rendered = run_component(
        lambda: ClusterAutoscaler(
            "cluster-autoscaler",
            ClusterAutoscalerArgs(
                cluster_name=CLUSTER_NAME,
                cluster_arn=f"arn:aws:eks:eu-west-1:123456789012:cluster/{CLUSTER_NAME}",
                permissions_boundary_arn="arn:aws:iam::123456789012:policy/boundary",
                chart=charts.CLUSTER_AUTOSCALER,
                kubernetes_version="1.34",
                node_selector={"mlops.platform/pool": "system"},
                install_after=(),
                tags=TAGS,
            ),
        )
    )
    policy = named(rendered, "aws:iam/rolePolicy:RolePolicy", "cluster-autoscaler-role-inline")
    statements = {s["Sid"]: s for s in json.loads(policy.inputs["policy"])["Statement"]}
    assert statements["ScaleThisClustersGroups"]["Condition"] == {
        "StringEquals": {f"aws:ResourceTag/k8s.io/cluster-autoscaler/{CLUSTER_NAME}": "owned"}
    }
    release = named(rendered, "kubernetes:helm.sh/v3:Release", "cluster-autoscaler-release")
    assert release.inputs["version"] == charts.CLUSTER_AUTOSCALER.version
    # Built per Kubernetes minor (its README, 'Releases'): the newest 1.34 release on 1.34.
    assert release.inputs["values"]["image"] == {"tag": "v1.34.5"}
    assert release.inputs["values"]["autoDiscovery"] == {"clusterName": CLUSTER_NAME}
    assert release.inputs["values"]["nodeSelector"] == {"mlops.platform/pool": "system"}
    role = named(rendered, "aws:iam/role:Role", "cluster-autoscaler-role-role")
    condition = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]["Condition"][
        "StringEquals"
    ]
    assert condition["aws:RequestTag/kubernetes-service-account"] == "cluster-autoscaler"


POOL_CONFIG: dict[str, Any] = {
    "purpose": "training",
    "instanceTypes": ["p5.48xlarge"],
    "maxNodes": 2,
    "maxGpus": 16,
}


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (
            {},
            {
                "capacity": "on-demand",
                "reservation_id": None,
                "min_nodes": 0,
                "desired_nodes": 0,
                "max_nodes": 2,
                "max_accelerators": 16,
                "root_volume": RootVolume(size_gib=200, throughput=500),
                "efa": False,
                "efa_interfaces": 0,
                "time_slicing_replicas": None,
                "labels": {},
                "taints": (),
                "ami_release": AMI_RELEASE,
            },
        ),
        (
            {"capacity": {"type": "capacity-block", "reservationId": RESERVATION_ID}, "zone": 1},
            {"capacity": "capacity-block", "reservation_id": RESERVATION_ID},
        ),
        ({"efa": True, "zone": 1}, {"efa": True, "efa_interfaces": 32}),
        ({"amiRelease": "1.35.5-20260601"}, {"ami_release": AmiRelease("1.35.5-20260601")}),
        (
            {"labels": {"team": "research"}, "taints": [{"key": "team", "effect": "NoExecute"}]},
            {"labels": {"team": "research"}, "taints": (Taint("team", "true", "NoExecute"),)},
        ),
        (
            {"instanceTypes": ["g6.xlarge", "g6.12xlarge"], "timeSlicingReplicas": 4},
            {"time_slicing_replicas": 4, "min_per_node": 1, "hardware.max_per_node": 4},
        ),
        (
            {"instanceTypes": ["inf2.xlarge", "inf2.24xlarge"], "maxGpus": 12},
            {
                "hardware.ami_type": "AL2023_x86_64_NEURON",
                "hardware.resource_name": "aws.amazon.com/neuron",
                "min_per_node": 1,
                "hardware.max_per_node": 6,
            },
        ),
    ],
    ids=[
        "defaults",
        "capacity-block",
        "efa",
        "held-back-ami",
        "labels-and-taints",
        "time-sliced",
        "neuron",
    ],
)
def test_a_pool_config_becomes_the_spec_both_backends_build_from(
    config: dict[str, Any], expected: dict[str, object]
) -> None:
    pools = profile("dev", gpu={"pools": {"p": POOL_CONFIG | config}}).gpu.pools
    spec = pool_spec("p", pools["p"], AMI_RELEASE)
    assert {field: attrgetter(field)(spec) for field in expected} == expected


@pytest.fixture(scope="module")
def node_group_platform() -> RenderedStack:
    return gpu_platform("managed-node-groups")


def test_a_pool_pinned_to_a_zone_runs_in_that_zones_private_subnet(
    node_group_platform: RenderedStack,
) -> None:
    """The program picks the subnets: a pinned pool its zone's, the others every private one."""
    private = [
        named(node_group_platform, "aws:ec2/subnet:Subnet", f"network-private-az{zone}").id
        for zone in (1, 2)
    ]
    assert node_group(node_group_platform, "train").inputs["subnetIds"] == [private[1]]
    assert node_group(node_group_platform, "chat").inputs["subnetIds"] == private


def test_efa_interfaces_join_the_clusters_security_group(
    node_group_platform: RenderedStack,
) -> None:
    """The program hands the pool the security group EKS made for the cluster."""
    [cluster] = node_group_platform.of_type("aws:eks/cluster:Cluster")
    template = template_of(node_group_platform, node_group(node_group_platform, "train"))
    primary = template.inputs["networkInterfaces"][0]
    assert primary["securityGroups"] == [cluster.outputs["vpcConfig"]["clusterSecurityGroupId"]]
