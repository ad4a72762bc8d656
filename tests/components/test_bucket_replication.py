"""Cross-region replication: S3's role may do exactly what replicating SSE-KMS objects takes,
every source bucket replicates everything to its replica under the replica key, and prod's
models and datasets survive the loss of their region."""

from __future__ import annotations

import json

import pulumi_aws as aws
import pytest

from components.bucket_replication import (
    BucketReplication,
    BucketReplicationArgs,
    ReplicatedBucket,
)
from components.common import ComponentArgsError
from components.policy_documents import replication_policy
from mlops_platform.rendered import RenderedStack
from tests.components.data_fixtures import TAGS
from tests.conftest import named, run_component

CONFIG = "aws:s3/bucketReplicationConfig:BucketReplicationConfig"
SOURCE_KEY = "arn:aws:kms:eu-west-1:123456789012:key/source"
REPLICA_KEY = "arn:aws:kms:eu-central-1:123456789012:key/replica"
BUCKETS = {"models": "ml-models-0a1b2c3", "datasets": "ml-datasets-4d5e6f7"}


def replication() -> None:
    sources = {key: run_anchor(key) for key in BUCKETS}
    replicas = {key: run_anchor(f"{key}-replica") for key in BUCKETS}
    BucketReplication(
        "replication",
        BucketReplicationArgs(
            buckets=tuple(
                ReplicatedBucket(
                    key=key,
                    source_name=name,
                    source_arn=f"arn:aws:s3:::{name}",
                    replica_arn=f"arn:aws:s3:::{name}-replica",
                    source=sources[key],
                    replica=replicas[key],
                )
                for key, name in BUCKETS.items()
            ),
            source_key_arn=SOURCE_KEY,
            replica_key_arn=REPLICA_KEY,
            replica_region="eu-central-1",
            tags=TAGS,
        ),
    )


def run_anchor(key: str) -> aws.s3.Bucket:
    """A source bucket, for replication to wait for."""
    return aws.s3.Bucket(f"source-{key}")


@pytest.fixture(scope="module")
def replicated() -> RenderedStack:
    return run_component(replication)


def test_every_source_replicates_all_its_objects_and_deletions_under_the_replica_key(
    replicated: RenderedStack,
) -> None:
    configs = {c.inputs["bucket"]: c for c in replicated.of_type(CONFIG)}
    assert sorted(configs) == sorted(BUCKETS.values())
    role = named(replicated, "aws:iam/role:Role", "replication-role")
    for name, config in configs.items():
        assert config.inputs["role"] == role.outputs["arn"]
        [rule] = config.inputs["rules"]
        assert rule["status"] == "Enabled" and rule["filter"] == {"prefix": ""}
        assert rule["deleteMarkerReplication"] == {"status": "Enabled"}
        # Without it S3 replicates no SSE-KMS object, and every object here is one.
        assert rule["sourceSelectionCriteria"] == {"sseKmsEncryptedObjects": {"status": "Enabled"}}
        assert rule["destination"] == {
            "bucket": f"arn:aws:s3:::{name}-replica",
            "encryptionConfiguration": {"replicaKmsKeyId": REPLICA_KEY},
        }


def test_replication_waits_for_both_buckets_and_its_roles_permissions(
    replicated: RenderedStack,
) -> None:
    """S3 refuses a replication configuration until source and destination are versioned."""
    policy = named(replicated, "aws:iam/rolePolicy:RolePolicy", "replication-role")
    for key in BUCKETS:
        config = named(replicated, CONFIG, f"replication-{key}")
        source = named(replicated, "aws:s3/bucket:Bucket", f"source-{key}")
        replica = named(replicated, "aws:s3/bucket:Bucket", f"source-{key}-replica")
        assert {source.urn, replica.urn, policy.urn} <= set(config.dependencies)


def test_only_s3_of_this_account_may_assume_the_role(replicated: RenderedStack) -> None:
    role = named(replicated, "aws:iam/role:Role", "replication-role")
    [statement] = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
    assert statement["Condition"]["StringEquals"]["aws:SourceAccount"] == "123456789012"


