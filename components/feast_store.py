"""Storage for a Feast feature store: DynamoDB online tables Feast finds by name, an S3
registry, and a role for the Feast server with exactly the calls it makes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import yaml

from components.common import account_context, stateful_options
from components.pod_role import PodRole, PodRoleArgs
from components.policy_documents import feast_server_policy

REGISTRY_PREFIX = "feast/"
ENTITY_KEY = "entity_id"


@dataclass(frozen=True)
class FeastStoreArgs:
    table_prefix: str
    """Makes the tables' names unique to the stack in its account and region (the cluster
    name); Feast finds them through the `table_name_template` the component exports."""
    project: str
    feature_views: Sequence[str]
    kms_key_arn: pulumi.Input[str]
    registry_bucket_name: pulumi.Input[str]
    registry_bucket_arn: pulumi.Input[str]
    cluster_name: pulumi.Input[str]
    cluster_arn: pulumi.Input[str]
    permissions_boundary_arn: pulumi.Input[str]
    server_namespace: str
    server_service_account: str
    tags: Mapping[str, str]
    protect: bool = False


class FeastStore(pulumi.ComponentResource):
    TYPE = "mlops:feast_store:FeastStore"

    table_names: dict[str, pulumi.Output[str]]
    feature_store_yaml: pulumi.Output[str]
    table_arns: dict[str, pulumi.Output[str]]
    registry_path: pulumi.Output[str]
    server_role_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: FeastStoreArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(self.TYPE, name, None, opts)
        # Feast's DynamoDB online store names a view's table by its `table_name_template`
        # (default "{project}.{table_name}"): with the stack's prefix in it, two stacks of one
        # account and region (a copied one included) never share a table.
        template = f"{args.table_prefix}.{{project}}.{{table_name}}"
        tables = {
            view: aws.dynamodb.Table(
                f"{name}-{view}",
                name=template.format(project=args.project, table_name=view),
                billing_mode="PAY_PER_REQUEST",
                hash_key=ENTITY_KEY,
                attributes=[aws.dynamodb.TableAttributeArgs(name=ENTITY_KEY, type="S")],
                server_side_encryption=aws.dynamodb.TableServerSideEncryptionArgs(
                    enabled=True, kms_key_arn=args.kms_key_arn
                ),
                point_in_time_recovery=aws.dynamodb.TablePointInTimeRecoveryArgs(enabled=True),
                deletion_protection_enabled=args.protect,
                tags={**args.tags, "mlops:feast-view": view},
                opts=stateful_options(self, args.protect),
            )
            for view in args.feature_views
        }
        policy = pulumi.Output.all(
            args.registry_bucket_arn, args.kms_key_arn, *[t.arn for t in tables.values()]
        ).apply(
            lambda v: feast_server_policy(
                table_arns=v[2:], bucket_arn=v[0], registry_prefix=REGISTRY_PREFIX, key_arn=v[1]
            )
        )
        server_role = PodRole(
            f"{name}-server",
            PodRoleArgs(
                cluster_name=args.cluster_name,
                cluster_arn=args.cluster_arn,
                namespace=args.server_namespace,
                service_account=args.server_service_account,
                permissions_boundary_arn=args.permissions_boundary_arn,
                inline_policy=policy,
                tags=args.tags,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

        self.table_names = {view: table.name for view, table in tables.items()}
        self.table_arns = {view: table.arn for view, table in tables.items()}
        self.registry_path = pulumi.Output.concat(
            "s3://", args.registry_bucket_name, "/", REGISTRY_PREFIX, "registry.db"
        )
        self.server_role_arn = server_role.role_arn
        self.feature_store_yaml = pulumi.Output.all(
            self.registry_path, account_context(self).region
        ).apply(
            lambda v: yaml.safe_dump(
                {
                    "project": args.project,
                    "registry": v[0],
                    "provider": "aws",
                    "online_store": {
                        "type": "dynamodb",
                        "region": v[1],
                        "table_name_template": template,
                    },
                },
                sort_keys=False,
            )
        )
        """The feature_store.yaml whose Feast finds exactly these tables and this registry."""
        self.register_outputs(
            {
                "tableNames": self.table_names,
                "registryPath": self.registry_path,
                "serverRoleArn": self.server_role_arn,
                "featureStoreYaml": self.feature_store_yaml,
            }
        )
