"""Cross-region replication of artifact buckets to their replicas: S3's role and one replication
configuration per source bucket."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.common import ComponentArgsError, account_context
from components.policy_documents import replication_policy, service_trust


@dataclass(frozen=True)
class ReplicatedBucket:
    key: str
    source_name: pulumi.Input[str]
    source_arn: pulumi.Input[str]
    replica_arn: pulumi.Input[str]
    source: pulumi.Resource
    replica: pulumi.Resource
    """The buckets' components: S3 refuses replication until both are versioned."""


@dataclass(frozen=True)
class BucketReplicationArgs:
    buckets: Sequence[ReplicatedBucket]
    source_key_arn: pulumi.Input[str]
    replica_key_arn: pulumi.Input[str]
    replica_region: str
    tags: Mapping[str, str]


class BucketReplication(pulumi.ComponentResource):
    TYPE = "mlops:bucket_replication:BucketReplication"

    def __init__(
        self, name: str, args: BucketReplicationArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(self.TYPE, name, None, opts)
        if not args.buckets:
            raise ComponentArgsError(self.TYPE, name, "nothing to replicate")
        account = account_context(self)
        role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=pulumi.Output.json_dumps(
                account.account_id.apply(lambda id_: service_trust("s3.amazonaws.com", id_))
            ),
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(parent=self),
        )
        policy = pulumi.Output.all(
            args.source_key_arn,
            args.replica_key_arn,
            account.region,
            *[bucket.source_arn for bucket in args.buckets],
            *[bucket.replica_arn for bucket in args.buckets],
        ).apply(
            lambda v: replication_policy(
                pairs=list(
                    zip(v[3 : 3 + len(args.buckets)], v[3 + len(args.buckets) :], strict=True)
                ),
                source_key_arn=v[0],
                destination_key_arn=v[1],
                source_region=v[2],
                destination_region=args.replica_region,
            )
        )
        role_policy = aws.iam.RolePolicy(
            f"{name}-role",
            role=role.id,
            policy=pulumi.Output.json_dumps(policy),
            opts=pulumi.ResourceOptions(parent=self),
        )
        for bucket in args.buckets:
            aws.s3.BucketReplicationConfig(
                f"{name}-{bucket.key}",
                bucket=bucket.source_name,
                role=role.arn,
                rules=[
                    aws.s3.BucketReplicationConfigRuleArgs(
                        id="replicate-everything",
                        status="Enabled",
                        filter=aws.s3.BucketReplicationConfigRuleFilterArgs(prefix=""),
                        # A deletion in the source region is a delete marker in the replica:
                        # recoverable there through its versions, as in the source.
                        delete_marker_replication=aws.s3.BucketReplicationConfigRuleDeleteMarkerReplicationArgs(
                            status="Enabled"
                        ),
                        source_selection_criteria=aws.s3.BucketReplicationConfigRuleSourceSelectionCriteriaArgs(
                            sse_kms_encrypted_objects=aws.s3.BucketReplicationConfigRuleSourceSelectionCriteriaSseKmsEncryptedObjectsArgs(
                                status="Enabled"
                            )
                        ),
                        destination=aws.s3.BucketReplicationConfigRuleDestinationArgs(
                            bucket=bucket.replica_arn,
                            encryption_configuration=aws.s3.BucketReplicationConfigRuleDestinationEncryptionConfigurationArgs(
                                replica_kms_key_id=args.replica_key_arn
                            ),
                        ),
                    )
                ],
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=[bucket.source, bucket.replica, role_policy]
                ),
            )
        self.register_outputs({"roleArn": role.arn})
