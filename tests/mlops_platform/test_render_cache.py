"""The render cache: a hit is the render byte for byte; every input of a render is in its key."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from mlops_platform import render_cache
from mlops_platform.project import PulumiProject
from mlops_platform.render_cache import (
    RenderCache,
    blob_id,
    render_key,
    render_stacks,
    revision_sources,
    source_paths,
    working_tree_sources,
)
from mlops_platform.rendered import RenderedStack
from tests.conftest import REPO_ROOT

# Renders the platform's dev stack, then the example model team's project against it (through
# its StackReference), in a fresh interpreter through one cache, and lists every project file
# the renders opened or imported.
RECORDING_RENDER = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from mlops_platform.project import PulumiProject
    from mlops_platform.render_cache import RenderCache, render_stacks

    opened = set()
    sys.addaudithook(lambda event, args: event == "open" and opened.add(str(args[0])))
    cache = RenderCache(Path(sys.argv[2]))
    plans = {}
    for root in (Path(sys.argv[1]), Path(sys.argv[1]) / "examples" / "model-service"):
        project = PulumiProject.load(root)
        plans[project.name] = render_stacks(project, ["dev"], cache)["dev"].dump()
    Path(sys.argv[3]).write_text(json.dumps(plans))
    imported = [getattr(m, "__file__", None) or "" for m in list(sys.modules.values())]
    Path(sys.argv[4]).write_text(json.dumps(sorted(opened | set(imported))))
    """
)
EXAMPLE = REPO_ROOT / "examples" / "model-service"


def project_file(path: str) -> Path | None:
    """The project source behind a path a process opened, if it is one."""
    file = Path(path)
    if file.parent.name == "__pycache__":
        file = file.parent.parent / (file.name.split(".")[0] + ".py")
    if not file.is_absolute() or not file.is_relative_to(REPO_ROOT):
        return None
    # The render cache's entries are checked against their keys, not part of them: a
    # referenced stack is read from there.
    if file.is_relative_to(REPO_ROOT / ".venv") or file.is_relative_to(REPO_ROOT / ".cache"):
        return None
    if file.is_dir():
        return None
    return file.resolve()


def test_a_render_is_a_pure_function_of_its_key(
    project: PulumiProject, rendered_stacks: dict[str, RenderedStack], tmp_path: Path
) -> None:
    """Two projects rendered one after another in a fresh interpreter under another hash seed,
    into an empty cache: the platform's dev stack the same bytes as the session's render, the
    model team's project after it (so nothing of one render leaks into the next), one sound
    cache entry each, and nothing read that the keys do not hash."""
    cache, out, read = tmp_path / "cache", tmp_path / "plans.json", tmp_path / "files.json"
    command = [sys.executable, "-c", RECORDING_RENDER, str(REPO_ROOT), str(cache), out, read]
    subprocess.run(command, env={**os.environ, "PYTHONHASHSEED": "7"}, check=True, timeout=120)
    plans = json.loads(out.read_text())
    assert plans[project.name] == rendered_stacks["dev"].dump()

    example = PulumiProject.load(EXAMPLE)
    entries = {entry.name: entry for entry in cache.iterdir()}
    for rendered_project in (project, example):
        key = render_key(
            rendered_project.name, "dev", working_tree_sources(rendered_project, "dev")
        )
        entry = entries.pop(f"{key}.json")
        record = RenderedStack.from_record(json.loads(entry.read_text()))
        assert record.dump() == plans[rendered_project.name]
    assert not entries

    hashed = {
        path.resolve()
        for rendered_project in (project, example)
        for path in source_paths(rendered_project, "dev").values()
    }
    loaded = {project_file(path) for path in json.loads(read.read_text())} - {None}
    outside = loaded - hashed
    assert not outside, f"a render read files its cache key does not hash: {sorted(outside)}"


def test_a_cache_hit_is_the_render_byte_for_byte(
    rendered_stacks: dict[str, RenderedStack], tmp_path: Path
) -> None:
    """What an entry gives back is what was rendered (that a render depends on its key alone is
    the test above)."""
    cache = RenderCache(tmp_path)
    rendered = rendered_stacks["staging"]
    cache.put("key", rendered)
    hit = cache.get("key")
    assert hit is not None and hit is not rendered
    assert hit.dump() == rendered.dump()
    assert [r.ignore_changes for r in hit.resources] == [
        r.ignore_changes for r in rendered.resources
    ]


def test_every_file_of_the_program_engine_and_vocabulary_is_hashed(project: PulumiProject) -> None:
    names = set(source_paths(project, "dev"))
    assert {"Pulumi.yaml", "stack", "main", "infra/program.py", "infra/config.py"} <= names
    assert {f"components/{p.name}" for p in (REPO_ROOT / "components").glob("*.py")} <= names
    assert {"mlops_platform/engine.py", "mlops_platform/mock_cloud.py"} <= names
    assert {"mlops_guardrails/vocabulary.py", "mlops_guardrails/export.py"} <= names


