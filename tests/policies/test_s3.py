"""S3 rules: a compliant and a violating case for each."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mlops_guardrails import s3
from mlops_platform.engine import RenderedStack
from tests.policies.harness import resource_violations, stack_violations

KMS_RULE = {
    "applyServerSideEncryptionByDefault": {
        "sseAlgorithm": "aws:kms",
        "kmsMasterKeyId": "arn:aws:kms:us-east-1:123456789012:key/k",
    },
    "bucketKeyEnabled": True,
}


def sse(rule: dict[str, Any]) -> list[tuple[str, str | None]]:
    return resource_violations(
        s3.sse_kms_customer_key, s3.ENCRYPTION, {"bucket": "b", "rules": [rule]}
    )


def test_sse_kms_with_customer_key_and_bucket_key_passes() -> None:
    assert sse(KMS_RULE) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}},
            "'AES256', not SSE-KMS",
        ),
        (
            {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms"}},
            "AWS-managed aws/s3 key",
        ),
        ({"bucketKeyEnabled": False}, "bucket key is off"),
    ],
)
def test_weaker_encryption_is_flagged(change: dict[str, Any], message: str) -> None:
    [(reported, _)] = sse({**KMS_RULE, **change})
    assert message in reported


def test_no_encryption_rule_is_flagged() -> None:
    violations = resource_violations(s3.sse_kms_customer_key, s3.ENCRYPTION, {"bucket": "b"})
    assert violations == [("no default encryption rule", None)]


def test_other_resource_types_are_ignored() -> None:
    assert resource_violations(s3.sse_kms_customer_key, s3.BUCKET, {}) == []


def test_public_access_block_with_every_flag_passes() -> None:
    props = dict.fromkeys(s3.PUBLIC_ACCESS_FLAGS, True)
    assert resource_violations(s3.public_access_block, s3.PUBLIC_ACCESS_BLOCK, props) == []


def test_public_access_block_missing_a_flag_is_flagged() -> None:
    props = {**dict.fromkeys(s3.PUBLIC_ACCESS_FLAGS, True), "restrictPublicBuckets": False}
    del props["ignorePublicAcls"]  # absent means AWS's default, which is off
    [(message, _)] = resource_violations(s3.public_access_block, s3.PUBLIC_ACCESS_BLOCK, props)
    assert message == "public access block flags not set: ignorePublicAcls, restrictPublicBuckets"


def without(rendered: RenderedStack, name: str) -> RenderedStack:
    return RenderedStack(
        project=rendered.project,
        stack=rendered.stack,
        resources=[r for r in rendered.resources if r.name != name],
    )


def test_guarded_buckets_pass(rendered: RenderedStack) -> None:
    assert stack_violations(s3.bucket_guards, rendered) == []


@pytest.mark.parametrize(
    ("removed", "missing"),
    [
        ("artifacts-models-encryption", "default encryption"),
        ("artifacts-models-public-access-block", "public access block"),
        ("artifacts-models-versioning", "versioning (Enabled)"),
        ("artifacts-models-ownership", "ownership controls (BucketOwnerEnforced)"),
        ("artifacts-models-policy", "a bucket policy denying non-TLS requests"),
        ("artifacts-models-access-logging", "access logging"),
    ],
)
def test_a_bucket_missing_a_guard_is_flagged(
    rendered_stacks: dict[str, RenderedStack], removed: str, missing: str
) -> None:
    rendered = without(rendered_stacks["prod"], removed)
    [(message, urn)] = stack_violations(s3.bucket_guards, rendered)
    assert message == f"bucket artifacts-models-bucket lacks {missing}"
    assert urn is not None and urn.endswith("::artifacts-models-bucket")


def test_suspended_versioning_is_flagged(rendered_stacks: dict[str, RenderedStack]) -> None:
    rendered = copy.deepcopy(rendered_stacks["dev"])
    [versioning] = [r for r in rendered.resources if r.name == "artifacts-datasets-versioning"]
    versioning.outputs["versioningConfiguration"] = {"status": "Suspended"}
    [(message, _)] = stack_violations(s3.bucket_guards, rendered)
    assert message == "bucket artifacts-datasets-bucket lacks versioning (Enabled)"


def test_log_bucket_is_not_flagged_for_lacking_logs_of_its_own(
    rendered_stacks: dict[str, RenderedStack],
) -> None:
    rendered = rendered_stacks["dev"]
    log_bucket_logs = [
        r for r in rendered.resources if r.name == "artifacts-access-logs-access-logging"
    ]
    assert log_bucket_logs == []
    assert stack_violations(s3.bucket_guards, rendered) == []
