"""Fixture arguments shared by the GPU tests: pool specs, the cluster the pools join, and the
whole platform rendered from a small config for each GPU backend."""

from __future__ import annotations

import fcntl
import functools
import json
from collections.abc import Sequence
from typing import Any, Final

from components.accelerators import INSTANCE_TYPES, pool_hardware
from components.gpu_node_pool import GpuPoolSpec
from components.node_pool import AmiRelease, RootVolume
from infra.program import build_platform
from mlops_platform.project import PulumiProject
from mlops_platform.render_cache import RenderCache, blob_id, render_key, working_tree_sources
from mlops_platform.rendered import RenderedStack
from tests.configs import profile
from tests.conftest import REPO_ROOT, run_component

CLUSTER_NAME: Final = "ml-test"
NODE_ROLE_ARN: Final = "arn:aws:iam::123456789012:role/ml-test-nodes"
EBS_KEY_ARN: Final = "arn:aws:kms:eu-west-1:123456789012:key/ebs"
TAGS: Final = {"mlops:environment": "dev"}
RESERVATION_ID: Final = "cr-0123456789abcdef0"
AMI_RELEASE: Final = AmiRelease("1.35.6-20260714")


def gpu_spec(
    name: str, instance_types: Sequence[str] = ("p5.48xlarge",), **overrides: Any
) -> GpuPoolSpec:
    """A pool spec whose hardware follows from its instance types, as `pool_spec` derives it."""
    hardware = pool_hardware(instance_types)
    defaults: dict[str, Any] = {
        "purpose": "training",
        "capacity": "on-demand",
        "min_nodes": 0,
        "desired_nodes": 0,
        "max_nodes": 2,
        "max_accelerators": 2 * hardware.max_per_node,
        "root_volume": RootVolume(size_gib=200, throughput=500),
        "ami_release": AMI_RELEASE,
    }
    return GpuPoolSpec(
        name=name,
        instance_types=tuple(instance_types),
        hardware=hardware,
        min_per_node=min(INSTANCE_TYPES[t].count for t in instance_types),
        **{**defaults, **overrides},
    )


# Each backend with a pinned-zone pool, a time-sliced pool and a Neuron pool. Chart versions are
# the defaults: only versions with a chart contract are accepted.
PLATFORM_GPU: Final[dict[str, dict[str, Any]]] = {
    "managed-node-groups": {
        "pools": {
            "train": {
                "purpose": "training",
                "instanceTypes": ["p5.48xlarge"],
                "maxNodes": 2,
                "maxGpus": 16,
                "efa": True,
                "zone": 2,
            },
            "chat": {
                "purpose": "inference",
                "instanceTypes": ["g6.xlarge"],
                "capacity": {"type": "spot"},
                "maxNodes": 2,
                "maxGpus": 2,
                "timeSlicingReplicas": 4,
            },
            "serve": {
                "purpose": "inference",
                "instanceTypes": ["inf2.xlarge"],
                "maxNodes": 2,
                "maxGpus": 2,
            },
        },
        "teams": {
            "research": {"gpuQuota": 16, "neuronQuota": 2},
            # Runs model services from its own project, and no workload of this config.
            "serving": {
                "gpuQuota": 2,
                "servesModels": True,
                "ingress": [{"ports": [8080], "fromNamespaces": ["research"]}],
            },
        },
    },
    "karpenter": {
        "backend": "karpenter",
        "pools": {
            "train": {
                "purpose": "training",
                "instanceTypes": ["g6e.12xlarge"],
                "maxNodes": 2,
                "maxGpus": 8,
                "efa": True,
                "zone": 2,
            },
            "chat": {
                "purpose": "inference",
                "instanceTypes": ["g6.xlarge"],
                "maxNodes": 2,
                "maxGpus": 2,
                "zone": 1,
            },
            "serve": {
                "purpose": "inference",
                "instanceTypes": ["inf2.xlarge", "inf2.8xlarge"],
                "maxNodes": 2,
                "maxGpus": 2,
            },
        },
    },
}


@functools.cache
def gpu_platform(backend: str) -> RenderedStack:
    """The whole program for the config above: only for behaviour that spans components
    (config reaching them, one component's output feeding another). Rendered once for every
    test worker: through the render cache, keyed by the program's sources and this config, the
    first worker to need it renders while the others wait for its entry."""
    project = PulumiProject.load(REPO_ROOT)
    sources = {
        **working_tree_sources(project, "dev"),
        "config": blob_id(json.dumps(PLATFORM_GPU[backend], sort_keys=True).encode()),
    }
    key = render_key(project.name, f"gpu-platform-{backend}", sources)
    cache = RenderCache.for_project(project)
    assert cache.directory is not None
    cache.directory.mkdir(parents=True, exist_ok=True)
    with (cache.directory / f".{key}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        hit = cache.get(key)
        if hit is not None:
            return hit
        config = profile("dev", gpu=PLATFORM_GPU[backend])
        rendered = run_component(
            lambda: build_platform(config, stack="test", project="mlops-platform")
        )
        cache.put(key, rendered)
        return rendered
