"""Device plugins and GPU metrics land only on GPU nodes; time slicing per pool."""

from __future__ import annotations

import yaml

from components.gpu_software import time_slicing_configs
from mlops_platform.rendered import RenderedStack
from tests.conftest import named

RELEASE = "kubernetes:helm.sh/v3:Release"
GPU_PLACEMENT = {
    "nodeSelector": {"mlops.platform/accelerator": "nvidia"},
    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
}


def test_the_device_plugin_and_dcgm_exporter_run_only_on_gpu_nodes(rendered: RenderedStack) -> None:
    for name in ("gpu-software-nvidia-device-plugin", "gpu-software-dcgm-exporter"):
        values = named(rendered, RELEASE, name).inputs["values"]
        assert values["nodeSelector"] == GPU_PLACEMENT["nodeSelector"]
        assert values["tolerations"] == GPU_PLACEMENT["tolerations"]


def test_chart_versions_are_pinned_from_config(rendered: RenderedStack) -> None:
    versions = {r.inputs["name"]: r.inputs["version"] for r in rendered.of_type(RELEASE)}
    assert versions["nvidia-device-plugin"] == "0.18.0"
    assert versions["dcgm-exporter"] == "4.1.3"


def test_dev_inference_gpus_are_shared_four_ways(rendered_stacks: dict[str, RenderedStack]) -> None:
    values = named(rendered_stacks["dev"], RELEASE, "gpu-software-nvidia-device-plugin").inputs[
        "values"
    ]
    configs = values["config"]["map"]
    assert values["config"]["default"] == "default"
    sharing = yaml.safe_load(configs["inference"])["sharing"]["timeSlicing"]["resources"]
    assert sharing == [{"name": "nvidia.com/gpu", "replicas": 4}]


def test_pools_without_sharing_get_whole_gpus() -> None:
    configs = time_slicing_configs({})
    assert list(configs) == ["default"]
    assert "sharing" not in yaml.safe_load(configs["default"])
