"""The short human summary `plan` prints: what a stack would create and what is protected."""

from __future__ import annotations

from collections import Counter

from mlops_guardrails.vocabulary import STATEFUL_TYPES
from mlops_platform.rendered import RenderedStack


def summarize(rendered: RenderedStack) -> str:
    custom, made_of = rendered.resources_and_components
    counts = Counter(resource.type for resource in custom)
    components = Counter(resource.type for resource in made_of)
    lines = [
        f"stack {rendered.stack} of {rendered.project}: {len(custom)} resources "
        f"and {len(made_of)} components",
        "",
        "resources by type:",
        *(f"  {count:4d}  {token}" for token, count in sorted(counts.items())),
        "components by type:",
        *(f"  {count:4d}  {token}" for token, count in sorted(components.items())),
    ]
    stateful = [resource for resource in custom if resource.type in STATEFUL_TYPES]
    width = max((len(resource.type) for resource in stateful), default=0)
    unprotected = sum(not resource.protect for resource in stateful)
    lines += ["", f"stateful resources ({len(stateful)}, {unprotected} unprotected):"]
    for resource in stateful:
        guard = "protected" if resource.protect else "UNPROTECTED"
        retain = ", retained on delete" if resource.retain_on_delete else ""
        lines.append(f"  {guard:<11}  {resource.type:<{width}}  {resource.name}{retain}")
    lines += ["", "outputs: " + ", ".join(sorted(rendered.outputs))]
    return "\n".join(lines) + "\n"
