"""Feature stores in each stack's plan: SageMaker feature groups and Feast storage."""

from __future__ import annotations

import json

from mlops_platform.rendered import RenderedStack
from tests.conftest import named

GROUP = "aws:sagemaker/featureGroup:FeatureGroup"


def test_every_feature_group_is_encrypted_online_and_offline(rendered: RenderedStack) -> None:
    key = named(rendered, "aws:kms/key:Key", "features-key").outputs["arn"]
    groups = rendered.of_type(GROUP)
    assert groups
    for group in groups:
        online = group.inputs["onlineStoreConfig"]
        assert online["enableOnlineStore"] is True
        assert online["securityConfig"] == {"kmsKeyId": key}
        assert online["ttlDuration"] == {"unit": "Days", "value": 30}
        offline = group.inputs["offlineStoreConfig"]
        assert offline["s3StorageConfig"]["kmsKeyId"] == key
        assert offline["tableFormat"] == "Iceberg"
        assert group.protect == (rendered.stack != "dev")


def test_the_offline_store_is_a_dedicated_guarded_bucket(rendered: RenderedStack) -> None:
    bucket = named(rendered, "aws:s3/bucket:Bucket", "feature-store-offline-bucket")
    [group] = rendered.of_type(GROUP)
    assert group.inputs["offlineStoreConfig"]["s3StorageConfig"]["s3Uri"] == (
        f"s3://{bucket.outputs['bucket']}/sagemaker/"
    )
    database = rendered.of_type("aws:glue/catalogDatabase:CatalogDatabase")[0]
    assert (
        group.inputs["offlineStoreConfig"]["dataCatalogConfig"]["database"]
        == database.outputs["name"]
    )


def test_the_feature_store_role_is_scoped_to_its_prefix_database_and_key(
    rendered: RenderedStack,
) -> None:
    policy = json.loads(
        named(rendered, "aws:iam/rolePolicy:RolePolicy", "sagemaker-features-offline-store").inputs[
            "policy"
        ]
    )
    statements = {s["Sid"]: s for s in policy["Statement"]}
    bucket = named(rendered, "aws:s3/bucket:Bucket", "feature-store-offline-bucket").outputs["arn"]
    assert statements["OfflineStoreObjects"]["Resource"] == f"{bucket}/sagemaker/*"
    assert (
        statements["OfflineStoreKey"]["Resource"]
        == named(rendered, "aws:kms/key:Key", "features-key").outputs["arn"]
    )
    assert all("sagemaker*" not in json.dumps(s["Resource"]) for s in policy["Statement"])


def test_feast_tables_have_the_name_and_key_feast_expects(rendered: RenderedStack) -> None:
    tables = {t.inputs["name"]: t.inputs for t in rendered.of_type("aws:dynamodb/table:Table")}
    assert sorted(tables) == ["recsys.item_stats", "recsys.user_profile"]
    key = named(rendered, "aws:kms/key:Key", "features-key").outputs["arn"]
    for table in tables.values():
        assert table["hashKey"] == "entity_id"
        assert table["attributes"] == [{"name": "entity_id", "type": "S"}]
        assert table["serverSideEncryption"] == {"enabled": True, "kmsKeyArn": key}
        assert table["pointInTimeRecovery"] == {"enabled": True}
        assert table["deletionProtectionEnabled"] is (rendered.stack != "dev")


def test_the_feast_server_may_touch_only_its_tables_and_registry(rendered: RenderedStack) -> None:
    policy = json.loads(
        named(rendered, "aws:iam/rolePolicy:RolePolicy", "feast-server-inline").inputs["policy"]
    )
    statements = {s["Sid"]: s for s in policy["Statement"]}
    tables = sorted(t.outputs["arn"] for t in rendered.of_type("aws:dynamodb/table:Table"))
    assert statements["OnlineTables"]["Resource"] == tables
    assert statements["Registry"]["Resource"].endswith("/feast/*")
    assert rendered.outputs["feastRegistryPath"].endswith("/feast/registry.db")
