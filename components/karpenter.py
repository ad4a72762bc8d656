"""Karpenter as the GPU pools' provisioner: the controller, its interruption queue, and a
NodePool with an EC2NodeClass per pool.

The node role is the cluster's, already admitted by the access entry EKS made for the system
node group, so Karpenter's nodes need no entry of their own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import pulumi
import pulumi_kubernetes as k8s

from components.common import account_context
from components.event_queue import EventQueue, EventQueueArgs
from components.gpu_node_pool import GpuPoolSpec, efa_placement_group
from components.helm import chart_release
from components.pod_role import PodRole, PodRoleArgs
from components.policy_documents import karpenter_controller_policy
from mlops_guardrails.charts import ChartContract

NAMESPACE: Final = "kube-system"
SERVICE_ACCOUNT: Final = "karpenter"
# EC2 and Health events that mean a node is about to go: Karpenter drains it first.
INTERRUPTION_EVENTS: Final = {
    "spot-interruption": {
        "source": ["aws.ec2"],
        "detail-type": ["EC2 Spot Instance Interruption Warning"],
    },
    "rebalance": {"source": ["aws.ec2"], "detail-type": ["EC2 Instance Rebalance Recommendation"]},
    "state-change": {
        "source": ["aws.ec2"],
        "detail-type": ["EC2 Instance State-change Notification"],
    },
    "scheduled-change": {"source": ["aws.health"], "detail-type": ["AWS Health Event"]},
}
INTERRUPTION_NOTICE_SECONDS: Final = 300
# Karpenter's default budget: at most a tenth of a pool's nodes disrupted at once.
PACE: Final = {"nodes": "10%"}


@dataclass(frozen=True)
class Lifecycle:
    """How long a pool's nodes live and what may take them away (Karpenter 1.12.1,
    concepts/disruption.md). Expiry is forceful: budgets do not hold it back and it drains
    whatever runs. Drift (a new AMI release, a changed template) and consolidation are voluntary:
    budgets, PodDisruptionBudgets and `karpenter.sh/do-not-disrupt` pods hold them back, unless
    a termination grace period is set, which lets drift go through them."""

    expire_after: str
    consolidate_after: str
    termination_grace_period: str | None
    budgets: tuple[Mapping[str, Any], ...]


LIFECYCLES: Final = {
    # A training job loses its work when its node goes. Its nodes never expire, and an outdated
    # node is never drifted: it leaves only once empty, and the next job's node launches from
    # the new template, so AMI releases reach training pools between jobs.
    "training": Lifecycle(
        expire_after="Never",
        consolidate_after="1h",
        termination_grace_period=None,
        budgets=(PACE, {"nodes": "0", "reasons": ["Drifted"]}),
    ),
    # Model servers restart cheaply behind their PodDisruptionBudgets: nodes are renewed
    # monthly, and a drain that a budget holds up ends after an hour.
    "inference": Lifecycle(
        expire_after="720h",
        consolidate_after="10m",
        termination_grace_period="1h",
        budgets=(PACE,),
    ),
}
KARPENTER_CAPACITY: Final = {
    "on-demand": "on-demand",
    "spot": "spot",
    "reservation": "reserved",
    "capacity-block": "reserved",
}


@dataclass(frozen=True)
class KarpenterArgs:
    cluster_name: str
    cluster_arn: pulumi.Input[str]
    cluster_endpoint: pulumi.Input[str]
    node_role_arn: pulumi.Input[str]
    ebs_kms_key_arn: pulumi.Input[str]
    """The key node classes encrypt root volumes with: the controller launches with it."""
    permissions_boundary_arn: pulumi.Input[str]
    chart: ChartContract
    node_selector: Mapping[str, str]
    """Run the controller on the system nodes, never on nodes it provisions."""
    install_after: Sequence[pulumi.Resource]
    """What its releases wait for: the system nodes and CoreDNS their pods need, and the namespace
    they install into when the stack makes it."""
    tags: Mapping[str, str]


class Karpenter(pulumi.ComponentResource):
    TYPE = "mlops:karpenter:Karpenter"

    release: k8s.helm.v3.Release
    """Its CRDs exist once this is up: NodePools and EC2NodeClasses depend on it."""

    def __init__(
        self, name: str, args: KarpenterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(self.TYPE, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        account = account_context(self)
        # Interruption notices matter for minutes: older ones go to the dead-letter queue, not
        # to Karpenter late.
        interruptions = EventQueue(
            f"{name}-interruptions",
            EventQueueArgs(
                patterns=INTERRUPTION_EVENTS,
                description=f"Karpenter ({args.cluster_name})",
                retention_seconds=INTERRUPTION_NOTICE_SECONDS,
                max_event_age_seconds=INTERRUPTION_NOTICE_SECONDS,
                tags=args.tags,
            ),
            opts=child,
        )
        policy = pulumi.Output.all(
            args.cluster_arn,
            args.node_role_arn,
            interruptions.queue_arn,
            args.ebs_kms_key_arn,
            account.account_id,
            account.partition,
            account.region,
        ).apply(
            lambda v: karpenter_controller_policy(
                cluster_name=args.cluster_name,
                cluster_arn=v[0],
                node_role_arn=v[1],
                queue_arn=v[2],
                ebs_key_arn=v[3],
                account_id=v[4],
                partition=v[5],
                region=v[6],
            )
        )
        role = PodRole(
            f"{name}-controller",
            PodRoleArgs(
                cluster_name=args.cluster_name,
                cluster_arn=args.cluster_arn,
                namespace=NAMESPACE,
                service_account=SERVICE_ACCOUNT,
                permissions_boundary_arn=args.permissions_boundary_arn,
                inline_policy=policy,
                tags=args.tags,
            ),
            opts=child,
        )
        self.release = chart_release(
            f"{name}-release",
            args.chart,
            namespace=NAMESPACE,
            values={
                "settings": {
                    "clusterName": args.cluster_name,
                    "clusterEndpoint": args.cluster_endpoint,
                    "interruptionQueue": interruptions.queue_name,
                },
                "serviceAccount": {"name": SERVICE_ACCOUNT},
                "nodeSelector": dict(args.node_selector),
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[role, *args.install_after]),
        )
        self.register_outputs({"interruptionQueueArn": interruptions.queue_arn})


@dataclass(frozen=True)
class KarpenterNodePoolArgs:
    spec: GpuPoolSpec
    cluster_name: str
    node_role_arn: pulumi.Input[str]
    ebs_kms_key_arn: pulumi.Input[str]
    zones: Sequence[pulumi.Input[str]]
    """Availability zone names the pool may use; one for a single-zone pool."""
    subnet_ids: Sequence[pulumi.Input[str]]
    """The private subnets of those zones, selected by id: the same whether the platform made
    the network or was given it."""
    tags: Mapping[str, str]
    karpenter_release: pulumi.Resource
    """NodePool and EC2NodeClass are Karpenter's CRDs: nothing here applies before it is up."""


