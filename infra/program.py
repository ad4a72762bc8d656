"""Composes the platform for one stack from its validated configuration."""

from __future__ import annotations

import pulumi

from components.artifact_storage import ArtifactBucketSpec, ArtifactStorage, ArtifactStorageArgs
from components.kms_key import KmsKey, KmsKeyArgs
from components.policy_documents import KeyUse
from infra.config import CONFIG_KEY, PlatformConfig, load_platform_config


def platform_tags(config: PlatformConfig, *, stack: str, project: str) -> dict[str, str]:
    """Tags on every taggable resource; the policy pack checks they match the stack."""
    return {
        **config.tags,
        "mlops:environment": config.environment,
        "mlops:stack": stack,
        "mlops:project": project,
        "managed-by": "pulumi",
    }


def build_platform(config: PlatformConfig, *, stack: str, project: str) -> None:
    tags = platform_tags(config, stack=stack, project=project)
    protect = config.protect_stateful_resources

    artifacts_key = KmsKey(
        "artifacts",
        KmsKeyArgs(
            description=f"{project}/{stack}: S3 artifact buckets and their access logs",
            deletion_window_days=config.kms.deletion_window_days,
            admin_role_arns=tuple(config.kms.admin_role_arns),
            uses=(KeyUse.S3_ACCESS_LOG_DELIVERY,),
            tags=tags,
            protect=protect,
        ),
    )
    artifacts = config.artifacts
    storage = ArtifactStorage(
        "artifacts",
        ArtifactStorageArgs(
            kms_key_arn=artifacts_key.arn,
            buckets=tuple(
                ArtifactBucketSpec(
                    key=key,
                    purpose=bucket.purpose,
                    noncurrent_version_retention_days=(
                        bucket.noncurrent_version_retention_days
                        or artifacts.noncurrent_version_retention_days
                    ),
                )
                for key, bucket in sorted(artifacts.buckets.items())
            ),
            abort_incomplete_multipart_upload_days=artifacts.abort_incomplete_multipart_upload_days,
            access_log_retention_days=artifacts.access_log_retention_days,
            tags=tags,
            protect=protect,
        ),
    )

    pulumi.export("environment", config.environment)
    pulumi.export("artifactKeyArn", artifacts_key.arn)
    pulumi.export("artifactBucketNames", storage.bucket_names)
    pulumi.export("artifactBucketArns", storage.bucket_arns)
    pulumi.export("accessLogBucketName", storage.access_log_bucket_name)


def main() -> None:
    stack = pulumi.get_stack()
    project = pulumi.get_project()
    # Everything is validated before the first resource is registered: bad config changes nothing.
    config = load_platform_config(
        pulumi.Config().get_object(CONFIG_KEY), stack=stack, project=project
    )
    build_platform(config, stack=stack, project=project)
