"""Data-at-rest rules: DynamoDB tables (Feast online store), SageMaker feature groups, SQS."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

from pulumi_policy import ResourceValidationArgs, Severity

from mlops_guardrails.frameworks import aws_fsbp
from mlops_guardrails.props import is_true, mapping
from mlops_guardrails.rule import resource_rule

TABLE: Final = "aws:dynamodb/table:Table"
FEATURE_GROUP: Final = "aws:sagemaker/featureGroup:FeatureGroup"
QUEUE: Final = "aws:sqs/queue:Queue"


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