class KarpenterNodePool(pulumi.ComponentResource):
    TYPE = "mlops:karpenter:KarpenterNodePool"

    def __init__(
        self, name: str, args: KarpenterNodePoolArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(self.TYPE, name, None, opts)
        spec = args.spec
        placement_group = efa_placement_group(self, name, spec, args.tags)
        node_class = k8s.apiextensions.CustomResource(
            f"{name}-node-class",
            api_version="karpenter.k8s.aws/v1",
            kind="EC2NodeClass",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=spec.name),
            spec=node_class_spec(args, placement_group.name if placement_group else None),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[args.karpenter_release]),
        )
        k8s.apiextensions.CustomResource(
            f"{name}-node-pool",
            api_version="karpenter.sh/v1",
            kind="NodePool",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=spec.name),
            spec=node_pool_spec(spec, args.zones),
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[args.karpenter_release, node_class]
            ),
        )
        self.register_outputs({})


def node_class_spec(
    args: KarpenterNodePoolArgs, placement_group_name: pulumi.Input[str] | None
) -> dict[str, Any]:
    """The same node hardening as the managed-node-group backend's launch template."""
    spec = args.spec
    node_class: dict[str, Any] = {
        "role": pulumi.Output.from_input(args.node_role_arn).apply(
            lambda arn: arn.rsplit("/", 1)[-1]
        ),
        # A pinned release: `latest` would drift every node whenever AWS publishes an AMI.
        "amiSelectorTerms": [{"alias": spec.ami_release.karpenter_alias}],
        "subnetSelectorTerms": [{"id": subnet} for subnet in args.subnet_ids],
        "securityGroupSelectorTerms": [{"tags": {"aws:eks:cluster-name": args.cluster_name}}],
        "metadataOptions": {
            "httpEndpoint": "enabled",
            "httpProtocolIPv6": "disabled",
            "httpPutResponseHopLimit": 1,
            "httpTokens": "required",
        },
        "blockDeviceMappings": [
            {
                "deviceName": "/dev/xvda",
                "ebs": {
                    "volumeSize": f"{spec.root_volume.size_gib}Gi",
                    "volumeType": "gp3",
                    **(
                        {"iops": spec.root_volume.provisioned_iops}
                        if spec.root_volume.provisioned_iops
                        else {}
                    ),
                    "throughput": spec.root_volume.throughput,
                    "encrypted": True,
                    "kmsKeyID": args.ebs_kms_key_arn,
                    "deleteOnTermination": True,
                },
            }
        ],
        "tags": {**args.tags, "mlops:gpu-pool": spec.name},
    }
    if spec.reservation_id is not None:
        node_class["capacityReservationSelectorTerms"] = [{"id": spec.reservation_id}]
    if placement_group_name is not None:
        node_class["placementGroupSelector"] = {"name": placement_group_name}
    if spec.efa_interfaces:
        node_class["networkInterfaces"] = efa_network_interfaces(spec.efa_interfaces)
    return node_class


