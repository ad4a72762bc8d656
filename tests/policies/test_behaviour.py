"""What Kubernetes does with each stack's Helm releases and namespaces, judged offline from chart
contracts and NetworkPolicies.

Each check passes on every stack and on both GPU backends with both vendors, and fails on a plan
broken the way the chart's own source says it breaks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from mlops_guardrails import behaviour, charts
from mlops_guardrails.behaviour import PlanResource
from mlops_platform.rendered import RenderedStack
from tests.components.gpu_fixtures import gpu_platform
from tests.policies.conftest import deployment_resources

Resources = list[dict[str, Any]]
CHECKS = {
    "scheduling": behaviour.scheduling_problems,
    "admission": behaviour.admission_problems,
    "ordering": behaviour.ordering_problems,
    "reachability": behaviour.reachability_problems,
    "namespaces": behaviour.namespace_problems,
}


def plan(resources: Resources) -> list[PlanResource]:
    return behaviour.from_export(resources)


def problems(check: str, resources: Resources) -> list[str]:
    return [message for message, _ in CHECKS[check](plan(resources))]


def release(resources: Resources, name: str) -> dict[str, Any]:
    return next(
        r for r in resources if r["type"] == behaviour.RELEASE and r["outputs"]["name"] == name
    )


def edit_release(resources: Resources, name: str, edit: Callable[[dict[str, Any]], None]) -> None:
    """Edit a release's properties as a changed program would register them."""
    found = release(resources, name)
    for props in (found["inputs"], found["outputs"]):
        edit(props)


def of_release(name: str, props: dict[str, Any]) -> behaviour.Release:
    """A release of a chart contract's defaults with `props` over them."""
    [found] = behaviour.releases(
        [PlanResource(behaviour.RELEASE, f"urn:pulumi:t::p::{behaviour.RELEASE}::{name}", props)]
    )
    return found


@pytest.mark.parametrize("check", CHECKS)
def test_every_stack_schedules_admits_and_orders_its_releases(
    rendered: RenderedStack, check: str
) -> None:
    assert problems(check, deployment_resources(rendered)) == []


@pytest.mark.parametrize("backend", ["managed-node-groups", "karpenter"])
@pytest.mark.parametrize("check", CHECKS)
def test_both_backends_run_both_vendors_software(backend: str, check: str) -> None:
    assert problems(check, deployment_resources(gpu_platform(backend))) == []


@pytest.mark.parametrize("backend", ["managed-node-groups", "karpenter"])
def test_gpus_are_advertised_on_exactly_the_gpu_pools_of_their_vendor(backend: str) -> None:
    """A pod requesting a GPU fits where the device plugin advertises one: that must be every
    pool of the vendor, and only those; the same for EFA interfaces and the EFA pools."""
    resources = plan(deployment_resources(gpu_platform(backend)))
    nodes = behaviour.node_kinds(resources)
    advertised = {}
    for found in behaviour.releases(resources):
        for workload in found.workloads():
            if workload.role == "device-plugin" and not workload.optional:
                placement = found.placement(workload)
                advertised[workload.node_resource] = {
                    n.pool for n in nodes if behaviour.lands_on(placement, n)
                }
    assert advertised == {
        "nvidia.com/gpu": {"chat", "train"},
        "aws.amazon.com/neuron": {"serve"},
        "vpc.amazonaws.com/efa": {"train"},  # the one EFA pool
    }


def test_with_the_charts_default_affinity_the_nvidia_device_plugin_runs_nowhere(
    rendered_stacks: dict[str, RenderedStack],
) -> None:
    """nvidia-device-plugin 0.18.0 values.yaml:64-85 requires node feature discovery labels
    (pci-10de.present, cpu-model.vendor_id or nvidia.com/gpu.present), which no pool carries."""
    resources = deployment_resources(rendered_stacks["prod"])
    edit_release(resources, "nvidia-device-plugin", lambda p: p["values"].pop("affinity"))
    [nowhere] = problems("scheduling", resources)
    assert nowhere.startswith("nvidia-device-plugin device-plugin (DaemonSet) lands on no node")
    assert "feature.node.kubernetes.io/pci-10de.present" in nowhere


