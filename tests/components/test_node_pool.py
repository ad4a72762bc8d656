"""Node pools: the secure launch template in every capacity mode, with and without EFA, and in
every node group of every stack."""

from __future__ import annotations

from typing import Any

import pytest

from components.common import ComponentArgsError
from components.node_pool import NodePool, NodePoolArgs, RootVolume
from mlops_guardrails.vocabulary import Taint
from mlops_platform.rendered import RecordedResource, RenderedStack
from tests.components.gpu_fixtures import AMI_RELEASE
from tests.conftest import named, run_component

TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
EBS_KEY = "arn:aws:kms:eu-west-1:123456789012:key/e"
RESERVATION = "cr-0123456789abcdef0"


def pool_args(**overrides: object) -> NodePoolArgs:
    defaults: dict[str, object] = {
        "cluster_name": "c",
        "node_role_arn": "arn:aws:iam::123456789012:role/n",
        "subnet_ids": ["subnet-1"],
        "instance_types": ("m7i.large",),
        "ami_type": "AL2023_x86_64_STANDARD",
        "ami_release": AMI_RELEASE,
        "min_size": 1,
        "desired_size": 1,
        "max_size": 2,
        "root_volume": RootVolume(size_gib=50, throughput=125),
        "ebs_kms_key_arn": EBS_KEY,
        "tags": {},
    }
    return NodePoolArgs(**{**defaults, **overrides})  # type: ignore[arg-type]


POOLS = {
    "on-demand": pool_args(tags={"team": "platform"}),
    "spot": pool_args(capacity_type="SPOT", min_size=0, desired_size=0, max_size=4),
    "reservation": pool_args(capacity_reservation_id=RESERVATION),
    "capacity-block": pool_args(
        capacity_type="CAPACITY_BLOCK",
        capacity_reservation_id=RESERVATION,
        ami_type="AL2023_x86_64_NVIDIA",
        root_volume=RootVolume(size_gib=200, throughput=500, iops=4000),
    ),
    "efa": pool_args(
        subnet_ids=["subnet-az1"],
        efa_interfaces=4,
        security_group_ids=["sg-cluster"],
        placement_group_name="training",
        labels={"mlops.platform/pool": "training"},
        taints=(Taint("nvidia.com/gpu", "true", "NoSchedule"),),
    ),
}
EVERY_POOL = pytest.mark.parametrize("pool", list(POOLS))


@pytest.fixture(scope="module")
def pools() -> dict[str, RenderedStack]:
    return {
        pool: run_component(lambda args=args: NodePool("p", args)) for pool, args in POOLS.items()
    }


def parts(rendered: RenderedStack) -> tuple[RecordedResource, RecordedResource]:
    """The pool's node group and its launch template."""
    return named(rendered, NODE_GROUP, "p-node-group"), named(
        rendered, TEMPLATE, "p-launch-template"
    )


@EVERY_POOL
def test_every_pool_launches_with_imdsv2_only_and_an_encrypted_gp3_root(
    pools: dict[str, RenderedStack], pool: str
) -> None:
    args = POOLS[pool]
    _, template = parts(pools[pool])
    # Hop limit 1: pods cannot reach the node role through the metadata service.
    assert template.inputs["metadataOptions"] == {
        "httpEndpoint": "enabled",
        "httpTokens": "required",
        "httpPutResponseHopLimit": 1,
        "instanceMetadataTags": "disabled",
    }
    assert template.inputs["blockDeviceMappings"] == [
        {
            "deviceName": "/dev/xvda",
            "ebs": {
                "volumeType": "gp3",
                "volumeSize": args.root_volume.size_gib,
                "throughput": args.root_volume.throughput,
                **({"iops": args.root_volume.iops} if args.root_volume.iops != 3000 else {}),
                "encrypted": "true",
                "kmsKeyId": EBS_KEY,
                "deleteOnTermination": "true",
            },
        }
    ]


@EVERY_POOL
def test_instances_volumes_and_interfaces_carry_the_pools_tags(
    pools: dict[str, RenderedStack], pool: str
) -> None:
    _, template = parts(pools[pool])
    tags = dict(POOLS[pool].tags)
    assert template.inputs.get("tagSpecifications") == [
        {"resourceType": kind, "tags": tags} for kind in ("instance", "volume", "network-interface")
    ]


