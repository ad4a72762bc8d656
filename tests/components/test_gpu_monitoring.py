"""GPU monitoring: the alert rules as data; the managed Prometheus workspace, scraper and alert
manager for the pools and thresholds it is given; and the monitoring every stack runs."""

from __future__ import annotations

import pytest
import yaml

from components.gpu_monitoring import (
    SCRAPER_USER,
    AlertThresholds,
    GpuMonitoring,
    GpuMonitoringArgs,
    MonitoredPool,
    alert_rules,
    alertmanager_definition,
    scrape_configuration,
)
from mlops_guardrails import charts
from mlops_platform.rendered import RenderedStack
from tests.components.data_fixtures import (
    CLUSTER_ARN,
    CLUSTER_NAME,
    KEY_ARN,
    REGION,
    TAGS,
    TOPIC_ARN,
)
from tests.components.gpu_fixtures import gpu_platform
from tests.conftest import named, run_component

WORKSPACE = "aws:amp/workspace:Workspace"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
SUBNETS = ["subnet-0aaaaaaaaaaaaaaaa", "subnet-0bbbbbbbbbbbbbbbb"]
NVIDIA_AND_NEURON = (
    MonitoredPool("training", "nvidia.com/gpu", 32),
    MonitoredPool("inference", "aws.amazon.com/neuron", 12),
)
THRESHOLDS = AlertThresholds(
    gpu_idle_minutes=45,
    gpu_idle_utilization_percent=5,
    node_not_ready_minutes=10,
    at_ceiling_minutes=30,
)


def rules_by_alert(rules: dict[str, object]) -> dict[str, list[dict[str, object]]]:
    [group] = rules["groups"]  # type: ignore[index]
    found: dict[str, list[dict[str, object]]] = {}
    for rule in group["rules"]:
        found.setdefault(rule["alert"], []).append(rule)
    return found


def test_each_pool_is_alerted_at_its_own_ceiling() -> None:
    pools = [
        MonitoredPool("train", "nvidia.com/gpu", 16),
        MonitoredPool("infer", "nvidia.com/gpu", 4),
    ]
    ceilings = rules_by_alert(alert_rules(pools, THRESHOLDS))["GpuPoolAtCeiling"]
    assert [(r["labels"]["pool"], r["for"]) for r in ceilings] == [  # type: ignore[index]
        ("train", "30m"),
        ("infer", "30m"),
    ]
    assert ceilings[0]["expr"] == (
        'sum(kube_node_status_capacity{resource="nvidia_com_gpu"} * on (node) group_left () '
        'kube_node_labels{label_mlops_platform_pool="train"}) >= 16'
    )


def test_idle_gpus_alert_after_the_configured_time_and_name_their_pool() -> None:
    [idle] = rules_by_alert(alert_rules([], THRESHOLDS))["GpuIdle"]
    assert idle["for"] == "45m"
    assert idle["expr"] == (
        "(avg by (node) (DCGM_FI_DEV_GPU_UTIL) < 5) "
        "* on (node) group_left (label_mlops_platform_pool) kube_node_labels"
    )


def test_only_accelerator_nodes_raise_the_not_ready_alert() -> None:
    [not_ready] = rules_by_alert(alert_rules([], THRESHOLDS))["GpuNodeNotReady"]
    assert not_ready["for"] == "10m" and not_ready["labels"] == {"severity": "critical"}
    assert 'kube_node_labels{label_mlops_platform_accelerator!=""}' in str(not_ready["expr"])


def test_a_time_sliced_pools_ceiling_is_in_physical_gpus() -> None:
    """Its nodes advertise each GPU once per share; one node is not a pool at its ceiling."""
    [ceiling] = rules_by_alert(
        alert_rules([MonitoredPool("chat", "nvidia.com/gpu", 4, shares=4)], THRESHOLDS)
    )["GpuPoolAtCeiling"]
    assert str(ceiling["expr"]).endswith('label_mlops_platform_pool="chat"}) / 4 >= 4')


def test_neuron_pools_are_counted_in_neuron_devices() -> None:
    [ceiling] = rules_by_alert(
        alert_rules([MonitoredPool("inf", "aws.amazon.com/neuron", 12)], THRESHOLDS)
    )["GpuPoolAtCeiling"]
    assert 'resource="aws_amazon_com_neuron"' in str(ceiling["expr"])


