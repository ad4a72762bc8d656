"""A model server on an inference GPU pool, as a model team runs it from its own Pulumi project.

The component makes the server's identity (a role under the platform's workload boundary,
granted exactly the model it serves, bound to its service account by EKS Pod Identity) and its
Kubernetes objects: a Deployment placed on the pool (its node label, its taints tolerated) with
whole accelerators per replica (a time-sliced pool's share of one), startup, readiness and
liveness probes, the platform's inference priority and a restricted security context running as
a numeric user; a Service; and a PodDisruptionBudget, so a node drain or an upgrade never takes
more than one replica at a time. The team namespace must let its pods reach AWS: the platform
opens that for namespaces with workloads bound to roles.

The server image reads `MODEL_URI` (an `s3://` prefix in the models bucket, or an MLflow
registry URI `models:/<name>/<version>`, resolved through `MLFLOW_TRACKING_URI`, the tracking
server's ARN, with the `sagemaker-mlflow` plugin) and answers on `port`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import yaml

from components.autoscaling import (
    Autoscaling,
    autoscaling_problem,
    scaled_object_spec,
    trigger_authentication_spec,
)
from components.canary import (
    USE_ANNOTATION,
    Canary,
    LoadBalancer,
    analysis_template_spec,
    balancer_problem,
    canary_problem,
    canary_service_name,
    canary_strategy,
    ingress_annotations,
)
from components.common import ComponentArgsError
from components.load_balancer_controller import INGRESS_CLASS
from components.pod_role import PodRole, PodRoleArgs
from components.policy_documents import TEAM_TAG, BucketGrant, TrackingGrant, workload_policy
from components.service_health import ServiceHealth, alert_rules, rule_group_name
from components.team_deployer import team_role_path
from components.team_namespaces import INFERENCE_PRIORITY
from mlops_guardrails.vocabulary import (
    MODEL_SERVER_LABELS,
    MODEL_SERVER_PORT_NAME,
    POOL_LABEL,
    Taint,
)

REGISTRY_SCHEME: Final = "models:/"
SCRATCH: Final = "/tmp"
"""The one writable path: the root filesystem is read-only."""
STARTUP_PERIOD_SECONDS: Final = 10
NODE_PROVISIONING_SECONDS: Final = 600
DRAIN_SECONDS: Final = 15
TERMINATION_GRACE_SECONDS: Final = 120
"""Room for a long generation to finish after the server is told to stop."""


@dataclass(frozen=True)
class InferencePool:
    """Where the server runs: a GPU pool of the platform (its `gpuPools` output)."""

    name: str
    resource: str
    """The accelerator the pool's device plugin advertises, e.g. nvidia.com/gpu."""
    taints: Sequence[Taint]


@dataclass(frozen=True)
class ServiceIdentity:
    """The cluster the role is bound in, and the boundary every workload role carries."""

    cluster_name: pulumi.Input[str]
    cluster_arn: pulumi.Input[str]
    permissions_boundary_arn: pulumi.Input[str]
    region: pulumi.Input[str]


@dataclass(frozen=True)
class ModelArtifacts:
    """The bucket prefix the model's files are read from: the model itself (an `s3://` model),
    or where the MLflow registry keeps its versions (the platform's `mlflowArtifactUri`)."""

    bucket_name: pulumi.Input[str]
    bucket_arn: pulumi.Input[str]
    key_arn: pulumi.Input[str]
    """The bucket's default encryption key: reading an object decrypts with it, through S3."""
    prefix: str


@dataclass(frozen=True)
class RegisteredModel:
    """A version in the MLflow registry, resolved through the tracking server."""

    name: str
    version: str
    tracking_server_arn: pulumi.Input[str]


