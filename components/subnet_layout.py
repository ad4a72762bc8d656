"""Subnet CIDRs for a VPC, derived or given, and the checks that keep them usable for EKS.

The VPC CNI gives every pod a VPC address, so private subnets must be large: derived layouts
split the VPC into quarters, one private quarter per AZ (up to three), and carve the public
subnets, which only hold NAT gateways and load balancers, from the last quarter.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

MAX_DERIVED_AZS = 3
MIN_PRIVATE_ADDRESSES = 4096
"""A private subnet must hold a node group's worth of pods (a /20)."""
MIN_PUBLIC_ADDRESSES = 64
PUBLIC_PREFIX_EXTRA_BITS = 6


class SubnetLayoutError(ValueError):
    """A layout that cannot work; the message says why."""


@dataclass(frozen=True)
class SubnetLayout:
    private: tuple[str, ...]
    public: tuple[str, ...]


def subnet_layout(
    vpc_cidr: str,
    az_count: int,
    private: Sequence[str] | None = None,
    public: Sequence[str] | None = None,
) -> SubnetLayout:
    """One private and one public subnet per AZ, derived from the VPC CIDR unless given."""
    vpc = ipaddress.IPv4Network(vpc_cidr)
    if private is None or public is None:
        if az_count > MAX_DERIVED_AZS:
            raise SubnetLayoutError(
                f"derived subnets cover at most {MAX_DERIVED_AZS} AZs; list the subnet CIDRs"
            )
        quarters = list(vpc.subnets(prefixlen_diff=2))
        derived_private = [str(q) for q in quarters[:az_count]]
        derived_public = [
            str(s) for s in quarters[-1].subnets(prefixlen_diff=PUBLIC_PREFIX_EXTRA_BITS - 2)
        ][:az_count]
        private = private if private is not None else derived_private
        public = public if public is not None else derived_public
    layout = SubnetLayout(private=tuple(private), public=tuple(public))
    check_layout(vpc_cidr, az_count, layout)
    return layout


def check_layout(vpc_cidr: str, az_count: int, layout: SubnetLayout) -> None:
    vpc = ipaddress.IPv4Network(vpc_cidr)
    problems = []
    for kind, cidrs in (("private", layout.private), ("public", layout.public)):
        if len(cidrs) != az_count:
            problems.append(f"{len(cidrs)} {kind} subnets for {az_count} availability zones")
    networks = {cidr: ipaddress.IPv4Network(cidr) for cidr in (*layout.private, *layout.public)}
    for cidr, network in networks.items():
        if not network.subnet_of(vpc):
            problems.append(f"subnet {cidr} is outside the VPC {vpc_cidr}")
    for (a, net_a), (b, net_b) in combinations(networks.items(), 2):
        if net_a.overlaps(net_b):
            problems.append(f"subnets {a} and {b} overlap")
    for cidr in layout.private:
        if networks[cidr].num_addresses < MIN_PRIVATE_ADDRESSES:
            problems.append(
                f"private subnet {cidr} has {networks[cidr].num_addresses} addresses; pods need "
                f"at least {MIN_PRIVATE_ADDRESSES} (a /20) per subnet"
            )
    for cidr in layout.public:
        if networks[cidr].num_addresses < MIN_PUBLIC_ADDRESSES:
            problems.append(f"public subnet {cidr} is smaller than a /26")
    if problems:
        raise SubnetLayoutError("; ".join(problems))
