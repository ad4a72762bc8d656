"""A managed node group with the platform's launch template: IMDSv2, encrypted gp3, no SSH."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

import pulumi
import pulumi_aws as aws

from components.common import ComponentArgsError
from mlops_guardrails.vocabulary import EKS_TAINT_EFFECTS, Taint

ROOT_DEVICE = "/dev/xvda"
# gp3's limits. Ranges: botocore's EC2 model (LaunchTemplateEbsBlockDeviceRequest, CreateVolume;
# botocore 1.44). Ratios: the EBS volume types page ("maximum ratio of provisioned throughput to
# provisioned IOPS is .25 MiB/s per IOPS"; "of provisioned IOPS to volume size, 500 IOPS per GiB").
GP3_BASELINE_IOPS: Final = 3_000
GP3_MAX_IOPS: Final = 80_000
GP3_BASELINE_THROUGHPUT: Final = 125
GP3_MAX_THROUGHPUT: Final = 2_000
GP3_THROUGHPUT_PER_IOPS: Final = 0.25
GP3_IOPS_PER_GIB: Final = 500


# The EKS-optimized Amazon Linux 2023 AMIs nodes run unless config pins another release: one
# release version per Kubernetes minor, from awslabs/amazon-eks-ami v20260714 (CHANGELOG.md,
# "AMI Release v20260714"; the same release version covers its standard, NVIDIA and Neuron AMIs).
_PINNED_RELEASES: Final = ("1.34.9-20260714", "1.35.6-20260714", "1.36.2-20260714")
AMI_RELEASE_PATTERN: Final = r"^1\.[0-9]+\.[0-9]+-[0-9]{8}$"


@dataclass(frozen=True)
class AmiRelease:
    """An EKS-optimized AMI release, as EKS names it (`1.35.6-20260714`): what a node group's
    `releaseVersion` takes. Pinned, a node changes its AMI only when config changes it."""

    release_version: str

    @property
    def kubernetes_minor(self) -> str:
        return ".".join(self.release_version.split(".")[:2])

    @property
    def karpenter_alias(self) -> str:
        """The same release for Karpenter (`al2023@v20260714`; the minor follows the cluster)."""
        return f"al2023@v{self.release_version.rsplit('-', 1)[1]}"


DEFAULT_AMI_RELEASES: Final = {
    AmiRelease(release).kubernetes_minor: release for release in _PINNED_RELEASES
}


@dataclass(frozen=True)
class RootVolume:
    """A node's encrypted gp3 root volume."""

    size_gib: int
    throughput: int
    """MiB/s."""
    iops: int = GP3_BASELINE_IOPS

    @property
    def provisioned_iops(self) -> int | None:
        """IOPS to state, or None for gp3's baseline: stating the baseline where it was left
        out would change every launch template and node class, and so replace every node."""
        return None if self.iops == GP3_BASELINE_IOPS else self.iops

    def problems(self) -> list[str]:
        """What EC2 would refuse about this volume, in words that say what to change."""
        found = []
        if not GP3_BASELINE_IOPS <= self.iops <= GP3_MAX_IOPS:
            found.append(f"gp3 IOPS must be {GP3_BASELINE_IOPS}..{GP3_MAX_IOPS}, got {self.iops}")
        if not GP3_BASELINE_THROUGHPUT <= self.throughput <= GP3_MAX_THROUGHPUT:
            found.append(
                f"gp3 throughput must be {GP3_BASELINE_THROUGHPUT}..{GP3_MAX_THROUGHPUT} MiB/s, "
                f"got {self.throughput}"
            )
        allowed = int(self.iops * GP3_THROUGHPUT_PER_IOPS)
        if self.throughput > allowed:
            needed = math.ceil(self.throughput / GP3_THROUGHPUT_PER_IOPS)
            found.append(
                f"gp3 throughput {self.throughput} MiB/s needs at least {needed} IOPS (0.25 "
                f"MiB/s per IOPS); {self.iops} IOPS allow {allowed}"
            )
        if self.iops > self.size_gib * GP3_IOPS_PER_GIB:
            found.append(
                f"gp3 IOPS {self.iops} need a volume of at least "
                f"{math.ceil(self.iops / GP3_IOPS_PER_GIB)} GiB (500 IOPS per GiB), got "
                f"{self.size_gib}"
            )
        return found


@dataclass(frozen=True)
class NodePoolArgs:
    cluster_name: pulumi.Input[str]
    node_role_arn: pulumi.Input[str]
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    instance_types: Sequence[str]
    ami_type: str
    ami_release: AmiRelease
    min_size: int
    desired_size: int
    max_size: int
    root_volume: RootVolume
    ebs_kms_key_arn: pulumi.Input[str]
    tags: Mapping[str, str]
    capacity_type: str = "ON_DEMAND"
    """ON_DEMAND, SPOT or CAPACITY_BLOCK."""
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: Sequence[Taint] = ()
    capacity_reservation_id: str | None = None
    """Launch into this capacity block or On-Demand Capacity Reservation."""
    efa_interfaces: int = 0
    """Elastic Fabric Adapter interfaces per node, one per network card (needs
    security_group_ids and one subnet); 0 for none."""
    security_group_ids: Sequence[pulumi.Input[str]] | None = None
    """For nodes whose launch template sets network interfaces (EFA): the cluster's group."""
    placement_group_name: pulumi.Input[str] | None = None


