"""An S3 bucket with every guard the platform requires, from pulumi-aws v7's split resources."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.common import ComponentArgsError, account_context, stateful_options
from components.policy_documents import bucket_policy


@dataclass(frozen=True)
class AccessLogTarget:
    """Where a bucket's S3 server access logs go."""

    bucket: pulumi.Input[str]
    """Name of the log bucket."""
    prefix: str
    """Key prefix for this bucket's logs, ending in `/`."""


@dataclass(frozen=True)
class SecureBucketArgs:
    kms_key_arn: pulumi.Input[str]
    """Customer-managed key for SSE-KMS (with an S3 bucket key to keep KMS calls cheap)."""
    tags: Mapping[str, str]
    noncurrent_version_retention_days: int
    """Days an overwritten or deleted version is kept."""
    abort_incomplete_multipart_upload_days: int
    current_version_expiration_days: int | None = None
    """Expire current objects after this many days (log buckets); None keeps them."""
    access_log_target: AccessLogTarget | None = None
    """Where this bucket's access logs go; None only for the log bucket itself."""
    receives_access_logs: bool = False
    """Allow S3 server access logging of this account's buckets to write here."""
    protect: bool = False
    """Refuse deletion and replacement of the bucket; keep it if it leaves the stack."""
    publish_events: bool = False
    """Send every object event to EventBridge (the default bus), where rules route them. The
    bucket's only notification configuration: S3 keeps one per bucket."""


class SecureBucket(pulumi.ComponentResource):
    TYPE = "mlops:secure_bucket:SecureBucket"

    bucket_name: pulumi.Output[str]
    arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: SecureBucketArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(self.TYPE, name, None, opts)
        if args.access_log_target is None and not args.receives_access_logs:
            raise ComponentArgsError(
                self.TYPE,
                name,
                "a bucket must send its access logs to a log bucket unless it is one",
            )
        if args.access_log_target is not None and not args.access_log_target.prefix.endswith("/"):
            raise ComponentArgsError(self.TYPE, name, "access_log_target.prefix must end with '/'")
        child = pulumi.ResourceOptions(parent=self)

        bucket = aws.s3.Bucket(
            f"{name}-bucket",
            force_destroy=False,
            tags=dict(args.tags),
            opts=stateful_options(self, args.protect),
        )
        ownership = aws.s3.BucketOwnershipControls(
            f"{name}-ownership",
            bucket=bucket.id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
            opts=child,
        )
        public_access_block = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access-block",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=bucket.id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                        sse_algorithm="aws:kms",
                        kms_master_key_id=args.kms_key_arn,
                    ),
                    bucket_key_enabled=True,
                )
            ],
            opts=child,
        )
        versioning = aws.s3.BucketVersioning(
            f"{name}-versioning",
            bucket=bucket.id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(
                status="Enabled"
            ),
            opts=child,
        )

        account = account_context(self)
        policy = pulumi.Output.all(bucket.arn, account.account_id).apply(
            lambda values: bucket_policy(
                bucket_arn=values[0],
                account_id=values[1],
                receives_access_logs=args.receives_access_logs,
            )
        )
        # S3 rejects concurrent changes to one bucket's settings ("conflicting conditional
        # operation"), and a policy applied before the public access block could be public.
        bucket_policy_resource = aws.s3.BucketPolicy(
            f"{name}-policy",
            bucket=bucket.id,
            policy=pulumi.Output.json_dumps(policy),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[public_access_block, ownership]),
        )
        if args.publish_events:
            aws.s3.BucketNotification(
                f"{name}-events",
                bucket=bucket.id,
                eventbridge=True,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[bucket_policy_resource]),
            )
        # Noncurrent-version rules act only once versioning is on.
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=bucket.id,
            rules=_lifecycle_rules(args),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[versioning]),
        )
        if args.access_log_target is not None:
            aws.s3.BucketLogging(
                f"{name}-access-logging",
                bucket=bucket.id,
                target_bucket=args.access_log_target.bucket,
                target_prefix=args.access_log_target.prefix,
                target_object_key_format=aws.s3.BucketLoggingTargetObjectKeyFormatArgs(
                    partitioned_prefix=aws.s3.BucketLoggingTargetObjectKeyFormatPartitionedPrefixArgs(
                        partition_date_source="EventTime"
                    )
                ),
                opts=child,
            )

        self.bucket_name = bucket.bucket
        self.arn = bucket.arn
        self.register_outputs({"bucketName": self.bucket_name, "arn": self.arn})


def _lifecycle_rules(
    args: SecureBucketArgs,
) -> list[aws.s3.BucketLifecycleConfigurationRuleArgs]:
    whole_bucket = aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix="")
    rules = [
        aws.s3.BucketLifecycleConfigurationRuleArgs(
            id="expire-noncurrent-versions",
            status="Enabled",
            filter=whole_bucket,
            noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                noncurrent_days=args.noncurrent_version_retention_days
            ),
        ),
        aws.s3.BucketLifecycleConfigurationRuleArgs(
            id="abort-incomplete-multipart-uploads",
            status="Enabled",
            filter=whole_bucket,
            abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                days_after_initiation=args.abort_incomplete_multipart_upload_days
            ),
        ),
    ]
    if args.current_version_expiration_days is None:
        # Deleting the last noncurrent version leaves a delete marker that costs a LIST each time.
        expiration = aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(
            expired_object_delete_marker=True
        )
        rule_id = "remove-expired-delete-markers"
    else:
        expiration = aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(
            days=args.current_version_expiration_days
        )
        rule_id = "expire-current-versions"
    rules.append(
        aws.s3.BucketLifecycleConfigurationRuleArgs(
            id=rule_id, status="Enabled", filter=whole_bucket, expiration=expiration
        )
    )
    return rules
