"""IAM, key and bucket policy documents as plain functions returning dicts.

They take plain strings (account id, partition, ARNs) so they can be tested without Pulumi;
components call them inside `Output.all(...).apply` and serialize with `Output.json_dumps`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

PolicyDocument = dict[str, Any]

KEY_ADMIN_ACTIONS: Final = (
    "kms:CancelKeyDeletion",
    "kms:Create*",
    "kms:Delete*",
    "kms:Describe*",
    "kms:Disable*",
    "kms:Enable*",
    "kms:Get*",
    "kms:List*",
    "kms:Put*",
    "kms:Revoke*",
    "kms:RotateKeyOnDemand",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:Update*",
)


@dataclass(frozen=True)
class ServiceGrant:
    """An AWS service principal allowed to use a key on behalf of this account only."""

    sid: str
    service: str
    actions: tuple[str, ...]


# S3 server access logging writes into an SSE-KMS bucket as this principal, so the key must let
# it create data keys; the source-account condition stops other accounts' buckets from using it.
S3_ACCESS_LOG_DELIVERY: Final = ServiceGrant(
    sid="AllowS3AccessLogDelivery",
    service="logging.s3.amazonaws.com",
    actions=("kms:GenerateDataKey",),
)


def account_root_arn(partition: str, account_id: str) -> str:
    return f"arn:{partition}:iam::{account_id}:root"


def key_policy(
    *,
    account_id: str,
    partition: str,
    admin_role_arns: Sequence[str] = (),
    service_grants: Sequence[ServiceGrant] = (),
) -> PolicyDocument:
    """A key policy that names everyone who may use or manage the key.

    The account root statement delegates use to IAM policies (without it a key whose admin role
    is deleted becomes unmanageable); no statement has a wildcard principal.
    """
    statements: list[dict[str, Any]] = [
        {
            "Sid": "EnableIamPoliciesInThisAccount",
            "Effect": "Allow",
            "Principal": {"AWS": account_root_arn(partition, account_id)},
            "Action": "kms:*",
            "Resource": "*",
        }
    ]
    if admin_role_arns:
        statements.append(
            {
                "Sid": "KeyAdministrators",
                "Effect": "Allow",
                "Principal": {"AWS": sorted(admin_role_arns)},
                "Action": list(KEY_ADMIN_ACTIONS),
                "Resource": "*",
            }
        )
    statements.extend(
        {
            "Sid": grant.sid,
            "Effect": "Allow",
            "Principal": {"Service": grant.service},
            "Action": list(grant.actions),
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
        }
        for grant in service_grants
    )
    return {"Version": "2012-10-17", "Statement": statements}


def tls_only_statements(bucket_arn: str) -> list[dict[str, Any]]:
    """Deny any request to the bucket over plain HTTP or TLS older than 1.2."""
    resources = [bucket_arn, f"{bucket_arn}/*"]
    return [
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": resources,
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
        {
            "Sid": "DenyOutdatedTls",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": resources,
            "Condition": {"NumericLessThan": {"s3:TlsVersion": "1.2"}},
        },
    ]


def access_log_delivery_statement(bucket_arn: str, account_id: str) -> dict[str, Any]:
    """Let S3 server access logging of this account's buckets write into a log bucket.

    With `BucketOwnerEnforced` ACLs are off, so delivery is granted by policy, not a log ACL.
    """
    return {
        "Sid": "AllowS3AccessLogDelivery",
        "Effect": "Allow",
        "Principal": {"Service": "logging.s3.amazonaws.com"},
        "Action": "s3:PutObject",
        "Resource": f"{bucket_arn}/*",
        "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
    }


def bucket_policy(
    *, bucket_arn: str, account_id: str, receives_access_logs: bool
) -> PolicyDocument:
    statements = tls_only_statements(bucket_arn)
    if receives_access_logs:
        statements.append(access_log_delivery_statement(bucket_arn, account_id))
    return {"Version": "2012-10-17", "Statement": statements}
