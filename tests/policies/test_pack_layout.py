"""The pack is laid out as `pulumi preview --policy-pack policies` needs it."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import yaml

from tests.policies.conftest import PACK_DIR


def requirements() -> set[str]:
    """The import names of what policies/requirements.txt installs (`cel-expr-python`:
    `cel_expr_python`)."""
    lines = (PACK_DIR / "requirements.txt").read_text().splitlines()
    names = [re.split(r"[<>=!~\[ ]", line.strip())[0] for line in lines]
    return {name.replace("-", "_") for name in names if name and not name.startswith("#")}


ALLOWED_IMPORTS = requirements() | {"mlops_guardrails", "__future__"}


def imported_modules(path: str) -> set[str]:
    tree = ast.parse(Path(path).read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_the_pack_imports_nothing_from_the_project() -> None:
    """The CLI runs the pack in its own virtualenv, built from policies/requirements.txt only."""
    assert {"pulumi", "pulumi_policy", "cel_expr_python"} <= ALLOWED_IMPORTS
    for path in PACK_DIR.rglob("*.py"):
        foreign = imported_modules(str(path)) - ALLOWED_IMPORTS - sys.stdlib_module_names
        assert not foreign, f"{path.relative_to(PACK_DIR)} imports {foreign}"


def test_main_only_assembles_the_pack() -> None:
    """The analyzer is tuned, then the pack assembled; the rules live in importable modules."""
    tree = ast.parse((PACK_DIR / "__main__.py").read_text())
    statements = [n for n in tree.body if not isinstance(n, (ast.Import, ast.ImportFrom))]
    [docstring, *calls] = statements
    assert isinstance(docstring, ast.Expr) and isinstance(docstring.value, ast.Constant)
    called = [
        call.value.func.id
        for call in calls
        if isinstance(call, ast.Expr)
        and isinstance(call.value, ast.Call)
        and isinstance(call.value.func, ast.Name)
    ]
    assert called == ["analyze_each_resource_once", "PolicyPack"]


def test_policy_pack_project_files() -> None:
    project = yaml.safe_load((PACK_DIR / "PulumiPolicy.yaml").read_text())
    assert project["runtime"]["name"] == "python"
    assert project["version"]
    requirements = (PACK_DIR / "requirements.txt").read_text()
    assert "pulumi-policy" in requirements
