"""The Kubernetes cluster autoscaler for managed node groups, on a least-privilege role."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import pulumi

from components.common import account_context
from components.helm import chart_release
from components.pod_role import PodRole, PodRoleArgs
from components.policy_documents import cluster_autoscaler_policy
from mlops_guardrails.charts import ChartContract, image_tag

NAMESPACE: Final = "kube-system"
SERVICE_ACCOUNT: Final = "cluster-autoscaler"


@dataclass(frozen=True)
class ClusterAutoscalerArgs:
    cluster_name: str
    cluster_arn: pulumi.Input[str]
    permissions_boundary_arn: pulumi.Input[str]
    chart: ChartContract
    kubernetes_version: str
    """The autoscaler is built per Kubernetes minor: it runs the release built for this one."""
    node_selector: Mapping[str, str]
    """Run on the system nodes, never on the GPU nodes it scales."""
    install_after: Sequence[pulumi.Resource]
    """What its releases wait for: the system nodes and CoreDNS their pods need, and the namespace
    they install into when the stack makes it."""
    tags: Mapping[str, str]


class ClusterAutoscaler(pulumi.ComponentResource):
    TYPE = "mlops:cluster_autoscaler:ClusterAutoscaler"

    def __init__(
        self, name: str, args: ClusterAutoscalerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(self.TYPE, name, None, opts)
        account = account_context(self)
        role = PodRole(
            f"{name}-role",
            PodRoleArgs(
                cluster_name=args.cluster_name,
                cluster_arn=args.cluster_arn,
                namespace=NAMESPACE,
                service_account=SERVICE_ACCOUNT,
                permissions_boundary_arn=args.permissions_boundary_arn,
                inline_policy=pulumi.Output.all(
                    account.account_id, account.partition, account.region
                ).apply(
                    lambda v: cluster_autoscaler_policy(
                        cluster_name=args.cluster_name, account_id=v[0], partition=v[1], region=v[2]
                    )
                ),
                tags=args.tags,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        chart_release(
            f"{name}-release",
            args.chart,
            namespace=NAMESPACE,
            values={
                "image": image_tag(args.chart, args.kubernetes_version),
                "autoDiscovery": {"clusterName": args.cluster_name},
                "awsRegion": account.region,
                "rbac": {"serviceAccount": {"create": True, "name": SERVICE_ACCOUNT}},
                "nodeSelector": dict(args.node_selector),
                "extraArgs": {
                    "balance-similar-node-groups": True,
                    # Of the pools that fit, pick the one that wastes least: keeps small
                    # inference pods off 8-GPU training nodes.
                    "expander": "least-waste",
                    "skip-nodes-with-system-pods": False,
                    "scale-down-unneeded-time": "10m",
                },
            },
            # The role's Pod Identity association must exist before the pods start.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[role, *args.install_after]),
        )
        self.register_outputs({})
