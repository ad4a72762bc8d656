"""The pack's identity and its rules, in one list `__main__.py` hands to PolicyPack."""

from __future__ import annotations

from typing import Final

from pulumi_policy import Policy

from mlops_guardrails import (
    alerting,
    cluster,
    codebuild,
    compute,
    data,
    delivery,
    ecr,
    eks,
    events,
    hygiene,
    iam,
    kms,
    kubernetes,
    logs,
    network,
    s3,
)
from mlops_guardrails.rule import RULE_METADATA, RuleMetadata

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
    *events.RULES,
    *kubernetes.RULES,
    *cluster.RULES,
    *delivery.RULES,
    *alerting.RULES,
    *codebuild.RULES,
    *hygiene.RULES,
]

RULES_BY_NAME: Final[dict[str, RuleMetadata]] = {p.name: RULE_METADATA[p.name] for p in POLICIES}
"""What other runners (the audit, reports) need to know of each rule in the pack."""
LIVE_RULES: Final = frozenset(name for name, rule in RULES_BY_NAME.items() if rule.live)
"""The rules `mlops-platform audit` applies to resources read back from AWS."""
