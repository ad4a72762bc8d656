"""KEDA: scales model services on their serving load, read from the platform's Prometheus.

A model service's ScaledObject names a query over its servers' requests in flight; KEDA's
operator runs it against the workspace (signed with SigV4 through its own Pod Identity role,
KEDA 2.20's AWS SDK for Go v2) and drives the Deployment's or Rollout's HPA. Its
TriggerAuthentications name `podIdentity: aws` with the operator as the identity owner: a
workload's own role would need IRSA (kedacore/keda#6418).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import pulumi

from components.helm import chart_release
from components.pod_role import PodRole, PodRoleArgs
from components.policy_documents import prometheus_query_policy
from mlops_guardrails.charts import ChartContract

NAMESPACE: Final = "kube-system"
OPERATOR_ACCOUNT: Final = "keda-operator"


@dataclass(frozen=True)
class KedaArgs:
    cluster_name: pulumi.Input[str]
    cluster_arn: pulumi.Input[str]
    permissions_boundary_arn: pulumi.Input[str]
    workspace_arn: pulumi.Input[str]
    """The Prometheus workspace scalers query."""
    chart: ChartContract
    node_selector: Mapping[str, str]
    install_after: Sequence[pulumi.Resource]
    tags: Mapping[str, str]


class Keda(pulumi.ComponentResource):
    TYPE = "mlops:keda:Keda"

    def __init__(
        self, name: str, args: KedaArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(self.TYPE, name, None, opts)
        role = PodRole(
            f"{name}-role",
            PodRoleArgs(
                cluster_name=args.cluster_name,
                cluster_arn=args.cluster_arn,
                namespace=NAMESPACE,
                service_account=OPERATOR_ACCOUNT,
                permissions_boundary_arn=args.permissions_boundary_arn,
                inline_policy=pulumi.Output.from_input(args.workspace_arn).apply(
                    prometheus_query_policy
                ),
                tags=args.tags,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        on_system_nodes = {"nodeSelector": dict(args.node_selector)}
        chart_release(
            f"{name}-release",
            args.chart,
            namespace=NAMESPACE,
            values={
                "operator": on_system_nodes,
                "metricsServer": on_system_nodes,
                "webhooks": on_system_nodes,
                "serviceAccount": {"operator": {"create": True, "name": OPERATOR_ACCOUNT}},
            },
            # The operator's Pod Identity association must exist before it starts.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[role, *args.install_after]),
        )
        self.register_outputs({})
