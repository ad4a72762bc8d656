"""Cost allocation: every AWS resource that can carry tags carries the platform's, and so do
the instances and volumes the node pools launch, where GPU spend actually lands."""

from __future__ import annotations

import importlib
import inspect
from functools import cache

from mlops_guardrails.hygiene import TAGGABLE_TYPES
from mlops_platform.rendered import RenderedStack
from tests.conftest import named

COST_ALLOCATION_KEYS = ("mlops:environment", "mlops:stack", "mlops:project", "cost-center")


@cache
def takes_tags(type_token: str) -> bool:
    """Whether the pulumi-aws resource class behind a type token accepts `tags`."""
    _, module_path, class_name = type_token.split(":")
    module = module_path.split("/", maxsplit=1)[0]
    package = importlib.import_module("pulumi_aws" if module == "index" else f"pulumi_aws.{module}")
    return "tags" in inspect.signature(getattr(package, class_name)._internal_init).parameters


def cost_tags(rendered: RenderedStack) -> dict[str, str]:
    tags = named(rendered, "aws:s3/bucket:Bucket", "artifacts-models-bucket").inputs["tags"]
    return {key: tags[key] for key in COST_ALLOCATION_KEYS}


def test_every_taggable_aws_resource_carries_the_cost_allocation_tags(
    rendered: RenderedStack,
) -> None:
    expected = cost_tags(rendered)
    assert expected["mlops:stack"] == rendered.stack and expected["cost-center"]
    taggable = [r for r in rendered.resources if r.type.startswith("aws:") and takes_tags(r.type)]
    untagged = [
        f"{r.type}::{r.name}"
        for r in taggable
        if {k: r.inputs.get("tags", {}).get(k) for k in COST_ALLOCATION_KEYS} != expected
    ]
    assert len(taggable) > 50 and untagged == []


def test_the_policy_pack_guards_the_tags_of_every_taggable_type_the_stacks_create(
    rendered: RenderedStack,
) -> None:
    created = {r.type for r in rendered.resources if r.type.startswith("aws:") and r.custom}
    assert {t for t in created if takes_tags(t)} <= TAGGABLE_TYPES


def test_instances_and_volumes_the_pools_launch_are_tagged(rendered: RenderedStack) -> None:
    expected = cost_tags(rendered).items()
    for template in rendered.of_type("aws:ec2/launchTemplate:LaunchTemplate"):
        specs = {s["resourceType"]: s["tags"] for s in template.inputs["tagSpecifications"]}
        assert {"instance", "volume"} <= specs.keys()
        assert all(expected <= tags.items() for tags in specs.values()), template.name
    for node_class in rendered.of_type("kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"):
        assert expected <= node_class.inputs["spec"]["tags"].items(), node_class.name


def test_resources_the_platform_cannot_tag_are_known_to_be_untaggable() -> None:
    assert not takes_tags("aws:s3/bucketPolicy:BucketPolicy")
    assert takes_tags("aws:amp/workspace:Workspace") and takes_tags("aws:budgets/budget:Budget")
