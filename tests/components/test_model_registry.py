"""Model image registries: immutable, scanned, encrypted, account-only repositories that expire
old images; and the registry in every stack."""

from __future__ import annotations

import json

import pytest

from components.common import ComponentArgsError
from components.model_registry import ModelRegistry, ModelRegistryArgs, RepositorySpec
from mlops_platform.project import PulumiProject
from mlops_platform.rendered import RenderedStack
from tests.components.data_fixtures import (
    ACCOUNT,
    KEY_ARN,
    REGION,
    TAGS,
)
from tests.configs import stack_platform_config
from tests.conftest import named, run_component

REPOSITORY = "aws:ecr/repository:Repository"
SCANNING = "aws:ecr/registryScanningConfiguration:RegistryScanningConfiguration"
TRAINING = RepositorySpec("training-images", keep_tagged_images=200, untagged_days=7)
SERVING = RepositorySpec("serving-images", keep_tagged_images=50, untagged_days=3)


def registry_args(**overrides: object) -> ModelRegistryArgs:
    defaults: dict[str, object] = {
        "repositories": (TRAINING, SERVING),
        "kms_key_arn": KEY_ARN,
        "tags": TAGS,
    }
    return ModelRegistryArgs(**{**defaults, **overrides})  # type: ignore[arg-type]


def render_registry(**overrides: object) -> RenderedStack:
    args = registry_args(**overrides)
    return run_component(lambda: ModelRegistry("registry", args))


@pytest.fixture(scope="module")
def registry() -> RenderedStack:
    return render_registry()


def test_repositories_are_immutable_encrypted_scanned_on_push_and_never_force_deleted(
    registry: RenderedStack,
) -> None:
    repositories = registry.of_type(REPOSITORY)
    assert sorted(r.name for r in repositories) == [
        "registry-serving-images",
        "registry-training-images",
    ]
    for repository in repositories:
        assert repository.inputs["imageTagMutability"] == "IMMUTABLE"
        assert repository.inputs["encryptionConfigurations"] == [
            {"encryptionType": "KMS", "kmsKey": KEY_ARN}
        ]
        assert repository.inputs["imageScanningConfiguration"] == {"scanOnPush": True}
        assert repository.inputs["forceDelete"] is False
        key = repository.name.removeprefix("registry-")
        assert repository.inputs["tags"] == {**TAGS, "mlops:repository": key}


@pytest.mark.parametrize("protect", [True, False])
def test_a_protected_registry_keeps_its_repositories_and_nothing_else_is_pinned(
    protect: bool,
) -> None:
    rendered = render_registry(protect=protect)
    for repository in rendered.of_type(REPOSITORY):
        assert (repository.protect, repository.retain_on_delete) == (protect, protect)
    # Lifecycle and repository policies stay replaceable: pinning them would block fixes.
    assert {r.type for r in rendered.resources if r.protect} == ({REPOSITORY} if protect else set())


@pytest.mark.parametrize(
    ("continuous", "frequency"), [(True, "CONTINUOUS_SCAN"), (False, "SCAN_ON_PUSH")]
)
def test_the_owning_registry_scans_every_repository_as_often_as_configured(
    continuous: bool, frequency: str
) -> None:
    rendered = render_registry(continuous_scanning=continuous, owns_registry_scanning=True)
    [scanning] = rendered.of_type(SCANNING)
    assert scanning.inputs["scanType"] == "ENHANCED"
    [rule] = scanning.inputs["rules"]
    assert rule["scanFrequency"] == frequency
    assert rule["repositoryFilters"] == [{"filter": "*", "filterType": "WILDCARD"}]
    # One per account and region: destroying the owner must not reset every stack's scanning.
    assert scanning.retain_on_delete is True


def test_a_registry_that_does_not_own_the_scanning_leaves_it_alone_and_scans_on_push() -> None:
    """Two stacks owning the account-wide configuration overwrite each other, and destroying
    either resets the other's."""
    rendered = render_registry()
    assert rendered.of_type(SCANNING) == []
    for repository in rendered.of_type(REPOSITORY):
        assert repository.inputs["imageScanningConfiguration"] == {"scanOnPush": True}


def test_exactly_one_stack_owns_the_registry_scanning(
    rendered_stacks: dict[str, RenderedStack],
) -> None:
    owners = [stack for stack, r in rendered_stacks.items() if r.of_type(SCANNING)]
    assert owners == ["prod"]


def test_each_repository_expires_images_by_its_own_lifecycle(registry: RenderedStack) -> None:
    for spec in (TRAINING, SERVING):
        repository = named(registry, REPOSITORY, f"registry-{spec.key}")
        lifecycle = named(registry, "aws:ecr/lifecyclePolicy:LifecyclePolicy", repository.name)
        rules = json.loads(lifecycle.inputs["policy"])["rules"]
        assert [(r["selection"]["tagStatus"], r["selection"]["countNumber"]) for r in rules] == [
            ("untagged", spec.untagged_days),
            ("tagged", spec.keep_tagged_images),
        ]
        assert lifecycle.property_dependencies["repository"] == [repository.urn]


def test_only_principals_of_the_account_may_use_a_repository(registry: RenderedStack) -> None:
    for repository in registry.of_type(REPOSITORY):
        policy = named(registry, "aws:ecr/repositoryPolicy:RepositoryPolicy", repository.name)
        [statement] = json.loads(policy.inputs["policy"])["Statement"]
        assert statement["Effect"] == "Deny"
        assert statement["Condition"] == {"StringNotEquals": {"aws:PrincipalAccount": ACCOUNT}}
        assert policy.property_dependencies["repository"] == [repository.urn]


def test_the_registry_hands_out_each_repositorys_url_and_arn(registry: RenderedStack) -> None:
    [component] = registry.of_type(ModelRegistry.TYPE)
    repositories = {r.inputs["tags"]["mlops:repository"]: r for r in registry.of_type(REPOSITORY)}
    assert component.outputs == {
        "repositoryUrls": {k: r.outputs["repositoryUrl"] for k, r in repositories.items()},
        "repositoryArns": {k: r.outputs["arn"] for k, r in repositories.items()},
    }
    assert all(
        url.startswith(f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/")
        for url in component.outputs["repositoryUrls"].values()
    )


def test_two_repositories_with_one_key_are_refused() -> None:
    with pytest.raises(ComponentArgsError, match="duplicate repository keys"):
        render_registry(repositories=(TRAINING, TRAINING))


def test_every_stack_encrypts_its_images_under_the_registry_key_and_guards_them_as_configured(
    rendered: RenderedStack, project: PulumiProject
) -> None:
    protect = stack_platform_config(project, rendered.stack).protect_stateful_resources
    key = named(rendered, "aws:kms/key:Key", "registry-key").outputs["arn"]
    for repository in rendered.of_type(REPOSITORY):
        assert repository.inputs["encryptionConfigurations"] == [
            {"encryptionType": "KMS", "kmsKey": key}
        ]
        assert (repository.protect, repository.retain_on_delete) == (protect, protect)


def test_every_stack_exports_the_url_of_each_repository_it_builds(rendered: RenderedStack) -> None:
    assert rendered.outputs.get("repositoryUrls", {}) == {
        r.inputs["tags"]["mlops:repository"]: r.outputs["repositoryUrl"]
        for r in rendered.of_type(REPOSITORY)
    }
