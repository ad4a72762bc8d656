"""Argo Rollouts: its analyses read the platform's workspace and nothing else, through a role
bound by IRSA (its SDK predates Pod Identity); it runs on the system nodes and holds RBAC for the
one traffic router the platform installs."""

from __future__ import annotations

import json

import pytest

from components.argo_rollouts import ArgoRollouts, ArgoRolloutsArgs
from components.pod_role import IrsaBinding
from mlops_guardrails import charts
from mlops_guardrails.vocabulary import POOL_LABEL
from mlops_platform.rendered import RenderedStack
from tests.components.data_fixtures import ACCOUNT, controller_install
from tests.conftest import run_component

ISSUER = "oidc.eks.eu-west-1.amazonaws.com/id/ABC"
WORKSPACE_ARN = f"arn:aws:aps:eu-west-1:{ACCOUNT}:workspace/ws-0123"


@pytest.fixture(scope="module")
def rendered() -> RenderedStack:
    return run_component(
        lambda: ArgoRollouts(
            "rollouts",
            ArgoRolloutsArgs(
                install=controller_install(charts.ARGO_ROLLOUTS),
                irsa=IrsaBinding(f"arn:aws:iam::{ACCOUNT}:oidc-provider/{ISSUER}", ISSUER),
                workspace_arn=WORKSPACE_ARN,
                region="eu-west-1",
            ),
        )
    )


def test_analyses_query_the_platforms_workspace_and_it_reads_target_groups_only(
    rendered: RenderedStack,
) -> None:
    [policy] = rendered.of_type("aws:iam/rolePolicy:RolePolicy")
    statements = {s["Sid"]: s for s in json.loads(policy.inputs["policy"])["Statement"]}
    query = statements["QueryThePlatformsWorkspace"]
    assert query["Resource"] == WORKSPACE_ARN
    assert sorted(query["Action"]) == [
        "aps:GetLabels",
        "aps:GetMetricMetadata",
        "aps:GetSeries",
        "aps:QueryMetrics",
    ]
    # Before a version scales down, the other's targets are checked registered in the ALB.
    verify = statements["VerifyTargetGroups"]
    assert all(a.startswith("elasticloadbalancing:Describe") for a in verify["Action"])
    [release] = rendered.of_type("kubernetes:helm.sh/v3:Release")
    assert release.inputs["values"]["controller"]["awsVerifyTargetGroup"] is True
    assert set(statements) == {"QueryThePlatformsWorkspace", "VerifyTargetGroups"}


def test_the_controllers_service_account_holds_the_role_by_irsa(rendered: RenderedStack) -> None:
    [role] = rendered.of_type("aws:iam/role:Role")
    [trust] = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert trust["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert trust["Condition"]["StringEquals"][f"{ISSUER}:sub"] == (
        "system:serviceaccount:kube-system:argo-rollouts"
    )
    assert rendered.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation") == []
    [release] = rendered.of_type("kubernetes:helm.sh/v3:Release")
    account = release.inputs["values"]["serviceAccount"]
    assert account["name"] == "argo-rollouts"
    assert account["annotations"]["eks.amazonaws.com/role-arn"] == role.outputs["arn"]


def test_it_runs_on_system_nodes_with_rbac_for_the_alb_router_only(
    rendered: RenderedStack,
) -> None:
    [release] = rendered.of_type("kubernetes:helm.sh/v3:Release")
    values = release.inputs["values"]
    assert (release.inputs["chart"], release.inputs["version"]) == ("argo-rollouts", "2.41.0")
    assert values["controller"]["nodeSelector"] == {POOL_LABEL: "system"}
    providers = values["providerRBAC"]["providers"]
    assert [name for name, on in providers.items() if on] == ["awsLoadBalancerController"]
    assert values["controller"]["metrics"] == {"enabled": True}
    assert {"name": "AWS_REGION", "value": "eu-west-1"} in values["controller"]["extraEnv"]