@pytest.mark.parametrize("backend", ["managed-node-groups", "karpenter"])
def test_each_scrape_job_looks_where_its_exporter_is_installed_and_labels_samples_by_node(
    backend: str,
) -> None:
    rendered = gpu_platform(backend)
    [scraper] = rendered.of_type("aws:amp/scraper:Scraper")
    jobs = yaml.safe_load(scraper.inputs["scrapeConfiguration"])["scrape_configs"]
    installed_in = {
        release.inputs["name"]: release.inputs["namespace"]
        for release in rendered.of_type("kubernetes:helm.sh/v3:Release")
    }
    # Argo Rollouts runs where a team serves models (the managed-node-groups fixture's does).
    rollouts = ["argo-rollouts"] if backend == "managed-node-groups" else []
    assert [job["job_name"] for job in jobs] == ["dcgm-exporter", "kube-state-metrics", *rollouts]
    for job in jobs:
        assert job["kubernetes_sd_configs"] == [
            {"role": "pod", "namespaces": {"names": [installed_in[job["job_name"]]]}}
        ]
        assert {
            "source_labels": ["__meta_kubernetes_pod_node_name"],
            "target_label": "node",
        } in job["relabel_configs"]


def test_alert_manager_sends_everything_to_the_topic_in_its_region() -> None:
    definition = yaml.safe_load(alertmanager_definition("arn:aws:sns:eu-west-1:1:t", "eu-west-1"))
    config = yaml.safe_load(definition["alertmanager_config"])
    [receiver] = config["receivers"]
    [sns] = receiver["sns_configs"]
    assert config["route"]["receiver"] == receiver["name"]
    assert (sns["topic_arn"], sns["sigv4"]) == (
        "arn:aws:sns:eu-west-1:1:t",
        {"region": "eu-west-1"},
    )


def monitoring_args(**overrides: object) -> GpuMonitoringArgs:
    defaults: dict[str, object] = {
        "cluster_name": CLUSTER_NAME,
        "cluster_arn": CLUSTER_ARN,
        "subnet_ids": SUBNETS,
        "cluster_security_group_id": "sg-0cccccccccccccccc",
        "kms_key_arn": KEY_ARN,
        "alert_topic_arn": TOPIC_ARN,
        "pools": NVIDIA_AND_NEURON,
        "thresholds": THRESHOLDS,
        "metrics_namespace": "metrics",
        "rollouts_namespace": None,
        "install_after": (),
        "kube_state_metrics": charts.KUBE_STATE_METRICS,
        "kubernetes_version": "1.35",
        "node_selector": {"mlops.platform/pool": "system"},
        "log_retention_days": 90,
        "tags": TAGS,
        "protect": False,
    }
    return GpuMonitoringArgs(**{**defaults, **overrides})  # type: ignore[arg-type]


def render_monitoring(**overrides: object) -> RenderedStack:
    args = monitoring_args(**overrides)
    return run_component(lambda: GpuMonitoring("monitoring", args))


@pytest.fixture(scope="module")
def monitoring() -> RenderedStack:
    return render_monitoring()


def test_the_workspace_and_its_logs_are_encrypted_and_rule_errors_logged(
    monitoring: RenderedStack,
) -> None:
    [workspace] = monitoring.of_type(WORKSPACE)
    [log_group] = monitoring.of_type(LOG_GROUP)
    assert workspace.inputs["kmsKeyArn"] == KEY_ARN
    assert workspace.inputs["loggingConfiguration"] == {
        "logGroupArn": f"{log_group.outputs['arn']}:*"
    }
    assert (log_group.inputs["kmsKeyId"], log_group.inputs["retentionInDays"]) == (KEY_ARN, 90)
    # The scraper tags its destination; declaring the tag keeps updates from removing it.
    assert workspace.inputs["tags"] == {**TAGS, "AMPAgentlessScraper": ""}
    [component] = monitoring.of_type(GpuMonitoring.TYPE)
    assert component.outputs == {
        "workspaceArn": workspace.outputs["arn"],
        "workspaceId": workspace.id,
        # What query and write clients append their paths to (/api/v1/...).
        "workspaceUrl": f"https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/{workspace.id}",
    }


@pytest.mark.parametrize("protect", [True, False])
def test_protected_monitoring_keeps_its_metrics_history_and_logs(protect: bool) -> None:
    rendered = render_monitoring(protect=protect)
    [log_group] = rendered.of_type(LOG_GROUP)
    assert log_group.inputs["deletionProtectionEnabled"] is protect
    pinned = sorted(
        (r.type, r.protect, r.retain_on_delete)
        for r in rendered.resources
        if r.protect or r.retain_on_delete
    )
    assert pinned == ([(WORKSPACE, True, True), (LOG_GROUP, True, True)] if protect else [])


