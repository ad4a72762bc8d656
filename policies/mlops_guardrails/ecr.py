"""ECR rules for model image registries."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

from pulumi_policy import ResourceValidationArgs, Severity, StackValidationArgs

from mlops_guardrails.frameworks import aws_fsbp
from mlops_guardrails.props import is_open_to_anyone, is_true, items, mapping, policy_statements
from mlops_guardrails.rule import resource_rule, stack_rule

REPOSITORY: Final = "aws:ecr/repository:Repository"
REPOSITORY_POLICY: Final = "aws:ecr/repositoryPolicy:RepositoryPolicy"
LIFECYCLE_POLICY: Final = "aws:ecr/lifecyclePolicy:LifecyclePolicy"
REGISTRY_SCANNING: Final = "aws:ecr/registryScanningConfiguration:RegistryScanningConfiguration"
IMMUTABLE: Final = ("IMMUTABLE", "IMMUTABLE_WITH_EXCLUSION")


def _immutable(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    mutability = props.get("imageTagMutability", "MUTABLE")
    if mutability not in IMMUTABLE:
        yield f"image tags are {mutability}: a pushed tag can be replaced under a running model"


def _kms(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    configs = [mapping(c) for c in items(props.get("encryptionConfigurations"))]
    if not any(c.get("encryptionType") == "KMS" and c.get("kmsKey") for c in configs):
        yield "images are not encrypted with a customer-managed KMS key"


def _not_public(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    for statement in policy_statements(props.get("policy")):
        if is_open_to_anyone(statement):
            yield f"statement {statement.get('Sid', '(no Sid)')!r} lets anyone pull or push"


def _repositories_linked(args: StackValidationArgs, linked_type: str) -> tuple[list[Any], set[str]]:
    repositories = [r for r in args.resources if r.resource_type == REPOSITORY]
    covered = {
        source.urn
        for r in args.resources
        if r.resource_type == linked_type
        for source in r.property_dependencies.get("repository", [])
    }
    return repositories, covered


def _scanned(args: StackValidationArgs) -> Iterator[tuple[str, str]]:
    registry_scans = any(
        r.resource_type == REGISTRY_SCANNING and items(r.props.get("rules")) for r in args.resources
    )
    for repository in (r for r in args.resources if r.resource_type == REPOSITORY):
        on_push = is_true(
            mapping(repository.props.get("imageScanningConfiguration")).get("scanOnPush")
        )
        if not (registry_scans or on_push):
            yield f"repository {repository.name} is not scanned for vulnerabilities", repository.urn


def _lifecycle(args: StackValidationArgs) -> Iterator[tuple[str, str]]:
    repositories, covered = _repositories_linked(args, LIFECYCLE_POLICY)
    for repository in repositories:
        if repository.urn not in covered:
            yield f"repository {repository.name} has no lifecycle policy", repository.urn


RULES = [
    resource_rule(
        name="ecr-immutable-tags",
        description="Model image tags are immutable.",
        resource_types={REPOSITORY},
        check=_immutable,
        severity=Severity.MEDIUM,
        framework=aws_fsbp("ECR.2"),
        remediation="Set image_tag_mutability='IMMUTABLE'.",
        live=True,
    ),
    resource_rule(
        name="ecr-kms-encryption",
        description="Model images are encrypted with a customer-managed KMS key.",
        resource_types={REPOSITORY},
        check=_kms,
        severity=Severity.MEDIUM,
        remediation="Set encryption_configurations=[{encryption_type: 'KMS', kms_key: <key ARN>}].",
        live=True,
    ),
    resource_rule(
        name="ecr-not-public",
        description="No repository policy lets anyone outside the account pull or push.",
        resource_types={REPOSITORY_POLICY},
        check=_not_public,
        severity=Severity.CRITICAL,
        remediation="Name the accounts or roles that may pull; condition on aws:PrincipalOrgID.",
    ),
    stack_rule(
        name="ecr-image-scanning",
        resource_types={REPOSITORY, REGISTRY_SCANNING},
        description="Every repository is scanned: registry-level scanning rules or scan on push.",
        check=_scanned,
        severity=Severity.MEDIUM,
        framework=aws_fsbp("ECR.1"),
        remediation=(
            "Add an aws.ecr.RegistryScanningConfiguration (ENHANCED) with a rule covering "
            "the repository."
        ),
        live=True,
    ),
    stack_rule(
        name="ecr-lifecycle-policy",
        resource_types={REPOSITORY, LIFECYCLE_POLICY},
        description="Every repository has a lifecycle policy, so old images do not pile up.",
        check=_lifecycle,
        severity=Severity.LOW,
        framework=aws_fsbp("ECR.3"),
        remediation="Add an aws.ecr.LifecyclePolicy with repository=<repository>.name.",
    ),
]
