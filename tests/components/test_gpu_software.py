"""Device plugins and GPU metrics land only on their vendor's nodes, GPU sharing per pool, and
the chart versions and pools of a stack's config reaching them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
import yaml

from components.accelerators import Vendor
from components.gpu_software import GpuSoftware, GpuSoftwareArgs, time_slicing_configs
from mlops_guardrails import charts
from mlops_platform.rendered import RenderedStack
from tests.components.gpu_fixtures import PLATFORM_GPU, gpu_platform
from tests.configs import profile
from tests.conftest import named, run_component

RELEASE = "kubernetes:helm.sh/v3:Release"
NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
DEVICE_PLUGIN_CONFIG_LABEL = "nvidia.com/device-plugin.config"
CONTRACTS = {
    "nvidia-device-plugin": charts.NVIDIA_DEVICE_PLUGIN,
    "dcgm-exporter": charts.DCGM_EXPORTER,
    "neuron-device-plugin": charts.NEURON_DEVICE_PLUGIN,
    "aws-efa-k8s-device-plugin": charts.EFA_DEVICE_PLUGIN,
}


def software_args(
    vendors: Sequence[Vendor], time_slicing: dict[str, int], *, efa: bool = False
) -> GpuSoftwareArgs:
    return GpuSoftwareArgs(
        vendors=vendors,
        time_slicing=time_slicing,
        nvidia_device_plugin=charts.NVIDIA_DEVICE_PLUGIN,
        dcgm_exporter=charts.DCGM_EXPORTER,
        neuron_device_plugin=charts.NEURON_DEVICE_PLUGIN,
        efa_device_plugin=charts.EFA_DEVICE_PLUGIN if efa else None,
        install_after=(),
    )


@pytest.fixture(scope="module")
def software() -> RenderedStack:
    return run_component(
        lambda: GpuSoftware(
            "gpu-software", software_args(["neuron", "nvidia"], {"chat": 4, "batch": 2}, efa=True)
        )
    )


def releases(rendered: RenderedStack) -> dict[str, dict[str, Any]]:
    return {r.inputs["name"]: r.inputs for r in rendered.of_type(RELEASE)}


@pytest.mark.parametrize(
    ("release", "placed_by", "vendor"),
    [
        ("nvidia-device-plugin", (), "nvidia"),
        ("dcgm-exporter", (), "nvidia"),
        ("neuron-device-plugin", ("devicePlugin",), "neuron"),
    ],
    ids=["nvidia-device-plugin", "dcgm-exporter", "neuron-device-plugin"],
)
def test_device_plugins_and_gpu_metrics_select_their_vendors_pools_whatever_their_taints(
    software: RenderedStack, release: str, placed_by: tuple[str, ...], vendor: str
) -> None:
    """The pool label replaces the charts' default affinity (NVIDIA's waits for node feature
    discovery labels); every taint is tolerated, so a pool's own taints cannot hide its GPUs."""
    values = releases(software)[release]["values"]
    for key in placed_by:
        values = values[key]
    terms = values["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms["nodeSelectorTerms"] == [
        {
            "matchExpressions": [
                {"key": "mlops.platform/accelerator", "operator": "In", "values": [vendor]}
            ]
        }
    ]
    assert values["tolerations"] == [{"operator": "Exists"}]


def test_the_efa_device_plugin_runs_on_every_efa_pool_whatever_its_taints(
    software: RenderedStack,
) -> None:
    """Selected by the label EFA pools carry, on top of the chart's own affinity (EFA-capable
    instance types, templates/daemonset.yaml:49-63)."""
    values = releases(software)["aws-efa-k8s-device-plugin"]["values"]
    assert values == {
        "nodeSelector": {"mlops.platform/efa": "true"},
        "tolerations": [{"operator": "Exists"}],
    }


def test_each_chart_is_installed_at_its_contracts_version_from_its_repository(
    software: RenderedStack,
) -> None:
    installed = releases(software)
    assert {name: release["version"] for name, release in installed.items()} == {
        name: contract.version for name, contract in CONTRACTS.items()
    }
    neuron = installed["neuron-device-plugin"]
    assert neuron["chart"] == charts.NEURON_DEVICE_PLUGIN.repository  # an OCI chart
    plugin = installed["nvidia-device-plugin"]
    assert plugin["repositoryOpts"] == {"repo": charts.NVIDIA_DEVICE_PLUGIN.repository}
    namespaces = {name: release["namespace"] for name, release in installed.items()}
    # Node software needs host access only kube-system's (unenforced) Pod Security admits.
    assert set(namespaces.values()) == {"kube-system"}


@pytest.mark.parametrize(
    ("vendors", "installed"),
    [
        (["nvidia"], ["dcgm-exporter", "nvidia-device-plugin"]),
        (["neuron"], ["neuron-device-plugin"]),
    ],
    ids=["nvidia", "neuron"],
)
def test_only_the_clusters_accelerator_vendors_get_their_software(
    vendors: list[Vendor], installed: list[str]
) -> None:
    rendered = run_component(lambda: GpuSoftware("gpu-software", software_args(vendors, {})))
    assert sorted(releases(rendered)) == installed


