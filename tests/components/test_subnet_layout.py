"""Subnet layout as plain data."""

from __future__ import annotations

import pytest

from components.subnet_layout import SubnetLayout, SubnetLayoutError, check_layout, subnet_layout


def test_a_16_gives_18s_for_pods_and_22s_for_load_balancers() -> None:
    layout = subnet_layout("10.40.0.0/16", 3)
    assert layout.private == ("10.40.0.0/18", "10.40.64.0/18", "10.40.128.0/18")
    assert layout.public == ("10.40.192.0/22", "10.40.196.0/22", "10.40.200.0/22")


def test_an_18_still_leaves_a_20_per_zone() -> None:
    layout = subnet_layout("10.40.0.0/18", 2)
    assert layout.private == ("10.40.0.0/20", "10.40.16.0/20")


def test_given_cidrs_are_checked_not_replaced() -> None:
    layout = subnet_layout(
        "10.0.0.0/16", 2, ["10.0.0.0/19", "10.0.32.0/19"], ["10.0.64.0/24", "10.0.65.0/24"]
    )
    assert layout.private == ("10.0.0.0/19", "10.0.32.0/19")


@pytest.mark.parametrize(
    ("layout", "problem"),
    [
        (
            SubnetLayout(("10.0.0.0/19",), ("10.0.64.0/24", "10.0.65.0/24")),
            "1 private subnets for 2",
        ),
        (
            SubnetLayout(("10.0.0.0/19", "10.1.0.0/19"), ("10.0.64.0/24", "10.0.65.0/24")),
            "outside the VPC",
        ),
        (
            SubnetLayout(("10.0.0.0/19", "10.0.16.0/20"), ("10.0.64.0/24", "10.0.65.0/24")),
            "overlap",
        ),
        (
            SubnetLayout(("10.0.0.0/21", "10.0.32.0/19"), ("10.0.64.0/24", "10.0.65.0/24")),
            "2048 addresses",
        ),
        (
            SubnetLayout(("10.0.0.0/19", "10.0.32.0/19"), ("10.0.64.0/27", "10.0.65.0/24")),
            "smaller than a /26",
        ),
    ],
)
def test_layouts_that_cannot_work_say_why(layout: SubnetLayout, problem: str) -> None:
    with pytest.raises(SubnetLayoutError, match=problem):
        check_layout("10.0.0.0/16", 2, layout)
