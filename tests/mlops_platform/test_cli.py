"""`mlops-platform plan` and `config-reference` as a user runs them."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from infra.config import ConfigError
from mlops_platform.cli import EXIT_CODES, _parser, main
from mlops_platform.engine import RecordingMonitor, render_stack
from mlops_platform.project import PulumiProject
from mlops_platform.rendered import RenderedStack
from tests.conftest import REPO_ROOT, STACKS

DEV = """
config:
  aws:region: eu-west-1
  mlops-platform:platform:
    environment: dev
    eks: {endpoint: {publicAccessCidrs: ["203.0.113.0/24"]}}
"""
BAD_PROD = """
config:
  aws:region: us-east-1
  mlops-platform:platform:
    environment: prod
    protectStatefulResources: false
    kms:
      deletionWindowDays: 3
    artifacts:
      bucket: {}
    eks:
      endpoint: {privateAccessCidrs: [10.200.0.0/16]}
"""


def test_plan_writes_the_stack_and_prints_a_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "p.json"
    assert (
        main(["--project-dir", str(REPO_ROOT), "plan", "--stack", "prod", "--out", str(out)]) == 0
    )
    printed = capsys.readouterr().out
    assert "stack prod of mlops-platform:" in printed
    assert re.search(r"stateful resources \(\d+, 0 unprotected\):", printed)
    assert re.search(r"\d+  aws:s3/bucket:Bucket", printed)
    assert json.loads(out.read_text())["version"] == 3


def test_summary_flags_unprotected_stateful_resources(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--project-dir", str(REPO_ROOT), "plan", "--stack", "dev"])
    printed = capsys.readouterr().out
    counted = re.search(r"stateful resources \((\d+), (\d+) unprotected\):", printed)
    assert counted is not None and counted.group(1) == counted.group(2)
    assert "UNPROTECTED  aws:kms/key:Key" in printed


def test_several_stacks_render_in_one_run_into_a_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["--project-dir", str(REPO_ROOT), "plan", "--all-stacks", "--out", str(tmp_path)]) == 0
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{s}.json" for s in sorted(STACKS)]
    printed = capsys.readouterr().out
    assert [
        line.split(" of ")[0] for line in printed.splitlines() if " of mlops-platform" in line
    ] == [f"stack {s}" for s in sorted(STACKS)]


def test_all_stacks_writes_a_directory_even_for_a_project_of_one_stack(
    make_project: Callable[[str, str], PulumiProject], tmp_path: Path
) -> None:
    project = make_project("dev", DEV)
    out = tmp_path / "plans"
    assert (
        main(["--project-dir", str(project.root), "plan", "--all-stacks", "--out", str(out)]) == 0
    )
    assert [p.name for p in out.iterdir()] == ["dev.json"]


# What a command loaded, printed by a fresh interpreter after running it.
LOADED_AFTER = (
    "import sys; from mlops_platform.cli import main; main(sys.argv[1:]); "
    "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})), file=sys.stderr)"
)


def loaded_by(*args: str) -> set[str]:
    process = subprocess.run(
        [sys.executable, "-c", LOADED_AFTER, "--project-dir", str(REPO_ROOT), *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(process.stderr.split())


def test_a_cached_plan_loads_no_pulumi_sdk_and_not_the_program(
    rendered_stacks: dict[str, RenderedStack],
) -> None:
    """rendered_stacks went through the same cache, so this plan is a hit."""
    loaded = loaded_by("plan", "--stack", "dev")
    assert not loaded & {"pulumi", "pulumi_aws", "pulumi_kubernetes", "infra", "components"}
    assert not loaded & {"pydantic", "boto3", "grpc"}


def test_checking_a_plan_file_loads_neither_providers_program_nor_boto3(tmp_path: Path) -> None:
    plan = tmp_path / "dev.json"
    assert (
        main(["--project-dir", str(REPO_ROOT), "plan", "--stack", "dev", "--out", str(plan)]) == 0
    )
    loaded = loaded_by("check", "--plan", str(plan))
    assert not loaded & {"pulumi_aws", "pulumi_kubernetes", "infra", "components", "pydantic"}
    assert not loaded & {"boto3", "botocore"}


def test_unknown_stack_lists_the_stacks(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--project-dir", str(REPO_ROOT), "plan", "--stack", "qa"]) == 2
    assert (
        "no stack file Pulumi.qa.yaml (stacks here: dev, prod, staging)" in capsys.readouterr().err
    )


def test_bad_config_is_one_message_without_traceback_and_writes_nothing(
    make_project: Callable[[str, str], PulumiProject], tmp_path: Path
) -> None:
    project = make_project("prod", BAD_PROD)
    out = tmp_path / "p.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlops_platform.cli",
            "--project-dir",
            str(project.root),
            "plan",
            "--stack",
            "prod",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith(
        "error: invalid platform configuration in Pulumi.prod.yaml (3 problems)"
    )
    for path in ("protectStatefulResources", "kms.deletionWindowDays", "artifacts.bucket"):
        assert f"mlops-platform:platform.{path}:" in result.stderr
    assert not out.exists()


def test_bad_config_registers_no_resource(
    make_project: Callable[[str, str], PulumiProject], monkeypatch: pytest.MonkeyPatch
) -> None:
    registered: list[str] = []
    original = RecordingMonitor.RegisterResource

    def spy(self: RecordingMonitor, request: object) -> object:
        registered.append(request.type)  # type: ignore[attr-defined]
        return original(self, request)

    monkeypatch.setattr(RecordingMonitor, "RegisterResource", spy)
    with pytest.raises(ConfigError):
        render_stack(make_project("prod", BAD_PROD), "prod")
    assert registered == ["pulumi:pulumi:Stack"]


def test_config_reference_in_docs_is_current(capsys: pytest.CaptureFixture[str]) -> None:
    """docs/config-reference.md is generated; regenerate it when the config models change."""
    assert main(["--project-dir", str(REPO_ROOT), "config-reference"]) == 0
    assert (REPO_ROOT / "docs" / "config-reference.md").read_text() == capsys.readouterr().out


def test_config_reference_describes_every_setting() -> None:
    text = (REPO_ROOT / "docs" / "config-reference.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert len(rows) >= 10
    for row in rows:
        description = row.rstrip(" |").rsplit(" | ", 1)[-1]
        assert len(description) > 20, row


def test_an_unwritable_plan_destination_fails_before_anything_renders(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_render(*_: object) -> None:
        raise AssertionError("rendered before the destination was checked")

    monkeypatch.setattr("mlops_platform.cli._render", no_render)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    out = blocker / "plans" / "dev.json"
    assert main(["--project-dir", str(REPO_ROOT), "plan", "--stack", "dev", "--out", str(out)]) == 2
    assert f"cannot write {out}: {blocker} is not a folder" in capsys.readouterr().err
    assert (
        main(["--project-dir", str(REPO_ROOT), "plan", "--stack", "dev", "--out", str(tmp_path)])
        == 2
    )
    assert "it is a folder" in capsys.readouterr().err


def test_every_subcommand_and_option_says_what_it_is_for() -> None:
    commands = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    for name, command in commands.choices.items():
        assert command.description, f"{name} has no description"
        undescribed = [
            action.option_strings
            for action in command._actions
            if action.option_strings
            and action.help in (None, "")
            and "-h" not in action.option_strings
        ]
        assert undescribed == [], f"{name}: {undescribed}"


def test_the_readme_and_help_give_the_one_table_of_exit_codes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    for code, meaning in EXIT_CODES.items():
        assert f"| {code} | {meaning} |" in readme
    with pytest.raises(SystemExit):
        main(["--help"])
    shown = capsys.readouterr().out
    assert all(f"  {code}  {meaning.split()[0]}" in shown for code, meaning in EXIT_CODES.items())
