"""The accelerator catalog as plain data."""

from __future__ import annotations

import pytest

from components.accelerators import AcceleratorError, pool_hardware


@pytest.mark.parametrize(
    ("types", "ami", "resource", "per_node", "efa"),
    [
        (["p5.48xlarge"], "AL2023_x86_64_NVIDIA", "nvidia.com/gpu", 8, True),
        (["g5g.xlarge", "g5g.16xlarge"], "AL2023_ARM_64_NVIDIA", "nvidia.com/gpu", 2, False),
        (["trn1.32xlarge"], "AL2023_x86_64_NEURON", "aws.amazon.com/neuron", 16, True),
        (["g6.xlarge", "g6.48xlarge"], "AL2023_x86_64_NVIDIA", "nvidia.com/gpu", 8, False),
    ],
)
def test_hardware_follows_from_the_instance_types(
    types: list[str], ami: str, resource: str, per_node: int, efa: bool
) -> None:
    hardware = pool_hardware(types)
    assert (hardware.ami_type, hardware.resource_name, hardware.max_per_node, hardware.efa) == (
        ami,
        resource,
        per_node,
        efa,
    )


def test_arm_and_x86_nvidia_types_do_not_mix() -> None:
    with pytest.raises(AcceleratorError, match="mix accelerator families"):
        pool_hardware(["g5g.xlarge", "g5.xlarge"])
