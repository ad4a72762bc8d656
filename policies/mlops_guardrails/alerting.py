"""Alerting and cost guardrails: encrypted alert topics only monitors publish to, delivered over
TLS; an encrypted, logged metrics workspace; and a budget that alerts in every environment."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

from pulumi_policy import ResourceValidationArgs, Severity, StackValidationArgs

from mlops_guardrails.frameworks import aws_fsbp
from mlops_guardrails.props import is_open_to_anyone, items, mapping, policy_statements
from mlops_guardrails.rule import resource_rule, stack_rule

TOPIC: Final = "aws:sns/topic:Topic"
TOPIC_POLICY: Final = "aws:sns/topicPolicy:TopicPolicy"
SUBSCRIPTION: Final = "aws:sns/topicSubscription:TopicSubscription"
WORKSPACE: Final = "aws:amp/workspace:Workspace"
CLUSTER: Final = "aws:eks/cluster:Cluster"
BUDGET: Final = "aws:budgets/budget:Budget"
STACK: Final = "pulumi:pulumi:Stack"
AWS_MANAGED_SNS_KEY: Final = "alias/aws/sns"
SOURCE_KEYS: Final = ("aws:sourceaccount", "aws:sourcearn", "aws:sourceorgid")


def _topic_encrypted(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    key = props.get("kmsMasterKeyId")
    if not key:
        yield "the topic is not encrypted at rest"
    elif str(key).endswith(AWS_MANAGED_SNS_KEY):
        yield (
            "the AWS-managed SNS key cannot let CloudWatch alarms or Budgets publish: their "
            "alerts would be dropped; use a customer key"
        )


def _conditioned_on_source(statement: Mapping[str, Any]) -> bool:
    return any(
        key.lower() in SOURCE_KEYS
        for operator in mapping(statement.get("Condition")).values()
        for key in mapping(operator)
    )


def _topic_policy_scoped(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    for statement in policy_statements(props.get("policy")):
        sid = statement.get("Sid", "(no Sid)")
        if is_open_to_anyone(statement):
            yield f"statement {sid!r} lets anyone use the topic"
        elif (
            statement.get("Effect") == "Allow"
            and "Service" in mapping(statement.get("Principal"))
            and not _conditioned_on_source(statement)
        ):
            yield (
                f"statement {sid!r} lets an AWS service publish for any account (confused "
                "deputy): add an aws:SourceAccount or aws:SourceArn condition"
            )


def _subscription_transport(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    if props.get("protocol") == "http":
        yield "an http subscription delivers alerts unencrypted; use https"


def _workspace_guarded(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    if not props.get("kmsKeyArn"):
        yield "the workspace's metrics are encrypted with an AWS-owned key, not the platform's"
    if not mapping(props.get("loggingConfiguration")).get("logGroupArn"):
        yield "rule and alert manager errors are not logged: failing alerts would go unnoticed"


def _budget_alerts(args: StackValidationArgs) -> Iterator[tuple[str, str]]:
    """Judged on the stack that makes the environment (its cluster): a model team's project,
    which deploys onto that environment, is counted in its budget."""
    if not any(r.resource_type == CLUSTER for r in args.resources):
        return
    stack = next((r.urn for r in args.resources if r.resource_type == STACK), "")
    budgets = [r for r in args.resources if r.resource_type == BUDGET]
    alerting = [
        budget
        for budget in budgets
        if budget.props.get("budgetType", "COST") == "COST"
        and any(
            items(mapping(n).get("subscriberSnsTopicArns"))
            or items(mapping(n).get("subscriberEmailAddresses"))
            for n in items(budget.props.get("notifications"))
        )
    ]
    if not alerting:
        problem = "has no cost budget" if not budgets else "has no cost budget that alerts anyone"
        yield f"the environment {problem}: overspend would go unnoticed until the bill", stack


RULES = [
    resource_rule(
        name="sns-topic-encrypted",
        description="Alert topics are encrypted under a customer-managed key.",
        resource_types={TOPIC},
        check=_topic_encrypted,
        severity=Severity.HIGH,
        framework=aws_fsbp("SNS.1"),
        remediation=(
            "Set kms_master_key_id to a customer key whose policy allows the publishers "
            "(KeyUse.ALERT_PUBLISHERS)."
        ),
    ),
    resource_rule(
        name="sns-topic-policy-scoped",
        description="Only named principals, and services acting for this account, may publish.",
        resource_types={TOPIC_POLICY},
        check=_topic_policy_scoped,
        severity=Severity.HIGH,
        remediation=(
            "Name the publishing services and add aws:SourceAccount (see "
            "components.policy_documents.alert_topic_policy)."
        ),
    ),
    resource_rule(
        name="sns-subscription-encrypted-transport",
        description="Alert subscriptions deliver over encrypted transport.",
        resource_types={SUBSCRIPTION},
        check=_subscription_transport,
        severity=Severity.HIGH,
        remediation="Subscribe an https:// endpoint (or email, SQS, Lambda) instead of http.",
    ),
    resource_rule(
        name="amp-workspace-encrypted-and-logged",
        description="Prometheus workspaces use the platform's key and log rule and alert errors.",
        resource_types={WORKSPACE},
        check=_workspace_guarded,
        severity=Severity.MEDIUM,
        remediation="Set kms_key_arn and logging_configuration.log_group_arn on the workspace.",
    ),
    stack_rule(
        name="cost-budget-alerts",
        description="Every environment has a monthly cost budget that alerts someone.",
        resource_types={BUDGET, CLUSTER},
        check=_budget_alerts,
        severity=Severity.HIGH,
        remediation=(
            "Set `cost` in the stack config (components.cost_budget.CostBudget): a limit and "
            "alert thresholds, delivered to the alert topic."
        ),
    ),
]
