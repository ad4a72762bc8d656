"""Renders, and policy checks, cached by a hash of everything they read.

A render is a pure function of: the program's sources (the `infra` and `components` packages and
the file `Pulumi.yaml`'s `main` runs), the engine's (`mlops_platform`) and the vocabulary it
shares with the pack (`mlops_guardrails`), `Pulumi.yaml`, the stack file, the Python version, the
installed distributions and `PULUMI_*` environment variables. Those are hashed into the key
(files by their git blob id, so a git revision's key is read from git without checking it out),
and an unchanged stack is read back instead of re-rendered.

Entries are written to a temporary file and renamed into place, so concurrent runs never see a
partial entry; the last writer wins with the same content. This module imports neither the SDK
nor the engine: a cache hit loads nothing else.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

from mlops_platform.errors import UserError
from mlops_platform.project import ProjectError, PulumiProject
from mlops_platform.rendered import RenderedStack

FORMAT: Final = 1
"""Bumped whenever a cache entry's layout changes."""
CACHE_ENV: Final = "MLOPS_PLATFORM_CACHE_DIR"
DEFAULT_DIRECTORY: Final = Path(".cache") / "renders"
KEEP_ENTRIES: Final = 200
STALE_TEMPORARY_SECONDS: Final = 3600
# Every source of the packages a render imports, where each sits in this repository. Whole
# packages, not the modules today's code happens to import: a git revision's key must cover what
# that revision's code reads. A test renders a stack in a fresh interpreter and fails if it opens
# or imports a project file outside these.
SOURCE_PACKAGES: Final = {
    "infra": "infra",
    "components": "components",
    "mlops_platform": "mlops_platform",
    "mlops_guardrails": "policies/mlops_guardrails",
}


T = TypeVar("T")


class RenderError(UserError):
    """The program refused to render (a config error, say); the message is the whole story."""


