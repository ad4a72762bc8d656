"""The pack as a whole: every stack's plan passes every rule."""

from __future__ import annotations

from mlops_guardrails.pack import POLICIES
from mlops_platform.engine import RenderedStack
from tests.policies.harness import plan_violations


def test_every_stack_passes_every_rule(rendered: RenderedStack) -> None:
    violations = [v for policy in POLICIES for v in plan_violations(policy, rendered)]
    assert violations == []


def test_rule_names_are_unique_and_documented() -> None:
    names = [policy.name for policy in POLICIES]
    assert len(names) == len(set(names))
    for policy in POLICIES:
        assert policy.description and policy.remediation_steps and policy.severity
