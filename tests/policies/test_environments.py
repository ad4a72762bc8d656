"""Per-environment enforcement: the same rule advisory in dev, mandatory in prod."""

from __future__ import annotations

import pytest

from mlops_guardrails.vocabulary import STATEFUL_TYPES
from mlops_platform.policy_check import PolicyCheckError, PolicyPackServer
from mlops_platform.rendered import RenderedStack
from tests.policies.conftest import check, check_rule, deployment_resources, environment_config


def test_unprotected_dev_state_is_advisory_in_dev_and_mandatory_in_prod(
    pack: PolicyPackServer, rendered_stacks: dict[str, RenderedStack]
) -> None:
    dev = deployment_resources(rendered_stacks["dev"])
    in_dev = check_rule(pack, "stateful-resources-protected", dev, environment_config("dev"))
    in_prod = check_rule(pack, "stateful-resources-protected", dev, environment_config("prod"))
    stateful = sum(r["type"] in STATEFUL_TYPES for r in dev)
    assert len(in_dev) == len(in_prod) == stateful > 10
    assert {f.level for f in in_dev} == {"advisory"}
    assert {f.level for f in in_prod} == {"mandatory"}


def test_tags_must_name_the_environment_the_config_is_for(
    pack: PolicyPackServer, rendered_stacks: dict[str, RenderedStack]
) -> None:
    """A dev stack checked as prod is caught: its resources say mlops:environment=dev."""
    dev = deployment_resources(rendered_stacks["dev"])
    tags = check_rule(pack, "required-tags", dev, environment_config("prod"))
    assert tags and all(
        "tag mlops:environment is 'dev', expected 'prod'" in f.message for f in tags
    )


def test_a_rule_disabled_by_config_reports_nothing(
    pack: PolicyPackServer, rendered_stacks: dict[str, RenderedStack]
) -> None:
    dev = deployment_resources(rendered_stacks["dev"])
    config = {**environment_config("dev"), "stateful-resources-protected": "disabled"}
    assert check_rule(pack, "stateful-resources-protected", dev, config) == []


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ({"kms-key-rotaton": "advisory"}, "unknown rule 'kms-key-rotaton'"),
        ({"kms-key-rotation": "strict"}, "level 'strict' is not one of"),
        (
            {"kms-key-deletion-window": {"minimumDays": 3}},
            "kms-key-deletion-window.minimumDays: 3 is less than",
        ),
        ({"kms-key-rotation": {"colour": "red"}}, "Additional properties are not allowed"),
    ],
)
def test_a_bad_policy_config_is_rejected_with_every_problem(
    pack: PolicyPackServer, config: dict[str, object], problem: str
) -> None:
    with pytest.raises(PolicyCheckError, match="invalid policy pack config") as caught:
        check(pack, [], config)
    assert problem in str(caught.value)