@dataclass(frozen=True)
class ModelServiceArgs:
    namespace: str
    image: pulumi.Input[str]
    artifacts: ModelArtifacts
    pool: InferencePool
    identity: ServiceIdentity
    tags: Mapping[str, str]
    accelerators_per_replica: int = 1
    replicas: int = 2
    port: int = 8080
    readiness_path: str = "/ping"
    cpu: str = "4"
    memory: str = "16Gi"
    run_as_user: int = 1000
    """A numeric user: Kubernetes cannot check that a named or root-default image user is not
    root, and refuses to start it under runAsNonRoot."""
    scratch: str = "20Gi"
    """Room under /tmp (HOME and the model caches point there; the root is read-only)."""
    startup_seconds: int = 1200
    """How long a replica may take to load its model before it is restarted."""
    registered: RegisteredModel | None = None
    """The model as an MLflow registry version; None: the artifacts prefix is the model."""
    load_balancer: LoadBalancer | None = None
    """An ALB in front of it; None: it is reached through its Service only."""
    health: ServiceHealth | None = None
    """Alert on its errors and latency (and judge its canaries by them) in the platform's
    workspace; None: no alerts."""
    canary: Canary | None = None
    """Roll new versions out as a canary through the load balancer, judged by its health;
    None: replace replicas one at a time."""
    autoscaling: Autoscaling | None = None
    """Scale between bounds on requests in flight, read where its health is; None: `replicas`
    replicas."""


