"""What a change does to a stack: the plan at a base git revision against the working tree.

The base is rendered by its own code (a detached worktree, its own `infra/` and `components/`),
so a refactor shows as the resource changes it really causes; that render is cached by the
revision's content, so each base is rendered once.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from components.accelerators import INSTANCE_TYPES, RESOURCE_NAMES
from mlops_guardrails.export import PROVIDER_TYPE_PREFIX, urn_name
from mlops_platform.errors import UserError
from mlops_platform.policy_check import Finding
from mlops_platform.project import PulumiProject
from mlops_platform.render_cache import RenderCache, render_key, revision_sources
from mlops_platform.rendered import RenderedStack

REPLACE_FACTS: Final = json.loads(
    Path(__file__).with_name("replace_facts.json").read_text(encoding="utf-8")
)
"""Which input changes make each provider replace a resource, read from the providers' own
sources (terraform-provider-aws's ForceNew and RequiresReplace, pulumi-kubernetes' diff), with
where each was read; types whose rules were not read are listed as `notRecorded`."""
LIST_INDEX: Final = re.compile(r"\[\d+\]")


PRICES_FILE: Final = Path(__file__).with_name("prices.json")
HOURS_PER_MONTH: Final = 730


class DiffError(UserError):
    """The base revision cannot be found or rendered; the message says which and why."""


@dataclass(frozen=True)
class PropertyChange:
    path: str
    before: Any
    after: Any
    replaces: bool | None
    """None: the provider's rules for the type are not recorded (replace_facts.json)."""


Operation = Literal["create", "update", "replace", "delete", "same"]
OPTIONS: Final = ("protect", "retainOnDelete")
"""The resource options whose change the engine records on their own: a preview shows
`protect` (as `[diff: ~protect]`) but not `retainOnDelete`, which a reviewer still needs."""


@dataclass
class ResourceChange:
    urn: str
    type: str
    operation: Operation
    """What `pulumi up` does: `same` when only options change."""
    protected: bool
    """Protected where the engine looks: for a replacement, in both the old state and the new
    goal (dropping `protect` in the same change lets it through); for a delete, in the old
    state (pulumi step_generator.go and step.go)."""
    properties: list[PropertyChange] = field(default_factory=list)
    options: dict[str, tuple[bool, bool]] = field(default_factory=dict)
    """Option name to (before, after), for options that change."""
    renamed: str | None = None
    """For a create: the URN of the delete it probably renames (same type, same inputs once
    names are set aside); for a delete, the URN of that create. An alias keeps the resource."""
    kept_apart: tuple[str, ...] = ()
    """For a probable rename: the inputs, derived from its name, that differ and force
    replacement, so the alias keeps the resource only if they keep their old values."""
    alias_of: str | None = None
    """The old URN this resource's `aliases` option carries it over from."""
    retained: bool = False
    """The old state says retainOnDelete: a delete (or a replacement's) leaves it in AWS."""
    was_protected: bool = False
    delete_first: bool = False
    """A replacement the provider makes delete-before-replace (a name the program sets, which
    the new resource must take): the old one goes first, and its dependents that would be
    replaced go before it (pulumi step_generator.go, calculateDependentReplacements)."""
    replaced_with: str | None = None
    """The delete-first replacement whose dependents this replacement is deleted with."""

    @property
    def kind(self) -> str:
        """added, removed or changed: how the component map colours it."""
        return {"create": "added", "delete": "removed"}.get(self.operation, "changed")

    @property
    def replaces(self) -> bool:
        return self.operation == "replace"

    @property
    def fails_preview(self) -> bool:
        """The engine refuses to delete a protected resource, a replacement included, and to
        delete one protected in its old state as part of a delete-first replacement."""
        cascaded = self.replaced_with is not None and self.was_protected
        return cascaded or (self.protected and self.operation in ("replace", "delete"))

    @property
    def loses_protection(self) -> bool:
        return any(before and not after for before, after in self.options.values())


