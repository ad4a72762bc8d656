"""EKS control plane and cluster access rules."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator, Mapping
from typing import Any, Final

from pulumi_policy import ResourceValidationArgs, Severity, StackValidationArgs

from mlops_guardrails.frameworks import aws_fsbp, cis_eks
from mlops_guardrails.props import as_strings, is_true, mapping
from mlops_guardrails.rule import resource_rule, setting, stack_rule
from mlops_guardrails.vocabulary import CONTROL_PLANE_LOG_TYPES, KUBERNETES_VERSIONS

CLUSTER: Final = "aws:eks/cluster:Cluster"
ACCESS_ENTRY: Final = "aws:eks/accessEntry:AccessEntry"
ACCESS_POLICY_ASSOCIATION: Final = "aws:eks/accessPolicyAssociation:AccessPolicyAssociation"
ADDON: Final = "aws:eks/addon:Addon"
CLUSTER_ADMIN_POLICIES: Final = ("AmazonEKSClusterAdminPolicy", "AmazonEKSAdminPolicy")
OPEN_CIDRS: Final = frozenset({"0.0.0.0/0", "::/0"})
INGRESS_RULE: Final = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
SECURITY_GROUP_RULE: Final = "aws:ec2/securityGroupRule:SecurityGroupRule"
HTTPS: Final = 443

LOGGING_TUNABLES: Final = {
    "requiredLogTypes": {
        "type": "array",
        "items": {"enum": list(CONTROL_PLANE_LOG_TYPES)},
        "default": list(CONTROL_PLANE_LOG_TYPES),
        "description": "Control-plane log types every cluster must send to CloudWatch.",
    }
}
VERSION_TUNABLES: Final = {
    "allowedVersions": {
        "type": "array",
        "items": {"type": "string", "pattern": "^1\\.[0-9]+$"},
        "default": list(KUBERNETES_VERSIONS),
        "description": "Kubernetes minor versions clusters may run.",
    }
}
ADMIN_TUNABLES: Final = {
    "allowedPrincipals": {
        "type": "array",
        "items": {"type": "string"},
        "default": [],
        "description": "ARN patterns (fnmatch) of principals that may hold cluster-wide admin.",
    }
}


def _vpc_config(props: Mapping[str, Any]) -> Mapping[str, Any]:
    return mapping(props.get("vpcConfig"))


def _secrets_encryption(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    encryption = mapping(props.get("encryptionConfig"))
    if "secrets" not in as_strings(encryption.get("resources")):
        yield "Kubernetes secrets are not envelope-encrypted with a KMS key"
    elif not mapping(encryption.get("provider")).get("keyArn"):
        yield "secrets encryption names no KMS key"


def _endpoint_private(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    vpc = _vpc_config(props)
    # The EKS API defaults to a public endpoint and no private one.
    if vpc.get("endpointPublicAccess", True) is not False:
        yield "the API server endpoint is reachable from the internet"
    if not is_true(vpc.get("endpointPrivateAccess")):
        yield "the private API server endpoint is off: nodes reach the API over the internet"


def _public_endpoint_restricted(
    props: Mapping[str, Any], _: ResourceValidationArgs
) -> Iterator[str]:
    vpc = _vpc_config(props)
    if vpc.get("endpointPublicAccess", True) is False:
        return
    # Without an explicit list, EKS opens the public endpoint to 0.0.0.0/0.
    cidrs = as_strings(vpc.get("publicAccessCidrs")) or ["0.0.0.0/0"]
    open_cidrs = sorted(OPEN_CIDRS.intersection(cidrs))
    if open_cidrs:
        yield f"the public API server endpoint is open to {', '.join(open_cidrs)}"


def _control_plane_logging(props: Mapping[str, Any], args: ResourceValidationArgs) -> Iterator[str]:
    required = setting(args, LOGGING_TUNABLES, "requiredLogTypes")
    enabled = set(as_strings(props.get("enabledClusterLogTypes")))
    missing = [log_type for log_type in required if log_type not in enabled]
    if missing:
        yield f"control-plane log types not enabled: {', '.join(missing)}"


def _api_authentication(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    access = mapping(props.get("accessConfig"))
    mode = access.get("authenticationMode", "CONFIG_MAP")
    if mode != "API":
        yield f"authentication mode is {mode!r}: the aws-auth ConfigMap still grants access"
    # EKS makes the cluster's creator a hidden cluster admin unless told not to.
    if access.get("bootstrapClusterCreatorAdminPermissions", True) is not False:
        yield "the cluster creator gets implicit cluster-admin"


def _version_allowed(props: Mapping[str, Any], args: ResourceValidationArgs) -> Iterator[str]:
    allowed = setting(args, VERSION_TUNABLES, "allowedVersions")
    version = props.get("version")
    if version not in allowed:
        shown = (
            "the EKS default (whatever is newest at creation)" if version is None else repr(version)
        )
        yield f"Kubernetes version {shown} is not one of {', '.join(allowed)}"


def _no_system_masters(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    if "system:masters" in as_strings(props.get("kubernetesGroups")):
        yield "maps the principal into system:masters, which no RBAC rule can restrict"


def _cluster_admin_scoped(props: Mapping[str, Any], args: ResourceValidationArgs) -> Iterator[str]:
    policy = str(props.get("policyArn", ""))
    scope = mapping(props.get("accessScope")).get("type")
    if not policy.endswith(CLUSTER_ADMIN_POLICIES) or scope != "cluster":
        return
    principal = str(props.get("principalArn", ""))
    allowed = setting(args, ADMIN_TUNABLES, "allowedPrincipals")
    if not any(fnmatch.fnmatchcase(principal, pattern) for pattern in allowed):
        yield f"{principal} gets cluster-wide admin but is not an allowed admin principal"


def _admits_https(rule: Any) -> bool:
    props = rule.props
    if rule.resource_type == SECURITY_GROUP_RULE and props.get("type") != "ingress":
        return False
    if str(props.get("ipProtocol", props.get("protocol", ""))) in ("-1", "all"):
        return True
    low, high = props.get("fromPort"), props.get("toPort")
    return isinstance(low, int | float) and isinstance(high, int | float) and low <= HTTPS <= high


def _private_api_reachable(args: StackValidationArgs) -> Iterator[tuple[str, str]]:
    """A private-only endpoint admits what the cluster security group admits, which is only
    itself until a rule adds more: then neither `pulumi up` nor kubectl can reach the API."""
    admitted: set[str] = set()
    for rule in args.resources:
        if rule.resource_type in (INGRESS_RULE, SECURITY_GROUP_RULE) and _admits_https(rule):
            admitted.update(r.urn for r in rule.property_dependencies.get("securityGroupId", []))
    for cluster in (r for r in args.resources if r.resource_type == CLUSTER):
        private_only = _vpc_config(cluster.props).get("endpointPublicAccess", True) is False
        if private_only and cluster.urn not in admitted:
            yield (
                f"cluster {cluster.name} has a private endpoint only, and no rule admits HTTPS "
                "to its security group: nothing can reach its API",
                cluster.urn,
            )


def _addon_pinned(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    if not props.get("addonVersion"):
        yield f"add-on {props.get('addonName')!r} has no version: EKS picks one, and it drifts"


RULES = [
    stack_rule(
        name="eks-private-api-reachable",
        description="A cluster with a private endpoint only has a path to its API: its "
        "security group admits HTTPS from a deploy runner or a connected network.",
        resource_types={CLUSTER, INGRESS_RULE, SECURITY_GROUP_RULE},
        check=_private_api_reachable,
        severity=Severity.HIGH,
        remediation="Set eks.endpoint.deployRunner (a runner inside the VPC) or "
        "eks.endpoint.privateAccessCidrs; both add an HTTPS rule to the cluster security group.",
    ),
    resource_rule(
        name="eks-secrets-encryption",
        description="EKS envelope-encrypts Kubernetes secrets with a customer-managed KMS key.",
        resource_types={CLUSTER},
        check=_secrets_encryption,
        severity=Severity.HIGH,
        framework=cis_eks("5.3.1"),
        remediation="Set encryption_config with resources=['secrets'] and provider.key_arn.",
        live=True,
    ),
    resource_rule(
        name="eks-endpoint-private",
        description="The EKS API server endpoint is private only.",
        resource_types={CLUSTER},
        check=_endpoint_private,
        severity=Severity.HIGH,
        framework=cis_eks("5.4.2"),
        remediation=(
            "Set vpc_config.endpoint_public_access=False and endpoint_private_access=True; "
            "reach the API through the VPC (VPN, bastion or CI runners inside it)."
        ),
        live=True,
    ),
    resource_rule(
        name="eks-public-endpoint-restricted",
        description="A public EKS API endpoint is limited to allow-listed CIDRs, never 0.0.0.0/0.",
        resource_types={CLUSTER},
        check=_public_endpoint_restricted,
        severity=Severity.CRITICAL,
        framework=cis_eks("5.4.1"),
        remediation="Set vpc_config.public_access_cidrs to your office or VPN ranges.",
        live=True,
    ),
    resource_rule(
        name="eks-control-plane-logging",
        description="EKS control-plane logs go to CloudWatch.",
        resource_types={CLUSTER},
        check=_control_plane_logging,
        severity=Severity.MEDIUM,
        framework=cis_eks("2.1.1"),
        remediation="Add the missing types to enabled_cluster_log_types.",
        tunables=LOGGING_TUNABLES,
        live=True,
    ),
    resource_rule(
        name="eks-api-authentication",
        description=(
            "Cluster access is granted only by explicit access entries: API authentication "
            "mode, no implicit admin for the creator."
        ),
        resource_types={CLUSTER},
        check=_api_authentication,
        severity=Severity.HIGH,
        remediation=(
            "Set access_config(authentication_mode='API', "
            "bootstrap_cluster_creator_admin_permissions=False) and grant access with "
            "AccessEntry and AccessPolicyAssociation."
        ),
        live=True,
    ),
    resource_rule(
        name="eks-version-allowed",
        description="EKS clusters run a Kubernetes version on the allow-list.",
        resource_types={CLUSTER},
        check=_version_allowed,
        severity=Severity.MEDIUM,
        framework=aws_fsbp("EKS.2"),
        remediation="Pin an allowed minor version; upgrade before its standard support ends.",
        tunables=VERSION_TUNABLES,
        live=True,
    ),
    resource_rule(
        name="eks-no-system-masters",
        description="No access entry maps a principal into the system:masters group.",
        resource_types={ACCESS_ENTRY},
        check=_no_system_masters,
        severity=Severity.HIGH,
        framework=cis_eks("4.1.1"),
        remediation="Associate an EKS access policy, scoped to namespaces where possible.",
    ),
    resource_rule(
        name="eks-cluster-admin-scoped",
        description="Cluster-wide admin access policies go only to allowed admin principals.",
        resource_types={ACCESS_POLICY_ASSOCIATION},
        check=_cluster_admin_scoped,
        severity=Severity.HIGH,
        framework=cis_eks("4.1.1"),
        remediation=(
            "Scope the association to namespaces, use a narrower access policy, or add the "
            "principal to this rule's allowedPrincipals in the environment's policy config."
        ),
        tunables=ADMIN_TUNABLES,
    ),
    resource_rule(
        name="eks-addon-version-pinned",
        description="EKS add-ons run a version the stack states.",
        resource_types={ADDON},
        check=_addon_pinned,
        severity=Severity.MEDIUM,
        remediation="Set addon_version (an exact version, or one resolved with get_addon_version).",
    ),
]
