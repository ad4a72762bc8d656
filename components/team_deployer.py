"""The role a model team's CI assumes to ship model services from the team's own Pulumi project.

Its jobs assume it by GitHub OIDC, only from the team's repository and only in the GitHub
environments named (whose protection rules decide who deploys). In AWS it may make roles only
under the team's path and capped by the team's own boundary, and bind them to the team's
service accounts with EKS Pod Identity. That boundary lets a team role read models and the
registry and nothing else, and only from a Pod Identity session of the team's namespace: what
a team writes into its roles' policies or trust cannot reach further. (A trust that also lets
another principal tag its session could forge those tags; an organization's resource control
policy denying `sts:AssumeRole` on `role/teams/*` to all but pods.eks.amazonaws.com closes
that, and the README gives it.) In the cluster, its access entry puts it in one Kubernetes
group that a RoleBinding in the team's namespace grants what a model service is made of, and
nothing that holds the namespace's isolation: not its network policies, quota, limits or
RBAC. EKS's access policies are not used for this because AmazonEKSEditPolicy includes network
policies (a team could lift its own default-deny) and covers no custom resources.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.common import account_context
from components.policy_documents import (
    GITHUB_ACTIONS_ISSUER,
    github_actions_trust,
    team_deployer_policy,
    team_workload_boundary,
)
from components.service_health import rule_group_name

ALL_VERBS: Final = ("get", "list", "watch", "create", "update", "patch", "delete")
READ_VERBS: Final = ("get", "list", "watch")

# What a model service is made of, by API group, and what Pulumi watches while it waits for
# them to become ready (a Deployment's ReplicaSets, pods and claims, a Service's endpoints).
# Not `rollouts/status`: promoting or aborting by hand would let a team skip its own analysis;
# a rollout paused for want of data is resumed by a platform operator.
MANAGED: Final[Mapping[str, tuple[str, ...]]] = {
    "": ("configmaps", "serviceaccounts", "services"),
    "apps": ("deployments",),
    "argoproj.io": ("analysistemplates", "rollouts"),
    "keda.sh": ("scaledobjects", "triggerauthentications"),
    "networking.k8s.io": ("ingresses",),
    "policy": ("poddisruptionbudgets",),
}
OBSERVED: Final[Mapping[str, tuple[str, ...]]] = {
    # Pulumi's Deployment awaiter lists and watches claims too, and without them waits forever
    # (pulumi/pulumi-kubernetes#4580).
    "": ("endpoints", "events", "persistentvolumeclaims", "pods", "pods/log"),
    "apps": ("replicasets",),
    # How a canary's analysis went, and the state of a rollout (its CLI and dashboard read these).
    "argoproj.io": ("analysisruns",),
    # The HPA a ScaledObject drives: what it decided, and why.
    "autoscaling": ("horizontalpodautoscalers",),
    "discovery.k8s.io": ("endpointslices",),
}


def team_role_path(team: str) -> str:
    """Where a team's workload roles live: the only roles its deployer may make or change."""
    return f"/teams/{team}/"


def team_rule_groups_arn(workspace_arn: str, team: str) -> str:
    """The rule groups a team's services may keep in the platform's workspace."""
    rule_groups = workspace_arn.replace(":workspace/", ":rulegroupsnamespace/", 1)
    return f"{rule_groups}/{rule_group_name(team, '*')}"


def deployer_group(team: str) -> str:
    return f"{team}-deployers"


def github_actions_provider_arn(*, create: bool, tags: Mapping[str, str]) -> pulumi.Output[str]:
    """The account's IAM OIDC provider for GitHub Actions, made here or looked up: IAM holds
    one per issuer URL, so most accounts that deploy from GitHub have it already."""
    url = f"https://{GITHUB_ACTIONS_ISSUER}"
    if create:
        return aws.iam.OpenIdConnectProvider(
            "github-actions", url=url, client_id_lists=["sts.amazonaws.com"], tags=dict(tags)
        ).arn
    # A lookup, so a missing provider fails the preview by name rather than the first job.
    return aws.iam.get_open_id_connect_provider_output(url=url).arn


@dataclass(frozen=True)
class GitHubEnvironments:
    repository: str
    """`owner/name` of the team's repository."""
    environments: Sequence[str]
    """GitHub environments whose jobs may deploy, e.g. the stack's environment name."""


@dataclass(frozen=True)
class TeamReads:
    """What the team's roles may read, and nothing more: the platform's artifact buckets
    through their key, and its MLflow registry."""

    bucket_arns: pulumi.Input[Sequence[str]]
    key_arn: pulumi.Input[str]
    tracking_server_arn: pulumi.Input[str] | None