def test_the_scraper_reads_the_cluster_through_a_read_only_user(monitoring: RenderedStack) -> None:
    [scraper] = monitoring.of_type("aws:amp/scraper:Scraper")
    [workspace] = monitoring.of_type(WORKSPACE)
    assert scraper.inputs["source"]["eks"] == {
        "clusterArn": CLUSTER_ARN,
        "subnetIds": SUBNETS,
        "securityGroupIds": ["sg-0cccccccccccccccc"],
    }
    assert scraper.inputs["destination"]["amp"]["workspaceArn"] == workspace.outputs["arn"]
    assert yaml.safe_load(scraper.inputs["scrapeConfiguration"]) == scrape_configuration("metrics")
    entry = named(monitoring, "aws:eks/accessEntry:AccessEntry", "monitoring-scraper-access")
    assert entry.inputs["clusterName"] == CLUSTER_NAME
    assert (entry.inputs["principalArn"], entry.inputs["userName"]) == (
        scraper.outputs["roleArn"],
        SCRAPER_USER,
    )
    [role] = monitoring.of_type("kubernetes:rbac.authorization.k8s.io/v1:ClusterRole")
    verbs = {verb for rule in role.inputs["rules"] for verb in rule["verbs"]}
    assert verbs == {"get", "list", "watch"}
    [binding] = monitoring.of_type("kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding")
    assert binding.inputs["roleRef"]["name"] == role.outputs["metadata"]["name"]
    assert [s["name"] for s in binding.inputs["subjects"]] == [SCRAPER_USER]


@pytest.mark.parametrize(
    ("pools", "thresholds"),
    [
        ((), THRESHOLDS),
        (
            NVIDIA_AND_NEURON,
            AlertThresholds(
                gpu_idle_minutes=120,
                gpu_idle_utilization_percent=10,
                node_not_ready_minutes=5,
                at_ceiling_minutes=60,
            ),
        ),
    ],
    ids=["no-pools", "nvidia-and-neuron-pools"],
)
def test_the_workspace_evaluates_the_rules_for_its_pools_and_thresholds(
    pools: tuple[MonitoredPool, ...], thresholds: AlertThresholds
) -> None:
    rendered = render_monitoring(pools=pools, thresholds=thresholds)
    [namespace] = rendered.of_type("aws:amp/ruleGroupNamespace:RuleGroupNamespace")
    [workspace] = rendered.of_type(WORKSPACE)
    assert yaml.safe_load(namespace.inputs["data"]) == alert_rules(pools, thresholds)
    assert namespace.property_dependencies["workspaceId"] == [workspace.urn]


def test_the_workspace_alert_manager_publishes_to_the_topic_it_is_given(
    monitoring: RenderedStack,
) -> None:
    [manager] = monitoring.of_type("aws:amp/alertManagerDefinition:AlertManagerDefinition")
    [workspace] = monitoring.of_type(WORKSPACE)
    assert manager.inputs["definition"] == alertmanager_definition(TOPIC_ARN, REGION)
    assert manager.property_dependencies["workspaceId"] == [workspace.urn]


def test_kube_state_metrics_runs_on_system_nodes_and_exports_only_the_pool_labels(
    monitoring: RenderedStack,
) -> None:
    release = named(monitoring, "kubernetes:helm.sh/v3:Release", "monitoring-kube-state-metrics")
    assert release.inputs["values"] == {
        # The release built for the cluster's minor (kube-state-metrics' compatibility matrix).
        "image": {"tag": "v2.19.1"},
        "nodeSelector": {"mlops.platform/pool": "system"},
        "metricLabelsAllowlist": [
            "nodes=[mlops.platform/pool,mlops.platform/purpose,mlops.platform/accelerator]"
        ],
    }
    assert (release.inputs["namespace"], release.inputs["version"]) == (
        "metrics",
        charts.KUBE_STATE_METRICS.version,
    )


def test_every_stack_encrypts_its_metrics_under_the_monitoring_key(rendered: RenderedStack) -> None:
    [workspace] = rendered.of_type(WORKSPACE)
    key = named(rendered, "aws:kms/key:Key", "monitoring-key").outputs["arn"]
    log_group = named(rendered, LOG_GROUP, "monitoring-logs")
    assert (workspace.inputs["kmsKeyArn"], log_group.inputs["kmsKeyId"]) == (key, key)
    assert rendered.outputs["prometheusWorkspaceArn"] == workspace.outputs["arn"]


def test_every_stack_scrapes_its_own_cluster_from_its_private_subnets(
    rendered: RenderedStack,
) -> None:
    [scraper] = rendered.of_type("aws:amp/scraper:Scraper")
    [cluster] = rendered.of_type("aws:eks/cluster:Cluster")
    source = scraper.inputs["source"]["eks"]
    assert source["clusterArn"] == cluster.outputs["arn"]
    assert source["subnetIds"] == rendered.outputs["privateSubnetIds"]


def test_every_stack_alerts_on_each_of_its_gpu_pools(rendered: RenderedStack) -> None:
    [namespace] = rendered.of_type("aws:amp/ruleGroupNamespace:RuleGroupNamespace")
    rules = rules_by_alert(yaml.safe_load(namespace.inputs["data"]))
    pools = {r["labels"]["pool"] for r in rules["GpuPoolAtCeiling"]}  # type: ignore[index]
    node_pools = {
        r.name.removeprefix("gpu-")
        for r in rendered.resources
        if r.type in {"mlops:gpu_node_pool:GpuNodePool", "mlops:karpenter:KarpenterNodePool"}
    }
    assert pools == node_pools and pools
    assert {"GpuNodeNotReady", "GpuIdle"} <= rules.keys()
