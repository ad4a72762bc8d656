"""`mlops-platform bootstrap` against moto: fresh, re-run, and a misconfigured bucket.

moto ignores bucket-policy conditions (a TLS-only deny would refuse every call), so the policy is
checked as data, never exercised with object writes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from mlops_platform.bootstrap import NONCURRENT_VERSION_DAYS, argument_problems, bootstrap
from mlops_platform.cli import main

BUCKET, REGION, ALIAS = "acme-pulumi-state", "eu-west-1", "alias/pulumi-state"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Any]]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield boto3.client("s3", region_name=REGION), boto3.client("kms", region_name=REGION)


def run(clients: tuple[Any, Any]) -> Any:
    s3, kms = clients
    return bootstrap(s3, kms, bucket=BUCKET, region=REGION, alias=ALIAS)


def test_a_fresh_account_gets_a_guarded_bucket_and_a_rotating_key(aws: tuple[Any, Any]) -> None:
    s3, kms = aws
    report = run(aws)
    assert report.problems == []
    assert len(report.created) == 2
    key = kms.describe_key(KeyId=ALIAS)["KeyMetadata"]
    assert kms.get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"] is True
    assert s3.get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"
    [rule] = s3.get_bucket_encryption(Bucket=BUCKET)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": key["Arn"],
    }
    block = s3.get_public_access_block(Bucket=BUCKET)["PublicAccessBlockConfiguration"]
    assert all(block.values()) and len(block) == 4
    policy = json.loads(s3.get_bucket_policy(Bucket=BUCKET)["Policy"])
    assert policy["Statement"][0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    [lifecycle] = s3.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]
    assert lifecycle["NoncurrentVersionExpiration"]["NoncurrentDays"] == NONCURRENT_VERSION_DAYS
    assert s3.get_bucket_location(Bucket=BUCKET)["LocationConstraint"] == REGION


def test_running_again_changes_nothing(aws: tuple[Any, Any]) -> None:
    _, kms = aws
    first = run(aws)
    second = run(aws)
    assert (second.created, second.problems) == ([], [])
    assert second.key_arn == first.key_arn
    assert len(kms.list_keys()["Keys"]) == 1


def test_an_existing_misconfigured_bucket_is_reported_not_rewritten(aws: tuple[Any, Any]) -> None:
    s3, _ = aws
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    report = run(aws)
    assert report.created == ["KMS key alias/pulumi-state (rotation on)"]
    assert [p.split(": ", 1)[1] for p in report.problems] == [
        "versioning is not enabled (old state versions are the undo button)",
        "default encryption is not SSE-KMS with a customer-managed key",
        "public access block flags not set: BlockPublicAcls, BlockPublicPolicy, "
        "IgnorePublicAcls, RestrictPublicBuckets",
        "the bucket policy does not deny non-TLS requests",
    ]
    assert s3.get_bucket_versioning(Bucket=BUCKET).get("Status") is None


def test_a_key_without_rotation_is_reported(aws: tuple[Any, Any]) -> None:
    _, kms = aws
    key = kms.create_key()["KeyMetadata"]
    kms.create_alias(AliasName=ALIAS, TargetKeyId=key["KeyId"])
    report = run(aws)
    assert report.problems == ["KMS key alias/pulumi-state: automatic rotation is off"]


def test_the_command_prints_the_login_lines_and_exits_by_outcome(
    aws: tuple[Any, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["bootstrap", "--bucket-name", BUCKET, "--region", REGION]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert f"pulumi login 's3://{BUCKET}?region={REGION}&awssdk=v2'" in out
    assert f"--secrets-provider 'awskms://{ALIAS}?region={REGION}'" in out
    assert main(args) == 0
    assert "already set up; nothing changed" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argument", "value", "problem"),
    [
        ("alias", "state-eu", "--key-alias 'state-eu': `alias/` then letters"),
        ("alias", "alias/aws/state", "`alias/aws/` is AWS's own"),
        ("bucket", "Acme_State", "--bucket-name 'Acme_State': 3 to 63 lowercase letters"),
        ("bucket", "192.168.5.4", "S3 refuses names formatted as IP addresses"),
        ("bucket", "state--ol-s3", "S3 reserves that prefix or suffix"),
        ("region", "eu-west-9", "--region 'eu-west-9': not an AWS region"),
    ],
)
def test_arguments_aws_would_refuse_are_named(argument: str, value: str, problem: str) -> None:
    arguments = {"bucket": BUCKET, "region": REGION, "alias": ALIAS, argument: value}
    [found] = argument_problems(**arguments)
    assert problem in found


def test_a_refused_argument_creates_nothing(
    aws: tuple[Any, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["bootstrap", "--bucket-name", BUCKET, "--region", REGION, "--key-alias", "state-eu"]
    assert main(args) == 2
    assert "nothing was created" in capsys.readouterr().err
    s3, kms = aws
    assert s3.list_buckets()["Buckets"] == [] and kms.list_keys()["Keys"] == []


def test_a_failed_alias_takes_its_key_back_so_a_retry_makes_one_key(
    aws: tuple[Any, Any],
) -> None:
    _, kms = aws

    def denied(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "AccessDeniedException"}}, "CreateAlias")

    with pytest.MonkeyPatch.context() as patch, pytest.raises(ClientError):
        patch.setattr(kms, "create_alias", denied)
        run(aws)
    run(aws)
    states = [
        kms.describe_key(KeyId=k["KeyId"])["KeyMetadata"]["KeyState"]
        for k in kms.list_keys()["Keys"]
    ]
    assert sorted(states) == ["Enabled", "PendingDeletion"]
