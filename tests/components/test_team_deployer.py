"""A team's deployer: assumed only by its repository's jobs in the named GitHub environments;
in AWS it makes only bounded roles under the team's path and binds them by Pod Identity; in the
cluster it manages model services in its namespace and cannot lift the namespace's isolation."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.team_deployer import (
    GitHubEnvironments,
    TeamDeployer,
    TeamDeployerArgs,
    TeamReads,
    deployer_group,
    github_actions_provider_arn,
)
from mlops_platform.policy_check import PolicyPackServer
from mlops_platform.rendered import RecordedResource, RenderedStack
from tests.components.data_fixtures import (
    ACCOUNT,
    BOUNDARY_ARN,
    CLUSTER_ARN,
    CLUSTER_NAME,
    KEY_ARN,
    REGION,
    TAGS,
)
from tests.conftest import run_component
from tests.iam_evaluation import decide
from tests.policies.cases import TAGS as PROD_TAGS
from tests.policies.conftest import check, environment_config

TEAM_ROLES = f"arn:aws:iam::{ACCOUNT}:role/teams/serving"
WORKSPACE_ARN = f"arn:aws:aps:{REGION}:{ACCOUNT}:workspace/ws-0123"
MODELS = "arn:aws:s3:::ml-models"
EXPERIMENTS = "arn:aws:s3:::ml-experiments"
SERVER = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:mlflow-tracking-server/ml-mlflow"
PROVIDER_ARN = f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"


def deployer(tags: dict[str, str] = TAGS) -> RenderedStack:
    return run_component(
        lambda: TeamDeployer(
            "deployer",
            TeamDeployerArgs(
                team="serving",
                github=GitHubEnvironments("example-org/serving-models", ("staging", "prod")),
                oidc_provider_arn=PROVIDER_ARN,
                cluster_name=CLUSTER_NAME,
                cluster_arn=CLUSTER_ARN,
                reads=TeamReads(
                    bucket_arns=[MODELS, EXPERIMENTS], key_arn=KEY_ARN, tracking_server_arn=SERVER
                ),
                workspace_arn=WORKSPACE_ARN,
                tags=tags,
            ),
        )
    )


@pytest.fixture(scope="module")
def rendered() -> RenderedStack:
    return deployer()


def policy(rendered: RenderedStack) -> dict[str, Any]:
    [inline] = rendered.of_type("aws:iam/rolePolicy:RolePolicy")
    document: dict[str, Any] = json.loads(inline.inputs["policy"])
    return document


def test_only_the_teams_jobs_in_its_named_environments_assume_it(rendered: RenderedStack) -> None:
    [role] = rendered.of_type("aws:iam/role:Role")
    [trust] = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert trust["Principal"] == {"Federated": PROVIDER_ARN}
    assert trust["Condition"] == {
        "StringEquals": {
            "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
            "token.actions.githubusercontent.com:sub": [
                "repo:example-org/serving-models:environment:staging",
                "repo:example-org/serving-models:environment:prod",
            ],
        }
    }
    # Outside the team's path, so it cannot rewrite its own grants.
    assert role.inputs["path"] == "/team-deployers/"


TEAM_BOUNDARY = "the team's boundary"


@pytest.mark.parametrize(
    ("resource", "boundary", "expected"),
    [
        (f"{TEAM_ROLES}/ranker-1a2b", TEAM_BOUNDARY, "allow"),
        (f"{TEAM_ROLES}/ranker-1a2b", None, "implicit-deny"),
        # Not even the platform's workload boundary: controllers need far more than a model.
        (f"{TEAM_ROLES}/ranker-1a2b", BOUNDARY_ARN, "implicit-deny"),
        (f"{TEAM_ROLES}/ranker-1a2b", f"arn:aws:iam::{ACCOUNT}:policy/wide-open", "implicit-deny"),
        (f"arn:aws:iam::{ACCOUNT}:role/teams/research/x", TEAM_BOUNDARY, "implicit-deny"),
        (f"arn:aws:iam::{ACCOUNT}:role/team-deployers/x", TEAM_BOUNDARY, "implicit-deny"),
        (f"arn:aws:iam::{ACCOUNT}:role/eks-node-role", TEAM_BOUNDARY, "implicit-deny"),
    ],
)
def test_it_makes_roles_only_under_the_teams_path_and_the_teams_boundary(
    rendered: RenderedStack, resource: str, boundary: str | None, expected: str
) -> None:
    if boundary == TEAM_BOUNDARY:
        boundary = team_boundary(rendered).outputs["arn"]
    context = {} if boundary is None else {"iam:PermissionsBoundary": boundary}
    for action in ("iam:CreateRole", "iam:PutRolePolicy"):
        assert decide([policy(rendered)], action, resource, context) == expected


def team_boundary(rendered: RenderedStack) -> RecordedResource:
    [boundary] = rendered.of_type("aws:iam/policy:Policy")
    return boundary


def test_whatever_a_team_grants_its_roles_they_read_models_from_its_pods_and_nothing_else(
    rendered: RenderedStack,
) -> None:
    document = json.loads(team_boundary(rendered).inputs["policy"])
    from_pods = {
        "aws:PrincipalTag/kubernetes-namespace": "serving",
        "aws:PrincipalTag/eks-cluster-arn": CLUSTER_ARN,
    }
    model = f"{MODELS}/ranker/v7/model.safetensors"
    assert decide([document], "s3:GetObject", model, from_pods) == "allow"
    assert decide([document], "sagemaker-mlflow:GetModelVersion", SERVER, from_pods) == "allow"
    via_s3 = {**from_pods, "kms:ViaService": f"s3.{REGION}.amazonaws.com"}
    assert decide([document], "kms:Decrypt", KEY_ARN, via_s3) == "allow"
    # Not written, not decrypted directly, no other bucket.
    assert decide([document], "s3:PutObject", model, from_pods) == "implicit-deny"
    assert decide([document], "kms:Decrypt", KEY_ARN, from_pods) == "implicit-deny"
    assert decide([document], "s3:GetObject", "arn:aws:s3:::state/x", from_pods) == "implicit-deny"
    # A session of another namespace, or of anything but the cluster's Pod Identity, gets none.
    elsewhere = {**from_pods, "aws:PrincipalTag/kubernetes-namespace": "research"}
    assert decide([document], "s3:GetObject", model, elsewhere) == "implicit-deny"
    assert decide([document], "s3:GetObject", model) == "implicit-deny"


def test_it_changes_only_the_pod_identity_associations_it_marked(rendered: RenderedStack) -> None:
    document = policy(rendered)
    association = f"arn:aws:eks:{REGION}:{ACCOUNT}:podidentityassociation/{CLUSTER_NAME}/a-1"
    ours = {"aws:ResourceTag/mlops:team": "serving"}
    for action in ("eks:DeletePodIdentityAssociation", "eks:UpdatePodIdentityAssociation"):
        assert decide([document], action, association, ours) == "allow"
        # A platform controller's (unmarked) or another team's.
        assert decide([document], action, association) == "implicit-deny"
        theirs = {"aws:ResourceTag/mlops:team": "research"}
        assert decide([document], action, association, theirs) == "implicit-deny"
    marking = {"aws:RequestTag/mlops:team": "serving"}
    create = "eks:CreatePodIdentityAssociation"
    assert decide([document], create, CLUSTER_ARN, marking) == "allow"
    assert decide([document], create, CLUSTER_ARN) == "implicit-deny"
    tag = "eks:TagResource"
    # Marking a platform's (or another team's) association as its own, to delete it after.
    platform = {"aws:ResourceTag/mlops:team": "platform", **marking}
    assert decide([document], tag, association, platform) == "implicit-deny"
    # Its own: a changed owner tag (the mark not in the request) passes; moving it does not.
    assert decide([document], tag, association, {**ours, "aws:TagKeys": ["owner"]}) == "allow"
    moved = {**ours, "aws:RequestTag/mlops:team": "research"}
    assert decide([document], tag, association, moved) == "implicit-deny"
    unmark = {**ours, "aws:TagKeys": ["mlops:team"]}
    assert decide([document], "eks:UntagResource", association, unmark) == "deny"


@pytest.mark.parametrize(
    "key", ["kubernetes-namespace", "eks-cluster-arn", "Kubernetes-Namespace", "EKS-Cluster-Arn"]
)
def test_its_roles_cannot_carry_the_tags_pod_identity_sessions_are_trusted_by(
    rendered: RenderedStack, key: str
) -> None:
    """A role's own tags are principal tags too: as one it would pass the team boundary's
    conditions outside any pod."""
    document = policy(rendered)
    role = f"{TEAM_ROLES}/ranker-1a2b"
    bounded = {"iam:PermissionsBoundary": team_boundary(rendered).outputs["arn"]}
    assert decide([document], "iam:CreateRole", role, {**bounded, "aws:TagKeys": [key]}) == "deny"
    assert decide([document], "iam:TagRole", role, {"aws:TagKeys": [key]}) == "deny"
    assert decide([document], "iam:TagRole", role, {"aws:TagKeys": ["owner"]}) == "allow"


def test_a_team_role_never_sheds_its_boundary_nor_goes_to_anything_but_pod_identity(
    rendered: RenderedStack,
) -> None:
    document = policy(rendered)
    role = f"{TEAM_ROLES}/ranker-1a2b"
    assert decide([document], "iam:DeleteRolePermissionsBoundary", role) == "deny"
    to_pods = {"iam:PassedToService": "pods.eks.amazonaws.com"}
    assert decide([document], "iam:PassRole", role, to_pods) == "allow"
    to_ec2 = {"iam:PassedToService": "ec2.amazonaws.com"}
    assert decide([document], "iam:PassRole", role, to_ec2) == "implicit-deny"


def test_it_binds_roles_in_the_platforms_cluster_only(rendered: RenderedStack) -> None:
    document = policy(rendered)
    marking = {"aws:RequestTag/mlops:team": "serving"}
    other = CLUSTER_ARN.replace(CLUSTER_NAME, "other")
    create = "eks:CreatePodIdentityAssociation"
    assert decide([document], create, CLUSTER_ARN, marking) == "allow"
    assert decide([document], create, other, marking) == "implicit-deny"
    association = f"arn:aws:eks:{REGION}:{ACCOUNT}:podidentityassociation/{CLUSTER_NAME}/a-1"
    ours = {"aws:ResourceTag/mlops:team": "serving"}
    elsewhere = association.replace(f"/{CLUSTER_NAME}/", "/other/")
    delete = "eks:DeletePodIdentityAssociation"
    assert decide([document], delete, elsewhere, ours) == "implicit-deny"


def test_it_keeps_alert_rules_only_under_its_teams_prefix_in_the_platforms_workspace(
    rendered: RenderedStack,
) -> None:
    document = policy(rendered)
    groups = f"arn:aws:aps:{REGION}:{ACCOUNT}:rulegroupsnamespace"
    for action in ("aps:CreateRuleGroupsNamespace", "aps:PutRuleGroupsNamespace"):
        assert decide([document], action, f"{groups}/ws-0123/serving_ranker") == "allow"
        assert decide([document], action, f"{groups}/ws-0123/research_x") == "implicit-deny"
        # Team `serving-b`'s groups are not under `serving`'s prefix.
        assert decide([document], action, f"{groups}/ws-0123/serving-b_x") == "implicit-deny"
        assert decide([document], action, f"{groups}/ws-other/serving_x") == "implicit-deny"


def test_in_the_cluster_it_is_one_group_bound_in_the_teams_namespace_only(
    rendered: RenderedStack,
) -> None:
    [entry] = rendered.of_type("aws:eks/accessEntry:AccessEntry")
    assert entry.inputs["kubernetesGroups"] == [deployer_group("serving")]
    # No EKS access policy: AmazonEKSEditPolicy would let it delete its network policies.
    assert rendered.of_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation") == []
    [binding] = rendered.of_type("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding")
    assert binding.inputs["metadata"]["namespace"] == "serving"
    assert binding.inputs["subjects"] == [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "serving-deployers"}
    ]
    [role] = rendered.of_type("kubernetes:rbac.authorization.k8s.io/v1:Role")
    assert role.inputs["metadata"]["namespace"] == "serving"
    assert binding.inputs["roleRef"]["name"] == role.inputs["metadata"]["name"]
    written = {
        (group, resource)
        for rule in role.inputs["rules"]
        if "create" in rule["verbs"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    assert ("apps", "deployments") in written
    assert not {
        resource
        for _, resource in written
        if resource in ("networkpolicies", "resourcequotas", "limitranges", "rolebindings")
    }


def test_it_passes_the_prod_pack(pack: PolicyPackServer) -> None:
    """Its bounded role creation, its trust and its RBAC break no rule at prod's levels."""
    rendered = deployer({**PROD_TAGS, "mlops:stack": "test"})
    findings = check(pack, rendered.states(), environment_config("prod"))
    assert [(f.rule, f.urn, f.message) for f in findings] == []


