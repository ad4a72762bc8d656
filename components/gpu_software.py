"""What makes accelerator nodes usable: device plugins, GPU metrics and GPU sharing.

Each runs on every node of its vendor's pools and only there, selected by the pool label
`mlops.platform/accelerator` rather than by node feature discovery (see the README's "Scheduling
the device plugins"). The NVIDIA device plugin gets a named config per time-sliced pool; nodes
pick theirs by the `nvidia.com/device-plugin.config` label the pool sets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import pulumi
import yaml

from components.accelerators import Vendor
from components.helm import chart_release
from mlops_guardrails.charts import ChartContract
from mlops_guardrails.vocabulary import ACCELERATOR_LABEL, EFA_LABEL

NAMESPACE: Final = "kube-system"
"""Where node software runs: its pods need host access Pod Security's `baseline` refuses, and EKS
leaves kube-system unlabelled, so the cluster's default level (`privileged`) admits them."""


@dataclass(frozen=True)
class GpuSoftwareArgs:
    vendors: Sequence[Vendor]
    """Which accelerator vendors the cluster's pools use."""
    time_slicing: Mapping[str, int]
    """Pool name to how many pods share each of its GPUs."""
    nvidia_device_plugin: ChartContract
    dcgm_exporter: ChartContract
    neuron_device_plugin: ChartContract
    efa_device_plugin: ChartContract | None
    """Installed when a pool has EFA interfaces: without it they are never advertised
    (`vpc.amazonaws.com/efa`), NCCL falls back to TCP, and Karpenter never counts such a node
    initialized."""
    install_after: Sequence[pulumi.Resource]
    """What its releases wait for: the system nodes and CoreDNS their pods need, and the namespace
    they install into when the stack makes it."""


def placement(vendor: Vendor) -> dict[str, Any]:
    """Helm values that put a DaemonSet on every node of one vendor's pools and nowhere else."""
    return {
        # Replaces the charts' default affinity: NVIDIA's expects labels from node feature
        # discovery, which nothing here installs; Neuron's lists instance types a release at a time.
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {"key": ACCELERATOR_LABEL, "operator": "In", "values": [vendor]}
                            ]
                        }
                    ]
                }
            }
        },
        # Every taint, not only the vendor's: a pool's own taints must not leave its GPUs
        # unadvertised.
        "tolerations": [{"operator": "Exists"}],
    }


def time_slicing_configs(replicas_by_pool: Mapping[str, int]) -> dict[str, str]:
    """Device plugin configs by name: whole GPUs by default, shared GPUs per pool."""
    configs = {"default": yaml.safe_dump({"version": "v1"})}
    for pool, replicas in sorted(replicas_by_pool.items()):
        configs[pool] = yaml.safe_dump(
            {
                "version": "v1",
                "sharing": {
                    "timeSlicing": {"resources": [{"name": "nvidia.com/gpu", "replicas": replicas}]}
                },
            }
        )
    return configs


class GpuSoftware(pulumi.ComponentResource):
    TYPE = "mlops:gpu_software:GpuSoftware"

    def __init__(
        self, name: str, args: GpuSoftwareArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(self.TYPE, name, None, opts)
        child = pulumi.ResourceOptions(parent=self, depends_on=list(args.install_after))
        if "nvidia" in args.vendors:
            chart_release(
                f"{name}-nvidia-device-plugin",
                args.nvidia_device_plugin,
                namespace=NAMESPACE,
                values={
                    **placement("nvidia"),
                    "config": {
                        "map": time_slicing_configs(args.time_slicing),
                        "default": "default",
                    },
                },
                opts=child,
            )
            chart_release(
                f"{name}-dcgm-exporter",
                args.dcgm_exporter,
                namespace=NAMESPACE,
                values={**placement("nvidia"), "serviceMonitor": {"enabled": False}},
                opts=child,
            )
        if "neuron" in args.vendors:
            chart_release(
                f"{name}-neuron-device-plugin",
                args.neuron_device_plugin,
                release_name="neuron-device-plugin",
                namespace=NAMESPACE,
                values={"devicePlugin": placement("neuron"), "npd": {"enabled": False}},
                opts=child,
            )
        if args.efa_device_plugin is not None:
            chart_release(
                f"{name}-efa-device-plugin",
                args.efa_device_plugin,
                release_name="aws-efa-k8s-device-plugin",
                namespace=NAMESPACE,
                values={
                    # Only EFA pools' nodes have interfaces to advertise; the chart's default
                    # affinity (EFA-capable instance types) still applies on top.
                    "nodeSelector": {EFA_LABEL: "true"},
                    "tolerations": [{"operator": "Exists"}],
                },
                opts=child,
            )
        self.register_outputs({})
