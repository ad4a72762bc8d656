"""What the cluster does with the plan: its Helm releases judged from chart contracts, and
its namespaces' connections judged from their NetworkPolicies.

The checks themselves live in `behaviour`, shared with the tests; these rules run them over the
resources AnalyzeStack hands the pack.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from pulumi_policy import Severity, StackValidationArgs

from mlops_guardrails.behaviour import (
    ADDON,
    EC2_NODE_CLASS,
    NAMESPACE,
    NETWORK_POLICY,
    NODE_GROUP,
    NODE_POOL,
    POD_IDENTITY_ASSOCIATION,
    RELEASE,
    ROLE,
    PlanResource,
    admission_problems,
    ordering_problems,
    reachability_problems,
    scheduling_problems,
)
from mlops_guardrails.crd_schema import custom_resource_problems
from mlops_guardrails.frameworks import cis_eks
from mlops_guardrails.rule import stack_rule

Check = Callable[[Sequence[PlanResource]], Iterator[tuple[str, str]]]


def _plan(args: StackValidationArgs) -> list[PlanResource]:
    return [
        PlanResource(
            r.resource_type, r.urn, r.props, tuple(dependency.urn for dependency in r.dependencies)
        )
        for r in args.resources
    ]


def _over_plan(check: Check) -> Callable[[StackValidationArgs], Iterator[tuple[str, str]]]:
    return lambda args: check(_plan(args))


RULES = [
    stack_rule(
        name="k8s-release-scheduling",
        description=(
            "Every workload of a Helm release lands on a node the stack makes; a device plugin "
            "or GPU exporter on every node of its accelerator; nothing else on accelerator nodes."
        ),
        resource_types={RELEASE, NODE_GROUP, NODE_POOL},
        check=_over_plan(scheduling_problems),
        severity=Severity.HIGH,
        remediation=(
            "Set the release's nodeSelector, affinity and tolerations (values) so its pods match "
            "the labels and taints of the pools they serve; the chart's defaults are in its "
            "contract (mlops_guardrails/charts.py)."
        ),
    ),
    stack_rule(
        name="k8s-release-admission",
        description=(
            "Each Helm release's pods pass the Pod Security level their namespace enforces."
        ),
        resource_types={RELEASE, NAMESPACE},
        check=_over_plan(admission_problems),
        severity=Severity.HIGH,
        framework=cis_eks("4.2.1"),
        remediation=(
            "Install node software that needs host access into kube-system; keep workload "
            "namespaces at baseline or restricted."
        ),
    ),
    stack_rule(
        name="k8s-release-ordering",
        description=(
            "Helm releases wait for the system nodes and CoreDNS their pods need and for the "
            "namespace they install into."
        ),
        resource_types={RELEASE, NODE_GROUP, ADDON, NAMESPACE},
        check=_over_plan(ordering_problems),
        severity=Severity.MEDIUM,
        remediation=(
            "Add the system node group, the coredns add-on and the namespace to the release's "
            "depends_on (EksCluster.system_ready, KubernetesBaseline.namespaces)."
        ),
    ),
    stack_rule(
        name="k8s-namespace-reachability",
        description=(
            "Team namespaces' network policies let their pods reach each other, DNS and (holding "
            "AWS roles) the Pod Identity agent and HTTPS, and admit the callers each declares."
        ),
        resource_types={NAMESPACE, NETWORK_POLICY, POD_IDENTITY_ASSOCIATION, ROLE},
        check=_over_plan(reachability_problems),
        severity=Severity.HIGH,
        remediation=(
            "Declare the connection in the team's config (gpu.teams.<team>.ingress) rather than "
            "editing its NetworkPolicies; pods bound to AWS roles need TCP 443 out and, with Pod "
            "Identity, 169.254.170.23/32 TCP 80."
        ),
    ),
    stack_rule(
        name="karpenter-crd-schema",
        description=(
            "Karpenter NodePools and EC2NodeClasses pass the OpenAPI schema and CEL rules of the "
            "CRDs the installed Karpenter version brings."
        ),
        resource_types={RELEASE, NODE_POOL, EC2_NODE_CLASS},
        check=_over_plan(custom_resource_problems),
        severity=Severity.HIGH,
        remediation=(
            "Change the pool's config (gpu.pools) so the NodePool and EC2NodeClass it renders "
            "fit the CRD; the API server would refuse them at `pulumi up`."
        ),
    ),
]
