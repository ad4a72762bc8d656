"""KMS rules: a compliant and a violating case for each."""

from __future__ import annotations

from mlops_guardrails import kms
from tests.policies.harness import resource_violations


def test_rotating_key_passes() -> None:
    assert resource_violations(kms.key_rotation, kms.KEY, {"enableKeyRotation": True}) == []


def test_key_without_rotation_is_flagged() -> None:
    assert resource_violations(kms.key_rotation, kms.KEY, {}) == [
        ("automatic key rotation is off", None)
    ]


def test_asymmetric_keys_cannot_rotate_and_are_not_flagged() -> None:
    props = {"customerMasterKeySpec": "RSA_2048", "enableKeyRotation": False}
    assert resource_violations(kms.key_rotation, kms.KEY, props) == []
