"""Team isolation on a shared GPU cluster: namespaces with accelerator quotas, default limits,
default-deny networking, and priority classes for training and inference."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

import pulumi
import pulumi_kubernetes as k8s

from components.load_balancer_controller import INGRESS_CLASS
from mlops_guardrails.vocabulary import (
    ALB_ANNOTATIONS,
    DROP_INVALID_HEADERS,
    ELB_TLS_POLICIES,
    INGRESS_ANNOTATION,
    MODEL_SERVER_LABELS,
    POD_IDENTITY_AGENT_CIDR,
    POD_IDENTITY_AGENT_PORT,
    TEAM_LABEL,
)

AwsBinding = Literal["pod-identity", "irsa"]
READINESS_GATE_LABEL: Final = "elbv2.k8s.aws/pod-readiness-gate-inject"
"""The AWS Load Balancer Controller adds target-health readiness gates to pods of namespaces so
labelled (its pod webhook, failing open)."""

INFERENCE_PRIORITY: Final = "gpu-inference"
# Inference serves users and wins over training, which can checkpoint and resume.
PRIORITY_CLASSES: Final = {
    INFERENCE_PRIORITY: (100000, "Latency-bound model serving; may preempt training."),
    "gpu-training": (50000, "Batch and distributed training; resumable from checkpoints."),
}


def _annotation(key: str, default: str) -> str:
    """CEL for an object's annotation, or a default when it has none."""
    full = f"{ALB_ANNOTATIONS}/{key}"
    return (
        f"(has(object.metadata.annotations) && '{full}' in object.metadata.annotations ? "
        f"object.metadata.annotations['{full}'] : '{default}')"
    )


# What the API server refuses in a team namespace, whoever asks (a team's deployer included):
# the ways out of the namespace's isolation a Service or an Ingress could open, which the pack
# judges only where a team's CI runs it. (CEL, Kubernetes ValidatingAdmissionPolicy.)
ADMISSION_RULES: Final[Mapping[str, tuple[tuple[str, str, str], tuple[tuple[str, str], ...]]]] = {
    "services": (
        ("", "v1", "services"),
        (
            (
                "!has(object.spec.type) || object.spec.type == 'ClusterIP'",
                "a team's Services are ClusterIP: load balancers come through an ALB Ingress",
            ),
            (
                # An external IP captures every pod's traffic to that address (CVE-2020-8554).
                "!has(object.spec.externalIPs) || size(object.spec.externalIPs) == 0",
                "a team's Services claim no external IPs",
            ),
        ),
    ),
    "ingresses": (
        ("networking.k8s.io", "v1", "ingresses"),
        (
            (
                "has(object.spec.ingressClassName) && "
                f"object.spec.ingressClassName == '{INGRESS_CLASS}'",
                f"a team's Ingresses are the platform's ALBs (ingressClassName: {INGRESS_CLASS})",
            ),
            (
                f"{_annotation('group.name', '')} == ''",
                "an ALB is not shared with other Ingresses (group.name)",
            ),
            (
                f"{_annotation('load-balancer-attributes', '')}.contains('{DROP_INVALID_HEADERS}')",
                "the ALB drops invalid header fields (load-balancer-attributes)",
            ),
            (
                f"{_annotation('scheme', 'internal')} != 'internet-facing' || "
                f"({_annotation('listen-ports', '')} == '[{{\"HTTPS\": 443}}]' && "
                f"{_annotation('ssl-policy', '')} in {sorted(ELB_TLS_POLICIES)})",
                "an internet-facing ALB listens on HTTPS 443 only, with a TLS 1.3 policy",
            ),
        ),
    ),
    # A new version goes out judged: editing the analysis out of a Rollout would skip it.
    "rollouts": (
        ("argoproj.io", "v1alpha1", "rollouts"),
        (
            (
                "has(object.spec.strategy) && has(object.spec.strategy.canary) && "
                "has(object.spec.strategy.canary.trafficRouting) && "
                "has(object.spec.strategy.canary.analysis)",
                "a team's Rollouts are canaries moved by a traffic router and judged by an "
                "analysis",
            ),
            (
                "!has(object.spec.strategy.canary.analysis) || "
                "(has(object.spec.strategy.canary.analysis.templates) && "
                "size(object.spec.strategy.canary.analysis.templates) > 0 && "
                "!has(object.spec.strategy.canary.analysis.dryRun))",
                "a Rollout's analysis names its templates and is not a dry run",
            ),
        ),
    ),
}


