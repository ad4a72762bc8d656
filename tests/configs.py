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


def profile(environment: Environment, **sections: Any) -> PlatformConfig:
    """A stack that sets only its environment and `sections`; the profile fills in the rest."""
    raw: dict[str, Any] = {"environment": environment, **sections}
    if environment == "dev":
        # Dev's public API endpoint needs an allow-list, whatever the test is about.
        raw.setdefault("eks", DEV_ENDPOINT)
    return load_platform_config(raw, stack=environment, project=PROJECT)


@cache
def stack_platform_config(project: PulumiProject, stack: str) -> PlatformConfig:
    """The validated config of one of the project's stacks: its file over its profile."""
    raw = json.loads(project.stack_config(stack).values[f"{project.name}:{CONFIG_KEY}"])
    return load_platform_config(raw, stack=stack, project=project.name)
