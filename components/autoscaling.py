"""How a model service scales on its load: a KEDA ScaledObject over its servers' requests in
flight, read from the platform's Prometheus (components/keda.py).

Plain functions returning the objects' specs; the model service component makes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from components.service_health import ServiceHealth, in_flight_query, service_labels

# A GPU replica takes minutes to load its model: scale in one at a time, slowly, so a dip in
# traffic does not throw away capacity the next burst needs.
SCALE_DOWN_WINDOW_SECONDS: Final = 600
FALLBACK_AFTER_FAILURES: Final = 3


@dataclass(frozen=True)
class Autoscaling:
    min_replicas: int
    max_replicas: int
    in_flight_per_replica: int
    """Requests one replica serves (running and queued) before another is added."""


def trigger_authentication_spec() -> dict[str, Any]:
    """Queries signed with the KEDA operator's own Pod Identity role."""
    return {"podIdentity": {"provider": "aws"}}


def scaled_object_spec(
    *,
    namespace: str,
    service: str,
    target: dict[str, str],
    autoscaling: Autoscaling,
    health: ServiceHealth,
    authentication: str,
) -> dict[str, Any]:
    """Replicas follow requests in flight per replica, between the bounds. If Prometheus cannot
    be read three times running, the service keeps what it has (never fewer than min)."""
    return {
        "scaleTargetRef": target,
        "minReplicaCount": autoscaling.min_replicas,
        "maxReplicaCount": autoscaling.max_replicas,
        "fallback": {
            "failureThreshold": FALLBACK_AFTER_FAILURES,
            "replicas": autoscaling.min_replicas,
            "behavior": "currentReplicasIfHigher",
        },
        "advanced": {
            "horizontalPodAutoscalerConfig": {
                "behavior": {
                    "scaleDown": {
                        "stabilizationWindowSeconds": SCALE_DOWN_WINDOW_SECONDS,
                        "policies": [{"type": "Pods", "value": 1, "periodSeconds": 300}],
                    }
                }
            }
        },
        "triggers": [
            {
                "type": "prometheus",
                "metadata": {
                    "serverAddress": health.workspace_url,
                    "query": in_flight_query(health.metrics, service_labels(namespace, service)),
                    "threshold": str(autoscaling.in_flight_per_replica),
                    "awsRegion": health.region,
                },
                "authenticationRef": {"name": authentication},
            }
        ],
    }


def autoscaling_problem(autoscaling: Autoscaling, health: ServiceHealth | None) -> str | None:
    problems = [
        (health is None, "autoscaling needs the service's health: its load is read there"),
        (autoscaling.min_replicas < 2, "autoscaling keeps at least 2 replicas"),
        (
            autoscaling.max_replicas < autoscaling.min_replicas,
            f"autoscaling max {autoscaling.max_replicas} is below min {autoscaling.min_replicas}",
        ),
        (autoscaling.in_flight_per_replica < 1, "a replica serves at least 1 request at a time"),
    ]
    return next((message for failed, message in problems if failed), None)
