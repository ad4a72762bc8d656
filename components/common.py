"""Helpers every component shares: who the account is, and how stateful children are guarded."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import pulumi
import pulumi_aws as aws


class ComponentArgsError(pulumi.RunError):
    """Conflicting or out-of-range component arguments, raised before any child is created.

    A RunError, so `pulumi up` reports it without a traceback.
    """

    def __init__(self, type_token: str, name: str, problem: str) -> None:
        super().__init__(f"{type_token} '{name}': {problem}")


@dataclass(frozen=True)
class AccountContext:
    account_id: pulumi.Output[str]
    partition: pulumi.Output[str]
    region: pulumi.Output[str]


def account_context(parent: pulumi.Resource) -> AccountContext:
    """The deploying account, partition and region, looked up by the parent's provider."""
    invoke_opts = pulumi.InvokeOptions(parent=parent)
    identity = aws.get_caller_identity_output(opts=invoke_opts)
    partition = aws.get_partition_output(opts=invoke_opts)
    region = aws.get_region_output(opts=invoke_opts)
    return AccountContext(
        account_id=identity.account_id, partition=partition.partition, region=region.region
    )


def stateful_options(
    parent: pulumi.Resource, protect: bool, depends_on: Sequence[pulumi.Resource] = ()
) -> pulumi.ResourceOptions:
    """Options for a child that holds data: protected stacks refuse to delete or replace it,
    and if it ever leaves the stack it stays in AWS rather than being deleted."""
    return pulumi.ResourceOptions(
        parent=parent, protect=protect, retain_on_delete=protect, depends_on=list(depends_on)
    )


def encrypted_log_group(
    resource_name: str,
    parent: pulumi.Resource,
    *,
    kms_key_arn: pulumi.Input[str],
    retention_days: int,
    tags: Mapping[str, str],
    protect: bool,
    log_group_name: pulumi.Input[str] | None = None,
) -> aws.cloudwatch.LogGroup:
    """A KMS-encrypted log group with a retention; protected stacks cannot delete it either way."""
    return aws.cloudwatch.LogGroup(
        resource_name,
        name=log_group_name,
        kms_key_id=kms_key_arn,
        retention_in_days=retention_days,
        deletion_protection_enabled=protect,
        tags=dict(tags),
        opts=stateful_options(parent, protect),
    )


HTTPS: Final = 443


def https_ingress(
    resource_name: str,
    parent: pulumi.Resource,
    *,
    security_group_id: pulumi.Input[str],
    description: str,
    tags: Mapping[str, str],
    cidr: str | None = None,
    source_group_id: pulumi.Input[str] | None = None,
) -> aws.vpc.SecurityGroupIngressRule:
    """One rule admitting HTTPS to a security group, from a network or from another group."""
    return aws.vpc.SecurityGroupIngressRule(
        resource_name,
        security_group_id=security_group_id,
        description=description,
        ip_protocol="tcp",
        from_port=HTTPS,
        to_port=HTTPS,
        cidr_ipv4=cidr,
        referenced_security_group_id=source_group_id,
        tags=dict(tags),
        opts=pulumi.ResourceOptions(parent=parent),
    )


def availability_zone_names(opts: pulumi.InvokeOptions) -> pulumi.Output[list[str]]:
    """The region's zones open to every account, in name order (opt-in Local Zones left out)."""
    zones = aws.get_availability_zones_output(
        state="available",
        filters=[
            aws.GetAvailabilityZonesFilterArgs(name="opt-in-status", values=["opt-in-not-required"])
        ],
        opts=opts,
    )
    return zones.names
