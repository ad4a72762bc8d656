"""The pack reads each resource's properties once per request, and judges exactly as without."""

from __future__ import annotations

import ast
import importlib.metadata
from collections.abc import Iterator
from typing import Any

import pulumi_policy.policy as sdk
import pytest
from packaging.requirements import Requirement
from pulumi.runtime.proto import analyzer_pb2
from pulumi_policy import EnforcementLevel

from mlops_guardrails import analyzer
from mlops_guardrails.pack import PACK_NAME, POLICIES
from mlops_platform.policy_check import StackView
from mlops_platform.rendered import RenderedStack
from tests.conftest import REPO_ROOT

PACK_DIR = REPO_ROOT / "policies"


@pytest.fixture(scope="module")
def servicer() -> Any:
    assert analyzer.analyze_each_resource_once(), (
        "pulumi-policy's analyzer internals moved: the pack now converts every resource's "
        f"properties once per rule again; see {analyzer.__file__}"
    )
    # The SDK's own servicer, as `PolicyPack` builds it, every rule mandatory.
    return sdk._PolicyAnalyzerServicer(
        PACK_NAME, "0.0.1", POLICIES, EnforcementLevel.MANDATORY, *([None] * 7)
    )


def diagnostics(response: analyzer_pb2.AnalyzeResponse) -> list[tuple[str, str, str]]:
    return sorted((d.policyName, d.urn, d.message) for d in response.diagnostics)


def test_the_pack_runs_on_the_pulumi_policy_release_it_pins() -> None:
    [pin] = [
        Requirement(line)
        for line in (PACK_DIR / "requirements.txt").read_text().splitlines()
        if line.startswith("pulumi-policy")
    ]
    assert importlib.metadata.version("pulumi-policy") in pin.specifier


def test_the_analyzer_remembers_conversions_on_the_pinned_release(servicer: Any) -> None:
    assert isinstance(sdk.json_format, analyzer._RememberingJsonFormat)
    assert all(
        hasattr(getattr(sdk._PolicyAnalyzerServicer, m), "__wrapped__")
        for m in analyzer.REQUEST_METHODS
    )


@pytest.mark.parametrize("stack", ["dev", "staging"])
def test_findings_are_the_same_as_converting_for_every_rule(
    servicer: Any, rendered_stacks: dict[str, RenderedStack], stack: str
) -> None:
    """dev breaks rules that are mandatory here (unprotected state), so there is much to judge."""
    view = StackView(rendered_stacks[stack].states())
    requests = [view.analyze_request(state) for state in view.analyzed]
    kind = type(servicer)

    def judged(remembering: bool) -> list[tuple[str, str, str]]:
        def call(method: Any, request: Any) -> list[tuple[str, str, str]]:
            serve = method if remembering else method.__wrapped__
            return diagnostics(serve(servicer, request, None))

        found = [d for request in requests for d in call(kind.Analyze, request)]
        return found + call(kind.AnalyzeStack, view.analyze_stack_request())

    remembered = judged(remembering=True)
    assert remembered == judged(remembering=False)
    assert remembered or stack != "dev"


def written_names(tree: ast.AST) -> Iterator[str]:
    """Names whose contents a function writes: `x[k] = v`, `del x[k]`, `x.update(...)` etc."""
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):
            targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
        for target in targets:
            if isinstance(target, ast.Subscript):
                yield ast.unparse(target.value)
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in {"update", "pop", "popitem", "setdefault", "clear", "append"}
        ):
            yield ast.unparse(node.func.value)


def test_no_rule_writes_to_the_properties_it_is_shown() -> None:
    """Every rule of a request sees the same properties, so none may change them."""
    for path in (PACK_DIR / "mlops_guardrails").glob("*.py"):
        written = set(written_names(ast.parse(path.read_text())))
        assert not {n for n in written if n.split(".")[-1] == "props" or n.startswith("props[")}, (
            f"{path.name} writes to a resource's properties"
        )
