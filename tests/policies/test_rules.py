"""Every rule, compliant and violating, run through the started pack over the analyzer protocol."""

from __future__ import annotations

from typing import Any

import pytest
from pulumi_policy import StackValidationPolicy

from mlops_guardrails.pack import POLICIES
from mlops_platform.policy_check import PolicyPackServer
from tests.policies.cases import CASES, RuleCase
from tests.policies.conftest import check, check_rule, of_rule, state


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_compliant_resource_passes(pack: PolicyPackServer, case: RuleCase) -> None:
    config = {"all": "mandatory", case.rule: case.config}
    findings = check(pack, [state(case.good_type or case.resource_type, case.good)], config)
    assert of_rule(findings, case.rule) == []


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_violating_resource_is_reported_on_that_resource(
    pack: PolicyPackServer, case: RuleCase
) -> None:
    resource = state(case.resource_type, case.bad, protect=not case.bad_is_unprotected)
    config = {"all": "mandatory", case.rule: case.config}
    findings = check_rule(pack, case.rule, [resource], config)
    assert any(case.expect in finding.message for finding in findings), findings
    for finding in findings:
        assert finding.urn == resource["urn"]
        assert finding.level == "mandatory"
        assert finding.remediation


def test_every_resource_rule_has_cases() -> None:
    resource_rules = {p.name for p in POLICIES if not isinstance(p, StackValidationPolicy)}
    assert resource_rules == {case.rule for case in CASES}
    assert len({case.id for case in CASES}) == len(CASES)


def test_rules_are_unique_and_documented(pack: PolicyPackServer) -> None:
    rules = pack.rules()
    assert len({rule.name for rule in rules}) == len(rules) == len(POLICIES)
    for rule in rules:
        assert rule.description and rule.remediation, rule.name
        assert rule.severity in ("low", "medium", "high", "critical"), rule.name
        assert "exemptions" in rule.config_schema["properties"], rule.name


def test_values_unknown_at_preview_are_advisory_not_failures(pack: PolicyPackServer) -> None:
    """During `pulumi preview` an output not yet known arrives as the unknown sentinel; the SDK
    reports the rule as not checkable (advisory) instead of failing the preview."""
    unknown = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
    resource = state(
        "aws:s3/bucketVersioning:BucketVersioning",
        {"bucket": unknown, "versioningConfiguration": unknown},
    )
    [finding] = check_rule(pack, "s3-versioning-enabled", [resource])
    assert finding.level == "advisory"
    assert "during preview" in finding.message


def test_absent_properties_take_the_aws_default(pack: PolicyPackServer) -> None:
    """An EKS cluster given nothing is public, CONFIG_MAP-authenticated and unlogged."""
    findings = check(pack, [state("aws:eks/cluster:Cluster", {"roleArn": "r"})])
    flagged = {f.rule for f in findings}
    assert {
        "eks-endpoint-private",
        "eks-public-endpoint-restricted",
        "eks-api-authentication",
        "eks-control-plane-logging",
        "eks-secrets-encryption",
        "eks-version-allowed",
    } <= flagged


def test_a_kind_of_rule_that_is_all_disabled_is_not_asked(
    pack: PolicyPackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only stack rules on: no resource is sent alone; only resource rules on: no stack."""
    calls: list[str] = []
    stub = pack.stub

    class Counting:
        def __getattr__(self, method: str) -> Any:
            calls.append(method)
            return getattr(stub, method)

    monkeypatch.setattr(pack, "stub", Counting())
    resources = [state("aws:s3/bucket:Bucket", {"tags": {}})]
    check(pack, resources, {"all": "disabled", "s3-bucket-guards": "mandatory"})
    assert "Analyze" not in calls and "AnalyzeStack" in calls
    calls.clear()
    check(pack, resources, {"all": "disabled", "required-tags": "mandatory"})
    assert "Analyze" in calls and "AnalyzeStack" not in calls
