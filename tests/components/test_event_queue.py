"""EventBridge into SQS: what cannot be delivered or consumed is kept, and only the queue's own
rules may write to it, over TLS, under the encryption asked for."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.common import ComponentArgsError
from components.event_queue import EventQueue, EventQueueArgs, s3_object_created
from mlops_platform.rendered import RecordedResource, RenderedStack
from tests.components.data_fixtures import KEY_ARN, TAGS
from tests.conftest import named, run_component

QUEUE = "aws:sqs/queue:Queue"
RULE = "aws:cloudwatch/eventRule:EventRule"
TARGET = "aws:cloudwatch/eventTarget:EventTarget"
POLICY = "aws:sqs/queuePolicy:QueuePolicy"


def event_queue(**overrides: Any) -> RenderedStack:
    def make() -> EventQueue:
        # Outputs belong to the render that makes them: the pattern is built inside it.
        args: dict[str, Any] = {
            "patterns": {"created": s3_object_created("models-bucket")},
            "description": "new models",
            "retention_seconds": 345600,
            "max_event_age_seconds": 86400,
            "tags": TAGS,
            **overrides,
        }
        return EventQueue("events", EventQueueArgs(**args))

    return run_component(make)


@pytest.fixture(scope="module")
def customer_key() -> RenderedStack:
    return event_queue(kms_key_arn=KEY_ARN, max_receive_count=5, visibility_seconds=300)


@pytest.fixture(scope="module")
def sqs_managed() -> RenderedStack:
    return event_queue(
        patterns={"spot": {"source": ["aws.ec2"]}, "health": {"source": ["aws.health"]}},
        retention_seconds=300,
        max_event_age_seconds=300,
    )


def queues(rendered: RenderedStack) -> tuple[RecordedResource, RecordedResource]:
    return named(rendered, QUEUE, "events-queue"), named(rendered, QUEUE, "events-dead-letter")


def test_new_objects_of_the_bucket_are_what_the_rule_matches(customer_key: RenderedStack) -> None:
    [rule] = customer_key.of_type(RULE)
    assert json.loads(rule.inputs["eventPattern"]) == {
        "detail": {"bucket": {"name": ["models-bucket"]}},
        "detail-type": ["Object Created"],
        "source": ["aws.s3"],
    }


def test_both_queues_are_under_the_customer_key_and_failures_go_to_the_dead_letter_queue(
    customer_key: RenderedStack,
) -> None:
    queue, dead_letter = queues(customer_key)
    for made in (queue, dead_letter):
        assert made.inputs["kmsMasterKeyId"] == KEY_ARN
        assert "sqsManagedSseEnabled" not in made.inputs
    assert dead_letter.inputs["messageRetentionSeconds"] == 14 * 24 * 3600
    # A consumer that takes minutes per message does not see it twice.
    assert queue.inputs["visibilityTimeoutSeconds"] == 300
    assert json.loads(queue.inputs["redrivePolicy"]) == {
        "deadLetterTargetArn": dead_letter.outputs["arn"],
        "maxReceiveCount": 5,
    }
    [target] = customer_key.of_type(TARGET)
    assert target.inputs["deadLetterConfig"] == {"arn": dead_letter.outputs["arn"]}
    assert target.inputs["retryPolicy"] == {
        "maximumEventAgeInSeconds": 86400,
        "maximumRetryAttempts": 185,
    }
    # EventBridge writes by the queue policy: a role may fail under a customer key.
    assert "roleArn" not in target.inputs


def test_only_the_queues_own_rules_may_write_and_only_over_tls(sqs_managed: RenderedStack) -> None:
    rules = sorted(r.outputs["arn"] for r in sqs_managed.of_type(RULE))
    for role, made in zip(("queue", "dead-letter"), queues(sqs_managed), strict=True):
        policy = named(sqs_managed, POLICY, f"events-{role}")
        [allow, deny] = json.loads(policy.inputs["policy"])["Statement"]
        assert allow["Resource"] == deny["Resource"] == made.outputs["arn"]
        assert allow["Principal"] == {"Service": "events.amazonaws.com"}
        assert allow["Condition"] == {"ArnEquals": {"aws:SourceArn": rules}}
        assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_without_a_key_sqs_encrypts_and_messages_stay_until_they_expire(
    sqs_managed: RenderedStack,
) -> None:
    queue, dead_letter = queues(sqs_managed)
    assert (
        queue.inputs["sqsManagedSseEnabled"] is dead_letter.inputs["sqsManagedSseEnabled"] is True
    )
    assert "redrivePolicy" not in queue.inputs
    assert len(sqs_managed.of_type(TARGET)) == 2


@pytest.mark.parametrize(
    ("setting", "refusal"),
    [
        ({"max_event_age_seconds": 4 * 86400}, "EventBridge retries for 60 to 86400 seconds"),
        ({"retention_seconds": 30}, "SQS keeps messages 60 to 1209600 seconds"),
    ],
)
def test_settings_aws_refuses_are_refused_before_anything_is_made(
    setting: dict[str, int], refusal: str
) -> None:
    with pytest.raises(ComponentArgsError, match=refusal):
        event_queue(**setting)