class ModelService(pulumi.ComponentResource):
    TYPE = "mlops:model_service:ModelService"

    role_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: ModelServiceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(self.TYPE, name, None, opts)
        problem = _problem(args)
        if problem is not None:
            raise ComponentArgsError(self.TYPE, name, problem)
        child = pulumi.ResourceOptions(parent=self)
        labels = {"app.kubernetes.io/name": name, **MODEL_SERVER_LABELS}
        metadata = k8s.meta.v1.ObjectMetaArgs(name=name, namespace=args.namespace, labels=labels)
        account = k8s.core.v1.ServiceAccount(f"{name}-account", metadata=metadata, opts=child)
        registry = args.registered.tracking_server_arn if args.registered is not None else None
        grants = pulumi.Output.all(
            region=args.identity.region,
            bucket=args.artifacts.bucket_arn,
            key=args.artifacts.key_arn,
            server=registry if registry is not None else "",
        ).apply(
            lambda v: workload_policy(
                region=v["region"],
                **_reads(args.artifacts.prefix, v["bucket"], v["key"], v["server"] or None),
            )
        )
        role = PodRole(
            f"{name}-identity",
            PodRoleArgs(
                cluster_name=args.identity.cluster_name,
                cluster_arn=args.identity.cluster_arn,
                namespace=args.namespace,
                service_account=name,
                permissions_boundary_arn=args.identity.permissions_boundary_arn,
                inline_policy=grants,
                # The team's mark: its deployer may change associations that carry it, only.
                tags={**args.tags, "mlops:model-service": name, TEAM_TAG: args.namespace},
                # The team's deployer may make roles nowhere else.
                path=team_role_path(args.namespace),
            ),
            opts=child,
        )
        model_uri: pulumi.Input[str] = (
            f"{REGISTRY_SCHEME}{args.registered.name}/{args.registered.version}"
            if args.registered is not None
            else pulumi.Output.concat(
                "s3://", args.artifacts.bucket_name, "/", args.artifacts.prefix
            )
        )
        environment = [
            k8s.core.v1.EnvVarArgs(name="HOME", value=SCRATCH),
            k8s.core.v1.EnvVarArgs(name="MODEL_URI", value=model_uri),
            k8s.core.v1.EnvVarArgs(name="AWS_REGION", value=args.identity.region),
        ]
        if registry is not None:
            environment.append(k8s.core.v1.EnvVarArgs(name="MLFLOW_TRACKING_URI", value=registry))
        template = _pod_template(name, args, labels, environment)
        # A new replica may wait for a GPU node, then load its model for startup_seconds; the
        # default 600 s would call a healthy rollout failed.
        progress_deadline = args.startup_seconds + NODE_PROVISIONING_SECONDS
        # Argo Rollouts adds the version's hash to its Services' selectors, an atomic map: a
        # later apply of Pulumi's selector would conflict with it (or, forced, mix versions).
        selected_by_argo = pulumi.ResourceOptions(
            parent=self, ignore_changes=["spec.selector"] if args.canary is not None else None
        )
        workload_opts = pulumi.ResourceOptions(
            parent=self,
            depends_on=[role, account],
            # The autoscaler owns the count once it runs; an update must not reset it.
            ignore_changes=["spec.replicas"] if args.autoscaling is not None else None,
        )
        replicas = args.autoscaling.min_replicas if args.autoscaling is not None else args.replicas
        if args.canary is None:
            k8s.apps.v1.Deployment(
                f"{name}-deployment",
                metadata=metadata,
                spec=k8s.apps.v1.DeploymentSpecArgs(
                    replicas=replicas,
                    progress_deadline_seconds=progress_deadline,
                    selector=k8s.meta.v1.LabelSelectorArgs(match_labels=labels),
                    # One replica at a time is replaced in place: a surge replica would need an
                    # accelerator beyond the team's quota, which a team sized for its replicas
                    # does not have, and the rollout would stall.
                    strategy=k8s.apps.v1.DeploymentStrategyArgs(
                        type="RollingUpdate",
                        rolling_update=k8s.apps.v1.RollingUpdateDeploymentArgs(
                            max_surge=0, max_unavailable=1
                        ),
                    ),
                    template=template,
                ),
                # Pods start with credentials: the role resolves once its association exists.
                opts=workload_opts,
            )
        else:
            self._canary(
                name,
                args,
                replicas=replicas,
                progress_deadline=progress_deadline,
                metadata=metadata,
                labels=labels,
                template=template,
                opts=workload_opts,
                selected_by_argo=selected_by_argo,
            )
        _service(f"{name}-service", name, args, labels, selected_by_argo)
        k8s.policy.v1.PodDisruptionBudget(
            f"{name}-disruption-budget",
            metadata=metadata,
            spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
                max_unavailable=1,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=labels),
                # A replica that never became ready must not hold a node drain up.
                unhealthy_pod_eviction_policy="AlwaysAllow",
            ),
            opts=child,
        )
        if args.load_balancer is not None:
            self._ingress(name, args, args.load_balancer)
        if args.autoscaling is not None:
            self._autoscaler(name, args, args.autoscaling, metadata)
        if args.health is not None:
            aws.amp.RuleGroupNamespace(
                f"{name}-alerts",
                name=rule_group_name(args.namespace, name),
                workspace_id=args.health.workspace_id,
                data=yaml.safe_dump(
                    alert_rules(
                        args.namespace,
                        name,
                        args.health,
                        canary_minutes=(
                            len(args.canary.steps) * args.canary.step_minutes
                            if args.canary is not None
                            else None
                        ),
                    ),
                    sort_keys=False,
                ),
                tags={**args.tags, "mlops:model-service": name},
                opts=child,
            )
        self.role_arn = role.role_arn
        self.register_outputs({"roleArn": self.role_arn})

    def _canary(
        self,
        name: str,
        args: ModelServiceArgs,
        *,
        replicas: int,
        progress_deadline: int,
        metadata: k8s.meta.v1.ObjectMetaArgs,
        labels: Mapping[str, str],
        template: k8s.core.v1.PodTemplateSpecArgs,
        opts: pulumi.ResourceOptions,
        selected_by_argo: pulumi.ResourceOptions,
    ) -> None:
        """A Rollout in place of the Deployment, the canary's own Service, and the analysis."""
        assert args.canary is not None and args.health is not None
        child = pulumi.ResourceOptions(parent=self)
        analysis = k8s.apiextensions.CustomResource(
            f"{name}-analysis",
            api_version="argoproj.io/v1alpha1",
            kind="AnalysisTemplate",
            metadata=metadata,
            spec=analysis_template_spec(args.namespace, name, args.health),
            opts=child,
        )
        canary_service = _service(
            f"{name}-canary-service", canary_service_name(name), args, labels, selected_by_argo
        )
        k8s.apiextensions.CustomResource(
            f"{name}-rollout",
            api_version="argoproj.io/v1alpha1",
            kind="Rollout",
            metadata=metadata,
            spec={
                "replicas": replicas,
                "progressDeadlineSeconds": progress_deadline,
                "selector": {"matchLabels": dict(labels)},
                "template": template,
                "strategy": canary_strategy(name, args.port, args.canary),
            },
            opts=pulumi.ResourceOptions.merge(
                opts, pulumi.ResourceOptions(depends_on=[analysis, canary_service])
            ),
        )

    def _autoscaler(
        self,
        name: str,
        args: ModelServiceArgs,
        autoscaling: Autoscaling,
        metadata: k8s.meta.v1.ObjectMetaArgs,
    ) -> None:
        assert args.health is not None
        child = pulumi.ResourceOptions(parent=self)
        authentication = k8s.apiextensions.CustomResource(
            f"{name}-scaler-auth",
            api_version="keda.sh/v1alpha1",
            kind="TriggerAuthentication",
            metadata=metadata,
            spec=trigger_authentication_spec(),
            opts=child,
        )
        target = (
            {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": name}
            if args.canary is not None
            else {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        )
        k8s.apiextensions.CustomResource(
            f"{name}-scaler",
            api_version="keda.sh/v1alpha1",
            kind="ScaledObject",
            metadata=metadata,
            spec=scaled_object_spec(
                namespace=args.namespace,
                service=name,
                target=target,
                autoscaling=autoscaling,
                health=args.health,
                authentication=name,
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[authentication]),
        )

    def _ingress(self, name: str, args: ModelServiceArgs, balancer: LoadBalancer) -> None:
        k8s.networking.v1.Ingress(
            f"{name}-ingress",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=name,
                namespace=args.namespace,
                annotations=pulumi.Output.from_input(balancer.subnet_ids).apply(
                    lambda subnets: ingress_annotations(
                        balancer, args.readiness_path, ",".join(subnets)
                    )
                ),
            ),
            spec=k8s.networking.v1.IngressSpecArgs(
                ingress_class_name=INGRESS_CLASS,
                rules=[
                    k8s.networking.v1.IngressRuleArgs(
                        http=k8s.networking.v1.HTTPIngressRuleValueArgs(
                            paths=[
                                k8s.networking.v1.HTTPIngressPathArgs(
                                    path="/",
                                    path_type="Prefix",
                                    backend=k8s.networking.v1.IngressBackendArgs(
                                        service=k8s.networking.v1.IngressServiceBackendArgs(
                                            name=name,
                                            # The forward action Argo Rollouts writes and
                                            # reweights (`actions.<service>`), or the port.
                                            port=k8s.networking.v1.ServiceBackendPortArgs(
                                                name=USE_ANNOTATION
                                                if args.canary is not None
                                                else MODEL_SERVER_PORT_NAME
                                            ),
                                        )
                                    ),
                                )
                            ]
                        )
                    )
                ],
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )


def _pod_template(
    name: str,
    args: ModelServiceArgs,
    labels: Mapping[str, str],
    environment: Sequence[k8s.core.v1.EnvVarArgs],
) -> k8s.core.v1.PodTemplateSpecArgs:
    accelerators = {args.pool.resource: str(args.accelerators_per_replica)}
    probe = k8s.core.v1.HTTPGetActionArgs(path=args.readiness_path, port=args.port)
    return k8s.core.v1.PodTemplateSpecArgs(
        metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels),
        spec=k8s.core.v1.PodSpecArgs(
            service_account_name=name,
            termination_grace_period_seconds=TERMINATION_GRACE_SECONDS,
            priority_class_name=INFERENCE_PRIORITY,
            node_selector={POOL_LABEL: args.pool.name},
            tolerations=[
                k8s.core.v1.TolerationArgs(
                    key=t.key, operator="Equal", value=t.value, effect=t.effect
                )
                for t in args.pool.taints
            ],
            topology_spread_constraints=[
                k8s.core.v1.TopologySpreadConstraintArgs(
                    max_skew=1,
                    topology_key="topology.kubernetes.io/zone",
                    when_unsatisfiable="ScheduleAnyway",
                    label_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=labels),
                )
            ],
            security_context=k8s.core.v1.PodSecurityContextArgs(
                run_as_non_root=True,
                run_as_user=args.run_as_user,
                run_as_group=args.run_as_user,
                fs_group=args.run_as_user,
                seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
            ),
            containers=[
                k8s.core.v1.ContainerArgs(
                    name="server",
                    image=args.image,
                    ports=[
                        k8s.core.v1.ContainerPortArgs(
                            name=MODEL_SERVER_PORT_NAME, container_port=args.port
                        )
                    ],
                    env=environment,
                    # Limits state the CPU too: the team namespace's defaults
                    # would otherwise cap it below the request, which Kubernetes
                    # refuses.
                    resources=k8s.core.v1.ResourceRequirementsArgs(
                        requests={
                            "cpu": args.cpu,
                            "memory": args.memory,
                            "ephemeral-storage": args.scratch,
                            **accelerators,
                        },
                        limits={
                            "cpu": args.cpu,
                            "memory": args.memory,
                            "ephemeral-storage": args.scratch,
                            **accelerators,
                        },
                    ),
                    # Loading a model takes minutes: the startup probe gives it
                    # startup_seconds, then readiness gates traffic and liveness
                    # restarts a server that stopped answering.
                    startup_probe=k8s.core.v1.ProbeArgs(
                        http_get=probe,
                        period_seconds=STARTUP_PERIOD_SECONDS,
                        failure_threshold=args.startup_seconds // STARTUP_PERIOD_SECONDS,
                    ),
                    # Out of the load balancer's targets and the Service's endpoints before the
                    # server stops taking requests.
                    lifecycle=k8s.core.v1.LifecycleArgs(
                        pre_stop=k8s.core.v1.LifecycleHandlerArgs(
                            sleep=k8s.core.v1.SleepActionArgs(seconds=DRAIN_SECONDS)
                        )
                    ),
                    readiness_probe=k8s.core.v1.ProbeArgs(
                        http_get=probe, period_seconds=5, failure_threshold=3
                    ),
                    liveness_probe=k8s.core.v1.ProbeArgs(
                        http_get=probe, period_seconds=20, failure_threshold=3
                    ),
                    security_context=k8s.core.v1.SecurityContextArgs(
                        allow_privilege_escalation=False,
                        read_only_root_filesystem=True,
                        capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]),
                    ),
                    volume_mounts=[
                        k8s.core.v1.VolumeMountArgs(name="scratch", mount_path=SCRATCH),
                        # Multi-GPU servers share tensors through /dev/shm, which
                        # the runtime gives 64 MiB by default.
                        k8s.core.v1.VolumeMountArgs(name="shm", mount_path="/dev/shm"),
                    ],
                )
            ],
            volumes=[
                k8s.core.v1.VolumeArgs(
                    name="scratch",
                    empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit=args.scratch),
                ),
                k8s.core.v1.VolumeArgs(
                    name="shm",
                    empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(medium="Memory"),
                ),
            ],
        ),
    )


