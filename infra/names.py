"""Physical names: the rule, and what AWS accepts.

The rule: the platform names a resource explicitly only where a name must be known before the
resource exists (the EKS cluster, its log group) or is shared with other software (feature
groups, Feast tables); Pulumi auto-names everything else, `<logical name>-<7 random hex>`. A
name built from config that AWS would refuse is a config error naming the key to change; the
platform never shortens one silently, so a name stays what config says it is.

Each service's limits are from its API reference (the CreateX request's name constraints).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

AUTONAME_SUFFIX: Final = 8
"""What Pulumi's auto-naming adds to a logical name: `-` and seven random hex characters."""


@dataclass(frozen=True)
class NameRule:
    what: str
    max_length: int
    pattern: str
    allowed: str
    """The characters, in words for an error message."""

    def problem(self, name: str) -> str | None:
        if len(name) > self.max_length:
            return (
                f"gives {self.what} {name!r}, {len(name)} characters; AWS allows {self.max_length}"
            )
        if not re.fullmatch(self.pattern, name):
            return f"gives {self.what} {name!r}; AWS allows {self.allowed} only"
        return None


EKS_CLUSTER: Final = NameRule(
    "EKS cluster name",
    100,
    r"[0-9A-Za-z][A-Za-z0-9_-]*",
    "letters, digits, - and _, starting with a letter or digit",
)
EKS_NODE_GROUP: Final = NameRule(
    "node group name",
    63,
    r"[0-9A-Za-z][A-Za-z0-9_-]*",
    "letters, digits, - and _, starting with a letter or digit",
)
IAM_ROLE: Final = NameRule("IAM role name", 64, r"[\w+=,.@-]+", "letters, digits and +=,.@_-")
SAGEMAKER_FEATURE_GROUP: Final = NameRule(
    "feature group name",
    64,
    r"[a-zA-Z0-9]([_-]*[a-zA-Z0-9])*",
    "letters and digits, joined by - or _",
)


MLFLOW_TRACKING_SERVER: Final = NameRule(
    "MLflow tracking server name",
    256,
    r"[a-zA-Z0-9](-*[a-zA-Z0-9])*",
    "letters and digits, joined by -",
)


CASE_AND_SEPARATOR_FREE: Final = re.compile(r"[a-z0-9-]+")
"""Names that Glue's lowercase, underscore-separated form keeps apart: two such names that
differ stay different once lowercased with `-` turned to `_`."""


def default_cluster_name(project: str, stack: str) -> str:
    return f"{project}-{stack}"


def tracking_server_name(cluster_name: str) -> str:
    """The MLflow tracking server's name: one per stack, named after its cluster. Every name
    eks.clusterName or a stack's default allows makes one AWS accepts (tested), so config
    needs no check of its own."""
    return f"{cluster_name}-mlflow"


def node_group_logical_name(pool: str) -> str:
    """The logical name of a GPU pool's node group (components.node_pool names it so)."""
    return f"gpu-{pool}-node-group"


def workload_role_logical_name(workload: str) -> str:
    """The logical name of a workload's IAM role (components.pod_role names it so)."""
    return f"workload-{workload}-role"


def feature_group_name(cluster_name: str, key: str) -> str:
    return f"{cluster_name}-{key}"


def longest_key(rule: NameRule, logical_name_of: Callable[[str], str]) -> int:
    """The longest config key whose auto-named resource still fits the rule."""
    return rule.max_length - len(logical_name_of("")) - AUTONAME_SUFFIX


@functools.cache
def _botocore_loader() -> Any:
    import botocore.loaders  # noqa: PLC0415  (only a render needs it)

    return botocore.loaders.Loader()


@functools.cache
def region_partitions() -> dict[str, str]:
    """Each region's partition (aws, aws-cn, aws-us-gov, ...), from botocore's endpoint data."""
    endpoints = _botocore_loader().load_data("endpoints")
    return {
        region: partition["partition"]
        for partition in endpoints["partitions"]
        for region in partition["regions"]
    }


@functools.cache
def eks_regions() -> frozenset[str]:
    """Regions with an EKS endpoint, from botocore's endpoint data (every partition)."""
    endpoints = _botocore_loader().load_data("endpoints")
    return frozenset(
        region
        for partition in endpoints["partitions"]
        for region in partition["services"].get("eks", {}).get("endpoints", {})
        if region in partition["regions"]
    )


@functools.cache
def ec2_instance_types() -> frozenset[str]:
    """Every instance type EC2's API knows (botocore's EC2 model, `InstanceType`)."""
    model = _botocore_loader().load_service_model("ec2", "service-2")
    return frozenset(model["shapes"]["InstanceType"]["enum"])
