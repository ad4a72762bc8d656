"""The metrics agent: Prometheus in agent mode writing to the platform's workspace through Pod
Identity, scraping model-server pods of the serving namespaces and nothing else, with the labels
canary analyses and alerts select by."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.metrics_agent import MetricsAgent, MetricsAgentArgs
from mlops_guardrails import charts
from mlops_platform.rendered import RenderedStack
from tests.components.data_fixtures import ACCOUNT, REGION, controller_install
from tests.conftest import run_component

WORKSPACE_ARN = f"arn:aws:aps:{REGION}:{ACCOUNT}:workspace/ws-0123"
WORKSPACE_URL = f"https://aps-workspaces.{REGION}.amazonaws.com/workspaces/ws-0123"


@pytest.fixture(scope="module")
def rendered() -> RenderedStack:
    return run_component(
        lambda: MetricsAgent(
            "agent",
            MetricsAgentArgs(
                install=controller_install(charts.PROMETHEUS),
                workspace_arn=WORKSPACE_ARN,
                workspace_url=WORKSPACE_URL,
                region=REGION,
                namespace="monitoring",
                scraped_namespaces=("serving", "ads"),
            ),
        )
    )


def values(rendered: RenderedStack) -> dict[str, Any]:
    [release] = rendered.of_type("kubernetes:helm.sh/v3:Release")
    found: dict[str, Any] = release.inputs["values"]
    return found


def test_it_runs_as_an_agent_writing_to_the_workspace_with_sigv4(rendered: RenderedStack) -> None:
    server = values(rendered)["server"]
    assert "--agent" in server["defaultFlagsOverride"]
    assert not any(flag.startswith("--storage.tsdb") for flag in server["defaultFlagsOverride"])
    assert server["remoteWrite"] == [
        {"url": f"{WORKSPACE_URL}/api/v1/remote_write", "sigv4": {"region": REGION}}
    ]
    assert values(rendered)["serverFiles"]["prometheus.yml"]["rule_files"] == []
    [policy] = rendered.of_type("aws:iam/rolePolicy:RolePolicy")
    [statement] = json.loads(policy.inputs["policy"])["Statement"]
    assert (statement["Action"], statement["Resource"]) == ("aps:RemoteWrite", WORKSPACE_ARN)
    [association] = rendered.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
    assert association.inputs["namespace"] == "monitoring"
    assert (
        association.inputs["serviceAccount"]
        == (values(rendered)["serviceAccounts"]["server"]["name"])
    )


def test_it_scrapes_model_servers_of_the_serving_namespaces_and_nothing_else(
    rendered: RenderedStack,
) -> None:
    jobs = values(rendered)["scrapeConfigs"]
    # Every cluster-wide job the chart defines is off; its self-scrape (`prometheus`, the
    # agent's own health) is left on.
    chart_jobs = {
        "kubernetes-api-servers",
        "kubernetes-nodes",
        "kubernetes-nodes-cadvisor",
        "kubernetes-pods",
        "kubernetes-pods-slow",
        "kubernetes-service-endpoints",
        "kubernetes-service-endpoints-slow",
        "kubernetes-services",
        "prometheus-pushgateway",
    }
    assert {name for name, job in jobs.items() if job.get("enabled") is False} == chart_jobs
    assert set(jobs) - chart_jobs == {"model-servers"}
    job = jobs["model-servers"]
    assert job["kubernetes_sd_configs"] == [
        {"role": "pod", "namespaces": {"names": ["ads", "serving"]}}
    ]
    relabels = job["relabel_configs"]
    assert {
        "source_labels": ["__meta_kubernetes_pod_label_app_kubernetes_io_component"],
        "regex": "model-server",
        "action": "keep",
    } in relabels
    targets = {r["target_label"]: r["source_labels"][0] for r in relabels if "target_label" in r}
    assert targets["model_service"] == "__meta_kubernetes_pod_label_app_kubernetes_io_name"
    assert targets["rollouts_pod_template_hash"] == (
        "__meta_kubernetes_pod_label_rollouts_pod_template_hash"
    )


def test_none_of_the_charts_cluster_wide_parts_run_and_its_pods_are_restricted(
    rendered: RenderedStack,
) -> None:
    chosen = values(rendered)
    for sub_chart in (
        "alertmanager",
        "kube-state-metrics",
        "prometheus-node-exporter",
        "prometheus-pushgateway",
    ):
        assert chosen[sub_chart] == {"enabled": False}
    server = chosen["server"]
    assert server["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert server["containerSecurityContext"]["capabilities"] == {"drop": ["ALL"]}
    reloader = chosen["configmapReload"]["prometheus"]["containerSecurityContext"]
    assert reloader["allowPrivilegeEscalation"] is False