@dataclass(frozen=True)
class TeamQuota:
    gpus: int
    neuron_devices: int = 0


@dataclass(frozen=True)
class IngressRule:
    """Connections a team namespace accepts."""

    ports: Sequence[int]
    namespaces: Sequence[str] = ()
    """Namespaces whose pods may connect; a team namespace among them may send to these ports."""
    cidrs: pulumi.Input[Sequence[str]] = ()
    """Addresses outside the cluster (load balancer subnets, a VPN)."""


@dataclass(frozen=True)
class Team:
    quota: TeamQuota
    aws_bindings: frozenset[AwsBinding] = frozenset()
    """How the namespace's pods hold AWS roles, if they do: they then need HTTPS out, and
    pods bound through Pod Identity its agent."""
    ingress: Sequence[IngressRule] = ()
    scraped_ports: Sequence[int] = ()
    """Ports its model servers answer and report metrics on: the metrics namespace's agent may
    connect to them."""


@dataclass(frozen=True)
class TeamNamespacesArgs:
    teams: Mapping[str, Team]
    metrics_namespace: str
    """Where the agent that scrapes model servers runs."""
    labels: Mapping[str, str] = field(default_factory=dict)


def _declared(rules: Sequence[IngressRule]) -> pulumi.Output[str]:
    """The namespace's declared callers, as an annotation: who may connect, and the pack's
    reachability rule checks the network policies against it."""
    return pulumi.Output.json_dumps(
        [
            {
                "ports": list(rule.ports),
                "fromNamespaces": list(rule.namespaces),
                "fromCidrs": rule.cidrs,
            }
            for rule in rules
        ]
    )


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
        for team_name, team in sorted(args.teams.items()):
            self._team(name, team_name, team, args, labels)
        self._admission(name, labels)
        self.register_outputs({})

    def _admission(self, name: str, labels: Mapping[str, str]) -> None:
        """The API server's own refusals in every team namespace (ADMISSION_RULES)."""
        child = pulumi.ResourceOptions(parent=self)
        in_team_namespaces = k8s.meta.v1.LabelSelectorArgs(
            match_expressions=[
                k8s.meta.v1.LabelSelectorRequirementArgs(key=TEAM_LABEL, operator="Exists")
            ]
        )
        for kind, ((group, version, resource), rules) in ADMISSION_RULES.items():
            policy = k8s.admissionregistration.v1.ValidatingAdmissionPolicy(
                f"{name}-{kind}-admission",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=f"team-{kind}", labels=labels),
                spec=k8s.admissionregistration.v1.ValidatingAdmissionPolicySpecArgs(
                    failure_policy="Fail",
                    match_constraints=k8s.admissionregistration.v1.MatchResourcesArgs(
                        namespace_selector=in_team_namespaces,
                        resource_rules=[
                            k8s.admissionregistration.v1.NamedRuleWithOperationsArgs(
                                api_groups=[group],
                                api_versions=[version],
                                operations=["CREATE", "UPDATE"],
                                resources=[resource],
                            )
                        ],
                    ),
                    validations=[
                        k8s.admissionregistration.v1.ValidationArgs(
                            expression=expression, message=message
                        )
                        for expression, message in rules
                    ],
                ),
                opts=child,
            )
            k8s.admissionregistration.v1.ValidatingAdmissionPolicyBinding(
                f"{name}-{kind}-admission",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=f"team-{kind}", labels=labels),
                spec=k8s.admissionregistration.v1.ValidatingAdmissionPolicyBindingSpecArgs(
                    policy_name=policy.metadata.name, validation_actions=["Deny"]
                ),
                opts=child,
            )

    def _team(
        self,
        name: str,
        team_name: str,
        team: Team,
        args: TeamNamespacesArgs,
        labels: Mapping[str, str],
    ) -> None:
        namespace = k8s.core.v1.Namespace(
            f"{name}-{team_name}",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=team_name,
                labels={
                    **labels,
                    TEAM_LABEL: team_name,
                    "pod-security.kubernetes.io/enforce": "baseline",
                    "pod-security.kubernetes.io/warn": "restricted",
                    # Model servers behind ALBs: a pod is ready only once its target is healthy
                    # in the ALB, so a rollout never removes the last healthy target first.
                    **({READINESS_GATE_LABEL: "enabled"} if team.scraped_ports else {}),
                },
                annotations={INGRESS_ANNOTATION: _declared(team.ingress)},
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        in_namespace = pulumi.ResourceOptions(parent=self, depends_on=[namespace])
        k8s.core.v1.ResourceQuota(
            f"{name}-{team_name}-accelerators",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name="accelerators", namespace=team_name, labels=labels
            ),
            spec=k8s.core.v1.ResourceQuotaSpecArgs(
                hard={
                    "requests.nvidia.com/gpu": str(team.quota.gpus),
                    "requests.aws.amazon.com/neuron": str(team.quota.neuron_devices),
                }
            ),
            opts=in_namespace,
        )
        # Pods that state no resources get modest defaults instead of unbounded ones.
        k8s.core.v1.LimitRange(
            f"{name}-{team_name}-defaults",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name="defaults", namespace=team_name, labels=labels
            ),
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
        policies = network_policies(team_name, team, args.teams, args.metrics_namespace)
        for policy, spec in policies.items():
            k8s.networking.v1.NetworkPolicy(
                f"{name}-{team_name}-{policy}",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=policy, namespace=team_name, labels=labels
                ),
                spec=spec,
                opts=in_namespace,
            )


