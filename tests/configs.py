"""Platform configs for tests: an environment's profile from a minimal config, and a real stack's
config as its program reads it (for stack-wide tests that check a stack was built as it says,
whatever its file holds)."""

from __future__ import annotations

import json
from functools import cache
from typing import Any, Final

from infra.config import CONFIG_KEY, Environment, PlatformConfig, load_platform_config
from mlops_platform.project import PulumiProject

PROJECT: Final = "mlops-platform"
DEV_ENDPOINT: Final = {"endpoint": {"publicAccessCidrs": ["203.0.113.0/24"]}}
PRIVATE_API_PATH: Final = {"privateAccessCidrs": ["10.200.0.0/16"]}
"""A VPN's network: the path a private endpoint needs, without a deploy runner."""
PROD_REPLICA_REGION: Final = "us-west-2"


def profile(environment: Environment, **sections: Any) -> PlatformConfig:
    """A stack that sets only its environment and `sections`; the profile fills in the rest."""
    raw: dict[str, Any] = {"environment": environment, **sections}
    return load_platform_config(with_required_keys(raw), stack=environment, project=PROJECT)


def with_required_keys(raw: Any) -> Any:
    """What an environment requires that has no default, whatever the test is about: dev's
    public API endpoint its allow-list, staging's and prod's private one a path to it, prod its
    replica region."""
    if not isinstance(raw, dict):
        return raw
    raw = dict(raw)
    if raw.get("environment") == "dev":
        raw.setdefault("eks", DEV_ENDPOINT)
    if raw.get("environment") in ("staging", "prod"):
        eks = dict(raw.get("eks") or {})
        eks.setdefault("endpoint", PRIVATE_API_PATH)
        raw["eks"] = eks
    if raw.get("environment") == "prod":
        artifacts = dict(raw.get("artifacts") or {})
        artifacts.setdefault("replicaRegion", PROD_REPLICA_REGION)
        raw["artifacts"] = artifacts
    return raw


@cache
def stack_platform_config(project: PulumiProject, stack: str) -> PlatformConfig:
    """The validated config of one of the project's stacks: its file over its profile."""
    raw = json.loads(project.stack_config(stack).values[f"{project.name}:{CONFIG_KEY}"])
    return load_platform_config(raw, stack=stack, project=project.name)