class RevisionRender:
    """The stacks as the code at a revision renders them, started in the background.

    From the cache when that code and those stack files were rendered before (keyed from git's
    own record of the files, no checkout needed); otherwise by that revision's own code in a
    detached worktree, all missing stacks in one process, running on the other core while the
    caller renders the working tree. Use as a context manager; `result()` waits for it.
    """

    def __init__(
        self, project: PulumiProject, revision: str, stacks: Sequence[str], cache: RenderCache
    ) -> None:
        self.revision = revision
        self.cache = cache
        # The project may sit below the repository's top (a model team's project beside the
        # platform's): the worktree is the whole repository, the project a directory of it.
        self.root = _top_level(project.root)
        self.project_dir = project.root.resolve().relative_to(self.root).as_posix()
        prefix = "" if self.project_dir == "." else f"{self.project_dir}/"
        commit = _commit(project.root, revision)
        main = project.main / "__main__.py" if project.main.is_dir() else project.main
        self.keys: dict[str, str] = {}
        self.rendered: dict[str, RenderedStack] = {}
        for stack in stacks:
            sources = revision_sources(
                self.root,
                commit,
                stack,
                main.relative_to(project.root).as_posix(),
                project_dir=prefix,
            )
            if sources is None:
                if not _has_file(self.root, commit, f"{prefix}Pulumi.yaml"):
                    raise DiffError(f"{revision} has no Pulumi.yaml: not a revision of the project")
                # A stack the change adds: everything in it is to create.
                self.rendered[stack] = RenderedStack(
                    project=project.name, stack=stack, resources=[]
                )
                continue
            if project.config_references(stack):
                # Its render reads another stack as that revision has it, which this key does
                # not cover: rendered every time, never cached.
                continue
            self.keys[stack] = render_key(project.name, stack, sources)
            hit = cache.get(self.keys[stack])
            if hit is not None:
                self.rendered[stack] = hit
        self.missing = [stack for stack in stacks if stack not in self.rendered]
        self._scratch: tempfile.TemporaryDirectory[str] | None = None
        self._driver: subprocess.Popen[str] | None = None
        if self.missing:
            self._start(commit)

    def _start(self, commit: str) -> None:
        # Worktrees of runs that were killed are forgotten before a new one is added.
        subprocess.run(["git", "-C", str(self.root), "worktree", "prune"], check=False)
        self._scratch = tempfile.TemporaryDirectory()
        scratch = Path(self._scratch.name)
        self.tree, self.out = scratch / "tree", scratch / "plans"
        added = subprocess.run(
            ["git", "-C", str(self.root), "worktree", "add", "--detach", str(self.tree), commit],
            capture_output=True,
            text=True,
            check=False,
        )
        if added.returncode != 0:
            self._scratch.cleanup()
            self._scratch = None
            raise DiffError(f"cannot check out {self.revision!r}: {added.stderr.strip()}")
        self.out.mkdir()
        # The revision's own packages, the pack's vocabulary included, come first.
        path = os.pathsep.join([str(self.tree), str(self.tree / "policies")])
        project_tree = self.tree / self.project_dir
        self._driver = subprocess.Popen(
            [sys.executable, "-c", _RENDER_DRIVER, str(project_tree), str(self.out), *self.missing],
            cwd=project_tree,
            env={**os.environ, "PYTHONPATH": path},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )

    def result(self) -> dict[str, RenderedStack]:
        if self._driver is not None:
            _, errors = self._driver.communicate()
            for stack in self.missing:
                record = self.out / f"{stack}.json"
                if not record.is_file():
                    failure = self.out / f"{stack}.error"
                    reason = failure.read_text() if failure.is_file() else errors
                    detail = "\n".join(reason.strip().splitlines()[-10:])
                    raise DiffError(
                        f"base revision {self.revision!r} does not render stack {stack}:\n{detail}"
                    )
                fresh = RenderedStack.from_record(json.loads(record.read_text()))
                if stack in self.keys:
                    self.cache.put(self.keys[stack], fresh)
                self.rendered[stack] = fresh
            self._driver = None
        return self.rendered

    def __enter__(self) -> RevisionRender:
        return self

    def __exit__(self, *_: object) -> None:
        if self._driver is not None:
            self._driver.kill()
            self._driver.communicate()
        if self._scratch is not None:
            subprocess.run(
                ["git", "-C", str(self.root), "worktree", "remove", "--force", str(self.tree)],
                capture_output=True,
                check=False,
            )
            self._scratch.cleanup()


def _top_level(directory: Path) -> Path:
    found = subprocess.run(
        ["git", "-C", str(directory), "rev-parse", "--show-toplevel"],
        capture_output=True,
        text=True,
        check=False,
    )
    if found.returncode != 0:
        raise DiffError(f"{directory} is not in a git repository: diff compares git revisions")
    return Path(found.stdout.strip()).resolve()


def _has_file(root: Path, commit: str, path: str) -> bool:
    return (
        subprocess.run(
            ["git", "-C", str(root), "cat-file", "-e", f"{commit}:{path}"],
            capture_output=True,
            check=False,
        ).returncode
        == 0
    )


def _commit(root: Path, revision: str) -> str:
    found = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if found.returncode != 0:
        raise DiffError(f"base revision {revision!r} not found in {root}")
    return found.stdout.strip()