def efa_network_interfaces(count: int) -> list[dict[str, Any]]:
    """Every node launched with all its EFA interfaces, whichever pod asked for it: an ENA
    primary for the node's address, an EFA-only interface on card 0 beside it and one on each
    further card (EC2 UserGuide efa-acc-inst-types; Karpenter 1.12.1 takes only `interface`
    and `efa-only`, and counts the EFA-only ones as the node's `vpc.amazonaws.com/efa`)."""
    return [
        {"networkCardIndex": 0, "deviceIndex": 0, "interfaceType": "interface"},
        *(
            {
                "networkCardIndex": card,
                "deviceIndex": 1 if card == 0 else 0,
                "interfaceType": "efa-only",
            }
            for card in range(count)
        ),
    ]


def node_pool_spec(spec: GpuPoolSpec, zones: Sequence[pulumi.Input[str]]) -> dict[str, Any]:
    lifecycle = LIFECYCLES[spec.purpose]
    grace = (
        {"terminationGracePeriod": lifecycle.termination_grace_period}
        if lifecycle.termination_grace_period
        else {}
    )
    return {
        "template": {
            "metadata": {"labels": spec.node_labels},
            "spec": {
                "nodeClassRef": {
                    "group": "karpenter.k8s.aws",
                    "kind": "EC2NodeClass",
                    "name": spec.name,
                },
                "requirements": [
                    {
                        "key": "node.kubernetes.io/instance-type",
                        "operator": "In",
                        "values": list(spec.instance_types),
                    },
                    {
                        "key": "karpenter.sh/capacity-type",
                        "operator": "In",
                        "values": [KARPENTER_CAPACITY[spec.capacity]],
                    },
                    {"key": "topology.kubernetes.io/zone", "operator": "In", "values": list(zones)},
                ],
                "taints": [
                    {"key": t.key, "value": t.value, "effect": t.effect} for t in spec.node_taints
                ],
                "expireAfter": lifecycle.expire_after,
                **grace,
            },
        },
        # The pool's accelerator ceiling, enforced by Karpenter itself.
        "limits": {spec.hardware.resource_name: str(spec.max_accelerators)},
        "disruption": {
            "consolidationPolicy": "WhenEmpty",
            "consolidateAfter": lifecycle.consolidate_after,
            "budgets": [dict(budget) for budget in lifecycle.budgets],
        },
    }
