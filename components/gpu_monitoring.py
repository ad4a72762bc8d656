"""GPU monitoring: Amazon Managed Service for Prometheus scraping the cluster, alerting to SNS.

Why a managed Prometheus rather than Container Insights: the GPU signals that matter are
Prometheus metrics already (the DCGM exporter on every NVIDIA node, kube-state-metrics for node
readiness and labels), and the alerts need PromQL joins between them by pool label (idle GPUs of
one pool, a pool at its own ceiling), which CloudWatch metric alarms cannot express. The managed
scraper runs outside the cluster, the workspace is encrypted under the platform's key, and its
alert manager publishes straight to the SNS topic: nothing to run or upgrade in the cluster but
kube-state-metrics.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import yaml

from components.common import encrypted_log_group, stateful_options
from components.gpu_software import NAMESPACE as GPU_SOFTWARE_NAMESPACE
from components.helm import chart_release
from mlops_guardrails.charts import ChartContract, image_tag
from mlops_guardrails.vocabulary import ACCELERATOR_LABEL, POOL_LABEL, PURPOSE_LABEL

# The user the managed scraper's role is mapped to; its RBAC comes from the AMP user guide.
SCRAPER_USER: Final = "aps-collector-user"
SCRAPE_INTERVAL: Final = "30s"


@dataclass(frozen=True)
class MonitoredPool:
    name: str
    resource: str
    """The extended resource its accelerators are advertised as, e.g. nvidia.com/gpu."""
    ceiling: int
    """The most physical accelerators the pool may hold (its maxGpus)."""
    shares: int = 1
    """How many of `resource` a node advertises per physical accelerator (time slicing)."""


@dataclass(frozen=True)
class AlertThresholds:
    gpu_idle_minutes: int
    gpu_idle_utilization_percent: int
    node_not_ready_minutes: int
    at_ceiling_minutes: int


@dataclass(frozen=True)
class GpuMonitoringArgs:
    cluster_name: pulumi.Input[str]
    cluster_arn: pulumi.Input[str]
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    cluster_security_group_id: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    """Encrypts the workspace and its log group (needs KeyUse.CLOUDWATCH_LOGS)."""
    alert_topic_arn: pulumi.Input[str]
    pools: Sequence[MonitoredPool]
    thresholds: AlertThresholds
    metrics_namespace: str
    """Where kube-state-metrics is installed."""
    rollouts_namespace: str | None
    """Where Argo Rollouts' controller runs, when the stack installs it."""
    kube_state_metrics: ChartContract
    install_after: Sequence[pulumi.Resource]
    """What its release waits for: the system nodes and CoreDNS its pods need, and the metrics
    namespace when the stack makes it."""
    kubernetes_version: str
    """kube-state-metrics is built per Kubernetes minor: it runs the release built for this one."""
    node_selector: Mapping[str, str]
    log_retention_days: int
    tags: Mapping[str, str]
    protect: bool


def _metric(name: str) -> str:
    """How kube-state-metrics writes a Kubernetes name in a label: `._/-` become `_`."""
    return "".join(c if c.isalnum() else "_" for c in name)


def _label(kubernetes_label: str) -> str:
    """The label kube-state-metrics gives a node label on `kube_node_labels`."""
    return f"label_{_metric(kubernetes_label)}"


def scrape_configuration(
    metrics_namespace: str, rollouts_namespace: str | None = None
) -> dict[str, Any]:
    """Scrape jobs for the DCGM exporter and kube-state-metrics pods, and Argo Rollouts'
    controller where it runs (its `rollout_info` tells a rolled-back canary); each sample is
    labelled with the node it came from, so GPU metrics join node labels by `node`."""

    def job(name: str, namespace: str) -> dict[str, Any]:
        return {
            "job_name": name,
            "kubernetes_sd_configs": [{"role": "pod", "namespaces": {"names": [namespace]}}],
            "relabel_configs": [
                {
                    "source_labels": ["__meta_kubernetes_pod_label_app_kubernetes_io_name"],
                    "regex": name,
                    "action": "keep",
                },
                {
                    "source_labels": ["__meta_kubernetes_pod_container_port_name"],
                    "regex": "metrics|http",
                    "action": "keep",
                },
                {"source_labels": ["__meta_kubernetes_pod_node_name"], "target_label": "node"},
            ],
        }

    return {
        "global": {"scrape_interval": SCRAPE_INTERVAL},
        "scrape_configs": [
            job("dcgm-exporter", GPU_SOFTWARE_NAMESPACE),
            job("kube-state-metrics", metrics_namespace),
            *([job("argo-rollouts", rollouts_namespace)] if rollouts_namespace else []),
        ],
    }


