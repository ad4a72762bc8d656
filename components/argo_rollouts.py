"""Argo Rollouts: the controller that takes a model service's new version out as a canary.

It moves the canary's share of traffic in the steps a Rollout names (through the ALB's weighted
target groups: see components/load_balancer_controller.py), runs the Rollout's analysis against
the platform's Prometheus workspace while it does, and on a failed analysis aborts: the traffic
returns to the stable version as it scales back up (model services scale it down as it gives up
traffic: components/canary.py), and the canary is scaled down.

Its analysis queries the workspace signed with SigV4 by AWS SDK for Go v1.44 (v1.9.0's
prometheus/common sigv4), which predates EKS Pod Identity (v1.47.11 is the first that reads its
credentials, argoproj/argo-rollouts#4536): the controller's role is bound by IRSA instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import pulumi

from components.helm import ControllerInstall, controller_release
from components.pod_role import IrsaBinding
from components.policy_documents import rollouts_controller_policy

NAMESPACE: Final = "kube-system"
SERVICE_ACCOUNT: Final = "argo-rollouts"
# Only the routers the platform installs: the chart grants every provider's resources otherwise.
TRAFFIC_ROUTERS: Final = (
    "ambassador",
    "apisix",
    "awsAppMesh",
    "awsLoadBalancerController",
    "contour",
    "gatewayAPI",
    "glooPlatform",
    "istio",
    "smi",
    "traefik",
)


@dataclass(frozen=True)
class ArgoRolloutsArgs:
    install: ControllerInstall
    irsa: IrsaBinding
    workspace_arn: pulumi.Input[str]
    """The Prometheus workspace analyses query."""
    region: pulumi.Input[str]


class ArgoRollouts(pulumi.ComponentResource):
    TYPE = "mlops:argo_rollouts:ArgoRollouts"

    def __init__(
        self, name: str, args: ArgoRolloutsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(self.TYPE, name, None, opts)
        controller_release(
            name,
            self,
            args.install,
            namespace=NAMESPACE,
            service_account=SERVICE_ACCOUNT,
            policy=pulumi.Output.from_input(args.workspace_arn).apply(rollouts_controller_policy),
            irsa=args.irsa,
            values=lambda role_arn: {
                "controller": {
                    "nodeSelector": dict(args.install.node_selector),
                    # The SDK finds its region here, not in a flag (v1.9.0 has none).
                    "extraEnv": [{"name": "AWS_REGION", "value": args.region}],
                    "resources": {
                        "requests": {"cpu": "100m", "memory": "256Mi"},
                        "limits": {"memory": "512Mi"},
                    },
                    # Its pods' metrics port (the platform's scraper reads rollout_info there).
                    "metrics": {"enabled": True},
                    # Each weight step completes only once the ALB carries that weight, and an
                    # old version scales down only once the new one's targets are registered.
                    # (A canary's pods get no readiness gates: no target group selects them at
                    # creation.)
                    "awsVerifyTargetGroup": True,
                },
                "serviceAccount": {
                    "create": True,
                    "name": SERVICE_ACCOUNT,
                    "annotations": {"eks.amazonaws.com/role-arn": role_arn},
                },
                "providerRBAC": {
                    "enabled": True,
                    "providers": {
                        router: router == "awsLoadBalancerController" for router in TRAFFIC_ROUTERS
                    },
                },
            },
        )
        self.register_outputs({})