@pytest.mark.parametrize(
    ("plugin", "resource"),
    [
        ("aws-efa-k8s-device-plugin", "vpc.amazonaws.com/efa"),
        ("nvidia-device-plugin", "nvidia.com/gpu"),
    ],
)
def test_a_pool_whose_device_plugin_is_not_installed_advertises_nothing(
    rendered_stacks: dict[str, RenderedStack], plugin: str, resource: str
) -> None:
    """prod's p5.48xlarge pool has 32 EFA interfaces: without the EFA device plugin none is
    advertised (eks-charts aws-efa-k8s-device-plugin NOTES.txt; EKS device-management-efa) and
    NCCL falls back to TCP."""
    resources = deployment_resources(rendered_stacks["prod"])
    dropped = release(resources, plugin)
    found = problems("scheduling", [r for r in resources if r is not dropped])
    [missing] = [p for p in found if "no release in the plan installs its device plugin" in p]
    assert f"have {resource} but" in missing


def test_a_device_plugin_that_tolerates_only_its_vendors_taint_misses_a_pool_tainted_more(
    rendered_stacks: dict[str, RenderedStack],
) -> None:
    resources = deployment_resources(rendered_stacks["prod"])
    training = next(
        r
        for r in resources
        if r["type"] == behaviour.NODE_GROUP
        and r["outputs"]["labels"].get("mlops.platform/pool") == "training"
    )
    for props in (training["inputs"], training["outputs"]):
        props["taints"] = [
            *props["taints"],
            {"key": "team", "value": "research", "effect": "NO_SCHEDULE"},
        ]
    assert problems("scheduling", resources) == []
    edit_release(
        resources,
        "nvidia-device-plugin",
        lambda p: p["values"].update(
            tolerations=[{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
        ),
    )
    [missed] = problems("scheduling", resources)
    assert "misses the nvidia.com/gpu nodes of pools ['training p5.48xlarge']" in missed


def test_software_for_no_accelerator_that_tolerates_every_taint_is_flagged_on_gpu_nodes(
    rendered_stacks: dict[str, RenderedStack],
) -> None:
    resources = deployment_resources(rendered_stacks["prod"])

    def anywhere(props: dict[str, Any]) -> None:
        props["values"].pop("nodeSelector")
        props["values"]["tolerations"] = [{"operator": "Exists"}]

    edit_release(resources, "kube-state-metrics", anywhere)
    [intruding] = problems("scheduling", resources)
    assert intruding.startswith(
        "kube-state-metrics exporter (Deployment) lands on accelerator pools "
        "['inference g6e.2xlarge', 'inference g6e.xlarge', 'training p5.48xlarge']"
    )
    assert intruding.endswith("tolerates every taint")


@pytest.mark.parametrize(
    ("values", "affinity"),
    [
        # Helm merges maps: an empty or partial affinity leaves the chart's terms in place.
        ({"affinity": {}}, charts.NVIDIA_DEVICE_PLUGIN.workloads[0].node_affinity),
        (
            {"affinity": {"podAntiAffinity": {}}},
            charts.NVIDIA_DEVICE_PLUGIN.workloads[0].node_affinity,
        ),
        # A null deletes the default; a list replaces it.
        ({"affinity": None}, ()),
        ({"affinity": {"nodeAffinity": None}}, ()),
        (
            {
                "affinity": {
                    "nodeAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": {
                            "nodeSelectorTerms": [
                                {"matchExpressions": [{"key": "a", "operator": "Exists"}]}
                            ]
                        }
                    }
                }
            },
            ((charts.Requirement("a", "Exists"),),),
        ),
    ],
    ids=["empty-map", "other-affinity", "null", "null-node-affinity", "replaced"],
)
def test_release_values_merge_over_chart_defaults_as_helm_merges_them(
    values: dict[str, Any], affinity: tuple[tuple[charts.Requirement, ...], ...]
) -> None:
    found = of_release(
        "plugin", {"chart": "nvidia-device-plugin", "version": "0.18.0", "values": values}
    )
    assert found.placement(found.contract.workloads[0]).node_affinity == affinity


def test_a_null_in_node_selector_deletes_the_charts_default_key() -> None:
    found = of_release(
        "karpenter",
        {
            "chart": "oci://public.ecr.aws/karpenter/karpenter",
            "version": "1.12.1",
            "values": {"nodeSelector": {"kubernetes.io/os": None, "pool": "system"}},
        },
    )
    assert found.placement(found.contract.workloads[0]).node_selector == {"pool": "system"}


def test_dcgm_exporter_is_refused_by_a_baseline_namespace(
    rendered_stacks: dict[str, RenderedStack],
) -> None:
    """dcgm-exporter 4.1.3 mounts the kubelet's pod-resources hostPath and adds SYS_ADMIN
    (values.yaml, templates/daemonset.yaml); Pod Security `baseline` forbids both."""
    resources = deployment_resources(rendered_stacks["prod"])
    edit_release(resources, "dcgm-exporter", lambda p: p.update(namespace="monitoring"))
    [refused] = problems("admission", resources)
    assert refused.startswith("dcgm-exporter exporter needs Pod Security 'privileged'")
    assert refused.endswith("namespace monitoring enforces 'baseline', so its pods are refused")


def test_a_namespace_without_a_level_admits_privileged_pods() -> None:
    """Kubernetes' Pod Security admission defaults to `privileged` and EKS keeps that default."""
    resources = [
        PlanResource(
            behaviour.RELEASE,
            "urn:pulumi:t::p::kubernetes:helm.sh/v3:Release::dcgm",
            {"chart": "dcgm-exporter", "version": "4.1.3", "namespace": "gpu"},
        ),
        PlanResource(
            behaviour.NAMESPACE,
            "urn:pulumi:t::p::kubernetes:core/v1:Namespace::gpu",
            {"metadata": {"name": "gpu", "labels": {}}},
        ),
    ]
    assert list(behaviour.admission_problems(resources)) == []


def test_a_release_that_does_not_wait_names_everything_it_may_outrun(
    rendered_stacks: dict[str, RenderedStack],
) -> None:
    resources = deployment_resources(rendered_stacks["prod"])
    release(resources, "kube-state-metrics")["dependencies"] = []
    assert problems("ordering", resources) == [
        "kube-state-metrics does not wait for the system node group, CoreDNS, namespace "
        "monitoring: its install can time out or fail before they exist"
    ]


def test_a_release_whose_pods_run_only_on_gpu_nodes_need_not_wait_for_system_nodes(
    rendered_stacks: dict[str, RenderedStack],
) -> None:
    resources = deployment_resources(rendered_stacks["prod"])
    release(resources, "nvidia-device-plugin")["dependencies"] = []
    assert problems("ordering", resources) == []


def test_waiting_through_another_resource_counts(
    rendered_stacks: dict[str, RenderedStack],
) -> None:
    resources = deployment_resources(rendered_stacks["prod"])
    autoscaler = release(resources, "cluster-autoscaler")
    role = next(d for d in autoscaler["dependencies"] if d.endswith("-role-association"))
    waits_for_role_only = [role]
    association = next(r for r in resources if r["urn"] == role)
    association["dependencies"] = [*association["dependencies"], *autoscaler["dependencies"]]
    autoscaler["dependencies"] = waits_for_role_only
    assert problems("ordering", resources) == []


def policy(resources: Resources, namespace: str, name: str) -> dict[str, Any]:
    return next(
        r
        for r in resources
        if r["type"] == behaviour.NETWORK_POLICY
        and r["outputs"]["metadata"]
        == {**r["outputs"]["metadata"], "namespace": namespace, "name": name}
    )


def without_policy(resources: Resources, namespace: str, name: str) -> Resources:
    dropped = policy(resources, namespace, name)
    return [r for r in resources if r is not dropped]


def test_deny_all_but_dns_cuts_pods_off_their_aws_credentials(
    rendered_stacks: dict[str, RenderedStack],
) -> None:
    """The Pod Identity agent answers on 169.254.170.23, TCP 80 (EKS user guide, "Set up the
    Amazon EKS Pod Identity Agent"); STS and the AWS APIs on HTTPS. The VPC CNI's policy agent
    exempts only the node's own address (aws-network-policy-agent fw_rule_processor.go)."""
    resources = without_policy(
        deployment_resources(rendered_stacks["dev"]), "serving", "allow-aws-apis"
    )
    assert problems("reachability", resources) == [
        "pods in serving hold AWS roles (pod-identity) but cannot reach AWS APIs over HTTPS "
        "(0.0.0.0/0 TCP/443)",
        "pods in serving hold AWS roles (pod-identity) but cannot reach the Pod Identity agent "
        "(169.254.170.23/32 TCP/80)",
    ]


def test_irsa_pods_are_found_by_their_roles_trust(
    rendered_stacks: dict[str, RenderedStack],
) -> None:
    """dev's feature-ingestion uses IRSA: its role trusts the OIDC provider for
    system:serviceaccount:research:feature-ingestion, and research needs HTTPS to STS."""
    resources = deployment_resources(rendered_stacks["dev"])
    assert "irsa" in behaviour.role_namespaces(plan(resources))["research"]
    cut = without_policy(resources, "research", "allow-aws-apis")
    assert any(
        "(irsa, pod-identity) but cannot reach AWS APIs" in p for p in problems("reachability", cut)
    )


def test_pods_of_a_team_namespace_must_reach_each_other(
    rendered_stacks: dict[str, RenderedStack],
) -> None:
    resources = without_policy(
        deployment_resources(rendered_stacks["prod"]), "research", "allow-within-namespace"
    )
    [cut] = problems("reachability", resources)
    assert cut.startswith("pods in research cannot reach each other on every port")


def test_declared_callers_are_refused_without_either_ends_policy(
    rendered_stacks: dict[str, RenderedStack],
) -> None:
    resources = deployment_resources(rendered_stacks["prod"])
    callers_cut = problems(
        "reachability", without_policy(resources, "research", "allow-to-serving")
    )
    assert callers_cut == [
        "serving declares callers pods in research on TCP/8080, but the network policies "
        "refuse them"
    ]
    admitted_cut = problems("reachability", without_policy(resources, "serving", "allow-ingress"))
    assert admitted_cut[0] == callers_cut[0]
    # And the load balancers' public subnets, one message each.
    assert len(admitted_cut) == 1 + 3


def test_a_role_bound_into_a_namespace_nobody_makes_is_flagged_unless_external(
    rendered_stacks: dict[str, RenderedStack],
) -> None:
    """dev's model-server was bound in `serving`, which dev did not create."""
    resources = [
        r
        for r in deployment_resources(rendered_stacks["dev"])
        if not (r["type"] == behaviour.NAMESPACE and r["outputs"]["metadata"]["name"] == "serving")
    ]
    [unmade] = problems("namespaces", resources)
    assert unmade.startswith("a role is bound to service accounts in namespace serving")
    assert list(behaviour.namespace_problems(plan(resources), external={"serving"})) == []


@pytest.mark.parametrize(
    ("spec", "port", "allowed"),
    [
        # No policyTypes: Ingress, and Egress only when egress rules are given.
        ({"podSelector": {}, "ingress": []}, 443, True),
        ({"podSelector": {}, "egress": [{"ports": [{"port": 80}]}]}, 443, False),
        ({"podSelector": {}, "egress": [{"ports": [{"port": 400, "endPort": 500}]}]}, 443, True),
        (
            {"podSelector": {}, "egress": [{"ports": [{"port": 443, "protocol": "UDP"}]}]},
            443,
            False,
        ),
        # A policy selecting other pods leaves these pods open.
        (
            {"podSelector": {"matchLabels": {"app": "x"}}, "policyTypes": ["Egress"]},
            443,
            True,
        ),
        (
            {
                "podSelector": {},
                "policyTypes": ["Egress"],
                "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["52.0.0.0/8"]}}]}],
            },
            443,
            False,
        ),
    ],
    ids=["ingress-only", "other-port", "port-range", "other-protocol", "unselected", "excepted"],
)
def test_network_policies_are_read_as_kubernetes_reads_them(
    spec: dict[str, Any], port: int, allowed: bool
) -> None:
    policies = behaviour.Policies({"team": [spec]}, {})
    source = behaviour.Peer("team", {})
    assert policies.allows(source, behaviour.Peer(network="52.94.0.1/32"), "TCP", port) is allowed
