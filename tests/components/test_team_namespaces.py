"""Team isolation: namespaces with accelerator quotas, default limits and default-deny
networking with the exceptions each team needs, priority classes; and every rendered Kubernetes
manifest against the cluster version's schema."""

from __future__ import annotations

import json
from typing import Any

import kubernetes_validate
import pytest
from cel_expr_python import cel
from cel_expr_python.ext import ext_strings

from components.team_namespaces import (
    ADMISSION_RULES,
    IngressRule,
    Team,
    TeamNamespaces,
    TeamNamespacesArgs,
    TeamQuota,
)
from mlops_platform.rendered import RecordedResource, RenderedStack
from tests.components.gpu_fixtures import PLATFORM_GPU, gpu_platform
from tests.conftest import STACKS, run_component

SCHEMA_VERSION = "1.35.0"  # the clusters' Kubernetes version
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
# One team in each mode: roles through both bindings; Pod Identity and callers from a team and
# from outside; IRSA only; no roles and no callers.
TEAMS = {
    "research": Team(TeamQuota(gpus=24), aws_bindings=frozenset({"pod-identity", "irsa"})),
    "serving": Team(
        TeamQuota(gpus=8, neuron_devices=4),
        aws_bindings=frozenset({"pod-identity"}),
        ingress=(
            IngressRule(ports=(8080,), namespaces=("research",), cidrs=("10.40.192.0/22",)),
            IngressRule(ports=(8081, 8082), namespaces=("ingress",)),
        ),
        scraped_ports=(8080,),
    ),
    "spark": Team(TeamQuota(gpus=0), aws_bindings=frozenset({"irsa"})),
    "sandbox": Team(TeamQuota(gpus=1)),
}
QUOTAS = {name: team.quota for name, team in TEAMS.items()}


@pytest.fixture(scope="module")
def teams() -> RenderedStack:
    return run_component(
        lambda: TeamNamespaces(
            "teams",
            TeamNamespacesArgs(
                teams=TEAMS, metrics_namespace="monitoring", labels={"mlops.platform/stack": "test"}
            ),
        )
    )


def policies_of(rendered: RenderedStack, team: str) -> dict[str, dict[str, Any]]:
    return {
        p.inputs["metadata"]["name"]: p.inputs["spec"]
        for p in in_namespace(rendered, NETWORK_POLICY, team)
    }


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
def test_team_namespaces_deny_traffic_by_default_but_allow_dns_and_each_other(
    teams: RenderedStack, team: str
) -> None:
    policies = policies_of(teams, team)
    assert policies["default-deny"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    [rule] = policies["allow-dns"]["egress"]
    assert {p["port"] for p in rule["ports"]} == {53}
    [peer] = rule["to"]
    assert peer["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}
    within = policies["allow-within-namespace"]
    assert within["ingress"] == [{"from": [{"podSelector": {}}]}]
    assert within["egress"] == [{"to": [{"podSelector": {}}]}]


@pytest.mark.parametrize(
    ("team", "egress"),
    [
        (
            "research",
            [("169.254.170.23/32", 80), ("0.0.0.0/0", 443)],
        ),
        ("serving", [("169.254.170.23/32", 80), ("0.0.0.0/0", 443)]),
        # IRSA exchanges the service account token with STS over HTTPS: no agent.
        ("spark", [("0.0.0.0/0", 443)]),
        ("sandbox", None),
    ],
)
def test_pods_holding_aws_roles_reach_their_credentials_and_https(
    teams: RenderedStack, team: str, egress: list[tuple[str, int]] | None
) -> None:
    policy = policies_of(teams, team).get("allow-aws-apis")
    if egress is None:
        assert policy is None
        return
    assert policy is not None
    assert [
        (rule["to"][0]["ipBlock"]["cidr"], rule["ports"][0]["port"]) for rule in policy["egress"]
    ] == egress
    assert all(rule["ports"][0]["protocol"] == "TCP" for rule in policy["egress"])


def test_a_namespace_admits_exactly_its_declared_callers(teams: RenderedStack) -> None:
    ingress = policies_of(teams, "serving")["allow-ingress"]["ingress"]
    assert ingress == [
        {
            "from": [
                {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "research"}}},
                {"ipBlock": {"cidr": "10.40.192.0/22"}},
            ],
            "ports": [{"protocol": "TCP", "port": 8080}],
        },
        {
            "from": [
                {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress"}}}
            ],
            "ports": [{"protocol": "TCP", "port": 8081}, {"protocol": "TCP", "port": 8082}],
        },
    ]
    assert all("allow-ingress" not in policies_of(teams, t) for t in ("research", "spark"))


def test_the_metrics_agent_reaches_model_servers_on_their_serving_ports_only(
    teams: RenderedStack,
) -> None:
    scrape = policies_of(teams, "serving")["allow-metrics-agent"]
    assert scrape["podSelector"] == {"matchLabels": {"app.kubernetes.io/component": "model-server"}}
    assert scrape["ingress"] == [
        {
            "from": [
                {
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": "monitoring"}
                    }
                }
            ],
            "ports": [{"protocol": "TCP", "port": 8080}],
        }
    ]
    assert all("allow-metrics-agent" not in policies_of(teams, t) for t in ("research", "spark"))


