"""Every component's type token is `mlops:<module>:<Class>`: URNs, and so state, depend on it."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pulumi

import components
from mlops_platform.rendered import RenderedStack


def component_classes() -> list[type[pulumi.ComponentResource]]:
    found = []
    for module_info in pkgutil.iter_modules(components.__path__):
        module = importlib.import_module(f"components.{module_info.name}")
        found += [
            cls
            for _, cls in inspect.getmembers(module, inspect.isclass)
            if issubclass(cls, pulumi.ComponentResource) and cls.__module__ == module.__name__
        ]
    return found


def test_every_component_uses_its_module_and_class_name(
    rendered_stacks: dict[str, RenderedStack],
) -> None:
    """Across the stacks: each uses some components (Karpenter only in staging)."""
    expected = {
        f"mlops:{cls.__module__.split('.')[-1]}:{cls.__name__}" for cls in component_classes()
    }
    seen = {
        r.type
        for rendered in rendered_stacks.values()
        for r in rendered.resources
        if r.type.startswith("mlops:")
    }
    assert seen == expected
