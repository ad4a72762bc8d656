"""A model team's server: on the inference pool, with its own identity reading exactly its model,
safe to drain and to roll out; in each of its modes (a model in S3, a registered MLflow version)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from components.autoscaling import Autoscaling
from components.canary import Canary, LoadBalancer
from components.common import ComponentArgsError
from components.model_service import (
    InferencePool,
    ModelArtifacts,
    ModelService,
    ModelServiceArgs,
    RegisteredModel,
    ServiceIdentity,
)
from components.policy_documents import MLFLOW_READ
from components.service_health import VLLM, ServiceHealth, Thresholds
from mlops_guardrails import charts, crd_schema
from mlops_guardrails.vocabulary import POOL_LABEL, Taint
from mlops_platform.policy_check import PolicyPackServer
from mlops_platform.rendered import RecordedResource, RenderedStack
from tests.components.data_fixtures import (
    BOUNDARY_ARN,
    CLUSTER_ARN,
    CLUSTER_NAME,
    KEY_ARN,
    REGION,
    TAGS,
)
from tests.conftest import run_component
from tests.policies.cases import TAGS as PROD_TAGS
from tests.policies.conftest import check, environment_config

POOL = InferencePool(
    name="inference",
    resource="nvidia.com/gpu",
    taints=(Taint("nvidia.com/gpu", "true", "NoSchedule"),),
)
SERVER_ARN = f"arn:aws:sagemaker:{REGION}:123456789012:mlflow-tracking-server/ml-mlflow"


def model_service(**overrides: Any) -> RenderedStack:
    args: dict[str, Any] = {
        "namespace": "serving",
        "image": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/serving-images:1.4.0",
        "artifacts": ModelArtifacts("ml-models", "arn:aws:s3:::ml-models", KEY_ARN, "ranker/v7/"),
        "pool": POOL,
        "identity": ServiceIdentity(CLUSTER_NAME, CLUSTER_ARN, BOUNDARY_ARN, REGION),
        "tags": TAGS,
        **overrides,
    }
    return run_component(lambda: ModelService("ranker", ModelServiceArgs(**args)))


@pytest.fixture(scope="module")
def from_s3() -> RenderedStack:
    return model_service()


@pytest.fixture(scope="module")
def registered() -> RenderedStack:
    return model_service(
        artifacts=ModelArtifacts(
            "ml-experiments", "arn:aws:s3:::ml-experiments", KEY_ARN, "mlflow/"
        ),
        registered=RegisteredModel("ranker", "7", SERVER_ARN),
        accelerators_per_replica=2,
        replicas=3,
    )


def deployment(rendered: RenderedStack) -> RecordedResource:
    [made] = rendered.of_type("kubernetes:apps/v1:Deployment")
    return made


def pod(rendered: RenderedStack) -> dict[str, Any]:
    spec: dict[str, Any] = deployment(rendered).inputs["spec"]["template"]["spec"]
    return spec


def statements(rendered: RenderedStack) -> dict[str, dict[str, Any]]:
    [policy] = rendered.of_type("aws:iam/rolePolicy:RolePolicy")
    return {s["Sid"]: s for s in json.loads(policy.inputs["policy"])["Statement"]}


def test_it_runs_on_the_inference_pool_tolerating_its_taints_at_inference_priority(
    from_s3: RenderedStack,
) -> None:
    spec = pod(from_s3)
    assert spec["nodeSelector"] == {POOL_LABEL: "inference"}
    assert spec["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"}
    ]
    assert spec["priorityClassName"] == "gpu-inference"


def test_each_replica_takes_whole_accelerators_as_requests_and_limits(
    registered: RenderedStack,
) -> None:
    [container] = pod(registered)["containers"]
    assert container["resources"]["requests"]["nvidia.com/gpu"] == "2"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert deployment(registered).inputs["spec"]["replicas"] == 3


def test_traffic_waits_for_readiness_and_rollouts_keep_every_replica_serving(
    from_s3: RenderedStack,
) -> None:
    [container] = pod(from_s3)["containers"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/ping", "port": 8080}
    # Twenty minutes to load the model before liveness may restart it.
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] == 1200
    # No surge: a replica beyond the team's accelerator quota would never schedule.
    strategy = deployment(from_s3).inputs["spec"]["strategy"]["rollingUpdate"]
    assert (strategy["maxSurge"], strategy["maxUnavailable"]) == (0, 1)
    [budget] = from_s3.of_type("kubernetes:policy/v1:PodDisruptionBudget")
    assert budget.inputs["spec"]["maxUnavailable"] == 1
    assert budget.inputs["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
    [service] = from_s3.of_type("kubernetes:core/v1:Service")
    assert service.inputs["spec"]["ports"] == [{"name": "http", "port": 8080, "targetPort": "http"}]


def test_the_namespace_defaults_cannot_cap_cpu_below_the_request(from_s3: RenderedStack) -> None:
    """Team namespaces default a container's CPU limit to 2; a request above a defaulted limit
    is refused, so the server states its own."""
    [container] = pod(from_s3)["containers"]
    resources = container["resources"]
    assert resources["limits"]["cpu"] == resources["requests"]["cpu"] == "4"


def test_the_server_runs_restricted(from_s3: RenderedStack) -> None:
    spec = pod(from_s3)
    assert spec["securityContext"]["runAsNonRoot"] is True
    # Numeric: Kubernetes cannot verify a named or image-default user is not root.
    assert spec["securityContext"]["runAsUser"] == 1000
    [container] = spec["containers"]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
    }


def test_a_model_in_s3_is_read_from_its_prefix_only(from_s3: RenderedStack) -> None:
    env = {e["name"]: e["value"] for e in pod(from_s3)["containers"][0]["env"]}
    assert env["MODEL_URI"] == "s3://ml-models/ranker/v7/"
    assert "MLFLOW_TRACKING_URI" not in env
    found = statements(from_s3)
    assert found["Objects0"]["Resource"] == "arn:aws:s3:::ml-models/ranker/v7/*"
    assert found["Objects0"]["Action"] == ["s3:GetObject", "s3:GetObjectVersion"]
    assert "Tracking" not in found


def test_a_registered_version_is_read_through_the_tracking_server(
    registered: RenderedStack,
) -> None:
    env = {e["name"]: e["value"] for e in pod(registered)["containers"][0]["env"]}
    assert env["MODEL_URI"] == "models:/ranker/7"
    assert env["MLFLOW_TRACKING_URI"] == SERVER_ARN
    found = statements(registered)
    assert found["Tracking"]["Resource"] == SERVER_ARN
    assert set(found["Tracking"]["Action"]) == set(MLFLOW_READ)
    assert found["Objects0"]["Resource"] == "arn:aws:s3:::ml-experiments/mlflow/*"


def test_its_role_is_bound_to_its_service_account_under_the_boundary_before_pods_start(
    from_s3: RenderedStack,
) -> None:
    [role] = from_s3.of_type("aws:iam/role:Role")
    assert role.inputs["permissionsBoundary"] == BOUNDARY_ARN
    [association] = from_s3.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
    assert (association.inputs["namespace"], association.inputs["serviceAccount"]) == (
        "serving",
        "ranker",
    )
    assert pod(from_s3)["serviceAccountName"] == "ranker"
    assert association.urn in deployment(from_s3).dependencies


@pytest.mark.parametrize(
    ("overrides", "refusal"),
    [
        ({"replicas": 1}, "at least 2 replicas"),
        ({"accelerators_per_replica": 0}, "at least one whole accelerator"),
        (
            {"artifacts": ModelArtifacts("b", "arn:aws:s3:::b", KEY_ARN, "ranker/v7")},
            "key segments ending in /",
        ),
        (
            {"registered": RegisteredModel("ranker", "latest", SERVER_ARN)},
            "a name and a number",
        ),
    ],
)
def test_what_cannot_serve_safely_is_refused_before_anything_is_made(
    overrides: dict[str, Any], refusal: str
) -> None:
    with pytest.raises(ComponentArgsError, match=refusal):
        model_service(**overrides)


@pytest.mark.parametrize("rolled_out", ["in-place", "canary"])
def test_a_model_service_passes_the_prod_pack(pack: PolicyPackServer, rolled_out: str) -> None:
    """Tagged as the platform tags, none of its resources breaks a rule at prod's levels: pod
    security, IAM (its role's boundary and scoped grants), tags, its load balancer and its
    canary. (The stack-wide rules judge the project it is in.)"""
    modes: dict[str, Any] = {"load_balancer": BALANCER, "health": HEALTH, "canary": canary()}
    rendered = model_service(
        tags={**PROD_TAGS, "mlops:stack": "test"}, **(modes if rolled_out == "canary" else {})
    )
    findings = check(pack, rendered.states(), environment_config("prod"))
    ours = {r.urn for r in rendered.resources if r.custom}
    assert [(f.rule, f.urn, f.message) for f in findings if f.urn in ours] == []


ROLLOUT = "kubernetes:argoproj.io/v1alpha1:Rollout"
ANALYSIS = "kubernetes:argoproj.io/v1alpha1:AnalysisTemplate"
ROLLOUT_FACTS = charts.ARGO_ROLLOUTS.crd_schemas


WORKSPACE_URL = f"https://aps-workspaces.{REGION}.amazonaws.com/workspaces/ws-0123"
HEALTH = ServiceHealth(
    workspace_id="ws-0123",
    workspace_url=WORKSPACE_URL,
    region=REGION,
    metrics=VLLM,
    thresholds=Thresholds(error_rate_percent=1.0, p95_latency_seconds=2.5),
)


def canary(steps: tuple[int, ...] = (10, 25, 50)) -> Canary:
    return Canary(steps=steps, step_minutes=10)


BALANCER = LoadBalancer(subnet_ids=["subnet-0aaa", "subnet-0bbb"])


@pytest.fixture(scope="module")
def canaried() -> RenderedStack:
    return model_service(load_balancer=BALANCER, health=HEALTH, canary=canary())


def rollout(rendered: RenderedStack) -> RecordedResource:
    [made] = rendered.of_type(ROLLOUT)
    return made


def test_a_canary_takes_its_share_of_traffic_by_alb_weights_in_steps(
    canaried: RenderedStack,
) -> None:
    assert canaried.of_type("kubernetes:apps/v1:Deployment") == []
    strategy = rollout(canaried).inputs["spec"]["strategy"]["canary"]
    assert strategy["trafficRouting"] == {"alb": {"ingress": "ranker", "servicePort": 8080}}
    assert strategy["steps"] == [
        step
        for weight in (10, 25, 50)
        for step in ({"setWeight": weight}, {"pause": {"duration": "10m"}})
    ]
    # The stable version gives up replicas as it gives up traffic: one replica of headroom in
    # the team's GPU quota, not a second copy of the service.
    assert strategy["dynamicStableScale"] is True
    assert (strategy["stableService"], strategy["canaryService"]) == ("ranker", "ranker-canary")
    services = {
        s.inputs["metadata"]["name"] for s in canaried.of_type("kubernetes:core/v1:Service")
    }
    assert services == {"ranker", "ranker-canary"}


def test_the_canary_is_judged_on_its_own_error_rate_and_latency_from_its_first_step(
    canaried: RenderedStack,
) -> None:
    analysis = rollout(canaried).inputs["spec"]["strategy"]["canary"]["analysis"]
    assert analysis["startingStep"] == 1
    assert analysis["args"] == [
        {"name": "canary-hash", "valueFrom": {"podTemplateHashValue": "Latest"}}
    ]
    [template] = canaried.of_type(ANALYSIS)
    metrics = {m["name"]: m for m in template.inputs["spec"]["metrics"]}
    assert metrics["error-rate"]["successCondition"] == "len(result) > 0 && result[0] <= 0.01"
    assert metrics["p95-latency"]["successCondition"] == "len(result) > 0 && result[0] <= 2.5"
    # Judged at all: no canary traffic, or no series, is no pass.
    assert metrics["canary-traffic"]["successCondition"] == "len(result) > 0 && result[0] > 0"
    for metric in metrics.values():
        prometheus = metric["provider"]["prometheus"]
        assert prometheus["address"] == WORKSPACE_URL
        assert prometheus["authentication"] == {"sigv4": {"region": REGION}}
        # Only the canary's series: its namespace, service and pod template hash.
        assert (
            'namespace="serving", model_service="ranker", '
            'rollouts_pod_template_hash="{{args.canary-hash}}"'
        ) in prometheus["query"]
        # A second failed measurement fails the run, and the rollout aborts; no answer (empty
        # or NaN) is neither success nor failure, and three of them pause it for a person.
        assert metric["failureLimit"] == 1
        assert metric["inconclusiveLimit"] == 2
        if metric["name"] != "canary-traffic":
            assert metric["failureCondition"].startswith(
                "len(result) > 0 && !isNaN(result[0]) && !("
            )
    # A canary nobody called (0 requests) is held for a person, never rolled back.
    assert metrics["canary-traffic"]["failureCondition"] == "false"
    error_query = metrics["error-rate"]["provider"]["prometheus"]["query"]
    # A server with no error series yet has failed nothing; a canary with no requests has no
    # error rate at all (0/0), rather than a perfect one.
    assert error_query.startswith('(sum(rate(http_requests_total{status="5xx", namespace="serving"')
    assert ") or vector(0)) / sum(rate(http_requests_total{" in error_query
    assert "vector(0)" not in metrics["p95-latency"]["provider"]["prometheus"]["query"]


def test_the_rollout_and_its_analysis_are_what_the_argo_rollouts_crds_accept(
    canaried: RenderedStack,
) -> None:
    assert ROLLOUT_FACTS is not None
    for made in (rollout(canaried), *canaried.of_type(ANALYSIS)):
        assert crd_schema.problems(ROLLOUT_FACTS, made.type, made.inputs) == []
    broken = json.loads(json.dumps(rollout(canaried).inputs))
    broken["spec"]["strategy"]["canary"]["trafficRouting"]["alb"].pop("servicePort")
    assert crd_schema.problems(ROLLOUT_FACTS, ROLLOUT, broken)


def test_the_alb_reaches_pods_by_ip_from_the_given_subnets_and_forwards_by_argos_weights(
    canaried: RenderedStack,
) -> None:
    [ingress] = canaried.of_type("kubernetes:networking.k8s.io/v1:Ingress")
    annotations = ingress.inputs["metadata"]["annotations"]
    assert annotations["alb.ingress.kubernetes.io/scheme"] == "internal"
    assert annotations["alb.ingress.kubernetes.io/target-type"] == "ip"
    assert annotations["alb.ingress.kubernetes.io/subnets"] == "subnet-0aaa,subnet-0bbb"
    assert annotations["alb.ingress.kubernetes.io/healthcheck-path"] == "/ping"
    assert (
        "drop_invalid_header_fields.enabled=true"
        in (annotations["alb.ingress.kubernetes.io/load-balancer-attributes"])
    )
    spec = ingress.inputs["spec"]
    assert spec["ingressClassName"] == "alb"
    [path] = spec["rules"][0]["http"]["paths"]
    assert path["backend"]["service"] == {"name": "ranker", "port": {"name": "use-annotation"}}


def test_an_https_balancer_uses_a_tls_1_3_policy() -> None:
    certificate = f"arn:aws:acm:{REGION}:123456789012:certificate/abc"
    balancer = LoadBalancer(BALANCER.subnet_ids, "internet-facing", certificate)
    rendered = model_service(load_balancer=balancer, health=HEALTH, canary=canary())
    [ingress] = rendered.of_type("kubernetes:networking.k8s.io/v1:Ingress")
    annotations = ingress.inputs["metadata"]["annotations"]
    assert annotations["alb.ingress.kubernetes.io/listen-ports"] == '[{"HTTPS": 443}]'
    assert annotations["alb.ingress.kubernetes.io/certificate-arn"] == certificate
    assert annotations["alb.ingress.kubernetes.io/ssl-policy"] == (
        "ELBSecurityPolicy-TLS13-1-2-Res-2021-06"
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"canary": canary(), "health": HEALTH}, "a canary needs a load balancer"),
        ({"canary": canary(), "load_balancer": BALANCER}, "a canary needs the service's health"),
        (
            {"canary": canary((25, 10)), "load_balancer": BALANCER, "health": HEALTH},
            "increasing shares",
        ),
        (
            {"canary": canary((50, 100)), "load_balancer": BALANCER, "health": HEALTH},
            "each from 1 to 99",
        ),
        (
            {"load_balancer": LoadBalancer(BALANCER.subnet_ids, "internet-facing")},
            "an internet-facing load balancer needs a certificate",
        ),
    ],
    ids=["no-balancer", "no-health", "decreasing", "whole-traffic-step", "public-http"],
)
def test_a_canary_that_could_not_run_safely_is_refused_before_anything_is_made(
    overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(ComponentArgsError, match=message):
        model_service(**overrides)


def test_its_alerts_page_on_errors_latency_and_a_rolled_back_canary(
    canaried: RenderedStack,
) -> None:
    [group] = canaried.of_type("aws:amp/ruleGroupNamespace:RuleGroupNamespace")
    # Under the team's prefix: the only rule groups its deployer may write.
    assert (group.inputs["name"], group.inputs["workspaceId"]) == ("serving_ranker", "ws-0123")
    [rules] = yaml.safe_load(group.inputs["data"])["groups"]
    alerts = {rule["alert"]: rule for rule in rules["rules"]}
    assert set(alerts) == {
        "ModelServiceErrorRate",
        "ModelServiceLatency",
        "ModelServiceCanaryRolledBack",
        "ModelServiceRolloutStalled",
    }
    # Held (an analysis without data) or stuck for longer than its three ten-minute steps take.
    stalled = alerts["ModelServiceRolloutStalled"]
    assert 'phase=~"Paused|Timeout"' in stalled["expr"]
    assert stalled["for"] == "40m"
    # Each threshold compares the whole query: `>` binds tighter than `or`.
    errors = alerts["ModelServiceErrorRate"]["expr"]
    assert errors.startswith("((sum(rate(") and errors.endswith(")) > 0.01")
    assert 'namespace="serving", model_service="ranker"' in errors
    latency = alerts["ModelServiceLatency"]["expr"]
    assert latency.startswith("(histogram_quantile(0.95,") and latency.endswith(")) > 2.5")
    # While the last rollout stands aborted (Argo Rollouts' phase for it).
    assert alerts["ModelServiceCanaryRolledBack"]["expr"] == (
        'max(rollout_info{namespace="serving", name="ranker", phase="Abort"}) == 1'
    )
    # The platform's alert manager groups by these labels and sends every alert to its topic.
    for alert in alerts.values():
        assert (alert["labels"]["namespace"], alert["labels"]["model_service"]) == (
            "serving",
            "ranker",
        )


def test_without_health_there_are_no_alerts(from_s3: RenderedStack) -> None:
    assert from_s3.of_type("aws:amp/ruleGroupNamespace:RuleGroupNamespace") == []


SCALED_OBJECT = "kubernetes:keda.sh/v1alpha1:ScaledObject"
SCALING = Autoscaling(min_replicas=2, max_replicas=4, in_flight_per_replica=8)


@pytest.fixture(scope="module")
def scaled() -> RenderedStack:
    return model_service(
        load_balancer=BALANCER, health=HEALTH, canary=canary(), autoscaling=SCALING
    )


def test_it_scales_its_rollout_on_requests_in_flight_per_replica_within_bounds(
    scaled: RenderedStack,
) -> None:
    [scaler] = scaled.of_type(SCALED_OBJECT)
    spec = scaler.inputs["spec"]
    assert spec["scaleTargetRef"] == {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "name": "ranker",
    }
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (2, 4)
    [trigger] = spec["triggers"]
    assert trigger["type"] == "prometheus"
    metadata = trigger["metadata"]
    assert (metadata["serverAddress"], metadata["awsRegion"]) == (WORKSPACE_URL, REGION)
    assert metadata["threshold"] == "8"
    assert metadata["query"] == (
        '(sum(vllm:num_requests_running{namespace="serving", model_service="ranker"}) + '
        'sum(vllm:num_requests_waiting{namespace="serving", model_service="ranker"})) '
        "or vector(0)"
    )
    # Signed with the KEDA operator's Pod Identity role.
    [auth] = scaled.of_type("kubernetes:keda.sh/v1alpha1:TriggerAuthentication")
    assert trigger["authenticationRef"] == {"name": auth.inputs["metadata"]["name"]}
    assert auth.inputs["spec"] == {"podIdentity": {"provider": "aws"}}
    # Unreadable metrics hold the replicas it has; scale-in is slow, one at a time.
    assert spec["fallback"]["behavior"] == "currentReplicasIfHigher"
    scale_down = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]
    assert scale_down["policies"] == [{"type": "Pods", "value": 1, "periodSeconds": 300}]


def test_pulumi_leaves_the_replica_count_to_the_autoscaler(scaled: RenderedStack) -> None:
    made = rollout(scaled)
    assert made.inputs["spec"]["replicas"] == 2
    assert made.ignore_changes == ["spec.replicas"]
    assert (
        rollout(
            model_service(load_balancer=BALANCER, health=HEALTH, canary=canary())
        ).ignore_changes
        == []
    )


def test_without_a_canary_it_scales_the_deployment() -> None:
    rendered = model_service(health=HEALTH, autoscaling=SCALING)
    [scaler] = rendered.of_type(SCALED_OBJECT)
    assert scaler.inputs["spec"]["scaleTargetRef"]["kind"] == "Deployment"


def test_the_autoscaler_is_what_kedas_crds_accept(scaled: RenderedStack) -> None:
    facts = charts.KEDA.crd_schemas
    assert facts is not None
    for made in (
        *scaled.of_type(SCALED_OBJECT),
        *scaled.of_type("kubernetes:keda.sh/v1alpha1:TriggerAuthentication"),
    ):
        assert crd_schema.problems(facts, made.type, made.inputs) == []
    broken = json.loads(json.dumps(scaled.of_type(SCALED_OBJECT)[0].inputs))
    broken["spec"]["triggers"][0]["metadata"]["threshold"] = 8
    assert crd_schema.problems(facts, SCALED_OBJECT, broken)


@pytest.mark.parametrize(
    ("autoscaling", "health", "message"),
    [
        (SCALING, None, "autoscaling needs the service's health"),
        (Autoscaling(3, 2, 8), HEALTH, "autoscaling max 2 is below min 3"),
    ],
    ids=["no-health", "max-below-min"],
)
def test_autoscaling_that_could_not_work_is_refused(
    autoscaling: Autoscaling, health: ServiceHealth | None, message: str
) -> None:
    with pytest.raises(ComponentArgsError, match=message):
        model_service(autoscaling=autoscaling, health=health)


def test_pulumi_leaves_argos_selector_on_the_canarys_services(canaried: RenderedStack) -> None:
    """Argo Rollouts adds each version's hash to both Services' selectors (an atomic map): a
    later apply of Pulumi's own would conflict, or, forced, send traffic to both versions."""
    services = canaried.of_type("kubernetes:core/v1:Service")
    assert [s.ignore_changes for s in services] == [["spec.selector"]] * 2


def test_a_replica_has_time_to_get_a_node_and_load_its_model_before_the_rollout_fails(
    canaried: RenderedStack, from_s3: RenderedStack
) -> None:
    # Twenty minutes to load (startup_seconds), ten to get a GPU node.
    assert rollout(canaried).inputs["spec"]["progressDeadlineSeconds"] == 1800
    assert deployment(from_s3).inputs["spec"]["progressDeadlineSeconds"] == 1800
    assert [s.ignore_changes for s in from_s3.of_type("kubernetes:core/v1:Service")] == [[]]


def test_a_stopping_replica_leaves_the_load_balancer_before_it_stops_serving(
    canaried: RenderedStack,
) -> None:
    spec = rollout(canaried).inputs["spec"]["template"]["spec"]
    [container] = spec["containers"]
    drain = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    [ingress] = canaried.of_type("kubernetes:networking.k8s.io/v1:Ingress")
    attributes = ingress.inputs["metadata"]["annotations"][
        "alb.ingress.kubernetes.io/target-group-attributes"
    ]
    deregistration = int(attributes.removeprefix("deregistration_delay.timeout_seconds="))
    # Drained before the ALB lets go of it, and let go of before Kubernetes kills it.
    assert drain < deregistration < spec["terminationGracePeriodSeconds"]
