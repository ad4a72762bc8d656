"""Each config rule and the message a user sees for breaking it."""

from __future__ import annotations

from typing import Any

import pytest

from infra.config import ConfigError, PlatformConfig, load_platform_config

ROOT = "mlops-platform:platform"


def load(raw: Any, stack: str = "dev") -> PlatformConfig:
    return load_platform_config(raw, stack=stack, project="mlops-platform")


def problems(raw: Any, stack: str = "dev") -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(raw, stack)
    return caught.value.problems


def test_minimal_config_takes_the_environment_profile() -> None:
    dev = load({"environment": "dev"})
    prod = load({"environment": "prod"}, stack="prod")
    assert (dev.protect_stateful_resources, prod.protect_stateful_resources) == (False, True)
    assert (dev.kms.deletion_window_days, prod.kms.deletion_window_days) == (7, 30)
    assert dev.artifacts.noncurrent_version_retention_days < (
        prod.artifacts.noncurrent_version_retention_days
    )
    assert sorted(dev.artifacts.buckets) == ["datasets", "experiments", "models"]


def test_stack_file_values_override_the_profile() -> None:
    config = load({"environment": "dev", "kms": {"deletionWindowDays": 10}})
    assert config.kms.deletion_window_days == 10


def test_the_bucket_set_is_whatever_the_stack_lists() -> None:
    config = load({"environment": "dev", "artifacts": {"buckets": {"features": {}}}})
    assert list(config.artifacts.buckets) == ["features"]


def test_missing_platform_value_says_where_to_put_it() -> None:
    [problem] = problems(None)
    assert problem.startswith(f"{ROOT}: missing")


def test_platform_value_must_be_a_mapping() -> None:
    [problem] = problems("dev")
    assert "must be a mapping" in problem


def test_unknown_key_names_the_allowed_keys() -> None:
    [problem] = problems({"environment": "dev", "kms": {"deletionWindow": 7}})
    assert problem.startswith(f"{ROOT}.kms.deletionWindow: unknown key")
    assert "deletionWindowDays" in problem
    assert "adminRoleArns" in problem


def test_unknown_top_level_key_is_an_error() -> None:
    [problem] = problems({"environment": "dev", "artifact": {}})
    assert problem.startswith(f"{ROOT}.artifact: unknown key")
    assert "artifacts" in problem


def test_unknown_environment_lists_the_allowed_ones_and_nothing_else() -> None:
    [problem] = problems({"environment": "production"})
    assert problem.startswith(f"{ROOT}.environment:")
    assert "'dev', 'staging' or 'prod'" in problem
    assert "'production'" in problem


def test_out_of_range_value_says_the_bound_and_the_value() -> None:
    [problem] = problems({"environment": "dev", "kms": {"deletionWindowDays": 3}})
    assert problem == (
        f"{ROOT}.kms.deletionWindowDays: Input should be greater than or equal to 7; got 3"
    )


def test_wrong_type_is_not_coerced() -> None:
    [problem] = problems({"environment": "dev", "protectStatefulResources": "yes"})
    assert problem.startswith(f"{ROOT}.protectStatefulResources: Input should be a valid boolean")


def test_prod_must_protect_stateful_resources() -> None:
    [problem] = problems({"environment": "prod", "protectStatefulResources": False}, "prod")
    assert problem == f"{ROOT}.protectStatefulResources: must be true in prod; got False"


def test_prod_keeps_the_longest_key_deletion_window() -> None:
    [problem] = problems({"environment": "prod", "kms": {"deletionWindowDays": 7}}, "prod")
    assert problem.startswith(f"{ROOT}.kms.deletionWindowDays: must be 30 in prod")


def test_access_log_bucket_key_is_reserved() -> None:
    [problem] = problems({"environment": "dev", "artifacts": {"buckets": {"access-logs": {}}}})
    assert "'access-logs' is reserved" in problem


def test_bucket_key_must_be_a_short_lowercase_name() -> None:
    [problem] = problems({"environment": "dev", "artifacts": {"buckets": {"Models": {}}}})
    assert problem.startswith(f"{ROOT}.artifacts.buckets.Models")


def test_at_least_one_bucket() -> None:
    [problem] = problems({"environment": "dev", "artifacts": {"buckets": {}}})
    assert problem.startswith(f"{ROOT}.artifacts.buckets:")


def test_admin_role_must_be_a_role_arn() -> None:
    [problem] = problems(
        {"environment": "dev", "kms": {"adminRoleArns": ["arn:aws:iam::123456789012:user/bob"]}}
    )
    assert problem.startswith(f"{ROOT}.kms.adminRoleArns[0]:")


@pytest.mark.parametrize("key", ["mlops:environment", "managed-by", "aws:createdBy"])
def test_reserved_tag_keys_are_rejected(key: str) -> None:
    [problem] = problems({"environment": "dev", "tags": {key: "x"}})
    assert problem.startswith(f"{ROOT}.tags:")


def test_every_problem_is_reported_at_once_with_the_stack_file() -> None:
    raw = {
        "environment": "prod",
        "protectStatefulResources": False,
        "kms": {"deletionWindowDays": 99, "typo": 1},
        "artifacts": {"abortIncompleteMultipartUploadDays": 0},
    }
    with pytest.raises(ConfigError) as caught:
        load(raw, stack="prod")
    assert len(caught.value.problems) == 4
    message = str(caught.value)
    assert message.startswith("invalid platform configuration in Pulumi.prod.yaml (4 problems)")
    for problem in caught.value.problems:
        assert f"  - {problem}" in message
