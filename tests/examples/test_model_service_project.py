"""examples/model-service: a model team's own project, rendered offline against the platform's
dev stack through its StackReference, judged by the platform's pack, and checked across both
stacks: it schedules onto the inference pool, its namespace admits it, it reaches what it needs
and its clients reach it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from mlops_guardrails import crd_schema
from mlops_guardrails.behaviour import (
    Peer,
    Placement,
    Policies,
    from_export,
    lands_on,
    namespace_levels,
    node_kinds,
)
from mlops_guardrails.charts import Toleration, contract
from mlops_guardrails.vocabulary import POOL_LABEL
from mlops_platform.cli import main
from mlops_platform.engine import StackReferenceError, render_stack
from mlops_platform.project import PulumiProject
from mlops_platform.render_cache import (
    CACHE_ENV,
    RenderCache,
    render_key,
    render_stacks,
    working_tree_sources,
)
from mlops_platform.rendered import RecordedResource, RenderedStack
from tests.conftest import REPO_ROOT
from tests.iam_evaluation import decide

EXAMPLE = REPO_ROOT / "examples" / "model-service"


@pytest.fixture(scope="module")
def team() -> RenderedStack:
    project = PulumiProject.load(EXAMPLE)
    return render_stacks(project, ["dev"], RenderCache.for_project(project))["dev"]


@pytest.fixture(scope="module")
def platform(rendered_stacks: dict[str, RenderedStack]) -> RenderedStack:
    return rendered_stacks["dev"]


ROLLOUT = "kubernetes:argoproj.io/v1alpha1:Rollout"


def rollout(team: RenderedStack) -> RecordedResource:
    """The example rolls versions out as canaries: its pods are a Rollout's."""
    [made] = team.of_type(ROLLOUT)
    return made


def pod_spec(team: RenderedStack) -> dict[str, Any]:
    spec: dict[str, Any] = rollout(team).inputs["spec"]["template"]["spec"]
    return spec


def test_the_service_is_built_from_the_platform_stacks_outputs(
    team: RenderedStack, platform: RenderedStack
) -> None:
    exports = platform.outputs
    [container] = pod_spec(team)["containers"]
    assert container["image"] == f"{exports['repositoryUrls']['serving-images']}:1.4.0"
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["MLFLOW_TRACKING_URI"] == exports["mlflowTrackingServerArn"]
    assert env["MODEL_URI"] == "models:/ranker/7"
    [role] = team.of_type("aws:iam/role:Role")
    assert role.inputs["permissionsBoundary"] == exports["teamBoundaryArns"]["serving"]
    [trust] = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert trust["Condition"]["ArnEquals"]["aws:SourceArn"] == exports["clusterArn"]
    assert team.references["organization/mlops-platform/dev"]["stack"] == "dev"


def test_it_schedules_onto_the_platforms_inference_pool_and_only_there(
    team: RenderedStack, platform: RenderedStack
) -> None:
    spec = pod_spec(team)
    placement = Placement(
        node_selector=spec["nodeSelector"],
        node_affinity=(),
        tolerations=tuple(
            Toleration(t["key"], t["operator"], t["value"], t["effect"])
            for t in spec["tolerations"]
        ),
    )
    kinds = node_kinds(from_export(platform.states()))
    landing = [kind for kind in kinds if lands_on(placement, kind)]
    assert landing and {kind.pool for kind in landing} == {"inference"}
    [container] = spec["containers"]
    # Its extended resources (domain-prefixed names): what only the pool's nodes have.
    wanted = {name for name in container["resources"]["limits"] if "/" in name}
    assert wanted == {"nvidia.com/gpu"}
    assert all(wanted <= kind.resources for kind in landing)
    assert spec["nodeSelector"] == {POOL_LABEL: "inference"}


