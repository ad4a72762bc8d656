"""The alert topic: encrypted, published to only by the account's monitors, delivering to each
configured subscriber; and the topic every stack alerts through."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from components.alert_topic import AlertSubscription, AlertTopic, AlertTopicArgs
from infra.config import ConfigError
from mlops_guardrails.export import SECRET_SIG, SECRET_SIG_KEY
from mlops_platform.engine import render_stack
from mlops_platform.project import PulumiProject
from mlops_platform.rendered import SECRET_PLACEHOLDER, RenderedStack
from tests.components.data_fixtures import ACCOUNT, KEY_ARN, TAGS
from tests.configs import stack_platform_config
from tests.conftest import named, run_component

TOPIC = "aws:sns/topic:Topic"
SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"
PAGER = AlertSubscription(
    "https", "https://events.example.com/v2/enqueue", "https://events.example.com/v2/enqueue"
)
MAIL = AlertSubscription("email", "team@example.com", "team@example.com")


def render_topic(*subscriptions: AlertSubscription) -> RenderedStack:
    args = AlertTopicArgs(kms_key_arn=KEY_ARN, subscriptions=subscriptions, tags=TAGS)
    return run_component(lambda: AlertTopic("alerts", args))


@pytest.fixture(scope="module")
def alerts() -> RenderedStack:
    return render_topic(PAGER, MAIL)


def test_the_topic_is_encrypted_under_the_key_it_is_given(alerts: RenderedStack) -> None:
    [topic] = alerts.of_type(TOPIC)
    assert topic.inputs["kmsMasterKeyId"] == KEY_ARN
    assert topic.inputs["tags"] == TAGS
    [component] = alerts.of_type(AlertTopic.TYPE)
    assert component.outputs == {"arn": topic.outputs["arn"]}


def test_only_this_accounts_monitors_may_publish_to_the_topic(alerts: RenderedStack) -> None:
    [topic] = alerts.of_type(TOPIC)
    [policy] = alerts.of_type("aws:sns/topicPolicy:TopicPolicy")
    assert policy.inputs["arn"] == topic.outputs["arn"]
    statements = json.loads(policy.inputs["policy"])["Statement"]
    assert {s["Resource"] for s in statements} == {topic.outputs["arn"]}
    assert statements[0]["Condition"]["StringEquals"]["aws:SourceAccount"] == ACCOUNT


@pytest.mark.parametrize(
    "subscriptions", [(), (MAIL,), (PAGER, MAIL)], ids=["none", "email", "https-and-email"]
)
def test_alerts_reach_exactly_the_configured_subscribers(
    subscriptions: tuple[AlertSubscription, ...],
) -> None:
    rendered = render_topic(*subscriptions)
    [topic] = rendered.of_type(TOPIC)
    delivered = rendered.of_type(SUBSCRIPTION)
    assert sorted((s.inputs["protocol"], s.inputs["endpoint"]) for s in delivered) == sorted(
        (s.protocol, s.endpoint) for s in subscriptions
    )
    assert all(s.inputs["topic"] == topic.outputs["arn"] for s in delivered)


def test_reordering_subscriptions_in_config_replaces_none(alerts: RenderedStack) -> None:
    # A replaced email subscription would have to be confirmed again by its recipient.
    reordered = render_topic(MAIL, PAGER)
    urns = {r.urn for r in alerts.of_type(SUBSCRIPTION)}
    assert urns == {r.urn for r in reordered.of_type(SUBSCRIPTION)}
    assert len(urns) == 2


def test_every_stack_encrypts_its_alert_topic_under_the_monitoring_key(
    rendered: RenderedStack,
) -> None:
    [topic] = rendered.of_type(TOPIC)
    key = named(rendered, "aws:kms/key:Key", "monitoring-key")
    assert topic.inputs["kmsMasterKeyId"] == key.outputs["arn"]
    assert rendered.outputs["alertTopicArn"] == topic.outputs["arn"]


def test_every_stack_alerts_exactly_the_subscribers_its_config_names(
    rendered: RenderedStack, project: PulumiProject
) -> None:
    configured = stack_platform_config(project, rendered.stack).monitoring.subscriptions
    delivered = rendered.of_type(SUBSCRIPTION)
    assert sorted((s.inputs["protocol"], s.inputs["endpoint"]) for s in delivered) == sorted(
        (s.protocol, s.endpoint) for s in configured
    )


def test_a_secret_endpoint_stays_secret_and_names_nothing_after_its_value(
    make_project: Callable[[str, str], PulumiProject],
) -> None:
    """A webhook URL with a token lives under its own secret config key: it reaches the
    subscription as a Pulumi secret, its resource is named after the key, and the plan file
    shows a placeholder."""
    project = make_project(
        "dev",
        """
        config:
          aws:region: eu-west-1
          mlops-platform:pagerWebhook:
            secure: v1:AAAA
          mlops-platform:platform:
            environment: dev
            eks: {endpoint: {publicAccessCidrs: ["203.0.113.0/24"]}}
            monitoring:
              subscriptions:
                - {protocol: https, endpointSecret: pagerWebhook}
        """,
    )
    rendered = render_stack(project, "dev")
    [subscription] = rendered.of_type(SUBSCRIPTION)
    assert subscription.inputs["endpoint"][SECRET_SIG_KEY] == SECRET_SIG
    assert "pagerWebhook" not in subscription.name  # hashed: the key, never the value
    plan = rendered.dump()
    assert "not decrypted offline" not in plan and SECRET_PLACEHOLDER in plan


@pytest.mark.parametrize(
    ("platform_extra", "problem"),
    [
        (
            "monitoring: {subscriptions: [{protocol: https, endpointSecret: pagerWebhook}]}",
            "monitoring.subscriptions[0].endpointSecret: mlops-platform:pagerWebhook is not set "
            "as a secret in Pulumi.dev.yaml",
        ),
        (
            "tags: {owner: {secure: v1:BBBB}}",
            "mlops-platform:platform: holds a secret",
        ),
    ],
    ids=["secret-key-missing", "secret-inside-the-platform-value"],
)
def test_secrets_are_refused_where_they_would_not_stay_secret(
    make_project: Callable[[str, str], PulumiProject],
    platform_extra: str,
    problem: str,
) -> None:
    project = make_project(
        "dev",
        f"""
        config:
          aws:region: eu-west-1
          mlops-platform:platform:
            environment: dev
            eks: {{endpoint: {{publicAccessCidrs: ["203.0.113.0/24"]}}}}
            {platform_extra}
        """,
    )
    with pytest.raises(ConfigError) as raised:
        render_stack(project, "dev")
    assert any(problem in found for found in raised.value.problems)
