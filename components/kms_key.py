"""A customer-managed KMS key with rotation and a key policy that names who may use it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.common import ComponentArgsError, account_context, stateful_options
from components.policy_documents import KeyUse, key_policy

MIN_DELETION_WINDOW_DAYS = 7
MAX_DELETION_WINDOW_DAYS = 30


@dataclass(frozen=True)
class KmsKeyArgs:
    description: str
    """Shown in the console; say what the key encrypts."""
    deletion_window_days: int
    """Days between scheduling deletion and the key being destroyed (7-30)."""
    tags: Mapping[str, str]
    admin_role_arns: Sequence[str] = ()
    """Roles that may manage (not use) the key, besides the account's IAM delegation."""
    uses: Sequence[KeyUse] = ()
    """AWS services that use the key on the account's behalf."""
    protect: bool = False
    """Refuse deletion and replacement; keep the key if it leaves the stack."""


class KmsKey(pulumi.ComponentResource):
    TYPE = "mlops:kms_key:KmsKey"

    arn: pulumi.Output[str]
    key_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: KmsKeyArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(self.TYPE, name, None, opts)
        if not MIN_DELETION_WINDOW_DAYS <= args.deletion_window_days <= MAX_DELETION_WINDOW_DAYS:
            raise ComponentArgsError(
                self.TYPE,
                name,
                f"deletion_window_days must be {MIN_DELETION_WINDOW_DAYS}-"
                f"{MAX_DELETION_WINDOW_DAYS}, got {args.deletion_window_days}",
            )

        account = account_context(self)
        policy = pulumi.Output.all(account.account_id, account.partition, account.region).apply(
            lambda values: key_policy(
                account_id=values[0],
                partition=values[1],
                region=values[2],
                admin_role_arns=args.admin_role_arns,
                uses=args.uses,
            )
        )
        key = aws.kms.Key(
            f"{name}-key",
            description=args.description,
            enable_key_rotation=True,
            deletion_window_in_days=args.deletion_window_days,
            policy=pulumi.Output.json_dumps(policy),
            tags=dict(args.tags),
            opts=stateful_options(self, args.protect),
        )

        self.arn = key.arn
        self.key_id = key.key_id
        self.register_outputs({"arn": self.arn, "keyId": self.key_id})
