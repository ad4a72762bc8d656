"""Every bucket in every stack carries the guards the platform promises, linked to the bucket."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.common import ComponentArgsError
from components.secure_bucket import AccessLogTarget, SecureBucket, SecureBucketArgs
from mlops_platform.rendered import RecordedResource, RenderedStack
from tests.conftest import named, run_component

BUCKET = "aws:s3/bucket:Bucket"
KEY = "aws:kms/key:Key"


def attached(
    rendered: RenderedStack, bucket: RecordedResource, type_token: str
) -> RecordedResource:
    """The one resource of `type_token` whose `bucket` input came from this bucket."""
    [resource] = [
        r for r in rendered.dependents_through(bucket.urn, "bucket") if r.type == type_token
    ]
    return resource


def buckets(rendered: RenderedStack) -> list[RecordedResource]:
    """Every bucket of the stack: each artifact storage's buckets and its access-log bucket."""
    found = rendered.of_type(BUCKET)
    assert len(found) >= 4
    return found


def is_log_bucket(bucket: RecordedResource) -> bool:
    return bucket.name.endswith("-access-logs-bucket")


def log_bucket_of(rendered: RenderedStack, bucket: RecordedResource) -> RecordedResource:
    """The access-log bucket of the artifact storage the bucket belongs to."""
    storage = rendered.get(rendered.get(bucket.parent).parent)
    return named(rendered, BUCKET, f"{storage.name}-access-logs-bucket")


def test_encrypted_with_the_customer_key_and_a_bucket_key(rendered: RenderedStack) -> None:
    keys = {key.urn: key for key in rendered.of_type(KEY)}
    for bucket in buckets(rendered):
        encryption = attached(
            rendered,
            bucket,
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        )
        [rule] = encryption.inputs["rules"]
        [key_urn] = encryption.property_dependencies["rules"]
        assert rule["applyServerSideEncryptionByDefault"] == {
            "sseAlgorithm": "aws:kms",
            "kmsMasterKeyId": keys[key_urn].outputs["arn"],
        }
        assert rule["bucketKeyEnabled"] is True


def test_versioned(rendered: RenderedStack) -> None:
    for bucket in buckets(rendered):
        versioning = attached(rendered, bucket, "aws:s3/bucketVersioning:BucketVersioning")
        assert versioning.inputs["versioningConfiguration"] == {"status": "Enabled"}