@EVERY_POOL
def test_nodes_have_no_ssh_and_no_public_address(
    pools: dict[str, RenderedStack], pool: str
) -> None:
    node_group, template = parts(pools[pool])
    assert "remoteAccess" not in node_group.inputs
    for interface in template.inputs.get("networkInterfaces", []):
        assert interface.get("associatePublicIpAddress") != "true"


@EVERY_POOL
def test_the_node_group_runs_the_latest_template_version(
    pools: dict[str, RenderedStack], pool: str
) -> None:
    node_group, template = parts(pools[pool])
    assert node_group.inputs["launchTemplate"] == {
        "id": template.id,
        "version": str(template.outputs["latestVersion"]),
    }
    assert template.inputs["updateDefaultVersion"] is True


@EVERY_POOL
def test_pools_repair_themselves_and_leave_their_running_size_to_the_autoscaler(
    pools: dict[str, RenderedStack], pool: str
) -> None:
    args = POOLS[pool]
    node_group, _ = parts(pools[pool])
    assert node_group.inputs["scalingConfig"] == {
        "minSize": args.min_size,
        "desiredSize": args.desired_size,
        "maxSize": args.max_size,
    }
    # `pulumi up` must not reset what the autoscaler has scaled to.
    assert node_group.ignore_changes == ["scalingConfig.desiredSize"]
    assert node_group.inputs["nodeRepairConfig"] == {"enabled": True}
    assert node_group.inputs["updateConfig"] == {"maxUnavailablePercentage": 33}


@EVERY_POOL
def test_the_node_group_runs_the_given_ami_instances_and_subnets(
    pools: dict[str, RenderedStack], pool: str
) -> None:
    args = POOLS[pool]
    node_group, _ = parts(pools[pool])
    inputs = node_group.inputs
    assert (inputs["clusterName"], inputs["nodeRoleArn"]) == (args.cluster_name, args.node_role_arn)
    assert (inputs["amiType"], inputs["instanceTypes"]) == (
        args.ami_type,
        list(args.instance_types),
    )
    assert inputs["subnetIds"] == args.subnet_ids


RESERVED = {"capacityReservationTarget": {"capacityReservationId": RESERVATION}}


@pytest.mark.parametrize(
    ("pool", "capacity_type", "market", "reservation"),
    [
        ("on-demand", "ON_DEMAND", None, None),
        ("spot", "SPOT", None, None),
        ("reservation", "ON_DEMAND", None, RESERVED),
        ("capacity-block", "CAPACITY_BLOCK", {"marketType": "capacity-block"}, RESERVED),
    ],
)
def test_capacity_is_bought_and_reserved_as_asked(
    pools: dict[str, RenderedStack],
    pool: str,
    capacity_type: str,
    market: dict[str, str] | None,
    reservation: dict[str, Any] | None,
) -> None:
    node_group, template = parts(pools[pool])
    assert node_group.inputs["capacityType"] == capacity_type
    assert template.inputs.get("instanceMarketOptions") == market
    assert template.inputs.get("capacityReservationSpecification") == reservation


def test_an_efa_pool_has_an_efa_interface_per_card_in_the_given_groups_and_placement_group(
    pools: dict[str, RenderedStack],
) -> None:
    """EC2's layout for multi-card instances: EFA with ENA as the primary, EFA-only (no IP
    address) at device index 1 on every other card."""
    _, template = parts(pools["efa"])
    assert template.inputs["networkInterfaces"] == [
        {
            "deviceIndex": 0 if card == 0 else 1,
            "networkCardIndex": card,
            "interfaceType": "efa" if card == 0 else "efa-only",
            "deleteOnTermination": "true",
            "securityGroups": ["sg-cluster"],
        }
        for card in range(4)
    ]
    assert template.inputs["placement"] == {"groupName": "training"}


@EVERY_POOL
def test_nodes_run_the_pinned_ami_release_and_updates_never_force_a_drain(
    pools: dict[str, RenderedStack], pool: str
) -> None:
    """Without a release version EKS picks the latest AMI at creation, so two stacks or two
    pools differ by when they were made; an update whose drain a PodDisruptionBudget holds up
    fails (PodEvictionFailure) rather than forcing it."""
    node_group, _ = parts(pools[pool])
    assert node_group.inputs["releaseVersion"] == "1.35.6-20260714"
    assert node_group.inputs["forceUpdateVersion"] is False


