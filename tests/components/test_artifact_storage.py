"""ArtifactStorage with fixture bucket sets (one access-log bucket for all, a log prefix and a
retention per bucket, protection), how a stack's config becomes its bucket set, and the
protection and outputs of every stack."""

from __future__ import annotations

from typing import Any

import pytest

from components.artifact_storage import ArtifactBucketSpec, ArtifactStorage, ArtifactStorageArgs
from components.common import ComponentArgsError
from infra.config import Environment
from infra.program import Platform
from mlops_guardrails.vocabulary import STATEFUL_TYPES
from mlops_platform.project import PulumiProject
from mlops_platform.rendered import RecordedResource, RenderedStack
from tests.configs import PROJECT, profile, stack_platform_config
from tests.conftest import attached, named, run_component

BUCKET = "aws:s3/bucket:Bucket"
STORAGE_KEY = "arn:aws:kms:eu-west-1:123456789012:key/artifacts"
SPECS = (
    ArtifactBucketSpec("models", "trained models", 730),
    ArtifactBucketSpec("datasets", "", 30),
)


def storage_args(*specs: ArtifactBucketSpec, **overrides: Any) -> ArtifactStorageArgs:
    defaults: dict[str, Any] = {
        "kms_key_arn": STORAGE_KEY,
        "buckets": specs,
        "abort_incomplete_multipart_upload_days": 5,
        "access_log_retention_days": 45,
        "tags": {"team": "ml"},
    }
    return ArtifactStorageArgs(**{**defaults, **overrides})


STORAGES = {
    "artifacts": storage_args(*SPECS),
    "vault": storage_args(ArtifactBucketSpec("archive", "archive", 3650), protect=True),
}


@pytest.fixture(scope="module")
def storages() -> RenderedStack:
    """Each storage of STORAGES, all in one program."""
    return run_component(lambda: [ArtifactStorage(name, args) for name, args in STORAGES.items()])


def lifecycle_rules(rendered: RenderedStack, bucket: RecordedResource) -> dict[str, Any]:
    lifecycle = attached(
        rendered, bucket, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
    )
    return {rule["id"]: rule for rule in lifecycle.inputs["rules"]}


def buckets_of(rendered: RenderedStack, storage: str) -> list[RecordedResource]:
    return [b for b in rendered.of_type(BUCKET) if b.name.startswith(f"{storage}-")]


def test_builds_each_given_bucket_and_one_access_log_bucket(storages: RenderedStack) -> None:
    assert sorted(b.name for b in buckets_of(storages, "artifacts")) == [
        "artifacts-access-logs-bucket",
        "artifacts-datasets-bucket",
        "artifacts-models-bucket",
    ]


def test_a_bucket_carries_the_storage_tags_and_its_purpose_or_else_its_key(
    storages: RenderedStack,
) -> None:
    purposes = {
        "artifacts-access-logs-bucket": "S3 server access logs",
        "artifacts-datasets-bucket": "datasets",
        "artifacts-models-bucket": "trained models",
    }
    assert {b.name: b.inputs["tags"] for b in buckets_of(storages, "artifacts")} == {
        name: {**STORAGES["artifacts"].tags, "mlops:purpose": purpose}
        for name, purpose in purposes.items()
    }


def test_every_bucket_is_encrypted_under_the_storage_key(storages: RenderedStack) -> None:
    for bucket in storages.of_type(BUCKET):
        encryption = attached(
            storages,
            bucket,
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        )
        [rule] = encryption.inputs["rules"]
        assert rule["applyServerSideEncryptionByDefault"]["kmsMasterKeyId"] == STORAGE_KEY


def test_each_bucket_logs_to_the_log_bucket_under_its_own_prefix(storages: RenderedStack) -> None:
    log_bucket = named(storages, BUCKET, "artifacts-access-logs-bucket")
    for spec in SPECS:
        bucket = named(storages, BUCKET, f"artifacts-{spec.key}-bucket")
        logging = attached(storages, bucket, "aws:s3/bucketLogging:BucketLogging")
        assert logging.property_dependencies["targetBucket"] == [log_bucket.urn]
        assert logging.inputs["targetBucket"] == log_bucket.outputs["bucket"]
        assert logging.inputs["targetPrefix"] == f"{spec.key}/"


def test_each_bucket_keeps_old_versions_for_its_own_retention(storages: RenderedStack) -> None:
    for spec in SPECS:
        bucket = named(storages, BUCKET, f"artifacts-{spec.key}-bucket")
        rules = lifecycle_rules(storages, bucket)
        assert rules["expire-noncurrent-versions"]["noncurrentVersionExpiration"] == {
            "noncurrentDays": spec.noncurrent_version_retention_days
        }


def test_every_bucket_aborts_stale_uploads_after_the_storage_setting(
    storages: RenderedStack,
) -> None:
    for bucket in buckets_of(storages, "artifacts"):
        rules = lifecycle_rules(storages, bucket)
        assert rules["abort-incomplete-multipart-uploads"]["abortIncompleteMultipartUpload"] == {
            "daysAfterInitiation": STORAGES["artifacts"].abort_incomplete_multipart_upload_days
        }


