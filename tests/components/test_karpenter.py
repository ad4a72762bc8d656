"""The Karpenter backend: the controller and its interruption handling, a NodePool and
EC2NodeClass per pool in each pool mode, and how the program wires them to the cluster."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest

from components.cluster_autoscaler import ClusterAutoscaler
from components.gpu_node_pool import GpuPoolSpec
from components.karpenter import Karpenter, KarpenterArgs, KarpenterNodePool, KarpenterNodePoolArgs
from components.node_pool import RootVolume
from mlops_guardrails import charts, crd_schema
from mlops_guardrails.vocabulary import Taint
from mlops_platform.rendered import RecordedResource, RenderedStack
from tests.components.gpu_fixtures import (
    CLUSTER_NAME,
    EBS_KEY_ARN,
    NODE_ROLE_ARN,
    RESERVATION_ID,
    TAGS,
    gpu_platform,
    gpu_spec,
)
from tests.conftest import named, run_component

NODE_CLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
BOUNDARY_ARN = "arn:aws:iam::123456789012:policy/ml-test-boundary"
ZONES = ("eu-west-1a", "eu-west-1b", "eu-west-1c")
SUBNETS = {zone: f"subnet-0{zone[-1] * 16}" for zone in ZONES}

# One pool per mode, each with the zones it may use.
POOLS: dict[str, tuple[GpuPoolSpec, Sequence[str]]] = {
    spec.name: (spec, zones)
    for spec, zones in (
        (gpu_spec("train", ("g6e.12xlarge",), max_accelerators=8), ZONES),
        (
            gpu_spec(
                "chat",
                ("g6.xlarge", "g6.2xlarge"),
                purpose="inference",
                capacity="spot",
                max_accelerators=4,
                root_volume=RootVolume(size_gib=300, throughput=750),
                time_slicing_replicas=4,
                labels={"team": "research"},
                taints=(Taint("team", "research", "NoExecute"),),
            ),
            ZONES,
        ),
        (
            gpu_spec("block", capacity="capacity-block", reservation_id=RESERVATION_ID),
            ZONES[:1],
        ),
        (
            gpu_spec(
                "reserved",
                ("g6e.12xlarge",),
                capacity="reservation",
                reservation_id="cr-0fedcba9876543210",
            ),
            ZONES[1:2],
        ),
        (gpu_spec("serve", ("inf2.xlarge",), purpose="inference"), ZONES),
        (gpu_spec("fabric", ("p5.48xlarge",), efa=True), ZONES[:1]),
    )
}


def karpenter_args() -> KarpenterArgs:
    return KarpenterArgs(
        cluster_name=CLUSTER_NAME,
        cluster_arn=f"arn:aws:eks:eu-west-1:123456789012:cluster/{CLUSTER_NAME}",
        cluster_endpoint="https://ABC.gr7.eu-west-1.eks.amazonaws.com",
        node_role_arn=NODE_ROLE_ARN,
        ebs_kms_key_arn=EBS_KEY_ARN,
        permissions_boundary_arn=BOUNDARY_ARN,
        chart=charts.KARPENTER,
        node_selector={"mlops.platform/pool": "system"},
        install_after=(),
        tags=TAGS,
    )


def karpenter_with_pools() -> None:
    karpenter = Karpenter("karpenter", karpenter_args())
    for name, (spec, zones) in POOLS.items():
        KarpenterNodePool(
            f"gpu-{name}",
            KarpenterNodePoolArgs(
                spec=spec,
                cluster_name=CLUSTER_NAME,
                node_role_arn=NODE_ROLE_ARN,
                ebs_kms_key_arn=EBS_KEY_ARN,
                zones=zones,
                subnet_ids=[SUBNETS[zone] for zone in zones],
                tags=TAGS,
                karpenter_release=karpenter.release,
            ),
        )


@pytest.fixture(scope="module")
def karpenter() -> RenderedStack:
    return run_component(karpenter_with_pools)


def by_name(rendered: RenderedStack, type_token: str) -> dict[str, RecordedResource]:
    return {r.inputs["metadata"]["name"]: r for r in rendered.of_type(type_token)}


def node_pool_spec(rendered: RenderedStack, pool: str) -> dict[str, Any]:
    spec: dict[str, Any] = by_name(rendered, NODE_POOL)[pool].inputs["spec"]
    return spec


def requirements(rendered: RenderedStack, pool: str) -> dict[str, list[str]]:
    template = node_pool_spec(rendered, pool)["template"]["spec"]
    return {r["key"]: r["values"] for r in template["requirements"]}


def statements(resource: RecordedResource, field: str) -> dict[str, Any]:
    return {s["Sid"]: s for s in json.loads(resource.inputs[field])["Statement"]}


def test_node_classes_keep_the_node_hardening(karpenter: RenderedStack) -> None:
    node_classes = by_name(karpenter, NODE_CLASS)
    assert sorted(node_classes) == sorted(POOLS)
    for pool, (spec, zones) in POOLS.items():
        node_class = node_classes[pool].inputs["spec"]
        # Karpenter takes the node role by name and makes the instance profile itself.
        assert node_class["role"] == "ml-test-nodes"
        assert node_class["metadataOptions"]["httpTokens"] == "required"
        assert node_class["metadataOptions"]["httpPutResponseHopLimit"] == 1
        [root] = node_class["blockDeviceMappings"]
        assert root["ebs"]["encrypted"] is True
        assert root["ebs"]["kmsKeyID"] == EBS_KEY_ARN
        assert root["ebs"]["volumeSize"] == f"{spec.root_volume.size_gib}Gi"
        assert (root["ebs"].get("iops"), root["ebs"]["throughput"]) == (
            spec.root_volume.provisioned_iops,
            spec.root_volume.throughput,
        )
        # By id: the same whether the platform made the network or was given it.
        assert node_class["subnetSelectorTerms"] == [{"id": SUBNETS[zone]} for zone in zones]
        assert node_class["tags"] == {**TAGS, "mlops:gpu-pool": pool}


@pytest.mark.parametrize(
    ("pool", "limits"),
    [("train", {"nvidia.com/gpu": "8"}), ("serve", {"aws.amazon.com/neuron": "2"})],
)
def test_node_pools_cap_the_pools_accelerators(
    karpenter: RenderedStack, pool: str, limits: dict[str, str]
) -> None:
    assert node_pool_spec(karpenter, pool)["limits"] == limits


def test_training_nodes_never_expire_nor_drift_under_a_job(karpenter: RenderedStack) -> None:
    """Karpenter 1.12.1 concepts/disruption.md: expiry is forceful (budgets do not hold it
    back), so training nodes never expire; drift is voluntary, and a zero budget for `Drifted`
    keeps an outdated node until it is empty, when consolidation (WhenEmpty) removes it and the
    next job's node launches from the new template. No termination grace period: with one,
    drift would go through `karpenter.sh/do-not-disrupt` pods."""
    pool = node_pool_spec(karpenter, "train")
    assert pool["template"]["spec"]["expireAfter"] == "Never"
    assert "terminationGracePeriod" not in pool["template"]["spec"]
    assert pool["disruption"] == {
        "consolidationPolicy": "WhenEmpty",
        "consolidateAfter": "1h",
        "budgets": [{"nodes": "10%"}, {"nodes": "0", "reasons": ["Drifted"]}],
    }


def test_inference_nodes_are_renewed_monthly_and_drained_within_an_hour(
    karpenter: RenderedStack,
) -> None:
    pool = node_pool_spec(karpenter, "chat")
    assert pool["template"]["spec"]["expireAfter"] == "720h"
    assert pool["template"]["spec"]["terminationGracePeriod"] == "1h"
    assert pool["disruption"] == {
        "consolidationPolicy": "WhenEmpty",
        "consolidateAfter": "10m",
        "budgets": [{"nodes": "10%"}],
    }


def test_node_classes_pin_the_ami_release(karpenter: RenderedStack) -> None:
    """`al2023@latest` would drift every node whenever AWS publishes an AMI (nodeclasses.md:
    "not recommended for production"); a dated alias changes only with config."""
    for node_class in by_name(karpenter, NODE_CLASS).values():
        assert node_class.inputs["spec"]["amiSelectorTerms"] == [{"alias": "al2023@v20260714"}]


@pytest.mark.parametrize(
    ("pool", "taints"),
    [
        ("train", [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}]),
        ("serve", [{"key": "aws.amazon.com/neuron", "value": "true", "effect": "NoSchedule"}]),
        (
            "chat",
            [
                {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"},
                {"key": "team", "value": "research", "effect": "NoExecute"},
            ],
        ),
    ],
)
def test_node_pools_taint_nodes_for_their_accelerator_first(
    karpenter: RenderedStack, pool: str, taints: list[dict[str, str]]
) -> None:
    assert node_pool_spec(karpenter, pool)["template"]["spec"]["taints"] == taints


def test_node_pools_label_nodes_as_the_node_group_backend_does(karpenter: RenderedStack) -> None:
    assert node_pool_spec(karpenter, "chat")["template"]["metadata"]["labels"] == {
        "team": "research",
        "mlops.platform/pool": "chat",
        "mlops.platform/purpose": "inference",
        "mlops.platform/accelerator": "nvidia",
        "nvidia.com/device-plugin.config": "chat",
        "k8s.amazonaws.com/accelerator": "nvidia-l4",
    }


@pytest.mark.parametrize(
    ("pool", "capacity", "reservation"),
    [
        ("train", "on-demand", None),
        ("chat", "spot", None),
        ("block", "reserved", RESERVATION_ID),
        ("reserved", "reserved", "cr-0fedcba9876543210"),
    ],
)
def test_the_capacity_type_decides_what_karpenter_buys(
    karpenter: RenderedStack, pool: str, capacity: str, reservation: str | None
) -> None:
    assert requirements(karpenter, pool)["karpenter.sh/capacity-type"] == [capacity]
    node_class = by_name(karpenter, NODE_CLASS)[pool].inputs["spec"]
    assert node_class.get("capacityReservationSelectorTerms") == (
        [{"id": reservation}] if reservation else None
    )


@pytest.mark.parametrize("pool", ["train", "chat", "block", "reserved"])
def test_node_pools_launch_only_their_instance_types_in_their_zones(
    karpenter: RenderedStack, pool: str
) -> None:
    spec, zones = POOLS[pool]
    launches = requirements(karpenter, pool)
    assert launches["node.kubernetes.io/instance-type"] == list(spec.instance_types)
    assert launches["topology.kubernetes.io/zone"] == list(zones)


def test_an_efa_pool_launches_every_node_with_an_efa_interface_per_card_in_its_group(
    karpenter: RenderedStack,
) -> None:
    """Karpenter 1.12.1 adds EFA interfaces on its own only for pods requesting
    `vpc.amazonaws.com/efa`; set on the node class, every node gets all 32 of a p5.48xlarge
    (one per network card) and advertises as many EFA-only interfaces as EFA devices."""
    node_class = by_name(karpenter, NODE_CLASS)["fabric"].inputs["spec"]
    interfaces = node_class["networkInterfaces"]
    assert interfaces[0] == {"networkCardIndex": 0, "deviceIndex": 0, "interfaceType": "interface"}
    efa = [i for i in interfaces if i["interfaceType"] == "efa-only"]
    assert sorted(i["networkCardIndex"] for i in efa) == list(range(32))
    placement = named(karpenter, "aws:ec2/placementGroup:PlacementGroup", "gpu-fabric-placement")
    assert placement.inputs["strategy"] == "cluster"
    assert node_class["placementGroupSelector"] == {"name": placement.outputs["name"]}
    others = [spec for pool, spec in by_name(karpenter, NODE_CLASS).items() if pool != "fabric"]
    assert not any("networkInterfaces" in n.inputs["spec"] for n in others)


def test_every_pool_mode_renders_what_karpenters_crds_accept(karpenter: RenderedStack) -> None:
    """Karpenter 1.12.1's CRD schemas and CEL rules (the pack's karpenter-crd-schema rule)."""
    facts = charts.KARPENTER.crd_schemas
    assert facts is not None
    custom = [r for r in karpenter.resources if r.type in (NODE_POOL, NODE_CLASS)]
    assert len(custom) == 2 * len(POOLS)
    for resource in custom:
        assert crd_schema.problems(facts, resource.type, resource.inputs) == [], resource.name


def test_node_pools_wait_for_karpenters_crds(karpenter: RenderedStack) -> None:
    release = named(karpenter, "kubernetes:helm.sh/v3:Release", "karpenter-release")
    node_classes = by_name(karpenter, NODE_CLASS)
    for pool, node_pool in by_name(karpenter, NODE_POOL).items():
        assert {release.urn, node_classes[pool].urn} <= set(node_pool.dependencies)
    for node_class in node_classes.values():
        assert release.urn in node_class.dependencies


def test_interruptions_reach_an_encrypted_tls_only_queue_and_stale_ones_are_dropped(
    karpenter: RenderedStack,
) -> None:
    """Notices matter for minutes: the queue keeps them five, EventBridge retries as long, and
    what it cannot deliver is kept in the dead-letter queue."""
    queue = named(karpenter, "aws:sqs/queue:Queue", "karpenter-interruptions-queue")
    assert queue.inputs["sqsManagedSseEnabled"] is True
    assert queue.inputs["messageRetentionSeconds"] == 300
    rules = karpenter.of_type("aws:cloudwatch/eventRule:EventRule")
    detail_types = sorted(json.loads(r.inputs["eventPattern"])["detail-type"][0] for r in rules)
    assert detail_types == [
        "AWS Health Event",
        "EC2 Instance Rebalance Recommendation",
        "EC2 Instance State-change Notification",
        "EC2 Spot Instance Interruption Warning",
    ]
    dead_letter = named(karpenter, "aws:sqs/queue:Queue", "karpenter-interruptions-dead-letter")
    for target in karpenter.of_type("aws:cloudwatch/eventTarget:EventTarget"):
        assert target.inputs["arn"] == queue.outputs["arn"]
        assert target.inputs["deadLetterConfig"] == {"arn": dead_letter.outputs["arn"]}
        assert target.inputs["retryPolicy"]["maximumEventAgeInSeconds"] == 300
    policy = named(karpenter, "aws:sqs/queuePolicy:QueuePolicy", "karpenter-interruptions-queue")
    [allow, deny] = json.loads(policy.inputs["policy"])["Statement"]
    assert allow["Condition"] == {
        "ArnEquals": {"aws:SourceArn": sorted(r.outputs["arn"] for r in rules)}
    }
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_the_controller_may_pass_only_the_node_role_and_retire_only_its_nodes(
    karpenter: RenderedStack,
) -> None:
    policy = statements(
        named(karpenter, "aws:iam/rolePolicy:RolePolicy", "karpenter-controller-inline"), "policy"
    )
    assert policy["PassTheNodeRole"]["Resource"] == NODE_ROLE_ARN
    assert policy["PassTheNodeRole"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}
    }
    # Managed node groups' instances carry the cluster tag too: only Karpenter's own tag
    # (its v1.12.1 reference policy) lets the controller retire a node.
    assert policy["RetireOnlyItsNodes"]["Condition"] == {
        "StringEquals": {f"aws:ResourceTag/kubernetes.io/cluster/{CLUSTER_NAME}": "owned"},
        "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"},
    }
    assert policy["LaunchOnlyTagged"]["Condition"]["StringLike"] == {
        "aws:RequestTag/karpenter.sh/nodepool": "*"
    }
    assert all(
        "karpenter.k8s.aws/ec2nodeclass" in str(policy[sid]["Condition"])
        for sid in (
            "CreateItsInstanceProfiles",
            "TagItsInstanceProfiles",
            "ManageItsInstanceProfiles",
        )
    )


def test_the_controller_may_use_the_volume_key_only_through_ec2(karpenter: RenderedStack) -> None:
    """Karpenter launches with its own credentials (CreateFleet): without the key through EC2,
    nodes with encrypted root volumes terminate before ready (Karpenter troubleshooting)."""
    policy = statements(
        named(karpenter, "aws:iam/rolePolicy:RolePolicy", "karpenter-controller-inline"), "policy"
    )
    for sid in ("EncryptNodeVolumesThroughEc2", "GrantNodeVolumeKeyToEc2"):
        assert policy[sid]["Resource"] == EBS_KEY_ARN
        assert policy[sid]["Condition"]["StringEquals"] == {
            "kms:ViaService": "ec2.eu-west-1.amazonaws.com"
        }
    assert "ec2:DescribeInstanceStatus" in policy["Discover"]["Action"]  # required from 1.12


def test_the_controller_role_trusts_exactly_its_service_account(karpenter: RenderedStack) -> None:
    role = named(karpenter, "aws:iam/role:Role", "karpenter-controller-role")
    assert role.inputs["permissionsBoundary"] == BOUNDARY_ARN
    condition = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]["Condition"][
        "StringEquals"
    ]
    assert condition["aws:RequestTag/kubernetes-namespace"] == "kube-system"
    assert condition["aws:RequestTag/kubernetes-service-account"] == "karpenter"
    release = named(karpenter, "kubernetes:helm.sh/v3:Release", "karpenter-release")
    assert release.inputs["chart"] == "oci://public.ecr.aws/karpenter/karpenter"
    assert release.inputs["version"] == charts.KARPENTER.version
    assert release.inputs["chart"] == charts.KARPENTER.repository  # an OCI chart
    assert release.inputs["values"]["nodeSelector"] == {"mlops.platform/pool": "system"}
    assert release.inputs["values"]["settings"] == {
        "clusterName": CLUSTER_NAME,
        "clusterEndpoint": "https://ABC.gr7.eu-west-1.eks.amazonaws.com",
        "interruptionQueue": named(
            karpenter, "aws:sqs/queue:Queue", "karpenter-interruptions-queue"
        ).outputs["name"],
    }


@pytest.fixture(scope="module")
def karpenter_platform() -> RenderedStack:
    return gpu_platform("karpenter")


@pytest.mark.parametrize(
    ("backend", "node_groups", "node_pools", "provisioner"),
    [
        (
            "managed-node-groups",
            [
                "eks-system-node-group",
                "gpu-chat-node-group",
                "gpu-serve-node-group",
                "gpu-train-node-group",
            ],
            [],
            ClusterAutoscaler.TYPE,
        ),
        ("karpenter", ["eks-system-node-group"], ["chat", "serve", "train"], Karpenter.TYPE),
    ],
    ids=["managed-node-groups", "karpenter"],
)
def test_the_backend_decides_what_provisions_the_gpu_pools(
    backend: str, node_groups: list[str], node_pools: list[str], provisioner: str
) -> None:
    """The stack's `gpu.backend` picks the components the program builds for its pools."""
    rendered = gpu_platform(backend)
    assert sorted(g.name for g in rendered.of_type("aws:eks/nodeGroup:NodeGroup")) == node_groups
    assert sorted(by_name(rendered, NODE_POOL)) == node_pools
    provisioners = {ClusterAutoscaler.TYPE, Karpenter.TYPE}
    assert [r.type for r in rendered.resources if r.type in provisioners] == [provisioner]


