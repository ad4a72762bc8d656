"""An IAM role for one Kubernetes service account, bound with EKS Pod Identity."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from components.common import account_context
from components.policy_documents import (
    PLATFORM_TEAM,
    TEAM_TAG,
    irsa_trust,
    pod_identity_trust,
)


@dataclass(frozen=True)
class IrsaBinding:
    """Bind through the cluster's OIDC provider (IRSA) instead of EKS Pod Identity."""

    oidc_provider_arn: pulumi.Input[str]
    issuer: pulumi.Input[str]


@dataclass(frozen=True)
class PodRoleArgs:
    cluster_name: pulumi.Input[str]
    cluster_arn: pulumi.Input[str]
    namespace: str
    service_account: str
    permissions_boundary_arn: pulumi.Input[str]
    """Caps what the role can ever do, whatever is attached to it."""
    tags: Mapping[str, str]
    managed_policy_arns: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """AWS-managed policies by a stable key (the key names the attachment resource)."""
    inline_policy: pulumi.Input[dict[str, Any]] | None = None
    """A policy document of this role's own, e.g. from components.policy_documents."""
    irsa: IrsaBinding | None = None
    """IRSA instead of Pod Identity: the service account is annotated with the role ARN."""
    path: str | None = None
    """An IAM path for the role, e.g. the only one a team's deployer may make roles under."""


class PodRole(pulumi.ComponentResource):
    TYPE = "mlops:pod_role:PodRole"

    role_arn: pulumi.Output[str]
    """Resolves once the role's policies (and Pod Identity association) exist, so nothing uses
    it half-granted."""

    def __init__(
        self, name: str, args: PodRoleArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(self.TYPE, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        account = account_context(self)
        if args.irsa is None:
            trust = pulumi.Output.all(account.account_id, args.cluster_arn).apply(
                lambda values: pod_identity_trust(
                    account_id=values[0],
                    cluster_arn=values[1],
                    namespace=args.namespace,
                    service_account=args.service_account,
                )
            )
        else:
            trust = pulumi.Output.all(args.irsa.oidc_provider_arn, args.irsa.issuer).apply(
                lambda values: irsa_trust(
                    oidc_provider_arn=values[0],
                    issuer=values[1],
                    namespace=args.namespace,
                    service_account=args.service_account,
                )
            )
        role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=pulumi.Output.json_dumps(trust),
            permissions_boundary=args.permissions_boundary_arn,
            path=args.path,
            tags={**args.tags, "mlops:service-account": f"{args.namespace}/{args.service_account}"},
            opts=child,
        )
        grants: list[pulumi.Resource] = [
            aws.iam.RolePolicyAttachment(
                f"{name}-{key}", role=role.name, policy_arn=arn, opts=child
            )
            for key, arn in sorted(args.managed_policy_arns.items())
        ]
        if args.inline_policy is not None:
            grants.append(
                aws.iam.RolePolicy(
                    f"{name}-inline",
                    role=role.id,
                    policy=pulumi.Output.json_dumps(args.inline_policy),
                    opts=child,
                )
            )
        if args.irsa is None:
            grants.append(
                aws.eks.PodIdentityAssociation(
                    f"{name}-association",
                    cluster_name=args.cluster_name,
                    namespace=args.namespace,
                    service_account=args.service_account,
                    role_arn=role.arn,
                    # The platform's unless a team's says otherwise: a team's deployer may
                    # change only associations marked as its team's.
                    tags={TEAM_TAG: PLATFORM_TEAM, **args.tags},
                    opts=child,
                )
            )
        self.role_arn = pulumi.Output.all(role.arn, *[grant.urn for grant in grants]).apply(
            lambda values: str(values[0])
        )
        self.register_outputs({"roleArn": self.role_arn})
