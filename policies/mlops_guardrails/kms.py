"""KMS rules."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

from pulumi_policy import ResourceValidationArgs, Severity

from mlops_guardrails.frameworks import cis_aws
from mlops_guardrails.props import is_open_to_anyone, is_true, policy_statements
from mlops_guardrails.rule import resource_rule, setting

KEY: Final = "aws:kms/key:Key"
DELETION_WINDOW_TUNABLES: Final = {
    "minimumDays": {
        "type": "integer",
        "minimum": 7,
        "maximum": 30,
        "default": 7,
        "description": "Shortest allowed wait between scheduling a key's deletion and losing it.",
    }
}


def _rotation(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    # Only symmetric encryption keys rotate; asymmetric and HMAC keys cannot.
    spec = props.get("customerMasterKeySpec", "SYMMETRIC_DEFAULT")
    if spec == "SYMMETRIC_DEFAULT" and not is_true(props.get("enableKeyRotation")):
        yield "automatic key rotation is off"


def _deletion_window(props: Mapping[str, Any], args: ResourceValidationArgs) -> Iterator[str]:
    minimum = setting(args, DELETION_WINDOW_TUNABLES, "minimumDays")
    days = props.get("deletionWindowInDays", 30)  # AWS's default when unset
    if days < minimum:
        yield f"deletion window is {days:g} days; at least {minimum:g} required here"


def _policy_scoped(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    if "policy" not in props:
        return  # AWS's default key policy names only the account
    for statement in policy_statements(props.get("policy")):
        if is_open_to_anyone(statement):
            yield f"statement {statement.get('Sid', '(no Sid)')!r} lets anyone use the key"


RULES = [
    resource_rule(
        name="kms-key-rotation",
        description="Customer-managed symmetric KMS keys rotate automatically.",
        resource_types={KEY},
        check=_rotation,
        severity=Severity.MEDIUM,
        framework=cis_aws("3.6"),
        remediation="Set enable_key_rotation=True on the aws.kms.Key.",
        live=True,
    ),
    resource_rule(
        name="kms-key-deletion-window",
        description="A scheduled key deletion waits long enough to be noticed and cancelled.",
        resource_types={KEY},
        check=_deletion_window,
        severity=Severity.MEDIUM,
        remediation="Raise deletion_window_in_days (prod: 30).",
        tunables=DELETION_WINDOW_TUNABLES,
    ),
    resource_rule(
        name="kms-key-policy-scoped",
        description="No key policy statement lets any principal use the key without conditions.",
        resource_types={KEY},
        check=_policy_scoped,
        severity=Severity.HIGH,
        remediation=(
            "Name the account root, roles or service principals that need the key; scope "
            "service principals with aws:SourceAccount (components.policy_documents.key_policy)."
        ),
        live=True,
    ),
]
