"""For each rule mandatory in prod, a copy of the prod plan broken in exactly that way is caught.

Where the plan has a resource of the rule's type it is edited; otherwise the violating resource
is added, as the next feature would add it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from mlops_guardrails.pack import POLICIES
from mlops_platform.policy_check import Finding, PolicyPackServer
from mlops_platform.rendered import RenderedStack
from tests.policies.cases import CASES, RuleCase
from tests.policies.conftest import (
    check,
    check_rule,
    deployment_resources,
    environment_config,
    key_without_event_rules,
    of_rule,
    state,
)
from tests.policies.test_behaviour import edit_release, release, without_policy
from tests.policies.test_crd_schema import karpenter_with_pool
from tests.policies.test_stack_rules import gpu_pool, repository

Resources = list[dict[str, Any]]


def break_with_case(case: RuleCase) -> Callable[[Resources], Resources]:
    def mutate(resources: Resources) -> Resources:
        existing = next((r for r in resources if r["type"] == case.resource_type), None)
        if existing is None:
            return [*resources, state(case.resource_type, case.bad, name="mutant")]
        removed = set(case.good) - set(case.bad)
        for props in (existing["inputs"], existing["outputs"]):
            props.update(copy.deepcopy(case.bad))
            for key in removed:
                props.pop(key, None)
        existing["protect"] = not case.bad_is_unprotected
        return resources

    return mutate


def dropping(*names: str) -> Callable[[Resources], Resources]:
    return lambda resources: [
        r for r in resources if not any(r["urn"].endswith(f"::{name}") for name in names)
    ]


def editing_release(
    name: str, edit: Callable[[dict[str, Any]], Any]
) -> Callable[[Resources], Resources]:
    def mutate(resources: Resources) -> Resources:
        edit_release(resources, name, edit)
        return resources

    return mutate


def not_waiting(name: str) -> Callable[[Resources], Resources]:
    def mutate(resources: Resources) -> Resources:
        release(resources, name)["dependencies"] = []
        return resources

    return mutate


STACK_MUTATIONS: dict[str, Callable[[Resources], Resources]] = {
    "s3-bucket-guards": dropping("artifacts-models-public-access-block"),
    "vpc-flow-logs": dropping("network-flow-logs"),
    # The runners' HTTPS rules gone (the platform's and the serving team's): prod's private
    # endpoint has no path left.
    "eks-private-api-reachable": dropping(
        "deploy-runner-cluster-api", "team-runner-serving-cluster-api"
    ),
    "vpc-default-security-group-closed": dropping("network-default-security-group"),
    # Registry-wide scanning covers every repository: remove it and add one not scanned on push.
    "ecr-image-scanning": lambda resources: [
        *dropping("registry-scanning")(resources),
        repository("unscanned"),
    ],
    "ecr-lifecycle-policy": lambda resources: [*resources, repository("unkept")],
    "cost-budget-alerts": dropping("cost-budget"),
    # One more pool whose ceiling takes prod past its environment-wide cap of 128 GPUs.
    "gpu-environment-ceiling": lambda resources: [*resources, gpu_pool("burst", ceiling=96)],
    # The chart's default affinity back: it waits for node feature discovery labels.
    "k8s-release-scheduling": editing_release(
        "nvidia-device-plugin", lambda props: props["values"].pop("affinity")
    ),
    "k8s-release-admission": editing_release(
        "dcgm-exporter", lambda props: props.update(namespace="monitoring")
    ),
    "k8s-release-ordering": not_waiting("kube-state-metrics"),
    # Karpenter arrives with a NodePool whose disruption block lacks consolidateAfter, which
    # Karpenter 1.12.1's CRD requires once the block is set.
    "karpenter-crd-schema": lambda resources: [*resources, *karpenter_with_pool(disruption={})],
    # Back to deny-all-but-DNS: serving's model server loses its AWS credentials.
    "k8s-namespace-reachability": lambda resources: without_policy(
        resources, "serving", "allow-aws-apis"
    ),
    # The event queues' key made without EventBridge's use: every event would fail.
    "sqs-key-admits-senders": key_without_event_rules,
    # The tracking server's artifacts moved to the root of the experiments bucket.
    "mlflow-artifacts-guarded": lambda resources: at_bucket_root(resources, "tracking-server"),
}


def at_bucket_root(resources: Resources, name: str) -> Resources:
    [server] = [r for r in resources if r["urn"].endswith(f"::{name}")]
    for props in (server["inputs"], server["outputs"]):
        props["artifactStoreUri"] = props["artifactStoreUri"].rsplit("/", 2)[0] + "/"
    return resources


# A rule with several cases is mutated with its first.
MUTATIONS = {
    **{case.rule: break_with_case(case) for case in reversed(CASES)},
    **STACK_MUTATIONS,
}


def mandatory_in_prod() -> list[str]:
    config = environment_config("prod")
    return [
        p.name
        for p in POLICIES
        if (config.get(p.name) if isinstance(config.get(p.name), str) else config.get("all"))
        == "mandatory"
    ]


def test_every_prod_mandatory_rule_has_a_mutation() -> None:
    assert set(mandatory_in_prod()) <= set(MUTATIONS)


@pytest.fixture(scope="module")
def pristine_findings(
    pack: PolicyPackServer, rendered_stacks: dict[str, RenderedStack]
) -> list[Finding]:
    return check(pack, deployment_resources(rendered_stacks["prod"]), environment_config("prod"))


@pytest.mark.parametrize("rule", mandatory_in_prod())
def test_a_prod_plan_broken_one_way_is_caught_by_that_rule(
    pack: PolicyPackServer,
    rendered_stacks: dict[str, RenderedStack],
    pristine_findings: list[Finding],
    rule: str,
) -> None:
    prod = environment_config("prod")
    pristine = deployment_resources(rendered_stacks["prod"])
    assert of_rule(pristine_findings, rule) == []
    case_config = next((c.config for c in CASES if c.rule == rule), {})
    config = {**prod, rule: {**prod.get(rule, {}), **case_config}} if case_config else prod
    findings = check_rule(pack, rule, MUTATIONS[rule](pristine), config)
    assert findings and {f.level for f in findings} == {"mandatory"}
