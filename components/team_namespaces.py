"""Team isolation on a shared GPU cluster: namespaces with accelerator quotas, default limits,
default-deny networking, and priority classes for training and inference."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

import pulumi
import pulumi_kubernetes as k8s

# Inference serves users and wins over training, which can checkpoint and resume.
PRIORITY_CLASSES: Final = {
    "gpu-inference": (100000, "Latency-bound model serving; may preempt training."),
    "gpu-training": (50000, "Batch and distributed training; resumable from checkpoints."),
}


@dataclass(frozen=True)
class TeamQuota:
    gpus: int
    neuron_devices: int = 0


@dataclass(frozen=True)
class TeamNamespacesArgs:
    teams: Mapping[str, TeamQuota]
    labels: Mapping[str, str] = field(default_factory=dict)


class TeamNamespaces(pulumi.ComponentResource):
    TYPE = "mlops:team_namespaces:TeamNamespaces"

    def __init__(
        self, name: str, args: TeamNamespacesArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(self.TYPE, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        labels = {"app.kubernetes.io/managed-by": "pulumi", **args.labels}
        for priority_class, (value, description) in PRIORITY_CLASSES.items():
            k8s.scheduling.v1.PriorityClass(
                f"{name}-{priority_class}",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=priority_class, labels=labels),
                value=value,
                description=description,
                preemption_policy="PreemptLowerPriority",
                global_default=False,
                opts=child,
            )
        for team, quota in sorted(args.teams.items()):
            namespace = k8s.core.v1.Namespace(
                f"{name}-{team}",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=team,
                    labels={
                        **labels,
                        "mlops.platform/team": team,
                        "pod-security.kubernetes.io/enforce": "baseline",
                        "pod-security.kubernetes.io/warn": "restricted",
                    },
                ),
                opts=child,
            )
            in_namespace = pulumi.ResourceOptions(parent=self, depends_on=[namespace])
            k8s.core.v1.ResourceQuota(
                f"{name}-{team}-accelerators",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name="accelerators", namespace=team, labels=labels
                ),
                spec=k8s.core.v1.ResourceQuotaSpecArgs(
                    hard={
                        "requests.nvidia.com/gpu": str(quota.gpus),
                        "requests.aws.amazon.com/neuron": str(quota.neuron_devices),
                    }
                ),
                opts=in_namespace,
            )
            # Pods that state no resources get modest defaults instead of unbounded ones.
            k8s.core.v1.LimitRange(
                f"{name}-{team}-defaults",
                metadata=k8s.meta.v1.ObjectMetaArgs(name="defaults", namespace=team, labels=labels),
                spec=k8s.core.v1.LimitRangeSpecArgs(
                    limits=[
                        k8s.core.v1.LimitRangeItemArgs(
                            type="Container",
                            default_request={"cpu": "250m", "memory": "512Mi"},
                            default={"cpu": "2", "memory": "8Gi"},
                        )
                    ]
                ),
                opts=in_namespace,
            )
            k8s.networking.v1.NetworkPolicy(
                f"{name}-{team}-default-deny",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name="default-deny", namespace=team, labels=labels
                ),
                spec=k8s.networking.v1.NetworkPolicySpecArgs(
                    pod_selector=k8s.meta.v1.LabelSelectorArgs(),
                    policy_types=["Ingress", "Egress"],
                ),
                opts=in_namespace,
            )
            # Deny-all egress would also cut off DNS; name resolution is the one exception.
            k8s.networking.v1.NetworkPolicy(
                f"{name}-{team}-allow-dns",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name="allow-dns", namespace=team, labels=labels
                ),
                spec=k8s.networking.v1.NetworkPolicySpecArgs(
                    pod_selector=k8s.meta.v1.LabelSelectorArgs(),
                    policy_types=["Egress"],
                    egress=[
                        k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                            to=[
                                k8s.networking.v1.NetworkPolicyPeerArgs(
                                    namespace_selector=k8s.meta.v1.LabelSelectorArgs(
                                        match_labels={"kubernetes.io/metadata.name": "kube-system"}
                                    ),
                                    pod_selector=k8s.meta.v1.LabelSelectorArgs(
                                        match_labels={"k8s-app": "kube-dns"}
                                    ),
                                )
                            ],
                            ports=[
                                k8s.networking.v1.NetworkPolicyPortArgs(protocol=p, port=53)
                                for p in ("UDP", "TCP")
                            ],
                        )
                    ],
                ),
                opts=in_namespace,
            )
        self.register_outputs({})