def alert_rules(pools: Sequence[MonitoredPool], thresholds: AlertThresholds) -> dict[str, Any]:
    """Prometheus alerting rules: GPU nodes not ready, pools at their ceiling, idle GPUs."""
    pool = _label(POOL_LABEL)
    gpu_nodes = f'kube_node_labels{{{_label(ACCELERATOR_LABEL)}!=""}}'
    idle_below = thresholds.gpu_idle_utilization_percent
    rules: list[dict[str, Any]] = [
        {
            "alert": "GpuNodeNotReady",
            "expr": (
                'kube_node_status_condition{condition="Ready",status="true"} == 0 '
                f"and on (node) {gpu_nodes}"
            ),
            "for": f"{thresholds.node_not_ready_minutes}m",
            "labels": {"severity": "critical"},
            "annotations": {
                "summary": "GPU node {{ $labels.node }} is not Ready",
                "description": (
                    f"Not Ready for {thresholds.node_not_ready_minutes} minutes: its GPUs are "
                    "paid for and unusable. Check the node's conditions and the device plugin."
                ),
            },
        },
        {
            "alert": "GpuIdle",
            # The join adds the node's pool, so the alert says which pool to scale in.
            "expr": (
                f"(avg by (node) (DCGM_FI_DEV_GPU_UTIL) < {idle_below}) "
                f"* on (node) group_left ({pool}) kube_node_labels"
            ),
            "for": f"{thresholds.gpu_idle_minutes}m",
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "GPUs on {{ $labels.node }} are idle",
                "description": (
                    f"Mean utilization below {thresholds.gpu_idle_utilization_percent}% for "
                    f"{thresholds.gpu_idle_minutes} minutes: scale the pool in or free the node."
                ),
            },
        },
    ]
    for monitored in pools:
        # Node capacity counts a time-sliced GPU once per share; the ceiling is physical.
        held = (
            f'sum(kube_node_status_capacity{{resource="{_metric(monitored.resource)}"}} '
            f'* on (node) group_left () kube_node_labels{{{pool}="{monitored.name}"}})'
            + (f" / {monitored.shares}" if monitored.shares > 1 else "")
        )
        rules.append(
            {
                "alert": "GpuPoolAtCeiling",
                "expr": f"{held} >= {monitored.ceiling}",
                "for": f"{thresholds.at_ceiling_minutes}m",
                "labels": {"severity": "warning", "pool": monitored.name},
                "annotations": {
                    "summary": f"GPU pool {monitored.name} is at its ceiling",
                    "description": (
                        f"It holds {monitored.ceiling} physical {monitored.resource} (maxGpus); "
                        "pending "
                        "pods will wait. Raise maxGpus if the budget allows."
                    ),
                },
            }
        )
    return {"groups": [{"name": "gpu", "rules": rules}]}


def alertmanager_definition(topic_arn: str, region: str) -> str:
    """Every alert to the SNS topic, grouped per alert and pool, repeated every four hours."""
    config = {
        "route": {
            "receiver": "sns",
            # Per pool for GPU alerts, per model service for theirs.
            "group_by": ["alertname", "pool", "namespace", "model_service"],
            "repeat_interval": "4h",
        },
        "receivers": [
            {
                "name": "sns",
                "sns_configs": [
                    {
                        "topic_arn": topic_arn,
                        "sigv4": {"region": region},
                        "subject": "[{{ .Status | toUpper }}] {{ .CommonLabels.alertname }}",
                        "attributes": {"severity": "{{ .CommonLabels.severity }}"},
                    }
                ],
            }
        ],
    }
    return yaml.safe_dump({"alertmanager_config": yaml.safe_dump(config, sort_keys=False)})


