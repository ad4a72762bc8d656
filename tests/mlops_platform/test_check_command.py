"""`mlops-platform check` as a user and CI run it."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mlops_platform.cli import _run_check, main
from mlops_platform.policy_check import CheckResult, PolicyCheckError, PolicyPackServer
from mlops_platform.project import PulumiProject
from mlops_platform.render_cache import CACHE_ENV
from mlops_platform.rendered import RenderedStack
from tests.conftest import REPO_ROOT, STACKS

ROOT = ["--project-dir", str(REPO_ROOT)]
DEV_CONFIG = REPO_ROOT / "policies" / "config" / "dev.json"


@pytest.fixture
def dev_plan(tmp_path: Path) -> Path:
    out = tmp_path / "dev.json"
    assert main([*ROOT, "plan", "--stack", "dev", "--out", str(out)]) == 0
    return out


def test_every_stack_passes_its_own_environment_in_one_run(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The check CI runs: all stacks, each at its environment's levels, one pack process. Every
    rule mandatory in an environment (all but three, in all three) passes on its stack here;
    the rule tests need not render the stacks again."""
    assert main([*ROOT, "check", "--all-stacks"]) == 0
    out = capsys.readouterr().out
    for stack in STACKS:
        assert f"policy check of stack {stack}: 0 mandatory" in out


def test_one_mandatory_violation_in_any_stack_fails_the_run(
    dev_plan: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two plans checked against prod's levels: the dev one fails, so the run does."""
    prod_plan = tmp_path / "prod.json"
    assert main([*ROOT, "plan", "--stack", "prod", "--out", str(prod_plan)]) == 0
    prod_config = REPO_ROOT / "policies" / "config" / "prod.json"
    args = ["check", "--plan", str(prod_plan), "--plan", str(dev_plan), "--format", "json"]
    capsys.readouterr()
    assert main([*ROOT, *args, "--policy-config", str(prod_config)]) == 1
    reports = json.loads(capsys.readouterr().out)
    mandatory = {
        r["title"]: [f for f in r["findings"] if f["level"] == "mandatory"] for r in reports
    }
    assert list(mandatory) == [str(prod_plan), str(dev_plan)]
    assert not mandatory[str(prod_plan)] and mandatory[str(dev_plan)]


def test_a_plan_file_checked_against_prod_fails_with_grouped_violations(
    dev_plan: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prod_config = REPO_ROOT / "policies" / "config" / "prod.json"
    code = main([*ROOT, "check", "--plan", str(dev_plan), "--policy-config", str(prod_config)])
    out = capsys.readouterr().out
    assert code == 1
    assert "MANDATORY (" in out
    assert "[high] stateful-resources-protected  aws:kms/key:Key::artifacts-key" in out
    assert "fix: Set protect and retain_on_delete" in out


def test_a_plan_file_takes_its_environment_config_from_its_outputs(
    dev_plan: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*ROOT, "check", "--plan", str(dev_plan)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"0 mandatory and [1-9][0-9]* advisory violations", out)


def test_json_output_lists_each_finding(dev_plan: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main([*ROOT, "check", "--plan", str(dev_plan), "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert report["rules"] >= 40
    assert {f["rule"] for f in report["findings"]} == {
        "stateful-resources-protected",
        "aws-deletion-protection",
        "eks-endpoint-private",
    }
    assert {f["level"] for f in report["findings"]} == {"advisory"}


def test_markdown_output_is_a_pr_comment(
    dev_plan: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main([*ROOT, "check", "--plan", str(dev_plan), "--format", "markdown"])
    out = capsys.readouterr().out
    assert out.startswith(f"### Policy check of {dev_plan} passes")
    assert "| Rule | Severity | Resource | Violation | Fix |" in out


def test_a_plan_without_environment_needs_a_policy_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = tmp_path / "export.json"
    plan.write_text(json.dumps({"version": 3, "deployment": {"resources": []}}))
    assert main([*ROOT, "check", "--plan", str(plan)]) == 2
    assert "has no `environment` output; pass --policy-config" in capsys.readouterr().err


def test_a_file_that_is_not_a_stack_export_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = tmp_path / "notes.json"
    plan.write_text("[1, 2]")
    assert main([*ROOT, "check", "--plan", str(plan)]) == 2
    assert "not a stack export" in capsys.readouterr().err


def test_a_pack_that_fails_to_start_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "__main__.py").write_text("import mlops_missing_module\n")
    with (
        pytest.raises(PolicyCheckError, match="failed to start") as caught,
        PolicyPackServer(tmp_path),
    ):
        pass
    assert "No module named 'mlops_missing_module'" in str(caught.value)


def test_a_project_without_a_pack_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "Pulumi.yaml").write_text("name: mlops-platform\nruntime: python\n")
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"version": 3, "deployment": {"resources": []}}))
    assert main(["--project-dir", str(tmp_path), "check", "--plan", str(plan)]) == 2
    assert f"no policy pack in {tmp_path / 'policies'}" in capsys.readouterr().err


def test_check_reports_a_broken_pack_without_traceback(
    make_project: Callable[[str, str], PulumiProject], capsys: pytest.CaptureFixture[str]
) -> None:
    project = make_project(
        "dev",
        "config:\n  aws:region: eu-west-1\n  mlops-platform:platform:\n    environment: dev\n"
        '    eks: {endpoint: {publicAccessCidrs: ["203.0.113.0/24"]}}\n',
    )
    broken = project.root / "policies"
    (broken / "config").mkdir(parents=True)
    (broken / "config" / "dev.json").write_text("{}")
    (broken / "__main__.py").write_text("raise SystemExit('pack misconfigured')\n")
    plan = project.root / "plan.json"
    plan.write_text(json.dumps({"version": 3, "deployment": {"resources": []}}))
    config = broken / "config" / "dev.json"
    args = ["check", "--plan", str(plan), "--policy-config", str(config)]
    assert main(["--project-dir", str(project.root), *args]) == 2
    err = capsys.readouterr().err
    assert "failed to start" in err and "pack misconfigured" in err
    assert "Traceback" not in err.split("failed to start")[0]


def test_readme_rule_table_is_current(capsys: pytest.CaptureFixture[str]) -> None:
    """The README's rule table is `mlops-platform rules` output; regenerate it with the pack."""
    assert main([*ROOT, "rules"]) == 0
    table = capsys.readouterr().out
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("<!-- rules:start -->\n")[1].split("<!-- rules:end -->")[0]
    assert section == table
    assert table.count("\n| `") >= 45


@pytest.mark.parametrize(
    ("resource", "problem"),
    [
        (None, "deployment.resources[0] is null, not a resource"),
        ({"type": "aws:s3/bucket:Bucket"}, "deployment.resources[0] has no urn"),
        (
            {"urn": "urn:pulumi:dev::p::aws:s3/bucket:Bucket::b"},
            "deployment.resources[0] has no type",
        ),
    ],
    ids=["null", "no-urn", "no-type"],
)
def test_an_export_with_a_broken_resource_is_bad_input_not_a_violation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], resource: Any, problem: str
) -> None:
    plan = tmp_path / "export.json"
    plan.write_text(json.dumps({"version": 3, "deployment": {"resources": [resource]}}))
    assert main([*ROOT, "check", "--plan", str(plan), "--policy-config", str(DEV_CONFIG)]) == 2
    assert problem in capsys.readouterr().err


