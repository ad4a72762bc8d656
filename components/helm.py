"""Helm releases of the charts the platform installs, from their chart contracts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

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
