"""Feature stores: SageMaker feature groups in each online and offline mode, Feast's DynamoDB
tables and server role; and the feature data every stack keeps."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from components.feast_store import FeastStore, FeastStoreArgs
from components.sagemaker_feature_store import (
    FeatureGroupSpec,
    SageMakerFeatureStore,
    SageMakerFeatureStoreArgs,
)
from mlops_platform.project import PulumiProject
from mlops_platform.rendered import RecordedResource, RenderedStack
from tests.components.data_fixtures import (
    ACCOUNT,
    BOUNDARY_ARN,
    BUCKET_ARN,
    BUCKET_NAME,
    CLUSTER_ARN,
    CLUSTER_NAME,
    KEY_ARN,
    REGION,
    TAGS,
)
from tests.configs import stack_platform_config
from tests.conftest import named, run_component

GROUP = "aws:sagemaker/featureGroup:FeatureGroup"
TABLE = "aws:dynamodb/table:Table"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
FEATURES = {"customer_id": "String", "event_time": "String", "spend_30d": "Fractional"}


def group_spec(key: str, **overrides: object) -> FeatureGroupSpec:
    defaults: dict[str, object] = {
        "key": key,
        "description": "per-customer engagement features",
        "record_identifier": "customer_id",
        "event_time": "event_time",
        "features": FEATURES,
        "online": True,
        "online_storage": "Standard",
        "online_ttl_days": None,
        "offline": True,
        "table_format": "Iceberg",
        "throughput": "OnDemand",
    }
    return FeatureGroupSpec(**{**defaults, **overrides})  # type: ignore[arg-type]


# One group per online/offline mode, so one render serves every mode's test.
MODES = (
    group_spec("standard-ttl", online_ttl_days=30),
    group_spec("in-memory", online_storage="InMemory"),
    group_spec("offline-only", online=False, table_format="Glue", throughput="Provisioned"),
    group_spec("online-only", offline=False),
)


def render_sagemaker(*groups: FeatureGroupSpec, protect: bool = False) -> RenderedStack:
    args = SageMakerFeatureStoreArgs(
        groups=groups,
        name_prefix="mlops-platform-dev",
        kms_key_arn=KEY_ARN,
        offline_bucket_name=BUCKET_NAME,
        offline_bucket_arn=BUCKET_ARN,
        tags=TAGS,
        protect=protect,
    )
    return run_component(lambda: SageMakerFeatureStore("sagemaker-features", args))


@pytest.fixture(scope="module")
def sagemaker() -> RenderedStack:
    return render_sagemaker(*MODES)


def feature_group(rendered: RenderedStack, key: str) -> RecordedResource:
    return named(rendered, GROUP, f"sagemaker-features-{key}")


def test_each_feature_group_is_defined_by_its_spec_under_a_stack_unique_name(
    sagemaker: RenderedStack,
) -> None:
    role = named(sagemaker, "aws:iam/role:Role", "sagemaker-features-role")
    for spec in MODES:
        group = feature_group(sagemaker, spec.key)
        assert group.inputs["featureGroupName"] == f"mlops-platform-dev-{spec.key}"
        assert group.inputs["description"] == spec.description
        assert group.inputs["recordIdentifierFeatureName"] == "customer_id"
        assert group.inputs["eventTimeFeatureName"] == "event_time"
        assert group.inputs["featureDefinitions"] == [
            {"featureName": name, "featureType": kind} for name, kind in FEATURES.items()
        ]
        assert group.inputs["throughputConfig"] == {"throughputMode": spec.throughput}
        assert group.inputs["roleArn"] == role.outputs["arn"]
        assert group.inputs["tags"] == {**TAGS, "mlops:feature-group": spec.key}


@pytest.mark.parametrize(
    ("key", "online"),
    [
        (
            "standard-ttl",
            {
                "enableOnlineStore": True,
                "storageType": "Standard",
                "securityConfig": {"kmsKeyId": KEY_ARN},
                "ttlDuration": {"unit": "Days", "value": 30},
            },
        ),
        (
            "in-memory",
            {
                "enableOnlineStore": True,
                "storageType": "InMemory",
                "securityConfig": {"kmsKeyId": KEY_ARN},
            },
        ),
        ("offline-only", None),
    ],
)
def test_the_online_store_is_encrypted_in_its_tier_and_expires_records_only_if_asked(
    sagemaker: RenderedStack, key: str, online: dict[str, Any] | None
) -> None:
    assert feature_group(sagemaker, key).inputs.get("onlineStoreConfig") == online


def offline_store(key: str, table_format: str) -> dict[str, Any]:
    return {
        "s3StorageConfig": {"s3Uri": f"s3://{BUCKET_NAME}/sagemaker/", "kmsKeyId": KEY_ARN},
        "dataCatalogConfig": {
            "catalog": "AwsDataCatalog",
            "database": "mlops_platform_dev_features",
            "tableName": f"mlops_platform_dev_{key.replace('-', '_')}",
        },
        "tableFormat": table_format,
        "disableGlueTableCreation": False,
    }


@pytest.mark.parametrize(
    ("key", "offline"),
    [
        ("standard-ttl", offline_store("standard-ttl", "Iceberg")),
        ("offline-only", offline_store("offline-only", "Glue")),
        ("online-only", None),
    ],
)
def test_the_offline_store_keeps_encrypted_records_under_its_prefix_in_the_catalog(
    sagemaker: RenderedStack, key: str, offline: dict[str, Any] | None
) -> None:
    [database] = sagemaker.of_type("aws:glue/catalogDatabase:CatalogDatabase")
    # Glue names allow no hyphens, and are account-wide: the stack's prefix, underscored.
    assert database.outputs["name"] == "mlops_platform_dev_features"
    assert feature_group(sagemaker, key).inputs.get("offlineStoreConfig") == offline


def test_the_feature_store_role_is_scoped_to_its_prefix_database_and_key(
    sagemaker: RenderedStack,
) -> None:
    role = named(sagemaker, "aws:iam/role:Role", "sagemaker-features-role")
    [trust] = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert trust["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}
    grant = named(sagemaker, ROLE_POLICY, "sagemaker-features-offline-store")
    assert grant.property_dependencies["role"] == [role.urn]
    statements = {s["Sid"]: s for s in json.loads(grant.inputs["policy"])["Statement"]}
    database = named(
        sagemaker, "aws:glue/catalogDatabase:CatalogDatabase", "sagemaker-features-offline"
    )
    glue = f"arn:aws:glue:{REGION}:{ACCOUNT}"
    assert statements["OfflineStoreObjects"]["Resource"] == f"{BUCKET_ARN}/sagemaker/*"
    assert statements["OfflineStoreBucket"]["Resource"] == BUCKET_ARN
    assert statements["OfflineStoreTables"]["Resource"] == [
        f"{glue}:catalog",
        database.outputs["arn"],
        f"{glue}:table/mlops_platform_dev_features/*",
    ]
    assert statements["OfflineStoreKey"]["Resource"] == KEY_ARN


def test_the_offline_store_may_write_its_objects_with_the_owners_acl(
    sagemaker: RenderedStack,
) -> None:
    """AWS's reference role for offline stores (managed policy AmazonSageMakerFeatureStoreAccess,
    v3: s3:PutObject, s3:PutObjectAcl, s3:GetBucketAcl) writes each object with an ACL. ACLs
    are off on the platform's buckets (BucketOwnerEnforced), where S3 accepts only the
    bucket-owner-full-control ACL, and a PutObject carrying an ACL needs s3:PutObjectAcl."""
    grant = named(sagemaker, ROLE_POLICY, "sagemaker-features-offline-store")
    statements = {s["Sid"]: s for s in json.loads(grant.inputs["policy"])["Statement"]}
    assert {"s3:PutObject", "s3:PutObjectAcl"} <= set(statements["OfflineStoreObjects"]["Action"])
    assert "s3:GetBucketAcl" in statements["OfflineStoreBucket"]["Action"]


def test_groups_are_created_only_once_their_role_may_write_the_offline_store(
    sagemaker: RenderedStack,
) -> None:
    # SageMaker checks the role's grants when it creates the group.
    grant = named(sagemaker, ROLE_POLICY, "sagemaker-features-offline-store")
    assert all(grant.urn in group.dependencies for group in sagemaker.of_type(GROUP))


@pytest.mark.parametrize("protect", [True, False])
def test_a_protected_feature_store_keeps_its_groups_and_nothing_else_is_pinned(
    protect: bool,
) -> None:
    rendered = render_sagemaker(group_spec("activity"), protect=protect)
    [group] = rendered.of_type(GROUP)
    assert (group.protect, group.retain_on_delete) == (protect, protect)
    assert {r.type for r in rendered.resources if r.protect} == ({GROUP} if protect else set())


VIEWS = ("user_profile", "item_stats")


def feast_args(**overrides: object) -> FeastStoreArgs:
    defaults: dict[str, object] = {
        "table_prefix": CLUSTER_NAME,
        "project": "recsys",
        "feature_views": VIEWS,
        "kms_key_arn": KEY_ARN,
        "registry_bucket_name": BUCKET_NAME,
        "registry_bucket_arn": BUCKET_ARN,
        "cluster_name": CLUSTER_NAME,
        "cluster_arn": CLUSTER_ARN,
        "permissions_boundary_arn": BOUNDARY_ARN,
        "server_namespace": "feast",
        "server_service_account": "feast-server",
        "tags": TAGS,
    }
    return FeastStoreArgs(**{**defaults, **overrides})  # type: ignore[arg-type]


def render_feast(**overrides: object) -> RenderedStack:
    args = feast_args(**overrides)
    return run_component(lambda: FeastStore("feast", args))


@pytest.fixture(scope="module")
def feast() -> RenderedStack:
    return render_feast()


@pytest.mark.parametrize("views", [("user_profile",), VIEWS], ids=["one-view", "two-views"])
def test_each_feast_view_gets_a_table_with_the_name_and_key_feast_expects(
    views: tuple[str, ...],
) -> None:
    tables = {t.inputs["name"]: t for t in render_feast(feature_views=views).of_type(TABLE)}
    # The stack's prefix keeps two stacks of one account and region apart.
    assert sorted(tables) == sorted(f"{CLUSTER_NAME}.recsys.{view}" for view in views)
    for name, table in tables.items():
        assert table.inputs["hashKey"] == "entity_id"
        assert table.inputs["attributes"] == [{"name": "entity_id", "type": "S"}]
        assert table.inputs["billingMode"] == "PAY_PER_REQUEST"
        assert table.inputs["serverSideEncryption"] == {"enabled": True, "kmsKeyArn": KEY_ARN}
        assert table.inputs["pointInTimeRecovery"] == {"enabled": True}
        view = name.removeprefix(f"{CLUSTER_NAME}.recsys.")
        assert table.inputs["tags"] == {**TAGS, "mlops:feast-view": view}


@pytest.mark.parametrize("protect", [True, False])
def test_protected_feast_tables_cannot_be_deleted_from_the_stack_or_in_aws(protect: bool) -> None:
    rendered = render_feast(protect=protect)
    for table in rendered.of_type(TABLE):
        assert table.inputs["deletionProtectionEnabled"] is protect
        assert (table.protect, table.retain_on_delete) == (protect, protect)
    assert {r.type for r in rendered.resources if r.protect} == ({TABLE} if protect else set())


def test_the_feast_server_may_touch_only_its_tables_and_registry(feast: RenderedStack) -> None:
    policy = json.loads(named(feast, ROLE_POLICY, "feast-server-inline").inputs["policy"])
    statements = {s["Sid"]: s for s in policy["Statement"]}
    tables = sorted(t.outputs["arn"] for t in feast.of_type(TABLE))
    assert statements["OnlineTables"]["Resource"] == tables
    assert statements["Registry"]["Resource"] == f"{BUCKET_ARN}/feast/*"
    assert statements["ListRegistry"]["Condition"] == {"StringLike": {"s3:prefix": "feast/*"}}
    assert statements["DataKey"]["Resource"] == KEY_ARN


def test_the_feast_server_role_is_bound_to_its_service_account_under_the_boundary(
    feast: RenderedStack,
) -> None:
    role = named(feast, "aws:iam/role:Role", "feast-server-role")
    assert role.inputs["permissionsBoundary"] == BOUNDARY_ARN
    association = named(
        feast, "aws:eks/podIdentityAssociation:PodIdentityAssociation", "feast-server-association"
    )
    assert (association.inputs["namespace"], association.inputs["serviceAccount"]) == (
        "feast",
        "feast-server",
    )
    assert association.inputs["clusterName"] == CLUSTER_NAME


def test_feast_finds_its_tables_registry_and_role_in_the_store_outputs(
    feast: RenderedStack,
) -> None:
    [component] = feast.of_type(FeastStore.TYPE)
    role = named(feast, "aws:iam/role:Role", "feast-server-role")
    outputs = dict(component.outputs)
    store_yaml = yaml.safe_load(outputs.pop("featureStoreYaml"))
    assert outputs == {
        "tableNames": {view: f"{CLUSTER_NAME}.recsys.{view}" for view in VIEWS},
        "registryPath": f"s3://{BUCKET_NAME}/feast/registry.db",
        "serverRoleArn": role.outputs["arn"],
    }
    # The feature_store.yaml Feast runs with names exactly these tables: its DynamoDB online
    # store formats `table_name_template` with the project and the view's name.
    online = store_yaml["online_store"]
    assert (store_yaml["project"], store_yaml["registry"], online["type"]) == (
        "recsys",
        outputs["registryPath"],
        "dynamodb",
    )
    for view, table in outputs["tableNames"].items():
        assert online["table_name_template"].format(project="recsys", table_name=view) == table


def test_every_stack_keeps_feature_data_under_the_features_key_in_its_own_bucket(
    rendered: RenderedStack,
) -> None:
    key = named(rendered, "aws:kms/key:Key", "features-key").outputs["arn"]
    bucket = named(rendered, "aws:s3/bucket:Bucket", "feature-store-offline-bucket").outputs[
        "bucket"
    ]
    groups = [group.inputs for group in rendered.of_type(GROUP)]
    online = [g["onlineStoreConfig"]["securityConfig"] for g in groups if "onlineStoreConfig" in g]
    offline = [
        g["offlineStoreConfig"]["s3StorageConfig"] for g in groups if "offlineStoreConfig" in g
    ]
    tables = [table.inputs["serverSideEncryption"] for table in rendered.of_type(TABLE)]
    keys = [s["kmsKeyId"] for s in online + offline] + [t["kmsKeyArn"] for t in tables]
    assert keys and set(keys) == {key}
    assert all(t["enabled"] for t in tables)
    assert all(s["s3Uri"] == f"s3://{bucket}/sagemaker/" for s in offline)
    assert rendered.outputs.get("feastRegistryPath") in (None, f"s3://{bucket}/feast/registry.db")


def test_every_stack_guards_its_feature_groups_and_tables_as_its_config_says(
    rendered: RenderedStack, project: PulumiProject
) -> None:
    protect = stack_platform_config(project, rendered.stack).protect_stateful_resources
    for store in rendered.of_type(GROUP) + rendered.of_type(TABLE):
        assert (store.protect, store.retain_on_delete) == (protect, protect)
    for table in rendered.of_type(TABLE):
        assert table.inputs["deletionProtectionEnabled"] is protect