def test_a_change_to_any_source_changes_the_key(project: PulumiProject) -> None:
    sources = working_tree_sources(project, "dev")
    key = render_key(project.name, "dev", sources)
    for name in sources:
        changed = {**sources, name: blob_id(b"changed")}
        assert render_key(project.name, "dev", changed) != key, name
    assert render_key(project.name, "prod", sources) != key
    assert render_key(project.name, "dev", {**sources, "infra/new.py": blob_id(b"")}) != key


ENVIRONMENT_CHANGES: dict[str, Callable[[pytest.MonkeyPatch, Path], None]] = {
    "Python version": lambda patch, _: patch.setattr(sys, "version", "3.99.0"),
    "an SDK upgraded": lambda patch, directory: (
        (directory / "pulumi-9.9.9.dist-info").mkdir(),
        patch.syspath_prepend(str(directory)),
    ),
    "a PULUMI_ setting": lambda patch, _: patch.setenv("PULUMI_CONFIG", '{"a": "b"}'),
}


@pytest.mark.parametrize("change", ENVIRONMENT_CHANGES)
def test_a_change_to_the_interpreter_packages_or_settings_changes_the_key(
    project: PulumiProject, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, change: str
) -> None:
    sources = working_tree_sources(project, "dev")
    key = render_key(project.name, "dev", sources)
    ENVIRONMENT_CHANGES[change](monkeypatch, tmp_path)
    assert render_key(project.name, "dev", sources) != key


def test_a_changed_stack_file_misses(make_project: Callable[[str, str], PulumiProject]) -> None:
    stack_file = (
        "config:\n  aws:region: eu-west-1\n  mlops-platform:platform:\n    environment: dev\n"
    )
    project = make_project("dev", stack_file)
    before = working_tree_sources(project, "dev")
    project.stack_file("dev").write_text(stack_file.replace("eu-west-1", "eu-west-2"))
    assert working_tree_sources(project, "dev")["stack"] != before["stack"]


def test_readers_never_see_a_partly_written_entry(
    rendered_stacks: dict[str, RenderedStack], tmp_path: Path
) -> None:
    cache = RenderCache(tmp_path)
    plans = [rendered_stacks["prod"], rendered_stacks["dev"]]
    expected = {plan.dump() for plan in plans}
    seen: list[str | None] = []

    def write(plan: RenderedStack) -> None:
        for _ in range(3):
            cache.put("same-key", plan)

    def read() -> None:
        for _ in range(15):
            hit = cache.get("same-key")
            seen.append(None if hit is None else hit.dump())

    threads = [threading.Thread(target=write, args=(p,)) for p in plans] + [
        threading.Thread(target=read) for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {dump for dump in seen if dump is not None} <= expected
    assert [p.name for p in tmp_path.iterdir()] == ["same-key.json"]


def test_a_config_error_is_not_cached(
    make_project: Callable[[str, str], PulumiProject], tmp_path: Path
) -> None:
    project = make_project(
        "dev", "config:\n  aws:region: eu-west-1\n  mlops-platform:platform:\n    environment: qa\n"
    )
    cache = RenderCache(tmp_path / "cache")
    with pytest.raises(render_cache.RenderError, match="environment"):
        render_stacks(project, ["dev"], cache)
    assert not (tmp_path / "cache").exists()


def test_a_cache_that_cannot_be_written_costs_a_render_not_the_command(
    rendered_stacks: dict[str, RenderedStack], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    occupied = tmp_path / "a-file"
    occupied.write_text("")
    cache = RenderCache(occupied / "renders")
    cache.put("key", rendered_stacks["dev"])
    assert cache.get("key") is None
    assert "warning: nothing cached in" in capsys.readouterr().err


def test_entries_are_readable_by_others_sharing_the_cache(
    rendered_stacks: dict[str, RenderedStack], tmp_path: Path
) -> None:
    RenderCache(tmp_path).put("key", rendered_stacks["dev"])
    assert (tmp_path / "key.json").stat().st_mode & 0o777 == 0o644


def test_a_revision_is_read_whatever_characters_its_project_path_holds(tmp_path: Path) -> None:
    """git quotes a path with non-ASCII characters in ls-tree's text output; the NUL-separated
    form is read as is, so a project in such a directory still has a base to diff against."""
    project_dir = "équipe serving/"
    root = tmp_path / "repo"
    (root / project_dir).mkdir(parents=True)
    (root / project_dir / "Pulumi.yaml").write_text("name: team\nruntime: python\n")
    (root / project_dir / "Pulumi.dev.yaml").write_text("config: {}\n")
    (root / project_dir / "__main__.py").write_text("")
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "team"], check=True)
    sources = revision_sources(root, "HEAD", "dev", "__main__.py", project_dir)
    assert sources is not None
    assert {"Pulumi.yaml", "main", "stack"} <= set(sources)
