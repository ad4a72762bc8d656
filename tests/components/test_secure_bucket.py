"""SecureBucket in each of its modes (a data bucket that sends its access logs, a log bucket,
protected or not), and the guards every bucket of every stack carries."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.common import ComponentArgsError
from components.secure_bucket import AccessLogTarget, SecureBucket, SecureBucketArgs
from mlops_platform.rendered import RecordedResource, RenderedStack
from tests.conftest import attached, named, run_component

BUCKET = "aws:s3/bucket:Bucket"
KEY = "aws:kms/key:Key"
ENCRYPTION = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
)
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
LOGGING = "aws:s3/bucketLogging:BucketLogging"
POLICY = "aws:s3/bucketPolicy:BucketPolicy"
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
BUCKET_KEY = "arn:aws:kms:eu-west-1:123456789012:key/data"
LOG_DELIVERY = {"Service": "logging.s3.amazonaws.com"}
THIS_ACCOUNT = {"StringEquals": {"aws:SourceAccount": "123456789012"}}


def bucket_args(**overrides: Any) -> SecureBucketArgs:
    defaults: dict[str, Any] = {
        "kms_key_arn": BUCKET_KEY,
        "tags": {},
        "noncurrent_version_retention_days": 30,
        "abort_incomplete_multipart_upload_days": 7,
        "access_log_target": AccessLogTarget(bucket="logs", prefix="data/"),
    }
    return SecureBucketArgs(**{**defaults, **overrides})


MODES = {
    "data": bucket_args(),
    "logs": bucket_args(
        access_log_target=None,
        receives_access_logs=True,
        noncurrent_version_retention_days=1,
        current_version_expiration_days=90,
    ),
    "vault": bucket_args(
        noncurrent_version_retention_days=730,
        abort_incomplete_multipart_upload_days=3,
        protect=True,
        publish_events=True,
    ),
}


@pytest.fixture(scope="module")
def buckets_by_mode() -> RenderedStack:
    """One bucket per mode, all in one program."""
    return run_component(lambda: [SecureBucket(mode, args) for mode, args in MODES.items()])


def attached_to_mode(rendered: RenderedStack, mode: str, type_token: str) -> RecordedResource:
    return attached(rendered, named(rendered, BUCKET, f"{mode}-bucket"), type_token)


def policy_of(rendered: RenderedStack, bucket: RecordedResource) -> list[dict[str, Any]]:
    policy = attached(rendered, bucket, POLICY)
    statements: list[dict[str, Any]] = json.loads(policy.inputs["policy"])["Statement"]
    return statements


def lifecycle_rules(lifecycle: RecordedResource) -> dict[str, Any]:
    return {rule["id"]: rule for rule in lifecycle.inputs["rules"]}


def test_encrypts_with_the_key_it_is_given_and_a_bucket_key(
    buckets_by_mode: RenderedStack,
) -> None:
    encryption = attached_to_mode(buckets_by_mode, "data", ENCRYPTION)
    assert encryption.inputs["rules"] == [
        {
            "applyServerSideEncryptionByDefault": {
                "sseAlgorithm": "aws:kms",
                "kmsMasterKeyId": BUCKET_KEY,
            },
            "bucketKeyEnabled": True,
        }
    ]


@pytest.mark.parametrize("mode", ["data", "logs"])
def test_only_a_log_bucket_admits_s3_log_delivery_from_this_account(
    buckets_by_mode: RenderedStack, mode: str
) -> None:
    bucket = named(buckets_by_mode, BUCKET, f"{mode}-bucket")
    delivery = {
        "Sid": "AllowS3AccessLogDelivery",
        "Effect": "Allow",
        "Principal": LOG_DELIVERY,
        "Action": "s3:PutObject",
        "Resource": f"{bucket.outputs['arn']}/*",
        "Condition": THIS_ACCOUNT,
    }
    allows = [s for s in policy_of(buckets_by_mode, bucket) if s["Effect"] == "Allow"]
    assert allows == ([delivery] if MODES[mode].receives_access_logs else [])


def test_the_policy_applies_after_the_public_access_block_and_acls_are_off(
    buckets_by_mode: RenderedStack,
) -> None:
    # S3 rejects concurrent changes to one bucket, and a policy set first could be public.
    policy = attached_to_mode(buckets_by_mode, "data", POLICY)
    block = attached_to_mode(buckets_by_mode, "data", PUBLIC_ACCESS_BLOCK)
    ownership = attached_to_mode(
        buckets_by_mode, "data", "aws:s3/bucketOwnershipControls:BucketOwnershipControls"
    )
    assert {block.urn, ownership.urn} <= set(policy.dependencies)


def test_access_logs_go_to_the_target_under_its_prefix_partitioned_by_event_time(
    buckets_by_mode: RenderedStack,
) -> None:
    logging = attached_to_mode(buckets_by_mode, "data", LOGGING)
    target = MODES["data"].access_log_target
    assert target is not None
    assert (logging.inputs["targetBucket"], logging.inputs["targetPrefix"]) == (
        target.bucket,
        target.prefix,
    )
    assert logging.inputs["targetObjectKeyFormat"] == {
        "partitionedPrefix": {"partitionDateSource": "EventTime"}
    }


def test_a_log_bucket_sends_no_access_logs_of_its_own(buckets_by_mode: RenderedStack) -> None:
    bucket = named(buckets_by_mode, BUCKET, "logs-bucket")
    assert [
        r for r in buckets_by_mode.dependents_through(bucket.urn, "bucket") if r.type == LOGGING
    ] == []


@pytest.mark.parametrize("mode", ["data", "vault"])
def test_lifecycle_keeps_current_objects_and_expires_old_versions_and_stale_uploads(
    buckets_by_mode: RenderedStack, mode: str
) -> None:
    args = MODES[mode]
    rules = lifecycle_rules(attached_to_mode(buckets_by_mode, mode, LIFECYCLE))
    assert rules.keys() == {
        "expire-noncurrent-versions",
        "abort-incomplete-multipart-uploads",
        "remove-expired-delete-markers",
    }
    assert rules["expire-noncurrent-versions"]["noncurrentVersionExpiration"] == {
        "noncurrentDays": args.noncurrent_version_retention_days
    }
    assert rules["abort-incomplete-multipart-uploads"]["abortIncompleteMultipartUpload"] == {
        "daysAfterInitiation": args.abort_incomplete_multipart_upload_days
    }
    assert rules["remove-expired-delete-markers"]["expiration"] == {
        "expiredObjectDeleteMarker": True
    }
    assert all(rule["status"] == "Enabled" for rule in rules.values())
    assert all(rule["filter"] == {"prefix": ""} for rule in rules.values())


def test_a_log_bucket_expires_its_logs_after_the_retention(buckets_by_mode: RenderedStack) -> None:
    rules = lifecycle_rules(attached_to_mode(buckets_by_mode, "logs", LIFECYCLE))
    assert rules.keys() == {
        "expire-noncurrent-versions",
        "abort-incomplete-multipart-uploads",
        "expire-current-versions",
    }
    assert rules["expire-current-versions"]["expiration"] == {
        "days": MODES["logs"].current_version_expiration_days
    }
    assert all(rule["status"] == "Enabled" for rule in rules.values())


def test_lifecycle_applies_once_versioning_is_on(buckets_by_mode: RenderedStack) -> None:
    lifecycle = attached_to_mode(buckets_by_mode, "data", LIFECYCLE)
    versioning = attached_to_mode(
        buckets_by_mode, "data", "aws:s3/bucketVersioning:BucketVersioning"
    )
    assert versioning.urn in lifecycle.dependencies


@pytest.mark.parametrize("mode", MODES)
def test_only_the_bucket_is_protected_and_retained_and_only_when_asked(
    buckets_by_mode: RenderedStack, mode: str
) -> None:
    protect = MODES[mode].protect
    component = named(buckets_by_mode, "mlops:secure_bucket:SecureBucket", mode)
    children = buckets_by_mode.children(component.urn)
    assert [c.type for c in children if c.protect] == ([BUCKET] if protect else [])
    assert [c.type for c in children if c.retain_on_delete] == ([BUCKET] if protect else [])


def test_children_are_named_after_the_component_and_parented_to_it(
    buckets_by_mode: RenderedStack,
) -> None:
    component = named(buckets_by_mode, "mlops:secure_bucket:SecureBucket", "data")
    assert {child.name for child in buckets_by_mode.children(component.urn)} == {
        "data-bucket",
        "data-ownership",
        "data-public-access-block",
        "data-encryption",
        "data-versioning",
        "data-policy",
        "data-lifecycle",
        "data-access-logging",
    }


def test_only_a_bucket_asked_to_publish_sends_its_object_events_to_eventbridge(
    buckets_by_mode: RenderedStack,
) -> None:
    notifications = buckets_by_mode.of_type("aws:s3/bucketNotification:BucketNotification")
    assert [(n.name, n.inputs["eventbridge"]) for n in notifications] == [("vault-events", True)]
    assert attached_to_mode(
        buckets_by_mode, "vault", "aws:s3/bucketNotification:BucketNotification"
    )


def test_a_bucket_without_access_logs_is_refused() -> None:
    with pytest.raises(ComponentArgsError, match="must send its access logs"):
        run_component(lambda: SecureBucket("data", bucket_args(access_log_target=None)))


def test_log_prefix_must_end_with_a_slash() -> None:
    target = AccessLogTarget(bucket="logs", prefix="data")
    with pytest.raises(ComponentArgsError, match="must end with '/'"):
        run_component(lambda: SecureBucket("data", bucket_args(access_log_target=target)))


def stack_buckets(rendered: RenderedStack) -> list[RecordedResource]:
    found = rendered.of_type(BUCKET)
    assert len(found) >= 2  # an artifact bucket and its access-log bucket at the least
    return found


def is_log_bucket(rendered: RenderedStack, bucket: RecordedResource) -> bool:
    return any(s["Principal"] == LOG_DELIVERY for s in policy_of(rendered, bucket))


def test_every_bucket_is_encrypted_under_a_customer_key_of_its_stack(
    rendered: RenderedStack,
) -> None:
    keys = {key.urn: key for key in rendered.of_type(KEY)}
    for bucket in stack_buckets(rendered):
        encryption = attached(rendered, bucket, ENCRYPTION)
        [rule] = encryption.inputs["rules"]
        [key_urn] = encryption.property_dependencies["rules"]
        assert rule["applyServerSideEncryptionByDefault"] == {
            "sseAlgorithm": "aws:kms",
            "kmsMasterKeyId": keys[key_urn].outputs["arn"],
        }
        assert rule["bucketKeyEnabled"] is True


def test_every_bucket_is_versioned(rendered: RenderedStack) -> None:
    for bucket in stack_buckets(rendered):
        versioning = attached(rendered, bucket, "aws:s3/bucketVersioning:BucketVersioning")
        assert versioning.inputs["versioningConfiguration"] == {"status": "Enabled"}


def test_every_bucket_blocks_all_public_access(rendered: RenderedStack) -> None:
    flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    for bucket in stack_buckets(rendered):
        block = attached(rendered, bucket, PUBLIC_ACCESS_BLOCK)
        assert {flag: block.inputs[flag] for flag in flags} == dict.fromkeys(flags, True)


def test_every_bucket_has_acls_disabled(rendered: RenderedStack) -> None:
    for bucket in stack_buckets(rendered):
        ownership = attached(
            rendered, bucket, "aws:s3/bucketOwnershipControls:BucketOwnershipControls"
        )
        assert ownership.inputs["rule"] == {"objectOwnership": "BucketOwnerEnforced"}


def test_every_bucket_denies_plain_http_and_old_tls(rendered: RenderedStack) -> None:
    for bucket in stack_buckets(rendered):
        denies = {s["Sid"]: s for s in policy_of(rendered, bucket) if s["Effect"] == "Deny"}
        arn = bucket.outputs["arn"]
        assert denies["DenyInsecureTransport"]["Condition"] == {
            "Bool": {"aws:SecureTransport": "false"}
        }
        assert denies["DenyOutdatedTls"]["Condition"] == {
            "NumericLessThan": {"s3:TlsVersion": "1.2"}
        }
        for statement in denies.values():
            assert statement["Resource"] == [arn, f"{arn}/*"]


def test_no_bucket_admits_anyone_but_this_accounts_s3_log_delivery(
    rendered: RenderedStack,
) -> None:
    for bucket in stack_buckets(rendered):
        for allow in (s for s in policy_of(rendered, bucket) if s["Effect"] == "Allow"):
            assert (allow["Principal"], allow["Condition"]) == (LOG_DELIVERY, THIS_ACCOUNT)


def test_every_bucket_but_a_log_bucket_sends_its_access_logs_to_a_log_bucket(
    rendered: RenderedStack,
) -> None:
    all_buckets = stack_buckets(rendered)
    log_buckets = {b.urn for b in all_buckets if is_log_bucket(rendered, b)}
    assert log_buckets
    for bucket in all_buckets:
        logging = [
            r for r in rendered.dependents_through(bucket.urn, "bucket") if r.type == LOGGING
        ]
        if bucket.urn in log_buckets:
            assert logging == [], bucket.name
        else:
            [config] = logging
            [target] = config.property_dependencies["targetBucket"]
            assert target in log_buckets, bucket.name


def test_no_bucket_can_ever_be_force_destroyed(rendered: RenderedStack) -> None:
    for bucket in stack_buckets(rendered):
        assert bucket.inputs["forceDestroy"] is False
