"""Model image registries in each stack's plan."""

from __future__ import annotations

import json

from mlops_platform.rendered import RenderedStack
from tests.conftest import named

REPOSITORY = "aws:ecr/repository:Repository"


def test_repositories_are_immutable_encrypted_and_never_force_deleted(
    rendered: RenderedStack,
) -> None:
    key = named(rendered, "aws:kms/key:Key", "registry-key").outputs["arn"]
    repositories = rendered.of_type(REPOSITORY)
    assert sorted(r.name for r in repositories) == [
        "registry-serving-images",
        "registry-training-images",
    ]
    for repository in repositories:
        assert repository.inputs["imageTagMutability"] == "IMMUTABLE"
        assert repository.inputs["encryptionConfigurations"] == [
            {"encryptionType": "KMS", "kmsKey": key}
        ]
        assert repository.inputs["forceDelete"] is False
        assert repository.protect == (rendered.stack != "dev")


def test_the_whole_registry_is_scanned_continuously(rendered: RenderedStack) -> None:
    [scanning] = rendered.of_type(
        "aws:ecr/registryScanningConfiguration:RegistryScanningConfiguration"
    )
    assert scanning.inputs["scanType"] == "ENHANCED"
    [rule] = scanning.inputs["rules"]
    assert rule["scanFrequency"] == "CONTINUOUS_SCAN"
    assert rule["repositoryFilters"] == [{"filter": "*", "filterType": "WILDCARD"}]


def test_each_repository_has_a_lifecycle_and_an_account_only_policy(
    rendered: RenderedStack,
) -> None:
    for repository in rendered.of_type(REPOSITORY):
        lifecycle = named(rendered, "aws:ecr/lifecyclePolicy:LifecyclePolicy", repository.name)
        rules = json.loads(lifecycle.inputs["policy"])["rules"]
        assert [r["selection"]["tagStatus"] for r in rules] == ["untagged", "tagged"]
        assert lifecycle.property_dependencies["repository"] == [repository.urn]
        policy = named(rendered, "aws:ecr/repositoryPolicy:RepositoryPolicy", repository.name)
        [statement] = json.loads(policy.inputs["policy"])["Statement"]
        assert statement["Effect"] == "Deny"
        assert statement["Condition"] == {
            "StringNotEquals": {"aws:PrincipalAccount": "123456789012"}
        }


def test_repository_urls_are_stack_outputs(rendered: RenderedStack) -> None:
    urls = rendered.outputs["repositoryUrls"]
    assert sorted(urls) == ["serving-images", "training-images"]
    assert all(
        url.startswith("123456789012.dkr.ecr.us-east-1.amazonaws.com/") for url in urls.values()
    )
