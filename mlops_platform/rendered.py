"""A rendered stack: what the program registered, in the shape of `pulumi stack export`.

Free of the Pulumi SDK, so a cached render is read, summarized and drawn without loading it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from mlops_guardrails.export import (
    PROVIDER_TYPE_PREFIX,
    SECRET_SIG,
    SECRET_SIG_KEY,
    STACK_TYPE,
    deployment,
    resource_state,
    urn_name,
)

PRODUCER: Final = "mlops-platform offline plan"


@dataclass
class RecordedResource:
    urn: str
    type: str
    name: str
    custom: bool
    id: str
    parent: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    dependencies: list[str]
    property_dependencies: dict[str, list[str]]
    protect: bool
    retain_on_delete: bool
    provider: str
    ignore_changes: list[str] = field(default_factory=list)
    """Kept for review and tests; `pulumi stack export` has no place for it."""
    aliases: list[str] = field(default_factory=list)
    """URNs the resource was known by before (its `aliases` option, resolved)."""

    def to_state(self) -> dict[str, Any]:
        """This resource as an entry of `pulumi stack export`'s `deployment.resources`."""
        return resource_state(
            urn=self.urn,
            type=self.type,
            custom=self.custom,
            id=self.id,
            inputs=self.inputs,
            outputs=self.outputs,
            parent=self.parent,
            dependencies=self.dependencies,
            property_dependencies=self.property_dependencies,
            protect=self.protect,
            retain_on_delete=self.retain_on_delete,
            provider=self.provider,
            aliases=self.aliases,
        )

    @classmethod
    def from_state(
        cls, state: Mapping[str, Any], ignore_changes: list[str] | None = None
    ) -> RecordedResource:
        return cls(
            urn=state["urn"],
            type=state["type"],
            name=urn_name(state["urn"]),
            custom=state["custom"],
            id=state.get("id", ""),
            parent=state["parent"],
            inputs=state["inputs"],
            outputs=state["outputs"],
            dependencies=state["dependencies"],
            property_dependencies=state["propertyDependencies"],
            protect=state["protect"],
            retain_on_delete=state["retainOnDelete"],
            provider=state["provider"],
            ignore_changes=ignore_changes or [],
            aliases=list(state.get("aliases", [])),
        )


@dataclass
class RenderedStack:
    project: str
    stack: str
    resources: list[RecordedResource]
    """In dependency order: everything a resource refers to comes before it."""
    references: dict[str, dict[str, str]] = field(default_factory=dict)
    """Stacks read through StackReference, by name: the project root, stack and render key
    of what was read (the render cache checks them; a stack export has no place for it)."""
    _by_urn: dict[str, RecordedResource] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._by_urn = {resource.urn: resource for resource in self.resources}

    @property
    def outputs(self) -> dict[str, Any]:
        """The stack's exports."""
        return self.of_type(STACK_TYPE)[0].outputs

    def get(self, urn: str) -> RecordedResource:
        return self._by_urn[urn]

    @property
    def resources_and_components(self) -> tuple[list[RecordedResource], list[RecordedResource]]:
        """How the project counts a stack, everywhere: its resources (custom, providers left
        out, as `check` judges them) and its components (the stack itself left out)."""
        resources = [
            r for r in self.resources if r.custom and not r.type.startswith(PROVIDER_TYPE_PREFIX)
        ]
        components = [r for r in self.resources if not r.custom and r.type != STACK_TYPE]
        return resources, components

    def urns(self) -> list[str]:
        """The stack's URNs, providers left out (a provider upgrade renames its own), sorted:
        what a rename without an alias would lose."""
        return sorted(r.urn for r in self.resources if not r.type.startswith(PROVIDER_TYPE_PREFIX))

    def of_type(self, type_token: str) -> list[RecordedResource]:
        return [resource for resource in self.resources if resource.type == type_token]

    def children(self, urn: str) -> list[RecordedResource]:
        return [resource for resource in self.resources if resource.parent == urn]

    def dependents_through(self, urn: str, prop: str) -> list[RecordedResource]:
        """Resources whose input `prop` was computed from the resource `urn`."""
        return [
            resource
            for resource in self.resources
            if urn in resource.property_dependencies.get(prop, [])
        ]

    def states(self) -> list[dict[str, Any]]:
        """The resources as `pulumi stack export` lists them."""
        return [resource.to_state() for resource in self.resources]

    def to_deployment(self) -> dict[str, Any]:
        """The stack in the shape of `pulumi stack export` (a version 3 deployment)."""
        return deployment(self.states(), PRODUCER)

    def dump(self) -> str:
        """The plan file: byte-identical for the same inputs, so plans diff cleanly. Secrets
        show as placeholders, as `pulumi stack export` without --show-secrets shows them, so
        a plan can be attached to a review."""
        deployment = _without_secret_values(self.to_deployment())
        return json.dumps(deployment, indent=2, sort_keys=True) + "\n"

    def to_record(self) -> dict[str, Any]:
        """Everything a render produced, for the render cache."""
        return {
            "project": self.project,
            "stack": self.stack,
            "deployment": self.to_deployment(),
            "ignoreChanges": {r.urn: r.ignore_changes for r in self.resources if r.ignore_changes},
            "references": self.references,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> RenderedStack:
        ignored = record["ignoreChanges"]
        return cls(
            project=record["project"],
            stack=record["stack"],
            resources=[
                RecordedResource.from_state(state, ignored.get(state["urn"]))
                for state in record["deployment"]["deployment"]["resources"]
            ],
            references=dict(record.get("references", {})),
        )


SECRET_PLACEHOLDER = "[secret: not shown in plans]"


def _without_secret_values(value: Any) -> Any:
    if isinstance(value, dict):
        if value.get(SECRET_SIG_KEY) == SECRET_SIG:
            return {SECRET_SIG_KEY: SECRET_SIG, "ciphertext": SECRET_PLACEHOLDER}
        return {key: _without_secret_values(v) for key, v in value.items()}
    if isinstance(value, list):
        return [_without_secret_values(v) for v in value]
    return value
