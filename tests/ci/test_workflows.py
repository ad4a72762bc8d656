"""The GitHub Actions workflows: valid, using real commands, OIDC only, guarded deployments.

actionlint is not installable here (its PyPI wrapper downloads the binary at build time), so
these checks stand in for the parts that matter to this repository.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_platform.cli import _parser
from tests.conftest import REPO_ROOT

WORKFLOWS = REPO_ROOT / ".github" / "workflows"
STACKS = ("dev", "staging", "prod")


def load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    # YAML 1.1 reads the bare key `on` as True.
    document["on"] = document.pop(True, document.get("on"))
    return document


def steps() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(WORKFLOWS.glob("*.yml")):
        for job in load(path)["jobs"].values():
            found += [(path.name, step) for step in job.get("steps", [])]
    return found


def cli_commands() -> set[str]:
    subparsers = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    return set(subparsers.choices)


def test_every_workflow_is_valid_yaml_with_jobs() -> None:
    paths = sorted(WORKFLOWS.glob("*.yml"))
    assert [p.name for p in paths] == ["deploy-stack.yml", "deploy.yml", "pull-request.yml"]
    for path in paths:
        document = load(path)
        assert document["on"] and document["jobs"], path.name


def test_run_steps_use_commands_that_exist() -> None:
    commands = cli_commands()
    for name, step in steps():
        for used in re.findall(r"mlops-platform (\w[\w-]*)", step.get("run", "")):
            assert used in commands, f"{name}: mlops-platform {used}"
        if ".ci/run" in step.get("run", ""):
            assert (REPO_ROOT / ".ci" / "run").exists()


def test_actions_are_pinned_to_a_major_version() -> None:
    for name, step in steps():
        if "uses" in step:
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+", step["uses"]), f"{name}: {step['uses']}"


def test_aws_access_is_by_oidc_role_never_stored_keys() -> None:
    for path in sorted(WORKFLOWS.glob("*.yml")):
        text = path.read_text()
        assert "aws-access-key-id" not in text and "AWS_SECRET_ACCESS_KEY" not in text
    configure = [
        s
        for _, s in steps()
        if s.get("uses", "").startswith("aws-actions/configure-aws-credentials")
    ]
    assert configure and all("role-to-assume" in s["with"] for s in configure)
    for name in ("deploy.yml", "deploy-stack.yml"):
        assert load(WORKFLOWS / name)["permissions"]["id-token"] == "write"


def test_pull_requests_post_the_diff_against_the_base_branch() -> None:
    stacks = load(WORKFLOWS / "pull-request.yml")["jobs"]["stacks"]
    checkout = stacks["steps"][0]
    assert checkout["with"]["fetch-depth"] == 0
    runs = " ".join(s.get("run", "") for s in stacks["steps"])
    assert "mlops-platform diff --stack ${{ matrix.stack }}" in runs
    assert "--base origin/${{ github.base_ref }} --format markdown" in runs


def test_pull_requests_preview_every_stack_with_its_policy_config() -> None:
    stacks = load(WORKFLOWS / "pull-request.yml")["jobs"]["stacks"]
    assert stacks["strategy"]["matrix"]["stack"] == list(STACKS)
    [preview] = [s for s in stacks["steps"] if s.get("uses", "").startswith("pulumi/actions")]
    assert preview["with"]["command"] == "preview"
    assert preview["with"]["policyPacks"] == "policies"
    assert preview["with"]["policyPackConfigs"] == "policies/config/${{ matrix.stack }}.json"
    for stack in STACKS:
        assert (REPO_ROOT / "policies" / "config" / f"{stack}.json").exists()


def test_merges_deploy_dev_then_staging_then_prod_each_behind_its_environment() -> None:
    jobs = load(WORKFLOWS / "deploy.yml")["jobs"]
    assert [jobs[s]["with"]["stack"] for s in STACKS] == list(STACKS)
    assert (jobs["staging"]["needs"], jobs["prod"]["needs"]) == ("dev", "staging")
    up = load(WORKFLOWS / "deploy-stack.yml")["jobs"]["up"]
    assert up["environment"] == "${{ inputs.stack }}"
    assert up["concurrency"] == {"group": "deploy-${{ inputs.stack }}", "cancel-in-progress": False}
    [deploy] = [s for s in up["steps"] if s.get("uses", "").startswith("pulumi/actions")]
    assert deploy["with"]["command"] == "up"


def test_private_stacks_deploy_from_their_runner_inside_the_vpc() -> None:
    jobs = load(WORKFLOWS / "deploy.yml")["jobs"]
    assert "runner" not in jobs["dev"]["with"]
    for stack in ("staging", "prod"):
        assert jobs[stack]["with"]["runner"] == (
            f"codebuild-${{{{ vars.DEPLOY_RUNNER_{stack.upper()} }}}}"
            "-${{ github.run_id }}-${{ github.run_attempt }}"
        )
        # Before the first deploy names the runner, the job is skipped, not queued for a day.
        assert jobs[stack]["if"] == f"vars.DEPLOY_RUNNER_{stack.upper()} != ''"
    up = load(WORKFLOWS / "deploy-stack.yml")
    assert up["jobs"]["up"]["runs-on"] == "${{ inputs.runner }}"
    assert up["on"]["workflow_call"]["inputs"]["runner"]["default"] == "ubuntu-latest"
    # The first deploy's last step runs the workflow by hand, before anything is merged.
    assert "workflow_dispatch" in load(WORKFLOWS / "deploy.yml")["on"]


def test_pull_requests_never_run_in_a_vpc_or_with_deploy_credentials() -> None:
    """Unreviewed code previews on GitHub's runners, as the read-only preview role, with a
    token that can preview and not update; deploy credentials exist only for jobs of the
    protected environments."""
    document = load(WORKFLOWS / "pull-request.yml")
    text = (WORKFLOWS / "pull-request.yml").read_text()
    assert {job["runs-on"] for job in document["jobs"].values()} == {"ubuntu-latest"}
    assert not any("environment" in job for job in document["jobs"].values())
    assert "AWS_DEPLOY_ROLE_ARN" not in text
    assert "secrets.PULUMI_ACCESS_TOKEN" not in text
    [preview] = [
        s for s in document["jobs"]["stacks"]["steps"] if s.get("uses", "").startswith("pulumi/")
    ]
    assert preview["env"]["PULUMI_ACCESS_TOKEN"] == "${{ secrets.PULUMI_PREVIEW_TOKEN }}"


def test_both_state_backends_reach_every_pulumi_step() -> None:
    for _, step in steps():
        if step.get("uses", "").startswith("pulumi/actions"):
            assert step["with"]["cloud-url"] == "${{ vars.PULUMI_BACKEND_URL }}"


@pytest.mark.parametrize("stack", STACKS)
def test_each_stack_has_a_stack_file_for_the_workflows(stack: str) -> None:
    assert (REPO_ROOT / f"Pulumi.{stack}.yaml").exists()


def test_the_readme_sets_up_every_variable_and_secret_the_workflows_read() -> None:
    """Followed step by step, the README's first deploy leaves no workflow input unset."""
    used = {
        name
        for path in WORKFLOWS.glob("*.yml")
        for name in re.findall(r"\$\{\{ (?:vars|secrets)\.(\w+) \}\}", path.read_text())
    }
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("### First deploy of a private cluster")[1].split("\n## ")[0]
    assert used and {name for name in used if name not in section} == set()
