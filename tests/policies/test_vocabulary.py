"""The facts the pack and the project share are written once, in the pack's vocabulary."""

from __future__ import annotations

import ast
import functools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mlops_guardrails import export, vocabulary
from mlops_guardrails.pack import LIVE_RULES, POLICIES, RULES_BY_NAME
from tests.conftest import REPO_ROOT

SOURCE_TREES = ("infra", "components", "mlops_platform", "policies", "tests", "benchmarks")
EXPORT_KEYS = {"urn", "custom", "type", "inputs", "outputs", "propertyDependencies", "protect"}


@functools.cache
def literals(path: Path) -> list[ast.AST]:
    return [
        node
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, (ast.Set, ast.List, ast.Tuple, ast.Dict, ast.Constant))
    ]


def strings(node: ast.AST) -> set[str]:
    """The strings a set, list or tuple literal lists (maps by type are not lists of types)."""
    elements = getattr(node, "elts", [])
    return {e.value for e in elements if isinstance(e, ast.Constant) and isinstance(e.value, str)}


def keys(node: ast.AST) -> set[str]:
    elements = node.keys if isinstance(node, ast.Dict) else []
    return {e.value for e in elements if isinstance(e, ast.Constant) and isinstance(e.value, str)}


def sources(trees: tuple[str, ...] = SOURCE_TREES) -> Iterator[Path]:
    for tree in trees:
        yield from (REPO_ROOT / tree).rglob("*.py")


def defining_files(
    matches: Callable[[ast.AST], bool], trees: tuple[str, ...] = SOURCE_TREES
) -> set[str]:
    return {
        path.relative_to(REPO_ROOT).as_posix()
        for path in sources(trees)
        if any(matches(node) for node in literals(path))
    }


def most_of(facts: frozenset[str] | tuple[str, ...]) -> Callable[[ast.AST], bool]:
    """A literal that lists (nearly) the whole of a shared list is a copy of it."""
    return lambda node: len(strings(node) & set(facts)) >= max(2, len(facts) - 1)


SHARED_LISTS = {
    "stateful types": most_of(vocabulary.STATEFUL_TYPES),
    "taggable types": most_of(vocabulary.TAGGABLE_TYPES - vocabulary.STATEFUL_TYPES),
    "Kubernetes versions": most_of(vocabulary.KUBERNETES_VERSIONS),
    "control-plane log types": most_of(vocabulary.CONTROL_PLANE_LOG_TYPES),
    "the secret signature key": (
        lambda n: isinstance(n, ast.Constant) and n.value == export.SECRET_SIG_KEY
    ),
    "the export shape": lambda n: len(keys(n) & EXPORT_KEYS) >= 5,
}


@pytest.mark.parametrize("fact", SHARED_LISTS)
def test_each_shared_fact_is_written_in_one_place(fact: str) -> None:
    [where] = defining_files(SHARED_LISTS[fact])
    assert where.startswith("policies/mlops_guardrails/")


def test_no_tool_keeps_its_own_list_of_rules() -> None:
    """Which rules `audit` applies comes from the pack's metadata (`live`), not a copy."""
    names = frozenset(RULES_BY_NAME)
    trees = ("infra", "components", "mlops_platform", "policies")
    assert defining_files(lambda n: len(strings(n) & names) >= 3, trees) == set()


def test_every_rule_in_the_pack_has_metadata_and_live_rules_are_resource_scoped() -> None:
    assert [p.name for p in POLICIES] == list(RULES_BY_NAME)
    assert set(RULES_BY_NAME) >= LIVE_RULES
    assert "stateful-resources-protected" not in LIVE_RULES  # protect is a deploy option
