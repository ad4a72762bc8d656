"""The KmsKey component in each of its modes (the services it admits, admin roles, protection), the
deletion window each environment profile sets, and the guards every key of every stack carries."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.common import ComponentArgsError
from components.kms_key import KmsKey, KmsKeyArgs
from components.policy_documents import ALERT_PUBLISHERS, KeyUse
from infra.config import Environment
from mlops_platform.project import PulumiProject
from mlops_platform.rendered import RecordedResource, RenderedStack
from tests.configs import profile, stack_platform_config
from tests.conftest import named, run_component

KEY = "aws:kms/key:Key"
ADMIN = "arn:aws:iam::123456789012:role/platform-admin"
ACCOUNT_ROOT = "arn:aws:iam::123456789012:root"


def key_args(**overrides: Any) -> KmsKeyArgs:
    defaults: dict[str, Any] = {
        "description": "test data",
        "deletion_window_days": 7,
        "tags": {"team": "ml"},
    }
    return KmsKeyArgs(**{**defaults, **overrides})


MODES = {
    "plain": key_args(),
    "administered": key_args(admin_role_arns=(ADMIN,)),
    "protected": key_args(deletion_window_days=30, protect=True),
    **{use.value: key_args(uses=(use,)) for use in KeyUse},
}

# What each key of a stack is for; features-key exists only in stacks with a feature store.
STACK_KEY_GRANTS = {
    "artifacts-key": ["AllowS3AccessLogDelivery"],
    "logs-key": ["AllowCloudWatchLogsOfThisAccount"],
    "ebs-key": ["AllowAutoScalingVolumeGrants", "AllowAutoScalingVolumes"],
    "eks-secrets-key": [],
    "registry-key": [],
    "monitoring-key": ["AllowAlertPublishersThroughSns", "AllowCloudWatchLogsOfThisAccount"],
    "features-key": ["AllowS3AccessLogDelivery"],
    # The artifact event queues': EventBridge encrypts what it sends under it.
    "events-key": ["AllowEventRulesOfThisAccount"],
    # The replicas' key, in the replica region: their access logs are delivered under it.
    "replica-key": ["AllowS3AccessLogDelivery"],
}


@pytest.fixture(scope="module")
def keys() -> RenderedStack:
    """One key per mode, all in one program."""
    return run_component(lambda: [KmsKey(mode, args) for mode, args in MODES.items()])


def the_key(rendered: RenderedStack, mode: str) -> RecordedResource:
    return named(rendered, KEY, f"{mode}-key")


def statements(key: RecordedResource) -> dict[str, Any]:
    return {s["Sid"]: s for s in json.loads(key.inputs["policy"])["Statement"]}


def grants(key: RecordedResource) -> list[str]:
    """The services and roles the policy admits besides the account's IAM and the admins."""
    return sorted(sid for sid in statements(key) if sid.startswith("Allow"))


@pytest.mark.parametrize("mode", ["plain", "protected"])
def test_the_key_rotates_and_keeps_the_deletion_window_it_is_given(
    keys: RenderedStack, mode: str
) -> None:
    key = the_key(keys, mode)
    assert key.inputs["enableKeyRotation"] is True
    assert key.inputs["deletionWindowInDays"] == MODES[mode].deletion_window_days
    assert key.inputs["description"] == MODES[mode].description
    assert key.inputs["tags"] == MODES[mode].tags


def test_a_key_is_protected_and_retained_only_when_asked(keys: RenderedStack) -> None:
    for mode, args in MODES.items():
        key = the_key(keys, mode)
        assert (key.protect, key.retain_on_delete) == (args.protect, args.protect), mode


def test_without_uses_or_admins_only_the_accounts_iam_may_use_the_key(keys: RenderedStack) -> None:
    # Delegating to the account's IAM keeps the key manageable if every admin role is deleted.
    assert statements(the_key(keys, "plain")) == {
        "EnableIamPoliciesInThisAccount": {
            "Sid": "EnableIamPoliciesInThisAccount",
            "Effect": "Allow",
            "Principal": {"AWS": ACCOUNT_ROOT},
            "Action": "kms:*",
            "Resource": "*",
        }
    }


def test_admin_roles_administer_but_cannot_use_the_key(keys: RenderedStack) -> None:
    admins = statements(the_key(keys, "administered"))["KeyAdministrators"]
    assert admins["Principal"] == {"AWS": [ADMIN]}
    assert not {"kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:*"} & set(
        admins["Action"]
    )


@pytest.mark.parametrize(
    ("use", "granted"),
    [
        (KeyUse.S3_ACCESS_LOG_DELIVERY, ["AllowS3AccessLogDelivery"]),
        (KeyUse.CLOUDWATCH_LOGS, ["AllowCloudWatchLogsOfThisAccount"]),
        (
            KeyUse.AUTOSCALING_EBS_VOLUMES,
            ["AllowAutoScalingVolumeGrants", "AllowAutoScalingVolumes"],
        ),
        (KeyUse.ALERT_PUBLISHERS, ["AllowAlertPublishersThroughSns"]),
    ],
)
def test_each_use_admits_its_own_service_and_no_other(
    keys: RenderedStack, use: KeyUse, granted: list[str]
) -> None:
    key = the_key(keys, use.value)
    assert grants(key) == granted
    assert "KeyAdministrators" not in statements(key)


