"""One model service of a model team, deployed onto the platform stack it names.

Everything about the platform (cluster, identity boundary, pools, registries, buckets, tracking
server) is read from that stack's outputs through a StackReference: the team's stack file says
only what the team decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal

import pulumi
import pulumi_kubernetes as k8s
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel

from components.autoscaling import Autoscaling
from components.canary import Canary, LoadBalancer
from components.model_service import (
    InferencePool,
    ModelArtifacts,
    ModelService,
    ModelServiceArgs,
    RegisteredModel,
    ServiceIdentity,
)
from components.service_health import VLLM, ServiceHealth, ServingMetrics, Thresholds
from mlops_guardrails.vocabulary import Taint

SERVER_METRICS: Final[dict[str, ServingMetrics]] = {"vllm": VLLM}
KubernetesName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")]


class Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, extra="forbid", frozen=True)


class Image(Model):
    repository: KubernetesName = Field(description="A repository of the platform's registry.")
    tag: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")]


class RegisteredVersion(Model):
    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]+$")]
    version: int = Field(ge=1)


class ModelLocation(Model):
    """Exactly one: a registered MLflow version, or a prefix of the platform's models bucket."""

    registered: RegisteredVersion | None = None
    s3_prefix: Annotated[str, StringConstraints(pattern=r"^([A-Za-z0-9_.=-]+/)+$")] | None = None

    @model_validator(mode="after")
    def _one_location(self) -> ModelLocation:
        if (self.registered is None) == (self.s3_prefix is None):
            raise ValueError("give registered or s3Prefix, one of them")
        return self