class NodePool(pulumi.ComponentResource):
    TYPE = "mlops:node_pool:NodePool"

    node_group_name: pulumi.Output[str]
    autoscaling_group_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: NodePoolArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(self.TYPE, name, None, opts)
        if not 0 <= args.min_size <= args.desired_size <= args.max_size:
            raise ComponentArgsError(
                self.TYPE,
                name,
                f"need 0 <= min_size <= desired_size <= max_size, got {args.min_size}, "
                f"{args.desired_size}, {args.max_size}",
            )
        if not args.instance_types:
            raise ComponentArgsError(self.TYPE, name, "at least one instance type is required")
        if args.efa_interfaces and args.security_group_ids is None:
            raise ComponentArgsError(self.TYPE, name, "EFA interfaces need security_group_ids")
        if args.capacity_type == "CAPACITY_BLOCK" and args.capacity_reservation_id is None:
            raise ComponentArgsError(self.TYPE, name, "a capacity block needs its reservation id")
        if args.root_volume.problems():
            raise ComponentArgsError(self.TYPE, name, "; ".join(args.root_volume.problems()))
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)

        template = aws.ec2.LaunchTemplate(
            f"{name}-launch-template",
            description=f"{name} nodes: IMDSv2 only, encrypted gp3 root volume",
            # Hop limit 1 keeps pods from reaching the node role through the metadata service;
            # they get AWS access through Pod Identity.
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled",
                http_tokens="required",
                http_put_response_hop_limit=1,
                instance_metadata_tags="disabled",
            ),
            block_device_mappings=[
                aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                    device_name=ROOT_DEVICE,
                    ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                        volume_type="gp3",
                        volume_size=args.root_volume.size_gib,
                        throughput=args.root_volume.throughput,
                        iops=args.root_volume.provisioned_iops,
                        encrypted="true",
                        kms_key_id=args.ebs_kms_key_arn,
                        delete_on_termination="true",
                    ),
                )
            ],
            tag_specifications=[
                aws.ec2.LaunchTemplateTagSpecificationArgs(resource_type=kind, tags=tags)
                for kind in ("instance", "volume", "network-interface")
            ],
            capacity_reservation_specification=_reservation(args),
            # A capacity block is bought capacity of its own market, not On-Demand.
            instance_market_options=(
                aws.ec2.LaunchTemplateInstanceMarketOptionsArgs(market_type="capacity-block")
                if args.capacity_type == "CAPACITY_BLOCK"
                else None
            ),
            network_interfaces=efa_interfaces(args.efa_interfaces, args.security_group_ids),
            placement=(
                aws.ec2.LaunchTemplatePlacementArgs(group_name=args.placement_group_name)
                if args.placement_group_name is not None
                else None
            ),
            update_default_version=True,
            tags=tags,
            opts=child,
        )
        node_group = aws.eks.NodeGroup(
            f"{name}-node-group",
            cluster_name=args.cluster_name,
            node_role_arn=args.node_role_arn,
            subnet_ids=args.subnet_ids,
            ami_type=args.ami_type,
            release_version=args.ami_release.release_version,
            capacity_type=args.capacity_type,
            instance_types=list(args.instance_types),
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                min_size=args.min_size, desired_size=args.desired_size, max_size=args.max_size
            ),
            launch_template=aws.eks.NodeGroupLaunchTemplateArgs(
                id=template.id, version=template.latest_version.apply(str)
            ),
            # An AMI release reaches a group only when config changes it: EKS drains each node
            # within its pods' PodDisruptionBudgets and fails the update (PodEvictionFailure)
            # rather than force one after 15 minutes.
            update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable_percentage=33),
            force_update_version=False,
            node_repair_config=aws.eks.NodeGroupNodeRepairConfigArgs(enabled=True),
            labels=dict(args.labels),
            taints=[
                aws.eks.NodeGroupTaintArgs(
                    key=t.key, value=t.value, effect=EKS_TAINT_EFFECTS[t.effect]
                )
                for t in args.taints
            ],
            tags=tags,
            # The autoscaler owns the running size; `pulumi up` must not reset it.
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["scalingConfig.desiredSize"]),
        )

        self.node_group_name = node_group.node_group_name
        self.autoscaling_group_name = node_group.resources[0].autoscaling_groups[0].name
        self.register_outputs(
            {
                "nodeGroupName": self.node_group_name,
                "autoscalingGroupName": self.autoscaling_group_name,
            }
        )


def efa_interfaces(
    count: int, security_group_ids: Sequence[pulumi.Input[str]] | None
) -> list[aws.ec2.LaunchTemplateNetworkInterfaceArgs] | None:
    """One EFA interface per network card (EC2 UserGuide efa-acc-inst-types: one EFA per
    card). The primary, card 0 at device index 0, is EFA with ENA and gives the node its
    address; each further card's is EFA-only, taking no IP address, at device index 1: the
    device index Karpenter 1.12.1's own launch templates give the EFA interfaces of further cards
    (pkg/providers/launchtemplate/launchtemplate.go), where EC2's guide now also shows index 0.
    Every interface carries the cluster's security group, which admits all traffic from itself,
    as EFA needs; EKS adds no group of its own once the template sets interfaces."""
    if not count:
        return None
    return [
        aws.ec2.LaunchTemplateNetworkInterfaceArgs(
            network_card_index=card,
            device_index=0 if card == 0 else 1,
            interface_type="efa" if card == 0 else "efa-only",
            delete_on_termination="true",
            security_groups=security_group_ids,
        )
        for card in range(count)
    ]


def _reservation(
    args: NodePoolArgs,
) -> aws.ec2.LaunchTemplateCapacityReservationSpecificationArgs | None:
    """Point launches at a capacity block or On-Demand Capacity Reservation."""
    if args.capacity_reservation_id is None:
        return None
    return aws.ec2.LaunchTemplateCapacityReservationSpecificationArgs(
        capacity_reservation_target=aws.ec2.LaunchTemplateCapacityReservationSpecificationCapacityReservationTargetArgs(
            capacity_reservation_id=args.capacity_reservation_id
        )
    )
