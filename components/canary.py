"""How a model service's new version goes out: the Argo Rollouts canary strategy, the analysis
that promotes or aborts it, and the ALB Ingress whose weighted target groups split the traffic.

Plain functions returning the objects' specs, so each property is tested without Pulumi; the
model service component makes the resources.

The analysis reads the model server's own metrics, which the platform's metrics agent scrapes
from every model-server pod with the pod's service and rollout hash as labels
(`mlops_guardrails.vocabulary.SERVICE_METRIC_LABEL`, `ROLLOUT_HASH_METRIC_LABEL`): the canary's
series are told from the stable version's by the hash Argo Rollouts gives the canary's pods.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from mlops_guardrails.vocabulary import ROLLOUT_HASH_METRIC_LABEL, SERVICE_METRIC_LABEL

CANARY_HASH_ARG: Final = "canary-hash"
USE_ANNOTATION: Final = "use-annotation"
"""The port an ALB Ingress backend names to forward by its `actions.<service>` annotation."""
ALB: Final = "alb.ingress.kubernetes.io"
# AWS Security Hub ELB.17: an HTTPS listener uses one of the TLS 1.3 "Res" policies.
TLS_POLICY: Final = "ELBSecurityPolicy-TLS13-1-2-Res-2021-06"
RATE_WINDOW: Final = "2m"


@dataclass(frozen=True)
class ServingMetrics:
    """Where a model server reports its requests, errors and latency (Prometheus series)."""

    requests: str
    """A counter of every request."""
    errors: str
    """The same counter's series, or another's, that count failed requests."""
    latency_buckets: str
    """A latency histogram in seconds (`_bucket` series)."""
    in_flight: str
    """Requests being served or queued now (gauges, summed)."""


# vLLM's OpenAI server: prometheus-fastapi-instrumentator's HTTP counter and vLLM's own
# end-to-end latency histogram and scheduler gauges (vllm docs/design/metrics.md).
VLLM: Final = ServingMetrics(
    requests="http_requests_total",
    errors='http_requests_total{status="5xx"}',
    latency_buckets="vllm:e2e_request_latency_seconds_bucket",
    in_flight="vllm:num_requests_running + vllm:num_requests_waiting",
)


@dataclass(frozen=True)
class Thresholds:
    error_rate_percent: float
    """Above this share of failed requests the canary fails."""
    p95_latency_seconds: float
    """Above this 95th-percentile latency the canary fails."""


@dataclass(frozen=True)
class Canary:
    """A new version takes these shares of the traffic in turn, each for step_minutes, and is
    promoted after the last; a failed analysis at any point sends all traffic back."""

    steps: Sequence[int]
    """Traffic percentages, increasing, each below 100."""
    step_minutes: int
    thresholds: Thresholds
    metrics: ServingMetrics
    prometheus_endpoint: Any
    """The platform workspace's query endpoint (its `prometheusEndpoint`)."""
    region: Any


@dataclass(frozen=True)
class LoadBalancer:
    """The ALB in front of the service, in the platform's public subnets (the team namespace
    admits them with `fromPublicSubnets`; no pod address is among them)."""

    subnet_ids: Any
    scheme: Literal["internal", "internet-facing"] = "internal"
    certificate_arn: Any = None
    """An ACM certificate: the listener is HTTPS on 443 with it, HTTP on 80 without."""


def _selector(namespace: str, service: str, extra: str = "") -> str:
    return f'namespace="{namespace}", {SERVICE_METRIC_LABEL}="{service}"' + extra


def _with_labels(series: str, labels: str) -> str:
    """Add label matchers to a series selector that may already have some."""
    if series.endswith("}"):
        return f"{series[:-1]}, {labels}}}"
    return f"{series}{{{labels}}}"


def error_rate_query(metrics: ServingMetrics, labels: str) -> str:
    """Failed requests as a share of all, 0 while there are none."""
    errors = _with_labels(metrics.errors, labels)
    requests = _with_labels(metrics.requests, labels)
    return (
        f"(sum(rate({errors}[{RATE_WINDOW}])) / sum(rate({requests}[{RATE_WINDOW}]))) or vector(0)"
    )


def p95_latency_query(metrics: ServingMetrics, labels: str) -> str:
    buckets = _with_labels(metrics.latency_buckets, labels)
    return f"histogram_quantile(0.95, sum by (le) (rate({buckets}[{RATE_WINDOW}]))) or vector(0)"


def analysis_template_spec(namespace: str, service: str, canary: Canary) -> dict[str, Any]:
    """Every minute while the canary runs: its error rate and p95 latency against the
    thresholds. Two failed measurements, or four failed queries in a row, fail the analysis
    and abort the rollout."""
    labels = _selector(
        namespace, service, f', {ROLLOUT_HASH_METRIC_LABEL}="{{{{args.{CANARY_HASH_ARG}}}}}"'
    )
    provider = {
        "address": canary.prometheus_endpoint,
        "authentication": {"sigv4": {"region": canary.region}},
    }
    error_limit = canary.thresholds.error_rate_percent / 100
    return {
        "args": [{"name": CANARY_HASH_ARG}],
        "metrics": [
            {
                "name": "error-rate",
                "interval": "1m",
                # Rates need a window of the canary's own traffic first.
                "initialDelay": RATE_WINDOW,
                "failureLimit": 1,
                "successCondition": f"result[0] <= {error_limit:g}",
                "provider": {
                    "prometheus": {**provider, "query": error_rate_query(canary.metrics, labels)}
                },
            },
            {
                "name": "p95-latency",
                "interval": "1m",
                "initialDelay": RATE_WINDOW,
                "failureLimit": 1,
                "successCondition": f"result[0] <= {canary.thresholds.p95_latency_seconds:g}",
                "provider": {
                    "prometheus": {**provider, "query": p95_latency_query(canary.metrics, labels)}
                },
            },
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
        f"{ALB}/scheme": balancer.scheme,
        f"{ALB}/target-type": "ip",
        f"{ALB}/subnets": subnets,
        f"{ALB}/healthcheck-path": readiness_path,
        f"{ALB}/load-balancer-attributes": "routing.http.drop_invalid_header_fields.enabled=true",
    }
    if balancer.certificate_arn is None:
        annotations[f"{ALB}/listen-ports"] = '[{"HTTP": 80}]'
    else:
        annotations[f"{ALB}/listen-ports"] = '[{"HTTPS": 443}]'
        annotations[f"{ALB}/certificate-arn"] = balancer.certificate_arn
        annotations[f"{ALB}/ssl-policy"] = TLS_POLICY
    return annotations


def canary_problem(canary: Canary, balancer: LoadBalancer | None) -> str | None:
    if balancer is None:
        return "a canary needs a load balancer: its traffic shares are the ALB's weights"
    if not canary.steps or list(canary.steps) != sorted(set(canary.steps)):
        return f"canary steps {list(canary.steps)}: increasing traffic percentages"
    if not all(0 < step < 100 for step in canary.steps):
        return f"canary steps {list(canary.steps)}: each between 1 and 99"
    if canary.step_minutes < 3:
        return "canary steps last at least 3 minutes: the analysis needs rates over 2"
    if balancer.scheme == "internet-facing" and balancer.certificate_arn is None:
        return "an internet-facing load balancer needs a certificate (HTTPS only)"
    return None
