"""A hardened EKS cluster: private API, encrypted secrets, full audit logs, explicit access only.

Add-ons are split by what they need: vpc-cni, kube-proxy and the Pod Identity agent go in before
nodes exist (nodes cannot become Ready without them); coredns, the EBS CSI driver and the node
monitoring agent go in after the system node group, because they wait for running pods.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

import pulumi
import pulumi_aws as aws

from components.common import (
    AccountContext,
    ComponentArgsError,
    account_context,
    encrypted_log_group,
    https_ingress,
    stateful_options,
)
from components.kms_key import KmsKey, KmsKeyArgs
from components.kubeconfig import kubeconfig
from components.network import NetworkRef
from components.node_pool import AmiRelease, NodePool, NodePoolArgs, RootVolume
from components.pod_role import PodRole, PodRoleArgs
from components.policy_documents import ebs_volume_key_use, service_trust, workload_boundary
from mlops_guardrails.vocabulary import POOL_LABEL, SYSTEM_POOL

ACCESS_POLICIES: Final = {
    "cluster-admin": "AmazonEKSClusterAdminPolicy",
    "admin": "AmazonEKSAdminPolicy",
    "edit": "AmazonEKSEditPolicy",
    "view": "AmazonEKSViewPolicy",
}
ADDONS_BEFORE_NODES: Final = ("vpc-cni", "kube-proxy", "eks-pod-identity-agent")
ADDONS_AFTER_NODES: Final = ("coredns", "aws-ebs-csi-driver", "eks-node-monitoring-agent")
NODE_POLICIES: Final = (
    "AmazonEKSWorkerNodePolicy",
    "AmazonEC2ContainerRegistryPullOnly",
    "AmazonEKS_CNI_Policy",
    "AmazonSSMManagedInstanceCore",
)
EBS_CSI_SERVICE_ACCOUNT: Final = ("kube-system", "ebs-csi-controller-sa")
# The VPC CNI enforces NetworkPolicy only when told to; team namespaces rely on it.
ADDON_CONFIGURATION: Final = {"vpc-cni": json.dumps({"enableNetworkPolicy": "true"})}
RECOMMENDED: Final = "recommended"


DEPLOYER_ACCESS_KEY: Final = "deployer"
"""The key of the access entry the principal running `pulumi up` gets."""


@dataclass(frozen=True)
class AccessGrant:
    key: str
    """Stable name for the access entry's resources."""
    principal_arn: pulumi.Input[str]
    access: str
    """cluster-admin, admin, edit or view."""
    namespaces: Sequence[str] = ()
    """Empty for the whole cluster."""


@dataclass(frozen=True)
class SystemNodes:
    instance_types: Sequence[str]
    min_size: int
    desired_size: int
    max_size: int
    root_volume: RootVolume
    ami_release: AmiRelease


@dataclass(frozen=True)
class EksClusterArgs:
    cluster_name: str
    """Known up front: the control-plane log group is created under it before the cluster."""
    kubernetes_version: str
    network: NetworkRef
    public_endpoint: bool
    public_access_cidrs: Sequence[str]
    log_types: Sequence[str]
    log_retention_days: int
    logs_kms_key_arn: pulumi.Input[str]
    ebs_kms_key_arn: pulumi.Input[str]
    """Encrypts node root volumes and EBS CSI volumes."""
    secrets_key_deletion_window_days: int
    addons: Mapping[str, str]
    """Add-on name to an exact version or `recommended`."""
    system_nodes: SystemNodes
    upgrade_support: str
    zonal_shift: bool
    deletion_protection: bool
    tags: Mapping[str, str]
    access: Sequence[AccessGrant] = ()
    private_access_cidrs: Sequence[str] = ()
    """Networks (VPN, Direct Connect, peered VPCs) the cluster security group admits on HTTPS,
    so they reach the private endpoint; without any, it admits only itself."""
    deployer_role_name: str | None = None
    """The IAM role (name, in the cluster's account) that deploys and administers the cluster:
    it gets a cluster-admin access entry, and the stack's kubeconfig assumes it, whoever runs
    `pulumi up`. None: no such entry, and the kubeconfig uses the caller's own identity."""
    key_admin_role_arns: Sequence[str] = field(default_factory=tuple)
    protect: bool = False


