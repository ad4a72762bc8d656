"""The platform's stack configuration, parsed once at the edge into plain, validated values.

A stack's whole configuration is one structured value, `<project>:platform`, in
`Pulumi.<stack>.yaml`. Keys the stack file leaves out take the defaults of its environment's
profile (`ENVIRONMENT_DEFAULTS`: dev cheap, prod hardened). Rules that depend on the environment
read it from the validation context, so every problem in a file is reported in one pass.
"""

from __future__ import annotations

import copy
import types
import typing
from typing import Annotated, Any, Final, Literal, Union

import pulumi
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic.alias_generators import to_camel

CONFIG_KEY: Final = "platform"

Environment = Literal["dev", "staging", "prod"]
ENVIRONMENTS: Final[tuple[Environment, ...]] = typing.get_args(Environment)

# Config key paths below are camelCase, as written in the stack files.
ENVIRONMENT_DEFAULTS: Final[dict[Environment, dict[str, Any]]] = {
    "dev": {
        "protectStatefulResources": False,
        "kms": {"deletionWindowDays": 7},
        "artifacts": {"noncurrentVersionRetentionDays": 30, "accessLogRetentionDays": 90},
    },
    "staging": {
        "protectStatefulResources": True,
        "kms": {"deletionWindowDays": 14},
        "artifacts": {"noncurrentVersionRetentionDays": 90, "accessLogRetentionDays": 180},
    },
    "prod": {
        "protectStatefulResources": True,
        "kms": {"deletionWindowDays": 30},
        "artifacts": {"noncurrentVersionRetentionDays": 365, "accessLogRetentionDays": 400},
    },
}

ACCESS_LOG_BUCKET_KEY: Final = "access-logs"

TagKey = Annotated[
    str,
    StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_ .:/=+\-@]+$"),
]
TagValue = Annotated[str, StringConstraints(max_length=256, pattern=r"^[A-Za-z0-9_ .:/=+\-@]*$")]
IamRoleArn = Annotated[
    str,
    StringConstraints(
        max_length=600, pattern=r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9_+=,.@/-]+$"
    ),
]
BucketKey = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,19}$")]
RetentionDays = Annotated[int, Field(ge=1, le=3650)]


class ConfigModel(BaseModel):
    """Base for every config section: camelCase keys, unknown keys rejected, values frozen."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        extra="forbid",
        frozen=True,
        strict=True,
    )


def _environment(info: ValidationInfo) -> Environment | None:
    context = info.context or {}
    environment: Environment | None = context.get("environment")
    return environment


class KmsConfig(ConfigModel):
    """Customer-managed KMS keys that encrypt the platform's data."""

    deletion_window_days: int = Field(
        ge=7,
        le=30,
        description=(
            "Days a scheduled key deletion waits before the key is gone (AWS allows 7-30). "
            "Must be 30 in prod, so an accidental deletion can be cancelled for a month."
        ),
    )
    admin_role_arns: list[IamRoleArn] = Field(
        default_factory=list,
        description=(
            "IAM roles allowed to administer (not use) the keys, besides the account's own "
            "IAM delegation. ARNs of roles, e.g. your break-glass or platform-admin role."
        ),
    )

    @field_validator("deletion_window_days")
    @classmethod
    def _prod_keeps_longest_window(cls, days: int, info: ValidationInfo) -> int:
        if _environment(info) == "prod" and days != 30:
            raise ValueError("must be 30 in prod (the longest window AWS allows)")
        return days


class ArtifactBucketConfig(ConfigModel):
    """One artifact bucket."""

    purpose: Annotated[
        str, StringConstraints(max_length=200, pattern=r"^[A-Za-z0-9_ .:/=+\-@]*$")
    ] = Field(default="", description="What the bucket holds; recorded as the `mlops:purpose` tag.")
    noncurrent_version_retention_days: RetentionDays | None = Field(
        default=None,
        description=(
            "Days an overwritten or deleted object version is kept before it expires; "
            "defaults to `artifacts.noncurrentVersionRetentionDays`."
        ),
    )


def _default_buckets() -> dict[str, ArtifactBucketConfig]:
    return {
        "models": ArtifactBucketConfig(purpose="trained model artifacts"),
        "datasets": ArtifactBucketConfig(purpose="training and evaluation datasets"),
        "experiments": ArtifactBucketConfig(purpose="experiment tracking artifacts"),
    }


class ArtifactStorageConfig(ConfigModel):
    """S3 buckets for models, datasets and experiment artifacts, with their access-log bucket."""

    buckets: dict[BucketKey, ArtifactBucketConfig] = Field(
        default_factory=_default_buckets,
        min_length=1,
        description=(
            "The artifact buckets, by key (lowercase letters, digits and dashes). The key names "
            "the Pulumi resources, so renaming one replaces its bucket."
        ),
    )
    noncurrent_version_retention_days: RetentionDays = Field(
        description="Days an overwritten or deleted object version is kept before it expires.",
    )
    abort_incomplete_multipart_upload_days: int = Field(
        default=7,
        ge=1,
        le=30,
        description="Days after which the parts of an unfinished multipart upload are deleted.",
    )
    access_log_retention_days: RetentionDays = Field(
        description="Days S3 server access logs are kept in the access-log bucket.",
    )

    @field_validator("buckets")
    @classmethod
    def _log_bucket_key_is_reserved(
        cls, buckets: dict[str, ArtifactBucketConfig]
    ) -> dict[str, ArtifactBucketConfig]:
        if ACCESS_LOG_BUCKET_KEY in buckets:
            raise ValueError(f"'{ACCESS_LOG_BUCKET_KEY}' is reserved for the access-log bucket")
        return buckets