def _reads(prefix: str, bucket_arn: str, key_arn: str, server_arn: str | None) -> dict[str, Any]:
    """The model's reads: its prefix of the bucket, and the registry that names it."""
    grant = BucketGrant(bucket_arn, key_arn, write=False, prefix=prefix)
    if server_arn is None:
        return {"buckets": [grant]}
    return {"tracking": TrackingGrant(server_arn, grant)}


def _service(
    resource_name: str,
    service_name: str,
    args: ModelServiceArgs,
    labels: Mapping[str, str],
    opts: pulumi.ResourceOptions,
) -> k8s.core.v1.Service:
    """A Service of the server's pods on its port (the stable one, or a canary's)."""
    return k8s.core.v1.Service(
        resource_name,
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=service_name, namespace=args.namespace, labels=dict(labels)
        ),
        spec=k8s.core.v1.ServiceSpecArgs(
            selector=dict(labels),
            ports=[
                k8s.core.v1.ServicePortArgs(
                    name=MODEL_SERVER_PORT_NAME, port=args.port, target_port=MODEL_SERVER_PORT_NAME
                )
            ],
        ),
        opts=opts,
    )


def _problem(args: ModelServiceArgs) -> str | None:
    """The first reason the service could not run safely, or None."""
    registered = args.registered
    problems = [
        (
            not re.fullmatch(r"([A-Za-z0-9_.=-]+/)+", args.artifacts.prefix),
            f"artifacts prefix {args.artifacts.prefix!r}: key segments ending in /",
        ),
        (args.replicas < 2, "at least 2 replicas: with one, every drain or rollout is an outage"),
        (args.accelerators_per_replica < 1, "a replica takes at least one whole accelerator"),
    ]
    if registered is not None:
        named = re.fullmatch(r"[A-Za-z0-9_.-]+", registered.name) is not None
        problems.insert(
            1,
            (
                not (named and registered.version.isdigit()),
                f"registered model {registered.name}/{registered.version}: a name and a number",
            ),
        )
    found = next((message for failed, message in problems if failed), None)
    if found is None and args.autoscaling is not None:
        found = autoscaling_problem(args.autoscaling, args.health)
    if found is None and args.canary is not None:
        found = canary_problem(args.canary, args.load_balancer, args.health)
    return found or balancer_problem(args.load_balancer)
