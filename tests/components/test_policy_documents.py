"""Policy documents as plain data, without Pulumi."""

from __future__ import annotations

from components.policy_documents import (
    MLFLOW_READ,
    MLFLOW_WRITE,
    BucketGrant,
    KeyUse,
    QueueGrant,
    RepositoryGrant,
    TrackingGrant,
    alert_topic_policy,
    bucket_policy,
    key_policy,
    workload_policy,
)

ACCOUNT = "111122223333"


def test_key_policy_without_admins_or_services_only_delegates_to_iam() -> None:
    document = key_policy(account_id=ACCOUNT, partition="aws", region="eu-west-1")
    assert document == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "EnableIamPoliciesInThisAccount",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                "Action": "kms:*",
                "Resource": "*",
            }
        ],
    }


def test_key_policy_uses_the_partition() -> None:
    document = key_policy(account_id=ACCOUNT, partition="aws-cn", region="eu-west-1")
    assert document["Statement"][0]["Principal"] == {"AWS": f"arn:aws-cn:iam::{ACCOUNT}:root"}


def test_admins_are_sorted_so_reordering_config_changes_nothing() -> None:
    a, b = (f"arn:aws:iam::{ACCOUNT}:role/{n}" for n in ("a", "b"))
    first = key_policy(
        account_id=ACCOUNT, partition="aws", region="eu-west-1", admin_role_arns=[b, a]
    )
    second = key_policy(
        account_id=ACCOUNT, partition="aws", region="eu-west-1", admin_role_arns=[a, b]
    )
    assert first == second
    assert first["Statement"][1]["Principal"] == {"AWS": [a, b]}


def test_service_grants_are_scoped_to_the_account() -> None:
    document = key_policy(
        account_id=ACCOUNT,
        partition="aws",
        region="eu-west-1",
        uses=[KeyUse.S3_ACCESS_LOG_DELIVERY],
    )
    grant = document["Statement"][-1]
    assert grant["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert grant["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}


def test_bucket_policy_is_deny_only_unless_it_receives_logs() -> None:
    arn = "arn:aws:s3:::b"
    plain = bucket_policy(bucket_arn=arn, account_id=ACCOUNT, receives_access_logs=False)
    assert {s["Effect"] for s in plain["Statement"]} == {"Deny"}
    logs = bucket_policy(bucket_arn=arn, account_id=ACCOUNT, receives_access_logs=True)
    assert logs["Statement"][:2] == plain["Statement"]
    assert logs["Statement"][2]["Action"] == "s3:PutObject"
    assert logs["Statement"][2]["Resource"] == f"{arn}/*"


def test_a_workload_with_no_grants_gets_an_empty_policy() -> None:
    assert workload_policy(region="eu-west-1") == {"Version": "2012-10-17", "Statement": []}


def test_one_key_used_by_reads_and_writes_through_one_service_is_one_statement() -> None:
    key = "arn:aws:kms:eu-west-1:111122223333:key/k"
    document = workload_policy(
        region="eu-west-1",
        buckets=[
            BucketGrant("arn:aws:s3:::a", key, write=False),
            BucketGrant("arn:aws:s3:::b", key, write=True, prefix="out/"),
        ],
    )
    keys = [s for s in document["Statement"] if s["Sid"].startswith("Key")]
    assert keys == [
        {
            "Sid": "Key0",
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": key,
            "Condition": {"StringEquals": {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}},
        }
    ]


def test_registry_login_is_granted_once_and_only_with_repositories() -> None:
    key = "arn:aws:kms:eu-west-1:111122223333:key/k"
    repos = [
        RepositoryGrant(f"arn:aws:ecr:eu-west-1:111122223333:repository/{n}", key, push=False)
        for n in "ab"
    ]
    sids = [s["Sid"] for s in workload_policy(region="eu-west-1", repositories=repos)["Statement"]]
    assert sids.count("RegistryLogin") == 1
    assert "RegistryLogin" not in [
        s["Sid"] for s in workload_policy(region="eu-west-1")["Statement"]
    ]


