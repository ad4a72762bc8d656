"""KEDA: scales model services on their serving load, read from the platform's Prometheus.

A model service's ScaledObject names a query over its servers' requests in flight; KEDA's
operator runs it against the workspace (signed with SigV4 through its own Pod Identity role,
KEDA 2.20's AWS SDK for Go v2) and drives the Deployment's or Rollout's HPA. Its
TriggerAuthentications name `podIdentity: aws` with the operator as the identity owner: a
workload's own role would need IRSA (kedacore/keda#6418).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import pulumi

from components.helm import ControllerInstall, controller_release
from components.policy_documents import prometheus_query_policy

NAMESPACE: Final = "kube-system"
OPERATOR_ACCOUNT: Final = "keda-operator"


@dataclass(frozen=True)
class KedaArgs:
    install: ControllerInstall
    workspace_arn: pulumi.Input[str]
    """The Prometheus workspace scalers query."""


class Keda(pulumi.ComponentResource):
    TYPE = "mlops:keda:Keda"

    def __init__(
        self, name: str, args: KedaArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(self.TYPE, name, None, opts)
        on_system_nodes = {"nodeSelector": dict(args.install.node_selector)}
        controller_release(
            name,
            self,
            args.install,
            namespace=NAMESPACE,
            service_account=OPERATOR_ACCOUNT,
            policy=pulumi.Output.from_input(args.workspace_arn).apply(prometheus_query_policy),
            values=lambda _: {
                "operator": on_system_nodes,
                "metricsServer": on_system_nodes,
                "webhooks": on_system_nodes,
                "serviceAccount": {"operator": {"create": True, "name": OPERATOR_ACCOUNT}},
            },
        )
        self.register_outputs({})
