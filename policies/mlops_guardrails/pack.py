"""The pack's identity and its rules, in one list `__main__.py` hands to PolicyPack."""

from __future__ import annotations

from typing import Final

from pulumi_policy import Policy

from mlops_guardrails import kms, s3

PACK_NAME: Final = "mlops-guardrails"

POLICIES: Final[list[Policy]] = [
    s3.sse_kms_customer_key,
    s3.public_access_block,
    s3.bucket_guards,
    kms.key_rotation,
]