def test_all_public_access_blocked(rendered: RenderedStack) -> None:
    for bucket in buckets(rendered):
        block = attached(rendered, bucket, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
        flags = (
            "blockPublicAcls",
            "blockPublicPolicy",
            "ignorePublicAcls",
            "restrictPublicBuckets",
        )
        assert {flag: block.inputs[flag] for flag in flags} == dict.fromkeys(flags, True)


def test_acls_disabled(rendered: RenderedStack) -> None:
    for bucket in buckets(rendered):
        ownership = attached(
            rendered, bucket, "aws:s3/bucketOwnershipControls:BucketOwnershipControls"
        )
        assert ownership.inputs["rule"] == {"objectOwnership": "BucketOwnerEnforced"}


def policy_of(rendered: RenderedStack, bucket: RecordedResource) -> tuple[RecordedResource, Any]:
    policy = attached(rendered, bucket, "aws:s3/bucketPolicy:BucketPolicy")
    return policy, json.loads(policy.inputs["policy"])


def test_policy_denies_plain_http_and_old_tls(rendered: RenderedStack) -> None:
    for bucket in buckets(rendered):
        _, document = policy_of(rendered, bucket)
        denies = {s["Sid"]: s for s in document["Statement"] if s["Effect"] == "Deny"}
        arn = bucket.outputs["arn"]
        assert denies["DenyInsecureTransport"]["Condition"] == {
            "Bool": {"aws:SecureTransport": "false"}
        }
        assert denies["DenyOutdatedTls"]["Condition"] == {
            "NumericLessThan": {"s3:TlsVersion": "1.2"}
        }
        for statement in denies.values():
            assert statement["Resource"] == [arn, f"{arn}/*"]


def test_policy_applies_after_public_access_block(rendered: RenderedStack) -> None:
    for bucket in buckets(rendered):
        policy, _ = policy_of(rendered, bucket)
        block = attached(rendered, bucket, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
        assert block.urn in policy.dependencies


def test_only_the_log_bucket_admits_log_delivery(rendered: RenderedStack) -> None:
    for bucket in buckets(rendered):
        _, document = policy_of(rendered, bucket)
        allows = [s for s in document["Statement"] if s["Effect"] == "Allow"]
        if is_log_bucket(bucket):
            [allow] = allows
            assert allow["Principal"] == {"Service": "logging.s3.amazonaws.com"}
            assert allow["Resource"] == f"{bucket.outputs['arn']}/*"
            assert allow["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}
        else:
            assert allows == []


def test_artifact_buckets_log_to_the_log_bucket_under_their_own_prefix(
    rendered: RenderedStack,
) -> None:
    for bucket in buckets(rendered):
        logging = [
            r
            for r in rendered.dependents_through(bucket.urn, "bucket")
            if r.type == "aws:s3/bucketLogging:BucketLogging"
        ]
        if is_log_bucket(bucket):
            assert logging == []
            continue
        [config] = logging
        log_bucket = log_bucket_of(rendered, bucket)
        assert config.property_dependencies["targetBucket"] == [log_bucket.urn]
        storage = rendered.get(rendered.get(bucket.parent).parent).name
        key = bucket.name.removeprefix(f"{storage}-").removesuffix("-bucket")
        assert config.inputs["targetPrefix"] == f"{key}/"


def test_lifecycle_expires_noncurrent_versions_and_stale_uploads(
    rendered_stacks: dict[str, RenderedStack],
) -> None:
    expected_noncurrent_days = {"dev": 30, "staging": 90, "prod": 365}
    for stack, rendered in rendered_stacks.items():
        bucket = next(b for b in buckets(rendered) if b.name == "artifacts-datasets-bucket")
        lifecycle = attached(
            rendered, bucket, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
        )
        rules = {rule["id"]: rule for rule in lifecycle.inputs["rules"]}
        assert rules["expire-noncurrent-versions"]["noncurrentVersionExpiration"] == {
            "noncurrentDays": expected_noncurrent_days[stack]
        }
        assert rules["abort-incomplete-multipart-uploads"]["abortIncompleteMultipartUpload"] == {
            "daysAfterInitiation": 7
        }
        assert all(rule["status"] == "Enabled" for rule in rules.values())


def test_per_bucket_retention_overrides_the_default(
    rendered_stacks: dict[str, RenderedStack],
) -> None:
    rendered = rendered_stacks["prod"]  # Pulumi.prod.yaml keeps model versions for 730 days
    models = next(b for b in buckets(rendered) if b.name == "artifacts-models-bucket")
    lifecycle = attached(
        rendered, models, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
    )
    rules = {rule["id"]: rule for rule in lifecycle.inputs["rules"]}
    assert rules["expire-noncurrent-versions"]["noncurrentVersionExpiration"] == {
        "noncurrentDays": 730
    }


def test_log_bucket_expires_logs_after_the_retention(
    rendered_stacks: dict[str, RenderedStack],
) -> None:
    for stack, days in {"dev": 90, "prod": 400}.items():
        rendered = rendered_stacks[stack]
        log_bucket = named(rendered, BUCKET, "artifacts-access-logs-bucket")
        lifecycle = attached(
            rendered, log_bucket, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
        )
        rules = {rule["id"]: rule for rule in lifecycle.inputs["rules"]}
        assert rules["expire-current-versions"]["expiration"] == {"days": days}


def test_buckets_can_never_be_force_destroyed(rendered: RenderedStack) -> None:
    for bucket in buckets(rendered):
        assert bucket.inputs["forceDestroy"] is False


def bucket_args(**overrides: Any) -> SecureBucketArgs:
    defaults: dict[str, Any] = {
        "kms_key_arn": "arn:aws:kms:eu-west-1:123456789012:key/k",
        "tags": {},
        "noncurrent_version_retention_days": 30,
        "abort_incomplete_multipart_upload_days": 7,
        "access_log_target": AccessLogTarget(bucket="logs", prefix="data/"),
    }
    return SecureBucketArgs(**{**defaults, **overrides})


def test_a_bucket_without_access_logs_is_refused() -> None:
    with pytest.raises(ComponentArgsError, match="must send its access logs"):
        run_component(lambda: SecureBucket("data", bucket_args(access_log_target=None)))


def test_log_prefix_must_end_with_a_slash() -> None:
    target = AccessLogTarget(bucket="logs", prefix="data")
    with pytest.raises(ComponentArgsError, match="must end with '/'"):
        run_component(lambda: SecureBucket("data", bucket_args(access_log_target=target)))


def test_children_are_named_after_the_component_and_parented_to_it() -> None:
    rendered = run_component(lambda: SecureBucket("data", bucket_args()))
    [component] = rendered.of_type("mlops:secure_bucket:SecureBucket")
    children = rendered.children(component.urn)
    assert {child.name for child in children} == {
        "data-bucket",
        "data-ownership",
        "data-public-access-block",
        "data-encryption",
        "data-versioning",
        "data-policy",
        "data-lifecycle",
        "data-access-logging",
    }