def test_the_role_uses_each_key_only_through_s3_in_its_region_for_its_buckets() -> None:
    """S3 User Guide, "Replicating encrypted objects": decrypt with the source key, encrypt
    with the replica key, each through S3 in its region; with S3 Bucket Keys the encryption
    context is the bucket's ARN."""
    document = replication_policy(
        pairs=[("arn:aws:s3:::src", "arn:aws:s3:::dst")],
        source_key_arn=SOURCE_KEY,
        destination_key_arn=REPLICA_KEY,
        source_region="eu-west-1",
        destination_region="eu-central-1",
    )
    by_sid = {s["Sid"]: s for s in document["Statement"]}
    assert by_sid["DecryptSources"]["Resource"] == SOURCE_KEY
    assert by_sid["DecryptSources"]["Condition"] == {
        "StringEquals": {"kms:ViaService": "s3.eu-west-1.amazonaws.com"},
        "StringLike": {
            "kms:EncryptionContext:aws:s3:arn": ["arn:aws:s3:::src", "arn:aws:s3:::src/*"]
        },
    }
    assert by_sid["EncryptReplicas"]["Resource"] == REPLICA_KEY
    assert by_sid["EncryptReplicas"]["Condition"]["StringEquals"] == {
        "kms:ViaService": "s3.eu-central-1.amazonaws.com"
    }
    assert by_sid["WriteReplicas"]["Resource"] == ["arn:aws:s3:::dst/*"]
    assert by_sid["ReadSourceVersions"]["Resource"] == ["arn:aws:s3:::src/*"]


def test_nothing_to_replicate_is_refused() -> None:
    args = BucketReplicationArgs(
        buckets=(),
        source_key_arn=SOURCE_KEY,
        replica_key_arn=REPLICA_KEY,
        replica_region="eu-central-1",
        tags=TAGS,
    )
    with pytest.raises(ComponentArgsError, match="nothing to replicate"):
        run_component(lambda: BucketReplication("r", args))


def test_prods_models_and_datasets_live_on_in_the_replica_region(
    rendered_stacks: dict[str, RenderedStack],
) -> None:
    """Replicas, their key and their access-log bucket run on the replica region's provider,
    as hardened and protected as the sources; dev and staging replicate nothing."""
    prod = rendered_stacks["prod"]
    [provider] = [p for p in prod.of_type("pulumi:providers:aws") if p.name == "replica-region"]
    for key in ("models", "datasets"):
        # S3 refuses the configuration until the replica is versioned.
        config = named(prod, CONFIG, f"artifacts-replication-{key}")
        versioning = named(
            prod, "aws:s3/bucketVersioning:BucketVersioning", f"artifacts-replica-{key}-versioning"
        )
        assert versioning.urn in config.dependencies
    assert provider.inputs["region"] == "us-west-2"
    in_region = f"{provider.urn}::{provider.id}"
    replica_key = named(prod, "aws:kms/key:Key", "replica-key")
    assert replica_key.provider == in_region and replica_key.protect
    assert ":us-west-2:" in replica_key.outputs["arn"]
    for key in ("models", "datasets"):
        bucket = named(prod, "aws:s3/bucket:Bucket", f"artifacts-replica-{key}-bucket")
        assert bucket.provider == in_region and bucket.protect
        encryption = named(
            prod,
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
            f"artifacts-replica-{key}-encryption",
        )
        [rule] = encryption.inputs["rules"]
        default = rule["applyServerSideEncryptionByDefault"]
        assert default["kmsMasterKeyId"] == replica_key.outputs["arn"]
        logging = named(
            prod, "aws:s3/bucketLogging:BucketLogging", f"artifacts-replica-{key}-access-logging"
        )
        log_bucket = named(prod, "aws:s3/bucket:Bucket", "artifacts-replica-access-logs-bucket")
        assert logging.inputs["targetBucket"] == log_bucket.outputs["bucket"]
    assert [c.inputs["bucket"] for c in prod.of_type(CONFIG)] == [
        named(prod, "aws:s3/bucket:Bucket", f"artifacts-{key}-bucket").outputs["bucket"]
        for key in ("datasets", "models")
    ]
    assert rendered_stacks["dev"].of_type(CONFIG) == []
    assert rendered_stacks["staging"].of_type(CONFIG) == []
