"""Data-at-rest rules: DynamoDB tables (Feast online store), SageMaker feature groups, the
managed MLflow tracking server, SQS."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any, Final

from pulumi_policy import ResourceValidationArgs, Severity, StackValidationArgs

from mlops_guardrails.frameworks import aws_fsbp
from mlops_guardrails.props import is_true, mapping
from mlops_guardrails.rule import resource_rule, stack_rule

TABLE: Final = "aws:dynamodb/table:Table"
FEATURE_GROUP: Final = "aws:sagemaker/featureGroup:FeatureGroup"
QUEUE: Final = "aws:sqs/queue:Queue"
TRACKING_SERVER: Final = "aws:sagemaker/mlflowTrackingServer:MlflowTrackingServer"
BUCKET: Final = "aws:s3/bucket:Bucket"


def _table_cmk(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    encryption = mapping(props.get("serverSideEncryption"))
    if not (is_true(encryption.get("enabled")) and encryption.get("kmsKeyArn")):
        yield "table is encrypted with an AWS-owned key, not a customer-managed KMS key"


def _table_pitr(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    if not is_true(mapping(props.get("pointInTimeRecovery")).get("enabled")):
        yield "point-in-time recovery is off"


def _feature_group_encrypted(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    online = mapping(props.get("onlineStoreConfig"))
    if is_true(online.get("enableOnlineStore")) and not mapping(online.get("securityConfig")).get(
        "kmsKeyId"
    ):
        yield "the online store is not encrypted with a customer-managed KMS key"
    offline = mapping(props.get("offlineStoreConfig"))
    if offline and not mapping(offline.get("s3StorageConfig")).get("kmsKeyId"):
        yield "the offline store is not encrypted with a customer-managed KMS key"


def _tracking_artifacts_guarded(args: StackValidationArgs) -> Iterator[tuple[str, str]]:
    """The server takes no key of its own: its artifacts are as safe as the bucket they are
    in. A bucket of this stack carries the pack's bucket guards (customer-key SSE-KMS, public
    access block, TLS only, versioning); a prefix keeps them apart from the bucket's other
    data, so the server's role and its clients' grants can stop there."""
    for server in (r for r in args.resources if r.resource_type == TRACKING_SERVER):
        uri = str(server.props.get("artifactStoreUri", ""))
        sources = server.property_dependencies.get("artifactStoreUri", [])
        if not any(source.resource_type == BUCKET for source in sources):
            yield (
                f"tracking server {server.name} keeps artifacts in {uri or 'a bucket'} that this "
                "stack does not create, so none of its bucket rules guard them",
                server.urn,
            )
        if not re.fullmatch(r"s3://[^/]+/.+/", uri):
            yield (
                f"tracking server {server.name} keeps artifacts at {uri!r}, not under a prefix "
                "of the bucket (s3://<bucket>/<prefix>/)",
                server.urn,
            )


def _tracking_server_maintained(
    props: Mapping[str, Any], _: ResourceValidationArgs
) -> Iterator[str]:
    if not props.get("weeklyMaintenanceWindowStart"):
        yield "no weekly maintenance window: SageMaker patches the server when it chooses"
    version = props.get("mlflowVersion")
    if version is not None and not re.fullmatch(r"\d+\.\d+", str(version)):
        yield (
            f"MLflow version {version!r}: the provider reads the version back as major.minor, "
            "so any other form differs on every refresh, and a version change replaces the "
            "server with its experiments"
        )


def _queue_encrypted(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    if not (is_true(props.get("sqsManagedSseEnabled")) or props.get("kmsMasterKeyId")):
        yield "messages are stored unencrypted"


RULES = [
    resource_rule(
        name="sqs-encrypted",
        description="SQS queues encrypt messages at rest.",
        resource_types={QUEUE},
        check=_queue_encrypted,
        severity=Severity.MEDIUM,
        framework=aws_fsbp("SQS.1"),
        remediation="Set sqs_managed_sse_enabled=True, or kms_master_key_id for a customer key.",
    ),
    resource_rule(
        name="dynamodb-cmk-encryption",
        description="DynamoDB tables are encrypted with a customer-managed KMS key.",
        resource_types={TABLE},
        check=_table_cmk,
        severity=Severity.MEDIUM,
        remediation="Set server_side_encryption(enabled=True, kms_key_arn=<key ARN>).",
        live=True,
    ),
    resource_rule(
        name="dynamodb-point-in-time-recovery",
        description="DynamoDB tables have point-in-time recovery.",
        resource_types={TABLE},
        check=_table_pitr,
        severity=Severity.MEDIUM,
        framework=aws_fsbp("DynamoDB.2"),
        remediation="Set point_in_time_recovery(enabled=True).",
        live=True,
    ),
    stack_rule(
        name="mlflow-artifacts-guarded",
        description="A tracking server keeps its run artifacts under a prefix of a bucket the "
        "stack creates and guards.",
        resource_types={TRACKING_SERVER, BUCKET},
        check=_tracking_artifacts_guarded,
        severity=Severity.HIGH,
        remediation="Build artifact_store_uri from a platform bucket's name and a prefix "
        "(components.experiment_tracking does, from experimentTracking.bucket and .prefix).",
    ),
    resource_rule(
        name="mlflow-tracking-server-maintained",
        description="Tracking servers patch in a set weekly window and pin MLflow as major.minor.",
        resource_types={TRACKING_SERVER},
        check=_tracking_server_maintained,
        severity=Severity.LOW,
        remediation="Set weekly_maintenance_window_start (e.g. Sun:03:00), and mlflow_version "
        "as major.minor or not at all.",
        live=True,
    ),
    resource_rule(
        name="sagemaker-feature-group-encrypted",
        description="Feature groups encrypt online and offline stores with customer-managed keys.",
        resource_types={FEATURE_GROUP},
        check=_feature_group_encrypted,
        severity=Severity.HIGH,
        remediation=(
            "Set online_store_config.security_config.kms_key_id and "
            "offline_store_config.s3_storage_config.kms_key_id."
        ),
    ),
]