# Runs in the base revision's worktree, on that revision's engine: only the API every revision
# has (render_stack, to_deployment) is used. The project's editable install would otherwise lend
# the working tree's modules to whatever the revision lacks, which its key does not cover.
_RENDER_DRIVER = """
import gc, json, sys
sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in getattr(f, "__module__", "")]
from pathlib import Path
from mlops_platform.engine import render_stack
from mlops_platform.project import PulumiProject

gc.set_threshold(200_000, 50, 100)
project = PulumiProject.load(Path(sys.argv[1]))
out = Path(sys.argv[2])
for stack in sys.argv[3:]:
    try:
        plan = render_stack(project, stack)
    except Exception as error:
        (out / f"{stack}.error").write_text(str(error))
        continue
    record = {
        "project": plan.project,
        "stack": stack,
        "deployment": plan.to_deployment(),
        "ignoreChanges": {
            r.urn: r.ignore_changes for r in plan.resources if getattr(r, "ignore_changes", None)
        },
    }
    (out / f"{stack}.json").write_text(json.dumps(record))
"""


def flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict) and value:
        for key in sorted(value):
            yield from flatten(value[key], f"{prefix}.{key}" if prefix else key)
    elif isinstance(value, list) and value and any(isinstance(v, (dict, list)) for v in value):
        for index, item in enumerate(value):
            yield from flatten(item, f"{prefix}[{index}]")
    else:
        yield prefix, value


def replace_paths(type_token: str) -> tuple[str, ...] | None:
    """The input paths whose change replaces a resource of the type; None when not recorded."""
    if type_token.startswith("kubernetes:"):
        kubernetes = REPLACE_FACTS["kubernetes"]
        listed = kubernetes["replaceOnChanges"].get(type_token)
        return tuple(listed if listed is not None else kubernetes["allKinds"])
    listed = REPLACE_FACTS["aws"]["replaceOnChanges"].get(type_token)
    return None if listed is None else tuple(listed)


def _replaces(type_token: str, path: str) -> bool | None:
    """Whether changing the input at `path` (list items as [n]) replaces the resource; None
    when the type's rules are not recorded."""
    if path == "region" and type_token.startswith("aws:"):
        # Enhanced region support: a resource moved between regions is made anew.
        return _regional(type_token)
    paths = replace_paths(type_token)
    if paths is None:
        return None
    plain = LIST_INDEX.sub("", path)
    return any(plain == prop or plain.startswith(f"{prop}.") for prop in paths)


def compare(
    before: Sequence[Mapping[str, Any]],
    after: Sequence[Mapping[str, Any]],
    ignore_changes: Mapping[str, Sequence[str]] | None = None,
) -> list[ResourceChange]:
    """What the engine does to each custom resource, property by property and option by
    option (Pulumi docs, "Resource option: protect"; see ResourceChange.protected).
    `ignore_changes` holds each resource's `ignore_changes` paths, which the engine leaves out
    of the diff (a render records them; a stack export does not).

    Offline renders keep ids and outputs stable, where a real preview does not: a replaced
    resource's outputs are unknown until it exists again, so every input that depends on one
    changes too (and replaces its resource if that input forces replacement), and a stack
    moved to another region has its provider fill each regional resource's `region` anew."""
    old = {r["urn"]: r for r in before if r.get("custom")}
    new = {r["urn"]: r for r in after if r.get("custom")}
    carried_from = carried_over({r["urn"] for r in before}, after)
    ignored = ignore_changes or {}
    regions = (_provider_regions(before), _provider_regions(after))
    changes: dict[str, ResourceChange] = {}
    for urn in sorted((old.keys() - set(carried_from.values())) | new.keys()):
        if str(urn).split("::")[2].startswith(PROVIDER_TYPE_PREFIX):
            continue
        alias = carried_from.get(urn)
        was, now = old.get(alias or urn), new.get(urn)
        if now is None:
            assert was is not None
            changes[urn] = ResourceChange(
                urn,
                was["type"],
                "delete",
                bool(was.get("protect")),
                retained=bool(was.get("retainOnDelete")),
            )
            continue
        if was is None:
            added = [
                PropertyChange(path, None, value, False)
                for path, value in flatten(now.get("inputs", {}))
                if value is not None
            ]
            changes[urn] = ResourceChange(
                urn, now["type"], "create", bool(now.get("protect")), added
            )
            continue
        before_props = dict(flatten(was.get("inputs", {})))
        after_props = dict(flatten(now.get("inputs", {})))
        properties = [
            PropertyChange(
                path, before_props.get(path), after_props.get(path), _replaces(now["type"], path)
            )
            for path in sorted(before_props.keys() | after_props.keys())
            if before_props.get(path) != after_props.get(path)
            and not _under(path, ignored.get(urn, ()))
        ]
        moved = _region_change(was, now, regions)
        if moved is not None:
            properties.append(moved)
        options = {
            name: (bool(was.get(name)), bool(now.get(name)))
            for name in OPTIONS
            if bool(was.get(name)) != bool(now.get(name))
        }
        changes[urn] = ResourceChange(
            urn,
            now["type"],
            _operation(properties),
            bool(was.get("protect")) and bool(now.get("protect")),
            properties,
            options,
            alias_of=alias,
            retained=bool(was.get("retainOnDelete")),
            was_protected=bool(was.get("protect")),
            delete_first=_deletes_first(was, now),
        )
    _propagate_replacements(changes, old, new)
    _pair_probable_renames(changes, old, new)
    return [c for c in changes.values() if c.operation != "same" or c.options or c.alias_of]


