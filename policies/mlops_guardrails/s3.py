"""S3 rules, written for pulumi-aws v7's split bucket resources."""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Final

from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)

from mlops_guardrails.frameworks import aws_fsbp, cis_aws
from mlops_guardrails.props import is_true, items, mapping, policy_statements

BUCKET: Final = "aws:s3/bucket:Bucket"
ENCRYPTION: Final = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
)
PUBLIC_ACCESS_BLOCK: Final = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
VERSIONING: Final = "aws:s3/bucketVersioning:BucketVersioning"
OWNERSHIP: Final = "aws:s3/bucketOwnershipControls:BucketOwnershipControls"
BUCKET_POLICY: Final = "aws:s3/bucketPolicy:BucketPolicy"
LOGGING: Final = "aws:s3/bucketLogging:BucketLogging"
KMS_ALGORITHMS: Final = ("aws:kms", "aws:kms:dsse")
PUBLIC_ACCESS_FLAGS: Final = (
    "blockPublicAcls",
    "blockPublicPolicy",
    "ignorePublicAcls",
    "restrictPublicBuckets",
)


def _check_sse_kms_customer_key(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != ENCRYPTION:
        return
    rules = items(args.props.get("rules"))
    if not rules:
        report("no default encryption rule", None)
    for rule in map(mapping, rules):
        default = mapping(rule.get("applyServerSideEncryptionByDefault"))
        algorithm = default.get("sseAlgorithm")
        if algorithm not in KMS_ALGORITHMS:
            report(f"default encryption is {algorithm!r}, not SSE-KMS", None)
        elif not default.get("kmsMasterKeyId"):
            report("SSE-KMS uses the AWS-managed aws/s3 key, not a customer-managed key", None)
        if not is_true(rule.get("bucketKeyEnabled")):
            report("S3 bucket key is off: every object operation becomes a KMS call", None)


def _check_public_access_block(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != PUBLIC_ACCESS_BLOCK:
        return
    off = [flag for flag in PUBLIC_ACCESS_FLAGS if not is_true(args.props.get(flag))]
    if off:
        report(f"public access block flags not set: {', '.join(off)}", None)


def _denies_insecure_transport(document: Any) -> bool:
    return any(
        statement.get("Effect") == "Deny"
        and str(
            mapping(mapping(statement.get("Condition")).get("Bool")).get("aws:SecureTransport")
        ).lower()
        == "false"
        for statement in policy_statements(document)
    )


def _check_bucket_guards(args: StackValidationArgs, report: ReportViolation) -> None:
    # One pass indexes every bucket-scoped resource by the bucket it was built from, so the
    # rule stays linear in the size of the stack.
    attached: dict[str, dict[str, list[PolicyResource]]] = defaultdict(lambda: defaultdict(list))
    log_targets: set[str] = set()
    for resource in args.resources:
        for source in resource.property_dependencies.get("bucket", []):
            attached[source.urn][resource.resource_type].append(resource)
        if resource.resource_type == LOGGING:
            log_targets.update(
                t.urn for t in resource.property_dependencies.get("targetBucket", [])
            )

    for bucket in args.resources:
        if bucket.resource_type != BUCKET:
            continue
        linked = attached[bucket.urn]
        missing = [
            label
            for label, present in (
                ("default encryption", bool(linked[ENCRYPTION])),
                ("public access block", bool(linked[PUBLIC_ACCESS_BLOCK])),
                (
                    "versioning (Enabled)",
                    any(
                        mapping(v.props.get("versioningConfiguration")).get("status") == "Enabled"
                        for v in linked[VERSIONING]
                    ),
                ),
                (
                    "ownership controls (BucketOwnerEnforced)",
                    any(
                        mapping(o.props.get("rule")).get("objectOwnership") == "BucketOwnerEnforced"
                        for o in linked[OWNERSHIP]
                    ),
                ),
                (
                    "a bucket policy denying non-TLS requests",
                    any(
                        _denies_insecure_transport(p.props.get("policy"))
                        for p in linked[BUCKET_POLICY]
                    ),
                ),
                (
                    "access logging",
                    bool(linked[LOGGING]) or bucket.urn in log_targets,
                ),
            )
            if not present
        ]
        if missing:
            report(f"bucket {bucket.name} lacks {', '.join(missing)}", bucket.urn)


sse_kms_customer_key = ResourceValidationPolicy(
    name="s3-sse-kms-customer-key",
    description="S3 default encryption is SSE-KMS under a customer-managed key, with a bucket key.",
    validate=_check_sse_kms_customer_key,
    enforcement_level=EnforcementLevel.MANDATORY,
    severity=Severity.HIGH,
    framework=aws_fsbp("S3.17"),
    remediation_steps=(
        "Set the BucketServerSideEncryptionConfiguration rule to sse_algorithm='aws:kms' with "
        "kms_master_key_id set to a customer-managed key ARN, and bucket_key_enabled=True "
        "(components.secure_bucket.SecureBucket does this)."
    ),
)

public_access_block = ResourceValidationPolicy(
    name="s3-public-access-block",
    description="All four S3 public access block flags are on.",
    validate=_check_public_access_block,
    enforcement_level=EnforcementLevel.MANDATORY,
    severity=Severity.CRITICAL,
    framework=cis_aws("2.1.4"),
    remediation_steps=(
        "Set block_public_acls, block_public_policy, ignore_public_acls and "
        "restrict_public_buckets to True on the BucketPublicAccessBlock."
    ),
)

bucket_guards = StackValidationPolicy(
    name="s3-bucket-guards",
    description=(
        "Every bucket has its encryption, public access block, versioning, BucketOwnerEnforced "
        "ownership, a TLS-only policy and access logging (log target buckets excepted) attached."
    ),
    validate=_check_bucket_guards,
    enforcement_level=EnforcementLevel.MANDATORY,
    severity=Severity.HIGH,
    framework=cis_aws("2.1.1"),
    remediation_steps=(
        "Build buckets with components.secure_bucket.SecureBucket, or attach the split "
        "resources (BucketServerSideEncryptionConfiguration, BucketPublicAccessBlock, "
        "BucketVersioning, BucketOwnershipControls, BucketPolicy with a Deny on "
        "aws:SecureTransport=false, BucketLogging) with bucket=<bucket>.id."
    ),
)
