"""The AWS Load Balancer Controller: ALBs by IP target, its changes limited to what it tagged
and to the cluster's VPC, nothing failing closed cluster-wide, restricted pods on system nodes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.load_balancer_controller import LoadBalancerController, LoadBalancerControllerArgs
from mlops_guardrails import charts
from mlops_guardrails.vocabulary import POOL_LABEL
from mlops_platform.rendered import RenderedStack
from tests.components.data_fixtures import ACCOUNT, CLUSTER_NAME, REGION, controller_install
from tests.conftest import run_component
from tests.iam_evaluation import decide

VPC = "vpc-0123456789abcdef0"
EC2 = f"arn:aws:ec2:{REGION}:{ACCOUNT}"
ELB = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}"


@pytest.fixture(scope="module")
def rendered() -> RenderedStack:
    return run_component(
        lambda: LoadBalancerController(
            "lbc",
            LoadBalancerControllerArgs(
                install=controller_install(charts.AWS_LOAD_BALANCER_CONTROLLER), vpc_id=VPC
            ),
        )
    )


def policy(rendered: RenderedStack) -> dict[str, Any]:
    [inline] = rendered.of_type("aws:iam/rolePolicy:RolePolicy")
    document: dict[str, Any] = json.loads(inline.inputs["policy"])
    return document


def test_it_changes_only_load_balancers_and_groups_it_tagged(rendered: RenderedStack) -> None:
    document = policy(rendered)
    balancer = f"{ELB}:loadbalancer/app/k8s-serving-ranker/50dc6c495c0c9188"
    owned = {"aws:ResourceTag/elbv2.k8s.aws/cluster": CLUSTER_NAME}
    action = "elasticloadbalancing:DeleteLoadBalancer"
    assert decide([document], action, balancer, owned) == "allow"
    assert decide([document], action, balancer) == "implicit-deny"
    group = f"{EC2}:security-group/sg-0abc"
    assert decide([document], "ec2:DeleteSecurityGroup", group, owned) == "allow"
    assert decide([document], "ec2:DeleteSecurityGroup", group) == "implicit-deny"
    created = {"aws:RequestTag/elbv2.k8s.aws/cluster": CLUSTER_NAME}
    target_group = f"{ELB}:targetgroup/k8s-serving-ranker/73e2d6bc24d8a067"
    create = "elasticloadbalancing:CreateTargetGroup"
    assert decide([document], create, target_group, created) == "allow"
    assert decide([document], create, target_group) == "implicit-deny"


def test_it_opens_node_groups_to_its_balancers_only_in_the_clusters_vpc(
    rendered: RenderedStack,
) -> None:
    document = policy(rendered)
    group = f"{EC2}:security-group/sg-0nodes"
    action = "ec2:AuthorizeSecurityGroupIngress"
    assert decide([document], action, group, {"ec2:Vpc": f"{EC2}:vpc/{VPC}"}) == "allow"
    assert decide([document], action, group, {"ec2:Vpc": f"{EC2}:vpc/vpc-other"}) == (
        "implicit-deny"
    )


def test_nothing_of_it_fails_closed_for_the_whole_cluster_and_its_pods_run_restricted(
    rendered: RenderedStack,
) -> None:
    [release] = rendered.of_type("kubernetes:helm.sh/v3:Release")
    values = release.inputs["values"]
    assert values["enableServiceMutatorWebhook"] is False
    assert values["defaultTargetType"] == "ip"
    assert (values["clusterName"], values["vpcId"], values["region"]) == (CLUSTER_NAME, VPC, REGION)
    assert values["nodeSelector"] == {POOL_LABEL: "system"}
    context = values["securityContext"]
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    [association] = rendered.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
    assert (association.inputs["namespace"], association.inputs["serviceAccount"]) == (
        "kube-system",
        values["serviceAccount"]["name"],
    )