def test_its_namespace_admits_it_and_it_reaches_what_it_needs_and_its_callers_reach_it(
    team: RenderedStack, platform: RenderedStack
) -> None:
    resources = from_export(platform.states())
    namespace = rollout(team).inputs["metadata"]["namespace"]
    # The team namespace enforces baseline, which the server's restricted pod meets.
    assert namespace_levels(resources)[namespace] == "baseline"
    policies = Policies.of(resources)
    labels = rollout(team).inputs["spec"]["template"]["metadata"]["labels"]
    server = Peer(namespace, labels)
    assert policies.allows(server, Peer(network="169.254.170.23/32"), "TCP", 80)
    assert policies.allows(server, Peer(network="0.0.0.0/0"), "TCP", 443)
    port = rollout(team).inputs["spec"]["strategy"]["canary"]["trafficRouting"]["alb"][
        "servicePort"
    ]
    assert policies.allows(Peer("research", {}), server, "TCP", port)
    # Its ALB, from the subnets the platform gives it; and the agent that scrapes it.
    [ingress] = team.of_type("kubernetes:networking.k8s.io/v1:Ingress")
    subnets = ingress.inputs["metadata"]["annotations"]["alb.ingress.kubernetes.io/subnets"]
    assert subnets.split(",") == platform.outputs["publicSubnetIds"]
    for cidr in public_subnet_cidrs(platform):
        assert policies.allows(Peer(network=cidr), server, "TCP", port)
    assert policies.allows(
        Peer("monitoring", {"app.kubernetes.io/name": "prometheus"}), server, "TCP", port
    )
    # Nothing else in the VPC: not a pod of another namespace.
    assert not policies.allows(Peer("feast", {}), server, "TCP", port)


def public_subnet_cidrs(platform: RenderedStack) -> list[str]:
    ids = set(platform.outputs["publicSubnetIds"])
    return [
        subnet.outputs["cidrBlock"]
        for subnet in platform.of_type("aws:ec2/subnet:Subnet")
        if subnet.id in ids
    ]


def test_a_canary_at_full_scale_fits_the_teams_gpu_quota_and_passes_the_crds(
    team: RenderedStack, platform: RenderedStack
) -> None:
    """The stable version scales down as the canary takes traffic: the rollout needs one
    replica's accelerators beyond the service's, which the team's quota must hold."""
    [quota] = [
        q
        for q in platform.of_type("kubernetes:core/v1:ResourceQuota")
        if q.inputs["metadata"]["namespace"] == "serving"
    ]
    held = int(quota.inputs["spec"]["hard"]["requests.nvidia.com/gpu"])
    spec = rollout(team).inputs["spec"]
    [container] = spec["template"]["spec"]["containers"]
    per_replica = int(container["resources"]["requests"]["nvidia.com/gpu"])
    assert spec["strategy"]["canary"]["dynamicStableScale"] is True
    # At its most: every replica the autoscaler may add, and the canary's one.
    [scaler] = team.of_type("kubernetes:keda.sh/v1alpha1:ScaledObject")
    assert (scaler.inputs["spec"]["maxReplicaCount"] + 1) * per_replica <= held
    [release] = [
        r
        for r in platform.of_type("kubernetes:helm.sh/v3:Release")
        if r.inputs["chart"] == "argo-rollouts"
    ]
    installed = contract("argo-rollouts", release.inputs["version"])
    assert installed is not None and installed.crd_schemas is not None
    for made in (rollout(team), *team.of_type("kubernetes:argoproj.io/v1alpha1:AnalysisTemplate")):
        assert crd_schema.problems(installed.crd_schemas, made.type, made.inputs) == []
    [keda] = [
        r for r in platform.of_type("kubernetes:helm.sh/v3:Release") if r.inputs["chart"] == "keda"
    ]
    scaling = contract("keda", keda.inputs["version"])
    assert scaling is not None and scaling.crd_schemas is not None
    for made in team.resources:
        if made.type.startswith("kubernetes:keda.sh/"):
            assert crd_schema.problems(scaling.crd_schemas, made.type, made.inputs) == []