def test_an_export_saved_as_utf16_by_powershell_is_read(
    dev_plan: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    utf16 = tmp_path / "export-utf16.json"
    utf16.write_bytes(dev_plan.read_text().encode("utf-16"))
    assert main([*ROOT, "check", "--plan", str(utf16)]) == 0
    assert "0 mandatory" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ("[1]", "is a JSON list; it must be an object of rule names"),
        ('{"s3-bucket-guards": 5}', "s3-bucket-guards: 5 is neither an enforcement level"),
    ],
)
def test_a_policy_config_of_the_wrong_shape_is_bad_input(
    dev_plan: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    document: str,
    problem: str,
) -> None:
    config = tmp_path / "config.json"
    config.write_text(document)
    assert main([*ROOT, "check", "--plan", str(dev_plan), "--policy-config", str(config)]) == 2
    assert problem in capsys.readouterr().err


class SessionPack:
    """The session's pack server behind the interface `check` starts its pack with."""

    def __init__(self, server: PolicyPackServer | None) -> None:
        self.pack_dir = REPO_ROOT / "policies"
        self.server_asked = 0
        self._server = server

    def server(self) -> PolicyPackServer:
        self.server_asked += 1
        assert self._server is not None, "the pack was asked again"
        return self._server


def test_a_check_already_made_is_read_back_and_any_change_asks_the_pack_again(
    pack: PolicyPackServer,
    rendered_stacks: dict[str, RenderedStack],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A PR comment re-run checks the same plans with the same pack: the verdict is read back,
    and the pack is not asked. The key covers the resources, the config and the pack's files."""
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    project = PulumiProject.load(REPO_ROOT)
    resources = rendered_stacks["dev"].states()

    def checked(pack_process: SessionPack, states: list[dict[str, Any]]) -> CheckResult:
        return _run_check(project, pack_process, states, "stack dev", None, cache=True)  # type: ignore[arg-type]

    first = checked(SessionPack(pack), resources)
    assert checked(SessionPack(None), resources) == first
    untagged = json.loads(json.dumps(resources))
    next(r for r in untagged if r["type"] == "aws:s3/bucket:Bucket")["inputs"]["tags"] = {}
    asked = SessionPack(pack)
    assert checked(asked, untagged).findings != first.findings
    assert asked.server_asked == 1