class GpuMonitoring(pulumi.ComponentResource):
    """Needs a `kubernetes` provider for the cluster in its options."""

    TYPE = "mlops:gpu_monitoring:GpuMonitoring"

    def __init__(
        self, name: str, args: GpuMonitoringArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(self.TYPE, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        log_group = encrypted_log_group(
            f"{name}-logs",
            self,
            kms_key_arn=args.kms_key_arn,
            retention_days=args.log_retention_days,
            tags=args.tags,
            protect=args.protect,
        )
        workspace = aws.amp.Workspace(
            f"{name}-workspace",
            kms_key_arn=args.kms_key_arn,
            logging_configuration=aws.amp.WorkspaceLoggingConfigurationArgs(
                log_group_arn=pulumi.Output.concat(log_group.arn, ":*")
            ),
            # The scraper tags its destination; declaring the tag keeps updates from removing it.
            tags={**args.tags, "AMPAgentlessScraper": ""},
            # Its metrics history is state: a replacement would start the graphs from nothing.
            opts=stateful_options(self, args.protect),
        )
        scraper = aws.amp.Scraper(
            f"{name}-scraper",
            source=aws.amp.ScraperSourceArgs(
                eks=aws.amp.ScraperSourceEksArgs(
                    cluster_arn=args.cluster_arn,
                    subnet_ids=args.subnet_ids,
                    security_group_ids=[args.cluster_security_group_id],
                )
            ),
            destination=aws.amp.ScraperDestinationArgs(
                amp=aws.amp.ScraperDestinationAmpArgs(workspace_arn=workspace.arn)
            ),
            scrape_configuration=yaml.safe_dump(
                scrape_configuration(args.metrics_namespace, args.rollouts_namespace)
            ),
            tags=dict(args.tags),
            opts=child,
        )
        self._scraper_access(name, args, scraper.role_arn)
        chart_release(
            f"{name}-kube-state-metrics",
            args.kube_state_metrics,
            namespace=args.metrics_namespace,
            values={
                "image": image_tag(args.kube_state_metrics, args.kubernetes_version),
                "nodeSelector": dict(args.node_selector),
                # Only the pool labels: the alerts join on them, and every label is a series.
                "metricLabelsAllowlist": [
                    f"nodes=[{POOL_LABEL},{PURPOSE_LABEL},{ACCELERATOR_LABEL}]"
                ],
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.install_after)),
        )
        aws.amp.RuleGroupNamespace(
            f"{name}-rules",
            workspace_id=workspace.id,
            data=yaml.safe_dump(alert_rules(args.pools, args.thresholds), sort_keys=False),
            tags=dict(args.tags),
            opts=child,
        )
        region = aws.get_region_output(opts=pulumi.InvokeOptions(parent=self)).region
        aws.amp.AlertManagerDefinition(
            f"{name}-alert-manager",
            workspace_id=workspace.id,
            definition=pulumi.Output.all(args.alert_topic_arn, region).apply(
                lambda values: alertmanager_definition(values[0], values[1])
            ),
            opts=child,
        )
        self.workspace_arn = workspace.arn
        self.workspace_id = workspace.id
        # Built rather than read from prometheus_endpoint, whose form differs between sources
        # (with and without `api/v1/`): query and write clients append their own paths.
        self.workspace_url = pulumi.Output.concat(
            "https://aps-workspaces.", region, ".amazonaws.com/workspaces/", workspace.id
        )
        self.register_outputs(
            {
                "workspaceArn": self.workspace_arn,
                "workspaceId": self.workspace_id,
                "workspaceUrl": self.workspace_url,
            }
        )

    def _scraper_access(
        self, name: str, args: GpuMonitoringArgs, scraper_role_arn: pulumi.Output[str]
    ) -> None:
        """Map the scraper's role to a user that may only read what it scrapes."""
        child = pulumi.ResourceOptions(parent=self)
        aws.eks.AccessEntry(
            f"{name}-scraper-access",
            cluster_name=args.cluster_name,
            principal_arn=scraper_role_arn,
            user_name=SCRAPER_USER,
            type="STANDARD",
            tags=dict(args.tags),
            opts=child,
        )
        role = k8s.rbac.v1.ClusterRole(
            f"{name}-scraper-role",
            rules=[
                k8s.rbac.v1.PolicyRuleArgs(
                    api_groups=[""],
                    resources=["nodes", "nodes/metrics", "services", "endpoints", "pods"],
                    verbs=["get", "list", "watch"],
                ),
                k8s.rbac.v1.PolicyRuleArgs(non_resource_urls=["/metrics"], verbs=["get"]),
            ],
            opts=child,
        )
        k8s.rbac.v1.ClusterRoleBinding(
            f"{name}-scraper-binding",
            role_ref=k8s.rbac.v1.RoleRefArgs(
                api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=role.metadata.name
            ),
            subjects=[
                k8s.rbac.v1.SubjectArgs(
                    api_group="rbac.authorization.k8s.io", kind="User", name=SCRAPER_USER
                )
            ],
            opts=child,
        )