def test_model_servers_are_ready_only_once_their_load_balancer_target_is_healthy(
    teams: RenderedStack,
) -> None:
    labels = {
        n.inputs["metadata"]["name"]: n.inputs["metadata"]["labels"]
        for n in teams.of_type("kubernetes:core/v1:Namespace")
    }
    assert labels["serving"]["elbv2.k8s.aws/pod-readiness-gate-inject"] == "enabled"
    assert "elbv2.k8s.aws/pod-readiness-gate-inject" not in labels["research"]


def test_a_calling_team_may_send_to_exactly_the_ports_it_is_admitted_on(
    teams: RenderedStack,
) -> None:
    research = policies_of(teams, "research")
    assert research["allow-to-serving"]["egress"] == [
        {
            "to": [
                {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "serving"}}}
            ],
            "ports": [{"protocol": "TCP", "port": 8080}],
        }
    ]
    assert not [
        p
        for t in ("serving", "spark", "sandbox")
        for p in policies_of(teams, t)
        if p.startswith("allow-to-")
    ]


def test_each_namespace_records_its_declared_callers_for_the_pack(teams: RenderedStack) -> None:
    annotations = {
        n.inputs["metadata"]["name"]: json.loads(
            n.inputs["metadata"]["annotations"]["mlops.platform/ingress"]
        )
        for n in teams.of_type("kubernetes:core/v1:Namespace")
    }
    assert annotations["sandbox"] == []
    assert annotations["serving"] == [
        {"ports": [8080], "fromNamespaces": ["research"], "fromCidrs": ["10.40.192.0/22"]},
        {"ports": [8081, 8082], "fromNamespaces": ["ingress"], "fromCidrs": []},
    ]


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
    # A quota, a LimitRange and the NetworkPolicies of each team's mode.
    assert len(namespaced) == 2 * len(TEAMS) + sum(len(policies_of(teams, t)) for t in TEAMS)
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
    # Every object the component makes is of a built-in kind, so each is checked.
    assert len(manifests) == len([r for r in teams.resources if r.type.startswith("kubernetes:")])
    assert_valid_for_the_cluster_version(manifests)


@pytest.mark.parametrize("stack", STACKS)
def test_every_builtin_manifest_is_valid_for_the_cluster_version(
    rendered_stacks: dict[str, RenderedStack], stack: str
) -> None:
    """A stack-wide invariant: whatever the stack configures, the API server accepts it."""
    manifests = builtin_manifests(rendered_stacks[stack])
    assert len(manifests) >= 8
    assert_valid_for_the_cluster_version(manifests)


def test_callers_from_the_public_subnets_are_the_subnets_the_network_makes(
    rendered_stacks: dict[str, RenderedStack],
) -> None:
    """prod's serving team admits `fromPublicSubnets`: the program resolves it to the public
    subnets' CIDRs, where internet-facing load balancers get their addresses."""
    prod = rendered_stacks["prod"]
    public = sorted(
        s.outputs["cidrBlock"]
        for s in prod.of_type("aws:ec2/subnet:Subnet")
        if s.inputs.get("mapPublicIpOnLaunch") is False and "public" in s.name
    )
    [rule] = policies_of(prod, "serving")["allow-ingress"]["ingress"]
    blocks = sorted(peer["ipBlock"]["cidr"] for peer in rule["from"] if "ipBlock" in peer)
    assert len(public) == 3
    assert blocks == public


def test_a_team_that_serves_models_from_its_own_project_may_reach_aws() -> None:
    """No workload of the platform's config runs there, but the team's model services hold
    roles: without the opening, default-deny would cut them off from their credentials."""
    platform = gpu_platform("managed-node-groups")
    assert policies_of(platform, "serving").get("allow-aws-apis") is not None
    assert policies_of(platform, "research").get("allow-aws-apis") is None


