"""KMS rules."""

from __future__ import annotations

from typing import Final

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
)

from mlops_guardrails.frameworks import cis_aws
from mlops_guardrails.props import is_true

KEY: Final = "aws:kms/key:Key"


def _check_rotation(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != KEY:
        return
    # Rotation applies to symmetric encryption keys only; asymmetric and HMAC keys cannot rotate.
    spec = args.props.get("customerMasterKeySpec", "SYMMETRIC_DEFAULT")
    if spec == "SYMMETRIC_DEFAULT" and not is_true(args.props.get("enableKeyRotation")):
        report("automatic key rotation is off", None)


key_rotation = ResourceValidationPolicy(
    name="kms-key-rotation",
    description="Customer-managed symmetric KMS keys rotate automatically.",
    validate=_check_rotation,
    enforcement_level=EnforcementLevel.MANDATORY,
    severity=Severity.MEDIUM,
    framework=cis_aws("3.6"),
    remediation_steps="Set enable_key_rotation=True on the aws.kms.Key.",
)
