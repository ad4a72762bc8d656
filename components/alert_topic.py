"""The environment's alert topic: KMS-encrypted SNS that only this account's monitors publish to."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.common import account_context
from components.policy_documents import alert_topic_policy


@dataclass(frozen=True)
class AlertSubscription:
    protocol: str
    """email, https, sqs or lambda."""
    endpoint: pulumi.Input[str]
    """A secret Output for an endpoint that is itself a credential (a webhook URL with a
    token): it stays secret in state and in the plan."""
    identity: str
    """Names the subscription's resource, so reordering the config list replaces nothing (a
    replaced email subscription would have to be confirmed again): the endpoint for a plain one,
    the config key holding it for a secret one, never the secret."""


@dataclass(frozen=True)
class AlertTopicArgs:
    kms_key_arn: pulumi.Input[str]
    """A customer key whose policy lets the alert publishers use it (KeyUse.ALERT_PUBLISHERS);
    the AWS-managed SNS key would silently drop CloudWatch and Budgets alerts."""
    subscriptions: Sequence[AlertSubscription]
    tags: Mapping[str, str]


class AlertTopic(pulumi.ComponentResource):
    TYPE = "mlops:alert_topic:AlertTopic"

    arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: AlertTopicArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(self.TYPE, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        topic = aws.sns.Topic(
            f"{name}-topic",
            kms_master_key_id=args.kms_key_arn,
            tags=dict(args.tags),
            opts=child,
        )
        account = account_context(self)
        aws.sns.TopicPolicy(
            f"{name}-policy",
            arn=topic.arn,
            policy=pulumi.Output.json_dumps(
                pulumi.Output.all(topic.arn, account.account_id).apply(
                    lambda values: alert_topic_policy(topic_arn=values[0], account_id=values[1])
                )
            ),
            opts=child,
        )
        for subscription in args.subscriptions:
            endpoint_id = hashlib.sha256(subscription.identity.encode()).hexdigest()[:8]
            aws.sns.TopicSubscription(
                f"{name}-{subscription.protocol}-{endpoint_id}",
                topic=topic.arn,
                protocol=subscription.protocol,
                endpoint=subscription.endpoint,
                opts=child,
            )
        self.arn = topic.arn
        self.register_outputs({"arn": self.arn})