UNKNOWN: Final = "<computed: its source is replaced>"


def carried_over(old_urns: Collection[str], after: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Each new resource the engine finds in the old state through an alias, with the old URN:
    only when its own URN is not there, the first alias that is, its own aliases before those
    derived from its parent's match (so one alias on a renamed component carries its children
    over). pulumi step_generator.go: getOldResource, generateAliases, inheritedChildAlias.
    `after` is in registration order, parents first, as a deployment lists it."""
    matched: dict[str, str] = {}
    claimed: dict[str, str] = {}
    for state in after:
        urn = state["urn"]
        if urn in old_urns:
            continue
        own = list(state.get("aliases", []))
        candidates = list(own)
        parent = state.get("parent") or ""
        if parent in matched:
            candidates += [
                _inherited_alias(alias, parent, matched[parent]) for alias in [urn, *own]
            ]
        found = next((alias for alias in candidates if alias in old_urns), None)
        if found is None:
            continue
        if found in claimed:
            raise DiffError(
                f"{claimed[found]} and {urn} both take {found} as an alias: Pulumi refuses "
                "the preview (each old resource can be carried over by one new one)"
            )
        matched[urn], claimed[found] = found, urn
    return matched


def _inherited_alias(child: str, parent: str, parent_alias: str) -> str:
    """The child's URN under its parent's alias, in the child's stack and project; a name that
    starts with the parent's name takes the alias's name in its place, as `f"{name}-role"`
    children are named."""
    stack_and_project = "::".join(child.split("::")[:2])
    parent_types = parent_alias.split("::")[2]
    name, parent_name = urn_name(child), urn_name(parent)
    if name.startswith(parent_name):
        name = urn_name(parent_alias) + name[len(parent_name) :]
    child_type = child.split("::")[2].rsplit("$", 1)[-1]
    return f"{stack_and_project}::{parent_types}${child_type}::{name}"


def _under(path: str, prefixes: Sequence[str]) -> bool:
    return any(path == p or path.startswith((f"{p}.", f"{p}[")) for p in prefixes)


def _operation(properties: Sequence[PropertyChange]) -> Operation:
    if any(p.replaces for p in properties):
        return "replace"
    return "update" if properties else "same"


def _propagate_replacements(
    changes: dict[str, ResourceChange],
    old: Mapping[str, Mapping[str, Any]],
    new: Mapping[str, Mapping[str, Any]],
) -> None:
    """Inputs taken from a replaced resource's computed outputs become unknown, as in a real
    preview, and replace their resource when they force it. Every resource in both renders has
    its entry in `changes`; providers have none, but a Kubernetes provider whose cluster
    settings become unknown is replaced, and every resource it manages with it.

    A delete-first replacement takes its dependents with it (pulumi step_generator.go,
    calculateDependentReplacements): each dependent that an unknown value of any input taken
    from it would replace, names included, goes first too, and the engine refuses the preview
    if one of those is protected in the old state."""
    frontier = {urn for urn, change in changes.items() if change.operation == "replace"}
    # Resources deleted first, each with the delete-first replacement whose cascade it is in.
    root_of = {urn: urn for urn in frontier if changes[urn].delete_first}
    replaced_providers: set[str] = set()
    computed: dict[str, set[str]] = {}
    while frontier:
        computed.update({urn: _computed_outputs(new[urn]) for urn in frontier})
        reached = set()
        for urn, state in new.items():
            hit = _sources(state, frontier)
            if not hit:
                continue
            if str(state.get("type", "")).startswith(PROVIDER_TYPE_PREFIX):
                if urn not in replaced_providers and _provider_replaced(
                    state, old.get(urn), hit, computed
                ):
                    replaced_providers.add(urn)
                    reached.add(urn)
                    chain = _input_sources(state) & hit & root_of.keys()
                    if chain:
                        root_of[urn] = root_of[min(chain)]
                continue
            change = changes.get(urn)
            if change is None or change.operation in ("create", "delete"):
                continue
            was_replaced = change.replaces
            member_of = _take_unknowns(
                change,
                state,
                old=old,
                replaced=hit,
                deleting_first=root_of.keys(),
                computed=computed,
            )
            if urn in root_of:
                continue
            if member_of is not None:
                root_of[urn] = root_of[member_of]
                change.replaced_with = root_of[urn]
            elif change.replaces and change.delete_first:
                root_of[urn] = urn
            if change.replaces and not was_replaced:
                reached.add(urn)
        frontier = reached


def _input_sources(state: Mapping[str, Any]) -> set[str]:
    return {s for sources in (state.get("propertyDependencies") or {}).values() for s in sources}


def _sources(state: Mapping[str, Any], frontier: set[str]) -> set[str]:
    """Which of `frontier` the resource takes an input or its provider from."""
    taken = _input_sources(state) | {str(state.get("provider", "")).rsplit("::", 1)[0]}
    return taken & frontier


def _take_unknowns(
    change: ResourceChange,
    state: Mapping[str, Any],
    *,
    old: Mapping[str, Mapping[str, Any]],
    replaced: set[str],
    deleting_first: Collection[str],
    computed: Mapping[str, set[str]],
) -> str | None:
    """Marks unknown the inputs taken from a computed output of a `replaced` resource, and
    recomputes the operation. Returns the delete-first resource whose cascade takes this one,
    if any: its provider is in that cascade, or an input taken from it forces replacement."""
    member_of = None
    provider = str(state.get("provider", ""))
    provider_urn = provider.rsplit("::", 1)[0]
    if provider_urn in replaced:
        _mark_unknown(change, old, "provider", provider, forces=True)
        if provider_urn in deleting_first:
            member_of = provider_urn
    for prop, sources in (state.get("propertyDependencies") or {}).items():
        hit = replaced.intersection(sources)
        if not hit:
            continue
        forces = _replaces(state["type"], prop)
        cascade = hit.intersection(deleting_first)
        if cascade and forces:
            member_of = member_of or min(cascade)
        elif not _taken_from(state.get("inputs", {}).get(prop), hit, computed):
            continue
        _mark_unknown(change, old, prop, None, forces=forces)
    change.operation = _operation(change.properties)
    if any(p.path == "provider" and p.replaces for p in change.properties):
        # The engine replaces it for its provider without asking its own provider's diff,
        # which alone decides delete-first.
        change.delete_first = False
    return member_of


def _mark_unknown(
    change: ResourceChange,
    old: Mapping[str, Mapping[str, Any]],
    prop: str,
    before: Any,
    *,
    forces: bool | None,
) -> None:
    if any(
        p.path == prop or p.path.startswith((f"{prop}.", f"{prop}[")) for p in change.properties
    ):
        return
    if before is None:
        before = old[change.alias_of or change.urn].get("inputs", {}).get(prop)
    change.properties.append(PropertyChange(prop, before, UNKNOWN, forces))


def _deletes_first(was: Mapping[str, Any], now: Mapping[str, Any]) -> bool:
    """Whether the provider makes a replacement of this resource delete-before-replace
    (replace_facts.json, deleteBeforeReplaceSource): a name the program gives it, which the
    new one must take. Offline renders hold only the inputs the program gave."""
    type_token, inputs = now["type"], now.get("inputs", {})
    if type_token.startswith("kubernetes:"):
        if type_token == "kubernetes:helm.sh/v3:Release":
            return False
        metadata, before = inputs.get("metadata") or {}, was.get("inputs", {}).get("metadata") or {}
        return bool(metadata.get("name")) and all(
            metadata.get(key) == before.get(key) for key in ("name", "namespace")
        )
    facts = REPLACE_FACTS["aws"]
    if type_token in facts["deleteBeforeReplace"]:
        return True
    named = facts["autoNamed"].get(type_token)
    return named is not None and inputs.get(named) is not None


def _provider_replaced(
    state: Mapping[str, Any],
    was: Mapping[str, Any] | None,
    replaced: set[str],
    computed: Mapping[str, set[str]],
) -> bool:
    """A Kubernetes provider whose cluster settings become unknown: it cannot tell the cluster
    is the same one, so it asks for replacement (replace_facts.json, providerReplacement)."""
    if state.get("type") != f"{PROVIDER_TYPE_PREFIX}kubernetes" or was is None:
        return False
    inputs = state.get("inputs", {})
    identifier = inputs.get("clusterIdentifier")
    if identifier is not None and identifier == was.get("inputs", {}).get("clusterIdentifier"):
        return False
    dependencies = state.get("propertyDependencies") or {}
    return any(
        _taken_from(inputs.get(key), replaced.intersection(dependencies.get(key, ())), computed)
        for key in REPLACE_FACTS["kubernetes"]["providerReplacedWhenUnknown"]
    )


def _pair_probable_renames(
    changes: dict[str, ResourceChange],
    old: Mapping[str, Mapping[str, Any]],
    new: Mapping[str, Mapping[str, Any]],
) -> None:
    """A delete and a create of one type whose inputs agree once every value derived from a
    renamed resource's name (its own, or one renamed with it, such as a parent's) is set
    aside. Pairs found set aside their names for the next round, so children follow parents."""
    deletes = [c for c in changes.values() if c.operation == "delete"]
    creates = [c for c in changes.values() if c.operation == "create"]
    names: set[str] = set()
    paired = True
    while paired:
        paired = False
        for gone in deletes:
            if gone.renamed:
                continue
            for made in creates:
                if made.renamed or made.type != gone.type:
                    continue
                plain = names | {urn_name(gone.urn), urn_name(made.urn)}
                if _same_apart_from(old[gone.urn], new[made.urn], plain):
                    gone.renamed, made.renamed = made.urn, gone.urn
                    made.kept_apart = _replacing_differences(old[gone.urn], new[made.urn])
                    names |= {urn_name(gone.urn), urn_name(made.urn)}
                    paired = True
                    break


def _same_apart_from(was: Mapping[str, Any], now: Mapping[str, Any], names: set[str]) -> bool:
    def kept(state: Mapping[str, Any]) -> dict[str, Any]:
        return {
            path: value
            for path, value in flatten(state.get("inputs", {}))
            if not any(name in json.dumps(value) for name in names)
        }

    before, after = kept(was), kept(now)
    return bool(before) and before == after


def _replacing_differences(was: Mapping[str, Any], now: Mapping[str, Any]) -> tuple[str, ...]:
    before, after = dict(flatten(was.get("inputs", {}))), dict(flatten(now.get("inputs", {})))
    return tuple(
        path
        for path in sorted(before.keys() | after.keys())
        if before.get(path) != after.get(path) and _replaces(now["type"], path)
    )


COMPUTED_MIN_LENGTH: Final = 8
"""Shorter outputs (a status, a version) are too common to tell where a value came from."""


def _computed_outputs(state: Mapping[str, Any]) -> set[str]:
    """What a preview cannot know of a resource being replaced: its id and the outputs AWS
    computes (ARNs, endpoints), as the offline cloud made them up. Outputs that repeat one of
    its inputs (an explicit name) are known in a preview, so they are left out."""
    given = {json.dumps(v) for _, v in flatten(state.get("inputs", {}))}
    values = [state.get("id"), *(v for _, v in flatten(state.get("outputs", {})))]
    return {
        v
        for v in values
        if isinstance(v, str) and len(v) >= COMPUTED_MIN_LENGTH and json.dumps(v) not in given
    }


def _taken_from(value: Any, sources: set[str], computed: Mapping[str, set[str]]) -> bool:
    """Whether a value holds a computed output of one of `sources`: the offline cloud makes
    every such output unique, so finding one in the value (a secret's plaintext included)
    shows the program built the value from it. A URN, or an input the source repeats, is
    known in a preview."""
    if value is None or not sources:
        return False
    text = json.dumps(value)
    return any(output in text for source in sources for output in computed[source])


def _provider_regions(states: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Each AWS provider's region, by its URN (the engine's default provider is `default_*`)."""
    return {
        state["urn"]: str(state.get("inputs", {}).get("region"))
        for state in states
        if state.get("type") == f"{PROVIDER_TYPE_PREFIX}aws"
        and state.get("inputs", {}).get("region")
    }


def _regional(type_token: str) -> bool:
    """An AWS type with a `region` input, which pulumi-aws v7 fills from its provider."""
    return type_token.startswith("aws:") and type_token not in REPLACE_FACTS["aws"]["noRegionInput"]


def _region_change(
    was: Mapping[str, Any], now: Mapping[str, Any], regions: tuple[dict[str, str], dict[str, str]]
) -> PropertyChange | None:
    """The `region` an AWS resource's provider fills in, when the stack moves region."""
    if not _regional(now["type"]) or "region" in now.get("inputs", {}):
        return None
    source = regions[0].get(str(was.get("provider", "")).rsplit("::", 1)[0])
    target = regions[1].get(str(now.get("provider", "")).rsplit("::", 1)[0])
    if source is None or target is None or source == target:
        return None
    return PropertyChange("region", source, target, True)


@dataclass(frozen=True)
class Capacity:
    gpu_ceiling: int
    monthly_floor: float
    """Estimated USD per month with every pool at its minimum size."""
    monthly_ceiling: float
    """Estimated USD per month with every pool at its maximum size."""
    unpriced: tuple[str, ...] = ()
    """Instance types the price table lacks, left out of the estimate."""
    region: str | None = None
    """The stack's region (its default AWS provider's)."""


def capacity(resources: Sequence[Mapping[str, Any]], prices: Mapping[str, Any]) -> Capacity:
    """Accelerator ceiling and a node-cost estimate from a plan and a price table.

    A managed node group costs its cheapest instance type times its minimum and maximum size. A
    Karpenter pool scales to zero, and at its GPU limit costs the cheapest price per GPU among
    the instance types it may launch.
    """
    hourly: Mapping[str, float] = prices["hourly"]
    ceiling = floor_cost = ceiling_cost = 0.0
    unpriced: set[str] = set()

    def cheapest(types: Sequence[str], per_accelerator: bool) -> float:
        unpriced.update(t for t in types if t not in hourly)
        return min(
            (
                hourly[t] / (INSTANCE_TYPES[t].count if per_accelerator else 1)
                for t in types
                if t in hourly and (t in INSTANCE_TYPES or not per_accelerator)
            ),
            default=0.0,
        )

    for resource in resources:
        inputs = resource.get("inputs", {})
        if resource.get("type") == "aws:eks/nodeGroup:NodeGroup":
            ceiling += float(inputs.get("tags", {}).get("mlops:accelerator-ceiling", 0))
            scaling = inputs.get("scalingConfig", {})
            price = cheapest(inputs.get("instanceTypes", []), per_accelerator=False)
            floor_cost += scaling.get("minSize", 0) * price * HOURS_PER_MONTH
            ceiling_cost += scaling.get("maxSize", 0) * price * HOURS_PER_MONTH
        elif resource.get("type") == "kubernetes:karpenter.sh/v1:NodePool":
            spec = inputs.get("spec", {})
            limits = spec.get("limits", {})
            gpus = sum(float(v) for k, v in limits.items() if k in RESOURCE_NAMES.values())
            requirements = spec.get("template", {}).get("spec", {}).get("requirements", [])
            types = [
                value
                for requirement in requirements
                if requirement.get("key") == "node.kubernetes.io/instance-type"
                for value in requirement.get("values", [])
            ]
            ceiling += gpus
            ceiling_cost += gpus * cheapest(types, per_accelerator=True) * HOURS_PER_MONTH
    clusters = sum(1 for r in resources if r.get("type") == "aws:eks/cluster:Cluster")
    nats = sum(1 for r in resources if r.get("type") == "aws:ec2/natGateway:NatGateway")
    hourly_fixed = clusters * prices["eksClusterHourly"] + nats * prices["natGatewayHourly"]
    fixed = hourly_fixed * HOURS_PER_MONTH
    # The stack's region is its default provider's; an explicit one (replicas) is elsewhere.
    region = next(
        (
            r
            for urn, r in _provider_regions(resources).items()
            if urn_name(urn).startswith("default")
        ),
        None,
    )
    return Capacity(
        int(ceiling), floor_cost + fixed, ceiling_cost + fixed, tuple(sorted(unpriced)), region
    )


def load_prices() -> dict[str, Any]:
    prices: dict[str, Any] = json.loads(PRICES_FILE.read_text())
    return prices


COUNTED: Final = ("create", "update", "replace", "delete")
RETAINED: Final = " (retainOnDelete: the old one stays in AWS, out of the stack)"


def policy_changes(before: Sequence[Finding], after: Sequence[Finding]) -> list[str]:
    """Violations the change brings and those it fixes, each once, by rule and resource."""

    def key(finding: Finding) -> tuple[str, str, str, str]:
        return (finding.level, finding.rule, finding.urn, finding.message)

    was, now = {key(f) for f in before}, {key(f) for f in after}
    return [
        f"- {label} [{level}] {rule} on {short(urn) if urn else '(stack)'}: {message}"
        for label, found in (("new", now - was), ("fixed", was - now))
        for level, rule, urn, message in sorted(found)
    ]


def _as_document(value: Any) -> list[str] | None:
    """A policy, a values file or an alert rule set held in a string, as lines to compare:
    JSON re-indented with sorted keys, YAML as written; None for a plain string."""
    if not isinstance(value, str) or len(value) < 2:
        return None
    if value.lstrip()[:1] in "{[":
        try:
            return json.dumps(json.loads(value), indent=2, sort_keys=True).splitlines()
        except ValueError:
            return None
    return value.splitlines() if "\n" in value.strip() else None


def document_diff(before: Any, after: Any) -> list[str] | None:
    """A line diff of two documents held in strings (None unless both, or one side absent, are
    documents); the lines that stay are left out but for one around each change."""
    old, new = _as_document(before), _as_document(after)
    if (old is None and before is not None) or (new is None and after is not None):
        return None
    if old is None and new is None:
        return None
    diff = difflib.unified_diff(old or [], new or [], lineterm="", n=1)
    return [line for line in diff if not line.startswith(("---", "+++"))]


def _block(text: list[str], markdown: bool) -> list[str]:
    """Document lines under a list item: a diff-highlighted fence in Markdown."""
    if markdown:
        return ["    ```diff", *(f"    {line}" for line in text), "    ```"]
    return [f"      {line}" for line in text]


def _options(change: ResourceChange) -> str:
    return ", ".join(
        f"{name} {str(before).lower()} -> {str(after).lower()}"
        for name, (before, after) in change.options.items()
    )


def short(urn: str) -> str:
    return f"{urn.split('::')[2].rsplit('$', 1)[-1]}::{urn.rsplit('::', 1)[-1]}"


def _order(change: ResourceChange) -> str:
    if change.replaced_with:
        return f", deleted first with {short(change.replaced_with)}"
    return ", deleted first" if change.delete_first and change.replaces else ""


def _attention(changes: Sequence[ResourceChange], bold: str) -> list[str]:
    """What a reviewer must see before the list: the engine's refusals first."""
    failing = [c for c in changes if c.fails_preview]
    sections = [
        (
            f"{bold}The preview will fail:{bold} {len(failing)} protected "
            f"resource{'s' if len(failing) != 1 else ''} would be replaced or deleted, which "
            "Pulumi refuses: for a replacement, drop `protect` in this change; for a delete, "
            "or a replacement deleted first with another, unprotect in a change of its own "
            "first (or `pulumi state unprotect <urn>`).",
            [f"- {short(c.urn)}: {c.operation}{_order(c)}" for c in failing],
        ),
        (
            f"{bold}Losing protection:{bold}",
            [f"- {short(c.urn)}: {_options(c)}" for c in changes if c.loses_protection],
        ),
        (
            f"{bold}Probable renames{bold} (Pulumi deletes and creates them; an alias keeps "
            "the resource):",
            [
                f"- {short(str(c.renamed))} -> {short(c.urn)}: "
                f'opts=pulumi.ResourceOptions(aliases=["{c.renamed}"])'
                + (
                    f", and {', '.join(c.kept_apart)} kept as before: a new value forces "
                    "replacement"
                    if c.kept_apart
                    else ""
                )
                for c in changes
                if c.operation == "create" and c.renamed
            ],
        ),
        (
            f"{bold}Kept by an alias:{bold}",
            [f"- {short(str(c.alias_of))} -> {short(c.urn)}" for c in changes if c.alias_of],
        ),
        (
            f'{bold}Replaced{bold} (a new resource, then the old one deleted; "deleted '
            "first\": the old one goes before its successor exists, by the provider's rule for "
            'the type or for a name the program gives it; "with" another: as its dependent):',
            [
                f"- {short(c.urn)}{_order(c)}{RETAINED if c.retained else ''}"
                for c in changes
                if c.replaces and not c.fails_preview
            ],
        ),
    ]
    return [line for title, items in sections if items for line in (title, *items, "")]


def render_report(
    *,
    stack: str,
    revision: str,
    changes: Sequence[ResourceChange],
    before: Capacity,
    after: Capacity,
    policy_summary: str,
    policy_changes: Sequence[str] = (),
    prices: Mapping[str, Any],
    markdown: bool,
    picture: str | None = None,
) -> str:
    """The report; `picture`, a Mermaid component map, is appended folded (Markdown only)."""
    counts = {op: sum(c.operation == op for c in changes) for op in COUNTED}
    bold = "**" if markdown else ""
    lines = [
        f"{'### ' if markdown else ''}Stack {stack} against {revision}: "
        + ", ".join(f"{counts[op]} to {op}" for op in COUNTED),
        "",
    ]
    lines += _attention(changes, bold)
    for change in changes:
        retained = RETAINED if change.retained and change.operation in ("replace", "delete") else ""
        lines.append(f"- {change.operation} {short(change.urn)}{retained}")
        if change.options:
            lines.append(f"  - options: {_options(change)}")
        for prop in change.properties:
            mark = {
                True: " (forces replacement)",
                None: " (may force replacement: not recorded)",
            }.get(prop.replaces, "")
            text = document_diff(prop.before, prop.after)
            if text is None:
                was = "" if change.operation == "create" else f"{json.dumps(prop.before)} -> "
                lines.append(f"  - {prop.path}: {was}{json.dumps(prop.after)}{mark}")
                continue
            lines.append(f"  - {prop.path}{mark}, as a document:")
            lines += _block(text, markdown)
    lines += [
        "",
        f"Policy check of the change: {policy_summary}",
        *policy_changes,
        f"Accelerator ceiling: {before.gpu_ceiling} -> {after.gpu_ceiling}",
    ]
    unpriced_regions = sorted(
        {c.region for c in (before, after) if c.region and c.region != prices["region"]}
    )
    if unpriced_regions:
        lines.append(
            f"No cost estimate: the price table has {prices['region']} prices only, not "
            f"{', '.join(unpriced_regions)}"
        )
    else:
        lines += [
            f"Estimated monthly cost, nodes at minimum: ${before.monthly_floor:,.0f} -> "
            f"${after.monthly_floor:,.0f}; at maximum: ${before.monthly_ceiling:,.0f} -> "
            f"${after.monthly_ceiling:,.0f}",
            f"(estimate: {prices['source']}, {prices['date']}; node, EKS and NAT hours only)",
        ]
    unpriced = sorted(set(before.unpriced) | set(after.unpriced))
    if unpriced:
        lines.append(f"Not in the price table, so not in the estimate: {', '.join(unpriced)}")
    if markdown and picture is not None:
        lines += [
            "",
            "<details><summary>Component map: added green, changed yellow, removed red</summary>",
            "",
            "```mermaid",
            picture.rstrip("\n"),
            "```",
            "</details>",
        ]
    return "\n".join(lines) + "\n"
