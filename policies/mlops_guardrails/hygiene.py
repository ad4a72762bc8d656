"""Rules that span resource types: required tags, and guards on stateful resources."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

from pulumi_policy import ResourceValidationArgs, Severity

from mlops_guardrails.props import is_true, mapping
from mlops_guardrails.rule import resource_rule, setting
from mlops_guardrails.vocabulary import STATEFUL_TYPES, TAGGABLE_TYPES

TAG_TUNABLES: Final = {
    "environment": {
        "type": "string",
        "enum": ["", "dev", "staging", "prod"],
        "default": "",
        "description": "The checked stack's environment; its mlops:environment tag must match.",
    },
    "requiredKeys": {
        "type": "array",
        "items": {"type": "string"},
        "default": ["owner", "cost-center"],
        "description": "Tag keys (besides the platform's own) every taggable resource carries.",
    },
}


def _urn_stack_and_project(urn: str) -> tuple[str, str]:
    stack, project = urn.removeprefix("urn:pulumi:").split("::")[:2]
    return stack, project


def _required_tags(props: Mapping[str, Any], args: ResourceValidationArgs) -> Iterator[str]:
    tags = mapping(props.get("tags"))
    stack, project = _urn_stack_and_project(args.urn)
    expected = {"mlops:stack": stack, "mlops:project": project, "managed-by": "pulumi"}
    environment = setting(args, TAG_TUNABLES, "environment")
    if environment:
        expected["mlops:environment"] = environment
    for key, value in expected.items():
        if tags.get(key) != value:
            yield f"tag {key} is {tags.get(key)!r}, expected {value!r}"
    missing = [key for key in setting(args, TAG_TUNABLES, "requiredKeys") if not tags.get(key)]
    if missing:
        yield f"missing tags: {', '.join(missing)}"


def _protected(_props: Mapping[str, Any], args: ResourceValidationArgs) -> Iterator[str]:
    if not args.opts.protect:
        yield "stateful resource is not protected: a destroy or replacement would delete its data"


def _deletion_protection(props: Mapping[str, Any], args: ResourceValidationArgs) -> Iterator[str]:
    kind = args.resource_type
    if kind == "aws:s3/bucket:Bucket" and is_true(props.get("forceDestroy")):
        yield "force_destroy deletes every object when the bucket is deleted"
    elif kind == "aws:ecr/repository:Repository" and is_true(props.get("forceDelete")):
        yield "force_delete deletes every image when the repository is deleted"
    elif kind == "aws:dynamodb/table:Table" and not is_true(props.get("deletionProtectionEnabled")):
        yield "DynamoDB deletion protection is off"
    elif kind == "aws:eks/cluster:Cluster" and not is_true(props.get("deletionProtection")):
        yield "EKS deletion protection is off"
    elif kind == "aws:cloudwatch/logGroup:LogGroup" and not is_true(
        props.get("deletionProtectionEnabled")
    ):
        yield "log group deletion protection is off"


RULES = [
    resource_rule(
        name="required-tags",
        description="Taggable resources carry the platform's tags, consistent with their stack.",
        resource_types=TAGGABLE_TYPES,
        check=_required_tags,
        severity=Severity.LOW,
        remediation=(
            "Pass the stack's tags (infra.program.platform_tags) to the resource, and set the "
            "required keys in the stack config's `tags`."
        ),
        tunables=TAG_TUNABLES,
        live=True,
    ),
    resource_rule(
        name="stateful-resources-protected",
        description=(
            "Buckets, keys, tables, registries, feature stores, log groups and clusters are "
            "protected."
        ),
        resource_types=STATEFUL_TYPES,
        check=_protected,
        severity=Severity.HIGH,
        remediation="Set protect and retain_on_delete (components.common.stateful_options).",
    ),
    resource_rule(
        name="aws-deletion-protection",
        description="Nothing can be force-destroyed, and AWS-side deletion protection is on.",
        resource_types={
            "aws:s3/bucket:Bucket",
            "aws:ecr/repository:Repository",
            "aws:dynamodb/table:Table",
            "aws:eks/cluster:Cluster",
            "aws:cloudwatch/logGroup:LogGroup",
        },
        check=_deletion_protection,
        severity=Severity.HIGH,
        remediation=(
            "Leave force_destroy/force_delete False; set deletion_protection_enabled (DynamoDB, "
            "log groups) and deletion_protection (EKS)."
        ),
    ),
]
