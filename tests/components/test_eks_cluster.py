"""The EKS cluster component in each of its modes (exposure, protection, logs, access, add-ons),
the config that reaches it, and what every stack exports of it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi_kubernetes as k8s
import pytest

from components.common import ComponentArgsError
from components.eks_cluster import AccessGrant, EksCluster, EksClusterArgs, SystemNodes
from components.kubeconfig import kubeconfig
from components.network import NetworkRef
from components.node_pool import RootVolume
from infra.config import load_platform_config
from infra.program import Platform
from mlops_guardrails.export import SECRET_SIG, SECRET_SIG_KEY
from mlops_guardrails.vocabulary import CONTROL_PLANE_LOG_TYPES
from mlops_platform.mock_cloud import MOCK_ACCOUNT_ID
from mlops_platform.rendered import RecordedResource, RenderedStack
from tests.components.gpu_fixtures import AMI_RELEASE
from tests.configs import with_required_keys
from tests.conftest import named, run_component

CLUSTER = "aws:eks/cluster:Cluster"
ADDON = "aws:eks/addon:Addon"
ASSOCIATION = "aws:eks/accessPolicyAssociation:AccessPolicyAssociation"
ALL_LOG_TYPES = list(CONTROL_PLANE_LOG_TYPES)
# The offline plan deploys as an assumed-role session of this role.
# Not the role the offline caller runs as (platform-deployer): the entry comes from config.
DEPLOYER_ARN = f"arn:aws:iam::{MOCK_ACCOUNT_ID}:role/ci/cluster-deployer"
LOGS_KEY = "arn:aws:kms:eu-west-1:123456789012:key/logs"
EBS_KEY = "arn:aws:kms:eu-west-1:123456789012:key/ebs"
KEY_ADMIN = "arn:aws:iam::123456789012:role/break-glass"
ALLOWED_CIDR = "203.0.113.0/24"
ADDONS_BEFORE_NODES = ("vpc-cni", "kube-proxy", "eks-pod-identity-agent")
ADDONS_AFTER_NODES = ("coredns", "aws-ebs-csi-driver", "eks-node-monitoring-agent")
REQUIRED_ADDONS = ("vpc-cni", "coredns", "kube-proxy", "eks-pod-identity-agent")


def cluster_args(**overrides: Any) -> EksClusterArgs:
    defaults: dict[str, Any] = {
        "cluster_name": "c",
        "kubernetes_version": "1.35",
        "network": NetworkRef("vpc-1", ["subnet-1", "subnet-2"], []),
        "public_endpoint": False,
        "public_access_cidrs": (),
        "log_types": ALL_LOG_TYPES,
        "log_retention_days": 30,
        "logs_kms_key_arn": LOGS_KEY,
        "ebs_kms_key_arn": EBS_KEY,
        "secrets_key_deletion_window_days": 7,
        "addons": {"vpc-cni": "recommended"},
        "system_nodes": SystemNodes(("m7i.large",), 1, 1, 2, RootVolume(50, 125), AMI_RELEASE),
        "upgrade_support": "STANDARD",
        "zonal_shift": False,
        "deletion_protection": False,
        "tags": {},
    }
    return EksClusterArgs(**{**defaults, **overrides})


VPN_CIDR = "10.200.0.0/16"

# Between them the two clusters take every switch both ways.
VARIANTS = {
    "locked_down": cluster_args(
        cluster_name="ml-locked",
        kubernetes_version="1.35",
        network=NetworkRef("vpc-1", ["subnet-a", "subnet-b", "subnet-c"], ["subnet-pub"]),
        log_retention_days=365,
        secrets_key_deletion_window_days=30,
        key_admin_role_arns=(KEY_ADMIN,),
        addons={name: "recommended" for name in (*ADDONS_BEFORE_NODES, *ADDONS_AFTER_NODES)},
        system_nodes=SystemNodes(
            ("m7i.large", "m6i.large"), 3, 3, 6, RootVolume(80, 250), AMI_RELEASE
        ),
        upgrade_support="EXTENDED",
        zonal_shift=True,
        deletion_protection=True,
        access=(
            AccessGrant("platform-admins", "arn:aws:iam::123456789012:role/admins", "admin"),
            AccessGrant(
                "ml-readers",
                "arn:aws:iam::123456789012:role/readers",
                "view",
                ("training", "inference"),
            ),
        ),
        deployer_role_name="ci/cluster-deployer",
        private_access_cidrs=(VPN_CIDR,),
        protect=True,
    ),
    "relaxed": cluster_args(
        cluster_name="ml-relaxed",
        kubernetes_version="1.34",
        public_endpoint=True,
        public_access_cidrs=(ALLOWED_CIDR,),
        log_types=["api", "audit"],
        addons={
            "vpc-cni": "v1.20.1-eksbuild.3",
            "coredns": "v1.11.4-eksbuild.2",
            "kube-proxy": "v1.34.0-eksbuild.1",
            "eks-pod-identity-agent": "v1.3.4-eksbuild.1",
        },
        system_nodes=SystemNodes(("t3.large",), 1, 2, 3, RootVolume(50, 125), AMI_RELEASE),
        access=(
            AccessGrant(
                "ml-editors", "arn:aws:iam::123456789012:role/editors", "edit", ("training",)
            ),
        ),
    ),
}
BOTH = pytest.mark.parametrize("variant", list(VARIANTS))


def with_kubernetes_provider(args: EksClusterArgs) -> None:
    """The cluster, and a Kubernetes provider built from its kubeconfig as the program builds it."""
    cluster = EksCluster("eks", args)
    k8s.Provider("eks", kubeconfig=cluster.kubeconfig)


@pytest.fixture(scope="module")
def renders() -> dict[str, RenderedStack]:
    return {
        variant: run_component(lambda args=args: with_kubernetes_provider(args))
        for variant, args in VARIANTS.items()
    }


@pytest.fixture(scope="module")
def locked_down(renders: dict[str, RenderedStack]) -> RenderedStack:
    return renders["locked_down"]


def cluster_of(rendered: RenderedStack) -> RecordedResource:
    [cluster] = rendered.of_type(CLUSTER)
    return cluster


def addons(rendered: RenderedStack) -> dict[str, RecordedResource]:
    return {a.inputs["addonName"]: a for a in rendered.of_type(ADDON)}


def trust(role: RecordedResource) -> dict[str, Any]:
    [statement] = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    return dict(statement)


@pytest.mark.parametrize(
    ("variant", "expected"),
    [
        (
            "locked_down",
            {
                "subnetIds": ["subnet-a", "subnet-b", "subnet-c"],
                "endpointPrivateAccess": True,
                "endpointPublicAccess": False,
            },
        ),
        (
            "relaxed",
            {
                "subnetIds": ["subnet-1", "subnet-2"],
                "endpointPrivateAccess": True,
                "endpointPublicAccess": True,
                "publicAccessCidrs": [ALLOWED_CIDR],
            },
        ),
    ],
    ids=list(VARIANTS),
)
def test_the_api_is_private_or_public_only_to_its_allow_list(
    renders: dict[str, RenderedStack], variant: str, expected: dict[str, Any]
) -> None:
    assert cluster_of(renders[variant]).inputs["vpcConfig"] == expected


@pytest.mark.parametrize(("variant", "admitted"), [("locked_down", [VPN_CIDR]), ("relaxed", [])])
def test_the_cluster_security_group_admits_https_from_the_networks_given_only(
    renders: dict[str, RenderedStack], variant: str, admitted: list[str]
) -> None:
    cluster = cluster_of(renders[variant])
    rules = renders[variant].of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    assert [r.inputs["cidrIpv4"] for r in rules] == admitted
    for rule in rules:
        assert (
            rule.inputs["securityGroupId"] == cluster.outputs["vpcConfig"]["clusterSecurityGroupId"]
        )
        assert (rule.inputs["ipProtocol"], rule.inputs["fromPort"], rule.inputs["toPort"]) == (
            "tcp",
            443,
            443,
        )


@BOTH
def test_secrets_are_encrypted_under_the_clusters_own_key(
    renders: dict[str, RenderedStack], variant: str
) -> None:
    rendered, args = renders[variant], VARIANTS[variant]
    secrets_key = named(rendered, "aws:kms/key:Key", "eks-secrets-key")
    assert cluster_of(rendered).inputs["encryptionConfig"] == {
        "resources": ["secrets"],
        "provider": {"keyArn": secrets_key.outputs["arn"]},
    }
    assert secrets_key.inputs["deletionWindowInDays"] == args.secrets_key_deletion_window_days
    assert all(arn in secrets_key.inputs["policy"] for arn in args.key_admin_role_arns)


@BOTH
def test_control_plane_logs_go_to_the_precreated_encrypted_log_group(
    renders: dict[str, RenderedStack], variant: str
) -> None:
    rendered, args = renders[variant], VARIANTS[variant]
    cluster = cluster_of(rendered)
    log_group = named(rendered, "aws:cloudwatch/logGroup:LogGroup", "eks-control-plane-logs")
    assert cluster.inputs["enabledClusterLogTypes"] == list(args.log_types)
    assert log_group.inputs["name"] == f"/aws/eks/{args.cluster_name}/cluster"
    assert log_group.inputs["retentionInDays"] == args.log_retention_days
    assert log_group.inputs["kmsKeyId"] == LOGS_KEY
    # Created first, so EKS never makes it unencrypted and unretained.
    assert log_group.urn in cluster.dependencies


@pytest.mark.parametrize(("variant", "protected"), [("locked_down", True), ("relaxed", False)])
def test_a_protected_cluster_keeps_itself_its_secrets_key_and_its_logs(
    renders: dict[str, RenderedStack], variant: str, protected: bool
) -> None:
    rendered = renders[variant]
    stateful = [
        cluster_of(rendered),
        named(rendered, "aws:kms/key:Key", "eks-secrets-key"),
        named(rendered, "aws:cloudwatch/logGroup:LogGroup", "eks-control-plane-logs"),
    ]
    assert [(r.protect, r.retain_on_delete) for r in stateful] == [(protected, protected)] * 3
    assert stateful[2].inputs["deletionProtectionEnabled"] is protected


@pytest.mark.parametrize(
    ("variant", "expected"),
    [
        ("locked_down", (True, {"enabled": True}, {"supportType": "EXTENDED"})),
        ("relaxed", (False, {"enabled": False}, {"supportType": "STANDARD"})),
    ],
    ids=list(VARIANTS),
)
def test_deletion_protection_zonal_shift_and_upgrade_support_are_as_asked(
    renders: dict[str, RenderedStack], variant: str, expected: tuple[Any, ...]
) -> None:
    inputs = cluster_of(renders[variant]).inputs
    actual = (inputs["deletionProtection"], inputs["zonalShiftConfig"], inputs["upgradePolicy"])
    assert actual == expected


@BOTH
def test_the_cluster_has_the_name_and_version_it_is_given(
    renders: dict[str, RenderedStack], variant: str
) -> None:
    rendered, args = renders[variant], VARIANTS[variant]
    inputs = cluster_of(rendered).inputs
    assert (inputs["name"], inputs["version"]) == (args.cluster_name, args.kubernetes_version)
    [component] = rendered.of_type(EksCluster.TYPE)
    assert component.outputs["clusterName"] == inputs["name"]


@BOTH
def test_access_is_api_only_with_no_implicit_creator_admin(
    renders: dict[str, RenderedStack], variant: str
) -> None:
    inputs = cluster_of(renders[variant]).inputs
    assert inputs["accessConfig"] == {
        "authenticationMode": "API",
        "bootstrapClusterCreatorAdminPermissions": False,
    }
    assert inputs["bootstrapSelfManagedAddons"] is False


@dataclass(frozen=True)
class ExpectedAccess:
    variant: str
    key: str
    principal: str
    policy: str
    scope: dict[str, Any]


ACCESS = [
    ExpectedAccess(
        "locked_down", "deployer", DEPLOYER_ARN, "AmazonEKSClusterAdminPolicy", {"type": "cluster"}
    ),
    ExpectedAccess(
        "locked_down",
        "platform-admins",
        "arn:aws:iam::123456789012:role/admins",
        "AmazonEKSAdminPolicy",
        {"type": "cluster"},
    ),
    ExpectedAccess(
        "locked_down",
        "ml-readers",
        "arn:aws:iam::123456789012:role/readers",
        "AmazonEKSViewPolicy",
        {"type": "namespace", "namespaces": ["training", "inference"]},
    ),
    ExpectedAccess(
        "relaxed",
        "ml-editors",
        "arn:aws:iam::123456789012:role/editors",
        "AmazonEKSEditPolicy",
        {"type": "namespace", "namespaces": ["training"]},
    ),
]


@BOTH
def test_only_the_granted_principals_and_the_deployer_if_asked_get_access(
    renders: dict[str, RenderedStack], variant: str
) -> None:
    expected = sorted(f"eks-access-{a.key}" for a in ACCESS if a.variant == variant)
    rendered = renders[variant]
    assert sorted(e.name for e in rendered.of_type("aws:eks/accessEntry:AccessEntry")) == expected
    assert sorted(a.name for a in rendered.of_type(ASSOCIATION)) == expected


@pytest.mark.parametrize("expected", ACCESS, ids=[f"{a.variant}-{a.key}" for a in ACCESS])
def test_each_principal_gets_its_access_policy_and_scope(
    renders: dict[str, RenderedStack], expected: ExpectedAccess
) -> None:
    rendered = renders[expected.variant]
    entry = named(rendered, "aws:eks/accessEntry:AccessEntry", f"eks-access-{expected.key}")
    association = named(rendered, ASSOCIATION, f"eks-access-{expected.key}")
    assert entry.inputs["principalArn"] == association.inputs["principalArn"]
    assert entry.inputs["principalArn"] == expected.principal
    assert entry.inputs["type"] == "STANDARD"
    assert association.inputs["policyArn"] == (
        f"arn:aws:eks::aws:cluster-access-policy/{expected.policy}"
    )
    assert association.inputs["accessScope"] == expected.scope


def test_the_kubeconfig_waits_for_the_deployers_access(locked_down: RenderedStack) -> None:
    [provider] = locked_down.of_type("pulumi:providers:kubernetes")
    deployer_access = {
        named(locked_down, "aws:eks/accessEntry:AccessEntry", "eks-access-deployer").urn,
        named(locked_down, ASSOCIATION, "eks-access-deployer").urn,
    }
    assert deployer_access <= set(provider.property_dependencies["kubeconfig"])


@pytest.mark.parametrize(("variant", "role"), [("locked_down", DEPLOYER_ARN), ("relaxed", None)])
def test_the_kubeconfig_acts_as_the_configured_deployer_whoever_runs_the_deploy(
    renders: dict[str, RenderedStack], variant: str, role: str | None
) -> None:
    [component] = renders[variant].of_type(EksCluster.TYPE)
    exported = json.loads(json.loads(component.outputs["kubeconfig"]["plaintext"]))
    args = exported["users"][0]["user"]["exec"]["args"]
    assert (args[args.index("--role-arn") + 1] if "--role-arn" in args else None) == role


def test_the_kubeconfig_is_a_secret_for_this_cluster(locked_down: RenderedStack) -> None:
    cluster = cluster_of(locked_down)
    [component] = locked_down.of_type(EksCluster.TYPE)
    exported = component.outputs["kubeconfig"]
    assert exported[SECRET_SIG_KEY] == SECRET_SIG
    assert json.loads(exported["plaintext"]) == kubeconfig(
        cluster.inputs["name"],
        cluster.outputs["endpoint"],
        cluster.outputs["certificateAuthority"]["data"],
        "eu-west-1",
        role_arn=DEPLOYER_ARN,
    )


def test_irsa_provider_trusts_the_cluster_issuer_for_sts_only(locked_down: RenderedStack) -> None:
    [provider] = locked_down.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    issuer = cluster_of(locked_down).outputs["identities"][0]["oidcs"][0]["issuer"]
    assert provider.inputs["url"] == issuer
    assert provider.inputs["clientIdLists"] == ["sts.amazonaws.com"]
    [component] = locked_down.of_type(EksCluster.TYPE)
    assert component.outputs["oidcProviderArn"] == provider.outputs["arn"]
    assert component.outputs["oidcIssuerUrl"] == issuer


@BOTH
def test_exactly_the_listed_addons_are_installed_overwriting_conflicts(
    renders: dict[str, RenderedStack], variant: str
) -> None:
    installed = addons(renders[variant])
    assert sorted(installed) == sorted(VARIANTS[variant].addons)
    for addon in installed.values():
        assert addon.inputs["resolveConflictsOnCreate"] == "OVERWRITE"
        assert addon.inputs["resolveConflictsOnUpdate"] == "OVERWRITE"


def test_a_pinned_addon_version_is_used_as_given(renders: dict[str, RenderedStack]) -> None:
    installed = addons(renders["relaxed"])
    assert {name: a.inputs["addonVersion"] for name, a in installed.items()} == dict(
        VARIANTS["relaxed"].addons
    )


def test_a_recommended_addon_takes_the_version_eks_recommends_for_the_cluster(
    locked_down: RenderedStack,
) -> None:
    # The offline plan's stand-in for the version AWS looks up at deploy time.
    recommended = "v0.0.0-eksbuild.0+recommended-for-1.35"
    versions = {a.inputs["addonVersion"] for a in addons(locked_down).values()}
    assert versions == {recommended}


def test_the_vpc_cni_enforces_network_policy(locked_down: RenderedStack) -> None:
    configured = {
        name: json.loads(a.inputs["configurationValues"])
        for name, a in addons(locked_down).items()
        if "configurationValues" in a.inputs
    }
    # Team namespaces' NetworkPolicies are enforced only when the CNI is told to.
    assert configured == {"vpc-cni": {"enableNetworkPolicy": "true"}}


def test_addons_that_need_running_pods_wait_for_the_system_nodes(
    locked_down: RenderedStack,
) -> None:
    system = named(locked_down, "mlops:node_pool:NodePool", "eks-system")
    # depends_on a component waits for its children: here the node group itself.
    node_group = named(locked_down, "aws:eks/nodeGroup:NodeGroup", "eks-system-node-group")
    installed = addons(locked_down)
    for name in ADDONS_AFTER_NODES:
        assert node_group.urn in installed[name].dependencies
    for name in ADDONS_BEFORE_NODES:
        assert installed[name].urn in system.dependencies


@pytest.mark.parametrize(
    ("variant", "expected"),
    [
        ("locked_down", ((3, 3, 6), ["m7i.large", "m6i.large"], (80, 250))),
        ("relaxed", ((1, 2, 3), ["t3.large"], (50, 125))),
    ],
    ids=list(VARIANTS),
)
def test_system_nodes_are_on_demand_x86_sized_as_asked_and_repair_themselves(
    renders: dict[str, RenderedStack], variant: str, expected: tuple[Any, ...]
) -> None:
    rendered = renders[variant]
    sizes, instance_types, (volume_gib, throughput) = expected
    node_group = named(rendered, "aws:eks/nodeGroup:NodeGroup", "eks-system-node-group")
    template = named(
        rendered, "aws:ec2/launchTemplate:LaunchTemplate", "eks-system-launch-template"
    )
    inputs = node_group.inputs
    scaling = inputs["scalingConfig"]
    assert (scaling["minSize"], scaling["desiredSize"], scaling["maxSize"]) == sizes
    assert inputs["instanceTypes"] == instance_types
    assert (inputs["capacityType"], inputs["amiType"]) == ("ON_DEMAND", "AL2023_x86_64_STANDARD")
    assert inputs["labels"] == {"mlops.platform/pool": "system"}
    assert inputs["nodeRepairConfig"] == {"enabled": True}
    assert inputs["subnetIds"] == list(VARIANTS[variant].network.private_subnet_ids)
    [root] = template.inputs["blockDeviceMappings"]
    ebs = root["ebs"]
    assert (ebs["volumeSize"], ebs["throughput"], ebs["kmsKeyId"]) == (
        volume_gib,
        throughput,
        EBS_KEY,
    )
    node_role = named(rendered, "aws:iam/role:Role", "eks-node-role")
    assert inputs["nodeRoleArn"] == node_role.outputs["arn"]


def test_the_ebs_csi_role_trusts_exactly_its_service_account(locked_down: RenderedStack) -> None:
    statement = trust(named(locked_down, "aws:iam/role:Role", "eks-ebs-csi-role"))
    assert statement["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    assert statement["Condition"]["StringEquals"] == {
        "aws:SourceAccount": MOCK_ACCOUNT_ID,
        "aws:RequestTag/kubernetes-namespace": "kube-system",
        "aws:RequestTag/kubernetes-service-account": "ebs-csi-controller-sa",
    }
    assert statement["Condition"]["ArnEquals"] == {
        "aws:SourceArn": cluster_of(locked_down).outputs["arn"]
    }
    association = named(
        locked_down,
        "aws:eks/podIdentityAssociation:PodIdentityAssociation",
        "eks-ebs-csi-association",
    )
    assert (association.inputs["namespace"], association.inputs["serviceAccount"]) == (
        "kube-system",
        "ebs-csi-controller-sa",
    )


def test_the_ebs_csi_role_is_bounded_and_may_use_only_the_ebs_key(
    locked_down: RenderedStack,
) -> None:
    role = named(locked_down, "aws:iam/role:Role", "eks-ebs-csi-role")
    boundary = named(locked_down, "aws:iam/policy:Policy", "eks-workload-boundary")
    assert role.inputs["permissionsBoundary"] == boundary.outputs["arn"]
    inline = named(locked_down, "aws:iam/rolePolicy:RolePolicy", "eks-ebs-csi-inline")
    assert {s["Resource"] for s in json.loads(inline.inputs["policy"])["Statement"]} == {EBS_KEY}
    attachment = named(
        locked_down, "aws:iam/rolePolicyAttachment:RolePolicyAttachment", "eks-ebs-csi-driver"
    )
    assert (
        attachment.inputs["policyArn"]
        == "arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"
    )
    # The driver starts only once its role, grants and association exist.
    driver_role = named(locked_down, "mlops:pod_role:PodRole", "eks-ebs-csi")
    granted = {r.urn for r in locked_down.children(driver_role.urn)}
    assert granted <= set(addons(locked_down)["aws-ebs-csi-driver"].dependencies)


def test_a_cluster_without_the_ebs_csi_driver_has_no_driver_role(
    renders: dict[str, RenderedStack],
) -> None:
    assert not renders["relaxed"].of_type("mlops:pod_role:PodRole")


def test_the_node_role_has_only_what_nodes_need(locked_down: RenderedStack) -> None:
    node_role = named(locked_down, "aws:iam/role:Role", "eks-node-role")
    assert trust(node_role)["Principal"] == {"Service": "ec2.amazonaws.com"}
    attached = sorted(
        a.inputs["policyArn"].rsplit("/", 1)[-1]
        for a in locked_down.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a.name.startswith("eks-node-")
    )
    assert attached == [
        "AmazonEC2ContainerRegistryPullOnly",
        "AmazonEKSWorkerNodePolicy",
        "AmazonEKS_CNI_Policy",
        "AmazonSSMManagedInstanceCore",
    ]


def test_the_workload_boundary_keeps_iam_out_of_reach(locked_down: RenderedStack) -> None:
    boundary = named(locked_down, "aws:iam/policy:Policy", "eks-workload-boundary")
    statements = {s["Sid"]: s for s in json.loads(boundary.inputs["policy"])["Statement"]}
    actions = statements["WorkloadServices"]["Action"]
    assert not [a for a in actions if a.startswith(("iam:", "organizations:", "account:"))]
    assert "sts:AssumeRole" not in actions
    node_role = named(locked_down, "aws:iam/role:Role", "eks-node-role")
    assert statements["PassTheNodeRole"]["Resource"] == node_role.outputs["arn"]


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


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ("dev", (True, ["api", "audit", "authenticator"], 30, False, False, (1, 2, 3))),
        ("staging", (False, ALL_LOG_TYPES, 90, True, True, (2, 2, 4))),
        ("prod", (False, ALL_LOG_TYPES, 365, True, True, (3, 3, 6))),
    ],
)
def test_each_environment_profile_hardens_the_cluster_as_far_as_it_needs(
    environment: str, expected: tuple[Any, ...]
) -> None:
    raw: dict[str, Any] = {"environment": environment}
    if environment == "dev":
        raw["eks"] = {"endpoint": {"publicAccessCidrs": [ALLOWED_CIDR]}}
    eks = load_platform_config(
        with_required_keys(raw), stack=environment, project="mlops-platform"
    ).eks
    nodes = eks.system_nodes
    assert (
        eks.endpoint.public_access,
        eks.log_types,
        eks.log_retention_days,
        eks.zonal_shift,
        eks.deletion_protection,
        (nodes.min_size, nodes.desired_size, nodes.max_size),
    ) == expected


CONFIGURED_SUBNETS = ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]
STACK_CONFIG: dict[str, Any] = {
    "environment": "dev",
    "protectStatefulResources": True,
    "kms": {"deletionWindowDays": 10, "adminRoleArns": [KEY_ADMIN]},
    "network": {
        "existing": {
            "vpcId": "vpc-0123456789abcdef0",
            "privateSubnets": [
                {"id": subnet, "zone": f"eu-west-1{letter}"}
                for subnet, letter in zip(CONFIGURED_SUBNETS, "ab", strict=True)
            ],
        }
    },
    "eks": {
        "version": "1.34",
        "endpoint": {"publicAccessCidrs": [ALLOWED_CIDR]},
        "logTypes": ["api", "scheduler"],
        "logRetentionDays": 60,
        "upgradeSupport": "EXTENDED",
        "zonalShift": True,
        "deletionProtection": True,
        "deployerIsClusterAdmin": False,
        "addons": {
            "vpc-cni": {"version": "v1.20.1-eksbuild.3"},
            "coredns": {},
            "kube-proxy": {},
            "eks-pod-identity-agent": {},
            # Only the required ones: the others are removed from the defaults.
            "aws-ebs-csi-driver": None,
            "eks-node-monitoring-agent": None,
        },
        "systemNodes": {
            "instanceTypes": ["m7i.xlarge"],
            "minSize": 2,
            "desiredSize": 3,
            "maxSize": 5,
            "rootVolumeGib": 80,
        },
        "access": {
            "platform-admins": {
                "principalArn": "arn:aws:iam::123456789012:role/platform-admin",
                "access": "cluster-admin",
            },
            "ml-readers": {
                "principalArn": "arn:aws:iam::123456789012:role/ml-readers",
                "access": "view",
                "namespaces": ["training", "inference"],
            },
        },
    },
}


@pytest.fixture(scope="module")
def from_config() -> RenderedStack:
    """The cluster as the program builds it from a stack's config (`Platform.cluster`), without
    the rest of the program: this is the config -> component wiring."""
    config = load_platform_config(STACK_CONFIG, stack="dev", project="mlops-platform")
    platform = Platform(config, stack="dev", project="mlops-platform")

    def make() -> None:
        logs_key = platform.key("logs", "control-plane logs")
        platform.cluster(platform.network(logs_key), logs_key, platform.key("ebs", "volumes"))

    return run_component(make, stack="dev")


def test_the_stack_config_reaches_the_cluster(from_config: RenderedStack) -> None:
    cluster = cluster_of(from_config)
    inputs = cluster.inputs
    # Unnamed in config: named after project and stack.
    assert (inputs["name"], inputs["version"]) == ("mlops-platform-dev", "1.34")
    assert inputs["vpcConfig"] == {
        "subnetIds": CONFIGURED_SUBNETS,
        "endpointPrivateAccess": True,
        "endpointPublicAccess": True,
        "publicAccessCidrs": [ALLOWED_CIDR],
    }
    assert inputs["enabledClusterLogTypes"] == ["api", "scheduler"]
    assert inputs["upgradePolicy"] == {"supportType": "EXTENDED"}
    assert (inputs["zonalShiftConfig"], inputs["deletionProtection"]) == ({"enabled": True}, True)
    assert (cluster.protect, cluster.retain_on_delete) == (True, True)
    log_group = named(from_config, "aws:cloudwatch/logGroup:LogGroup", "eks-control-plane-logs")
    logs_key = named(from_config, "aws:kms/key:Key", "logs-key")
    assert log_group.inputs["retentionInDays"] == 60
    assert log_group.inputs["kmsKeyId"] == logs_key.outputs["arn"]
    secrets_key = named(from_config, "aws:kms/key:Key", "eks-secrets-key")
    assert secrets_key.inputs["deletionWindowInDays"] == 10
    assert KEY_ADMIN in secrets_key.inputs["policy"]


def test_configured_principals_get_their_access_policy_and_scope(
    from_config: RenderedStack,
) -> None:
    associations = {a.name: a.inputs for a in from_config.of_type(ASSOCIATION)}
    # deployerIsClusterAdmin is off, so only the configured principals.
    assert sorted(associations) == ["eks-access-ml-readers", "eks-access-platform-admins"]
    readers = associations["eks-access-ml-readers"]
    assert readers["principalArn"] == "arn:aws:iam::123456789012:role/ml-readers"
    assert readers["policyArn"] == "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy"
    assert readers["accessScope"] == {"type": "namespace", "namespaces": ["training", "inference"]}
    admins = associations["eks-access-platform-admins"]
    assert admins["principalArn"] == "arn:aws:iam::123456789012:role/platform-admin"
    assert admins["policyArn"].endswith("/AmazonEKSClusterAdminPolicy")
    assert admins["accessScope"] == {"type": "cluster"}


def test_configured_addons_and_system_nodes_reach_the_cluster(from_config: RenderedStack) -> None:
    installed = addons(from_config)
    assert sorted(installed) == sorted(REQUIRED_ADDONS)
    assert installed["vpc-cni"].inputs["addonVersion"] == "v1.20.1-eksbuild.3"
    assert installed["coredns"].inputs["addonVersion"].endswith("recommended-for-1.34")
    node_group = named(from_config, "aws:eks/nodeGroup:NodeGroup", "eks-system-node-group")
    assert node_group.inputs["instanceTypes"] == ["m7i.xlarge"]
    assert node_group.inputs["scalingConfig"] == {"minSize": 2, "desiredSize": 3, "maxSize": 5}
    template = named(
        from_config, "aws:ec2/launchTemplate:LaunchTemplate", "eks-system-launch-template"
    )
    ebs_key = named(from_config, "aws:kms/key:Key", "ebs-key")
    [root] = template.inputs["blockDeviceMappings"]
    assert (root["ebs"]["volumeSize"], root["ebs"]["kmsKeyId"]) == (80, ebs_key.outputs["arn"])


def test_every_stack_exports_its_clusters_identity_and_a_secret_kubeconfig(
    rendered: RenderedStack,
) -> None:
    """A stack-wide invariant: consumers of any stack find the cluster through these exports."""
    cluster = cluster_of(rendered)
    [oidc] = rendered.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    outputs = rendered.outputs
    assert outputs["clusterName"] == cluster.inputs["name"]
    assert outputs["oidcIssuerUrl"] == oidc.inputs["url"]
    assert outputs["oidcProviderArn"] == oidc.outputs["arn"]
    assert outputs["kubeconfig"][SECRET_SIG_KEY] == SECRET_SIG
    config = json.loads(json.loads(outputs["kubeconfig"]["plaintext"]))
    assert config["current-context"] == cluster.inputs["name"]