def test_time_sliced_pools_share_each_gpu_among_their_replicas(software: RenderedStack) -> None:
    config = releases(software)["nvidia-device-plugin"]["values"]["config"]
    assert config["default"] == "default"
    assert sorted(config["map"]) == ["batch", "chat", "default"]
    sharing = yaml.safe_load(config["map"]["chat"])["sharing"]["timeSlicing"]["resources"]
    assert sharing == [{"name": "nvidia.com/gpu", "replicas": 4}]


def test_pools_without_sharing_get_whole_gpus() -> None:
    configs = time_slicing_configs({})
    assert list(configs) == ["default"]
    assert "sharing" not in yaml.safe_load(configs["default"])


def test_gpu_charts_default_to_pinned_versions() -> None:
    charts = profile("dev").gpu.charts
    assert (
        charts.nvidia_device_plugin,
        charts.dcgm_exporter,
        charts.neuron_device_plugin,
        charts.cluster_autoscaler,
        charts.karpenter,
        charts.kube_state_metrics,
        charts.efa_device_plugin,
    ) == ("0.18.0", "4.1.3", "1.1.1", "9.59.0", "1.12.1", "8.4.0", "v0.5.30")


CHART_CONFIG_KEYS = {
    "nvidia-device-plugin": "nvidiaDevicePlugin",
    "dcgm-exporter": "dcgmExporter",
    "neuron-device-plugin": "neuronDevicePlugin",
    "cluster-autoscaler": "clusterAutoscaler",
    "karpenter": "karpenter",
    "kube-state-metrics": "kubeStateMetrics",
    "aws-efa-k8s-device-plugin": "efaDevicePlugin",
    "argo-rollouts": "argoRollouts",
    "aws-load-balancer-controller": "awsLoadBalancerController",
    "prometheus-agent": "prometheusAgent",
    "keda": "keda",
}


@pytest.mark.parametrize(
    ("backend", "installed"),
    [
        (
            "managed-node-groups",
            [
                "argo-rollouts",
                "aws-efa-k8s-device-plugin",
                "aws-load-balancer-controller",
                "cluster-autoscaler",
                "dcgm-exporter",
                "keda",
                "kube-state-metrics",
                "neuron-device-plugin",
                "nvidia-device-plugin",
                "prometheus-agent",
            ],
        ),
        (
            "karpenter",
            [
                "aws-efa-k8s-device-plugin",
                "dcgm-exporter",
                "karpenter",
                "kube-state-metrics",
                "neuron-device-plugin",
                "nvidia-device-plugin",
            ],
        ),
    ],
    ids=["managed-node-groups", "karpenter"],
)
def test_the_stacks_pools_and_chart_pins_decide_which_charts_run_at_which_version(
    backend: str, installed: list[str]
) -> None:
    """The program derives the vendors from the pools and passes on the stack's chart pins."""
    versions = {name: r["version"] for name, r in releases(gpu_platform(backend)).items()}
    pinned = profile("dev").gpu.charts.model_dump(by_alias=True)
    assert versions == {name: pinned[CHART_CONFIG_KEYS[name]] for name in installed}


def node_labels(rendered: RenderedStack) -> dict[str, dict[str, str]]:
    """Each GPU pool's node labels, from whichever backend runs it."""
    labels = {
        group.inputs["labels"]["mlops.platform/pool"]: group.inputs["labels"]
        for group in rendered.of_type("aws:eks/nodeGroup:NodeGroup")
        if group.name.startswith("gpu-")
    }
    for pool in rendered.of_type(NODE_POOL):
        labels[pool.inputs["metadata"]["name"]] = pool.inputs["spec"]["template"]["metadata"][
            "labels"
        ]
    return labels


def test_a_time_sliced_pools_nodes_pick_a_device_plugin_config_that_shares_their_gpus() -> None:
    """Pool labels and the device plugin's configs come from two components; the names meet.
    Time slicing is for the node-group backend (config refuses it with Karpenter)."""
    backend = "managed-node-groups"
    rendered = gpu_platform(backend)
    plugin = named(rendered, RELEASE, "gpu-software-nvidia-device-plugin")
    configs = plugin.inputs["values"]["config"]["map"]
    shared = {
        pool: labels[DEVICE_PLUGIN_CONFIG_LABEL]
        for pool, labels in node_labels(rendered).items()
        if DEVICE_PLUGIN_CONFIG_LABEL in labels
    }
    assert shared == {"chat": "chat"}
    sharing = yaml.safe_load(configs[shared["chat"]])["sharing"]["timeSlicing"]["resources"]
    replicas = PLATFORM_GPU[backend]["pools"]["chat"]["timeSlicingReplicas"]
    assert sharing == [{"name": "nvidia.com/gpu", "replicas": replicas}]