def test_only_this_accounts_monitors_publish_alerts_and_only_over_tls() -> None:
    topic = "arn:aws:sns:us-east-1:111122223333:alerts"
    allow, deny = alert_topic_policy(topic_arn=topic, account_id=ACCOUNT)["Statement"]
    assert allow["Principal"] == {
        "Service": ["aps.amazonaws.com", "budgets.amazonaws.com", "cloudwatch.amazonaws.com"]
    }
    assert allow["Resource"] == topic
    assert allow["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}
    assert (deny["Effect"], deny["Condition"]) == (
        "Deny",
        {"Bool": {"aws:SecureTransport": "false"}},
    )


def test_the_alert_key_lets_the_publishers_encrypt_and_nothing_else() -> None:
    policy = key_policy(
        account_id=ACCOUNT, partition="aws", region="us-east-1", uses=[KeyUse.ALERT_PUBLISHERS]
    )
    [publishers] = [s for s in policy["Statement"] if s["Sid"] == "AllowAlertPublishersThroughSns"]
    assert publishers["Action"] == ["kms:Decrypt", "kms:GenerateDataKey*"]
    assert "cloudwatch.amazonaws.com" in publishers["Principal"]["Service"]


def test_tracking_grants_the_mlflow_api_on_the_server_and_its_artifact_prefix() -> None:
    server = "arn:aws:sagemaker:us-east-1:123456789012:mlflow-tracking-server/ml-mlflow"
    key = "arn:aws:kms:us-east-1:123456789012:key/k"
    artifacts = BucketGrant("arn:aws:s3:::exp", key, write=False, prefix="mlflow/")
    reader = workload_policy(region="us-east-1", tracking=TrackingGrant(server, artifacts))
    found = {s["Sid"]: s for s in reader["Statement"]}
    assert found["Tracking"]["Resource"] == server
    assert set(found["Tracking"]["Action"]) == set(MLFLOW_READ)
    assert found["Objects0"]["Resource"] == "arn:aws:s3:::exp/mlflow/*"
    assert found["List0"]["Condition"] == {"StringLike": {"s3:prefix": "mlflow/*"}}
    writer = workload_policy(
        region="us-east-1",
        tracking=TrackingGrant(server, BucketGrant("arn:aws:s3:::exp", key, True, "mlflow/")),
    )
    actions = {s["Sid"]: s for s in writer["Statement"]}["Tracking"]["Action"]
    assert {"sagemaker-mlflow:LogMetric", "sagemaker-mlflow:CreateModelVersion"} <= set(actions)
    assert not set(MLFLOW_READ) & set(MLFLOW_WRITE)


def test_a_queue_consumer_receives_and_deletes_and_decrypts_through_sqs_only() -> None:
    queue = "arn:aws:sqs:us-east-1:123456789012:artifact-events-models-queue"
    key = "arn:aws:kms:us-east-1:123456789012:key/k"
    found = {
        s["Sid"]: s
        for s in workload_policy(region="us-east-1", queues=[QueueGrant(queue, key)])["Statement"]
    }
    assert found["Queue0"]["Resource"] == queue
    assert "sqs:SendMessage" not in found["Queue0"]["Action"]
    assert {"sqs:ReceiveMessage", "sqs:DeleteMessage"} <= set(found["Queue0"]["Action"])
    assert found["Key0"]["Action"] == ["kms:Decrypt"]
    assert found["Key0"]["Condition"] == {
        "StringEquals": {"kms:ViaService": "sqs.us-east-1.amazonaws.com"}
    }


def test_event_rules_use_the_queue_key_only_for_rules_of_this_account_and_region() -> None:
    policy = key_policy(
        account_id=ACCOUNT, partition="aws", region="eu-west-1", uses=[KeyUse.EVENT_RULES]
    )
    [rules] = [s for s in policy["Statement"] if s["Sid"] == "AllowEventRulesOfThisAccount"]
    assert rules["Principal"] == {"Service": "events.amazonaws.com"}
    assert rules["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert rules["Condition"] == {
        "ArnLike": {"aws:SourceArn": f"arn:aws:events:eu-west-1:{ACCOUNT}:rule/*"}
    }