def test_karpenter_pools_use_the_networks_zones_unless_pinned(
    karpenter_platform: RenderedStack,
) -> None:
    """The program turns the network's zone count and a pool's `zone` into zone names."""
    subnet_zones = [
        named(karpenter_platform, "aws:ec2/subnet:Subnet", f"network-private-az{zone}").inputs[
            "availabilityZone"
        ]
        for zone in (1, 2)
    ]
    assert requirements(karpenter_platform, "serve")["topology.kubernetes.io/zone"] == subnet_zones
    assert requirements(karpenter_platform, "chat")["topology.kubernetes.io/zone"] == [
        subnet_zones[0]
    ]
    assert requirements(karpenter_platform, "train")["topology.kubernetes.io/zone"] == [
        subnet_zones[1]
    ]


def test_karpenter_nodes_get_the_clusters_node_role_key_and_private_subnets(
    karpenter_platform: RenderedStack,
) -> None:
    """Node classes select the network's private subnets by id."""
    node_role = named(karpenter_platform, "aws:iam/role:Role", "eks-node-role").outputs["name"]
    ebs_key = named(karpenter_platform, "aws:kms/key:Key", "ebs-key").outputs["arn"]
    private = [
        named(karpenter_platform, "aws:ec2/subnet:Subnet", f"network-private-az{zone}").id
        for zone in (1, 2)
    ]
    selected = {}
    for pool, node_class in by_name(karpenter_platform, NODE_CLASS).items():
        spec = node_class.inputs["spec"]
        assert spec["role"] == node_role
        assert spec["blockDeviceMappings"][0]["ebs"]["kmsKeyID"] == ebs_key
        selected[pool] = [term["id"] for term in spec["subnetSelectorTerms"]]
    # A pool pinned to a zone (train: 2, chat: 1) takes that zone's subnet only.
    assert selected == {"serve": private, "train": [private[1]], "chat": [private[0]]}


def test_the_controller_and_its_boundary_both_allow_passing_the_node_role(
    karpenter_platform: RenderedStack,
) -> None:
    """The controller's role is capped by the cluster's workload boundary, which must leave
    room for the one IAM action Karpenter needs."""
    node_role = named(karpenter_platform, "aws:iam/role:Role", "eks-node-role").outputs["arn"]
    boundary = named(karpenter_platform, "aws:iam/policy:Policy", "eks-workload-boundary")
    role = named(karpenter_platform, "aws:iam/role:Role", "karpenter-controller-role")
    assert role.inputs["permissionsBoundary"] == boundary.outputs["arn"]
    policy = named(
        karpenter_platform, "aws:iam/rolePolicy:RolePolicy", "karpenter-controller-inline"
    )
    assert statements(boundary, "policy")["PassTheNodeRole"]["Resource"] == node_role
    assert statements(policy, "policy")["PassTheNodeRole"]["Resource"] == node_role
