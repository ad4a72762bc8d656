"""SageMaker Feature Store: feature groups with encrypted online and offline stores, written by
a role scoped to its own bucket prefix, Glue database and key."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.common import account_context, stateful_options
from components.policy_documents import feature_store_policy, service_trust

OFFLINE_PREFIX = "sagemaker/"


@dataclass(frozen=True)
class FeatureGroupSpec:
    key: str
    description: str
    record_identifier: str
    event_time: str
    features: Mapping[str, str]
    online: bool
    online_storage: str
    online_ttl_days: int | None
    offline: bool
    table_format: str
    throughput: str


@dataclass(frozen=True)
class SageMakerFeatureStoreArgs:
    groups: Sequence[FeatureGroupSpec]
    name_prefix: str
    """Feature group and Glue names are account-wide: prefix them with project and stack."""
    kms_key_arn: pulumi.Input[str]
    offline_bucket_name: pulumi.Input[str]
    offline_bucket_arn: pulumi.Input[str]
    tags: Mapping[str, str]
    protect: bool = False


class SageMakerFeatureStore(pulumi.ComponentResource):
    TYPE = "mlops:sagemaker_feature_store:SageMakerFeatureStore"

    feature_group_names: dict[str, pulumi.Output[str]]
    feature_group_arns: dict[str, pulumi.Output[str]]

    def __init__(
        self, name: str, args: SageMakerFeatureStoreArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(self.TYPE, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        account = account_context(self)
        database = aws.glue.CatalogDatabase(
            f"{name}-offline",
            # Glue names allow lowercase letters, digits and underscores only.
            name=f"{args.name_prefix}_features".replace("-", "_").lower(),
            description="SageMaker Feature Store offline tables",
            tags=dict(args.tags),
            opts=child,
        )
        role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=pulumi.Output.json_dumps(
                account.account_id.apply(lambda a: service_trust("sagemaker.amazonaws.com", a))
            ),
            tags=dict(args.tags),
            opts=child,
        )
        grant = aws.iam.RolePolicy(
            f"{name}-offline-store",
            role=role.id,
            policy=pulumi.Output.json_dumps(
                pulumi.Output.all(
                    args.offline_bucket_arn,
                    database.arn,
                    account.partition,
                    account.region,
                    account.account_id,
                    args.kms_key_arn,
                ).apply(
                    lambda v: feature_store_policy(
                        bucket_arn=v[0],
                        prefix=OFFLINE_PREFIX,
                        database_arn=v[1],
                        catalog_arn=f"arn:{v[2]}:glue:{v[3]}:{v[4]}:catalog",
                        key_arn=v[5],
                    )
                )
            ),
            opts=child,
        )
        self.feature_group_names, self.feature_group_arns = {}, {}
        for spec in args.groups:
            group_name = f"{args.name_prefix}-{spec.key}"
            group = aws.sagemaker.FeatureGroup(
                f"{name}-{spec.key}",
                feature_group_name=group_name,
                description=spec.description or None,
                record_identifier_feature_name=spec.record_identifier,
                event_time_feature_name=spec.event_time,
                role_arn=role.arn,
                feature_definitions=[
                    aws.sagemaker.FeatureGroupFeatureDefinitionArgs(
                        feature_name=feature, feature_type=feature_type
                    )
                    for feature, feature_type in spec.features.items()
                ],
                online_store_config=_online_store(spec, args.kms_key_arn),
                offline_store_config=(
                    aws.sagemaker.FeatureGroupOfflineStoreConfigArgs(
                        s3_storage_config=aws.sagemaker.FeatureGroupOfflineStoreConfigS3StorageConfigArgs(
                            s3_uri=pulumi.Output.concat(
                                "s3://", args.offline_bucket_name, "/", OFFLINE_PREFIX
                            ),
                            kms_key_id=args.kms_key_arn,
                        ),
                        data_catalog_config=aws.sagemaker.FeatureGroupOfflineStoreConfigDataCatalogConfigArgs(
                            catalog="AwsDataCatalog",
                            database=database.name,
                            table_name=group_name.replace("-", "_"),
                        ),
                        table_format=spec.table_format,
                        disable_glue_table_creation=False,
                    )
                    if spec.offline
                    else None
                ),
                throughput_config=aws.sagemaker.FeatureGroupThroughputConfigArgs(
                    throughput_mode="OnDemand" if spec.throughput == "OnDemand" else "Provisioned"
                ),
                tags={**args.tags, "mlops:feature-group": spec.key},
                # SageMaker checks the role's grants when the group is created.
                opts=stateful_options(self, args.protect, depends_on=[grant]),
            )
            self.feature_group_names[spec.key] = group.feature_group_name
            self.feature_group_arns[spec.key] = group.arn
        self.register_outputs({"featureGroupNames": self.feature_group_names})


def _online_store(
    spec: FeatureGroupSpec, key_arn: pulumi.Input[str]
) -> aws.sagemaker.FeatureGroupOnlineStoreConfigArgs | None:
    if not spec.online:
        return None
    return aws.sagemaker.FeatureGroupOnlineStoreConfigArgs(
        enable_online_store=True,
        storage_type=spec.online_storage,
        security_config=aws.sagemaker.FeatureGroupOnlineStoreConfigSecurityConfigArgs(
            kms_key_id=key_arn
        ),
        ttl_duration=(
            aws.sagemaker.FeatureGroupOnlineStoreConfigTtlDurationArgs(
                unit="Days", value=spec.online_ttl_days
            )
            if spec.online_ttl_days is not None
            else None
        ),
    )