@pytest.mark.parametrize("create", [True, False], ids=["create", "existing"])
def test_the_github_provider_is_made_once_or_looked_up_by_its_issuer(create: bool) -> None:
    arns: list[str] = []

    def program() -> None:
        github_actions_provider_arn(create=create, tags=TAGS).apply(arns.append)

    rendered = run_component(program)
    assert arns == [PROVIDER_ARN]
    made = rendered.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    assert [p.inputs["clientIdLists"] for p in made] == ([["sts.amazonaws.com"]] if create else [])


# What pulumi-kubernetes' awaiters list and watch before they time anything out (provider/pkg/
# await: deployment.go subscribes to deployments, replicasets, pods and claims; service.go and
# ingress.go to services, endpoints and ingresses). A kind it may not list hangs `pulumi up`.
AWAITED = {
    ("apps", "deployments"),
    ("apps", "replicasets"),
    ("", "pods"),
    ("", "persistentvolumeclaims"),
    ("", "services"),
    ("", "endpoints"),
    ("networking.k8s.io", "ingresses"),
}


def test_it_may_watch_everything_pulumis_awaiters_wait_on(rendered: RenderedStack) -> None:
    [role] = rendered.of_type("kubernetes:rbac.authorization.k8s.io/v1:Role")
    watchable = {
        (group, resource)
        for rule in role.inputs["rules"]
        if {"get", "list", "watch"} <= set(rule["verbs"])
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    assert watchable >= AWAITED


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_where_the_api_is_private_each_teams_jobs_have_a_runner_inside_the_vpc(
    rendered_stacks: dict[str, RenderedStack], stack: str
) -> None:
    """GitHub's own runners cannot reach a private endpoint: a team whose deployer trusts its
    repository gets a runner for that repository in the VPC, as the platform's jobs have."""
    rendered = rendered_stacks[stack]
    trusted = set()
    for role in rendered.of_type("aws:iam/role:Role"):
        if role.inputs.get("path") == "/team-deployers/":
            [trust] = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
            subjects = trust["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"]
            trusted |= {subject.split(":")[1] for subject in subjects}
    runners = {
        project.inputs["source"]["location"]
        .removeprefix("https://github.com/")
        .removesuffix(".git")
        for project in rendered.of_type("aws:codebuild/project:Project")
    }
    assert trusted and trusted <= runners
    assert set(rendered.outputs["teamDeployRunnerProjects"]) == {"serving"}


def test_the_platforms_own_pod_identity_associations_are_marked_as_the_platforms(
    rendered_stacks: dict[str, RenderedStack],
) -> None:
    """A deployer may tag an association only where it carries no mark or its team's: the
    platform's controllers' must carry one."""
    for rendered in rendered_stacks.values():
        associations = rendered.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
        assert associations
        assert {a.inputs["tags"]["mlops:team"] for a in associations} == {"platform"}
