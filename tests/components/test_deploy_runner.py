"""The deploy runner: the one path into a private cluster's API, and a path only.

The cluster admits HTTPS from the runner's security group alone; the runner reaches out on HTTPS
only; its role can write its logs, attach to its subnets and check out through the connection,
and nothing that deploys; only queued workflow jobs start it, never pull-request events.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.deploy_runner import DeployRunner, DeployRunnerArgs
from components.network import NetworkRef
from mlops_platform.rendered import RenderedStack
from tests.components.data_fixtures import TAGS
from tests.conftest import named, run_component

CLUSTER_GROUP = "sg-0c1a57e25ec0000a1"
KEY = "arn:aws:kms:eu-west-1:123456789012:key/logs"
SUBNETS = ["subnet-0a", "subnet-0b"]
GROUP = "aws:ec2/securityGroup:SecurityGroup"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
PROJECT = "aws:codebuild/project:Project"


def runner_args(**overrides: Any) -> DeployRunnerArgs:
    defaults: dict[str, Any] = {
        "repository": "example-org/mlops-platform",
        "connection_name": "github",
        "network": NetworkRef("vpc-0f", SUBNETS, ["subnet-0p"]),
        "cluster_security_group_id": CLUSTER_GROUP,
        "kms_key_arn": KEY,
        "log_retention_days": 365,
        "compute_type": "BUILD_GENERAL1_MEDIUM",
        "build_timeout_minutes": 120,
        "tags": TAGS,
        "protect": True,
    }
    return DeployRunnerArgs(**{**defaults, **overrides})


@pytest.fixture(scope="module")
def runner() -> RenderedStack:
    return run_component(lambda: DeployRunner("deploy-runner", runner_args()))


def policy(runner: RenderedStack) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(
        named(runner, "aws:iam/rolePolicy:RolePolicy", "deploy-runner-policy").inputs["policy"]
    )
    return document


def test_the_cluster_admits_https_from_the_runner_group_only(runner: RenderedStack) -> None:
    group = named(runner, GROUP, "deploy-runner-security-group")
    [rule] = runner.of_type(INGRESS)
    assert rule.inputs["securityGroupId"] == CLUSTER_GROUP
    assert rule.inputs["referencedSecurityGroupId"] == group.id
    assert (rule.inputs["ipProtocol"], rule.inputs["fromPort"], rule.inputs["toPort"]) == (
        "tcp",
        443,
        443,
    )
    assert "cidrIpv4" not in rule.inputs


def test_the_runner_admits_nothing_and_reaches_out_on_https_only(runner: RenderedStack) -> None:
    group = named(runner, GROUP, "deploy-runner-security-group")
    assert group.inputs["vpcId"] == "vpc-0f"
    assert not group.inputs.get("ingress") and not group.inputs.get("egress")
    [egress] = runner.of_type(EGRESS)
    assert egress.inputs["securityGroupId"] == group.id
    assert (egress.inputs["ipProtocol"], egress.inputs["fromPort"], egress.inputs["toPort"]) == (
        "tcp",
        443,
        443,
    )


def test_jobs_run_unprivileged_in_the_private_subnets_from_the_repository(
    runner: RenderedStack,
) -> None:
    [project] = runner.of_type(PROJECT)
    group = named(runner, GROUP, "deploy-runner-security-group")
    assert project.inputs["vpcConfig"] == {
        "vpcId": "vpc-0f",
        "subnets": SUBNETS,
        "securityGroupIds": [group.id],
    }
    assert project.inputs["environment"]["privilegedMode"] is False
    assert project.inputs["environment"]["computeType"] == "BUILD_GENERAL1_MEDIUM"
    source = project.inputs["source"]
    assert source["location"] == "https://github.com/example-org/mlops-platform.git"
    assert source["auth"]["type"] == "CODECONNECTIONS"
    assert ":connection/" in source["auth"]["resource"]
    assert project.inputs["encryptionKey"] == KEY
    assert project.inputs["buildTimeout"] == 120


def test_every_job_is_logged_to_a_kept_encrypted_log_group(runner: RenderedStack) -> None:
    [project] = runner.of_type(PROJECT)
    log_group = named(runner, "aws:cloudwatch/logGroup:LogGroup", "deploy-runner-logs")
    assert project.inputs["logsConfig"]["cloudwatchLogs"] == {
        "status": "ENABLED",
        "groupName": log_group.outputs["name"],
    }
    assert (log_group.inputs["kmsKeyId"], log_group.inputs["retentionInDays"]) == (KEY, 365)
    assert log_group.protect and log_group.retain_on_delete


def test_the_project_waits_for_its_roles_policy(runner: RenderedStack) -> None:
    """CodeBuild checks at creation that the role may attach to the subnets."""
    [project] = runner.of_type(PROJECT)
    role_policy = named(runner, "aws:iam/rolePolicy:RolePolicy", "deploy-runner-policy")
    assert role_policy.urn in project.dependencies


def test_the_runners_role_can_do_nothing_that_deploys(runner: RenderedStack) -> None:
    actions = {
        action
        for statement in policy(runner)["Statement"]
        for action in (
            [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        )
    }
    services = {action.split(":")[0] for action in actions}
    assert services == {"logs", "ec2", "codeconnections", "kms"}
    assert not any(a.startswith(("sts:", "iam:", "eks:", "s3:")) for a in actions)
    assert {a for a in actions if a.startswith("ec2:") and not a.startswith("ec2:Describe")} == {
        "ec2:CreateNetworkInterface",
        "ec2:DeleteNetworkInterface",
        "ec2:CreateNetworkInterfacePermission",
    }


def test_network_interfaces_go_only_into_the_runner_subnets_for_codebuild(
    runner: RenderedStack,
) -> None:
    statements = {s["Sid"]: s for s in policy(runner)["Statement"]}
    attach = statements["AttachForCodeBuildInRunnerSubnetsOnly"]
    assert attach["Condition"] == {
        "ArnEquals": {
            "ec2:Subnet": [f"arn:aws:ec2:eu-west-1:123456789012:subnet/{s}" for s in SUBNETS]
        },
        "StringEquals": {"ec2:AuthorizedService": "codebuild.amazonaws.com"},
    }
    create = statements["InterfacesInRunnerSubnetsOnly"]
    subnets = [r for r in create["Resource"] if ":subnet/" in r]
    assert subnets == attach["Condition"]["ArnEquals"]["ec2:Subnet"]
    delete = statements["DeleteOwnInterfacesOnly"]
    assert delete["Condition"] == {"ArnEquals": {"ec2:Subnet": subnets}}


def test_only_codebuild_for_this_account_assumes_the_role(runner: RenderedStack) -> None:
    role = named(runner, "aws:iam/role:Role", "deploy-runner-role")
    [statement] = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert statement["Principal"] == {"Service": "codebuild.amazonaws.com"}
    assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}


def test_only_queued_workflow_jobs_start_the_runner(runner: RenderedStack) -> None:
    [webhook] = runner.of_type("aws:codebuild/webhook:Webhook")
    [project] = runner.of_type(PROJECT)
    assert webhook.inputs["projectName"] == project.outputs["name"]
    assert webhook.inputs["filterGroups"] == [
        {"filters": [{"type": "EVENT", "pattern": "WORKFLOW_JOB_QUEUED"}]}
    ]
