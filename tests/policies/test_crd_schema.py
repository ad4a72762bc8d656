"""Karpenter's custom resources judged as the API server judges them: the OpenAPI schema and
CEL rules of the CRDs in Karpenter 1.12.1 (pkg/apis/crds at v1.12.1, carried over as
mlops_guardrails/crds/karpenter-1.12.1.json)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, Final

import pytest

from mlops_guardrails import charts, crd_schema
from mlops_guardrails.behaviour import from_export
from mlops_platform.policy_check import PolicyPackServer
from mlops_platform.rendered import RenderedStack
from tests.policies.conftest import check_rule, deployment_resources, state

FACTS: Final = "karpenter-1.12.1.json"
NODE_POOL: Final = "kubernetes:karpenter.sh/v1:NodePool"
NODE_CLASS: Final = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
RULE: Final = "karpenter-crd-schema"


def karpenter_with_pool(**spec: Any) -> list[dict[str, Any]]:
    """A Karpenter release of the pinned chart and one NodePool with this spec over a minimal
    valid one."""
    pool_spec = {
        "template": {
            "spec": {
                "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "x"},
                "requirements": [],
            }
        },
        **spec,
    }
    return [
        state(
            "kubernetes:helm.sh/v3:Release",
            {"chart": charts.KARPENTER.repository, "version": charts.KARPENTER.version},
            name="karpenter-release",
        ),
        state(
            NODE_POOL,
            {"apiVersion": "karpenter.sh/v1", "kind": "NodePool", "spec": pool_spec},
            name="burst",
        ),
    ]


def custom_resources(rendered: RenderedStack) -> dict[str, Any]:
    return {
        r.name: r for r in rendered.resources if r.type in crd_schema.schemas(FACTS) and r.inputs
    }


@pytest.fixture(scope="module")
def karpenter(rendered_stacks: dict[str, RenderedStack]) -> RenderedStack:
    """staging runs the Karpenter backend."""
    return rendered_stacks["staging"]


def test_every_rule_of_both_crds_runs_offline() -> None:
    """All 73 CEL rules (20 NodePool, 53 EC2NodeClass) compile: none is silently skipped for a
    function the evaluator lacks (Kubernetes' regex `find` is provided)."""
    rules = []

    def collect(schema: Any) -> None:
        if isinstance(schema, dict):
            rules.extend(v["rule"] for v in schema.get(crd_schema.VALIDATIONS, ()))
            for value in schema.values():
                collect(value)

    for schema in crd_schema.schemas(FACTS).values():
        collect(schema)
    assert len(rules) == 73
    for rule in rules:
        crd_schema._program(rule)
    assert sum(crd_schema.is_transition_rule(r) for r in rules) == 3


def test_the_staging_stack_passes_the_rule(rendered_stacks: dict[str, RenderedStack]) -> None:
    plan = from_export(deployment_resources(rendered_stacks["staging"]))
    assert list(crd_schema.custom_resource_problems(plan)) == []


def _pool(karpenter: RenderedStack, kind: str) -> dict[str, Any]:
    name = "gpu-training-node-pool" if kind == NODE_POOL else "gpu-training-node-class"
    return copy.deepcopy(dict(custom_resources(karpenter)[name].inputs))


BREAKS: Final[list[tuple[str, Callable[[dict[str, Any]], Any], str]]] = [
    # NP:161-162 requires consolidateAfter once `disruption` is set; it has no default.
    (
        NODE_POOL,
        lambda o: o["spec"]["disruption"].pop("consolidateAfter"),
        "spec.disruption: 'consolidateAfter' is a required property",
    ),
    # NP:233-241: expireAfter is a Go duration or Never.
    (
        NODE_POOL,
        lambda o: o["spec"]["template"]["spec"].update(expireAfter="30d"),
        "spec.template.spec.expireAfter: '30d' does not match",
    ),
    # CEL on budgets: schedule and duration go together.
    (
        NODE_POOL,
        lambda o: o["spec"]["disruption"]["budgets"].append({"nodes": "1", "schedule": "@daily"}),
        "spec.disruption.budgets: 'schedule' must be set with 'duration'",
    ),
    # CEL on requirements: Karpenter's own labels are restricted.
    (
        NODE_POOL,
        lambda o: o["spec"]["template"]["spec"]["requirements"].append(
            {"key": "karpenter.sh/nodepool", "operator": "In", "values": ["x"]}
        ),
        'spec.template.spec.requirements[3].key: label "karpenter.sh/nodepool" is restricted',
    ),
    # A misspelt field: the API server would drop it without a word.
    (
        NODE_POOL,
        lambda o: o["spec"].update(limit={"nvidia.com/gpu": "8"}),
        "spec: Additional properties are not allowed ('limit' was unexpected)",
    ),
    # CEL on amiSelectorTerms: an alias is the only term.
    (
        NODE_CLASS,
        lambda o: o["spec"]["amiSelectorTerms"].append({"id": "ami-0123456789abcdef0"}),
        "spec.amiSelectorTerms: 'alias' is mutually exclusive",
    ),
    # CEL on networkInterfaces: an ENA primary on card 0.
    (
        NODE_CLASS,
        lambda o: o["spec"].update(
            networkInterfaces=[
                {"networkCardIndex": 0, "deviceIndex": 1, "interfaceType": "efa-only"}
            ]
        ),
        "spec.networkInterfaces: networkInterfaces must include a primary interface",
    ),
    # CEL on tags: Karpenter's ownership tags are its own (its IAM scoping relies on them).
    (
        NODE_CLASS,
        lambda o: o["spec"]["tags"].update({"karpenter.sh/nodepool": "x"}),
        "spec.tags: tag contains a restricted tag matching karpenter.sh/nodepool",
    ),
]


@pytest.mark.parametrize(("kind", "edit", "message"), BREAKS)
def test_what_the_api_server_refuses_is_refused_here(
    karpenter: RenderedStack, kind: str, edit: Callable[[dict[str, Any]], Any], message: str
) -> None:
    resource = _pool(karpenter, kind)
    edit(resource)
    [problem] = crd_schema.problems(FACTS, kind, resource)
    assert problem.startswith(message)


def test_absent_fields_take_the_crds_defaults_before_the_rules_run() -> None:
    """A NodePool without `disruption` gets `{consolidateAfter: 0s}` and the default budget, as
    the API server defaults it, and passes."""
    [_, pool] = karpenter_with_pool()
    assert crd_schema.problems(FACTS, NODE_POOL, pool["inputs"]) == []
    defaulted = crd_schema.with_defaults(crd_schema.schemas(FACTS)[NODE_POOL], pool["inputs"])
    assert defaulted["spec"]["disruption"]["consolidateAfter"] == "0s"


def test_values_unknown_at_preview_are_not_judged(karpenter: RenderedStack) -> None:
    """The node role and key come from other resources: unknown on a first preview."""
    resource = _pool(karpenter, NODE_CLASS)
    resource["spec"]["role"] = crd_schema.UNKNOWN
    resource["spec"]["blockDeviceMappings"][0]["ebs"]["kmsKeyID"] = crd_schema.UNKNOWN
    assert crd_schema.problems(FACTS, NODE_CLASS, resource) == []


def test_the_pack_judges_a_plans_pools_by_the_installed_karpenter(
    pack: PolicyPackServer,
) -> None:
    [finding] = check_rule(pack, RULE, karpenter_with_pool(disruption={}))
    assert "NodePool spec.disruption: 'consolidateAfter' is a required property" in finding.message
    assert "the CRD of karpenter 1.12.1 refuses it" in finding.message
    # Without a Karpenter release in the stack, nothing says which CRDs the cluster has.
    assert check_rule(pack, RULE, karpenter_with_pool(disruption={})[1:]) == []
