"""An accelerator node pool on an EKS managed node group, able to scale from zero.

Managed node groups do not copy their labels and taints to the Auto Scaling group, so the
cluster autoscaler cannot tell that an empty GPU pool would satisfy a pending GPU pod. The
node-template tags it reads are added here, one `aws.autoscaling.Tag` each.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

import pulumi
import pulumi_aws as aws

from components.accelerators import PoolHardware
from components.node_pool import AmiRelease, NodePool, NodePoolArgs, RootVolume
from mlops_guardrails.vocabulary import (
    ACCELERATOR_LABEL,
    EFA_LABEL,
    EFA_RESOURCE,
    POOL_LABEL,
    PURPOSE_LABEL,
    Taint,
)

NODE_TEMPLATE_PREFIX: Final = "k8s.io/cluster-autoscaler/node-template"
AUTOSCALER_GPU_LABEL: Final = "k8s.amazonaws.com/accelerator"
"""The label cluster-autoscaler's AWS provider knows GPU nodes by (cluster-autoscaler 1.35,
cloudprovider/aws: GPULabel). A node with it whose GPUs are not advertised yet counts as a GPU
node still starting, not as a node without GPUs: without it the autoscaler adds another node for
the same pending pod while the device plugin starts (cloudprovider/aws/README.md)."""
DEVICE_PLUGIN_CONFIG_LABEL: Final = "nvidia.com/device-plugin.config"
CAPACITY_TYPES: Final = {
    "on-demand": "ON_DEMAND",
    "reservation": "ON_DEMAND",
    "spot": "SPOT",
    "capacity-block": "CAPACITY_BLOCK",
}


@dataclass(frozen=True)
class GpuPoolSpec:
    """What a pool is, independent of the backend that runs it."""

    name: str
    purpose: str
    instance_types: Sequence[str]
    hardware: PoolHardware
    capacity: str
    """on-demand, spot, capacity-block or reservation."""
    min_nodes: int
    desired_nodes: int
    max_nodes: int
    max_accelerators: int
    root_volume: RootVolume
    min_per_node: int
    """The fewest accelerators any of the pool's instance types has."""
    ami_release: AmiRelease
    reservation_id: str | None = None
    efa: bool = False
    time_slicing_replicas: int | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: Sequence[Taint] = ()

    @property
    def shares_per_accelerator(self) -> int:
        """How many of the extended resource a node advertises per physical accelerator: the
        device plugin advertises a time-sliced GPU once per share."""
        return self.time_slicing_replicas or 1

    @property
    def node_labels(self) -> dict[str, str]:
        labels = {
            **self.labels,
            POOL_LABEL: self.name,
            PURPOSE_LABEL: self.purpose,
            ACCELERATOR_LABEL: self.hardware.vendor,
        }
        if self.time_slicing_replicas is not None:
            labels[DEVICE_PLUGIN_CONFIG_LABEL] = self.name
        if self.efa:
            labels[EFA_LABEL] = "true"
        if self.hardware.vendor == "nvidia":
            model = self.hardware.gpu_model
            labels[AUTOSCALER_GPU_LABEL] = f"nvidia-{model}" if model else "nvidia"
        return labels

    @property
    def efa_interfaces(self) -> int:
        """EFA interfaces each node is launched with: one per network card, or none."""
        return self.hardware.efa_interfaces if self.efa else 0

    @property
    def node_taints(self) -> list[Taint]:
        """The accelerator taint first: only pods that ask for the hardware land here."""
        return [Taint(self.hardware.resource_name, "true", "NoSchedule"), *self.taints]


def efa_placement_group(
    parent: pulumi.Resource, name: str, spec: GpuPoolSpec, tags: Mapping[str, str]
) -> aws.ec2.PlacementGroup | None:
    """The cluster placement group an EFA pool's nodes share (EFA traffic stays within one);
    None for a pool without EFA. Both backends place their nodes in it."""
    if not spec.efa:
        return None
    return aws.ec2.PlacementGroup(
        f"{name}-placement",
        strategy="cluster",
        tags=dict(tags),
        opts=pulumi.ResourceOptions(parent=parent),
    )


