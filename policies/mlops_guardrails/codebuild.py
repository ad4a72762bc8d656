"""CodeBuild rules: the deploy runner runs trusted code only, unprivileged, logged, encrypted."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any, Final

from pulumi_policy import ResourceValidationArgs, Severity

from mlops_guardrails.frameworks import aws_fsbp
from mlops_guardrails.props import is_true, items, mapping
from mlops_guardrails.rule import resource_rule

PROJECT: Final = "aws:codebuild/project:Project"
WEBHOOK: Final = "aws:codebuild/webhook:Webhook"
AWS_MANAGED_S3_KEY: Final = re.compile(r"(^|:)alias/aws/s3$")
CREDENTIAL_NAME: Final = re.compile(
    r"(ACCESS_KEY|SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL|PRIVATE_KEY)", re.IGNORECASE
)
URL_WITH_CREDENTIALS: Final = re.compile(r"^[a-z][a-z0-9+.-]*://[^/@]+@", re.IGNORECASE)
PULL_REQUEST_EVENT: Final = re.compile(r"PULL_REQUEST_", re.IGNORECASE)


def _hardened(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    environment = mapping(props.get("environment"))
    if is_true(environment.get("privilegedMode")):
        yield "builds run privileged: a job can reach the host's Docker daemon"
    cloudwatch = mapping(mapping(props.get("logsConfig")).get("cloudwatchLogs"))
    s3_logs = mapping(mapping(props.get("logsConfig")).get("s3Logs"))
    if cloudwatch.get("status") == "DISABLED" and s3_logs.get("status") != "ENABLED":
        yield "build logs are off: nothing records what a deploy job did"
    key = str(props.get("encryptionKey") or "")
    if not key or AWS_MANAGED_S3_KEY.search(key):
        yield "what CodeBuild stores for a build is encrypted with the AWS managed key"


def _no_plaintext_credentials(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    for source in [
        mapping(props.get("source")),
        *map(mapping, items(props.get("secondarySources"))),
    ]:
        if URL_WITH_CREDENTIALS.match(str(source.get("location") or "")):
            yield "a source URL carries credentials"
    variables = items(mapping(props.get("environment")).get("environmentVariables"))
    for variable in map(mapping, variables):
        name = str(variable.get("name") or "")
        if variable.get("type", "PLAINTEXT") == "PLAINTEXT" and CREDENTIAL_NAME.search(name):
            yield f"environment variable {name} holds a credential in plain text"


def _trusted_events(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    for group in items(props.get("filterGroups")):
        for entry in map(mapping, items(mapping(group).get("filters"))):
            if (
                entry.get("type") == "EVENT"
                and not is_true(entry.get("excludeMatchedPattern"))
                and PULL_REQUEST_EVENT.search(str(entry.get("pattern") or ""))
            ):
                yield (
                    "pull requests start builds: their code runs with the project's role "
                    "and network"
                )


RULES = [
    resource_rule(
        name="codebuild-project-hardened",
        description="CodeBuild projects build unprivileged, log every build and encrypt what "
        "they store with a customer-managed key.",
        resource_types={PROJECT},
        check=_hardened,
        severity=Severity.HIGH,
        framework=aws_fsbp("CodeBuild.5"),
        remediation="Set environment.privileged_mode=False, logs_config.cloudwatch_logs with "
        "status ENABLED, and encryption_key to a customer-managed key.",
    ),
    resource_rule(
        name="codebuild-no-plaintext-credentials",
        description="CodeBuild projects hold no credentials in source URLs or plain-text "
        "environment variables.",
        resource_types={PROJECT},
        check=_no_plaintext_credentials,
        severity=Severity.CRITICAL,
        framework=aws_fsbp("CodeBuild.2"),
        remediation="Authenticate the source with a CodeConnections connection; pass secrets "
        "as SECRETS_MANAGER or PARAMETER_STORE variables, or get AWS credentials by OIDC.",
    ),
    resource_rule(
        name="codebuild-webhook-trusted-events",
        description="CodeBuild webhooks never start builds for pull requests, whose code is "
        "not yet reviewed.",
        resource_types={WEBHOOK},
        check=_trusted_events,
        severity=Severity.HIGH,
        remediation="Filter on WORKFLOW_JOB_QUEUED (runners) or PUSH; review pull requests "
        "offline and with a read-only preview role outside the VPC.",
    ),
]
