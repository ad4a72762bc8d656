"""The environment's monthly AWS Budgets budget, alerting on actual and forecast spend."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_aws as aws


@dataclass(frozen=True)
class CostBudgetArgs:
    monthly_limit_usd: int
    actual_alert_percents: Sequence[int]
    forecast_alert_percents: Sequence[int]
    alert_topic_arn: pulumi.Input[str]
    scope: Literal["account", "environment-tag"]
    environment: str
    tags: Mapping[str, str]


def budget_filters(
    scope: Literal["account", "environment-tag"], environment: str
) -> list[aws.budgets.BudgetCostFilterArgs]:
    """Which spend the budget counts: the whole account, or only this environment's tag."""
    if scope == "account":
        return []
    # Budgets name user-defined cost allocation tags `user:<key>`, and a value as `$<value>`.
    return [
        aws.budgets.BudgetCostFilterArgs(
            name="TagKeyValue", values=[f"user:mlops:environment${environment}"]
        )
    ]


class CostBudget(pulumi.ComponentResource):
    TYPE = "mlops:cost_budget:CostBudget"

    def __init__(
        self, name: str, args: CostBudgetArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(self.TYPE, name, None, opts)
        notifications = [
            aws.budgets.BudgetNotificationArgs(
                comparison_operator="GREATER_THAN",
                threshold=float(percent),
                threshold_type="PERCENTAGE",
                notification_type=kind,
                subscriber_sns_topic_arns=[args.alert_topic_arn],
            )
            for kind, percents in (
                ("ACTUAL", args.actual_alert_percents),
                ("FORECASTED", args.forecast_alert_percents),
            )
            for percent in sorted(set(percents))
        ]
        aws.budgets.Budget(
            f"{name}-budget",
            budget_type="COST",
            limit_amount=str(args.monthly_limit_usd),
            limit_unit="USD",
            time_unit="MONTHLY",
            cost_filters=budget_filters(args.scope, args.environment),
            notifications=notifications,
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({})
