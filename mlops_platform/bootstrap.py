"""Bootstrap a self-managed Pulumi state backend: an S3 bucket and a KMS key for secrets.

Idempotent: what exists and is right is left alone; what is missing is created; what exists but
is wrong is reported and left alone, because rewriting a live state bucket's settings behind its
owners' backs is worse than a clear message.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass, field
from typing import Any, Final

from botocore.exceptions import ClientError

from components.policy_documents import tls_only_statements
from infra.names import region_partitions
from mlops_platform.errors import UserError

NONCURRENT_VERSION_DAYS: Final = 90
PUBLIC_ACCESS_BLOCK: Final = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}


BUCKET_NAME: Final = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
RESERVED_BUCKET_PREFIXES: Final = ("xn--", "sthree-", "amzn-s3-demo-")
RESERVED_BUCKET_SUFFIXES: Final = ("-s3alias", "--ol-s3", ".mrap", "--x-s3")
KEY_ALIAS: Final = re.compile(r"alias/[A-Za-z0-9/_-]{1,250}")


class BootstrapArgumentError(UserError):
    """An argument AWS would refuse, found before anything is created."""


def argument_problems(*, bucket: str, region: str, alias: str) -> list[str]:
    """What AWS would refuse of the arguments (S3 User Guide, "General purpose bucket naming
    rules"; KMS CreateAlias), so that nothing is created half-way."""
    problems = []
    if not BUCKET_NAME.fullmatch(bucket) or ".." in bucket:
        problems.append(
            f"--bucket-name {bucket!r}: 3 to 63 lowercase letters, digits, dots and hyphens, "
            "starting and ending with a letter or digit, no two dots in a row"
        )
    elif _is_ip_address(bucket):
        problems.append(f"--bucket-name {bucket!r}: S3 refuses names formatted as IP addresses")
    elif bucket.startswith(RESERVED_BUCKET_PREFIXES) or bucket.endswith(RESERVED_BUCKET_SUFFIXES):
        problems.append(f"--bucket-name {bucket!r}: S3 reserves that prefix or suffix")
    if region not in region_partitions():
        problems.append(f"--region {region!r}: not an AWS region (botocore's endpoint data)")
    if not KEY_ALIAS.fullmatch(alias) or alias.startswith("alias/aws/"):
        problems.append(
            f"--key-alias {alias!r}: `alias/` then letters, digits, /, _ and -; `alias/aws/` "
            "is AWS's own"
        )
    return problems


def _is_ip_address(name: str) -> bool:
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        return False
    return True


@dataclass
class BootstrapReport:
    created: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    key_arn: str = ""

    def login_lines(self, bucket: str, region: str, alias: str) -> list[str]:
        return [
            f"pulumi login 's3://{bucket}?region={region}&awssdk=v2'",
            f"pulumi stack init <stack> --secrets-provider 'awskms://{alias}?region={region}'",
        ]


def bootstrap(s3: Any, kms: Any, *, bucket: str, region: str, alias: str) -> BootstrapReport:
    """Create or verify the state bucket and secrets key with the given boto3 clients."""
    problems = argument_problems(bucket=bucket, region=region, alias=alias)
    if problems:
        raise BootstrapArgumentError("nothing was created:\n" + "\n".join(problems))
    report = BootstrapReport()
    report.key_arn = _key(kms, alias, report)
    if _bucket_exists(s3, bucket):
        _verify_bucket(s3, bucket, report)
    else:
        _create_bucket(s3, bucket, region, report.key_arn)
        report.created.append(
            f"bucket {bucket} (versioned, SSE-KMS, public access blocked, TLS-only)"
        )
    return report


def _key(kms: Any, alias: str, report: BootstrapReport) -> str:
    try:
        key = kms.describe_key(KeyId=alias)["KeyMetadata"]
    except kms.exceptions.NotFoundException:
        key = kms.create_key(
            Description="Pulumi secrets provider (awskms://)", KeyUsage="ENCRYPT_DECRYPT"
        )["KeyMetadata"]
        try:
            kms.enable_key_rotation(KeyId=key["KeyId"])
            kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
        except ClientError:
            # A key nothing names would be found by no retry, which would make another: take
            # this one back (the shortest waiting period KMS allows) before reporting.
            kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
            raise
        report.created.append(f"KMS key {alias} (rotation on)")
        return str(key["Arn"])
    if not kms.get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"]:
        report.problems.append(f"KMS key {alias}: automatic rotation is off")
    return str(key["Arn"])


def _bucket_exists(s3: Any, bucket: str) -> bool:
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as error:
        if error.response["Error"]["Code"] in ("404", "NoSuchBucket"):
            return False
        raise
    return True


def _create_bucket(s3: Any, bucket: str, region: str, key_arn: str) -> None:
    location = (
        {}
        if region == "us-east-1"
        else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    )
    s3.create_bucket(Bucket=bucket, **location)
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=PUBLIC_ACCESS_BLOCK)
    s3.put_bucket_ownership_controls(
        Bucket=bucket, OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    )
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [
                {
                    "ApplyServerSideEncryptionByDefault": {
                        "SSEAlgorithm": "aws:kms",
                        "KMSMasterKeyID": key_arn,
                    },
                    "BucketKeyEnabled": True,
                }
            ]
        },
    )
    s3.put_bucket_lifecycle_configuration(
        Bucket=bucket,
        LifecycleConfiguration={
            "Rules": [
                {
                    # Old state versions are how a bad `pulumi up` is undone: keep them a while.
                    "ID": "keep-noncurrent-state-versions",
                    "Status": "Enabled",
                    "Filter": {"Prefix": ""},
                    "NoncurrentVersionExpiration": {"NoncurrentDays": NONCURRENT_VERSION_DAYS},
                    "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
                }
            ]
        },
    )
    partition = region_partitions()[region]
    s3.put_bucket_policy(
        Bucket=bucket,
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": tls_only_statements(f"arn:{partition}:s3:::{bucket}"),
            }
        ),
    )


