"""Policy documents as plain data, without Pulumi."""

from __future__ import annotations

from components.policy_documents import KeyUse, bucket_policy, key_policy

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