class EksCluster(pulumi.ComponentResource):
    TYPE = "mlops:eks_cluster:EksCluster"

    cluster_name: pulumi.Output[str]
    cluster_arn: pulumi.Output[str]
    endpoint: pulumi.Output[str]
    oidc_issuer_url: pulumi.Output[str]
    oidc_provider_arn: pulumi.Output[str]
    node_role_arn: pulumi.Output[str]
    security_group_id: pulumi.Output[str]
    """The cluster security group EKS creates; nodes with their own interfaces (EFA) join it."""
    workload_boundary_arn: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    """Secret; resolves once the deployer can use it (its access entry exists)."""

    def __init__(
        self, name: str, args: EksClusterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(self.TYPE, name, None, opts)
        unknown = sorted(set(args.addons) - {*ADDONS_BEFORE_NODES, *ADDONS_AFTER_NODES})
        if unknown:
            raise ComponentArgsError(self.TYPE, name, f"unknown add-ons: {unknown}")
        if args.public_endpoint and not args.public_access_cidrs:
            raise ComponentArgsError(self.TYPE, name, "a public endpoint needs an allow-list")
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)
        account = account_context(self)

        secrets_key = KmsKey(
            f"{name}-secrets",
            KmsKeyArgs(
                description=f"EKS {args.cluster_name}: envelope encryption of Kubernetes secrets",
                deletion_window_days=args.secrets_key_deletion_window_days,
                admin_role_arns=args.key_admin_role_arns,
                tags=tags,
                protect=args.protect,
            ),
            opts=child,
        )
        cluster_role = aws.iam.Role(
            f"{name}-cluster-role",
            assume_role_policy=pulumi.Output.json_dumps(service_trust("eks.amazonaws.com")),
            tags=tags,
            opts=child,
        )
        cluster_policy = aws.iam.RolePolicyAttachment(
            f"{name}-cluster-policy",
            role=cluster_role.name,
            policy_arn=_managed_policy(account, "AmazonEKSClusterPolicy"),
            opts=child,
        )
        # Created first, under the name EKS writes to, so it is encrypted and retained from the
        # first log line instead of being created by EKS without either.
        log_group = encrypted_log_group(
            f"{name}-control-plane-logs",
            self,
            log_group_name=f"/aws/eks/{args.cluster_name}/cluster",
            kms_key_arn=args.logs_kms_key_arn,
            retention_days=args.log_retention_days,
            tags=tags,
            protect=args.protect,
        )
        cluster = aws.eks.Cluster(
            f"{name}-cluster",
            name=args.cluster_name,
            version=args.kubernetes_version,
            role_arn=cluster_role.arn,
            vpc_config=aws.eks.ClusterVpcConfigArgs(
                subnet_ids=args.network.private_subnet_ids,
                endpoint_private_access=True,
                endpoint_public_access=args.public_endpoint,
                public_access_cidrs=list(args.public_access_cidrs)
                if args.public_endpoint
                else None,
            ),
            encryption_config=aws.eks.ClusterEncryptionConfigArgs(
                provider=aws.eks.ClusterEncryptionConfigProviderArgs(key_arn=secrets_key.arn),
                resources=["secrets"],
            ),
            enabled_cluster_log_types=list(args.log_types),
            access_config=aws.eks.ClusterAccessConfigArgs(
                authentication_mode="API",
                bootstrap_cluster_creator_admin_permissions=False,
            ),
            # Only the managed add-ons below run: no unmanaged copies to drift or conflict.
            bootstrap_self_managed_addons=False,
            upgrade_policy=aws.eks.ClusterUpgradePolicyArgs(support_type=args.upgrade_support),
            zonal_shift_config=aws.eks.ClusterZonalShiftConfigArgs(enabled=args.zonal_shift),
            deletion_protection=args.deletion_protection,
            tags=tags,
            opts=stateful_options(self, args.protect, depends_on=[log_group, cluster_policy]),
        )
        for cidr in args.private_access_cidrs:
            https_ingress(
                f"{name}-api-from-{cidr.replace('/', '-')}",
                self,
                security_group_id=cluster.vpc_config.cluster_security_group_id,
                description="Kubernetes API from a network deploys run from",
                cidr=cidr,
                tags=tags,
            )
        issuer = cluster.identities[0].oidcs[0].issuer
        oidc_provider = aws.iam.OpenIdConnectProvider(
            f"{name}-oidc",
            url=issuer,
            client_id_lists=["sts.amazonaws.com"],
            tags=tags,
            opts=child,
        )
        admin_access = self._access(name, args, cluster, account)
        node_role_arn = self._node_role(name, tags, account)
        boundary = aws.iam.Policy(
            f"{name}-workload-boundary",
            description=f"Most any pod role on {args.cluster_name} may ever do",
            policy=pulumi.Output.json_dumps(
                pulumi.Output.all(account.account_id, account.partition, node_role_arn).apply(
                    lambda v: workload_boundary(account_id=v[0], partition=v[1], node_role_arn=v[2])
                )
            ),
            tags=tags,
            opts=child,
        )

        before_nodes = self._addons(
            name,
            args,
            cluster=cluster,
            account=account,
            names=ADDONS_BEFORE_NODES,
            boundary=boundary,
            after=[],
        )
        system_nodes = NodePool(
            f"{name}-system",
            NodePoolArgs(
                cluster_name=cluster.name,
                node_role_arn=node_role_arn,
                subnet_ids=args.network.private_subnet_ids,
                instance_types=args.system_nodes.instance_types,
                ami_type="AL2023_x86_64_STANDARD",
                ami_release=args.system_nodes.ami_release,
                min_size=args.system_nodes.min_size,
                desired_size=args.system_nodes.desired_size,
                max_size=args.system_nodes.max_size,
                root_volume=args.system_nodes.root_volume,
                ebs_kms_key_arn=args.ebs_kms_key_arn,
                labels={POOL_LABEL: SYSTEM_POOL},
                tags=tags,
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(before_nodes.values())),
        )
        after_nodes = self._addons(
            name,
            args,
            cluster=cluster,
            account=account,
            names=ADDONS_AFTER_NODES,
            boundary=boundary,
            after=[system_nodes],
        )
        self.system_ready: list[pulumi.Resource] = [
            system_nodes,
            *(addon for addon_name, addon in after_nodes.items() if addon_name == "coredns"),
        ]
        """What platform charts' pods need before they can start: the system nodes they run on
        and CoreDNS. Their releases depend on these, or `helm install` waits on Pending pods."""

        self.cluster_name = cluster.name
        self.cluster_arn = cluster.arn
        self.endpoint = cluster.endpoint
        self.oidc_issuer_url = issuer
        self.oidc_provider_arn = oidc_provider.arn
        self.node_role_arn = node_role_arn
        self.security_group_id = cluster.vpc_config.cluster_security_group_id
        self.workload_boundary_arn = boundary.arn
        self.kubeconfig = pulumi.Output.secret(
            pulumi.Output.all(
                cluster.name,
                cluster.endpoint,
                cluster.certificate_authority.data,
                account.region,
                _deployer_arn(account, args.deployer_role_name)
                if args.deployer_role_name is not None
                else "",
                *[resource.urn for resource in admin_access],
            ).apply(lambda v: kubeconfig(v[0], v[1], v[2], v[3], role_arn=v[4] or None))
        )
        # For whoever holds an access entry of their own (a team's deployer): it assumes no
        # role, and holds no credential, so it need not be secret.
        self.caller_kubeconfig = pulumi.Output.all(
            cluster.name, cluster.endpoint, cluster.certificate_authority.data, account.region
        ).apply(lambda v: kubeconfig(v[0], v[1], v[2], v[3]))
        self.register_outputs(
            {
                "clusterName": self.cluster_name,
                "endpoint": self.endpoint,
                "oidcIssuerUrl": self.oidc_issuer_url,
                "oidcProviderArn": self.oidc_provider_arn,
                "nodeRoleArn": self.node_role_arn,
                "workloadBoundaryArn": self.workload_boundary_arn,
                "kubeconfig": self.kubeconfig,
            }
        )

    def _access(
        self, name: str, args: EksClusterArgs, cluster: aws.eks.Cluster, account: AccountContext
    ) -> list[pulumi.Resource]:
        """Access entries; returns what the deployer's own access depends on."""
        grants = list(args.access)
        if args.deployer_role_name is not None:
            # From config, never from the caller: an entry's principal cannot change in place,
            # so a caller-derived one would be replaced (and its access lost) whenever someone
            # else ran the deploy.
            grants.insert(
                0,
                AccessGrant(
                    key=DEPLOYER_ACCESS_KEY,
                    principal_arn=_deployer_arn(account, args.deployer_role_name),
                    access="cluster-admin",
                ),
            )
        deployer_access: list[pulumi.Resource] = []
        for grant in grants:
            entry = aws.eks.AccessEntry(
                f"{name}-access-{grant.key}",
                cluster_name=cluster.name,
                principal_arn=grant.principal_arn,
                type="STANDARD",
                tags=dict(args.tags),
                opts=pulumi.ResourceOptions(parent=self),
            )
            association = aws.eks.AccessPolicyAssociation(
                f"{name}-access-{grant.key}",
                cluster_name=cluster.name,
                principal_arn=entry.principal_arn,
                policy_arn=pulumi.Output.concat(
                    "arn:",
                    account.partition,
                    ":eks::aws:cluster-access-policy/",
                    ACCESS_POLICIES[grant.access],
                ),
                access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(
                    type="namespace" if grant.namespaces else "cluster",
                    namespaces=list(grant.namespaces) or None,
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
            if grant.key == DEPLOYER_ACCESS_KEY:
                deployer_access = [entry, association]
        return deployer_access

    def _node_role(
        self, name: str, tags: Mapping[str, str], account: AccountContext
    ) -> pulumi.Output[str]:
        """The role every node assumes: only the managed policies nodes need."""
        role = aws.iam.Role(
            f"{name}-node-role",
            assume_role_policy=pulumi.Output.json_dumps(service_trust("ec2.amazonaws.com")),
            tags=dict(tags),
            opts=pulumi.ResourceOptions(parent=self),
        )
        attachments = [
            aws.iam.RolePolicyAttachment(
                f"{name}-node-{policy}",
                role=role.name,
                policy_arn=_managed_policy(account, policy),
                opts=pulumi.ResourceOptions(parent=self),
            )
            for policy in NODE_POLICIES
        ]
        return pulumi.Output.all(role.arn, *[a.id for a in attachments]).apply(
            lambda values: str(values[0])
        )

    def _addons(
        self,
        name: str,
        args: EksClusterArgs,
        *,
        cluster: aws.eks.Cluster,
        account: AccountContext,
        names: Sequence[str],
        boundary: aws.iam.Policy,
        after: Sequence[pulumi.Resource],
    ) -> dict[str, pulumi.Resource]:
        """The add-ons made, by name."""
        created: dict[str, pulumi.Resource] = {}
        for addon in names:
            if addon not in args.addons:
                continue
            version: pulumi.Input[str] = args.addons[addon]
            if version == RECOMMENDED:
                version = aws.eks.get_addon_version_output(
                    addon_name=addon,
                    kubernetes_version=cluster.version,
                    most_recent=False,
                    opts=pulumi.InvokeOptions(parent=self),
                ).version
            depends_on = list(after)
            if addon == "aws-ebs-csi-driver":
                namespace, service_account = EBS_CSI_SERVICE_ACCOUNT
                driver_role = PodRole(
                    f"{name}-ebs-csi",
                    PodRoleArgs(
                        cluster_name=cluster.name,
                        cluster_arn=cluster.arn,
                        namespace=namespace,
                        service_account=service_account,
                        permissions_boundary_arn=boundary.arn,
                        managed_policy_arns={
                            "driver": _managed_policy(
                                account, "service-role/AmazonEBSCSIDriverPolicy"
                            )
                        },
                        inline_policy=pulumi.Output.from_input(args.ebs_kms_key_arn).apply(
                            ebs_volume_key_use
                        ),
                        tags=args.tags,
                    ),
                    opts=pulumi.ResourceOptions(parent=self),
                )
                depends_on.append(driver_role)
            created[addon] = aws.eks.Addon(
                f"{name}-{addon}",
                cluster_name=cluster.name,
                addon_name=addon,
                addon_version=version,
                configuration_values=ADDON_CONFIGURATION.get(addon),
                resolve_conflicts_on_create="OVERWRITE",
                resolve_conflicts_on_update="OVERWRITE",
                tags=dict(args.tags),
                opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on),
            )
        return created


def _managed_policy(account: AccountContext, policy: str) -> pulumi.Output[str]:
    return pulumi.Output.concat("arn:", account.partition, ":iam::aws:policy/", policy)


def _deployer_arn(account: AccountContext, role_name: str) -> pulumi.Output[str]:
    return pulumi.Output.concat(
        "arn:", account.partition, ":iam::", account.account_id, ":role/", role_name
    )