def scale_down_options(spec: GpuPoolSpec) -> dict[str, str]:
    """Per-group cluster autoscaler options (cluster-autoscaler 1.35, cloudprovider/aws reads
    them from these ASG tags). The autoscaler removes a node whose utilization is at or below
    the threshold, evicting Job pods with it. A GPU node's utilization is its GPU requests
    alone; the autoscaler knows no Neuron resource, so a Neuron node's is its CPU and memory
    requests, which team namespaces' LimitRange defaults make non-zero for every container.
    A training node is therefore removable only once nothing but DaemonSets asks anything of
    it: a job, however small its share of the node, keeps it."""
    if spec.purpose != "training":
        return {}
    options = f"{NODE_TEMPLATE_PREFIX}/autoscaling-options"
    return {
        f"{options}/scaledownutilizationthreshold": "0",
        f"{options}/scaledowngpuutilizationthreshold": "0",
        f"{options}/ignoredaemonsetsutilization": "true",
    }


def scale_from_zero_tags(spec: GpuPoolSpec) -> dict[str, str]:
    """The node template the cluster autoscaler assumes for an empty pool."""
    tags = {f"{NODE_TEMPLATE_PREFIX}/label/{k}": v for k, v in sorted(spec.node_labels.items())}
    tags.update(
        {f"{NODE_TEMPLATE_PREFIX}/taint/{t.key}": f"{t.value}:{t.effect}" for t in spec.node_taints}
    )
    # What the smallest instance type of the pool advertises (time-sliced GPUs once per share),
    # so a scale-up never promises more than it gets, in the unit pending pods request.
    advertised = spec.min_per_node * spec.shares_per_accelerator
    tags[f"{NODE_TEMPLATE_PREFIX}/resources/{spec.hardware.resource_name}"] = str(advertised)
    # Pods get EFA devices only by requesting them: an empty pool must promise them too.
    if spec.efa_interfaces:
        tags[f"{NODE_TEMPLATE_PREFIX}/resources/{EFA_RESOURCE}"] = str(spec.efa_interfaces)
    return tags


@dataclass(frozen=True)
class GpuNodePoolArgs:
    spec: GpuPoolSpec
    cluster_name: pulumi.Input[str]
    node_role_arn: pulumi.Input[str]
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    cluster_security_group_id: pulumi.Input[str]
    ebs_kms_key_arn: pulumi.Input[str]
    tags: Mapping[str, str]


class GpuNodePool(pulumi.ComponentResource):
    TYPE = "mlops:gpu_node_pool:GpuNodePool"

    node_group_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: GpuNodePoolArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(self.TYPE, name, None, opts)
        spec = args.spec
        tags = {
            **args.tags,
            "mlops:gpu-pool": spec.name,
            # Read by the policy pack's capacity-ceiling rule.
            "mlops:accelerators-per-node": str(spec.hardware.max_per_node),
            "mlops:accelerator-ceiling": str(spec.max_accelerators),
        }
        placement_group = efa_placement_group(self, name, spec, args.tags)
        pool = NodePool(
            name,
            NodePoolArgs(
                cluster_name=args.cluster_name,
                node_role_arn=args.node_role_arn,
                subnet_ids=args.subnet_ids,
                instance_types=spec.instance_types,
                ami_type=spec.hardware.ami_type,
                ami_release=spec.ami_release,
                capacity_type=CAPACITY_TYPES[spec.capacity],
                capacity_reservation_id=spec.reservation_id,
                min_size=spec.min_nodes,
                desired_size=spec.desired_nodes,
                max_size=spec.max_nodes,
                root_volume=spec.root_volume,
                ebs_kms_key_arn=args.ebs_kms_key_arn,
                labels=spec.node_labels,
                taints=spec.node_taints,
                efa_interfaces=spec.efa_interfaces,
                security_group_ids=[args.cluster_security_group_id] if spec.efa else None,
                placement_group_name=placement_group.name if placement_group else None,
                tags=tags,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        for key, value in {**scale_from_zero_tags(spec), **scale_down_options(spec)}.items():
            aws.autoscaling.Tag(
                f"{name}-{key.removeprefix(NODE_TEMPLATE_PREFIX + '/').replace('/', '-')}",
                autoscaling_group_name=pool.autoscaling_group_name,
                tag=aws.autoscaling.TagTagArgs(key=key, value=value, propagate_at_launch=False),
                opts=pulumi.ResourceOptions(parent=self),
            )

        self.node_group_name = pool.node_group_name
        self.register_outputs({"nodeGroupName": self.node_group_name})