class PlatformConfig(ConfigModel):
    """The whole platform configuration of one stack (`mlops-platform:platform`)."""

    environment: Environment = Field(
        description=(
            "Which environment this stack is. Selects the defaults profile (dev cheap, prod "
            "hardened) and the rules that apply."
        ),
    )
    tags: dict[TagKey, TagValue] = Field(
        default_factory=dict,
        description=(
            "Extra tags for every taggable resource, e.g. `owner`, `cost-center`. The platform "
            "adds `mlops:environment`, `mlops:stack`, `mlops:project` and `managed-by` itself."
        ),
    )
    protect_stateful_resources: bool = Field(
        description=(
            "Protect buckets, keys and other stateful resources from delete and replacement, "
            "and keep them in AWS if they leave the stack. Must be true in prod."
        ),
    )
    kms: KmsConfig = Field(description="Customer-managed KMS keys.")
    artifacts: ArtifactStorageConfig = Field(description="Artifact storage buckets.")

    @field_validator("protect_stateful_resources")
    @classmethod
    def _prod_is_protected(cls, protect: bool, info: ValidationInfo) -> bool:
        if _environment(info) == "prod" and not protect:
            raise ValueError("must be true in prod")
        return protect

    @field_validator("tags")
    @classmethod
    def _reserved_tag_keys(cls, tags: dict[str, str]) -> dict[str, str]:
        by_aws = sorted(key for key in tags if key.lower().startswith("aws:"))
        by_platform = sorted(key for key in tags if key.startswith("mlops:") or key == "managed-by")
        if by_aws:
            raise ValueError(f"keys {by_aws} use the `aws:` prefix, which AWS reserves")
        if by_platform:
            raise ValueError(f"keys {by_platform} are set by the platform; use other tag keys")
        return tags


class ConfigError(pulumi.RunError):
    """Bad stack configuration. A RunError, so `pulumi up` prints it without a traceback."""

    def __init__(self, stack_file: str, problems: list[str]) -> None:
        self.problems = problems
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(
            f"invalid platform configuration in {stack_file} ({count}); nothing was changed:\n"
            f"{lines}"
        )


def stack_file_name(stack: str) -> str:
    return f"Pulumi.{stack}.yaml"


def load_platform_config(raw: Any, *, stack: str, project: str) -> PlatformConfig:
    """Validate a stack's raw `<project>:platform` value; one ConfigError lists all problems."""
    root = f"{project}:{CONFIG_KEY}"
    stack_file = stack_file_name(stack)
    if raw is None:
        raise ConfigError(
            stack_file,
            [f"{root}: missing; set it under `config:` (see docs/config-reference.md)"],
        )
    if not isinstance(raw, dict):
        raise ConfigError(stack_file, [f"{root}: must be a mapping of settings, got {raw!r}"])

    environment = raw.get("environment")
    known_environment = environment if environment in ENVIRONMENTS else None
    # With an unknown environment, the dev profile stands in so that the one real problem is
    # not buried under "missing" errors for every environment-dependent key.
    data = with_environment_defaults(raw, known_environment or "dev")
    try:
        return PlatformConfig.model_validate(data, context={"environment": known_environment})
    except ValidationError as error:
        raise ConfigError(stack_file, describe_errors(error, root)) from None


def with_environment_defaults(raw: dict[str, Any], environment: Environment) -> dict[str, Any]:
    """The raw config with the environment profile filled in beneath what the stack file sets."""
    merged = copy.deepcopy(raw)
    _fill(merged, ENVIRONMENT_DEFAULTS[environment])
    return merged


def _fill(target: dict[str, Any], defaults: dict[str, Any]) -> None:
    for key, default in defaults.items():
        if key not in target:
            target[key] = copy.deepcopy(default)
        elif isinstance(default, dict) and isinstance(target[key], dict):
            _fill(target[key], default)


def describe_errors(error: ValidationError, root: str) -> list[str]:
    problems = []
    for detail in error.errors(include_url=False):
        loc = detail["loc"]
        path = root + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)
        kind = detail["type"]
        if kind == "extra_forbidden":
            allowed = ", ".join(_allowed_keys(loc[:-1]))
            problems.append(f"{path}: unknown key; allowed keys here: {allowed}")
        elif kind == "missing":
            problems.append(f"{path}: required, but not set")
        else:
            message = detail["msg"].removeprefix("Value error, ")
            problems.append(f"{path}: {message}; got {detail['input']!r}")
    return problems


def _allowed_keys(loc: tuple[int | str, ...]) -> list[str]:
    """The keys the model accepts at a config path, to say what a misspelt key should be."""
    annotation: Any = PlatformConfig
    for part in loc:
        annotation = _unwrap(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = next(
                f for name, f in annotation.model_fields.items() if (f.alias or name) == part
            )
            annotation = field.annotation
        else:
            annotation = typing.get_args(annotation)[-1]
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [field.alias or name for name, field in annotation.model_fields.items()]
    return []


def _unwrap(annotation: Any) -> Any:
    """Strip Annotated and Optional around a model or container type."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
        else:
            return annotation
