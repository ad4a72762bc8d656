"""The alert topic in each stack's plan, and its subscriptions."""

from __future__ import annotations

import json

from components.alert_topic import AlertSubscription, AlertTopic, AlertTopicArgs
from mlops_platform.rendered import RenderedStack
from tests.conftest import named, run_component

TOPIC = "aws:sns/topic:Topic"
SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"


def test_the_topic_is_encrypted_under_the_monitoring_key(rendered: RenderedStack) -> None:
    [topic] = rendered.of_type(TOPIC)
    key = named(rendered, "aws:kms/key:Key", "monitoring-key")
    assert topic.inputs["kmsMasterKeyId"] == key.outputs["arn"]
    assert rendered.outputs["alertTopicArn"] == topic.outputs["arn"]


def test_the_topic_policy_is_built_for_the_topic_and_the_account(rendered: RenderedStack) -> None:
    [topic] = rendered.of_type(TOPIC)
    [policy] = rendered.of_type("aws:sns/topicPolicy:TopicPolicy")
    statements = json.loads(policy.inputs["policy"])["Statement"]
    assert {s["Resource"] for s in statements} == {topic.outputs["arn"]}
    assert statements[0]["Condition"]["StringEquals"]["aws:SourceAccount"] == "123456789012"


def test_prod_alerts_reach_the_on_call_address(rendered_stacks: dict[str, RenderedStack]) -> None:
    [subscription] = rendered_stacks["prod"].of_type(SUBSCRIPTION)
    assert (subscription.inputs["protocol"], subscription.inputs["endpoint"]) == (
        "email",
        "ml-platform-oncall@example.com",
    )
    assert rendered_stacks["dev"].of_type(SUBSCRIPTION) == []


def test_reordering_subscriptions_in_config_replaces_none() -> None:
    pager = AlertSubscription("https", "https://events.example.com/v2/enqueue")
    mail = AlertSubscription("email", "team@example.com")

    def names(order: tuple[AlertSubscription, ...]) -> set[str]:
        rendered = run_component(
            lambda: AlertTopic(
                "alerts", AlertTopicArgs(kms_key_arn="arn:k", subscriptions=order, tags={})
            )
        )
        return {r.urn for r in rendered.of_type(SUBSCRIPTION)}

    assert names((pager, mail)) == names((mail, pager))
    assert len(names((pager, mail))) == 2
