"""Exemptions by URN, with a reason and an expiry: honoured until they expire, then a violation."""

from __future__ import annotations

from typing import Any

import pytest

from mlops_platform.policy_check import PolicyCheckError, PolicyPackServer
from mlops_platform.rendered import RenderedStack
from tests.policies.cases import TAGS
from tests.policies.conftest import check, check_rule, deployment_resources, of_rule, state

LATER = "2999-12-31"
EARLIER = "2000-01-01"


def exempt(rule: str, urn: str, expires: str) -> dict[str, Any]:
    entry = {"urn": urn, "reason": "vendor chart needs it until v2", "expires": expires}
    return {"all": "mandatory", rule: {"exemptions": [entry]}}


def unrotated_key() -> dict[str, Any]:
    return state("aws:kms/key:Key", {"enableKeyRotation": False, "tags": TAGS})


def test_an_active_exemption_silences_a_resource_rule(pack: PolicyPackServer) -> None:
    key = unrotated_key()
    findings = check(pack, [key], exempt("kms-key-rotation", key["urn"], LATER))
    assert of_rule(findings, "kms-key-rotation") == []


def test_an_exemption_covers_only_its_urn(pack: PolicyPackServer) -> None:
    key = unrotated_key()
    findings = check(pack, [key], exempt("kms-key-rotation", key["urn"] + "-other", LATER))
    assert len(of_rule(findings, "kms-key-rotation")) == 1


def test_an_expired_exemption_is_a_violation(pack: PolicyPackServer) -> None:
    key = unrotated_key()
    [finding] = check_rule(
        pack, "kms-key-rotation", [key], exempt("kms-key-rotation", key["urn"], EARLIER)
    )
    assert finding.message.startswith("exemption expired on 2000-01-01 (reason given: vendor chart")
    assert finding.level == "mandatory"


def test_an_expired_exemption_is_a_violation_even_once_the_resource_complies(
    pack: PolicyPackServer,
) -> None:
    key = state("aws:kms/key:Key", {"enableKeyRotation": True, "tags": TAGS})
    findings = check_rule(
        pack, "kms-key-rotation", [key], exempt("kms-key-rotation", key["urn"], EARLIER)
    )
    assert len(findings) == 1


def test_stack_rules_honour_and_expire_exemptions(
    pack: PolicyPackServer, rendered_stacks: dict[str, RenderedStack]
) -> None:
    resources = [
        r
        for r in deployment_resources(rendered_stacks["prod"])
        if not r["urn"].endswith("::artifacts-models-public-access-block")
    ]
    bucket = next(r["urn"] for r in resources if r["urn"].endswith("::artifacts-models-bucket"))
    assert (
        check_rule(pack, "s3-bucket-guards", resources, exempt("s3-bucket-guards", bucket, LATER))
        == []
    )
    [expired] = check_rule(
        pack, "s3-bucket-guards", resources, exempt("s3-bucket-guards", bucket, EARLIER)
    )
    assert expired.message.startswith("exemption expired")
    assert expired.urn == bucket


@pytest.mark.parametrize(
    "entry",
    [
        {"urn": "urn:pulumi:x", "reason": "because it is needed"},
        {"urn": "urn:pulumi:x", "reason": "because it is needed", "expires": "next year"},
        {"urn": "urn:pulumi:x", "reason": "short", "expires": LATER},
        {"urn": "not-a-urn", "reason": "because it is needed", "expires": LATER},
    ],
)
def test_an_exemption_without_urn_reason_and_date_is_rejected(
    pack: PolicyPackServer, entry: dict[str, Any]
) -> None:
    with pytest.raises(PolicyCheckError, match=r"kms-key-rotation\.exemptions\.0"):
        check(pack, [], {"kms-key-rotation": {"exemptions": [entry]}})
