"""Shared fixtures: the project, and each stack rendered once per test session."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from mlops_platform.engine import RecordedResource, RenderedStack, render_program, render_stack
from mlops_platform.project import PulumiProject, StackConfig

REPO_ROOT = Path(__file__).resolve().parent.parent
STACKS = ("dev", "staging", "prod")


@pytest.fixture(scope="session")
def project() -> PulumiProject:
    return PulumiProject.load(REPO_ROOT)


@pytest.fixture(scope="session")
def rendered_stacks(project: PulumiProject) -> dict[str, RenderedStack]:
    return {stack: render_stack(project, stack) for stack in STACKS}


@pytest.fixture(params=STACKS)
def rendered(
    request: pytest.FixtureRequest, rendered_stacks: dict[str, RenderedStack]
) -> RenderedStack:
    """Each stack's recorded plan in turn."""
    return rendered_stacks[request.param]


def named(rendered: RenderedStack, type_token: str, name: str) -> RecordedResource:
    """The one resource of a type with a logical name."""
    [resource] = [r for r in rendered.of_type(type_token) if r.name == name]
    return resource


@pytest.fixture
def make_project(tmp_path: Path) -> Callable[[str, str], PulumiProject]:
    """A project in a temporary directory running the real infra/ program with one stack file."""

    def make(stack: str, stack_yaml: str) -> PulumiProject:
        (tmp_path / "Pulumi.yaml").write_text(
            f"name: mlops-platform\nruntime: python\nmain: {REPO_ROOT / 'infra'}\n"
        )
        (tmp_path / f"Pulumi.{stack}.yaml").write_text(textwrap.dedent(stack_yaml))
        return PulumiProject.load(tmp_path)

    return make


def run_component(make: Callable[[], object], stack: str = "test") -> RenderedStack:
    """Run a program that creates one component under the recording engine."""
    config = StackConfig(values={"aws:region": "eu-west-1"}, secret_keys=[])

    def program() -> None:
        make()

    return render_program(program, project="mlops-platform", stack=stack, config=config)
