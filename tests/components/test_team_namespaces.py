"""Team isolation, and every rendered Kubernetes manifest against the cluster version's schema."""

from __future__ import annotations

import kubernetes_validate
import pytest

from mlops_platform.rendered import RenderedStack

SCHEMA_VERSION = "1.35.0"  # the clusters' Kubernetes version


def in_namespace(rendered: RenderedStack, type_token: str, namespace: str) -> list[dict]:  # type: ignore[type-arg]
    return [
        r.inputs
        for r in rendered.of_type(type_token)
        if r.inputs["metadata"].get("namespace") == namespace
    ]


def test_each_team_has_its_accelerator_quota(rendered_stacks: dict[str, RenderedStack]) -> None:
    prod = rendered_stacks["prod"]
    quotas = {
        team: in_namespace(prod, "kubernetes:core/v1:ResourceQuota", team)[0]["spec"]["hard"]
        for team in ("research", "serving")
    }
    assert quotas["research"]["requests.nvidia.com/gpu"] == "24"
    assert quotas["serving"]["requests.nvidia.com/gpu"] == "8"


def test_team_namespaces_deny_traffic_by_default_but_allow_dns(rendered: RenderedStack) -> None:
    policies = {
        p["metadata"]["name"]: p["spec"]
        for p in in_namespace(rendered, "kubernetes:networking.k8s.io/v1:NetworkPolicy", "research")
    }
    assert policies["default-deny"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    [rule] = policies["allow-dns"]["egress"]
    assert {p["port"] for p in rule["ports"]} == {53}


def test_team_namespaces_have_default_limits(rendered: RenderedStack) -> None:
    [limits] = in_namespace(rendered, "kubernetes:core/v1:LimitRange", "research")
    [item] = limits["spec"]["limits"]
    assert item["defaultRequest"] == {"cpu": "250m", "memory": "512Mi"}


def test_inference_outranks_training(rendered: RenderedStack) -> None:
    values = {
        p.inputs["metadata"]["name"]: p.inputs["value"]
        for p in rendered.of_type("kubernetes:scheduling.k8s.io/v1:PriorityClass")
    }
    assert values["gpu-inference"] > values["gpu-training"]


def test_the_cni_enforces_network_policy(rendered: RenderedStack) -> None:
    [vpc_cni] = [
        a for a in rendered.of_type("aws:eks/addon:Addon") if a.inputs["addonName"] == "vpc-cni"
    ]
    assert vpc_cni.inputs["configurationValues"] == '{"enableNetworkPolicy": "true"}'


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_every_builtin_manifest_is_valid_for_the_cluster_version(
    rendered_stacks: dict[str, RenderedStack], stack: str
) -> None:
    manifests = [
        r.inputs
        for r in rendered_stacks[stack].resources
        if r.type.startswith("kubernetes:")
        and "apiVersion" in r.inputs
        and not r.type.startswith(("kubernetes:karpenter", "kubernetes:helm.sh"))
    ]
    assert len(manifests) >= 8
    for manifest in manifests:
        kubernetes_validate.validate(manifest, SCHEMA_VERSION, strict=True)
