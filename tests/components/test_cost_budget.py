"""The environment budget: its limit, the spend it counts, the alerts it sends; and the budget
every stack sets from its config."""

from __future__ import annotations

import pytest

from components.cost_budget import CostBudget, CostBudgetArgs
from mlops_platform.project import PulumiProject
from mlops_platform.rendered import RecordedResource, RenderedStack
from tests.components.data_fixtures import TAGS, TOPIC_ARN
from tests.configs import stack_platform_config
from tests.conftest import run_component

BUDGET = "aws:budgets/budget:Budget"


def budget_args(**overrides: object) -> CostBudgetArgs:
    defaults: dict[str, object] = {
        "monthly_limit_usd": 3000,
        "actual_alert_percents": (50, 80, 100),
        "forecast_alert_percents": (100,),
        "alert_topic_arn": TOPIC_ARN,
        "scope": "account",
        "environment": "dev",
        "tags": TAGS,
    }
    return CostBudgetArgs(**{**defaults, **overrides})  # type: ignore[arg-type]


def render_budget(**overrides: object) -> RecordedResource:
    args = budget_args(**overrides)
    [budget] = run_component(lambda: CostBudget("cost", args)).of_type(BUDGET)
    return budget


def test_the_budget_is_a_monthly_cost_limit_in_usd() -> None:
    budget = render_budget(monthly_limit_usd=60000)
    assert (budget.inputs["budgetType"], budget.inputs["timeUnit"]) == ("COST", "MONTHLY")
    assert (budget.inputs["limitAmount"], budget.inputs["limitUnit"]) == ("60000", "USD")
    assert budget.inputs["tags"] == TAGS


@pytest.mark.parametrize(
    ("actual", "forecast", "alerts"),
    [
        (
            (50, 80, 100),
            (100, 120),
            [
                ("ACTUAL", 50),
                ("ACTUAL", 80),
                ("ACTUAL", 100),
                ("FORECASTED", 100),
                ("FORECASTED", 120),
            ],
        ),
        # Repeats and order in config change nothing: one alert per threshold, in order.
        ((100, 50, 100), (), [("ACTUAL", 50), ("ACTUAL", 100)]),
    ],
    ids=["actual-and-forecast", "repeated-actual-only"],
)
def test_spend_alerts_go_to_the_alert_topic_once_per_threshold(
    actual: tuple[int, ...], forecast: tuple[int, ...], alerts: list[tuple[str, int]]
) -> None:
    budget = render_budget(actual_alert_percents=actual, forecast_alert_percents=forecast)
    notifications = budget.inputs["notifications"]
    assert [(n["notificationType"], n["threshold"]) for n in notifications] == alerts
    for notification in notifications:
        assert notification["subscriberSnsTopicArns"] == [TOPIC_ARN]
        assert notification["comparisonOperator"] == "GREATER_THAN"
        assert notification["thresholdType"] == "PERCENTAGE"


@pytest.mark.parametrize(
    ("scope", "filters"),
    [
        ("account", []),
        ("environment-tag", [{"name": "TagKeyValue", "values": ["user:mlops:environment$prod"]}]),
    ],
)
def test_an_account_budget_counts_everything_a_tag_budget_only_its_environment(
    scope: str, filters: list[dict[str, object]]
) -> None:
    budget = render_budget(scope=scope, environment="prod")
    assert budget.inputs["costFilters"] == filters


def test_every_stack_budgets_what_its_config_names_and_alerts_its_own_topic(
    rendered: RenderedStack, project: PulumiProject
) -> None:
    cost = stack_platform_config(project, rendered.stack).cost
    [budget] = rendered.of_type(BUDGET)
    [topic] = rendered.of_type("aws:sns/topic:Topic")
    assert budget.inputs["limitAmount"] == str(cost.monthly_budget_usd)
    notifications = budget.inputs["notifications"]
    assert sorted((n["notificationType"], n["threshold"]) for n in notifications) == sorted(
        [("ACTUAL", p) for p in set(cost.alert_at_percent)]
        + [("FORECASTED", p) for p in set(cost.forecast_alert_at_percent)]
    )
    assert all(n["subscriberSnsTopicArns"] == [topic.outputs["arn"]] for n in notifications)
    assert bool(budget.inputs["costFilters"]) == (cost.scope == "environment-tag")
