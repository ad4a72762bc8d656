"""Event delivery: EventBridge targets keep what they cannot deliver, SQS queue policies are not
public, and a queue under a customer key can be written by the services its policy admits."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

from pulumi_policy import ResourceValidationArgs, Severity, StackValidationArgs

from mlops_guardrails.frameworks import aws_fsbp
from mlops_guardrails.props import (
    action_matches,
    as_strings,
    is_open_to_anyone,
    mapping,
    policy_statements,
)
from mlops_guardrails.rule import resource_rule, stack_rule

EVENT_TARGET: Final = "aws:cloudwatch/eventTarget:EventTarget"
QUEUE: Final = "aws:sqs/queue:Queue"
QUEUE_POLICY: Final = "aws:sqs/queuePolicy:QueuePolicy"
KEY: Final = "aws:kms/key:Key"
# What SQS asks of KMS with a sender's permissions when it stores a message under a customer
# key (the SQS guide, "Configure KMS permissions for AWS services").
SENDER_KEY_ACTIONS: Final = ("kms:GenerateDataKey", "kms:Decrypt")


def _dead_letter(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    if not mapping(props.get("deadLetterConfig")).get("arn"):
        yield (
            "no dead-letter queue: an event EventBridge cannot deliver is dropped once its "
            "retries run out"
        )


def _queue_not_public(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    for statement in policy_statements(props.get("policy")):
        if is_open_to_anyone(statement):
            yield "the queue policy lets anyone use the queue"


def _service_senders(policy: Any) -> set[str]:
    """Service principals a queue policy lets send."""
    return {
        service
        for statement in policy_statements(policy)
        if statement.get("Effect") == "Allow"
        and any(action_matches(a, "sqs:SendMessage") for a in as_strings(statement.get("Action")))
        for service in as_strings(mapping(statement.get("Principal")).get("Service"))
    }


def _key_admits(key_policy: Any, service: str) -> bool:
    """Whether the key policy lets `service` itself take each action a sender needs."""
    allowed = [
        statement
        for statement in policy_statements(key_policy)
        if statement.get("Effect") == "Allow"
        and service in as_strings(mapping(statement.get("Principal")).get("Service"))
    ]
    return all(
        any(
            any(action_matches(pattern, action) for pattern in as_strings(s.get("Action")))
            for s in allowed
        )
        for action in SENDER_KEY_ACTIONS
    )


def _key_admits_senders(args: StackValidationArgs) -> Iterator[tuple[str, str]]:
    """A service that sends to a queue under a customer key uses the key with its own
    permissions: without the key policy's leave, every delivery fails, and nothing says so
    until the dead-letter queue fills (or, without one, never)."""
    keys = {r.urn: r for r in args.resources if r.resource_type == KEY}
    for policy in (r for r in args.resources if r.resource_type == QUEUE_POLICY):
        senders = _service_senders(policy.props.get("policy"))
        for queue in policy.property_dependencies.get("queueUrl", []):
            if queue.resource_type != QUEUE:
                continue
            for key in queue.property_dependencies.get("kmsMasterKeyId", []):
                if key.urn not in keys:
                    continue
                for service in sorted(senders):
                    if not _key_admits(keys[key.urn].props.get("policy"), service):
                        yield (
                            f"queue {queue.name} admits {service}, but its key {key.name} "
                            f"does not let {service} use it: every message it sends fails",
                            queue.urn,
                        )


RULES = [
    resource_rule(
        name="eventbridge-target-dead-letter",
        description="EventBridge targets keep the events they cannot deliver in a dead-letter "
        "queue.",
        resource_types={EVENT_TARGET},
        check=_dead_letter,
        severity=Severity.MEDIUM,
        remediation="Set dead_letter_config to a queue whose policy admits the rule "
        "(components.event_queue does).",
        live=True,
    ),
    resource_rule(
        name="sqs-queue-not-public",
        description="No SQS queue policy lets anyone use the queue.",
        resource_types={QUEUE_POLICY},
        check=_queue_not_public,
        severity=Severity.CRITICAL,
        framework=aws_fsbp("SQS.3"),
        remediation="Name the principals, and admit services for your resources only "
        "(aws:SourceArn).",
        live=True,
    ),
    stack_rule(
        name="sqs-key-admits-senders",
        description="A queue under a customer key can be written by every service its policy "
        "admits: the key policy lets each use the key.",
        resource_types={QUEUE, QUEUE_POLICY, KEY},
        check=_key_admits_senders,
        severity=Severity.HIGH,
        remediation="Give the key the sender's use (components.policy_documents.KeyUse, e.g. "
        "EVENT_RULES for EventBridge).",
    ),
]