def test_a_pool_without_efa_leaves_interfaces_and_placement_to_eks(
    pools: dict[str, RenderedStack],
) -> None:
    _, template = parts(pools["on-demand"])
    assert "networkInterfaces" not in template.inputs
    assert "placement" not in template.inputs


@pytest.mark.parametrize(
    ("pool", "labels", "taints"),
    [
        ("on-demand", {}, []),
        (
            "efa",
            {"mlops.platform/pool": "training"},
            [{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}],
        ),
    ],
)
def test_the_pools_labels_and_taints_reach_its_nodes(
    pools: dict[str, RenderedStack], pool: str, labels: dict[str, str], taints: list[Any]
) -> None:
    node_group, _ = parts(pools[pool])
    assert node_group.inputs["labels"] == labels
    assert node_group.inputs["taints"] == taints


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"min_size": 3}, "min_size <= desired_size <= max_size"),
        ({"min_size": -1, "desired_size": 0}, "0 <= min_size"),
        ({"instance_types": ()}, "at least one instance type"),
        ({"efa_interfaces": 1}, "EFA interfaces need security_group_ids"),
        ({"capacity_type": "CAPACITY_BLOCK"}, "a capacity block needs its reservation id"),
    ],
)
def test_inconsistent_pools_are_refused(overrides: dict[str, object], problem: str) -> None:
    with pytest.raises(ComponentArgsError, match=problem):
        run_component(lambda: NodePool("p", pool_args(**overrides)))


def test_every_node_group_uses_a_hardened_launch_template(rendered: RenderedStack) -> None:
    """A stack-wide invariant: whatever component made it, no node group in any stack runs
    without IMDSv2, an encrypted gp3 root under the stack's EBS key, or with SSH or public IPs."""
    templates = {t.id: t for t in rendered.of_type(TEMPLATE)}
    ebs_key = named(rendered, "aws:kms/key:Key", "ebs-key")
    node_groups = rendered.of_type(NODE_GROUP)
    assert node_groups
    for node_group in node_groups:
        template = templates[node_group.inputs["launchTemplate"]["id"]]
        assert template.inputs["metadataOptions"]["httpTokens"] == "required"
        assert template.inputs["metadataOptions"]["httpPutResponseHopLimit"] == 1
        [root] = template.inputs["blockDeviceMappings"]
        assert root["ebs"]["encrypted"] == "true"
        assert root["ebs"]["volumeType"] == "gp3"
        assert root["ebs"]["kmsKeyId"] == ebs_key.outputs["arn"]
        for interface in template.inputs.get("networkInterfaces", []):
            assert interface.get("associatePublicIpAddress") != "true"
        assert "remoteAccess" not in node_group.inputs


@pytest.mark.parametrize(
    ("volume", "problem"),
    [
        # EBS: at most 0.25 MiB/s per provisioned IOPS; the 3,000 IOPS baseline allows 750.
        (RootVolume(200, throughput=1000), "needs at least 4000 IOPS"),
        # EBS: at most 500 IOPS per GiB.
        (RootVolume(20, throughput=125, iops=16000), "at least 32 GiB"),
        # botocore's EC2 model: gp3 throughput 125..2,000 MiB/s, IOPS 3,000..80,000.
        (RootVolume(4000, throughput=2500, iops=80000), "throughput must be 125..2000"),
        (RootVolume(4000, throughput=500, iops=90000), "IOPS must be 3000..80000"),
    ],
)
def test_a_root_volume_ec2_would_refuse_is_refused(volume: RootVolume, problem: str) -> None:
    assert any(problem in found for found in volume.problems())
    with pytest.raises(ComponentArgsError, match=problem):
        run_component(lambda: NodePool("p", pool_args(root_volume=volume)))


def test_a_root_volume_within_gp3s_ratios_is_accepted() -> None:
    assert RootVolume(200, throughput=750).problems() == []
    assert RootVolume(200, throughput=1000, iops=4000).problems() == []


def test_baseline_iops_are_left_to_ec2() -> None:
    """Stating the 3,000 IOPS gp3 gives anyway would change every existing launch template and
    node class, and so roll every node; only IOPS above the baseline are stated."""
    assert RootVolume(200, throughput=500).provisioned_iops is None
    assert RootVolume(200, throughput=1000, iops=4000).provisioned_iops == 4000
