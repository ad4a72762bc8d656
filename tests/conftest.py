"""Shared fixtures: the project, each stack rendered once (or read from the render cache), and a
runner that renders one component with fixture arguments."""

from __future__ import annotations

import gc
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mlops_platform.engine import render_program
from mlops_platform.policy_check import PolicyPackServer
from mlops_platform.project import PulumiProject, StackConfig
from mlops_platform.render_cache import RenderCache, render_stacks
from mlops_platform.rendered import RecordedResource, RenderedStack

REPO_ROOT = Path(__file__).resolve().parent.parent
STACKS = ("dev", "staging", "prod")


def pytest_configure(config: pytest.Config) -> None:
    """Each test process collects garbage as the CLI does (mlops_platform.cli.run): the SDKs'
    millions of long-lived objects, walked over and over with the default thresholds, cost the
    renders a third of their time."""
    del config
    gc.set_threshold(200_000, 50, 100)


@pytest.fixture(scope="session")
def pack() -> Iterator[PolicyPackServer]:
    """The policy pack, started once for the session as the Pulumi CLI starts it."""
    with PolicyPackServer(REPO_ROOT / "policies") as server:
        yield server


@pytest.fixture(scope="session")
def project() -> PulumiProject:
    return PulumiProject.load(REPO_ROOT)


@pytest.fixture(scope="session")
def rendered_stacks(project: PulumiProject) -> dict[str, RenderedStack]:
    # Through the render cache, as the CLI renders them: the cache's own tests prove a hit is the
    # render byte for byte.
    return render_stacks(project, STACKS, RenderCache.for_project(project))


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


def attached(
    rendered: RenderedStack, bucket: RecordedResource, type_token: str
) -> RecordedResource:
    """The one resource of `type_token` whose `bucket` input came from this bucket."""
    [resource] = [
        r for r in rendered.dependents_through(bucket.urn, "bucket") if r.type == type_token
    ]
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
