"""Every IAM, key, bucket, queue and repository policy the platform generates passes parliament.

Parliament reads every document as if it were an identity policy and its action database dates
from 2025-04; the few findings that follow from that are allowed below, each with its reason.
Anything else fails the test.
"""

from __future__ import annotations

import gc
import json
import warnings
from collections.abc import Callable, Iterator

import pytest

# parliament opens its data files at import and never closes them; collect them here so the
# ResourceWarning does not surface in an unrelated test.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ResourceWarning)
    from parliament import analyze_policy_string

    gc.collect()

from mlops_platform.rendered import RenderedStack

Finding = tuple[str, str, str]  # resource type, issue, detail as JSON
MLFLOW_3_ACTIONS = (
    "DeleteLoggedModel",
    "DeleteLoggedModelTag",
    "DeleteTraceTag",
    "DeleteTraces",
    "EndTrace",
    "FinalizeLoggedModel",
    "GetLoggedModel",
    "GetTraceInfo",
    "ListLoggedModelArtifacts",
    "LogLoggedModelParams",
    "LogOutputs",
    "SearchLoggedModels",
    "SearchTraces",
    "SetLoggedModelTags",
    "SetTraceTag",
    "StartTrace",
)
Allowed = Callable[[str, str, str], bool]

ALLOWED: list[tuple[str, Allowed]] = [
    (
        # In a key policy `Resource: "*"` means the key the policy is attached to.
        "key policies name no other resource",
        lambda kind, issue, _: kind == "aws:kms/key:Key" and issue == "RESOURCE_STAR",
    ),
    (
        # A permissions boundary caps actions; each role's own policy scopes the resources.
        "the workload boundary lists services, not resources",
        lambda kind, issue, _: kind == "aws:iam/policy:Policy" and issue == "RESOURCE_STAR",
    ),
    (
        # Trust policies and ECR repository policies apply to their own role or repository and
        # have no Resource element.
        "trust and repository policies carry no Resource",
        lambda kind, issue, _: (
            issue == "MALFORMED"
            and kind in ("aws:iam/role:Role", "aws:ecr/repositoryPolicy:RepositoryPolicy")
        ),
    ),
    (
        # MLflow 3's logged-model and tracing APIs came to sagemaker-mlflow after parliament's
        # database (2025-04); the Service Authorization Reference lists these actions.
        "MLflow 3 logged-model and tracing actions",
        lambda _, issue, detail: (
            issue == "UNKNOWN_ACTION"
            and any(f"sagemaker-mlflow:{a}" in detail for a in MLFLOW_3_ACTIONS)
        ),
    ),
    (
        # Parliament knows a fixed list of identity providers; an EKS cluster's issuer is not on it.
        "EKS OIDC providers are IRSA federation sources",
        lambda _, issue, detail: issue == "UNKNOWN_FEDERATION_SOURCE" and "oidc.eks." in detail,
    ),
    (
        # Nor is GitHub Actions' issuer, which team deployers' CI jobs are federated from.
        "GitHub Actions' OIDC issuer",
        lambda _, issue, detail: (
            issue == "UNKNOWN_FEDERATION_SOURCE" and "token.actions.githubusercontent.com" in detail
        ),
    ),
    (
        # s3:TlsVersion applies to every S3 request, though the action database lists it per
        # action; the deny covers s3:* on purpose.
        "s3:TlsVersion on s3:*",
        lambda kind, issue, detail: (
            kind == "aws:s3/bucketPolicy:BucketPolicy"
            and issue in ("UNKNOWN_CONDITION_FOR_ACTION", "MISMATCHED_TYPE")
            and "s3:TlsVersion" in detail
        ),
    ),
    (
        # Karpenter's reference policy (v1.12.1) splits a launch's resources over statements,
        # each with the tag conditions that fit its resources; parliament reads each statement
        # alone and expects every resource type a launch touches in it.
        "Karpenter launches, split by resource as its reference policy splits them",
        lambda kind, issue, detail: (
            kind == "aws:iam/rolePolicy:RolePolicy"
            and issue == "RESOURCE_MISMATCH"
            and any(
                a in detail
                for a in ("ec2:RunInstances", "ec2:CreateFleet", "ec2:CreateLaunchTemplate")
            )
        ),
    ),
    (
        # The AWS Load Balancer Controller's reference policy (v3.5.0) tags what it creates
        # under elasticloadbalancing:CreateAction and manages IPAM pools (ModifyIpPools); both
        # came after parliament's database (2025-04).
        "AWS Load Balancer Controller v3.5.0 actions and keys",
        lambda kind, issue, detail: (
            kind == "aws:iam/rolePolicy:RolePolicy"
            and (
                (
                    issue == "UNKNOWN_CONDITION_FOR_ACTION"
                    and "elasticloadbalancing:CreateAction" in detail
                )
                or (issue == "UNKNOWN_ACTION" and "elasticloadbalancing:ModifyIpPools" in detail)
            )
        ),
    ),
    (
        # AWS's public SSM parameters (AMI ids) have no account in their ARN.
        "public SSM parameter ARNs",
        lambda _, issue, detail: issue == "RESOURCE_MISMATCH" and "ssm:GetParameter" in detail,
    ),
]
POLICY_FIELDS = ("assumeRolePolicy", "policy")


def documents(rendered: RenderedStack) -> Iterator[tuple[str, str, str]]:
    """(resource type, resource name, JSON document) for every policy-shaped input."""
    for resource in rendered.resources:
        if not resource.type.startswith("aws:"):
            continue
        for field in POLICY_FIELDS:
            value = resource.inputs.get(field)
            if isinstance(value, str) and '"Statement"' in value:
                yield resource.type, resource.name, value


def test_the_plans_generate_every_kind_of_policy(rendered: RenderedStack) -> None:
    kinds = {kind for kind, _, _ in documents(rendered)}
    assert {
        "aws:iam/role:Role",
        "aws:iam/rolePolicy:RolePolicy",
        "aws:iam/policy:Policy",
        "aws:kms/key:Key",
        "aws:s3/bucketPolicy:BucketPolicy",
        "aws:ecr/repositoryPolicy:RepositoryPolicy",
    } <= kinds


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_every_generated_policy_lints_clean(
    rendered_stacks: dict[str, RenderedStack], stack: str
) -> None:
    unexplained = []
    for kind, name, document in documents(rendered_stacks[stack]):
        for finding in analyze_policy_string(document, ignore_private_auditors=True).findings:
            detail = json.dumps(finding.detail)
            if not any(allowed(kind, finding.issue, detail) for _, allowed in ALLOWED):
                unexplained.append(f"{name}: {finding.issue} {detail[:200]}")
    assert unexplained == []


def test_the_allow_list_still_matches_something(rendered_stacks: dict[str, RenderedStack]) -> None:
    """An allowance nothing needs any more should be removed."""
    used = set()
    for rendered in rendered_stacks.values():
        for kind, _, document in documents(rendered):
            for finding in analyze_policy_string(document, ignore_private_auditors=True).findings:
                detail = json.dumps(finding.detail)
                used |= {
                    reason for reason, allowed in ALLOWED if allowed(kind, finding.issue, detail)
                }
    assert used == {reason for reason, _ in ALLOWED}