def test_the_log_bucket_expires_logs_after_the_access_log_retention(
    storages: RenderedStack,
) -> None:
    rules = lifecycle_rules(storages, named(storages, BUCKET, "artifacts-access-logs-bucket"))
    assert rules["expire-current-versions"]["expiration"] == {
        "days": STORAGES["artifacts"].access_log_retention_days
    }
    # Logs are never overwritten: old versions only come from the expiry itself.
    assert rules["expire-noncurrent-versions"]["noncurrentVersionExpiration"] == {
        "noncurrentDays": 1
    }


@pytest.mark.parametrize("storage", STORAGES)
def test_protection_covers_every_bucket_and_nothing_else(
    storages: RenderedStack, storage: str
) -> None:
    """Protecting a bucket policy would block harmless replacements of it."""
    protect = STORAGES[storage].protect
    mine = [r for r in storages.resources if r.name.startswith(f"{storage}-") and r.custom]
    assert {(r.type, r.protect, r.retain_on_delete) for r in mine if r.type == BUCKET} == {
        (BUCKET, protect, protect)
    }
    assert not any(r.protect or r.retain_on_delete for r in mine if r.type != BUCKET)


def test_outputs_name_every_bucket_and_the_log_bucket(storages: RenderedStack) -> None:
    outputs = named(storages, ArtifactStorage.TYPE, "artifacts").outputs
    buckets = {spec.key: named(storages, BUCKET, f"artifacts-{spec.key}-bucket") for spec in SPECS}
    assert outputs["bucketNames"] == {key: b.outputs["bucket"] for key, b in buckets.items()}
    assert outputs["bucketArns"] == {key: b.outputs["arn"] for key, b in buckets.items()}
    log_bucket = named(storages, BUCKET, "artifacts-access-logs-bucket")
    assert outputs["accessLogBucketName"] == log_bucket.outputs["bucket"]


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ((), "at least one artifact bucket"),
        (("models", "models"), "duplicate artifact bucket keys: \\['models'\\]"),
        (("access-logs",), "reserved"),
    ],
)
def test_bad_bucket_sets_are_refused(keys: tuple[str, ...], message: str) -> None:
    specs = [ArtifactBucketSpec(key, "", 30) for key in keys]
    with pytest.raises(ComponentArgsError, match=message):
        run_component(lambda: ArtifactStorage("a", storage_args(*specs)))


def test_the_bucket_set_comes_from_config_and_a_buckets_own_retention_wins() -> None:
    config = profile(
        "dev",
        artifacts={
            "buckets": {
                "features": {"purpose": "feature snapshots"},
                "models": {"noncurrentVersionRetentionDays": 730},
            }
        },
    )
    platform = Platform(config, stack="dev", project=PROJECT)
    default = config.artifacts.noncurrent_version_retention_days
    # Added to the defaults; `models` replaced whole, its purpose and events with it.
    assert platform.artifact_buckets() == (
        ArtifactBucketSpec("datasets", "training and evaluation datasets", default, True),
        ArtifactBucketSpec("experiments", "experiment tracking artifacts", default),
        ArtifactBucketSpec("features", "feature snapshots", default),
        ArtifactBucketSpec("models", "", 730),
    )


@pytest.mark.parametrize(
    ("environment", "noncurrent_days", "access_log_days"),
    [("dev", 30, 90), ("staging", 90, 180), ("prod", 365, 400)],
)
def test_each_environment_profile_sets_version_and_access_log_retention(
    environment: Environment, noncurrent_days: int, access_log_days: int
) -> None:
    artifacts = profile(environment).artifacts
    assert artifacts.noncurrent_version_retention_days == noncurrent_days
    assert artifacts.access_log_retention_days == access_log_days
    assert artifacts.abort_incomplete_multipart_upload_days == 7


def test_a_stack_protects_and_retains_its_stateful_resources_exactly_when_its_config_says(
    rendered: RenderedStack, project: PulumiProject
) -> None:
    protect = stack_platform_config(project, rendered.stack).protect_stateful_resources
    stateful = [r for r in rendered.resources if r.type in STATEFUL_TYPES]
    assert stateful
    unguarded = [r.name for r in stateful if (r.protect, r.retain_on_delete) != (protect, protect)]
    assert unguarded == []


def test_only_stateful_resources_are_ever_protected(rendered: RenderedStack) -> None:
    assert {r.type for r in rendered.resources if r.protect} <= STATEFUL_TYPES


def test_every_stack_exports_each_artifact_bucket_it_configures_and_their_key(
    rendered: RenderedStack, project: PulumiProject
) -> None:
    """Config to ArtifactStorage to stack outputs, on whatever each stack file says."""
    config = stack_platform_config(project, rendered.stack)
    outputs = rendered.outputs
    buckets = {
        key: named(rendered, BUCKET, f"artifacts-{key}-bucket") for key in config.artifacts.buckets
    }
    assert outputs["artifactBucketNames"] == {k: b.outputs["bucket"] for k, b in buckets.items()}
    assert outputs["artifactBucketArns"] == {k: b.outputs["arn"] for k, b in buckets.items()}
    log_bucket = named(rendered, BUCKET, "artifacts-access-logs-bucket")
    assert outputs["accessLogBucketName"] == log_bucket.outputs["bucket"]
    assert (
        outputs["artifactKeyArn"]
        == named(rendered, "aws:kms/key:Key", "artifacts-key").outputs["arn"]
    )
    assert outputs["environment"] == config.environment
