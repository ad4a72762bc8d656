"""S3 rules, written for pulumi-aws v7's split bucket resources."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping
from typing import Any, Final

from pulumi_policy import (
    PolicyResource,
    ResourceValidationArgs,
    Severity,
    StackValidationArgs,
)

from mlops_guardrails.frameworks import aws_fsbp, cis_aws
from mlops_guardrails.props import (
    is_open_to_anyone,
    is_true,
    items,
    mapping,
    policy_statements,
)
from mlops_guardrails.rule import resource_rule, stack_rule

BUCKET: Final = "aws:s3/bucket:Bucket"
ENCRYPTION: Final = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
)
PUBLIC_ACCESS_BLOCK: Final = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
VERSIONING: Final = "aws:s3/bucketVersioning:BucketVersioning"
OWNERSHIP: Final = "aws:s3/bucketOwnershipControls:BucketOwnershipControls"
BUCKET_POLICY: Final = "aws:s3/bucketPolicy:BucketPolicy"
BUCKET_ACL: Final = "aws:s3/bucketAcl:BucketAcl"
LOGGING: Final = "aws:s3/bucketLogging:BucketLogging"
LIFECYCLE: Final = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
REPLICATION: Final = "aws:s3/bucketReplicationConfig:BucketReplicationConfig"
KMS_ALGORITHMS: Final = ("aws:kms", "aws:kms:dsse")
PUBLIC_ACCESS_FLAGS: Final = (
    "blockPublicAcls",
    "blockPublicPolicy",
    "ignorePublicAcls",
    "restrictPublicBuckets",
)
PUBLIC_CANNED_ACLS: Final = frozenset({"public-read", "public-read-write", "authenticated-read"})


def _sse_kms_customer_key(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    rules = items(props.get("rules"))
    if not rules:
        yield "no default encryption rule"
    for rule in map(mapping, rules):
        default = mapping(rule.get("applyServerSideEncryptionByDefault"))
        algorithm = default.get("sseAlgorithm")
        if algorithm not in KMS_ALGORITHMS:
            yield f"default encryption is {algorithm!r}, not SSE-KMS"
        elif not default.get("kmsMasterKeyId"):
            yield "SSE-KMS uses the AWS-managed aws/s3 key, not a customer-managed key"
        if not is_true(rule.get("bucketKeyEnabled")):
            yield "S3 bucket key is off: every object operation becomes a KMS call"


def _public_access_block(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    off = [flag for flag in PUBLIC_ACCESS_FLAGS if not is_true(props.get(flag))]
    if off:
        yield f"public access block flags not set: {', '.join(off)}"


def _versioning(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    status = mapping(props.get("versioningConfiguration")).get("status")
    if status != "Enabled":
        yield f"versioning status is {status!r}, not 'Enabled'"


def _acls_disabled(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    ownership = mapping(props.get("rule")).get("objectOwnership")
    if ownership != "BucketOwnerEnforced":
        yield f"object ownership is {ownership!r}: ACLs stay in force"


def denies_insecure_transport(document: Any) -> bool:
    return any(
        statement.get("Effect") == "Deny"
        and str(
            mapping(mapping(statement.get("Condition")).get("Bool")).get("aws:SecureTransport")
        ).lower()
        == "false"
        for statement in policy_statements(document)
    )


def _tls_only(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    if not denies_insecure_transport(props.get("policy")):
        yield "the bucket policy does not deny requests with aws:SecureTransport=false"


def _not_public(props: Mapping[str, Any], args: ResourceValidationArgs) -> Iterator[str]:
    if args.resource_type in (BUCKET, BUCKET_ACL):
        acl = props.get("acl")
        if acl in PUBLIC_CANNED_ACLS:
            yield f"canned ACL {acl!r} grants access outside the account"
        return
    for statement in policy_statements(props.get("policy")):
        if is_open_to_anyone(statement):
            yield f"statement {statement.get('Sid', '(no Sid)')!r} allows anyone, unconditionally"


def _lifecycle(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    enabled = [
        mapping(r) for r in items(props.get("rules")) if mapping(r).get("status") == "Enabled"
    ]
    if not any(rule.get("noncurrentVersionExpiration") for rule in enabled):
        yield "no enabled rule expires noncurrent versions: versioned data grows forever"
    if not any(rule.get("abortIncompleteMultipartUpload") for rule in enabled):
        yield "no enabled rule aborts incomplete multipart uploads"


def _bucket_guards(args: StackValidationArgs) -> Iterator[tuple[str, str]]:
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

    required = (
        ("default encryption", ENCRYPTION),
        ("public access block", PUBLIC_ACCESS_BLOCK),
        ("versioning", VERSIONING),
        ("ownership controls", OWNERSHIP),
        ("a bucket policy", BUCKET_POLICY),
        ("lifecycle rules", LIFECYCLE),
    )
    for bucket in args.resources:
        if bucket.resource_type != BUCKET:
            continue
        linked = attached[bucket.urn]
        missing = [label for label, type_token in required if not linked[type_token]]
        # A log target bucket must not log into itself or need a log bucket of its own.
        if not linked[LOGGING] and bucket.urn not in log_targets:
            missing.append("access logging")
        if missing:
            yield f"bucket {bucket.name} lacks {', '.join(missing)}", bucket.urn


SPLIT_RESOURCE_HINT = (
    "Build buckets with components.secure_bucket.SecureBucket, or attach the split resource "
    "with bucket=<bucket>.id so the rule can link it."
)


def _replicas_encrypted(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    for rule in map(mapping, items(props.get("rules"))):
        if rule.get("status") != "Enabled":
            continue
        name = rule.get("id", "(unnamed)")
        selection = mapping(
            mapping(rule.get("sourceSelectionCriteria")).get("sseKmsEncryptedObjects")
        )
        if selection.get("status") != "Enabled":
            # S3 replicates no SSE-KMS object unless told to: the replica would lack them all.
            yield f"rule {name!r} leaves SSE-KMS encrypted objects unreplicated"
        encryption = mapping(mapping(rule.get("destination")).get("encryptionConfiguration"))
        if not encryption.get("replicaKmsKeyId"):
            yield f"rule {name!r} does not encrypt replicas under a customer-managed key"


RULES = [
    resource_rule(
        name="s3-sse-kms-customer-key",
        description="Default encryption is SSE-KMS under a customer-managed key and a bucket key.",
        resource_types={ENCRYPTION},
        check=_sse_kms_customer_key,
        severity=Severity.HIGH,
        framework=aws_fsbp("S3.17"),
        remediation=(
            "Set the BucketServerSideEncryptionConfiguration rule to sse_algorithm='aws:kms' "
            "with kms_master_key_id set to a customer-managed key ARN, and "
            "bucket_key_enabled=True."
        ),
        live=True,
    ),
    resource_rule(
        name="s3-replication-encrypted",
        description=(
            "Replication copies SSE-KMS objects and encrypts the replicas under a "
            "customer-managed key."
        ),
        resource_types={REPLICATION},
        check=_replicas_encrypted,
        severity=Severity.HIGH,
        remediation=(
            "In every enabled rule set source_selection_criteria.sse_kms_encrypted_objects "
            "status 'Enabled' and destination.encryption_configuration.replica_kms_key_id."
        ),
        live=True,
    ),
    resource_rule(
        name="s3-public-access-block",
        description="All four S3 public access block flags are on.",
        resource_types={PUBLIC_ACCESS_BLOCK},
        check=_public_access_block,
        severity=Severity.CRITICAL,
        framework=cis_aws("2.1.4"),
        remediation=(
            "Set block_public_acls, block_public_policy, ignore_public_acls and "
            "restrict_public_buckets to True on the BucketPublicAccessBlock."
        ),
        live=True,
    ),
    resource_rule(
        name="s3-versioning-enabled",
        description="S3 bucket versioning is enabled, so overwrites and deletes can be undone.",
        resource_types={VERSIONING},
        check=_versioning,
        severity=Severity.MEDIUM,
        framework=aws_fsbp("S3.14"),
        remediation="Set versioning_configuration.status='Enabled' on the BucketVersioning.",
        live=True,
    ),
    resource_rule(
        name="s3-acls-disabled",
        description="S3 object ownership is BucketOwnerEnforced: ACLs play no part in access.",
        resource_types={OWNERSHIP},
        check=_acls_disabled,
        severity=Severity.MEDIUM,
        framework=aws_fsbp("S3.12"),
        remediation="Set rule.object_ownership='BucketOwnerEnforced' on BucketOwnershipControls.",
        live=True,
    ),
    resource_rule(
        name="s3-tls-only",
        description="The bucket policy denies requests that do not use TLS.",
        resource_types={BUCKET_POLICY},
        check=_tls_only,
        severity=Severity.HIGH,
        framework=cis_aws("2.1.1"),
        remediation=(
            "Add a Deny statement for s3:* on the bucket and its objects with condition "
            "Bool aws:SecureTransport=false (components.policy_documents.tls_only_statements)."
        ),
        live=True,
    ),
    resource_rule(
        name="s3-not-public",
        description="No bucket policy or ACL grants access to anyone outside the account.",
        resource_types={BUCKET, BUCKET_ACL, BUCKET_POLICY},
        check=_not_public,
        severity=Severity.CRITICAL,
        framework=aws_fsbp("S3.2"),
        remediation=(
            "Remove Allow statements whose principal is '*' without conditions, and public "
            "canned ACLs; share data with named principals or through access points."
        ),
        live=True,
    ),
    resource_rule(
        name="s3-lifecycle-hygiene",
        description="Lifecycle rules expire noncurrent versions and abort stale multipart uploads.",
        resource_types={LIFECYCLE},
        check=_lifecycle,
        severity=Severity.LOW,
        framework=aws_fsbp("S3.13"),
        remediation=(
            "Add enabled lifecycle rules with noncurrent_version_expiration and "
            "abort_incomplete_multipart_upload."
        ),
    ),
    stack_rule(
        name="s3-bucket-guards",
        resource_types={
            BUCKET,
            ENCRYPTION,
            PUBLIC_ACCESS_BLOCK,
            VERSIONING,
            OWNERSHIP,
            BUCKET_POLICY,
            LIFECYCLE,
            LOGGING,
        },
        description=(
            "Every bucket has encryption, a public access block, versioning, ownership "
            "controls, a bucket policy, lifecycle rules and access logging attached (a log "
            "target bucket is not required to log)."
        ),
        check=_bucket_guards,
        severity=Severity.HIGH,
        framework=aws_fsbp("S3.9"),
        remediation=SPLIT_RESOURCE_HINT,
    ),
]
