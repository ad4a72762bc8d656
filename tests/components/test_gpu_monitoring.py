"""GPU monitoring: the alert rules as data, and the managed Prometheus wiring in each plan."""

from __future__ import annotations

import yaml

from components.gpu_monitoring import (
    SCRAPER_USER,
    AlertThresholds,
    MonitoredPool,
    alert_rules,
    alertmanager_definition,
    scrape_configuration,
)
from mlops_platform.rendered import RenderedStack
from tests.conftest import named

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


def test_neuron_pools_are_counted_in_neuron_devices() -> None:
    [ceiling] = rules_by_alert(
        alert_rules([MonitoredPool("inf", "aws.amazon.com/neuron", 12)], THRESHOLDS)
    )["GpuPoolAtCeiling"]
    assert 'resource="aws_amazon_com_neuron"' in str(ceiling["expr"])


def test_scraping_keeps_only_the_exporters_and_labels_samples_with_their_node() -> None:
    jobs = scrape_configuration("monitoring")["scrape_configs"]
    assert [job["job_name"] for job in jobs] == ["dcgm-exporter", "kube-state-metrics"]
    for job in jobs:
        assert job["kubernetes_sd_configs"] == [
            {"role": "pod", "namespaces": {"names": ["monitoring"]}}
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


def test_the_workspace_is_encrypted_and_logs_rule_errors(rendered: RenderedStack) -> None:
    [workspace] = rendered.of_type("aws:amp/workspace:Workspace")
    key = named(rendered, "aws:kms/key:Key", "monitoring-key").outputs["arn"]
    log_group = named(rendered, "aws:cloudwatch/logGroup:LogGroup", "monitoring-logs")
    assert workspace.inputs["kmsKeyArn"] == key
    assert workspace.inputs["loggingConfiguration"] == {
        "logGroupArn": f"{log_group.outputs['arn']}:*"
    }
    assert log_group.inputs["kmsKeyId"] == key
    assert rendered.outputs["prometheusWorkspaceArn"] == workspace.outputs["arn"]


def test_the_scraper_reads_the_cluster_through_a_read_only_user(rendered: RenderedStack) -> None:
    [scraper] = rendered.of_type("aws:amp/scraper:Scraper")
    [cluster] = rendered.of_type("aws:eks/cluster:Cluster")
    [workspace] = rendered.of_type("aws:amp/workspace:Workspace")
    source = scraper.inputs["source"]["eks"]
    assert source["clusterArn"] == cluster.outputs["arn"]
    assert source["subnetIds"] == rendered.outputs["privateSubnetIds"]
    assert scraper.inputs["destination"]["amp"]["workspaceArn"] == workspace.outputs["arn"]
    entry = named(rendered, "aws:eks/accessEntry:AccessEntry", "monitoring-scraper-access")
    assert (entry.inputs["principalArn"], entry.inputs["userName"]) == (
        scraper.outputs["roleArn"],
        SCRAPER_USER,
    )
    [role] = [
        r
        for r in rendered.of_type("kubernetes:rbac.authorization.k8s.io/v1:ClusterRole")
        if r.name == "monitoring-scraper-role"
    ]
    verbs = {verb for rule in role.inputs["rules"] for verb in rule["verbs"]}
    assert verbs == {"get", "list", "watch"}
    [binding] = [
        r
        for r in rendered.of_type("kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding")
        if r.name == "monitoring-scraper-binding"
    ]
    assert binding.inputs["subjects"][0]["name"] == SCRAPER_USER


def test_rules_cover_every_pool_of_the_stack(rendered: RenderedStack) -> None:
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


def test_kube_state_metrics_exports_only_the_pool_labels(rendered: RenderedStack) -> None:
    release = named(rendered, "kubernetes:helm.sh/v3:Release", "monitoring-kube-state-metrics")
    assert release.inputs["values"]["metricLabelsAllowlist"] == [
        "nodes=[mlops.platform/pool,mlops.platform/purpose,mlops.platform/accelerator]"
    ]
    assert release.inputs["namespace"] == "monitoring"
