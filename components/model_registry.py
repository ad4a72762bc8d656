"""Container registries for model images: immutable, scanned, encrypted, account-only."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.common import ComponentArgsError, account_context, stateful_options
from components.policy_documents import repository_lifecycle, repository_policy


@dataclass(frozen=True)
class RepositorySpec:
    key: str
    """Stable key naming the repository's resources."""
    keep_tagged_images: int
    untagged_days: int


@dataclass(frozen=True)
class ModelRegistryArgs:
    repositories: Sequence[RepositorySpec]
    kms_key_arn: pulumi.Input[str]
    tags: Mapping[str, str]
    continuous_scanning: bool = True
    """Amazon Inspector rescans images as new CVEs appear, not only on push."""
    owns_registry_scanning: bool = False
    """The account and region's one registry scanning configuration is this registry's to set.
    Every repository scans on push either way."""
    protect: bool = False


class ModelRegistry(pulumi.ComponentResource):
    TYPE = "mlops:model_registry:ModelRegistry"

    repository_urls: dict[str, pulumi.Output[str]]
    repository_arns: dict[str, pulumi.Output[str]]

    def __init__(
        self, name: str, args: ModelRegistryArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(self.TYPE, name, None, opts)
        keys = [spec.key for spec in args.repositories]
        if len(set(keys)) != len(keys):
            raise ComponentArgsError(self.TYPE, name, f"duplicate repository keys in {keys}")
        child = pulumi.ResourceOptions(parent=self)
        account = account_context(self)
        if args.owns_registry_scanning:
            self._registry_scanning(name, args)
        self.repository_urls, self.repository_arns = {}, {}
        for spec in args.repositories:
            repository = aws.ecr.Repository(
                f"{name}-{spec.key}",
                image_tag_mutability="IMMUTABLE",
                image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(
                    scan_on_push=True
                ),
                encryption_configurations=[
                    aws.ecr.RepositoryEncryptionConfigurationArgs(
                        encryption_type="KMS", kms_key=args.kms_key_arn
                    )
                ],
                force_delete=False,
                tags={**args.tags, "mlops:repository": spec.key},
                opts=stateful_options(self, args.protect),
            )
            aws.ecr.LifecyclePolicy(
                f"{name}-{spec.key}",
                repository=repository.name,
                policy=pulumi.Output.json_dumps(
                    repository_lifecycle(
                        keep_tagged=spec.keep_tagged_images, untagged_days=spec.untagged_days
                    )
                ),
                opts=child,
            )
            aws.ecr.RepositoryPolicy(
                f"{name}-{spec.key}",
                repository=repository.name,
                policy=pulumi.Output.json_dumps(account.account_id.apply(repository_policy)),
                opts=child,
            )
            self.repository_urls[spec.key] = repository.repository_url
            self.repository_arns[spec.key] = repository.arn
        self.register_outputs(
            {"repositoryUrls": self.repository_urls, "repositoryArns": self.repository_arns}
        )

    def _registry_scanning(self, name: str, args: ModelRegistryArgs) -> None:
        """Registry-wide, one per account and region: enhanced scanning of every repository.
        Kept in AWS when the stack goes, so destroying the owner resets nobody's scanning."""
        aws.ecr.RegistryScanningConfiguration(
            f"{name}-scanning",
            scan_type="ENHANCED",
            rules=[
                aws.ecr.RegistryScanningConfigurationRuleArgs(
                    scan_frequency="CONTINUOUS_SCAN"
                    if args.continuous_scanning
                    else "SCAN_ON_PUSH",
                    repository_filters=[
                        aws.ecr.RegistryScanningConfigurationRuleRepositoryFilterArgs(
                            filter="*", filter_type="WILDCARD"
                        )
                    ],
                )
            ],
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True),
        )
