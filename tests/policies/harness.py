"""Runs policies against recorded plans in-process, with props wrapped as the SDK's runtime does."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator
from typing import Any

from pulumi_policy import (
    Policy,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy

from mlops_platform.engine import RecordedResource, RenderedStack

Violation = tuple[str, str | None]


def _options(resource: RecordedResource) -> PolicyResourceOptions:
    return PolicyResourceOptions(
        protect=resource.protect,
        ignore_changes=[],
        delete_before_replace=None,
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=[],
        parent=resource.parent or None,
    )


def _policy_resources(rendered: RenderedStack) -> list[PolicyResource]:
    by_urn: dict[str, PolicyResource] = {}
    # Dependency order, so referents exist already; tests may drop resources others refer to.
    for resource in rendered.resources:
        by_urn[resource.urn] = PolicyResource(
            resource_type=resource.type,
            props=unknown_checking_proxy(copy.deepcopy(resource.outputs)),
            urn=resource.urn,
            name=resource.name,
            opts=_options(resource),
            provider=None,
            parent=by_urn.get(resource.parent),
            dependencies=[by_urn[urn] for urn in resource.dependencies if urn in by_urn],
            property_dependencies={
                key: [by_urn[urn] for urn in urns if urn in by_urn]
                for key, urns in resource.property_dependencies.items()
            },
        )
    return list(by_urn.values())


def _collect(run: Callable[[Callable[[str, str | None], None]], Any]) -> list[Violation]:
    found: list[Violation] = []
    # The SDK treats a rule that reads a value unknown at preview as not applicable.
    with contextlib.suppress(UnknownValueError):
        run(lambda message, urn=None: found.append((message, urn)))
    return found


def resource_violations(
    policy: ResourceValidationPolicy,
    resource_type: str,
    props: dict[str, Any],
    urn: str = "urn:test",
) -> list[Violation]:
    args = ResourceValidationArgs(
        resource_type=resource_type,
        props=unknown_checking_proxy(copy.deepcopy(props)),
        urn=urn,
        name=urn.rsplit("::", 1)[-1],
        opts=PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), []),
        provider=None,
    )
    return _collect(lambda report: policy.validate(args, report))


def stack_violations(policy: StackValidationPolicy, rendered: RenderedStack) -> list[Violation]:
    args = StackValidationArgs(resources=_policy_resources(rendered))
    return _collect(lambda report: policy.validate(args, report))


def plan_violations(policy: Policy, rendered: RenderedStack) -> Iterator[tuple[str, Violation]]:
    """Every violation of one policy in a plan, resource by resource or for the stack."""
    if isinstance(policy, StackValidationPolicy):
        for violation in stack_violations(policy, rendered):
            yield policy.name, violation
        return
    assert isinstance(policy, ResourceValidationPolicy)
    for resource in rendered.resources:
        for violation in resource_violations(policy, resource.type, resource.outputs, resource.urn):
            yield policy.name, violation
