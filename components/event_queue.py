"""An SQS queue that EventBridge rules deliver into, with a dead-letter queue for what cannot be
delivered or consumed.

EventBridge retries a failed delivery for up to a day and then drops the event unless its target
names a dead-letter queue; a consumer that keeps failing on a message would otherwise hold it
until it expires. Both end in the dead-letter queue here, kept 14 days (SQS's most), under the
queue's own encryption. EventBridge writes with the queues' resource policies, which admit it
only for these rules (`aws:SourceArn`), never with a role: AWS warns a role may fail for queues
under a customer key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import pulumi
import pulumi_aws as aws

from components.common import ComponentArgsError
from components.policy_documents import event_queue_policy

DEAD_LETTER_RETENTION_SECONDS: Final = 14 * 24 * 3600
EVENTBRIDGE_MAX_RETRIES: Final = 185
"""EventBridge's most (and default): the event's age is what ends the retries."""
MAX_EVENT_AGE_SECONDS: Final = 24 * 3600
"""The longest EventBridge retries a delivery (PutTargets' MaximumEventAgeInSeconds: 60 to
86,400)."""
SQS_RETENTION_SECONDS: Final = range(60, DEAD_LETTER_RETENTION_SECONDS + 1)
"""What SQS keeps messages for (MessageRetentionPeriod: a minute to 14 days)."""


def s3_object_created(bucket_name: pulumi.Input[str]) -> pulumi.Output[dict[str, Any]]:
    """New objects in a bucket that sends its events to EventBridge (the S3 guide, "Amazon
    EventBridge event message structure": detail-type "Object Created", for puts, posts, copies
    and completed multipart uploads)."""
    return pulumi.Output.from_input(bucket_name).apply(
        lambda name: {
            "source": ["aws.s3"],
            "detail-type": ["Object Created"],
            "detail": {"bucket": {"name": [name]}},
        }
    )


@dataclass(frozen=True)
class EventQueueArgs:
    patterns: Mapping[str, pulumi.Input[Mapping[str, Any]]]
    """EventBridge event patterns on the default bus, by the role each rule is named for."""
    description: str
    retention_seconds: int
    """How long a message waits for its consumer."""
    max_event_age_seconds: int
    """How long EventBridge keeps retrying a delivery before the dead-letter queue takes it."""
    tags: Mapping[str, str]
    kms_key_arn: pulumi.Input[str] | None = None
    """A customer key whose policy lets EventBridge use it; None: SQS-managed encryption."""
    visibility_seconds: int = 30
    """How long a received message stays hidden from other consumers (SQS's default): set it
    above the consumer's work on one message, or it is received twice."""
    max_receive_count: int | None = None
    """Receives after which a message goes to the dead-letter queue; None: it stays until it
    expires (a consumer that deletes what it handles and lets the rest expire)."""


class EventQueue(pulumi.ComponentResource):
    TYPE = "mlops:event_queue:EventQueue"

    queue_arn: pulumi.Output[str]
    queue_url: pulumi.Output[str]
    queue_name: pulumi.Output[str]
    dead_letter_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: EventQueueArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(self.TYPE, name, None, opts)
        if not 60 <= args.max_event_age_seconds <= MAX_EVENT_AGE_SECONDS:
            raise ComponentArgsError(
                self.TYPE, name, f"EventBridge retries for 60 to {MAX_EVENT_AGE_SECONDS} seconds"
            )
        if args.retention_seconds not in SQS_RETENTION_SECONDS:
            raise ComponentArgsError(
                self.TYPE, name, f"SQS keeps messages 60 to {DEAD_LETTER_RETENTION_SECONDS} seconds"
            )
        child = pulumi.ResourceOptions(parent=self)
        encryption: dict[str, Any] = (
            {"kms_master_key_id": args.kms_key_arn}
            if args.kms_key_arn is not None
            else {"sqs_managed_sse_enabled": True}
        )
        dead_letter = aws.sqs.Queue(
            f"{name}-dead-letter",
            message_retention_seconds=DEAD_LETTER_RETENTION_SECONDS,
            tags=dict(args.tags),
            opts=child,
            **encryption,
        )
        redrive = (
            None
            if args.max_receive_count is None
            else pulumi.Output.json_dumps(
                {"deadLetterTargetArn": dead_letter.arn, "maxReceiveCount": args.max_receive_count}
            )
        )
        queue = aws.sqs.Queue(
            f"{name}-queue",
            message_retention_seconds=args.retention_seconds,
            visibility_timeout_seconds=args.visibility_seconds,
            redrive_policy=redrive,
            tags=dict(args.tags),
            opts=child,
            **encryption,
        )
        rules = []
        for role, pattern in args.patterns.items():
            rule = aws.cloudwatch.EventRule(
                f"{name}-{role}",
                description=f"{args.description}: {role}",
                event_pattern=pulumi.Output.json_dumps(pattern, sort_keys=True),
                tags=dict(args.tags),
                opts=child,
            )
            aws.cloudwatch.EventTarget(
                f"{name}-{role}",
                rule=rule.name,
                arn=queue.arn,
                dead_letter_config=aws.cloudwatch.EventTargetDeadLetterConfigArgs(
                    arn=dead_letter.arn
                ),
                retry_policy=aws.cloudwatch.EventTargetRetryPolicyArgs(
                    maximum_event_age_in_seconds=args.max_event_age_seconds,
                    maximum_retry_attempts=EVENTBRIDGE_MAX_RETRIES,
                ),
                opts=child,
            )
            rules.append(rule.arn)
        for role, target in (("queue", queue), ("dead-letter", dead_letter)):
            aws.sqs.QueuePolicy(
                f"{name}-{role}",
                queue_url=target.url,
                policy=pulumi.Output.json_dumps(
                    pulumi.Output.all(target.arn, *rules).apply(
                        lambda v: event_queue_policy(v[0], v[1:])
                    )
                ),
                opts=child,
            )
        self.queue_arn = queue.arn
        self.queue_url = queue.url
        self.queue_name = queue.name
        self.dead_letter_arn = dead_letter.arn
        self.register_outputs(
            {
                "queueArn": self.queue_arn,
                "queueUrl": self.queue_url,
                "deadLetterArn": self.dead_letter_arn,
            }
        )
