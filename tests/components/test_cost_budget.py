"""The environment budget in each stack's plan."""

from __future__ import annotations

import yaml

from components.cost_budget import budget_filters
from mlops_platform.rendered import RenderedStack
from tests.conftest import REPO_ROOT


def test_each_environment_has_its_configured_monthly_budget(rendered: RenderedStack) -> None:
    [budget] = rendered.of_type("aws:budgets/budget:Budget")
    stack_file = yaml.safe_load((REPO_ROOT / f"Pulumi.{rendered.stack}.yaml").read_text())
    limit = stack_file["config"]["mlops-platform:platform"]["cost"]["monthlyBudgetUsd"]
    assert (budget.inputs["budgetType"], budget.inputs["timeUnit"]) == ("COST", "MONTHLY")
    assert (budget.inputs["limitAmount"], budget.inputs["limitUnit"]) == (str(limit), "USD")


def test_budget_alerts_go_to_the_alert_topic(rendered_stacks: dict[str, RenderedStack]) -> None:
    prod = rendered_stacks["prod"]
    [budget] = prod.of_type("aws:budgets/budget:Budget")
    [topic] = prod.of_type("aws:sns/topic:Topic")
    alerts = sorted((n["notificationType"], n["threshold"]) for n in budget.inputs["notifications"])
    assert alerts == [
        ("ACTUAL", 50),
        ("ACTUAL", 80),
        ("ACTUAL", 100),
        ("FORECASTED", 100),
        ("FORECASTED", 120),
    ]
    for notification in budget.inputs["notifications"]:
        assert notification["subscriberSnsTopicArns"] == [topic.outputs["arn"]]
        assert notification["comparisonOperator"] == "GREATER_THAN"
        assert notification["thresholdType"] == "PERCENTAGE"


def test_an_account_budget_counts_everything_a_tag_budget_only_its_environment() -> None:
    assert budget_filters("account", "prod") == []
    [tag_filter] = budget_filters("environment-tag", "prod")
    assert (tag_filter.name, tag_filter.values) == (
        "TagKeyValue",
        ["user:mlops:environment$prod"],
    )
