"""A private cluster's first `pulumi up`: from outside the VPC it creates everything but the
cluster's software, the path to the API included; then the runner it created does the rest."""

from __future__ import annotations

import shlex
from typing import Any

import pytest

from mlops_guardrails.export import resource_state, urn
from mlops_platform.cli import main
from mlops_platform.first_deploy import KUBERNETES_PROVIDER, excluded_by, first_deploy_steps
from mlops_platform.project import PulumiProject
from mlops_platform.rendered import RecordedResource, RenderedStack
from tests.configs import stack_platform_config
from tests.conftest import REPO_ROOT

PRIVATE_STACKS = ("staging", "prod")


def resource(name: str, **links: Any) -> RecordedResource:
    return RecordedResource.from_state(
        resource_state(urn=urn("s", "p", "t", name), type="t", inputs={}, outputs={}, **links)
    )


def test_exclusion_follows_providers_parents_and_dependencies_transitively() -> None:
    provider = resource("k8s")
    uses = resource("namespace", provider=f"{provider.urn}::id-1")
    child = resource("child", parent=uses.urn)
    waits = resource("role", property_dependencies={"arn": [child.urn]})
    after = resource("alarm", dependencies=[waits.urn])
    apart = resource("bucket")
    everything = [provider, uses, child, waits, after, apart]
    assert excluded_by(everything, {provider.urn}) == {r.urn for r in (uses, child, waits, after)}


@pytest.mark.parametrize("stack", PRIVATE_STACKS)
def test_the_first_run_leaves_out_exactly_the_kubernetes_resources(
    rendered_stacks: dict[str, RenderedStack], stack: str
) -> None:
    """Everything on AWS, the cluster and the runner's path into it included, is created from
    outside the VPC; nothing that needs the API is attempted before the runner exists."""
    plan = rendered_stacks[stack]
    providers = {r.urn for r in plan.resources if r.type == KUBERNETES_PROVIDER}
    left_out = excluded_by(plan.resources, providers)
    kubernetes = {r.urn for r in plan.resources if r.custom and r.type.startswith("kubernetes:")}
    assert kubernetes and left_out == kubernetes
    path = [
        r
        for r in plan.resources
        if r.type == "aws:eks/cluster:Cluster"
        or (r.type == "aws:codebuild/project:Project" and r.name.startswith("deploy-runner-"))
        or r.name == "deploy-runner-cluster-api"
    ]
    assert len(path) == 3 and not left_out.intersection(r.urn for r in path)


@pytest.mark.parametrize("stack", PRIVATE_STACKS)
def test_the_steps_give_the_exact_command_and_the_workflow_variable(
    project: PulumiProject, rendered_stacks: dict[str, RenderedStack], stack: str
) -> None:
    plan = rendered_stacks[stack]
    steps = first_deploy_steps(plan, stack_platform_config(project, stack), stack)
    [command] = [line.strip() for line in steps.splitlines() if "--exclude-dependents" in line]
    [provider] = [r.urn for r in plan.resources if r.type == KUBERNETES_PROVIDER]
    assert shlex.split(command) == [
        "pulumi",
        "up",
        "--stack",
        stack,
        "--exclude",
        provider,
        "--exclude-dependents",
    ]
    workflow = (REPO_ROOT / ".github" / "workflows" / "deploy.yml").read_text()
    variable = f"DEPLOY_RUNNER_{stack.upper()}"
    assert f"gh variable set {variable}" in steps
    assert f"vars.{variable}" in workflow


def test_a_public_endpoint_needs_no_runner(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--project-dir", str(REPO_ROOT), "first-deploy", "--stack", "dev"]) == 0
    printed = capsys.readouterr().out
    assert "public to eks.endpoint.publicAccessCidrs (203.0.113.0/24)" in printed
    assert "--exclude" not in printed