def _namespace_peer(namespace: str) -> k8s.networking.v1.NetworkPolicyPeerArgs:
    return k8s.networking.v1.NetworkPolicyPeerArgs(
        namespace_selector=k8s.meta.v1.LabelSelectorArgs(
            match_labels={"kubernetes.io/metadata.name": namespace}
        )
    )


def _sources(rule: IngressRule) -> pulumi.Output[list[k8s.networking.v1.NetworkPolicyPeerArgs]]:
    def peers(cidrs: Sequence[str]) -> list[k8s.networking.v1.NetworkPolicyPeerArgs]:
        return [
            *(_namespace_peer(n) for n in rule.namespaces),
            *(
                k8s.networking.v1.NetworkPolicyPeerArgs(
                    ip_block=k8s.networking.v1.IPBlockArgs(cidr=cidr)
                )
                for cidr in cidrs
            ),
        ]

    return pulumi.Output.from_input(rule.cidrs).apply(peers)


def _tcp(*ports: int) -> list[k8s.networking.v1.NetworkPolicyPortArgs]:
    return [k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=port) for port in ports]


def _egress(
    *rules: k8s.networking.v1.NetworkPolicyEgressRuleArgs,
) -> k8s.networking.v1.NetworkPolicySpecArgs:
    return k8s.networking.v1.NetworkPolicySpecArgs(
        pod_selector=k8s.meta.v1.LabelSelectorArgs(), policy_types=["Egress"], egress=list(rules)
    )


