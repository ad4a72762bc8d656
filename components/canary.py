"""How a model service's new version goes out: the Argo Rollouts canary strategy, the analysis
that promotes or aborts it, and the ALB Ingress whose weighted target groups split the traffic.

Plain functions returning the objects' specs, so each property is tested without Pulumi; the
model service component makes the resources.

The analysis reads the model server's own metrics (components.service_health): the canary's
series are told from the stable version's by the hash Argo Rollouts gives the canary's pods.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from components.service_health import (
    RATE_WINDOW,
    ServiceHealth,
    error_rate_query,
    p95_latency_query,
    request_count_query,
    service_labels,
)
from mlops_guardrails.vocabulary import (
    ALB_ANNOTATIONS,
    DROP_INVALID_HEADERS,
    ROLLOUT_HASH_METRIC_LABEL,
)

CANARY_HASH_ARG: Final = "canary-hash"
INCONCLUSIVE_LIMIT: Final = 2
TRAFFIC_METRIC: Final = "canary-traffic"
USE_ANNOTATION: Final = "use-annotation"
"""The port an ALB Ingress backend names to forward by its `actions.<service>` annotation."""
# AWS Security Hub ELB.17: an HTTPS listener uses one of the TLS 1.3 "Res" policies.
TLS_POLICY: Final = "ELBSecurityPolicy-TLS13-1-2-Res-2021-06"


@dataclass(frozen=True)
class Canary:
    """A new version takes these shares of the traffic in turn, each for step_minutes, and is
    promoted after the last; a failed analysis at any point sends all traffic back."""

    steps: Sequence[int]
    """Traffic percentages, increasing, each below 100."""
    step_minutes: int


@dataclass(frozen=True)
class LoadBalancer:
    """The ALB in front of the service, in the platform's public subnets (the team namespace
    admits them with `fromPublicSubnets`; no pod address is among them)."""

    subnet_ids: Any
    scheme: Literal["internal", "internet-facing"] = "internal"
    certificate_arn: Any = None
    """An ACM certificate: the listener is HTTPS on 443 with it, HTTP on 80 without."""


def analysis_template_spec(namespace: str, service: str, health: ServiceHealth) -> dict[str, Any]:
    """Every minute while the canary runs: did it serve traffic, and were its error rate and
    p95 latency within the service's thresholds? A second failed measurement, or a fifth failed
    query in a row, fails the analysis and aborts the rollout. No answer (no canary traffic in
    the window, or no series at all: the agent down, a label lost) is inconclusive, never a
    pass: after three the rollout pauses for a person to promote or abort."""
    labels = (
        service_labels(namespace, service)
        + f', {ROLLOUT_HASH_METRIC_LABEL}="{{{{args.{CANARY_HASH_ARG}}}}}"'
    )
    provider = {
        "address": health.workspace_url,
        "authentication": {"sigv4": {"region": health.region}},
    }
    limits = {
        "error-rate": (
            error_rate_query(health.metrics, labels),
            f"<= {health.thresholds.error_rate_percent / 100:g}",
        ),
        "p95-latency": (
            p95_latency_query(health.metrics, labels),
            f"<= {health.thresholds.p95_latency_seconds:g}",
        ),
        # Judged at all: the canary took requests in the window (never a failure: a canary
        # nobody called is held, not rolled back).
        TRAFFIC_METRIC: (request_count_query(health.metrics, labels, RATE_WINDOW), "> 0"),
    }
    return {
        "args": [{"name": CANARY_HASH_ARG}],
        "metrics": [
            {
                "name": name,
                "interval": "1m",
                # Rates need a window of the canary's own traffic first.
                "initialDelay": RATE_WINDOW,
                "failureLimit": 1,
                "inconclusiveLimit": INCONCLUSIVE_LIMIT,
                # Neither holds for no result or NaN (every comparison with NaN is false).
                "successCondition": f"len(result) > 0 && result[0] {within}",
                "failureCondition": (
                    "false"
                    if name == TRAFFIC_METRIC
                    else f"len(result) > 0 && !isNaN(result[0]) && !(result[0] {within})"
                ),
                "provider": {"prometheus": {**provider, "query": query}},
            }
            for name, (query, within) in limits.items()
        ],
    }


def canary_strategy(service: str, port: int, canary: Canary) -> dict[str, Any]:
    """Traffic moves by the ALB's weights, never by replica counts; the stable version scales
    down as its share does, so the rollout needs one replica's accelerators beyond the
    service's, not twice them (a GPU quota rarely holds two copies of a service)."""
    steps: list[dict[str, Any]] = []
    for weight in canary.steps:
        steps += [{"setWeight": weight}, {"pause": {"duration": f"{canary.step_minutes}m"}}]
    return {
        "canary": {
            "stableService": service,
            "canaryService": canary_service_name(service),
            "dynamicStableScale": True,
            "trafficRouting": {"alb": {"ingress": service, "servicePort": port}},
            "analysis": {
                "templates": [{"templateName": service}],
                # From the first step on: the canary has traffic to judge.
                "startingStep": 1,
                "args": [
                    {"name": CANARY_HASH_ARG, "valueFrom": {"podTemplateHashValue": "Latest"}}
                ],
            },
            "steps": steps,
        }
    }


