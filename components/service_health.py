"""How a model service's health is read and alerted on: its server's metrics in the platform's
Prometheus workspace, the thresholds it must stay within, and the alert rules that page when it
does not (or when a canary of it was rolled back).

The platform's metrics agent scrapes every model-server pod with its namespace, service and
rollout hash as labels (`mlops_guardrails.vocabulary.SERVICE_METRIC_LABEL`,
`ROLLOUT_HASH_METRIC_LABEL`); Argo Rollouts' own metrics (`rollout_info`) reach the
workspace through the platform's managed scraper. The workspace's alert manager sends every
alert to the platform's alert topic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from mlops_guardrails.vocabulary import SERVICE_METRIC_LABEL

RATE_WINDOW: Final = "2m"
ALERT_WINDOW: Final = "5m"
STALL_MARGIN_MINUTES: Final = 10


@dataclass(frozen=True)
class ServingMetrics:
    """Where a model server reports its requests, errors and latency (Prometheus series)."""

    requests: str
    """A counter of every request."""
    errors: str
    """The same counter's series, or another's, that count failed requests."""
    latency_buckets: str
    """A latency histogram in seconds (`_bucket` series)."""
    in_flight: tuple[str, ...]
    """Gauges whose sum is the requests being served or queued now."""


# vLLM's OpenAI server: prometheus-fastapi-instrumentator's HTTP counter and vLLM's own
# end-to-end latency histogram and scheduler gauges (vllm docs/design/metrics.md).
VLLM: Final = ServingMetrics(
    requests="http_requests_total",
    errors='http_requests_total{status="5xx"}',
    latency_buckets="vllm:e2e_request_latency_seconds_bucket",
    in_flight=("vllm:num_requests_running", "vllm:num_requests_waiting"),
)


@dataclass(frozen=True)
class Thresholds:
    error_rate_percent: float
    """Above this share of failed requests a canary fails and the service alerts."""
    p95_latency_seconds: float
    """Above this 95th-percentile latency a canary fails and the service alerts."""


@dataclass(frozen=True)
class ServiceHealth:
    """The platform's workspace (its `prometheusWorkspaceId`, `prometheusWorkspaceUrl`), what
    the server reports and the bounds it must keep."""

    workspace_id: Any
    workspace_url: Any
    region: Any
    metrics: ServingMetrics
    thresholds: Thresholds


def service_labels(namespace: str, service: str) -> str:
    return f'namespace="{namespace}", {SERVICE_METRIC_LABEL}="{service}"'


def _with_labels(series: str, labels: str) -> str:
    """Add label matchers to a series selector that may already have some."""
    if series.endswith("}"):
        return f"{series[:-1]}, {labels}}}"
    return f"{series}{{{labels}}}"


def error_rate_query(metrics: ServingMetrics, labels: str, window: str = RATE_WINDOW) -> str:
    """Failed requests as a share of all. A server that has never failed has no error series
    yet: that counts as none failed. No requests at all is no answer (empty or NaN), never 0."""
    errors = _with_labels(metrics.errors, labels)
    requests = _with_labels(metrics.requests, labels)
    return f"(sum(rate({errors}[{window}])) or vector(0)) / sum(rate({requests}[{window}]))"


def p95_latency_query(metrics: ServingMetrics, labels: str, window: str = RATE_WINDOW) -> str:
    """No requests in the window is no answer (NaN), never 0."""
    buckets = _with_labels(metrics.latency_buckets, labels)
    return f"histogram_quantile(0.95, sum by (le) (rate({buckets}[{window}])))"


def request_count_query(metrics: ServingMetrics, labels: str, window: str) -> str:
    """Requests served in the window; no series at all is no answer, never 0."""
    return f"sum(increase({_with_labels(metrics.requests, labels)}[{window}]))"


def in_flight_query(metrics: ServingMetrics, labels: str) -> str:
    """Requests being served or queued across the service's pods, 0 before it reports."""
    summed = " + ".join(f"sum({_with_labels(gauge, labels)})" for gauge in metrics.in_flight)
    return f"({summed}) or vector(0)"


def rule_group_name(namespace: str, service: str) -> str:
    """The service's rule group in the shared workspace: under its team's prefix, the only
    one the team's deployer may write. `_` appears in no Kubernetes name, so no team's prefix
    is another's (`a_*` never matches team `a-b`'s groups)."""
    return f"{namespace}_{service}"


def alert_rules(
    namespace: str, service: str, health: ServiceHealth, canary_minutes: int | None = None
) -> dict[str, Any]:
    """Alerts for one model service: errors or latency above its bounds for ten minutes, a
    canary of it rolled back, and (rolled out as canaries that take `canary_minutes`) a
    rollout paused or stuck for longer than a whole canary takes, which waits for a person."""
    labels = service_labels(namespace, service)
    thresholds = health.thresholds
    about = {"severity": "critical", "namespace": namespace, SERVICE_METRIC_LABEL: service}
    rules = [
        {
            "alert": "ModelServiceErrorRate",
            # Comparisons bind tighter than `or`: the query is parenthesised whole.
            "expr": (
                f"({error_rate_query(health.metrics, labels, ALERT_WINDOW)}) "
                f"> {thresholds.error_rate_percent / 100:g}"
            ),
            "for": "10m",
            "labels": about,
            "annotations": {
                "summary": f"{namespace}/{service} fails more than "
                f"{thresholds.error_rate_percent:g}% of requests",
                "description": "Failed requests over all versions, for ten minutes.",
            },
        },
        {
            "alert": "ModelServiceLatency",
            "expr": (
                f"({p95_latency_query(health.metrics, labels, ALERT_WINDOW)}) "
                f"> {thresholds.p95_latency_seconds:g}"
            ),
            "for": "10m",
            "labels": {**about, "severity": "warning"},
            "annotations": {
                "summary": f"{namespace}/{service} p95 latency above "
                f"{thresholds.p95_latency_seconds:g}s",
                "description": "95th-percentile request latency over all versions, for ten "
                "minutes.",
            },
        },
        {
            # While the last rollout stands aborted: an event counter's series is born at the
            # abort itself, so increase() would miss the first one.
            "alert": "ModelServiceCanaryRolledBack",
            "expr": f'max(rollout_info{{namespace="{namespace}", name="{service}", '
            'phase="Abort"}) == 1',
            "labels": {**about, "severity": "warning"},
            "annotations": {
                "summary": f"a canary of {namespace}/{service} was rolled back",
                "description": "Its analysis failed: traffic is back on the stable version. "
                "Read the AnalysisRun for the measurement that failed.",
            },
        },
    ]
    if canary_minutes is not None:
        rules.append(
            {
                # Paused (an inconclusive analysis holds it) or Timeout (it never became
                # ready): no one resumes it but an operator. A canary's own timed pauses
                # end within canary_minutes.
                "alert": "ModelServiceRolloutStalled",
                "expr": f'max(rollout_info{{namespace="{namespace}", name="{service}", '
                'phase=~"Paused|Timeout"}) == 1',
                "for": f"{canary_minutes + STALL_MARGIN_MINUTES}m",
                "labels": {**about, "severity": "warning"},
                "annotations": {
                    "summary": f"the rollout of {namespace}/{service} is stalled",
                    "description": "Paused or timed out for longer than its canary takes: "
                    "an analysis without data holds it, or its pods never became ready. "
                    "Promote or abort it (kubectl argo rollouts).",
                },
            }
        )
    return {"groups": [{"name": rule_group_name(namespace, service), "rules": rules}]}
