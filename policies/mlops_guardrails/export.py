"""The shape of `pulumi stack export`, built in one place.

The offline engine writes plans in this shape, `audit` writes what it reads from AWS in it, and the
pack's tests build cases in it; `mlops-platform check` turns it into analyzer requests the way the
engine does. Standard library only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

STACK_TYPE: Final = "pulumi:pulumi:Stack"
PROVIDER_TYPE_PREFIX: Final = "pulumi:providers:"
# Pulumi's marker for a secret value on the wire and in state (sdk/go/common/resource/sig).
SECRET_SIG_KEY: Final = "4dabf18193072939515e22adb298388d"
SECRET_SIG: Final = "1b47061264138c4ac30d75fd1eb44270"


def urn(stack: str, project: str, qualified_type: str, name: str) -> str:
    """A resource URN; `qualified_type` is the parent type chain joined by `$` (stack left out)."""
    return f"urn:pulumi:{stack}::{project}::{qualified_type}::{name}"


def urn_name(resource_urn: str) -> str:
    return resource_urn.rsplit("::", 1)[-1]


def resource_state(
    *,
    urn: str,
    type: str,
    custom: bool = True,
    id: str = "",
    inputs: Mapping[str, Any],
    outputs: Mapping[str, Any],
    parent: str = "",
    dependencies: Sequence[str] = (),
    property_dependencies: Mapping[str, Sequence[str]] | None = None,
    protect: bool = False,
    retain_on_delete: bool = False,
    provider: str = "",
    aliases: Sequence[str] = (),
) -> dict[str, Any]:
    """One entry of a version 3 deployment's `resources`; components carry no id."""
    state: dict[str, Any] = {
        "urn": urn,
        "custom": custom,
        "id": id,
        "type": type,
        "inputs": dict(inputs),
        "outputs": dict(outputs),
        "parent": parent,
        "dependencies": list(dependencies),
        "propertyDependencies": {k: list(v) for k, v in (property_dependencies or {}).items()},
        "protect": protect,
        "retainOnDelete": retain_on_delete,
        "provider": provider,
    }
    if aliases:
        # The URNs the resource was known by before; the engine treats them as the same one.
        state["aliases"] = list(aliases)
    if not custom:
        del state["id"]
    return state


def deployment(resources: Sequence[Mapping[str, Any]], producer: str) -> dict[str, Any]:
    """A version 3 deployment holding `resources`, as `pulumi stack export` writes it."""
    return {
        "version": 3,
        "deployment": {
            "manifest": {"time": "0001-01-01T00:00:00Z", "magic": "", "version": producer},
            "resources": list(resources),
        },
    }