def network_policies(
    team_name: str, team: Team, teams: Mapping[str, Team], metrics_namespace: str
) -> dict[str, k8s.networking.v1.NetworkPolicySpecArgs]:
    """Everything in or out is refused but what the namespace's pods need: each other (a
    training job's workers), DNS, AWS when they hold roles, and the connections config names
    in either direction."""
    every_pod = k8s.meta.v1.LabelSelectorArgs()
    same_namespace = k8s.networking.v1.NetworkPolicyPeerArgs(pod_selector=every_pod)
    policies = {
        "default-deny": k8s.networking.v1.NetworkPolicySpecArgs(
            pod_selector=every_pod, policy_types=["Ingress", "Egress"]
        ),
        "allow-dns": _egress(
            k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                to=[
                    k8s.networking.v1.NetworkPolicyPeerArgs(
                        namespace_selector=_namespace_peer("kube-system").namespace_selector,
                        pod_selector=k8s.meta.v1.LabelSelectorArgs(
                            match_labels={"k8s-app": "kube-dns"}
                        ),
                    )
                ],
                ports=[
                    k8s.networking.v1.NetworkPolicyPortArgs(protocol=protocol, port=53)
                    for protocol in ("UDP", "TCP")
                ],
            )
        ),
        # Distributed training's rendezvous and collectives connect worker to worker on ports
        # the framework picks.
        "allow-within-namespace": k8s.networking.v1.NetworkPolicySpecArgs(
            pod_selector=every_pod,
            policy_types=["Ingress", "Egress"],
            ingress=[k8s.networking.v1.NetworkPolicyIngressRuleArgs(from_=[same_namespace])],
            egress=[k8s.networking.v1.NetworkPolicyEgressRuleArgs(to=[same_namespace])],
        ),
    }
    if team.aws_bindings:
        # HTTPS to any address: S3 and DynamoDB through their gateway endpoints keep the
        # services' public addresses, which no NetworkPolicy peer can name stably (README,
        # "Team namespaces"). IAM decides what the calls may do.
        to_aws = [
            k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                to=[
                    k8s.networking.v1.NetworkPolicyPeerArgs(
                        ip_block=k8s.networking.v1.IPBlockArgs(cidr="0.0.0.0/0")
                    )
                ],
                ports=_tcp(443),
            )
        ]
        if "pod-identity" in team.aws_bindings:
            to_aws.insert(
                0,
                k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                    to=[
                        k8s.networking.v1.NetworkPolicyPeerArgs(
                            ip_block=k8s.networking.v1.IPBlockArgs(cidr=POD_IDENTITY_AGENT_CIDR)
                        )
                    ],
                    ports=_tcp(POD_IDENTITY_AGENT_PORT),
                ),
            )
        policies["allow-aws-apis"] = _egress(*to_aws)
    if team.ingress:
        policies["allow-ingress"] = k8s.networking.v1.NetworkPolicySpecArgs(
            pod_selector=every_pod,
            policy_types=["Ingress"],
            ingress=[
                k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                    from_=_sources(rule),
                    ports=_tcp(*rule.ports),
                )
                for rule in team.ingress
            ],
        )
    if team.scraped_ports:
        # Numbered, not named: the VPC CNI's policy agent does not resolve a named port for a
        # pod peer (aws/amazon-network-policy-controller-k8s#81).
        policies["allow-metrics-agent"] = k8s.networking.v1.NetworkPolicySpecArgs(
            pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=dict(MODEL_SERVER_LABELS)),
            policy_types=["Ingress"],
            ingress=[
                k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                    from_=[_namespace_peer(metrics_namespace)], ports=_tcp(*team.scraped_ports)
                )
            ],
        )
    for callee, callee_team in sorted(teams.items()):
        ports = sorted(
            {
                port
                for rule in callee_team.ingress
                if team_name in rule.namespaces
                for port in rule.ports
            }
        )
        if ports and callee != team_name:
            policies[f"allow-to-{callee}"] = _egress(
                k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                    to=[_namespace_peer(callee)], ports=_tcp(*ports)
                )
            )
    return policies