def test_cloudwatch_logs_may_use_the_key_only_for_this_accounts_log_groups(
    keys: RenderedStack,
) -> None:
    grant = statements(the_key(keys, KeyUse.CLOUDWATCH_LOGS.value))[
        "AllowCloudWatchLogsOfThisAccount"
    ]
    assert grant["Principal"] == {"Service": "logs.eu-west-1.amazonaws.com"}
    assert grant["Condition"] == {
        "StringLike": {
            "kms:EncryptionContext:aws:logs:arn": "arn:aws:logs:eu-west-1:123456789012:log-group:*"
        }
    }


def test_autoscaling_may_grant_the_ebs_key_only_to_aws_resources(keys: RenderedStack) -> None:
    policy = statements(the_key(keys, KeyUse.AUTOSCALING_EBS_VOLUMES.value))
    role = (
        "arn:aws:iam::123456789012:role/aws-service-role/autoscaling.amazonaws.com/"
        "AWSServiceRoleForAutoScaling"
    )
    assert policy["AllowAutoScalingVolumes"]["Principal"] == {"AWS": role}
    grant = policy["AllowAutoScalingVolumeGrants"]
    assert grant["Principal"] == {"AWS": role}
    assert grant["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}


def test_s3_log_delivery_may_only_create_data_keys_for_this_account(keys: RenderedStack) -> None:
    delivery = statements(the_key(keys, KeyUse.S3_ACCESS_LOG_DELIVERY.value))[
        "AllowS3AccessLogDelivery"
    ]
    assert delivery["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert delivery["Action"] == ["kms:GenerateDataKey"]
    assert delivery["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}


def test_alert_publishers_may_only_encrypt_to_and_read_the_topic(keys: RenderedStack) -> None:
    publishers = statements(the_key(keys, KeyUse.ALERT_PUBLISHERS.value))[
        "AllowAlertPublishersThroughSns"
    ]
    assert publishers["Principal"] == {"Service": list(ALERT_PUBLISHERS)}
    assert publishers["Action"] == ["kms:Decrypt", "kms:GenerateDataKey*"]


@pytest.mark.parametrize("days", [6, 31])
def test_deletion_window_outside_what_aws_allows_is_refused(days: int) -> None:
    with pytest.raises(ComponentArgsError, match="deletion_window_days must be 7-30"):
        run_component(lambda: KmsKey("k", key_args(deletion_window_days=days)))


@pytest.mark.parametrize(("environment", "days"), [("dev", 7), ("staging", 14), ("prod", 30)])
def test_each_environment_profile_sets_its_key_deletion_window(
    environment: Environment, days: int
) -> None:
    assert profile(environment).kms.deletion_window_days == days


def test_every_key_has_the_deletion_window_and_admins_its_stack_configures(
    rendered: RenderedStack, project: PulumiProject
) -> None:
    """Config to keys wiring, on whatever each stack file says."""
    kms = stack_platform_config(project, rendered.stack).kms
    for key in rendered.of_type(KEY):
        assert key.inputs["deletionWindowInDays"] == kms.deletion_window_days, key.name
        admins = statements(key).get("KeyAdministrators", {}).get("Principal")
        assert admins == ({"AWS": sorted(kms.admin_role_arns)} if kms.admin_role_arns else None)


def test_every_stack_has_one_key_per_purpose(rendered: RenderedStack) -> None:
    names = {key.name for key in rendered.of_type(KEY)}
    optional = {"features-key", "replica-key", "events-key"}
    assert STACK_KEY_GRANTS.keys() - optional <= names <= STACK_KEY_GRANTS.keys()


def test_each_stack_key_admits_only_the_services_of_its_purpose(rendered: RenderedStack) -> None:
    for key in rendered.of_type(KEY):
        assert grants(key) == STACK_KEY_GRANTS[key.name], key.name


def test_every_key_in_every_stack_rotates(rendered: RenderedStack) -> None:
    assert all(key.inputs["enableKeyRotation"] is True for key in rendered.of_type(KEY))


def test_every_key_delegates_to_the_accounts_iam(rendered: RenderedStack) -> None:
    for key in rendered.of_type(KEY):
        root = statements(key)["EnableIamPoliciesInThisAccount"]
        assert root["Principal"] == {"AWS": ACCOUNT_ROOT}


def test_no_key_policy_has_an_unconditioned_wildcard_principal(rendered: RenderedStack) -> None:
    for key in rendered.of_type(KEY):
        for statement in statements(key).values():
            principal = statement["Principal"]
            assert principal != "*"
            assert "*" not in json.dumps(principal) or "Condition" in statement