def canary_service_name(service: str) -> str:
    return f"{service}-canary"


def ingress_annotations(
    balancer: LoadBalancer, readiness_path: str, subnets: str
) -> dict[str, str]:
    """An ALB by IP targets in the given subnets, dropping malformed headers (ELB.4), HTTPS with
    a TLS 1.3 policy when it has a certificate (ELB.17). No deletion protection: the ALB holds
    no state, and the controller could not delete it with its Ingress."""
    annotations = {
        f"{ALB_ANNOTATIONS}/scheme": balancer.scheme,
        f"{ALB_ANNOTATIONS}/target-type": "ip",
        f"{ALB_ANNOTATIONS}/subnets": subnets,
        f"{ALB_ANNOTATIONS}/healthcheck-path": readiness_path,
        f"{ALB_ANNOTATIONS}/load-balancer-attributes": DROP_INVALID_HEADERS,
        # How long the ALB lets a leaving target's requests finish: within the pods' grace
        # (120 s), so it never waits on a server already killed (the default is 300 s).
        f"{ALB_ANNOTATIONS}/target-group-attributes": "deregistration_delay.timeout_seconds=90",
    }
    if balancer.certificate_arn is None:
        annotations[f"{ALB_ANNOTATIONS}/listen-ports"] = '[{"HTTP": 80}]'
    else:
        annotations[f"{ALB_ANNOTATIONS}/listen-ports"] = '[{"HTTPS": 443}]'
        annotations[f"{ALB_ANNOTATIONS}/certificate-arn"] = balancer.certificate_arn
        annotations[f"{ALB_ANNOTATIONS}/ssl-policy"] = TLS_POLICY
    return annotations


def balancer_problem(balancer: LoadBalancer | None) -> str | None:
    if balancer is None or balancer.scheme == "internal" or balancer.certificate_arn is not None:
        return None
    return "an internet-facing load balancer needs a certificate (HTTPS only)"


def canary_problem(
    canary: Canary, balancer: LoadBalancer | None, health: ServiceHealth | None
) -> str | None:
    steps = list(canary.steps)
    problems = [
        (balancer is None, "a canary needs a load balancer: its traffic shares are its weights"),
        (health is None, "a canary needs the service's health: it is judged by it"),
        (not steps or steps != sorted(set(steps)), f"canary steps {steps}: increasing shares"),
        (not all(0 < step < 100 for step in steps), f"canary steps {steps}: each from 1 to 99"),
        (canary.step_minutes < 3, "canary steps last at least 3 minutes: rates span 2"),
    ]
    found = next((message for failed, message in problems if failed), None)
    return found or balancer_problem(balancer)
