"""IAM rules: no admin or escalation grants, scoped trust, no long-lived credentials."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

from pulumi_policy import ResourceValidationArgs, Severity

from mlops_guardrails.frameworks import aws_fsbp, cis_aws, cis_eks
from mlops_guardrails.props import (
    action_matches,
    as_strings,
    is_open_to_anyone,
    items,
    mapping,
    policy_statements,
    principals,
)
from mlops_guardrails.rule import resource_rule

ROLE: Final = "aws:iam/role:Role"
POLICY: Final = "aws:iam/policy:Policy"
INLINE_POLICIES: Final = frozenset(
    {
        "aws:iam/rolePolicy:RolePolicy",
        "aws:iam/userPolicy:UserPolicy",
        "aws:iam/groupPolicy:GroupPolicy",
    }
)
ATTACHMENTS: Final = frozenset(
    {
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
        "aws:iam/userPolicyAttachment:UserPolicyAttachment",
        "aws:iam/groupPolicyAttachment:GroupPolicyAttachment",
        "aws:iam/policyAttachment:PolicyAttachment",
    }
)
LONG_LIVED_CREDENTIALS: Final = frozenset(
    {
        "aws:iam/user:User",
        "aws:iam/accessKey:AccessKey",
        "aws:iam/userLoginProfile:UserLoginProfile",
        "aws:iam/serviceSpecificCredential:ServiceSpecificCredential",
    }
)
OIDC_PROVIDER: Final = "aws:iam/openIdConnectProvider:OpenIdConnectProvider"
ADMIN_MANAGED_POLICIES: Final = ("AdministratorAccess", "IAMFullAccess", "PowerUserAccess")
# Actions that let a principal grant itself more than it was given (Rhino Security Labs' list).
ESCALATION_ACTIONS: Final = (
    "iam:PassRole",
    "iam:CreateAccessKey",
    "iam:CreateLoginProfile",
    "iam:UpdateLoginProfile",
    "iam:AttachUserPolicy",
    "iam:AttachRolePolicy",
    "iam:AttachGroupPolicy",
    "iam:PutUserPolicy",
    "iam:PutRolePolicy",
    "iam:PutGroupPolicy",
    "iam:CreatePolicyVersion",
    "iam:SetDefaultPolicyVersion",
    "iam:UpdateAssumeRolePolicy",
    "iam:AddUserToGroup",
    "sts:AssumeRole",
)
POD_IDENTITY_SERVICE: Final = "pods.eks.amazonaws.com"
EKS_OIDC_MARKER: Final = "oidc.eks."


def _documents(props: Mapping[str, Any], args: ResourceValidationArgs) -> Iterator[Any]:
    """The permission documents a resource carries (a role's inline policies included)."""
    if args.resource_type == ROLE:
        for inline in map(mapping, items(props.get("inlinePolicies"))):
            yield inline.get("policy")
    else:
        yield props.get("policy")


def _allows(document: Any) -> Iterator[Mapping[str, Any]]:
    return (s for s in policy_statements(document) if s.get("Effect") == "Allow")


def _no_admin(props: Mapping[str, Any], args: ResourceValidationArgs) -> Iterator[str]:
    if args.resource_type in ATTACHMENTS or args.resource_type == ROLE:
        arns = [props.get("policyArn"), *as_strings(props.get("managedPolicyArns"))]
        for arn in arns:
            if isinstance(arn, str) and arn.endswith(ADMIN_MANAGED_POLICIES):
                yield f"attaches {arn.rsplit('/', 1)[-1]}"
    for document in _documents(props, args):
        for statement in _allows(document):
            if "NotAction" in statement:
                yield "an Allow with NotAction grants every action not listed"
            elif any(a in ("*", "*:*") for a in as_strings(statement.get("Action"))) and "*" in (
                as_strings(statement.get("Resource"))
            ):
                yield "allows every action on every resource"


def _no_service_wildcards(props: Mapping[str, Any], args: ResourceValidationArgs) -> Iterator[str]:
    for document in _documents(props, args):
        for statement in _allows(document):
            broad = sorted(
                {a for a in as_strings(statement.get("Action")) if a == "*" or a.endswith(":*")}
            )
            if broad:
                yield f"allows every action of {', '.join(broad)}: name the actions it uses"


def _no_privilege_escalation(
    props: Mapping[str, Any], args: ResourceValidationArgs
) -> Iterator[str]:
    for document in _documents(props, args):
        for statement in _allows(document):
            if "*" not in as_strings(statement.get("Resource")):
                continue
            granted = as_strings(statement.get("Action"))
            risky = [a for a in ESCALATION_ACTIONS if any(action_matches(g, a) for g in granted)]
            if risky:
                yield f"allows {', '.join(risky)} on every resource"


def _trusts_pods(statement: Mapping[str, Any]) -> bool:
    names = principals(statement)
    return POD_IDENTITY_SERVICE in names or any(EKS_OIDC_MARKER in name for name in names)


def _web_identity_problems(statement: Mapping[str, Any]) -> Iterator[str]:
    conditions = mapping(statement.get("Condition"))
    equals = mapping(conditions.get("StringEquals"))
    like = mapping(conditions.get("StringLike"))
    eks = any(EKS_OIDC_MARKER in name for name in principals(statement))
    sub_key = next((k for k in [*equals, *like] if k.endswith(":sub")), None)
    aud_key = next((k for k in equals if k.endswith(":aud")), None)
    if sub_key is None:
        yield "web identity trust does not pin the token subject (:sub)"
    else:
        subjects = as_strings(equals.get(sub_key) or like.get(sub_key))
        if eks and (sub_key not in equals or len(subjects) != 1):
            yield "IRSA trust must name exactly one service account with StringEquals on :sub"
        if any(subject in ("*", "") or subject.endswith(":*") for subject in subjects):
            yield f"web identity trust accepts any subject ({', '.join(subjects)})"
    if aud_key is None or as_strings(equals.get(aud_key)) != ["sts.amazonaws.com"]:
        yield "web identity trust does not pin the audience to sts.amazonaws.com"


def _pod_identity_problems(statement: Mapping[str, Any]) -> Iterator[str]:
    # Pod Identity passes the pod's namespace and service account as session tags; without
    # conditions on them any association in the account could hand the role to any pod.
    equals = mapping(mapping(statement.get("Condition")).get("StringEquals"))
    for tag in ("kubernetes-namespace", "kubernetes-service-account"):
        values = as_strings(equals.get(f"aws:RequestTag/{tag}"))
        if len(values) != 1 or "*" in values[0]:
            yield f"Pod Identity trust does not pin {tag} to one value"


def _trust_scoped(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    for statement in _allows(props.get("assumeRolePolicy")):
        if is_open_to_anyone(statement):
            yield "the trust policy lets anyone assume the role"
        if "sts:AssumeRoleWithWebIdentity" in as_strings(statement.get("Action")):
            yield from _web_identity_problems(statement)
        if POD_IDENTITY_SERVICE in principals(statement):
            yield from _pod_identity_problems(statement)


def _workload_boundary(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    trusted_by_pods = any(_trusts_pods(s) for s in _allows(props.get("assumeRolePolicy")))
    if trusted_by_pods and not props.get("permissionsBoundary"):
        yield "a role assumed by pods has no permissions boundary"


def _no_long_lived_credentials(
    _props: Mapping[str, Any], args: ResourceValidationArgs
) -> Iterator[str]:
    yield f"{args.resource_type.rsplit(':', 1)[-1]} creates long-lived credentials"


# Granting any of these without holding the new role to a boundary lets the grantee make a role
# with more than it holds itself.
ROLE_CREATION_ACTIONS: Final = (
    "iam:CreateRole",
    "iam:PutRolePermissionsBoundary",
    "iam:PutRolePolicy",
    "iam:AttachRolePolicy",
)
BOUNDARY_KEY: Final = "iam:permissionsboundary"


def _holds_to_a_boundary(statement: Mapping[str, Any]) -> bool:
    return any(
        key.lower() == BOUNDARY_KEY and as_strings(values)
        for operator, conditions in mapping(statement.get("Condition")).items()
        if operator.startswith(("StringEquals", "ArnEquals")) and "IfExists" not in operator
        for key, values in mapping(conditions).items()
    )


def _role_creation_bounded(props: Mapping[str, Any], args: ResourceValidationArgs) -> Iterator[str]:
    for document in _documents(props, args):
        for statement in _allows(document):
            granted = as_strings(statement.get("Action"))
            creating = [
                a for a in ROLE_CREATION_ACTIONS if any(action_matches(g, a) for g in granted)
            ]
            if creating and not _holds_to_a_boundary(statement):
                yield (f"allows {', '.join(creating)} without an iam:PermissionsBoundary condition")
            if any(action_matches(g, "iam:DeleteRolePermissionsBoundary") for g in granted):
                yield "allows iam:DeleteRolePermissionsBoundary: a role could shed its boundary"


def _oidc_audience(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    audiences = as_strings(props.get("clientIdLists"))
    if audiences != ["sts.amazonaws.com"]:
        yield f"client ids are {audiences}; only sts.amazonaws.com may use this provider's tokens"


PERMISSION_TYPES: Final = {ROLE, POLICY, *INLINE_POLICIES, *ATTACHMENTS}

RULES = [
    resource_rule(
        name="iam-no-admin",
        description=(
            "No IAM grant gives full admin: no */*, no Allow with NotAction, no admin managed "
            "policies."
        ),
        resource_types=PERMISSION_TYPES,
        check=_no_admin,
        severity=Severity.CRITICAL,
        framework=cis_aws("1.16"),
        remediation="Grant the specific actions and resources the workload uses.",
        live=True,
    ),
    resource_rule(
        name="iam-no-service-wildcards",
        description=(
            "Roles are granted named actions, never every action of a service (`s3:*`); "
            "permissions boundaries, which only cap, may use them."
        ),
        resource_types={ROLE, *INLINE_POLICIES},
        check=_no_service_wildcards,
        severity=Severity.HIGH,
        remediation="List the actions the workload calls (the grants in policy_documents do).",
        live=True,
    ),
    resource_rule(
        name="iam-no-privilege-escalation",
        description="No IAM grant allows privilege-escalation actions on every resource.",
        resource_types={ROLE, POLICY, *INLINE_POLICIES},
        check=_no_privilege_escalation,
        severity=Severity.HIGH,
        remediation=(
            "Scope iam:PassRole, policy-editing and sts:AssumeRole actions to named role and "
            "policy ARNs (and iam:PassedToService conditions)."
        ),
        live=True,
    ),
    resource_rule(
        name="iam-trust-scoped",
        description=(
            "Role trust names its principals: nobody at large, web identity (IRSA, CI) pinned "
            "to one subject and the STS audience, Pod Identity to one service account."
        ),
        resource_types={ROLE},
        check=_trust_scoped,
        severity=Severity.CRITICAL,
        framework=cis_eks("5.1.5"),
        remediation=(
            "For IRSA use StringEquals on '<issuer>:sub' = "
            "'system:serviceaccount:<namespace>:<name>' and '<issuer>:aud' = "
            "'sts.amazonaws.com'; prefer EKS Pod Identity."
        ),
        live=True,
    ),
    resource_rule(
        name="iam-role-creation-bounded",
        description=(
            "A grant to make or change roles (a team deployer's) holds every role it makes to a "
            "permissions boundary, and never lets one shed it."
        ),
        resource_types={ROLE, POLICY, *INLINE_POLICIES},
        check=_role_creation_bounded,
        severity=Severity.HIGH,
        remediation=(
            "Add Condition ArnEquals iam:PermissionsBoundary = <the workload boundary ARN> to "
            "the statement, and never allow iam:DeleteRolePermissionsBoundary "
            "(policy_documents.team_deployer_policy)."
        ),
        live=True,
    ),
    resource_rule(
        name="iam-workload-permissions-boundary",
        description="Every role that pods assume carries a permissions boundary.",
        resource_types={ROLE},
        check=_workload_boundary,
        severity=Severity.MEDIUM,
        remediation="Set permissions_boundary to the platform's workload boundary policy ARN.",
        live=True,
    ),
    resource_rule(
        name="iam-no-long-lived-credentials",
        description="No IAM users, access keys or passwords: humans use SSO, machines use roles.",
        resource_types=LONG_LIVED_CREDENTIALS,
        check=_no_long_lived_credentials,
        severity=Severity.HIGH,
        framework=aws_fsbp("IAM.22"),
        remediation="Use IAM Identity Center for people, roles (OIDC, Pod Identity) for machines.",
    ),
    resource_rule(
        name="iam-oidc-provider-audience",
        description="OIDC identity providers accept tokens only for the STS audience.",
        resource_types={OIDC_PROVIDER},
        check=_oidc_audience,
        severity=Severity.MEDIUM,
        remediation="Set client_id_lists=['sts.amazonaws.com'].",
    ),
]
