"""The Prometheus agent that scrapes model servers in team namespaces into the platform's
workspace, where canary analyses and model health alerts read them.

Why an agent in the cluster rather than the managed scraper that already reads the GPU metrics:
the managed scraper's network interfaces sit in the pods' own subnets, so a team namespace could
admit it only by admitting every pod there; the agent runs in the metrics namespace, which team
namespaces admit by name, on the ports their model services serve. Prometheus in agent mode
keeps no local database: it relabels, buffers a write-ahead log and remote-writes with SigV4
(prometheus/sigv4 on AWS SDK for Go v2, so Pod Identity credentials).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import pulumi

from components.helm import ControllerInstall, controller_release
from components.policy_documents import prometheus_remote_write_policy
from mlops_guardrails.vocabulary import (
    MODEL_SERVER_LABELS,
    MODEL_SERVER_PORT_NAME,
    ROLLOUT_HASH_METRIC_LABEL,
    SERVICE_METRIC_LABEL,
)

SERVICE_ACCOUNT: Final = "prometheus-agent"
SCRAPE_INTERVAL: Final = "30s"
# The chart's own jobs scrape the whole cluster; the agent scrapes model servers and itself.
CHART_JOBS: Final = (
    "kubernetes-api-servers",
    "kubernetes-nodes",
    "kubernetes-nodes-cadvisor",
    "kubernetes-pods",
    "kubernetes-pods-slow",
    "kubernetes-service-endpoints",
    "kubernetes-service-endpoints-slow",
    "kubernetes-services",
    "prometheus-pushgateway",
)
RESTRICTED_CONTAINER: Final = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}


def _pod_label(label: str) -> str:
    return "__meta_kubernetes_pod_label_" + "".join(c if c.isalnum() else "_" for c in label)


def model_server_job(namespaces: Sequence[str]) -> dict[str, Any]:
    """Model-server pods of the given namespaces, on their serving port, each sample labelled
    with its namespace, service, pod and the rollout hash that tells a canary from stable."""
    keep = [
        {"source_labels": [_pod_label(label)], "regex": value, "action": "keep"}
        for label, value in MODEL_SERVER_LABELS.items()
    ]
    return {
        "kubernetes_sd_configs": [{"role": "pod", "namespaces": {"names": sorted(namespaces)}}],
        "relabel_configs": [
            *keep,
            {
                "source_labels": ["__meta_kubernetes_pod_container_port_name"],
                "regex": MODEL_SERVER_PORT_NAME,
                "action": "keep",
            },
            {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
            {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
            {
                "source_labels": [_pod_label("app.kubernetes.io/name")],
                "target_label": SERVICE_METRIC_LABEL,
            },
            {
                "source_labels": [_pod_label("rollouts-pod-template-hash")],
                "target_label": ROLLOUT_HASH_METRIC_LABEL,
            },
        ],
    }


@dataclass(frozen=True)
class MetricsAgentArgs:
    install: ControllerInstall
    workspace_arn: pulumi.Input[str]
    workspace_url: pulumi.Input[str]
    """`https://aps-workspaces.<region>.amazonaws.com/workspaces/<id>`."""
    region: pulumi.Input[str]
    namespace: str
    """The metrics namespace, which team namespaces admit."""
    scraped_namespaces: Sequence[str]


class MetricsAgent(pulumi.ComponentResource):
    TYPE = "mlops:metrics_agent:MetricsAgent"

    def __init__(
        self, name: str, args: MetricsAgentArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(self.TYPE, name, None, opts)
        controller_release(
            name,
            self,
            args.install,
            namespace=args.namespace,
            service_account=SERVICE_ACCOUNT,
            policy=pulumi.Output.from_input(args.workspace_arn).apply(
                prometheus_remote_write_policy
            ),
            release_name="prometheus-agent",
            values=lambda _: {
                "alertmanager": {"enabled": False},
                "kube-state-metrics": {"enabled": False},
                "prometheus-node-exporter": {"enabled": False},
                "prometheus-pushgateway": {"enabled": False},
                "serviceAccounts": {"server": {"create": True, "name": SERVICE_ACCOUNT}},
                "server": {
                    # Agent mode: v3 has no agentMode value; these replace the server's flags.
                    "defaultFlagsOverride": [
                        "--agent",
                        "--config.file=/etc/config/prometheus.yml",
                        "--storage.agent.path=/data",
                        "--web.enable-lifecycle",
                    ],
                    "persistentVolume": {"enabled": False},
                    "global": {"scrape_interval": SCRAPE_INTERVAL},
                    "remoteWrite": [
                        {
                            "url": pulumi.Output.concat(args.workspace_url, "/api/v1/remote_write"),
                            "sigv4": {"region": args.region},
                        }
                    ],
                    "nodeSelector": dict(args.install.node_selector),
                    "resources": {
                        "requests": {"cpu": "100m", "memory": "256Mi"},
                        "limits": {"memory": "1Gi"},
                    },
                    "securityContext": {
                        "runAsUser": 65534,
                        "runAsGroup": 65534,
                        "fsGroup": 65534,
                        "runAsNonRoot": True,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containerSecurityContext": RESTRICTED_CONTAINER,
                },
                "configmapReload": {
                    "prometheus": {"containerSecurityContext": RESTRICTED_CONTAINER}
                },
                # Agent mode refuses rule files.
                "serverFiles": {"prometheus.yml": {"rule_files": []}},
                "scrapeConfigs": {
                    **{job: {"enabled": False} for job in CHART_JOBS},
                    "model-servers": model_server_job(args.scraped_namespaces),
                },
            },
        )
        self.register_outputs({})