def _verify_bucket(s3: Any, bucket: str, report: BootstrapReport) -> None:
    """Report every way the existing bucket falls short; change nothing."""

    def problem(message: str) -> None:
        report.problems.append(f"bucket {bucket}: {message}")

    if s3.get_bucket_versioning(Bucket=bucket).get("Status") != "Enabled":
        problem("versioning is not enabled (old state versions are the undo button)")
    rules = _read(s3.get_bucket_encryption, bucket, "ServerSideEncryptionConfiguration", {})
    defaults = [r.get("ApplyServerSideEncryptionByDefault", {}) for r in rules.get("Rules", [])]
    if not any(d.get("SSEAlgorithm") == "aws:kms" and d.get("KMSMasterKeyID") for d in defaults):
        problem("default encryption is not SSE-KMS with a customer-managed key")
    block = _read(s3.get_public_access_block, bucket, "PublicAccessBlockConfiguration", {})
    off = sorted(flag for flag, on in PUBLIC_ACCESS_BLOCK.items() if block.get(flag) is not on)
    if off:
        problem(f"public access block flags not set: {', '.join(off)}")
    policy = _read(s3.get_bucket_policy, bucket, "Policy", "{}")
    statements = json.loads(policy).get("Statement", [])
    if not any(
        s.get("Effect") == "Deny"
        and str(s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport")).lower()
        == "false"
        for s in statements
    ):
        problem("the bucket policy does not deny non-TLS requests")


def _read(call: Any, bucket: str, key: str, missing: Any) -> Any:
    """A bucket setting, or `missing` when the bucket has none of that kind."""
    try:
        return call(Bucket=bucket)[key]
    except ClientError as error:
        if error.response["Error"]["Code"].startswith(
            ("NoSuch", "ServerSideEncryptionConfigurationNotFound")
        ):
            return missing
        raise
