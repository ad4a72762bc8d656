"""Each stack's URNs are recorded: a change that drops one without an alias fails here, naming
the alias to add (Pulumi would delete the resource and create a new one)."""

from __future__ import annotations

import pytest

from mlops_platform.diff import carried_over
from mlops_platform.rendered import RenderedStack
from tests.conftest import REPO_ROOT, STACKS

RECORDS = REPO_ROOT / "tests" / "urns"


def record_command(stack: str) -> str:
    return f"mlops-platform plan --stack {stack} --format urns > tests/urns/{stack}.txt"


@pytest.mark.parametrize("stack", STACKS)
def test_no_urn_is_dropped_without_an_alias_and_new_ones_are_recorded(
    rendered_stacks: dict[str, RenderedStack], stack: str
) -> None:
    plan = rendered_stacks[stack]
    recorded = set((RECORDS / f"{stack}.txt").read_text().split())
    current = set(plan.urns())
    # As the engine finds them: a new URN's alias, or one derived from its parent's.
    kept_by_alias = set(carried_over(recorded, plan.states()).values())
    dropped = sorted(recorded - current - kept_by_alias)
    assert not dropped, (
        f"stack {stack} no longer has {len(dropped)} resource(s); `pulumi up` would delete "
        "each and create its successor. Keep each with "
        f'opts=pulumi.ResourceOptions(aliases=["<old URN>"]), e.g. aliases=["{dropped[0]}"], '
        f"on the resource that replaces it; if it is really gone, record that: "
        f"{record_command(stack)}"
    )
    added = sorted(current - recorded)
    assert not added, f"record the new URNs ({added[0]}, ...): {record_command(stack)}"
