"""The path to a private cluster's API: a GitHub Actions runner inside the VPC.

A CodeBuild project registered as a self-hosted GitHub Actions runner (CodeBuild User Guide,
"Self-hosted GitHub Actions runners in AWS CodeBuild"): a job whose `runs-on` names the project
runs in a fresh container in the private subnets, and the cluster security group admits HTTPS
from the runner's security group only. The runner's own role can write its logs and attach to
its subnets, nothing else: deploy credentials come from GitHub OIDC in the job, so the network
position grants no deploy rights (README, "First deploy of a private cluster").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

import pulumi
import pulumi_aws as aws

from components.common import HTTPS, account_context, encrypted_log_group, https_ingress
from components.network import NetworkRef
from components.policy_documents import deploy_runner_policy, service_trust

ComputeType = Literal["BUILD_GENERAL1_SMALL", "BUILD_GENERAL1_MEDIUM", "BUILD_GENERAL1_LARGE"]

IMAGE: Final = "aws/codebuild/standard:7.0"
"""CodeBuild's curated Ubuntu 22.04 image, with Python 3.11, the AWS CLI and Git: the deploy
job's actions (setup-python's prebuilt Pythons among them) target Ubuntu, as on GitHub's own
runners; pulumi/actions installs the Pulumi CLI."""
JOB_QUEUED: Final = "WORKFLOW_JOB_QUEUED"


@dataclass(frozen=True)
class DeployRunnerArgs:
    repository: str
    """GitHub `owner/name` whose workflow jobs may run here."""
    connection_name: str
    """The CodeConnections connection to GitHub, authorised once in the console."""
    network: NetworkRef
    cluster_security_group_id: pulumi.Input[str]
    """The cluster security group EKS created; it gains HTTPS from the runner."""
    kms_key_arn: pulumi.Input[str]
    """Encrypts the runner's logs and whatever CodeBuild stores for a build."""
    log_retention_days: int
    compute_type: ComputeType
    build_timeout_minutes: int
    tags: Mapping[str, str]
    protect: bool = False


class DeployRunner(pulumi.ComponentResource):
    TYPE = "mlops:deploy_runner:DeployRunner"

    project_name: pulumi.Output[str]
    """What a workflow job's `runs-on` names: `codebuild-<project>-<run id>-<attempt>`."""
    security_group_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: DeployRunnerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(self.TYPE, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)
        account = account_context(self)
        connection = aws.codestarconnections.get_connection_output(
            name=args.connection_name, opts=pulumi.InvokeOptions(parent=self)
        )

        group = aws.ec2.SecurityGroup(
            f"{name}-security-group",
            vpc_id=args.network.vpc_id,
            description="Deploy runner: HTTPS out (GitHub, package indexes, AWS APIs), none in",
            tags=tags,
            opts=child,
        )
        # DNS goes to the VPC resolver, which security groups do not filter.
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-egress-https",
            security_group_id=group.id,
            description="HTTPS to GitHub, package indexes, the state backend and AWS APIs",
            ip_protocol="tcp",
            from_port=HTTPS,
            to_port=HTTPS,
            cidr_ipv4="0.0.0.0/0",
            tags=tags,
            opts=child,
        )
        https_ingress(
            f"{name}-cluster-api",
            self,
            security_group_id=args.cluster_security_group_id,
            description="Kubernetes API from the deploy runner only",
            source_group_id=group.id,
            tags=tags,
        )

        log_group = encrypted_log_group(
            f"{name}-logs",
            self,
            kms_key_arn=args.kms_key_arn,
            retention_days=args.log_retention_days,
            tags=tags,
            protect=args.protect,
        )
        role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=pulumi.Output.json_dumps(
                account.account_id.apply(
                    lambda account_id: service_trust("codebuild.amazonaws.com", account_id)
                )
            ),
            tags=tags,
            opts=child,
        )
        role_policy = aws.iam.RolePolicy(
            f"{name}-policy",
            role=role.id,
            policy=pulumi.Output.json_dumps(
                pulumi.Output.all(
                    log_group.arn,
                    args.network.private_subnet_ids,
                    connection.arn,
                    args.kms_key_arn,
                    account.partition,
                    account.account_id,
                    account.region,
                ).apply(
                    lambda v: deploy_runner_policy(
                        log_group_arn=v[0],
                        subnet_ids=v[1],
                        connection_arn=v[2],
                        key_arn=v[3],
                        partition=v[4],
                        account_id=v[5],
                        region=v[6],
                    )
                )
            ),
            opts=child,
        )
        project = aws.codebuild.Project(
            f"{name}-project",
            description=f"GitHub Actions runner for {args.repository} inside the cluster's VPC",
            service_role=role.arn,
            artifacts=aws.codebuild.ProjectArtifactsArgs(type="NO_ARTIFACTS"),
            environment=aws.codebuild.ProjectEnvironmentArgs(
                type="LINUX_CONTAINER",
                compute_type=args.compute_type,
                image=IMAGE,
                image_pull_credentials_type="CODEBUILD",
                privileged_mode=False,
            ),
            source=aws.codebuild.ProjectSourceArgs(
                type="GITHUB",
                location=f"https://github.com/{args.repository}.git",
                auth=aws.codebuild.ProjectSourceAuthArgs(
                    type="CODECONNECTIONS", resource=connection.arn
                ),
            ),
            vpc_config=aws.codebuild.ProjectVpcConfigArgs(
                vpc_id=args.network.vpc_id,
                subnets=args.network.private_subnet_ids,
                security_group_ids=[group.id],
            ),
            logs_config=aws.codebuild.ProjectLogsConfigArgs(
                cloudwatch_logs=aws.codebuild.ProjectLogsConfigCloudwatchLogsArgs(
                    status="ENABLED", group_name=log_group.name
                ),
                s3_logs=aws.codebuild.ProjectLogsConfigS3LogsArgs(status="DISABLED"),
            ),
            encryption_key=args.kms_key_arn,
            build_timeout=args.build_timeout_minutes,
            tags=tags,
            # CodeBuild checks, when the project is created, that its role may attach to the
            # subnets; the role's policy must exist by then.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[role_policy]),
        )
        aws.codebuild.Webhook(
            f"{name}-webhook",
            project_name=project.name,
            build_type="BUILD",
            filter_groups=[
                aws.codebuild.WebhookFilterGroupArgs(
                    filters=[
                        aws.codebuild.WebhookFilterGroupFilterArgs(type="EVENT", pattern=JOB_QUEUED)
                    ]
                )
            ],
            opts=child,
        )

        self.project_name = project.name
        self.security_group_id = group.id
        self.register_outputs(
            {"projectName": self.project_name, "securityGroupId": self.security_group_id}
        )
