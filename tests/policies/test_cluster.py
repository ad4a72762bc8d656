"""The pack's cluster rules run the behaviour checks over what AnalyzeStack hands them."""

from __future__ import annotations

import pytest

from mlops_platform.policy_check import PolicyPackServer
from mlops_platform.rendered import RenderedStack
from tests.policies.conftest import check_rule, deployment_resources
from tests.policies.test_behaviour import edit_release, release, without_policy

RULES = [
    "k8s-release-scheduling",
    "k8s-release-admission",
    "k8s-release-ordering",
    "k8s-namespace-reachability",
]


@pytest.mark.parametrize("rule", RULES)
def test_every_stack_passes(pack: PolicyPackServer, rendered: RenderedStack, rule: str) -> None:
    assert check_rule(pack, rule, deployment_resources(rendered)) == []


def test_a_device_plugin_landing_nowhere_is_reported_on_its_release(
    pack: PolicyPackServer, rendered_stacks: dict[str, RenderedStack]
) -> None:
    resources = deployment_resources(rendered_stacks["staging"])
    edit_release(resources, "nvidia-device-plugin", lambda p: p["values"].pop("affinity"))
    [finding] = check_rule(pack, "k8s-release-scheduling", resources)
    assert finding.urn == release(resources, "nvidia-device-plugin")["urn"]
    assert "lands on no node of the plan" in finding.message


def test_a_refused_exporter_is_reported_on_its_release(
    pack: PolicyPackServer, rendered_stacks: dict[str, RenderedStack]
) -> None:
    resources = deployment_resources(rendered_stacks["dev"])
    edit_release(resources, "dcgm-exporter", lambda p: p.update(namespace="monitoring"))
    [finding] = check_rule(pack, "k8s-release-admission", resources)
    assert finding.urn == release(resources, "dcgm-exporter")["urn"]


def test_dependencies_reach_the_pack_as_the_engine_sends_them(
    pack: PolicyPackServer, rendered_stacks: dict[str, RenderedStack]
) -> None:
    """The ordering rule sees each release's dependencies: clear one and it is reported."""
    resources = deployment_resources(rendered_stacks["staging"])
    release(resources, "karpenter")["dependencies"] = []
    [finding] = check_rule(pack, "k8s-release-ordering", resources)
    assert finding.message.startswith("karpenter does not wait for the system node group, CoreDNS")


def test_a_namespace_cut_off_its_credentials_is_reported_on_the_namespace(
    pack: PolicyPackServer, rendered_stacks: dict[str, RenderedStack]
) -> None:
    resources = without_policy(
        deployment_resources(rendered_stacks["staging"]), "feast", "allow-aws-apis"
    )
    findings = check_rule(pack, "k8s-namespace-reachability", resources)
    assert {f.urn.rsplit("::", 1)[-1] for f in findings} == {"teams-feast"}
    assert len(findings) == 2
