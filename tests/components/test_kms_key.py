"""The platform's customer-managed key: rotation, deletion window, and a policy naming its users."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.common import ComponentArgsError
from components.kms_key import KmsKey, KmsKeyArgs
from mlops_platform.rendered import RecordedResource, RenderedStack
from tests.conftest import named, run_component

KEY = "aws:kms/key:Key"
PLATFORM_KEYS = (
    "artifacts-key",
    "logs-key",
    "ebs-key",
    "eks-secrets-key",
    "registry-key",
    "features-key",
    "monitoring-key",
)


def the_key(rendered: RenderedStack, name: str = "artifacts-key") -> RecordedResource:
    return named(rendered, KEY, name)


def statements(key: RecordedResource) -> dict[str, Any]:
    return {s["Sid"]: s for s in json.loads(key.inputs["policy"])["Statement"]}


def test_the_platform_has_one_key_per_purpose(rendered: RenderedStack) -> None:
    assert sorted(k.name for k in rendered.of_type(KEY)) == sorted(PLATFORM_KEYS)


def test_rotation_is_on(rendered: RenderedStack) -> None:
    assert all(key.inputs["enableKeyRotation"] is True for key in rendered.of_type(KEY))


def test_deletion_window_by_environment(rendered_stacks: dict[str, RenderedStack]) -> None:
    windows = {
        stack: {key.inputs["deletionWindowInDays"] for key in r.of_type(KEY)}
        for stack, r in rendered_stacks.items()
    }
    assert windows == {"dev": {7}, "staging": {14}, "prod": {30}}


def test_policy_has_no_unconditioned_wildcard_principal(rendered: RenderedStack) -> None:
    for key in rendered.of_type(KEY):
        for statement in statements(key).values():
            principal = statement["Principal"]
            assert principal != "*"
            assert "*" not in json.dumps(principal) or "Condition" in statement


def test_policy_delegates_to_the_accounts_iam(rendered: RenderedStack) -> None:
    for key in rendered.of_type(KEY):
        root = statements(key)["EnableIamPoliciesInThisAccount"]
        assert root["Principal"] == {"AWS": "arn:aws:iam::123456789012:root"}


def test_each_key_admits_only_the_services_of_its_purpose(rendered: RenderedStack) -> None:
    services = {
        name: sorted(sid for sid in statements(the_key(rendered, name)) if sid.startswith("Allow"))
        for name in PLATFORM_KEYS
    }
    assert services == {
        "artifacts-key": ["AllowS3AccessLogDelivery"],
        "logs-key": ["AllowCloudWatchLogsOfThisAccount"],
        "ebs-key": ["AllowAutoScalingVolumeGrants", "AllowAutoScalingVolumes"],
        "eks-secrets-key": [],
        "registry-key": [],
        "monitoring-key": ["AllowAlertPublishersThroughSns", "AllowCloudWatchLogsOfThisAccount"],
        "features-key": ["AllowS3AccessLogDelivery"],
    }


def test_cloudwatch_logs_may_use_the_logs_key_only_for_this_accounts_log_groups(
    rendered: RenderedStack,
) -> None:
    grant = statements(the_key(rendered, "logs-key"))["AllowCloudWatchLogsOfThisAccount"]
    assert grant["Principal"] == {"Service": "logs.us-east-1.amazonaws.com"}
    assert grant["Condition"] == {
        "StringLike": {
            "kms:EncryptionContext:aws:logs:arn": "arn:aws:logs:us-east-1:123456789012:log-group:*"
        }
    }


def test_autoscaling_may_grant_the_ebs_key_only_to_aws_resources(rendered: RenderedStack) -> None:
    grant = statements(the_key(rendered, "ebs-key"))["AllowAutoScalingVolumeGrants"]
    assert grant["Principal"]["AWS"].endswith(
        ":role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
    )
    assert grant["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}


def test_s3_log_delivery_may_only_create_data_keys_for_this_account(
    rendered: RenderedStack,
) -> None:
    delivery = statements(the_key(rendered))["AllowS3AccessLogDelivery"]
    assert delivery["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert delivery["Action"] == ["kms:GenerateDataKey"]
    assert delivery["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}


def test_admin_roles_from_config_administer_but_cannot_use_the_key() -> None:
    admin = "arn:aws:iam::123456789012:role/platform-admin"
    rendered = run_component(
        lambda: KmsKey(
            "k",
            KmsKeyArgs(description="d", deletion_window_days=7, tags={}, admin_role_arns=(admin,)),
        )
    )
    admins = statements(the_key(rendered, "k-key"))["KeyAdministrators"]
    assert admins["Principal"] == {"AWS": [admin]}
    assert not {"kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:*"} & set(
        admins["Action"]
    )


@pytest.mark.parametrize("days", [6, 31])
def test_deletion_window_outside_what_aws_allows_is_refused(days: int) -> None:
    with pytest.raises(ComponentArgsError, match="deletion_window_days must be 7-30"):
        run_component(
            lambda: KmsKey("k", KmsKeyArgs(description="d", deletion_window_days=days, tags={}))
        )
