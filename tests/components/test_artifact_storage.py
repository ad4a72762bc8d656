"""Artifact storage as a whole: bucket set from config, prod protection, outputs for others."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from components.artifact_storage import ArtifactBucketSpec, ArtifactStorage, ArtifactStorageArgs
from components.common import ComponentArgsError
from mlops_guardrails.vocabulary import STATEFUL_TYPES
from mlops_platform.engine import render_stack
from mlops_platform.project import PulumiProject
from mlops_platform.rendered import RenderedStack
from tests.conftest import named, run_component


def test_prod_protects_every_stateful_resource(rendered_stacks: dict[str, RenderedStack]) -> None:
    stateful = [r for r in rendered_stacks["prod"].resources if r.type in STATEFUL_TYPES]
    assert {r.type for r in stateful} == STATEFUL_TYPES
    assert all(r.protect and r.retain_on_delete for r in stateful)


def test_dev_leaves_resources_unprotected_for_cheap_teardown(
    rendered_stacks: dict[str, RenderedStack],
) -> None:
    assert not any(r.protect for r in rendered_stacks["dev"].resources)


def test_only_stateful_resources_are_protected(rendered_stacks: dict[str, RenderedStack]) -> None:
    """Protecting a bucket policy would block harmless replacements of it."""
    protected = {r.type for r in rendered_stacks["prod"].resources if r.protect}
    assert protected <= STATEFUL_TYPES


def test_outputs_name_every_bucket_and_the_key(rendered: RenderedStack) -> None:
    outputs = rendered.outputs
    buckets = {
        b.name.removeprefix("artifacts-").removesuffix("-bucket"): b
        for b in rendered.of_type("aws:s3/bucket:Bucket")
    }
    for key in ("models", "datasets", "experiments"):
        assert outputs["artifactBucketNames"][key] == buckets[key].outputs["bucket"]
        assert outputs["artifactBucketArns"][key] == buckets[key].outputs["arn"]
    assert outputs["accessLogBucketName"] == buckets["access-logs"].outputs["bucket"]
    key = named(rendered, "aws:kms/key:Key", "artifacts-key")
    assert outputs["artifactKeyArn"] == key.outputs["arn"]
    assert outputs["environment"] == rendered.stack


def test_bucket_set_comes_from_config(make_project: Callable[[str, str], PulumiProject]) -> None:
    project = make_project(
        "dev",
        """
        config:
          aws:region: eu-west-1
          mlops-platform:platform:
            environment: dev
            eks: {endpoint: {publicAccessCidrs: ["203.0.113.0/24"]}}
            artifacts:
              buckets:
                features: {purpose: feature snapshots}
        """,
    )
    rendered = render_stack(project, "dev")
    assert sorted(b.name for b in rendered.of_type("aws:s3/bucket:Bucket")) == [
        "artifacts-access-logs-bucket",
        "artifacts-features-bucket",
    ]
    [features] = [b for b in rendered.of_type("aws:s3/bucket:Bucket") if "features" in b.name]
    assert features.inputs["tags"]["mlops:purpose"] == "feature snapshots"


def storage_args(*keys: str) -> ArtifactStorageArgs:
    return ArtifactStorageArgs(
        kms_key_arn="arn:aws:kms:eu-west-1:123456789012:key/k",
        buckets=tuple(ArtifactBucketSpec(key, "", 30) for key in keys),
        abort_incomplete_multipart_upload_days=7,
        access_log_retention_days=90,
        tags={},
    )


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ((), "at least one artifact bucket"),
        (("models", "models"), "duplicate artifact bucket keys: \\['models'\\]"),
        (("access-logs",), "reserved"),
    ],
)
def test_bad_bucket_sets_are_refused(keys: tuple[str, ...], message: str) -> None:
    with pytest.raises(ComponentArgsError, match=message):
        run_component(lambda: ArtifactStorage("a", storage_args(*keys)))