@dataclass(frozen=True)
class TeamDeployerArgs:
    team: str
    """The team's namespace, which is also its name."""
    github: GitHubEnvironments
    oidc_provider_arn: pulumi.Input[str]
    """The account's IAM OIDC provider for GitHub Actions."""
    cluster_name: pulumi.Input[str]
    cluster_arn: pulumi.Input[str]
    reads: TeamReads
    workspace_arn: pulumi.Input[str]
    """The platform's Prometheus workspace, where the team's services keep their alert rules."""
    tags: Mapping[str, str]
    namespace_ready: Sequence[pulumi.Resource] = ()
    """What makes the team's namespace: the role binding waits for it."""


def deployer_rules() -> list[k8s.rbac.v1.PolicyRuleArgs]:
    return [
        *(
            k8s.rbac.v1.PolicyRuleArgs(
                api_groups=[group], resources=list(resources), verbs=list(ALL_VERBS)
            )
            for group, resources in MANAGED.items()
        ),
        *(
            k8s.rbac.v1.PolicyRuleArgs(
                api_groups=[group], resources=list(resources), verbs=list(READ_VERBS)
            )
            for group, resources in OBSERVED.items()
        ),
    ]


class TeamDeployer(pulumi.ComponentResource):
    """Needs a `kubernetes` provider for the cluster in its options."""

    TYPE = "mlops:team_deployer:TeamDeployer"

    role_arn: pulumi.Output[str]
    boundary_arn: pulumi.Output[str]
    """The permissions boundary every role of the team carries (model services' included)."""

    def __init__(
        self, name: str, args: TeamDeployerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(self.TYPE, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        account = account_context(self)
        role = aws.iam.Role(
            f"{name}-role",
            # Not under the team's path: the role must not be able to change itself.
            path="/team-deployers/",
            assume_role_policy=pulumi.Output.json_dumps(
                pulumi.Output.from_input(args.oidc_provider_arn).apply(
                    lambda provider_arn: github_actions_trust(
                        provider_arn=provider_arn,
                        repository=args.github.repository,
                        environments=args.github.environments,
                    )
                )
            ),
            tags={**args.tags, "mlops:team": args.team},
            opts=child,
        )
        boundary = aws.iam.Policy(
            f"{name}-boundary",
            description=f"The most a role of team {args.team} may do: read models, from its pods",
            policy=pulumi.Output.json_dumps(
                pulumi.Output.all(
                    args.cluster_arn,
                    account.region,
                    args.reads.bucket_arns,
                    args.reads.key_arn,
                    args.reads.tracking_server_arn or "",
                ).apply(
                    lambda values: team_workload_boundary(
                        team=args.team,
                        cluster_arn=values[0],
                        region=values[1],
                        bucket_arns=values[2],
                        key_arn=values[3],
                        tracking_server_arn=values[4] or None,
                    )
                )
            ),
            tags={**args.tags, "mlops:team": args.team},
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-policy",
            role=role.id,
            policy=pulumi.Output.json_dumps(
                pulumi.Output.all(
                    account.partition,
                    account.account_id,
                    account.region,
                    boundary.arn,
                    args.cluster_name,
                    args.cluster_arn,
                    args.workspace_arn,
                ).apply(
                    lambda values: team_deployer_policy(
                        team=args.team,
                        partition=values[0],
                        account_id=values[1],
                        region=values[2],
                        role_path=team_role_path(args.team),
                        boundary_arn=values[3],
                        cluster_name=values[4],
                        cluster_arn=values[5],
                        rule_groups_arn=team_rule_groups_arn(values[6], args.team),
                    )
                )
            ),
            opts=child,
        )
        group = deployer_group(args.team)
        aws.eks.AccessEntry(
            f"{name}-access",
            cluster_name=args.cluster_name,
            principal_arn=role.arn,
            type="STANDARD",
            kubernetes_groups=[group],
            tags=dict(args.tags),
            opts=child,
        )
        labels = {"app.kubernetes.io/managed-by": "pulumi"}
        in_namespace = pulumi.ResourceOptions(parent=self, depends_on=list(args.namespace_ready))
        k8s_role = k8s.rbac.v1.Role(
            f"{name}-k8s-role",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name="model-service-deployer", namespace=args.team, labels=labels
            ),
            rules=deployer_rules(),
            opts=in_namespace,
        )
        k8s.rbac.v1.RoleBinding(
            f"{name}-k8s-binding",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name="model-service-deployers", namespace=args.team, labels=labels
            ),
            role_ref=k8s.rbac.v1.RoleRefArgs(
                api_group="rbac.authorization.k8s.io", kind="Role", name=k8s_role.metadata.name
            ),
            subjects=[
                k8s.rbac.v1.SubjectArgs(
                    api_group="rbac.authorization.k8s.io", kind="Group", name=group
                )
            ],
            opts=in_namespace,
        )
        self.role_arn = role.arn
        self.boundary_arn = boundary.arn
        self.register_outputs({"roleArn": self.role_arn, "boundaryArn": self.boundary_arn})
