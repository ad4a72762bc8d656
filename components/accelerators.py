"""EC2 accelerator instance types: what a node brings, and what a pool of them needs.

The AMI type, the taint that keeps ordinary pods off, the extended resource the device plugin
advertises and whether EFA is possible all follow from the instance types, so config names only
those and everything else is derived here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

from mlops_guardrails.vocabulary import ACCELERATOR_RESOURCES, AcceleratorVendor

Vendor = AcceleratorVendor
Arch = Literal["x86_64", "arm64"]


@dataclass(frozen=True)
class Accelerators:
    vendor: Vendor
    arch: Arch
    count: int
    """GPUs (NVIDIA) or Neuron devices per instance."""
    efa_interfaces: int = 0
    """The most Elastic Fabric Adapter interfaces the instance type takes, one per network
    card; 0 without EFA."""


# (accelerators per instance, EFA interfaces) by instance type. Both are EC2's
# DescribeInstanceTypes data (GpuInfo / NeuronInfo counts, EfaInfo.MaximumEfaInterfaces) as
# Karpenter v1.12.1 generated them into its instance-type reference
# (website/content/en/preview/reference/instance-types.md: `nvidia.com/gpu`,
# `aws.amazon.com/neuron` and `vpc.amazonaws.com/efa` per type). Each EFA count equals the type's
# network cards (amazon-vpc-cni-k8s pkg/vpc/vpc_ip_resource_limit.go).
_SHAPES: Final[dict[tuple[Vendor, Arch], dict[str, tuple[int, int]]]] = {
    ("nvidia", "x86_64"): {
        "p4d.24xlarge": (8, 4),
        "p4de.24xlarge": (8, 4),
        "p5.4xlarge": (1, 1),
        "p5.48xlarge": (8, 32),
        "p5e.48xlarge": (8, 32),
        "p5en.48xlarge": (8, 16),
        "p6-b200.48xlarge": (8, 8),
        "g4dn.xlarge": (1, 0),
        "g4dn.2xlarge": (1, 0),
        "g4dn.4xlarge": (1, 0),
        "g4dn.8xlarge": (1, 1),
        "g4dn.12xlarge": (4, 1),
        "g4dn.16xlarge": (1, 1),
        "g4dn.metal": (8, 1),
        **{
            f"{family}.{size}": shape
            for family in ("g5", "g6", "g6e")
            for size, shape in {
                "xlarge": (1, 0),
                "2xlarge": (1, 0),
                "4xlarge": (1, 0),
                "8xlarge": (1, 1),
                "12xlarge": (4, 1),
                "16xlarge": (1, 1),
                "24xlarge": (4, 2 if family == "g6e" else 1),
                "48xlarge": (8, 4 if family == "g6e" else 1),
            }.items()
        },
    },
    ("nvidia", "arm64"): {
        "g5g.xlarge": (1, 0),
        "g5g.2xlarge": (1, 0),
        "g5g.4xlarge": (1, 0),
        "g5g.8xlarge": (1, 0),
        "g5g.16xlarge": (2, 0),
        "g5g.metal": (2, 0),
    },
    ("neuron", "x86_64"): {
        "trn1.2xlarge": (1, 0),
        "trn1.32xlarge": (16, 8),
        "trn1n.32xlarge": (16, 16),
        "trn2.48xlarge": (16, 16),
        "inf2.xlarge": (1, 0),
        "inf2.8xlarge": (1, 0),
        "inf2.24xlarge": (6, 0),
        "inf2.48xlarge": (12, 0),
    },
}
# The GPU of each NVIDIA family (Karpenter v1.12.1's instance-type reference,
# `karpenter.k8s.aws/instance-gpu-name`).
NVIDIA_GPU_MODELS: Final = {
    "p4d": "a100",
    "p4de": "a100",
    "p5": "h100",
    "p5e": "h200",
    "p5en": "h200",
    "p6-b200": "b200",
    "g4dn": "t4",
    "g5": "a10g",
    "g5g": "t4g",
    "g6": "l4",
    "g6e": "l40s",
}
INSTANCE_TYPES: Final[dict[str, Accelerators]] = {
    instance_type: Accelerators(vendor, arch, count, efa_interfaces)
    for (vendor, arch), shapes in _SHAPES.items()
    for instance_type, (count, efa_interfaces) in shapes.items()
}

AMI_TYPES: Final[dict[tuple[Vendor, Arch], str]] = {
    ("nvidia", "x86_64"): "AL2023_x86_64_NVIDIA",
    ("nvidia", "arm64"): "AL2023_ARM_64_NVIDIA",
    ("neuron", "x86_64"): "AL2023_x86_64_NEURON",
}
RESOURCE_NAMES: Final = ACCELERATOR_RESOURCES


class AcceleratorError(ValueError):
    """Instance types that cannot form one accelerator pool; the message says why."""


@dataclass(frozen=True)
class PoolHardware:
    vendor: Vendor
    arch: Arch
    ami_type: str
    resource_name: str
    max_per_node: int
    """The most accelerators any instance type of the pool has."""
    efa_interfaces: int
    """EFA interfaces every instance type of the pool takes (the fewest of any); 0 if one of
    them has none."""
    gpu_model: str | None
    """The one NVIDIA GPU every instance type of the pool has; None for Neuron or a mix."""
    efa_interfaces_differ: bool
    """The instance types take different numbers of EFA interfaces: one launch template or
    node class cannot give each of them all of its own."""


def pool_hardware(instance_types: Sequence[str]) -> PoolHardware:
    unknown = [t for t in instance_types if t not in INSTANCE_TYPES]
    if unknown:
        raise AcceleratorError(
            f"not accelerator instance types: {', '.join(unknown)} (GPU pools take p4d/p5/p6, "
            "g4dn/g5/g5g/g6/g6e, trn1/trn2 or inf2 types)"
        )
    if not instance_types:
        raise AcceleratorError("a pool needs at least one instance type")
    shapes = [INSTANCE_TYPES[t] for t in instance_types]
    kinds = sorted({(s.vendor, s.arch) for s in shapes})
    if len(kinds) > 1:
        mixed = ", ".join(f"{vendor}/{arch}" for vendor, arch in kinds)
        raise AcceleratorError(
            f"instance types mix accelerator families ({mixed}): one AMI per pool"
        )
    vendor, arch = kinds[0]
    return PoolHardware(
        vendor=vendor,
        arch=arch,
        ami_type=AMI_TYPES[(vendor, arch)],
        resource_name=RESOURCE_NAMES[vendor],
        max_per_node=max(s.count for s in shapes),
        efa_interfaces=min(s.efa_interfaces for s in shapes),
        efa_interfaces_differ=len({s.efa_interfaces for s in shapes}) > 1,
        gpu_model=(
            models.pop()
            if len(models := {NVIDIA_GPU_MODELS.get(t.split(".")[0]) for t in instance_types}) == 1
            else None
        ),
    )
