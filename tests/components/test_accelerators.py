"""The accelerator catalog as plain data."""

from __future__ import annotations

import pytest

from components.accelerators import AcceleratorError, pool_hardware


@pytest.mark.parametrize(
    ("types", "ami", "resource", "per_node", "efa_interfaces"),
    [
        (["p5.48xlarge"], "AL2023_x86_64_NVIDIA", "nvidia.com/gpu", 8, 32),
        (["g5g.xlarge", "g5g.16xlarge"], "AL2023_ARM_64_NVIDIA", "nvidia.com/gpu", 2, 0),
        (["trn1.32xlarge"], "AL2023_x86_64_NEURON", "aws.amazon.com/neuron", 16, 8),
        (["g6.xlarge", "g6.48xlarge"], "AL2023_x86_64_NVIDIA", "nvidia.com/gpu", 8, 0),
    ],
)
def test_hardware_follows_from_the_instance_types(
    types: list[str], ami: str, resource: str, per_node: int, efa_interfaces: int
) -> None:
    hardware = pool_hardware(types)
    assert (
        hardware.ami_type,
        hardware.resource_name,
        hardware.max_per_node,
        hardware.efa_interfaces,
    ) == (ami, resource, per_node, efa_interfaces)


@pytest.mark.parametrize(
    ("instance_type", "interfaces"),
    [
        ("p5.48xlarge", 32),
        ("p5e.48xlarge", 32),
        ("p5en.48xlarge", 16),
        ("p4d.24xlarge", 4),
        ("p6-b200.48xlarge", 8),
        ("trn1.32xlarge", 8),
        ("trn1n.32xlarge", 16),
        ("g6e.48xlarge", 4),
        ("g6e.24xlarge", 2),
        ("g6.48xlarge", 1),
        ("g6.4xlarge", 0),
    ],
)
def test_efa_pools_get_one_interface_per_network_card(instance_type: str, interfaces: int) -> None:
    """EC2's MaximumEfaInterfaces, as Karpenter v1.12.1's generated instance-type reference
    lists it (`vpc.amazonaws.com/efa`); each equals the type's network cards in the VPC CNI's
    generated limits. A p5.48xlarge with one interface uses 1/32 of its fabric."""
    assert pool_hardware([instance_type]).efa_interfaces == interfaces


def test_a_pool_mixing_efa_fabrics_says_so() -> None:
    hardware = pool_hardware(["p5.48xlarge", "p5en.48xlarge"])
    assert (hardware.efa_interfaces, hardware.efa_interfaces_differ) == (16, True)


def test_arm_and_x86_nvidia_types_do_not_mix() -> None:
    with pytest.raises(AcceleratorError, match="mix accelerator families"):
        pool_hardware(["g5g.xlarge", "g5.xlarge"])


@pytest.mark.parametrize(
    ("types", "model"),
    [
        (["p5.48xlarge"], "h100"),
        (["g6.xlarge", "g6.12xlarge"], "l4"),
        (["g5.xlarge", "g6.xlarge"], None),
        (["trn1.32xlarge"], None),
    ],
)
def test_a_pool_names_its_gpu_model_when_all_its_types_share_one(
    types: list[str], model: str | None
) -> None:
    """Karpenter v1.12.1's instance-type reference, `karpenter.k8s.aws/instance-gpu-name`."""
    assert pool_hardware(types).gpu_model == model
