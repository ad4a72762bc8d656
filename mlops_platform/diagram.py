"""A Mermaid picture of a stack: its component tree and which components build on which.

Drawn from a plan (resources in the shape of `pulumi stack export`), so it works on any
revision's render. Components are boxes, components with components inside them are groups,
and an arrow A --> B means something in B takes an input from, or runs on a provider of,
something in A. In a diff the components a change touches are coloured.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Final

from mlops_guardrails.export import STACK_TYPE

ADDED: Final = "added"
CHANGED: Final = "changed"
REMOVED: Final = "removed"
STYLES: Final = {
    ADDED: "fill:#dafbe1,stroke:#1a7f37",
    CHANGED: "fill:#fff8c5,stroke:#9a6700",
    REMOVED: "fill:#ffebe9,stroke:#cf222e,stroke-dasharray:4 3",
}


def component_map(
    resources: Sequence[Mapping[str, Any]], changes: Mapping[str, str] | None = None
) -> str:
    """The stack's components as a Mermaid flowchart.

    `changes` maps the URN of a resource or component to added, changed or removed; a
    component is marked with its own change, else `changed` when a resource it owns changed.
    """
    return _Map(resources, changes or {}).draw()


class _Map:
    def __init__(self, resources: Sequence[Mapping[str, Any]], changes: Mapping[str, str]):
        self.resources = resources
        self.by_urn = {resource["urn"]: resource for resource in resources}
        stacks = {r["urn"] for r in resources if r.get("type") == STACK_TYPE}
        # Resources made straight in the program (the cluster's Kubernetes provider) are drawn
        # too: what runs on them links to them.
        self.nodes = [
            r["urn"]
            for r in resources
            if r.get("type") != STACK_TYPE and (not r.get("custom") or r.get("parent") in stacks)
        ]
        self.ids = {urn: f"c{index}" for index, urn in enumerate(self.nodes)}
        self.inner: dict[str, list[str]] = {}
        for urn in self.nodes:
            self.inner.setdefault(self.owner_of(urn) or "", []).append(urn)
        self.marks = {urn: kind for urn, kind in changes.items() if urn in self.ids}
        for urn in changes.keys() - self.ids.keys():
            if (found := self.owner_of(urn)) is not None:
                self.marks.setdefault(found, CHANGED)
        self.owned: dict[str, list[Mapping[str, Any]]] = {}
        for resource in resources:
            found = self.owner_of(resource["urn"]) if resource.get("custom") else None
            # A component that stays counts what it will hold; a removed one what it held.
            gone = (
                changes.get(resource["urn"]) == REMOVED and self.marks.get(found or "") != REMOVED
            )
            if found is not None and not gone:
                self.owned.setdefault(found, []).append(resource)

    def owner_of(self, urn: str) -> str | None:
        """The drawn component that a resource or component sits in."""
        parent = self.by_urn.get(urn, {}).get("parent", "")
        while parent in self.by_urn and parent not in self.ids:
            parent = self.by_urn[parent].get("parent", "")
        return parent if parent in self.ids else None

    def top(self, urn: str) -> str | None:
        """The outermost drawn component holding a resource (or the resource, if drawn)."""
        found = urn if urn in self.ids else self.owner_of(urn)
        while found is not None and (outer := self.owner_of(found)) is not None:
            found = outer
        return found

    def label(self, urn: str) -> str:
        resource = self.by_urn[urn]
        kind = resource["type"].rsplit(":", 1)[-1]
        held = self.owned.get(urn, [])
        protected = sum(bool(r.get("protect")) for r in [resource, *held])
        if resource["type"].startswith("pulumi:providers:"):
            detail = f"{kind} provider"
        elif resource.get("custom") or (self.inner.get(urn) and not held):
            detail = kind
        else:
            detail = f"{kind} · {len(held)} resource{'' if len(held) == 1 else 's'}"
        if protected:
            detail += f", {protected} protected"
        if urn in self.marks:
            # Said in words too: colours alone fail readers who cannot tell them apart.
            detail += f"<br/><b>{self.marks[urn]}</b>"
        return f'"{_escape(urn.rsplit("::", 1)[-1])}<br/><small>{detail}</small>"'

    def boxes(self, urn: str, indent: str) -> Iterator[str]:
        if not self.inner.get(urn):
            yield f"{indent}{self.ids[urn]}[{self.label(urn)}]"
            return
        yield f"{indent}subgraph {self.ids[urn]}[{self.label(urn)}]"
        for child in self.inner[urn]:
            yield from self.boxes(child, indent + "  ")
        yield f"{indent}end"

    def links(self) -> list[tuple[str, str]]:
        found = {
            (source, target)
            for resource in self.resources
            if (target := self.top(resource["urn"])) is not None
            for needed in _needs(resource)
            if (source := self.top(needed)) is not None and source != target
        }
        order = {urn: index for index, urn in enumerate(self.nodes)}
        return sorted(found, key=lambda link: (order[link[0]], order[link[1]]))

    def draw(self) -> str:
        # The neutral theme leaves boxes grey, so the only colours are the change marks.
        lines = ["---", "config:", "  theme: neutral", "---", "flowchart LR"]
        for urn in self.inner.get("", []):
            lines += self.boxes(urn, "  ")
        lines += [f"  {self.ids[source]} --> {self.ids[target]}" for source, target in self.links()]
        for kind, style in STYLES.items():
            marked = [self.ids[urn] for urn in self.nodes if self.marks.get(urn) == kind]
            if marked:
                lines += [f"  classDef {kind} {style}", f"  class {','.join(marked)} {kind}"]
        return "\n".join(lines) + "\n"


def change_marks(
    before: Sequence[Mapping[str, Any]],
    after: Sequence[Mapping[str, Any]],
    changed_resources: Mapping[str, str],
) -> tuple[list[Mapping[str, Any]], dict[str, str]]:
    """What to draw for a diff: the new plan plus the components it drops, and the marks."""
    now = {resource["urn"] for resource in after}
    was = {resource["urn"] for resource in before}
    dropped = [r for r in before if r["urn"] not in now]
    marks = dict(changed_resources)
    marks.update({r["urn"]: REMOVED for r in dropped if not r.get("custom")})
    marks.update({r["urn"]: ADDED for r in after if not r.get("custom") and r["urn"] not in was})
    return [*after, *dropped], marks


def _needs(resource: Mapping[str, Any]) -> Iterable[str]:
    yield from resource.get("dependencies", [])
    for urns in resource.get("propertyDependencies", {}).values():
        yield from urns
    if resource.get("provider"):
        yield resource["provider"].rsplit("::", 1)[0]


def _escape(text: str) -> str:
    return text.replace('"', "#quot;")
