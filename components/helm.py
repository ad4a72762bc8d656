"""Helm releases of the charts the platform installs, from their chart contracts."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.pod_role import IrsaBinding, PodRole, PodRoleArgs
from mlops_guardrails.charts import ChartContract


def chart_release(
    name: str,
    contract: ChartContract,
    *,
    namespace: str,
    values: Mapping[str, Any],
    opts: pulumi.ResourceOptions,
    release_name: str | None = None,
) -> k8s.helm.v3.Release:
    """A release of exactly the chart version the contract describes, from its repository."""
    oci = contract.repository.startswith("oci://")
    return k8s.helm.v3.Release(
        name,
        name=release_name or contract.chart,
        chart=contract.repository if oci else contract.chart,
        version=contract.version,
        repository_opts=None if oci else k8s.helm.v3.RepositoryOptsArgs(repo=contract.repository),
        namespace=namespace,
        values=dict(values),
        opts=opts,
    )


@dataclass(frozen=True)
class ControllerInstall:
    """A platform controller's chart on the cluster: its version, the nodes it runs on, what
    it waits for, and the cluster its AWS role is bound in under the workload boundary."""

    chart: ChartContract
    cluster_name: pulumi.Input[str]
    cluster_arn: pulumi.Input[str]
    permissions_boundary_arn: pulumi.Input[str]
    node_selector: Mapping[str, str]
    install_after: Sequence[pulumi.Resource]
    """The system nodes and CoreDNS its pods need, and its namespace when the stack makes it."""
    tags: Mapping[str, str]


def controller_release(
    name: str,
    parent: pulumi.Resource,
    install: ControllerInstall,
    *,
    namespace: str,
    service_account: str,
    policy: pulumi.Input[dict[str, Any]],
    values: Callable[[pulumi.Output[str]], Mapping[str, Any]],
    irsa: IrsaBinding | None = None,
    release_name: str | None = None,
) -> None:
    """The controller's role, granted `policy` and bound to its service account (by Pod
    Identity, or IRSA where its SDK predates it), then its release, whose `values` may name the
    role's ARN; the pods start once the role and its binding exist."""
    role = PodRole(
        f"{name}-role",
        PodRoleArgs(
            cluster_name=install.cluster_name,
            cluster_arn=install.cluster_arn,
            namespace=namespace,
            service_account=service_account,
            permissions_boundary_arn=install.permissions_boundary_arn,
            inline_policy=policy,
            irsa=irsa,
            tags=install.tags,
        ),
        opts=pulumi.ResourceOptions(parent=parent),
    )
    chart_release(
        f"{name}-release",
        install.chart,
        namespace=namespace,
        values=values(role.role_arn),
        release_name=release_name,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[role, *install.install_after]),
    )
