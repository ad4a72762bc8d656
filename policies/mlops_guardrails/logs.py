"""CloudWatch Logs rules."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

from pulumi_policy import ResourceValidationArgs, Severity

from mlops_guardrails.rule import resource_rule, setting

LOG_GROUP: Final = "aws:cloudwatch/logGroup:LogGroup"
TUNABLES: Final = {
    "minimumRetentionDays": {
        "type": "integer",
        "minimum": 1,
        "default": 90,
        "description": "Shortest retention a log group may have.",
    }
}


def _encrypted_and_retained(
    props: Mapping[str, Any], args: ResourceValidationArgs
) -> Iterator[str]:
    if not props.get("kmsKeyId"):
        yield "log group is not encrypted with a customer-managed KMS key"
    days = props.get("retentionInDays") or 0
    minimum = setting(args, TUNABLES, "minimumRetentionDays")
    if days == 0:
        yield "log group keeps events forever: set a retention"
    elif days < minimum:
        yield f"retention is {days:g} days; at least {minimum:g} required here"


RULES = [
    resource_rule(
        name="logs-encrypted-and-retained",
        description="Log groups are KMS-encrypted and keep events for a set, long-enough time.",
        resource_types={LOG_GROUP},
        check=_encrypted_and_retained,
        severity=Severity.MEDIUM,
        remediation=(
            "Set kms_key_id (the key policy must allow logs.<region>.amazonaws.com) and "
            "retention_in_days."
        ),
        tunables=TUNABLES,
    ),
]