def test_its_analysis_and_alerts_read_the_platforms_workspace(
    team: RenderedStack, platform: RenderedStack
) -> None:
    exports = platform.outputs
    [template] = team.of_type("kubernetes:argoproj.io/v1alpha1:AnalysisTemplate")
    for metric in template.inputs["spec"]["metrics"]:
        prometheus = metric["provider"]["prometheus"]
        assert prometheus["address"] == exports["prometheusWorkspaceUrl"]
        assert prometheus["authentication"]["sigv4"]["region"] == exports["region"]
    [group] = team.of_type("aws:amp/ruleGroupNamespace:RuleGroupNamespace")
    assert group.inputs["workspaceId"] == exports["prometheusWorkspaceId"]
    # Argo Rollouts reads the workspace it writes to: the platform's agent scrapes "serving".
    [agent] = [
        r
        for r in platform.of_type("kubernetes:helm.sh/v3:Release")
        if r.inputs["name"] == "prometheus-agent"
    ]
    [job] = [agent.inputs["values"]["scrapeConfigs"]["model-servers"]]
    assert "serving" in job["kubernetes_sd_configs"][0]["namespaces"]["names"]


def test_the_project_passes_the_platforms_pack(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--project-dir", str(EXAMPLE), "check", "--stack", "dev"]) == 0
    assert "0 mandatory and 0 advisory violations" in capsys.readouterr().out


def test_a_stack_reference_the_engine_cannot_resolve_is_a_clear_error(tmp_path: Path) -> None:
    project = tmp_path / "team"
    project.mkdir()
    (project / "Pulumi.yaml").write_text("name: team\nruntime: python\n")
    (project / "Pulumi.dev.yaml").write_text("config:\n  aws:region: us-east-1\n")
    (project / "__main__.py").write_text(
        "import pulumi\npulumi.export('x', pulumi.StackReference('organization/nowhere/dev')"
        ".require_output('x'))\n"
    )
    with pytest.raises(StackReferenceError, match="no project 'nowhere' at or above"):
        render_stack(PulumiProject.load(project), "dev")


def test_a_change_to_the_teams_stack_file_is_reviewed_like_the_platforms(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`diff` of the team's project against a git revision: its base is rendered from that
    revision's tree, the project's directory in it, against the platform stack there."""
    clone = tmp_path / "repo"
    subprocess.run(["git", "clone", "-q", str(REPO_ROOT), str(clone)], check=True)
    stack_file = clone / "examples" / "model-service" / "Pulumi.dev.yaml"
    stack_file.write_text(stack_file.read_text().replace("maxReplicas: 4", "maxReplicas: 3"))
    monkeypatch.setenv(CACHE_ENV, str(REPO_ROOT / ".cache" / "renders"))
    project_dir = str(clone / "examples" / "model-service")
    assert main(["--project-dir", project_dir, "diff", "--stack", "dev", "--base", "HEAD"]) == 0
    report = capsys.readouterr().out
    assert report.startswith("Stack dev against HEAD: 0 to create, 1 to update, 0 to replace")
    assert (
        "- update kubernetes:keda.sh/v1alpha1:ScaledObject::ranker-scaler\n"
        "  - spec.maxReplicaCount: 4 -> 3"
    ) in report


def platform_and_team(root: Path, reference_in: str) -> tuple[Path, Path]:
    """A one-output platform project and, below it, a team project reading it through a
    StackReference named in its `code` or its `config`."""
    platform, team = root / "platform", root / "platform" / "team"
    team.mkdir(parents=True)
    (platform / "Pulumi.yaml").write_text("name: plat\nruntime: python\n")
    (platform / "Pulumi.dev.yaml").write_text("config:\n  aws:region: us-east-1\n")
    (platform / "__main__.py").write_text(
        "import pulumi\npulumi.export('answer', 21)\n"
        "pulumi.export('token', pulumi.Output.secret('s3cret'))\n"
    )
    (team / "Pulumi.yaml").write_text("name: team\nruntime: python\n")
    named = "organization/plat/dev"
    config = f"  team:platform: {named}\n" if reference_in == "config" else ""
    (team / "Pulumi.dev.yaml").write_text(f"config:\n  aws:region: us-east-1\n{config}")
    reference = "pulumi.Config().require('platform')" if config else repr(named)
    (team / "__main__.py").write_text(
        f"import pulumi\nref = pulumi.StackReference({reference})\n"
        "pulumi.export('doubled', ref.require_output('answer').apply(lambda a: a * 2))\n"
        "pulumi.export('token', ref.require_output('token'))\n"
        "pulumi.export('all_secret', ref.outputs.apply(lambda o: o['answer']))\n"
    )
    return platform, team


def test_a_reference_found_only_by_running_the_program_is_rendered_and_the_program_rerun(
    tmp_path: Path,
) -> None:
    """Named in code, not config: the first pass reads it as unknown (what depends on it waits,
    nothing fails), the engine renders that stack, and the program runs again with its
    outputs, secrets still secret."""
    _, team = platform_and_team(tmp_path, reference_in="code")
    rendered = render_stack(PulumiProject.load(team), "dev")
    assert rendered.outputs["doubled"] == 42
    assert rendered.outputs["token"]["plaintext"] == '"s3cret"'
    # As the engine sends them: the outputs as a whole hold a secret, so they are secret.
    assert rendered.outputs["all_secret"]["plaintext"] == "21"
    assert set(rendered.references) == {"organization/plat/dev"}


def test_a_team_render_is_keyed_by_the_platform_stack_it_reads(tmp_path: Path) -> None:
    """A changed platform stack file changes the team project's render key, wherever the
    checkout is: its cached render is never taken for the new one."""
    platform, team = platform_and_team(tmp_path, reference_in="config")
    project = PulumiProject.load(team)
    before = render_key(project.name, "dev", working_tree_sources(project, "dev"))
    stack_file = platform / "Pulumi.dev.yaml"
    stack_file.write_text(stack_file.read_text().replace("us-east-1", "us-west-2"))
    after = render_key(project.name, "dev", working_tree_sources(project, "dev"))
    assert before != after


def test_a_team_stack_in_another_region_than_its_platform_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its role's Pod Identity association would go to a region without the cluster."""
    clone = tmp_path / "repo"
    subprocess.run(["git", "clone", "-q", str(REPO_ROOT), str(clone)], check=True)
    example = clone / "examples" / "model-service"
    text = (example / "Pulumi.dev.yaml").read_text()
    (example / "Pulumi.eu.yaml").write_text(text.replace("us-east-1", "eu-west-1", 1))
    monkeypatch.setenv(CACHE_ENV, str(REPO_ROOT / ".cache" / "renders"))
    assert main(["--project-dir", str(example), "plan", "--stack", "eu"]) == 2
    assert "aws:region: eu-west-1, but the platform stack is in us-east-1" in (
        capsys.readouterr().err
    )


def _plural(kind: str) -> str:
    return kind.lower() + ("es" if kind.endswith("s") else "s")


def test_the_teams_deployer_may_make_everything_the_project_makes_and_only_in_its_namespace(
    team: RenderedStack, platform: RenderedStack
) -> None:
    """The team's CI ships the project with the platform's deployer role: each Kubernetes object
    is in the team's namespace and of a kind its RoleBinding lets it create, and each AWS
    resource is one its policy lets it create."""
    deployer = [r for r in platform.resources if "team-deployer-serving" in r.urn]
    [rbac] = [r for r in deployer if r.type.endswith(":Role") and r.type.startswith("kubernetes")]
    creatable = {
        (group, resource)
        for rule in rbac.inputs["rules"]
        if "create" in rule["verbs"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    [inline] = [r for r in deployer if r.type == "aws:iam/rolePolicy:RolePolicy"]
    grants = json.loads(inline.inputs["policy"])
    exports = platform.outputs
    for made in team.resources:
        if not made.custom or made.type.startswith("pulumi:"):
            continue
        if made.type.startswith("kubernetes:"):
            api, kind = made.type.removeprefix("kubernetes:").rsplit(":", 1)
            group = api.rsplit("/", 1)[0] if "/" in api else ""
            assert made.inputs["metadata"]["namespace"] == "serving", made.urn
            assert (group.replace("core", ""), _plural(kind)) in creatable, made.urn
        elif made.type == "aws:iam/role:Role":
            context = {"iam:PermissionsBoundary": made.inputs["permissionsBoundary"]}
            assert decide([grants], "iam:CreateRole", made.outputs["arn"], context) == "allow"
        elif made.type == "aws:iam/rolePolicy:RolePolicy":
            [role] = [r for r in team.of_type("aws:iam/role:Role") if r.id == made.inputs["role"]]
            context = {"iam:PermissionsBoundary": role.inputs["permissionsBoundary"]}
            assert decide([grants], "iam:PutRolePolicy", role.outputs["arn"], context) == "allow"
        elif made.type == "aws:eks/podIdentityAssociation:PodIdentityAssociation":
            cluster = exports["clusterArn"]
            marked = {"aws:RequestTag/mlops:team": made.inputs["tags"]["mlops:team"]}
            create = "eks:CreatePodIdentityAssociation"
            assert decide([grants], create, cluster, marked) == "allow"
            passed = {"iam:PassedToService": "pods.eks.amazonaws.com"}
            assert decide([grants], "iam:PassRole", made.inputs["roleArn"], passed) == "allow"
        elif made.type == "aws:amp/ruleGroupNamespace:RuleGroupNamespace":
            arn = made.outputs["arn"]
            assert decide([grants], "aps:CreateRuleGroupsNamespace", arn) == "allow"
            assert decide([grants], "aps:TagResource", arn) == "allow"
        else:
            pytest.fail(f"no deployer grant is checked for {made.type}")


def test_it_reaches_the_cluster_as_its_caller_never_as_the_platforms_deployer(
    team: RenderedStack, platform: RenderedStack
) -> None:
    """The team's `pulumi up` runs as its deployer role, which the cluster knows by its access
    entry; the platform's kubeconfig would assume the platform's deployer (cluster-admin)."""
    [provider] = team.of_type("pulumi:providers:kubernetes")
    config = json.loads(provider.inputs["kubeconfig"])
    [user] = config["users"]
    arguments = user["user"]["exec"]["args"]
    assert "--role-arn" not in arguments
    assert arguments[arguments.index("--cluster-name") + 1] == platform.outputs["clusterName"]
    # The platform's own, a secret in its state, assumes a role.
    platform_config = json.loads(json.loads(platform.outputs["kubeconfig"]["plaintext"]))
    assert "--role-arn" in platform_config["users"][0]["user"]["exec"]["args"]


def test_the_services_own_grants_fit_inside_its_teams_boundary(
    team: RenderedStack, platform: RenderedStack
) -> None:
    """Its role's grants hold in full for its pods: each allowed action on each resource is
    also allowed by the team's boundary, for a Pod Identity session of the team's namespace."""
    [boundary] = [
        p
        for p in platform.of_type("aws:iam/policy:Policy")
        if p.outputs["arn"] == platform.outputs["teamBoundaryArns"]["serving"]
    ]
    ceiling = json.loads(boundary.inputs["policy"])
    [inline] = team.of_type("aws:iam/rolePolicy:RolePolicy")
    session = {
        "aws:PrincipalTag/kubernetes-namespace": "serving",
        "aws:PrincipalTag/eks-cluster-arn": platform.outputs["clusterArn"],
        "kms:ViaService": f"s3.{platform.outputs['region']}.amazonaws.com",
    }
    for statement in json.loads(inline.inputs["policy"])["Statement"]:
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        resources = (
            statement["Resource"]
            if isinstance(statement["Resource"], list)
            else [statement["Resource"]]
        )
        for action in actions:
            for resource in resources:
                example = resource.replace("*", "ranker/7/model.bin")
                assert decide([ceiling], action, example, session) == "allow", (action, example)


def test_a_service_on_a_port_its_namespace_does_not_admit_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its callers, its load balancer and the metrics agent are admitted on the team's declared
    ports only (vLLM's own default, 8000, is not serving's)."""
    clone = tmp_path / "repo"
    subprocess.run(["git", "clone", "-q", str(REPO_ROOT), str(clone)], check=True)
    example = clone / "examples" / "model-service"
    text = (example / "Pulumi.dev.yaml").read_text()
    (example / "Pulumi.other-port.yaml").write_text(
        text.replace("    pool: inference\n", "    pool: inference\n    port: 8000\n", 1)
    )
    monkeypatch.setenv(CACHE_ENV, str(REPO_ROOT / ".cache" / "renders"))
    assert main(["--project-dir", str(example), "plan", "--stack", "other-port"]) == 2
    assert (
        "model-service:service.port: 8000 is not a port the platform admits for team serving "
        "([8080])"
    ) in capsys.readouterr().err
