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
    efa: bool
    """The instance type supports Elastic Fabric Adapter for multi-node training."""


def _sizes(
    vendor: Vendor, arch: Arch, family: str, sizes: dict[str, tuple[int, bool]]
) -> dict[str, Accelerators]:
    return {
        f"{family}.{size}": Accelerators(vendor, arch, count, efa)
        for size, (count, efa) in sizes.items()
    }


# Size: (accelerators per instance, EFA support), from the EC2 accelerated-computing pages.
_G_SERIES: Final = {
    "xlarge": (1, False),
    "2xlarge": (1, False),
    "4xlarge": (1, False),
    "8xlarge": (1, True),
    "12xlarge": (4, True),
    "16xlarge": (1, True),
    "24xlarge": (4, True),
    "48xlarge": (8, True),
}
INSTANCE_TYPES: Final[dict[str, Accelerators]] = {
    **_sizes("nvidia", "x86_64", "p4d", {"24xlarge": (8, True)}),
    **_sizes("nvidia", "x86_64", "p4de", {"24xlarge": (8, True)}),
    **_sizes("nvidia", "x86_64", "p5", {"4xlarge": (1, False), "48xlarge": (8, True)}),
    **_sizes("nvidia", "x86_64", "p5e", {"48xlarge": (8, True)}),
    **_sizes("nvidia", "x86_64", "p5en", {"48xlarge": (8, True)}),
    **_sizes("nvidia", "x86_64", "p6-b200", {"48xlarge": (8, True)}),
    **_sizes(
        "nvidia",
        "x86_64",
        "g4dn",
        {
            "xlarge": (1, False),
            "2xlarge": (1, False),
            "4xlarge": (1, False),
            "8xlarge": (1, True),
            "12xlarge": (4, True),
            "16xlarge": (1, True),
            "metal": (8, True),
        },
    ),
    **_sizes("nvidia", "x86_64", "g5", _G_SERIES),
    **_sizes("nvidia", "x86_64", "g6", _G_SERIES),
    **_sizes("nvidia", "x86_64", "g6e", _G_SERIES),
    **_sizes(
        "nvidia",
        "arm64",
        "g5g",
        {
            "xlarge": (1, False),
            "2xlarge": (1, False),
            "4xlarge": (1, False),
            "8xlarge": (1, False),
            "16xlarge": (2, False),
            "metal": (2, False),
        },
    ),
    **_sizes("neuron", "x86_64", "trn1", {"2xlarge": (1, False), "32xlarge": (16, True)}),
    **_sizes("neuron", "x86_64", "trn1n", {"32xlarge": (16, True)}),
    **_sizes("neuron", "x86_64", "trn2", {"48xlarge": (16, True)}),
    **_sizes(
        "neuron",
        "x86_64",
        "inf2",
        {
            "xlarge": (1, False),
            "8xlarge": (1, False),
            "24xlarge": (6, False),
            "48xlarge": (12, False),
        },
    ),
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
    efa: bool
    """Every instance type of the pool supports EFA."""


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
        efa=all(s.efa for s in shapes),
    )
