"""Artifact storage: the ML buckets (models, datasets, experiments) and their access-log bucket."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi

from components.common import ComponentArgsError
from components.secure_bucket import AccessLogTarget, SecureBucket, SecureBucketArgs

ACCESS_LOG_BUCKET_ROLE = "access-logs"


@dataclass(frozen=True)
class ArtifactBucketSpec:
    key: str
    """Stable key naming the bucket's resources; changing it replaces the bucket."""
    purpose: str
    noncurrent_version_retention_days: int
    publish_events: bool = False
    """Its object events go to EventBridge (SecureBucketArgs.publish_events)."""


@dataclass(frozen=True)
class ArtifactStorageArgs:
    kms_key_arn: pulumi.Input[str]
    """Customer-managed key for every bucket, the log bucket included."""
    buckets: Sequence[ArtifactBucketSpec]
    abort_incomplete_multipart_upload_days: int
    access_log_retention_days: int
    tags: Mapping[str, str]
    protect: bool = False


class ArtifactStorage(pulumi.ComponentResource):
    TYPE = "mlops:artifact_storage:ArtifactStorage"

    bucket_names: dict[str, pulumi.Output[str]]
    bucket_arns: dict[str, pulumi.Output[str]]
    access_log_bucket_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: ArtifactStorageArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(self.TYPE, name, None, opts)
        keys = [spec.key for spec in args.buckets]
        if not keys:
            raise ComponentArgsError(self.TYPE, name, "at least one artifact bucket is required")
        duplicates = sorted({key for key in keys if keys.count(key) > 1})
        if duplicates:
            raise ComponentArgsError(
                self.TYPE, name, f"duplicate artifact bucket keys: {duplicates}"
            )
        if ACCESS_LOG_BUCKET_ROLE in keys:
            raise ComponentArgsError(
                self.TYPE, name, f"'{ACCESS_LOG_BUCKET_ROLE}' is a reserved key"
            )

        child = pulumi.ResourceOptions(parent=self)
        log_bucket = SecureBucket(
            f"{name}-{ACCESS_LOG_BUCKET_ROLE}",
            SecureBucketArgs(
                kms_key_arn=args.kms_key_arn,
                tags={**args.tags, "mlops:purpose": "S3 server access logs"},
                # Logs are written once and never overwritten: noncurrent versions only come
                # from the expiration rule, and need not outlive it.
                noncurrent_version_retention_days=1,
                abort_incomplete_multipart_upload_days=args.abort_incomplete_multipart_upload_days,
                current_version_expiration_days=args.access_log_retention_days,
                receives_access_logs=True,
                protect=args.protect,
            ),
            opts=child,
        )
        buckets = {
            spec.key: SecureBucket(
                f"{name}-{spec.key}",
                SecureBucketArgs(
                    kms_key_arn=args.kms_key_arn,
                    tags={**args.tags, "mlops:purpose": spec.purpose or spec.key},
                    noncurrent_version_retention_days=spec.noncurrent_version_retention_days,
                    abort_incomplete_multipart_upload_days=(
                        args.abort_incomplete_multipart_upload_days
                    ),
                    access_log_target=AccessLogTarget(
                        bucket=log_bucket.bucket_name, prefix=f"{spec.key}/"
                    ),
                    protect=args.protect,
                    publish_events=spec.publish_events,
                ),
                opts=child,
            )
            for spec in args.buckets
        }

        self.bucket_names = {key: bucket.bucket_name for key, bucket in buckets.items()}
        self.bucket_arns = {key: bucket.arn for key, bucket in buckets.items()}
        self.access_log_bucket_name = log_bucket.bucket_name
        self.register_outputs(
            {
                "bucketNames": self.bucket_names,
                "bucketArns": self.bucket_arns,
                "accessLogBucketName": self.access_log_bucket_name,
            }
        )