def blob_id(content: bytes) -> str:
    """The id git gives a file with this content."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content, usedforsecurity=False).hexdigest()


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ProjectError(f"package {package} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def source_paths(project: PulumiProject, stack: str) -> dict[str, Path]:
    """Every file a render of `stack` reads, by its name in the key."""
    paths: dict[str, Path] = {}
    for package in SOURCE_PACKAGES:
        directory = _package_dir(package)
        for path in directory.rglob("*.py"):
            paths[f"{package}/{path.relative_to(directory).as_posix()}"] = path
    paths["Pulumi.yaml"] = project.root / "Pulumi.yaml"
    paths["main"] = project.main / "__main__.py" if project.main.is_dir() else project.main
    program_dir = project.main if project.main.is_dir() else project.main.parent
    if not any(program_dir.resolve() == _package_dir(p).resolve() for p in SOURCE_PACKAGES):
        # A program of its own (a model team's): every module beside its main is read too.
        for path in program_dir.rglob("*.py"):
            relative = path.relative_to(program_dir)
            if not {"venv", ".venv", ".cache", "__pycache__"} & set(relative.parts):
                paths[f"program/{relative.as_posix()}"] = path
    stack_file = project.stack_file(stack)
    if not stack_file.is_file():
        known = ", ".join(project.stacks()) or "none"
        raise ProjectError(f"no stack file {stack_file.name} (stacks here: {known})")
    paths["stack"] = stack_file
    return {name: path for name, path in paths.items() if path.is_file()}


def working_tree_sources(
    project: PulumiProject, stack: str, seen: frozenset[tuple[Path, str]] = frozenset()
) -> dict[str, str]:
    """Blob ids of everything a render of `stack` reads, from the files on disk; and the key of
    each stack its config references (a model team's platform stack), whose outputs the
    render reads, and of what those reference in turn."""
    sources = {
        name: blob_id(path.read_bytes()) for name, path in source_paths(project, stack).items()
    }
    seen = seen | {(project.root.resolve(), stack)}
    for name, referenced, referenced_stack in project.config_references(stack):
        if (referenced.root.resolve(), referenced_stack) in seen:
            continue
        referenced_sources = working_tree_sources(referenced, referenced_stack, seen)
        sources[f"reference {name}"] = render_key(
            referenced.name, referenced_stack, referenced_sources
        )
    return sources


def revision_sources(
    root: Path, commit: str, stack: str, main: str, project_dir: str = ""
) -> dict[str, str] | None:
    """The same blob ids for the tree of a commit, read from git; None if the stack file is not
    in it. `root` is the repository's top; `project_dir` (ending in /) the project's directory
    in it, where its Pulumi.yaml, main and stack files are."""
    project_files = {
        "Pulumi.yaml": f"{project_dir}Pulumi.yaml",
        "main": f"{project_dir}{main}",
        "stack": f"{project_dir}Pulumi.{stack}.yaml",
    }
    wanted = {*SOURCE_PACKAGES.values(), *project_files.values()}
    listing = subprocess.run(
        # NUL-terminated: git quotes a path with unusual characters otherwise.
        [
            "git",
            "-C",
            str(root),
            "ls-tree",
            "-r",
            "-z",
            "--full-tree",
            commit,
            "--",
            *sorted(wanted),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    blobs = {}
    for entry in listing.split("\0"):
        if entry:
            meta, path = entry.split("\t", 1)
            blobs[path] = meta.split()[2]
    if project_files["stack"] not in blobs or project_files["Pulumi.yaml"] not in blobs:
        return None
    sources = {}
    for package, location in SOURCE_PACKAGES.items():
        prefix = location + "/"
        for path, blob in blobs.items():
            if path.startswith(prefix) and path.endswith(".py"):
                sources[f"{package}/{path.removeprefix(prefix)}"] = blob
    # The project's own files under the names working_tree_sources gives them; a main inside
    # a package above is hashed with that package.
    sources.update({name: blobs[path] for name, path in project_files.items() if path in blobs})
    return sources


def environment_fingerprint() -> dict[str, Any]:
    """The interpreter, every installed distribution and the `PULUMI_*` variables the SDK reads.

    A distribution is its dist-info name (name and version) and when its file list was last
    written, which any install, upgrade or reinstall does. An SDK installed editable from a
    working copy is not hashed file by file: after changing one, render with --no-cache.
    """
    distributions = sorted(
        f"{entry}@{_written(Path(directory, entry, 'RECORD'))}"
        for directory in sys.path
        if os.path.isdir(directory)
        for entry in os.listdir(directory)
        if entry.endswith(".dist-info")
    )
    pulumi_variables = {k: v for k, v in os.environ.items() if k.startswith("PULUMI_")}
    return {
        "python": sys.version,
        "distributions": distributions,
        "environment": dict(sorted(pulumi_variables.items())),
    }


def _written(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


def render_key(project_name: str, stack: str, sources: Mapping[str, str]) -> str:
    document = {
        "format": FORMAT,
        "project": project_name,
        "stack": stack,
        "sources": dict(sorted(sources.items())),
        **environment_fingerprint(),
    }
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def check_key(resources: Any, config: Any, pack_dir: Path) -> str:
    """A policy check is a pure function of the resources, the pack's config and the pack's
    files (and the interpreter and distributions that run it)."""
    pack = {
        path.relative_to(pack_dir).as_posix(): blob_id(path.read_bytes())
        for path in sorted(pack_dir.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }
    document = {
        "format": FORMAT,
        "check": {"resources": resources, "config": config, "pack": pack},
        **environment_fingerprint(),
    }
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class RenderCache:
    directory: Path | None
    """None: caching is off."""

    @classmethod
    def for_project(cls, project: PulumiProject, enabled: bool = True) -> RenderCache:
        if not enabled:
            return cls(None)
        configured = os.environ.get(CACHE_ENV)
        return cls(Path(configured) if configured else project.root / DEFAULT_DIRECTORY)

    def holds(self, key: str) -> bool:
        """Whether a render of the key is stored (a stack whose config failed never is)."""
        return self.directory is not None and (self.directory / f"{key}.json").is_file()

    def get(self, key: str) -> RenderedStack | None:
        return self.get_record(key, RenderedStack.from_record)

    def put(self, key: str, rendered: RenderedStack) -> None:
        """Store a render; a cache that cannot be written only costs the next run a render."""
        self.put_record(key, rendered.to_record())

    def get_record(self, key: str, read: Callable[[Any], T]) -> T | None:
        """The entry under `key` as `read` makes it from its JSON; None when there is none."""
        if self.directory is None:
            return None
        path = self.directory / f"{key}.json"
        try:
            entry = read(json.loads(path.read_bytes()))
        except (OSError, ValueError, KeyError, TypeError):
            # Absent, or written by something else: work it out again and overwrite it.
            return None
        # Recently used entries survive pruning.
        with contextlib.suppress(OSError):
            os.utime(path)
        return entry

    def put_record(self, key: str, record: Any) -> None:
        if self.directory is None:
            return
        try:
            self._write(key, record)
            self._prune()
        except OSError as error:
            print(f"warning: nothing cached in {self.directory}: {error}", file=sys.stderr)

    def _write(self, key: str, record: Any) -> None:
        assert self.directory is not None
        self.directory.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.directory, prefix=f".{key}.", suffix=".tmp")
        try:
            # mkstemp makes the file private; others who share the cache may read entries.
            os.fchmod(handle, 0o644)
            with os.fdopen(handle, "w") as file:
                json.dump(record, file, sort_keys=True)
            os.replace(temporary, self.directory / f"{key}.json")
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def _prune(self) -> None:
        """Keep the most recently used entries, and drop what killed writers left behind."""
        assert self.directory is not None
        entries = []
        now = time.time()
        for path in self.directory.iterdir():
            with contextlib.suppress(OSError):
                modified = path.stat().st_mtime
                if path.suffix == ".json":
                    entries.append((modified, path))
                elif path.suffix == ".tmp" and now - modified > STALE_TEMPORARY_SECONDS:
                    path.unlink()
        for _, path in sorted(entries, reverse=True)[KEEP_ENTRIES:]:
            path.unlink(missing_ok=True)


def render_stacks(
    project: PulumiProject, stacks: Iterable[str], cache: RenderCache
) -> dict[str, RenderedStack]:
    """Each stack from the cache, or rendered (all in this process) and cached."""
    rendered = {}
    for stack in stacks:
        key = render_key(project.name, stack, working_tree_sources(project, stack))
        hit = cache.get(key)
        if hit is not None and not _references_current(hit):
            hit = None
        if hit is None:
            hit = _render(project, stack)
            cache.put(key, hit)
        rendered[stack] = hit
    return rendered


def _references_current(rendered: RenderedStack) -> bool:
    """Whether every stack the render read through a StackReference would render as it did:
    its key covers its own sources, not what those stacks say."""
    for reference in rendered.references.values():
        try:
            referenced = PulumiProject.load(Path(reference["root"]))
            sources = working_tree_sources(referenced, reference["stack"])
        except ProjectError:
            return False
        if render_key(referenced.name, reference["stack"], sources) != reference["key"]:
            return False
    return True


def _render(project: PulumiProject, stack: str) -> RenderedStack:
    # The SDK loads only on a miss.
    import pulumi

    from mlops_platform.engine import render_stack

    try:
        return render_stack(project, stack)
    except pulumi.RunError as error:
        raise RenderError(str(error)) from None
