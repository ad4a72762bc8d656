"""Team isolation: namespaces with accelerator quotas, default limits and default-deny
networking, priority classes; and every rendered Kubernetes manifest against the cluster
version's schema."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from components.team_namespaces import (
    PRIORITY_CLASSES,
    TeamNamespaces,
    TeamNamespacesArgs,
    TeamQuota,
)
from mlops_platform.rendered import RecordedResource, RenderedStack
from tests.components.gpu_fixtures import PLATFORM_GPU, gpu_platform
from tests.conftest import STACKS, run_component

SCHEMA_VERSION = "1.35.0"  # the clusters' Kubernetes version
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
QUOTAS = {"research": TeamQuota(gpus=24), "serving": TeamQuota(gpus=8, neuron_devices=4)}


@pytest.fixture(scope="module")
def teams() -> RenderedStack:
    return run_component(
        lambda: TeamNamespaces(
            "teams", TeamNamespacesArgs(teams=QUOTAS, labels={"mlops.platform/stack": "test"})
        )
    )


def in_namespace(
    rendered: RenderedStack, type_token: str, namespace: str
) -> list[RecordedResource]:
    return [
        r
        for r in rendered.of_type(type_token)
        if r.inputs["metadata"].get("namespace") == namespace
    ]


def quota_of(rendered: RenderedStack, team: str) -> dict[str, str]:
    [quota] = in_namespace(rendered, "kubernetes:core/v1:ResourceQuota", team)
    hard: dict[str, str] = quota.inputs["spec"]["hard"]
    return hard


@pytest.mark.parametrize(
    ("team", "gpus", "neuron_devices"), [("research", "24", "0"), ("serving", "8", "4")]
)
def test_each_team_has_its_accelerator_quota(
    teams: RenderedStack, team: str, gpus: str, neuron_devices: str
) -> None:
    assert quota_of(teams, team) == {
        "requests.nvidia.com/gpu": gpus,
        "requests.aws.amazon.com/neuron": neuron_devices,
    }


@pytest.mark.parametrize("team", sorted(QUOTAS))
def test_team_namespaces_deny_traffic_by_default_but_allow_dns(
    teams: RenderedStack, team: str
) -> None:
    policies = {
        p.inputs["metadata"]["name"]: p.inputs["spec"]
        for p in in_namespace(teams, NETWORK_POLICY, team)
    }
    assert policies["default-deny"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    [rule] = policies["allow-dns"]["egress"]
    assert {p["port"] for p in rule["ports"]} == {53}
    [peer] = rule["to"]
    assert peer["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}


@pytest.mark.parametrize("team", sorted(QUOTAS))
def test_team_namespaces_have_default_limits(teams: RenderedStack, team: str) -> None:
    [limits] = in_namespace(teams, "kubernetes:core/v1:LimitRange", team)
    [item] = limits.inputs["spec"]["limits"]
    assert item["defaultRequest"] == {"cpu": "250m", "memory": "512Mi"}


def test_team_objects_wait_for_their_namespace(teams: RenderedStack) -> None:
    namespaces = {
        n.inputs["metadata"]["name"]: n.urn for n in teams.of_type("kubernetes:core/v1:Namespace")
    }
    assert sorted(namespaces) == sorted(QUOTAS)
    namespaced = [r for r in teams.resources if r.inputs.get("metadata", {}).get("namespace")]
    # A quota, a LimitRange and two NetworkPolicies per team.
    assert len(namespaced) == 4 * len(QUOTAS)
    for resource in namespaced:
        assert namespaces[resource.inputs["metadata"]["namespace"]] in resource.dependencies


def test_inference_outranks_training(teams: RenderedStack) -> None:
    values = {
        p.inputs["metadata"]["name"]: p.inputs["value"]
        for p in teams.of_type("kubernetes:scheduling.k8s.io/v1:PriorityClass")
    }
    assert values["gpu-inference"] > values["gpu-training"]


def test_team_quotas_in_config_reach_the_teams_namespace() -> None:
    """The program maps each config quota to its resource: GPUs and Neuron devices apart."""
    research = PLATFORM_GPU["managed-node-groups"]["teams"]["research"]
    assert quota_of(gpu_platform("managed-node-groups"), "research") == {
        "requests.nvidia.com/gpu": str(research["gpuQuota"]),
        "requests.aws.amazon.com/neuron": str(research["neuronQuota"]),
    }


def test_every_stacks_cni_enforces_network_policy(rendered: RenderedStack) -> None:
    """A stack-wide invariant: without the VPC CNI's policy agent, default-deny does nothing."""
    [vpc_cni] = [
        a for a in rendered.of_type("aws:eks/addon:Addon") if a.inputs["addonName"] == "vpc-cni"
    ]
    assert vpc_cni.inputs["configurationValues"] == '{"enableNetworkPolicy": "true"}'


def builtin_manifests(rendered: RenderedStack) -> list[dict[str, Any]]:
    """Manifests of built-in kinds; CRDs and Helm releases have no schema to check here."""
    return [
        r.inputs
        for r in rendered.resources
        if r.type.startswith("kubernetes:")
        and "apiVersion" in r.inputs
        and not r.type.startswith(("kubernetes:karpenter", "kubernetes:helm.sh"))
    ]


def assert_valid_for_the_cluster_version(manifests: list[dict[str, Any]]) -> None:
    for manifest in manifests:
        kubernetes_validate.validate(manifest, SCHEMA_VERSION, strict=True)


def test_team_manifests_are_valid_for_the_cluster_version(teams: RenderedStack) -> None:
    manifests = builtin_manifests(teams)
    assert len(manifests) == len(PRIORITY_CLASSES) + 5 * len(QUOTAS)
    assert_valid_for_the_cluster_version(manifests)


@pytest.mark.parametrize("stack", STACKS)
def test_every_builtin_manifest_is_valid_for_the_cluster_version(
    rendered_stacks: dict[str, RenderedStack], stack: str
) -> None:
    """A stack-wide invariant: whatever the stack configures, the API server accepts it."""
    manifests = builtin_manifests(rendered_stacks[stack])
    assert len(manifests) >= 8
    assert_valid_for_the_cluster_version(manifests)
