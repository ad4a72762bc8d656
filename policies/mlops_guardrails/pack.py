"""The pack's identity and its rules, in one list `__main__.py` hands to PolicyPack."""

from __future__ import annotations

from typing import Final

from pulumi_policy import Policy

from mlops_guardrails import (
    alerting,
    compute,
    data,
    ecr,
    eks,
    hygiene,
    iam,
    kms,
    kubernetes,
    logs,
    network,
    s3,
)

PACK_NAME: Final = "mlops-guardrails"

POLICIES: Final[list[Policy]] = [
    *s3.RULES,
    *kms.RULES,
    *eks.RULES,
    *compute.RULES,
    *iam.RULES,
    *logs.RULES,
    *network.RULES,
    *ecr.RULES,
    *data.RULES,
    *kubernetes.RULES,
    *alerting.RULES,
    *hygiene.RULES,
]
