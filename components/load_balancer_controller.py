"""The AWS Load Balancer Controller: ALBs for model services, whose weighted target groups split
a canary's traffic in exact shares whatever the replica counts (Argo Rollouts sets the weights).

Why an ALB router rather than a service mesh: canary weights are all a model service needs of
L7 routing, and the ALB does it without a sidecar in every GPU pod. Flagger has no ALB router
(fluxcd/flagger#659), and Argo Rollouts without one can only approximate shares by replica
counts, which for GPU replicas means steps of a whole accelerator.

Its pods reach targets by IP; the ALBs sit in the public subnets (internal or internet-facing),
so a team namespace admits them with `fromPublicSubnets` without admitting any pod.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import pulumi

from components.common import account_context
from components.helm import ControllerInstall, controller_release
from components.policy_documents import load_balancer_controller_policy

NAMESPACE: Final = "kube-system"
SERVICE_ACCOUNT: Final = "aws-load-balancer-controller"
INGRESS_CLASS: Final = "alb"


@dataclass(frozen=True)
class LoadBalancerControllerArgs:
    install: ControllerInstall
    vpc_id: pulumi.Input[str]


class LoadBalancerController(pulumi.ComponentResource):
    TYPE = "mlops:load_balancer_controller:LoadBalancerController"

    def __init__(
        self,
        name: str,
        args: LoadBalancerControllerArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(self.TYPE, name, None, opts)
        account = account_context(self)
        controller_release(
            name,
            self,
            args.install,
            namespace=NAMESPACE,
            service_account=SERVICE_ACCOUNT,
            policy=pulumi.Output.all(
                account.partition, account.account_id, account.region, args.vpc_id
            ).apply(
                lambda v: load_balancer_controller_policy(
                    partition=v[0], account_id=v[1], region=v[2], vpc_id=v[3]
                )
            ),
            values=lambda _: {
                "clusterName": args.install.cluster_name,
                # Nodes allow one metadata hop, so the pods cannot ask IMDS for either.
                "region": account.region,
                "vpcId": args.vpc_id,
                "serviceAccount": {"create": True, "name": SERVICE_ACCOUNT},
                "nodeSelector": dict(args.install.node_selector),
                "defaultTargetType": "ip",
                # Its Service webhook fails closed in every namespace: while the controller was
                # down no Service could be created anywhere. The platform makes no NLBs.
                "enableServiceMutatorWebhook": False,
                "enableShield": False,
                "enableWaf": False,
                "enableWafv2": False,
                "podDisruptionBudget": {"maxUnavailable": 1},
                "resources": {
                    "requests": {"cpu": "100m", "memory": "128Mi"},
                    "limits": {"memory": "512Mi"},
                },
                # What the chart leaves out of the restricted Pod Security level.
                "securityContext": {
                    "readOnlyRootFilesystem": True,
                    "runAsNonRoot": True,
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"]},
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
            },
        )
        self.register_outputs({})
