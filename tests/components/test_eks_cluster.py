"""The EKS cluster in each stack's plan: exposure, encryption, logs, access, add-ons."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from components.common import ComponentArgsError
from components.eks_cluster import EksCluster, EksClusterArgs, SystemNodes
from components.network import NetworkRef
from mlops_guardrails.export import SECRET_SIG, SECRET_SIG_KEY
from mlops_guardrails.vocabulary import CONTROL_PLANE_LOG_TYPES
from mlops_platform.engine import render_stack
from mlops_platform.project import PulumiProject
from mlops_platform.rendered import RecordedResource, RenderedStack
from tests.conftest import named, run_component

CLUSTER = "aws:eks/cluster:Cluster"
ALL_LOG_TYPES = list(CONTROL_PLANE_LOG_TYPES)


def cluster_of(rendered: RenderedStack) -> RecordedResource:
    [cluster] = rendered.of_type(CLUSTER)
    return cluster


def test_prod_is_private_encrypted_fully_logged_and_protected(
    rendered_stacks: dict[str, RenderedStack],
) -> None:
    prod = rendered_stacks["prod"]
    inputs = cluster_of(prod).inputs
    assert inputs["vpcConfig"]["endpointPublicAccess"] is False
    assert inputs["vpcConfig"]["endpointPrivateAccess"] is True
    assert "publicAccessCidrs" not in inputs["vpcConfig"]
    secrets_key = named(prod, "aws:kms/key:Key", "eks-secrets-key")
    assert inputs["encryptionConfig"] == {
        "resources": ["secrets"],
        "provider": {"keyArn": secrets_key.outputs["arn"]},
    }
    assert inputs["enabledClusterLogTypes"] == ALL_LOG_TYPES
    assert inputs["deletionProtection"] is True
    assert inputs["zonalShiftConfig"] == {"enabled": True}
    assert cluster_of(prod).protect


def test_dev_is_public_only_to_its_allow_list(rendered_stacks: dict[str, RenderedStack]) -> None:
    vpc_config = cluster_of(rendered_stacks["dev"]).inputs["vpcConfig"]
    assert vpc_config["endpointPublicAccess"] is True
    assert vpc_config["publicAccessCidrs"] == ["203.0.113.0/24"]
    assert vpc_config["endpointPrivateAccess"] is True


def test_access_is_api_only_with_no_implicit_creator_admin(rendered: RenderedStack) -> None:
    inputs = cluster_of(rendered).inputs
    assert inputs["accessConfig"] == {
        "authenticationMode": "API",
        "bootstrapClusterCreatorAdminPermissions": False,
    }
    assert inputs["bootstrapSelfManagedAddons"] is False


def test_the_deployer_gets_an_explicit_cluster_admin_entry(rendered: RenderedStack) -> None:
    entry = named(rendered, "aws:eks/accessEntry:AccessEntry", "eks-access-deployer")
    association = named(
        rendered, "aws:eks/accessPolicyAssociation:AccessPolicyAssociation", "eks-access-deployer"
    )
    deployer = "arn:aws:iam::123456789012:role/platform-deployer"
    assert entry.inputs["principalArn"] == association.inputs["principalArn"] == deployer
    assert association.inputs["policyArn"].endswith("/AmazonEKSClusterAdminPolicy")
    assert association.inputs["accessScope"] == {"type": "cluster"}


def test_the_kubeconfig_waits_for_the_deployers_access(rendered: RenderedStack) -> None:
    [provider] = rendered.of_type("pulumi:providers:kubernetes")
    association = named(
        rendered, "aws:eks/accessPolicyAssociation:AccessPolicyAssociation", "eks-access-deployer"
    )
    assert association.urn in provider.property_dependencies["kubeconfig"]


def test_control_plane_logs_go_to_the_precreated_encrypted_log_group(
    rendered_stacks: dict[str, RenderedStack],
) -> None:
    for stack, days in {"dev": 30, "staging": 90, "prod": 365}.items():
        rendered = rendered_stacks[stack]
        cluster = cluster_of(rendered)
        log_group = named(rendered, "aws:cloudwatch/logGroup:LogGroup", "eks-control-plane-logs")
        assert log_group.inputs["name"] == f"/aws/eks/{cluster.inputs['name']}/cluster"
        assert log_group.inputs["retentionInDays"] == days
        assert (
            log_group.inputs["kmsKeyId"]
            == named(rendered, "aws:kms/key:Key", "logs-key").outputs["arn"]
        )
        assert log_group.urn in cluster.dependencies


def test_cluster_name_and_version_come_from_config(rendered: RenderedStack) -> None:
    inputs = cluster_of(rendered).inputs
    assert inputs["name"] == f"mlops-platform-{rendered.stack}"
    assert inputs["version"] == "1.35"
    assert rendered.outputs["clusterName"] == inputs["name"]


def test_irsa_provider_trusts_the_cluster_issuer_for_sts_only(rendered: RenderedStack) -> None:
    [provider] = rendered.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    issuer = cluster_of(rendered).outputs["identities"][0]["oidcs"][0]["issuer"]
    assert provider.inputs["url"] == issuer
    assert provider.inputs["clientIdLists"] == ["sts.amazonaws.com"]
    assert rendered.outputs["oidcProviderArn"] == provider.outputs["arn"]
    assert rendered.outputs["oidcIssuerUrl"] == issuer


def addons(rendered: RenderedStack) -> dict[str, RecordedResource]:
    return {a.inputs["addonName"]: a for a in rendered.of_type("aws:eks/addon:Addon")}


def test_every_managed_addon_is_installed_with_a_stated_version(rendered: RenderedStack) -> None:
    installed = addons(rendered)
    assert sorted(installed) == sorted(
        [
            "vpc-cni",
            "coredns",
            "kube-proxy",
            "aws-ebs-csi-driver",
            "eks-pod-identity-agent",
            "eks-node-monitoring-agent",
        ]
    )
    for addon in installed.values():
        assert addon.inputs["addonVersion"]
        assert addon.inputs["resolveConflictsOnUpdate"] == "OVERWRITE"


def test_addons_that_need_running_pods_wait_for_the_system_nodes(rendered: RenderedStack) -> None:
    system = named(rendered, "mlops:node_pool:NodePool", "eks-system")
    # depends_on a component waits for its children: here the node group itself.
    node_group = named(rendered, "aws:eks/nodeGroup:NodeGroup", "eks-system-node-group")
    installed = addons(rendered)
    for name in ("coredns", "aws-ebs-csi-driver", "eks-node-monitoring-agent"):
        assert node_group.urn in installed[name].dependencies
    for name in ("vpc-cni", "kube-proxy", "eks-pod-identity-agent"):
        assert installed[name].urn in system.dependencies


def trust(role: RecordedResource) -> dict[str, Any]:
    [statement] = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    return dict(statement)


def test_the_ebs_csi_role_trusts_exactly_its_service_account(rendered: RenderedStack) -> None:
    role = named(rendered, "aws:iam/role:Role", "eks-ebs-csi-role")
    statement = trust(role)
    assert statement["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    assert statement["Condition"]["StringEquals"] == {
        "aws:SourceAccount": "123456789012",
        "aws:RequestTag/kubernetes-namespace": "kube-system",
        "aws:RequestTag/kubernetes-service-account": "ebs-csi-controller-sa",
    }
    assert statement["Condition"]["ArnEquals"] == {
        "aws:SourceArn": cluster_of(rendered).outputs["arn"]
    }
    association = named(
        rendered, "aws:eks/podIdentityAssociation:PodIdentityAssociation", "eks-ebs-csi-association"
    )
    assert (association.inputs["namespace"], association.inputs["serviceAccount"]) == (
        "kube-system",
        "ebs-csi-controller-sa",
    )


def test_the_ebs_csi_role_is_bounded_and_may_use_only_the_ebs_key(rendered: RenderedStack) -> None:
    role = named(rendered, "aws:iam/role:Role", "eks-ebs-csi-role")
    boundary = named(rendered, "aws:iam/policy:Policy", "eks-workload-boundary")
    assert role.inputs["permissionsBoundary"] == boundary.outputs["arn"]
    inline = named(rendered, "aws:iam/rolePolicy:RolePolicy", "eks-ebs-csi-inline")
    ebs_key = named(rendered, "aws:kms/key:Key", "ebs-key").outputs["arn"]
    assert {s["Resource"] for s in json.loads(inline.inputs["policy"])["Statement"]} == {ebs_key}
    [attachment] = [
        a
        for a in rendered.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a.name == "eks-ebs-csi-driver"
    ]
    assert (
        attachment.inputs["policyArn"]
        == "arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"
    )


def test_the_node_role_has_only_what_nodes_need(rendered: RenderedStack) -> None:
    node_role = named(rendered, "aws:iam/role:Role", "eks-node-role")
    assert trust(node_role)["Principal"] == {"Service": "ec2.amazonaws.com"}
    attached = sorted(
        a.inputs["policyArn"].rsplit("/", 1)[-1]
        for a in rendered.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a.name.startswith("eks-node-")
    )
    assert attached == [
        "AmazonEC2ContainerRegistryPullOnly",
        "AmazonEKSWorkerNodePolicy",
        "AmazonEKS_CNI_Policy",
        "AmazonSSMManagedInstanceCore",
    ]


def test_the_workload_boundary_keeps_iam_out_of_reach(rendered: RenderedStack) -> None:
    boundary = named(rendered, "aws:iam/policy:Policy", "eks-workload-boundary")
    actions = json.loads(boundary.inputs["policy"])["Statement"][0]["Action"]
    assert not [a for a in actions if a.startswith(("iam:", "organizations:", "account:"))]
    assert "sts:AssumeRole" not in actions


def test_kubeconfig_is_a_secret_using_exec_auth(rendered: RenderedStack) -> None:
    [stack] = rendered.of_type("pulumi:pulumi:Stack")
    exported = stack.outputs["kubeconfig"]
    assert exported[SECRET_SIG_KEY] == SECRET_SIG
    config = json.loads(json.loads(exported["plaintext"]))
    [user] = config["users"]
    assert user["user"]["exec"]["command"] == "aws"
    assert user["user"]["exec"]["args"][:2] == ["eks", "get-token"]
    assert "token" not in json.dumps(user).replace("get-token", "")


def cluster_args(**overrides: Any) -> EksClusterArgs:
    defaults: dict[str, Any] = {
        "cluster_name": "c",
        "kubernetes_version": "1.35",
        "network": NetworkRef("vpc-1", ["subnet-1", "subnet-2"], []),
        "public_endpoint": False,
        "public_access_cidrs": (),
        "log_types": ALL_LOG_TYPES,
        "log_retention_days": 30,
        "logs_kms_key_arn": "arn:aws:kms:eu-west-1:123456789012:key/l",
        "ebs_kms_key_arn": "arn:aws:kms:eu-west-1:123456789012:key/e",
        "secrets_key_deletion_window_days": 7,
        "addons": {"vpc-cni": "recommended"},
        "system_nodes": SystemNodes(("m7i.large",), 1, 1, 2, 50, 125),
        "upgrade_support": "STANDARD",
        "zonal_shift": False,
        "deletion_protection": False,
        "tags": {},
    }
    return EksClusterArgs(**{**defaults, **overrides})


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"addons": {"istio": "recommended"}}, "unknown add-ons: \\['istio'\\]"),
        ({"public_endpoint": True}, "a public endpoint needs an allow-list"),
    ],
)
def test_conflicting_arguments_are_refused(overrides: dict[str, Any], problem: str) -> None:
    with pytest.raises(ComponentArgsError, match=problem):
        run_component(lambda: EksCluster("eks", cluster_args(**overrides)))


def test_an_exact_addon_version_is_used_as_given() -> None:
    rendered = run_component(
        lambda: EksCluster("eks", cluster_args(addons={"vpc-cni": "v1.20.1-eksbuild.3"}))
    )
    [addon] = rendered.of_type("aws:eks/addon:Addon")
    assert addon.inputs["addonVersion"] == "v1.20.1-eksbuild.3"


def test_configured_principals_get_their_access_policy_and_scope(
    make_project: Callable[[str, str], PulumiProject],
) -> None:
    project = make_project(
        "dev",
        """
        config:
          aws:region: eu-west-1
          mlops-platform:platform:
            environment: dev
            eks:
              endpoint: {publicAccessCidrs: ["203.0.113.0/24"]}
              access:
                platform-admins:
                  principalArn: arn:aws:iam::123456789012:role/platform-admin
                  access: cluster-admin
                ml-readers:
                  principalArn: arn:aws:iam::123456789012:role/ml-readers
                  access: view
                  namespaces: [training, inference]
        """,
    )
    rendered = render_stack(project, "dev")
    associations = {
        a.name: a.inputs
        for a in rendered.of_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
    }
    assert sorted(associations) == [
        "eks-access-deployer",
        "eks-access-ml-readers",
        "eks-access-platform-admins",
    ]
    readers = associations["eks-access-ml-readers"]
    assert readers["policyArn"] == "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy"
    assert readers["accessScope"] == {"type": "namespace", "namespaces": ["training", "inference"]}
    admins = associations["eks-access-platform-admins"]
    assert admins["principalArn"] == "arn:aws:iam::123456789012:role/platform-admin"
    assert admins["accessScope"] == {"type": "cluster"}
