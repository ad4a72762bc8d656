"""The offline plan: what it records, the export it writes, and that it needs nothing outside."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest

from mlops_platform.engine import (
    DuplicateUrnError,
    RefusedRegistrationError,
    render_program,
)
from mlops_platform.project import PulumiProject, StackConfig
from mlops_platform.rendered import RecordedResource, RenderedStack

STATE_KEYS = {
    "urn",
    "custom",
    "type",
    "inputs",
    "outputs",
    "parent",
    "dependencies",
    "propertyDependencies",
    "protect",
    "retainOnDelete",
    "provider",
}


def test_export_has_the_shape_of_pulumi_stack_export(rendered: RenderedStack) -> None:
    deployment = rendered.to_deployment()
    assert deployment["version"] == 3
    resources = deployment["deployment"]["resources"]
    for state in resources:
        assert state.keys() >= STATE_KEYS
        assert ("id" in state) == state["custom"]
    stack = resources[0]
    assert stack["type"] == "pulumi:pulumi:Stack"
    name = f"mlops-platform-{rendered.stack}"
    assert (
        stack["urn"] == f"urn:pulumi:{rendered.stack}::mlops-platform::pulumi:pulumi:Stack::{name}"
    )
    assert stack["outputs"]["environment"] == rendered.stack


def test_resources_come_after_everything_they_refer_to(rendered: RenderedStack) -> None:
    seen: set[str] = set()
    for resource in rendered.resources:
        refs = [resource.parent, *resource.dependencies, resource.provider.rsplit("::", 1)[0]]
        refs += [urn for urns in resource.property_dependencies.values() for urn in urns]
        assert {ref for ref in refs if ref} <= seen, resource.urn
        seen.add(resource.urn)


def providers_by_reference(rendered: RenderedStack) -> dict[str, RecordedResource]:
    return {f"{p.urn}::{p.id}": p for p in rendered.of_type("pulumi:providers:aws")}


def test_custom_resources_are_bound_to_the_default_aws_provider_or_the_one_given(
    rendered: RenderedStack,
) -> None:
    """Each AWS resource runs on the package's default provider (the stack's region), or on a
    provider the program made for another region (prod's replicas)."""
    providers = providers_by_reference(rendered)
    [default] = [p for p in providers.values() if p.name.startswith("default")]
    assert default.inputs["region"] == "us-east-1"
    assert default.inputs["version"]  # the pulumi-aws SDK version that registered resources
    for resource in rendered.resources:
        if resource.custom and resource.type.startswith("aws:"):
            assert resource.provider in providers, resource.urn


def test_urns_carry_the_parent_type_chain_like_the_engine(rendered: RenderedStack) -> None:
    [bucket] = [
        b for b in rendered.of_type("aws:s3/bucket:Bucket") if b.name == "artifacts-models-bucket"
    ]
    assert bucket.urn == (
        f"urn:pulumi:{rendered.stack}::mlops-platform::mlops:artifact_storage:ArtifactStorage"
        "$mlops:secure_bucket:SecureBucket$aws:s3/bucket:Bucket::artifacts-models-bucket"
    )
    assert rendered.get(bucket.parent).type == "mlops:secure_bucket:SecureBucket"


def test_mock_outputs_look_like_aws(rendered: RenderedStack) -> None:
    """ARNs name the region of the provider a resource runs on."""
    providers = providers_by_reference(rendered)
    for key in rendered.of_type("aws:kms/key:Key"):
        region = providers[key.provider].inputs["region"]
        assert key.outputs["arn"] == f"arn:aws:kms:{region}:123456789012:key/{key.id}"
    for bucket in rendered.of_type("aws:s3/bucket:Bucket"):
        name = bucket.outputs["bucket"]
        assert name.startswith(bucket.name + "-")
        assert bucket.outputs["arn"] == f"arn:aws:s3:::{name}"
        assert bucket.outputs["tagsAll"] == bucket.inputs["tags"]


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No AWS credentials or settings, and any network connection fails."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"the offline plan tried to connect: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.mark.usefixtures("offline")
def test_a_render_needs_no_aws_credentials() -> None:
    """The suite's renders (every stack's, here and in CI) run with no AWS credentials in the
    environment: a render that reached for AWS would fail. That renders leave nothing behind
    for the next is shown in a fresh interpreter (test_render_cache)."""
    assert all(
        not name.startswith("AWS_")
        for name in os.environ
        if name not in {"AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"}
    )


def test_secret_config_reaches_the_program_as_a_marked_placeholder(
    make_project: Callable[[str, str], PulumiProject],
) -> None:
    project = make_project(
        "dev",
        """
        config:
          aws:region: eu-west-1
          webhookToken:
            secure: v1:AAAA
          mlops-platform:platform:
            environment: dev
            tags:
              owner: {secure: v1:BBBB}
        """,
    )
    config = project.stack_config("dev")
    assert config.values["mlops-platform:webhookToken"] == "[secret: not decrypted offline]"
    assert '"owner": "[secret: not decrypted offline]"' in config.values["mlops-platform:platform"]
    assert config.secret_keys == ["mlops-platform:platform", "mlops-platform:webhookToken"]


def test_config_values_reach_the_program_as_the_cli_passes_them(
    make_project: Callable[[str, str], PulumiProject],
) -> None:
    project = make_project(
        "dev",
        """
        config:
          aws:region: eu-west-1
          flag: true
          count: 3
        """,
    )
    values = project.stack_config("dev").values
    assert (values["mlops-platform:flag"], values["mlops-platform:count"]) == ("true", "3")


def render_within(program: Callable[[], None], seconds: float = 30) -> RenderedStack:
    """Render a program under the engine, failing the test instead of hanging."""
    outcome: dict[str, Any] = {}

    def render() -> None:
        try:
            outcome["rendered"] = render_program(
                program, project="p", stack="s", config=StackConfig({"aws:region": "eu-west-1"}, [])
            )
        except Exception as error:
            outcome["error"] = error

    worker = threading.Thread(target=render, daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), "the render hung"
    if "error" in outcome:
        raise outcome["error"]
    rendered: RenderedStack = outcome["rendered"]
    return rendered


def fail(_: object) -> None:
    raise ValueError("boom in apply")


@pytest.fixture
def failing_program() -> Iterator[None]:
    """A failed render leaves the SDK's futures for the failed resource's outputs holding the
    same error; asyncio would log each as never retrieved when collected. They are collected
    here, quietly."""
    asyncio_log = logging.getLogger("asyncio")
    yield
    asyncio_log.disabled = True
    try:
        gc.collect()
    finally:
        asyncio_log.disabled = False


def test_resources_registered_inside_applies_are_waited_for() -> None:
    def program() -> None:
        def inner(_: object) -> int:
            aws.s3.Bucket("inner")
            pulumi.Output.from_input(2).apply(lambda _: aws.s3.Bucket("innermost"))
            return 1

        pulumi.Output.from_input(1).apply(lambda _: pulumi.Output.from_input(1).apply(inner))

    names = {r.name for r in render_within(program).of_type("aws:s3/bucket:Bucket")}
    assert names == {"inner", "innermost"}


@pytest.mark.usefixtures("failing_program")
def test_a_failed_input_fails_the_render_naming_the_resource() -> None:
    def program() -> None:
        aws.s3.Bucket("bad", tags=pulumi.Output.from_input(1).apply(fail))

    with pytest.raises(ValueError, match="While processing resource: 'bad'") as raised:
        render_within(program)
    assert "boom in apply" in str(raised.value)


@pytest.mark.usefixtures("failing_program")
def test_a_failure_surfaces_while_another_output_never_resolves() -> None:
    """The SDK's wait takes in outputs created while it waits; so must the engine's."""

    def program() -> None:
        loop = asyncio.get_event_loop()
        never, known = loop.create_future(), loop.create_future()
        known.set_result(True)
        pulumi.Output(set(), never, known)

        def later(_: object) -> int:
            pulumi.Output.from_input(2).apply(fail)
            return 1

        pulumi.Output.from_input(1).apply(later)

    with pytest.raises(ValueError, match="boom in apply"):
        render_within(program)


def test_two_resources_under_one_urn_fail_the_render_as_the_engine_refuses_them() -> None:
    """The SDK's mocks answer a second registration of one URN and the recording would keep
    only the last; `pulumi up` fails with "Duplicate resource URN"."""

    def program() -> None:
        aws.s3.Bucket("models")
        aws.s3.Bucket("models")

    with pytest.raises(DuplicateUrnError, match=r"Duplicate resource URN 'urn:pulumi:.*::models'"):
        render_within(program)


def test_a_type_token_the_engine_cannot_parse_fails_the_render() -> None:
    """The engine parses every type token (`package:module:Type`) before registering; the
    SDK's mocks take any string."""

    class Storage(pulumi.ComponentResource):
        def __init__(self) -> None:
            super().__init__("mlops:Storage", "storage")

    with pytest.raises(RefusedRegistrationError, match="type 'mlops:Storage' is not a valid"):
        render_within(Storage)


def test_aliases_are_recorded_as_the_urns_they_name() -> None:
    """As `pulumi stack export` lists them: what a rename keeps, the diff reads from here."""

    def program() -> None:
        parent = pulumi.ComponentResource("mlops:test:Parent", "storage")
        aws.s3.Bucket(
            "models-v2",
            opts=pulumi.ResourceOptions(
                parent=parent, aliases=[pulumi.Alias(name="models"), pulumi.Alias(parent=None)]
            ),
        )

    [bucket] = render_within(program).of_type("aws:s3/bucket:Bucket")
    # pulumi-aws adds its own: Bucket was BucketV2 before v7.
    assert {
        "urn:pulumi:s::p::mlops:test:Parent$aws:s3/bucket:Bucket::models",
        "urn:pulumi:s::p::aws:s3/bucket:Bucket::models-v2",
        "urn:pulumi:s::p::mlops:test:Parent$aws:s3/bucketV2:BucketV2::models-v2",
    } == set(bucket.aliases)
    assert bucket.to_state()["aliases"] == bucket.aliases