def _admits(kind: str, obj: dict[str, Any]) -> list[str]:
    """The messages of the team-namespace admission rules the object fails, evaluated as the
    API server evaluates a ValidatingAdmissionPolicy's CEL (an error counts as a failure)."""
    environment = cel.NewEnv(
        variables={"object": cel.Type.DYN}, extensions=[ext_strings.ExtStrings()]
    )
    _, rules = ADMISSION_RULES[kind]
    failed = []
    for expression, message in rules:
        result = environment.compile(expression).eval(data={"object": obj})
        if result.type() == cel.Type.ERROR or result.value() is not True:
            failed.append(message)
    return failed


GOOD_INGRESS = {
    "metadata": {
        "name": "ranker",
        "annotations": {
            "alb.ingress.kubernetes.io/scheme": "internal",
            "alb.ingress.kubernetes.io/load-balancer-attributes": (
                "routing.http.drop_invalid_header_fields.enabled=true"
            ),
        },
    },
    "spec": {"ingressClassName": "alb"},
}


def with_annotations(**changes: str) -> dict[str, Any]:
    """GOOD_INGRESS with ALB annotations set, by their names with `_` for `-` and `__` for `.`."""
    changed = json.loads(json.dumps(GOOD_INGRESS))
    changed["metadata"]["annotations"].update(
        {
            f"alb.ingress.kubernetes.io/{k.replace('__', '.').replace('_', '-')}": v
            for k, v in changes.items()
        }
    )
    return changed


def test_the_api_server_refuses_services_and_ingresses_that_would_open_a_team_namespace(
    teams: RenderedStack,
) -> None:
    """Whoever creates them, the team's deployer included: the pack judges a team's project only
    where its CI runs it."""
    assert _admits("services", {"metadata": {"name": "ranker"}, "spec": {}}) == []
    assert _admits("services", {"spec": {"type": "ClusterIP"}}) == []
    assert _admits("services", {"spec": {"type": "LoadBalancer"}})
    assert _admits("services", {"spec": {"type": "NodePort"}})
    assert _admits("services", {"spec": {"type": "ClusterIP", "externalIPs": ["10.0.0.5"]}})
    assert _admits("ingresses", GOOD_INGRESS) == []
    assert _admits("ingresses", {**GOOD_INGRESS, "spec": {"ingressClassName": "nginx"}})
    assert _admits("ingresses", with_annotations(group__name="shared")) == [
        "an ALB is not shared with other Ingresses (group.name)"
    ]
    public = {"scheme": "internet-facing", "listen_ports": '[{"HTTPS": 443}]'}
    assert (
        _admits(
            "ingresses",
            with_annotations(**public, ssl_policy="ELBSecurityPolicy-TLS13-1-2-Res-2021-06"),
        )
        == []
    )
    assert _admits("ingresses", with_annotations(**public, ssl_policy="ELBSecurityPolicy-2016-08"))
    assert _admits(
        "ingresses",
        with_annotations(scheme="internet-facing", listen_ports='[{"HTTP": 80}]'),
    )
    routed = {"trafficRouting": {"alb": {"servicePort": 8080}}}
    judged = {"templates": [{"templateName": "ranker"}]}
    canary = {"canary": {**routed, "analysis": judged}}
    assert _admits("rollouts", {"spec": {"strategy": canary}}) == []
    dry = {"canary": {**routed, "analysis": {**judged, "dryRun": [{"metricName": ".*"}]}}}
    assert _admits("rollouts", {"spec": {"strategy": dry}}) == [
        "a Rollout's analysis names its templates and is not a dry run"
    ]
    assert _admits("rollouts", {"spec": {"strategy": {"canary": {**routed, "analysis": {}}}}})
    assert _admits("rollouts", {"spec": {"strategy": {"canary": {"steps": []}}}})
    assert _admits("rollouts", {"spec": {"strategy": {"blueGreen": {}}}})
    no_annotations = {"metadata": {"name": "x"}, "spec": {"ingressClassName": "alb"}}
    assert _admits("ingresses", no_annotations) == [
        "the ALB drops invalid header fields (load-balancer-attributes)"
    ]
    # Bound to every team namespace, refusing (not warning).
    bindings = teams.of_type(
        "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicyBinding"
    )
    assert {b.inputs["spec"]["validationActions"][0] for b in bindings} == {"Deny"}
    for policy in teams.of_type(
        "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicy"
    ):
        selector = policy.inputs["spec"]["matchConstraints"]["namespaceSelector"]
        assert selector == {
            "matchExpressions": [{"key": "mlops.platform/team", "operator": "Exists"}]
        }
        assert policy.inputs["spec"]["failurePolicy"] == "Fail"