class LoadBalancerConfig(Model):
    """An ALB in the platform's public subnets, reached from the VPC (internal) or, with a
    certificate, from the internet over HTTPS."""

    scheme: Literal["internal", "internet-facing"] = "internal"
    certificate_arn: (
        Annotated[str, StringConstraints(pattern=r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}:")]
        | None
    ) = None


class HealthConfig(Model):
    """What the server reports, and the bounds that page the team and fail a canary."""

    server_metrics: Literal["vllm"] = "vllm"
    max_error_rate_percent: float = Field(default=1.0, gt=0, le=100)
    max_p95_latency_seconds: float = Field(gt=0)


class CanaryConfig(Model):
    """Each new version takes these shares of the traffic in turn before it is promoted."""

    steps: list[Annotated[int, Field(ge=1, le=99)]] = Field(min_length=1)
    step_minutes: int = Field(default=10, ge=3, le=120)

    @model_validator(mode="after")
    def _increasing(self) -> CanaryConfig:
        if self.steps != sorted(set(self.steps)):
            raise ValueError(f"steps {self.steps}: increasing percentages")
        return self


class AutoscalingConfig(Model):
    """Replicas follow the requests in flight, between the bounds."""

    min_replicas: int = Field(default=2, ge=2)
    max_replicas: int = Field(ge=2)
    in_flight_per_replica: int = Field(ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> AutoscalingConfig:
        if self.max_replicas < self.min_replicas:
            raise ValueError(f"maxReplicas {self.max_replicas} is below minReplicas")
        return self


class ServiceConfig(Model):
    name: KubernetesName
    team: KubernetesName = Field(description="The team namespace the platform gives you.")
    owner: str
    cost_center: str
    pool: KubernetesName = Field(description="An inference pool of the platform (gpuPools).")
    image: Image
    model: ModelLocation
    replicas: int = Field(default=2, ge=2)
    accelerators_per_replica: int = Field(default=1, ge=1)
    port: int = Field(default=8080, ge=1, le=65535)
    load_balancer: LoadBalancerConfig | None = None
    health: HealthConfig | None = None
    canary: CanaryConfig | None = None
    autoscaling: AutoscalingConfig | None = None

    @model_validator(mode="after")
    def _canary_is_routed_and_judged(self) -> ServiceConfig:
        if self.canary is not None and (self.load_balancer is None or self.health is None):
            raise ValueError("canary: needs loadBalancer (its weights) and health (its judge)")
        if self.autoscaling is not None and self.health is None:
            raise ValueError("autoscaling: needs health (where its load is read)")
        return self


def parse(raw: object, where: str) -> ServiceConfig:
    """The config, or a RunError naming each problem's key path (`pulumi up` shows it without
    a traceback)."""
    try:
        return ServiceConfig.model_validate(raw)
    except ValidationError as error:
        problems = [
            f"{where}.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
            for e in error.errors(include_url=False)
        ]
        raise pulumi.RunError(
            "invalid config; nothing was changed:\n  " + "\n  ".join(problems)
        ) from None


def pool(service: ServiceConfig, pools: dict[str, Any]) -> InferencePool:
    found = pools.get(service.pool)
    if found is None or found["purpose"] != "inference":
        inference = sorted(name for name, p in pools.items() if p["purpose"] == "inference")
        raise pulumi.RunError(
            f"{pulumi.get_project()}:service.pool: {service.pool!r} is not an inference pool of "
            f"the platform; it has: {', '.join(inference) or 'none'}"
        )
    return InferencePool(
        service.pool, found["resource"], tuple(Taint(**t) for t in found["taints"])
    )


@dataclass(frozen=True)
class PlatformFacts:
    """The platform's outputs the service's shape depends on, known before it is made."""

    pools: dict[str, Any]
    environment: str
    region: str
    serving_ports: dict[str, list[int]]


def build(
    service: ServiceConfig, platform: pulumi.StackReference, facts: PlatformFacts
) -> ModelService:
    # The role's Pod Identity association goes to the cluster through this project's AWS
    # provider: it must be the platform's region.
    own_region = pulumi.Config("aws").require("region")
    if own_region != facts.region:
        raise pulumi.RunError(
            f"aws:region: {own_region}, but the platform stack is in {facts.region}; set "
            f"aws:region: {facts.region}"
        )
    # Callers, the load balancer and the metrics agent are admitted on the team's declared
    # ports only: on any other the service would be cut off without a word.
    # Numbers come out of a stack's outputs as floats.
    ports = [int(port) for port in facts.serving_ports.get(service.team, [])]
    if service.port not in ports:
        raise pulumi.RunError(
            f"{pulumi.get_project()}:service.port: {service.port} is not a port the platform "
            f"admits for team {service.team} ({ports or 'none: the team serves no models'}); "
            "use one, or have the platform declare it (gpu.teams.<team>.ingress)"
        )
    pools, environment = facts.pools, facts.environment

    def output(name: str) -> pulumi.Output[Any]:
        return platform.require_output(name)

    registered = service.model.registered
    bucket = "experiments" if registered is not None else "models"
    tags = {
        "owner": service.owner,
        "cost-center": service.cost_center,
        "managed-by": "pulumi",
        "mlops:environment": environment,
        "mlops:project": pulumi.get_project(),
        "mlops:stack": pulumi.get_stack(),
    }
    # Authenticates as the caller (the team's deployer, through its access entry): the
    # platform's own kubeconfig assumes the platform's deployer, which a team may not.
    cluster = k8s.Provider("platform-cluster", kubeconfig=output("teamKubeconfig"))
    return ModelService(
        service.name,
        ModelServiceArgs(
            namespace=service.team,
            image=pulumi.Output.concat(
                output("repositoryUrls")[service.image.repository], ":", service.image.tag
            ),
            artifacts=ModelArtifacts(
                bucket_name=output("artifactBucketNames")[bucket],
                bucket_arn=output("artifactBucketArns")[bucket],
                key_arn=output("artifactKeyArn"),
                # A registered version lives where the tracking server keeps artifacts.
                prefix=service.model.s3_prefix or "mlflow/",
            ),
            registered=(
                RegisteredModel(
                    registered.name, str(registered.version), output("mlflowTrackingServerArn")
                )
                if registered is not None
                else None
            ),
            pool=pool(service, pools),
            identity=ServiceIdentity(
                cluster_name=output("clusterName"),
                cluster_arn=output("clusterArn"),
                # The team's own boundary: read models, from the team's pods, nothing else.
                permissions_boundary_arn=output("teamBoundaryArns")[service.team],
                region=output("region"),
            ),
            tags=tags,
            replicas=service.replicas,
            accelerators_per_replica=service.accelerators_per_replica,
            port=service.port,
            load_balancer=(
                LoadBalancer(
                    subnet_ids=output("publicSubnetIds"),
                    scheme=service.load_balancer.scheme,
                    certificate_arn=service.load_balancer.certificate_arn,
                )
                if service.load_balancer is not None
                else None
            ),
            health=(
                ServiceHealth(
                    workspace_id=output("prometheusWorkspaceId"),
                    workspace_url=output("prometheusWorkspaceUrl"),
                    region=output("region"),
                    metrics=SERVER_METRICS[service.health.server_metrics],
                    thresholds=Thresholds(
                        error_rate_percent=service.health.max_error_rate_percent,
                        p95_latency_seconds=service.health.max_p95_latency_seconds,
                    ),
                )
                if service.health is not None
                else None
            ),
            canary=(
                Canary(steps=tuple(service.canary.steps), step_minutes=service.canary.step_minutes)
                if service.canary is not None
                else None
            ),
            autoscaling=(
                Autoscaling(
                    min_replicas=service.autoscaling.min_replicas,
                    max_replicas=service.autoscaling.max_replicas,
                    in_flight_per_replica=service.autoscaling.in_flight_per_replica,
                )
                if service.autoscaling is not None
                else None
            ),
        ),
        opts=pulumi.ResourceOptions(providers=[cluster]),
    )


def main() -> None:
    config = pulumi.Config()
    service = parse(config.require_object("service"), f"{pulumi.get_project()}:service")
    platform = pulumi.StackReference(config.require("platformStack"))
    # The pool's accelerator and taints shape the pod spec, so the service is made once they
    # are known: a StackReference's outputs are, in previews too (read from the platform's
    # state).
    deployed = pulumi.Output.all(
        platform.require_output("gpuPools"),
        platform.require_output("environment"),
        platform.require_output("region"),
        platform.require_output("teamServingPorts"),
    ).apply(lambda v: build(service, platform, PlatformFacts(*v)))
    pulumi.export("environment", platform.require_output("environment"))
    pulumi.export("roleArn", deployed.apply(lambda d: d.role_arn))
    pulumi.export(
        "endpoint", f"http://{service.name}.{service.team}.svc.cluster.local:{service.port}"
    )


main()
