"""Rules for how model services are reached, rolled out and scaled: ALB Ingresses, canary
Rollouts and KEDA ScaledObjects."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any, Final

from pulumi_policy import ResourceValidationArgs, Severity

from mlops_guardrails.frameworks import aws_fsbp
from mlops_guardrails.props import items, mapping
from mlops_guardrails.rule import resource_rule
from mlops_guardrails.vocabulary import ALB_ANNOTATIONS, DROP_INVALID_HEADERS, ELB_TLS_POLICIES

INGRESS: Final = "kubernetes:networking.k8s.io/v1:Ingress"
ROLLOUT: Final = "kubernetes:argoproj.io/v1alpha1:Rollout"
SCALED_OBJECT: Final = "kubernetes:keda.sh/v1alpha1:ScaledObject"
# Trigger metadata that would carry AWS credentials in the object itself.
AWS_KEY_METADATA: Final = ("awsAccessKeyID", "awsSecretAccessKey", "awsSessionToken")


def _is_alb(props: Mapping[str, Any]) -> bool:
    spec = mapping(props.get("spec"))
    annotations = mapping(mapping(props.get("metadata")).get("annotations"))
    return (
        spec.get("ingressClassName") == "alb"
        or annotations.get("kubernetes.io/ingress.class") == "alb"
    )


def _listen_protocols(annotations: Mapping[str, Any]) -> set[str]:
    try:
        ports = json.loads(
            str(annotations.get(f"{ALB_ANNOTATIONS}/listen-ports", '[{"HTTP": 80}]'))
        )
    except json.JSONDecodeError:
        return {"unreadable"}
    return {protocol for port in ports for protocol in mapping(port)}


def _alb_hardened(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    if not _is_alb(props):
        return
    annotations = mapping(mapping(props.get("metadata")).get("annotations"))
    attributes = str(annotations.get(f"{ALB_ANNOTATIONS}/load-balancer-attributes", ""))
    if DROP_INVALID_HEADERS not in attributes:
        yield "the ALB keeps HTTP headers that are not valid (set drop_invalid_header_fields)"
    if f"{ALB_ANNOTATIONS}/group.name" in annotations:
        # Anyone who may edit an Ingress of the group may add rules to the shared ALB.
        yield "the ALB is shared with other Ingresses (group.name)"
    if annotations.get(f"{ALB_ANNOTATIONS}/scheme") == "internet-facing":
        protocols = _listen_protocols(annotations)
        if protocols != {"HTTPS"}:
            yield f"an internet-facing ALB listens on {sorted(protocols)}, not HTTPS only"
        elif annotations.get(f"{ALB_ANNOTATIONS}/ssl-policy") not in ELB_TLS_POLICIES:
            policy = annotations.get(f"{ALB_ANNOTATIONS}/ssl-policy", "the controller's default")
            yield f"its HTTPS listener uses {policy}, not a TLS 1.3 policy"


def _canary_analysed(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    canary = mapping(mapping(mapping(props.get("spec")).get("strategy")).get("canary"))
    if not canary:
        return
    if not mapping(canary.get("trafficRouting")):
        yield "the canary has no traffic router: its share of traffic follows replica counts"
    steps = [mapping(step) for step in items(canary.get("steps"))]
    if not mapping(canary.get("analysis")) and not any(step.get("analysis") for step in steps):
        yield "nothing analyses the canary: a bad version is promoted when its steps run out"


def _scaling_bounded(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    spec = mapping(props.get("spec"))
    if spec.get("maxReplicaCount") is None:
        yield "no maxReplicaCount: KEDA's default lets a spike ask for 100 replicas"
    if not mapping(spec.get("fallback")):
        yield "no fallback: while its metrics cannot be read the workload is not scaled at all"
    for trigger in items(spec.get("triggers")):
        metadata = mapping(mapping(trigger).get("metadata"))
        keys = sorted(k for k in AWS_KEY_METADATA if k in metadata)
        if keys:
            yield f"a trigger carries AWS credentials in its metadata ({', '.join(keys)})"


RULES = [
    resource_rule(
        name="alb-ingress-hardened",
        description=(
            "ALB Ingresses drop invalid headers, share no load balancer with other Ingresses, "
            "and when internet-facing listen on HTTPS only with a TLS 1.3 policy."
        ),
        resource_types={INGRESS},
        check=_alb_hardened,
        severity=Severity.HIGH,
        framework=aws_fsbp("ELB.4"),
        remediation=(
            "Use components.model_service's load balancer (canary.ingress_annotations): "
            "routing.http.drop_invalid_header_fields.enabled=true, no group.name, and for "
            'internet-facing listen-ports [{"HTTPS": 443}] with a certificate-arn and '
            "ssl-policy ELBSecurityPolicy-TLS13-1-2-Res-2021-06."
        ),
    ),
    resource_rule(
        name="keda-scaling-bounded",
        description=(
            "KEDA ScaledObjects state their most replicas and a fallback, and never carry AWS "
            "credentials in trigger metadata."
        ),
        resource_types={SCALED_OBJECT},
        check=_scaling_bounded,
        severity=Severity.MEDIUM,
        remediation=(
            "Set maxReplicaCount and fallback (components.autoscaling.scaled_object_spec), and "
            "authenticate through a TriggerAuthentication with podIdentity provider aws."
        ),
    ),
    resource_rule(
        name="rollout-canary-analysed",
        description=(
            "Canary Rollouts move traffic by a router's weights and are judged by an "
            "analysis, so a bad version rolls back by itself."
        ),
        resource_types={ROLLOUT},
        check=_canary_analysed,
        severity=Severity.HIGH,
        remediation=(
            "Set strategy.canary.trafficRouting.alb and a background analysis "
            "(components.canary.canary_strategy does both)."
        ),
    ),
]
