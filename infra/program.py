"""Composes the platform for one stack from its validated configuration."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.accelerators import INSTANCE_TYPES, RESOURCE_NAMES, pool_hardware
from components.alert_topic import AlertSubscription, AlertTopic, AlertTopicArgs
from components.argo_rollouts import NAMESPACE as ARGO_ROLLOUTS_NAMESPACE
from components.argo_rollouts import ArgoRollouts, ArgoRolloutsArgs
from components.artifact_storage import ArtifactBucketSpec, ArtifactStorage, ArtifactStorageArgs
from components.bucket_replication import (
    BucketReplication,
    BucketReplicationArgs,
    ReplicatedBucket,
)
from components.cluster_autoscaler import NAMESPACE as AUTOSCALER_NAMESPACE
from components.cluster_autoscaler import ClusterAutoscaler, ClusterAutoscalerArgs
from components.cost_budget import CostBudget, CostBudgetArgs
from components.deploy_runner import DeployRunner, DeployRunnerArgs
from components.eks_cluster import AccessGrant, EksCluster, EksClusterArgs, SystemNodes
from components.event_queue import (
    MAX_EVENT_AGE_SECONDS,
    EventQueue,
    EventQueueArgs,
    s3_object_created,
)
from components.experiment_tracking import ExperimentTracking, ExperimentTrackingArgs
from components.feast_store import FeastStore, FeastStoreArgs
from components.gpu_monitoring import (
    AlertThresholds,
    GpuMonitoring,
    GpuMonitoringArgs,
    MonitoredPool,
)
from components.gpu_node_pool import GpuNodePool, GpuNodePoolArgs, GpuPoolSpec
from components.gpu_software import NAMESPACE as GPU_SOFTWARE_NAMESPACE
from components.gpu_software import GpuSoftware, GpuSoftwareArgs
from components.helm import ControllerInstall
from components.karpenter import NAMESPACE as KARPENTER_NAMESPACE
from components.karpenter import Karpenter, KarpenterArgs, KarpenterNodePool, KarpenterNodePoolArgs
from components.keda import NAMESPACE as KEDA_NAMESPACE
from components.keda import Keda, KedaArgs
from components.kms_key import KmsKey, KmsKeyArgs
from components.kubernetes_baseline import KubernetesBaseline, KubernetesBaselineArgs
from components.load_balancer_controller import NAMESPACE as LOAD_BALANCER_CONTROLLER_NAMESPACE
from components.load_balancer_controller import LoadBalancerController, LoadBalancerControllerArgs
from components.metrics_agent import MetricsAgent, MetricsAgentArgs
from components.model_registry import ModelRegistry, ModelRegistryArgs, RepositorySpec
from components.network import Network, NetworkArgs, NetworkRef
from components.node_pool import AmiRelease
from components.pod_role import IrsaBinding, PodRole, PodRoleArgs
from components.policy_documents import (
    BucketGrant,
    KeyUse,
    QueueGrant,
    RepositoryGrant,
    TableGrant,
    TrackingGrant,
    workload_policy,
)
from components.sagemaker_feature_store import (
    FeatureGroupSpec,
    SageMakerFeatureStore,
    SageMakerFeatureStoreArgs,
)
from components.team_deployer import (
    GitHubEnvironments,
    TeamDeployer,
    TeamDeployerArgs,
    TeamReads,
    github_actions_provider_arn,
)
from components.team_namespaces import (
    AwsBinding,
    IngressRule,
    Team,
    TeamNamespaces,
    TeamNamespacesArgs,
    TeamQuota,
)
from infra import names
from infra.config import (
    CONFIG_KEY,
    METRICS_NAMESPACE,
    ExistingNetworkMode,
    GpuPoolConfig,
    IngressRuleConfig,
    PlatformConfig,
    load_platform_config,
)
from mlops_guardrails.vocabulary import POOL_LABEL, SYSTEM_POOL, Taint

SYSTEM_NODES = {POOL_LABEL: SYSTEM_POOL}


def platform_tags(config: PlatformConfig, *, stack: str, project: str) -> dict[str, str]:
    """Tags on every taggable resource; the policy pack checks they match the stack."""
    return {
        **config.tags,
        "mlops:environment": config.environment,
        "mlops:stack": stack,
        "mlops:project": project,
        "managed-by": "pulumi",
    }


@dataclass(frozen=True)
class OnCluster:
    """How Kubernetes resources go on the cluster, and what Helm releases there wait for."""

    opts: pulumi.ResourceOptions
    system_ready: Sequence[pulumi.Resource]
    namespaces: Mapping[str, pulumi.Resource]

    def install_after(self, namespace: str) -> list[pulumi.Resource]:
        """The system nodes and CoreDNS, and the namespace when the stack makes it."""
        made = self.namespaces.get(namespace)
        return [*self.system_ready, *([made] if made is not None else [])]


class Platform:
    """The stack's resources, built in dependency order from one validated config."""

    def __init__(self, config: PlatformConfig, *, stack: str, project: str) -> None:
        self.config = config
        self.stack = stack
        self.project = project
        self.tags = platform_tags(config, stack=stack, project=project)
        self.protect = config.protect_stateful_resources
        self.cluster_name = config.cluster_name(project, stack)

    def key(
        self,
        name: str,
        purpose: str,
        *uses: KeyUse,
        opts: pulumi.ResourceOptions | None = None,
    ) -> KmsKey:
        return KmsKey(
            name,
            KmsKeyArgs(
                description=f"{self.project}/{self.stack}: {purpose}",
                deletion_window_days=self.config.kms.deletion_window_days,
                admin_role_arns=tuple(self.config.kms.admin_role_arns),
                uses=uses,
                tags=self.tags,
                protect=self.protect,
            ),
            opts=opts,
        )

    def artifact_storage(
        self,
        name: str,
        key: KmsKey,
        buckets: tuple[ArtifactBucketSpec, ...],
        opts: pulumi.ResourceOptions | None = None,
    ) -> ArtifactStorage:
        artifacts = self.config.artifacts
        return ArtifactStorage(
            name,
            ArtifactStorageArgs(
                kms_key_arn=key.arn,
                buckets=buckets,
                abort_incomplete_multipart_upload_days=(
                    artifacts.abort_incomplete_multipart_upload_days
                ),
                access_log_retention_days=artifacts.access_log_retention_days,
                tags=self.tags,
                protect=self.protect,
            ),
            opts=opts,
        )

    def replicas(self, storage: ArtifactStorage, key: KmsKey) -> None:
        """The buckets that must survive a region: replicas in the second region, under their
        own key, with their own access logs, as hardened as the sources."""
        artifacts = self.config.artifacts
        region = artifacts.replica_region
        if region is None:
            return
        in_region = pulumi.ResourceOptions(
            providers={"aws": aws.Provider("replica-region", region=region)}
        )
        replica_key = self.key(
            "replica",
            f"replicas of artifact buckets in {region}",
            KeyUse.S3_ACCESS_LOG_DELIVERY,
            opts=in_region,
        )
        wanted = set(artifacts.replicated_buckets)
        replicas = self.artifact_storage(
            "artifacts-replica",
            replica_key,
            # Replicas keep the sources' copies; their new objects start no pipeline.
            tuple(
                dataclasses.replace(b, publish_events=False)
                for b in self.artifact_buckets()
                if b.key in wanted
            ),
            opts=in_region,
        )
        BucketReplication(
            "artifacts-replication",
            BucketReplicationArgs(
                buckets=tuple(
                    ReplicatedBucket(
                        key=bucket,
                        source_name=storage.bucket_names[bucket],
                        source_arn=storage.bucket_arns[bucket],
                        replica_arn=replicas.bucket_arns[bucket],
                        source=storage,
                        replica=replicas,
                    )
                    for bucket in sorted(wanted)
                ),
                source_key_arn=key.arn,
                replica_key_arn=replica_key.arn,
                replica_region=region,
                tags=self.tags,
            ),
        )
        pulumi.export("replicaBucketNames", replicas.bucket_names)

    def artifact_events(self, storage: ArtifactStorage) -> ArtifactEvents | None:
        """A queue of each publishing bucket's new objects, under a key EventBridge may use."""
        buckets = sorted(k for k, b in self.config.artifacts.buckets.items() if b.events)
        if not buckets:
            return None
        key = self.key("events", "artifact event queues", KeyUse.EVENT_RULES)
        queues = {
            bucket: EventQueue(
                f"artifact-events-{bucket}",
                EventQueueArgs(
                    patterns={"created": s3_object_created(storage.bucket_names[bucket])},
                    description=f"{self.project}/{self.stack}: new objects in {bucket}",
                    retention_seconds=ARTIFACT_EVENT_RETENTION_SECONDS,
                    max_event_age_seconds=MAX_EVENT_AGE_SECONDS,
                    kms_key_arn=key.arn,
                    visibility_seconds=ARTIFACT_EVENT_VISIBILITY_SECONDS,
                    max_receive_count=ARTIFACT_EVENT_MAX_RECEIVES,
                    tags=self.tags,
                ),
            )
            for bucket in buckets
        }
        pulumi.export("artifactEventQueueUrls", {b: q.queue_url for b, q in queues.items()})
        pulumi.export("artifactEventQueueArns", {b: q.queue_arn for b, q in queues.items()})
        return ArtifactEvents(key=key, queues=queues)

    def artifact_buckets(self) -> tuple[ArtifactBucketSpec, ...]:
        artifacts = self.config.artifacts
        return tuple(
            ArtifactBucketSpec(
                key=bucket_key,
                purpose=bucket.purpose,
                publish_events=bucket.events,
                noncurrent_version_retention_days=(
                    bucket.noncurrent_version_retention_days
                    or artifacts.noncurrent_version_retention_days
                ),
            )
            for bucket_key, bucket in sorted(artifacts.buckets.items())
        )

    def feature_stores(self, cluster: EksCluster) -> FeatureStores | None:
        """SageMaker feature groups and Feast storage, sharing one key and bucket."""
        config = self.config.feature_store
        if not config.feature_groups and config.feast is None:
            return None
        store: SageMakerFeatureStore | None = None
        feast: FeastStore | None = None
        key = self.key(
            "features", "feature stores (online, offline, Feast)", KeyUse.S3_ACCESS_LOG_DELIVERY
        )
        retention = self.config.artifacts.noncurrent_version_retention_days
        storage = self.artifact_storage(
            "feature-store",
            key,
            (
                ArtifactBucketSpec(
                    "offline", "feature store offline records and Feast registry", retention
                ),
            ),
        )
        bucket_name, bucket_arn = storage.bucket_names["offline"], storage.bucket_arns["offline"]
        if config.feature_groups:
            store = SageMakerFeatureStore(
                "sagemaker-features",
                SageMakerFeatureStoreArgs(
                    groups=tuple(
                        FeatureGroupSpec(
                            key=name,
                            description=group.description,
                            record_identifier=group.record_identifier,
                            event_time=group.event_time,
                            features=dict(group.features),
                            online=group.online,
                            online_storage=group.online_storage,
                            online_ttl_days=group.online_ttl_days,
                            offline=group.offline,
                            table_format=group.table_format,
                            throughput=group.throughput,
                        )
                        for name, group in sorted(config.feature_groups.items())
                    ),
                    # The names feature groups and their Glue database go by (infra.names).
                    name_prefix=self.cluster_name,
                    kms_key_arn=key.arn,
                    offline_bucket_name=bucket_name,
                    offline_bucket_arn=bucket_arn,
                    tags=self.tags,
                    protect=self.protect,
                ),
            )
            pulumi.export("featureGroupNames", store.feature_group_names)
        if config.feast is not None:
            feast = FeastStore(
                "feast",
                FeastStoreArgs(
                    table_prefix=self.cluster_name,
                    project=config.feast.project,
                    feature_views=tuple(config.feast.feature_views),
                    kms_key_arn=key.arn,
                    registry_bucket_name=bucket_name,
                    registry_bucket_arn=bucket_arn,
                    cluster_name=cluster.cluster_name,
                    cluster_arn=cluster.cluster_arn,
                    permissions_boundary_arn=cluster.workload_boundary_arn,
                    server_namespace=config.feast.server_namespace,
                    server_service_account=config.feast.server_service_account,
                    tags=self.tags,
                    protect=self.protect,
                ),
            )
            pulumi.export("feastTableNames", feast.table_names)
            pulumi.export("feastRegistryPath", feast.registry_path)
            pulumi.export("feastServerRoleArn", feast.server_role_arn)
            pulumi.export("feastFeatureStoreYaml", feast.feature_store_yaml)
        return FeatureStores(key=key, sagemaker=store, feast=feast)

    def experiment_tracking(
        self, artifacts: tuple[ArtifactStorage, KmsKey]
    ) -> ExperimentTracking | None:
        """The managed MLflow server, its artifacts under a prefix of an artifact bucket."""
        config = self.config.experiment_tracking
        if config is None:
            return None
        storage, key = artifacts
        tracking = ExperimentTracking(
            "tracking",
            ExperimentTrackingArgs(
                server_name=names.tracking_server_name(self.cluster_name),
                bucket_name=storage.bucket_names[config.bucket],
                bucket_arn=storage.bucket_arns[config.bucket],
                prefix=config.prefix,
                kms_key_arn=key.arn,
                size=config.size,
                maintenance_window=config.maintenance_window,
                mlflow_version=config.mlflow_version,
                automatic_model_registration=config.automatic_model_registration,
                tags=self.tags,
                protect=self.protect,
            ),
        )
        pulumi.export("mlflowTrackingServerArn", tracking.server_arn)
        pulumi.export("mlflowTrackingServerUrl", tracking.server_url)
        pulumi.export("mlflowArtifactUri", tracking.artifact_uri)
        return tracking

    def workload_roles(self, cluster: EksCluster, data: Grantable) -> dict[str, pulumi.Output[str]]:
        """One role per workload, granted exactly the data it names in config."""
        region = aws.get_region_output().region
        storage, artifacts_key = data.artifacts
        registry, features, tracking, events = (
            data.registry,
            data.features,
            data.tracking,
            data.events,
        )
        roles = {}
        for name, workload in sorted(self.config.workloads.items()):
            grants: dict[str, Any] = {
                "region": region,
                "buckets": [
                    {
                        "arn": storage.bucket_arns[grant.bucket],
                        "key": artifacts_key.arn,
                        "write": grant.access == "read-write",
                        "prefix": grant.prefix,
                    }
                    for grant in workload.buckets
                ],
                "repositories": [
                    {
                        "arn": registry[0].repository_arns[repo],
                        "key": registry[1].arn,
                        "push": access == "push",
                    }
                    for repo, access in sorted(workload.repositories.items())
                    if registry is not None
                ],
                "feature_groups": [
                    {
                        "arn": features.sagemaker.feature_group_arns[group],
                        "key": features.key.arn,
                        "write": access == "read-write",
                    }
                    for group, access in sorted(workload.feature_groups.items())
                    if features is not None and features.sagemaker is not None
                ],
                "tables": [
                    {
                        "arn": features.feast.table_arns[view],
                        "key": features.key.arn,
                        "write": access == "read-write",
                    }
                    for view, access in sorted(workload.feast_views.items())
                    if features is not None and features.feast is not None
                ],
                "queues": [
                    {"arn": events.queues[bucket].queue_arn, "key": events.key.arn}
                    for bucket in workload.artifact_events
                    if events is not None
                ],
                "tracking": (
                    {
                        "arn": tracking.server_arn,
                        "bucket": storage.bucket_arns[self.config.experiment_tracking.bucket],
                        "key": artifacts_key.arn,
                        "write": workload.experiment_tracking == "read-write",
                        "prefix": self.config.experiment_tracking.prefix,
                    }
                    if tracking is not None
                    and self.config.experiment_tracking is not None
                    and workload.experiment_tracking is not None
                    else None
                ),
            }
            role = PodRole(
                f"workload-{name}",
                PodRoleArgs(
                    cluster_name=cluster.cluster_name,
                    cluster_arn=cluster.cluster_arn,
                    namespace=workload.namespace,
                    service_account=workload.service_account,
                    permissions_boundary_arn=cluster.workload_boundary_arn,
                    inline_policy=pulumi.Output.from_input(grants).apply(_workload_document),
                    irsa=(
                        IrsaBinding(
                            oidc_provider_arn=cluster.oidc_provider_arn,
                            issuer=cluster.oidc_issuer_url,
                        )
                        if workload.binding == "irsa"
                        else None
                    ),
                    tags={**self.tags, "mlops:workload": name},
                ),
            )
            roles[name] = role.role_arn
        return roles

    def network(self, logs_key: KmsKey) -> NetworkRef:
        network = self.config.network
        if isinstance(network, ExistingNetworkMode):
            given = network.existing
            return NetworkRef(
                vpc_id=given.vpc_id,
                private_subnet_ids=[subnet.id for subnet in given.private_subnets],
                public_subnet_ids=[subnet.id for subnet in given.public_subnets],
                public_subnet_cidrs=pulumi.Output.all(
                    *(
                        aws.ec2.get_subnet_output(id=subnet.id).cidr_block
                        for subnet in given.public_subnets
                    )
                ),
                private_subnet_zones=[subnet.zone for subnet in given.private_subnets],
            )
        return Network(
            "network",
            NetworkArgs(
                vpc_cidr=network.vpc_cidr,
                availability_zones=network.availability_zones,
                nat_per_az=network.nat_gateways == "per-az",
                private_subnet_cidrs=network.private_subnet_cidrs,
                public_subnet_cidrs=network.public_subnet_cidrs,
                interface_endpoints=tuple(network.interface_endpoints),
                flow_log_retention_days=network.flow_log_retention_days,
                logs_kms_key_arn=logs_key.arn,
                cluster_name=self.cluster_name,
                tags=self.tags,
                protect=self.protect,
            ),
        ).ref

    def cluster(self, network: NetworkRef, logs_key: KmsKey, ebs_key: KmsKey) -> EksCluster:
        eks = self.config.eks
        nodes = eks.system_nodes
        return EksCluster(
            "eks",
            EksClusterArgs(
                cluster_name=self.cluster_name,
                kubernetes_version=eks.version,
                network=network,
                public_endpoint=eks.endpoint.public_access,
                public_access_cidrs=tuple(eks.endpoint.public_access_cidrs),
                private_access_cidrs=tuple(eks.endpoint.private_access_cidrs),
                log_types=tuple(eks.log_types),
                log_retention_days=eks.log_retention_days,
                logs_kms_key_arn=logs_key.arn,
                ebs_kms_key_arn=ebs_key.arn,
                secrets_key_deletion_window_days=self.config.kms.deletion_window_days,
                key_admin_role_arns=tuple(self.config.kms.admin_role_arns),
                addons={name: addon.version for name, addon in eks.addons.items()},
                system_nodes=SystemNodes(
                    instance_types=tuple(nodes.instance_types),
                    ami_release=eks.node_ami_release,
                    min_size=nodes.min_size,
                    desired_size=nodes.desired_size,
                    max_size=nodes.max_size,
                    root_volume=nodes.root_volume,
                ),
                access=tuple(
                    AccessGrant(
                        key=key,
                        principal_arn=entry.principal_arn,
                        access=entry.access,
                        namespaces=tuple(entry.namespaces),
                    )
                    for key, entry in sorted(eks.access.items())
                ),
                deployer_role_name=(
                    eks.deployer_role_name if eks.deployer_is_cluster_admin else None
                ),
                upgrade_support=eks.upgrade_support,
                zonal_shift=eks.zonal_shift,
                deletion_protection=eks.deletion_protection,
                tags=self.tags,
                protect=self.protect,
            ),
        )

    def deploy_runner(self, network: NetworkRef, cluster: EksCluster, logs_key: KmsKey) -> None:
        runner = self.config.eks.endpoint.deploy_runner
        if runner is None:
            return
        deploy_runner = self.runner("deploy-runner", runner.repository, network, cluster, logs_key)
        pulumi.export("deployRunnerProject", deploy_runner.project_name)

    def runner(
        self,
        name: str,
        repository: str,
        network: NetworkRef,
        cluster: EksCluster,
        logs_key: KmsKey,
    ) -> DeployRunner:
        """An in-VPC runner for one repository's jobs, as the stack's deployRunner sets."""
        runner = self.config.eks.endpoint.deploy_runner
        assert runner is not None
        return DeployRunner(
            name,
            DeployRunnerArgs(
                repository=repository,
                connection_name=runner.connection_name,
                network=network,
                cluster_security_group_id=cluster.security_group_id,
                kms_key_arn=logs_key.arn,
                log_retention_days=runner.log_retention_days,
                compute_type=runner.compute_type,
                build_timeout_minutes=runner.build_timeout_minutes,
                tags=self.tags,
                protect=self.protect,
            ),
        )

    def kubernetes(self, cluster: EksCluster, ebs_key: KmsKey) -> OnCluster:
        """The baseline, and how further Kubernetes resources go on the cluster."""
        provider = k8s.Provider("eks", kubeconfig=cluster.kubeconfig)
        opts = pulumi.ResourceOptions(providers={"kubernetes": provider})
        baseline = KubernetesBaseline(
            "baseline",
            KubernetesBaselineArgs(
                ebs_kms_key_arn=ebs_key.arn,
                namespaces=tuple(self.config.eks.namespaces),
                labels={"mlops.platform/stack": self.stack},
                retain_volumes=self.protect,
            ),
            opts=opts,
        )
        return OnCluster(opts, cluster.system_ready, baseline.namespaces)

    def gpu_pools(
        self,
        cluster: EksCluster,
        network: NetworkRef,
        ebs_key: KmsKey,
        on_cluster: OnCluster,
    ) -> None:
        gpu = self.config.gpu
        release = self.config.eks.node_ami_release
        specs = [pool_spec(name, pool, release) for name, pool in sorted(gpu.pools.items())]
        if specs and gpu.backend == "karpenter":
            self.karpenter_pools(specs, cluster, network, ebs_key, on_cluster)
        elif specs:
            self.node_group_pools(specs, cluster, network, ebs_key, on_cluster)
        # What a model team's project needs to place a server on a pool (ModelService).
        pulumi.export(
            "gpuPools",
            {
                spec.name: {
                    "purpose": spec.purpose,
                    "resource": spec.hardware.resource_name,
                    "taints": [asdict(taint) for taint in spec.node_taints],
                }
                for spec in specs
            },
        )
        if specs:
            GpuSoftware(
                "gpu-software",
                GpuSoftwareArgs(
                    vendors=sorted({spec.hardware.vendor for spec in specs}),
                    time_slicing={
                        s.name: s.time_slicing_replicas
                        for s in specs
                        if s.time_slicing_replicas is not None
                    },
                    nvidia_device_plugin=gpu.charts.contract("nvidia_device_plugin"),
                    dcgm_exporter=gpu.charts.contract("dcgm_exporter"),
                    neuron_device_plugin=gpu.charts.contract("neuron_device_plugin"),
                    efa_device_plugin=(
                        gpu.charts.contract("efa_device_plugin")
                        if any(spec.efa for spec in specs)
                        else None
                    ),
                    install_after=on_cluster.install_after(GPU_SOFTWARE_NAMESPACE),
                ),
                opts=on_cluster.opts,
            )

    def team_namespaces(self, network: NetworkRef, on_cluster: OnCluster) -> TeamNamespaces | None:
        teams = self.config.gpu.teams
        if not teams:
            return None
        bindings: dict[str, set[AwsBinding]] = {}
        for workload in self.config.workloads.values():
            bindings.setdefault(workload.namespace, set()).add(workload.binding)
        feast = self.config.feature_store.feast
        if feast is not None:
            bindings.setdefault(feast.server_namespace, set()).add("pod-identity")
        for name, team in teams.items():
            if team.serves_models:
                bindings.setdefault(name, set()).add("pod-identity")
        namespaces = TeamNamespaces(
            "teams",
            TeamNamespacesArgs(
                teams={
                    name: Team(
                        quota=TeamQuota(gpus=team.gpu_quota, neuron_devices=team.neuron_quota),
                        aws_bindings=frozenset(bindings.get(name, ())),
                        ingress=tuple(
                            IngressRule(
                                ports=tuple(rule.ports),
                                namespaces=tuple(rule.from_namespaces),
                                cidrs=_ingress_cidrs(rule, network),
                            )
                            for rule in team.ingress
                        ),
                        scraped_ports=(
                            sorted({port for rule in team.ingress for port in rule.ports})
                            if team.serves_models
                            else ()
                        ),
                    )
                    for name, team in teams.items()
                },
                metrics_namespace=METRICS_NAMESPACE,
                labels={"mlops.platform/stack": self.stack},
            ),
            opts=on_cluster.opts,
        )
        pulumi.export("teamNamespaces", sorted(teams))
        # What a serving team's model services may answer on: its namespace admits its callers,
        # load balancers and the metrics agent there, and only there.
        pulumi.export(
            "teamServingPorts",
            {
                name: sorted({port for rule in team.ingress for port in rule.ports})
                for name, team in teams.items()
                if team.serves_models
            },
        )
        return namespaces

    def team_deployers(
        self,
        cluster: EksCluster,
        *,
        metrics: GpuMonitoring,
        namespaces: TeamNamespaces | None,
        on_cluster: OnCluster,
        reach: tuple[NetworkRef, KmsKey],
        grantable: Grantable,
    ) -> None:
        teams = self.config.gpu.teams
        deploying = {name: team.deployer for name, team in teams.items() if team.deployer}
        if not deploying:
            return
        storage, artifacts_key = grantable.artifacts
        reads = TeamReads(
            bucket_arns=pulumi.Output.all(*storage.bucket_arns.values()).apply(sorted),
            key_arn=artifacts_key.arn,
            tracking_server_arn=(
                grantable.tracking.server_arn if grantable.tracking is not None else None
            ),
        )
        provider_arn = github_actions_provider_arn(
            create=self.config.github_oidc_provider == "create", tags=self.tags
        )
        deployers = {
            name: TeamDeployer(
                f"team-deployer-{name}",
                TeamDeployerArgs(
                    team=name,
                    github=GitHubEnvironments(
                        repository=deployer.repository,
                        environments=tuple(deployer.environments),
                    ),
                    oidc_provider_arn=provider_arn,
                    cluster_name=cluster.cluster_name,
                    cluster_arn=cluster.cluster_arn,
                    reads=reads,
                    workspace_arn=metrics.workspace_arn,
                    tags=self.tags,
                    namespace_ready=[namespaces] if namespaces is not None else [],
                ),
                opts=on_cluster.opts,
            )
            for name, deployer in sorted(deploying.items())
        }
        pulumi.export("teamDeployerRoleArns", {name: d.role_arn for name, d in deployers.items()})
        pulumi.export("teamBoundaryArns", {name: d.boundary_arn for name, d in deployers.items()})
        if self.config.eks.endpoint.deploy_runner is not None:
            # A private API is reached from inside the VPC only: each team's jobs get a runner
            # of their own there, as the platform's have.
            network, logs_key = reach
            runners = {
                name: self.runner(
                    f"team-runner-{name}", deployer.repository, network, cluster, logs_key
                )
                for name, deployer in sorted(deploying.items())
            }
            pulumi.export(
                "teamDeployRunnerProjects", {name: r.project_name for name, r in runners.items()}
            )

    def model_serving(
        self,
        cluster: EksCluster,
        network: NetworkRef,
        metrics: GpuMonitoring,
        on_cluster: OnCluster,
    ) -> None:
        """What model services need once a team serves models: the agent that scrapes them,
        the autoscaler that scales them on their load, the traffic router and the controller
        that moves a canary's traffic by it."""
        if not self.config.gpu.serves_models:
            return
        charts = self.config.gpu.charts

        def install(chart: str, namespace: str) -> ControllerInstall:
            return ControllerInstall(
                chart=charts.contract(chart),
                cluster_name=cluster.cluster_name,
                cluster_arn=cluster.cluster_arn,
                permissions_boundary_arn=cluster.workload_boundary_arn,
                node_selector=SYSTEM_NODES,
                install_after=on_cluster.install_after(namespace),
                tags=self.tags,
            )

        region = aws.get_region_output().region
        MetricsAgent(
            "metrics-agent",
            MetricsAgentArgs(
                install=install("prometheus_agent", METRICS_NAMESPACE),
                workspace_arn=metrics.workspace_arn,
                workspace_url=metrics.workspace_url,
                region=region,
                namespace=METRICS_NAMESPACE,
                scraped_namespaces=sorted(
                    name for name, team in self.config.gpu.teams.items() if team.serves_models
                ),
            ),
            opts=on_cluster.opts,
        )
        Keda(
            "keda",
            KedaArgs(install=install("keda", KEDA_NAMESPACE), workspace_arn=metrics.workspace_arn),
            opts=on_cluster.opts,
        )
        LoadBalancerController(
            "load-balancer-controller",
            LoadBalancerControllerArgs(
                install=install("aws_load_balancer_controller", LOAD_BALANCER_CONTROLLER_NAMESPACE),
                vpc_id=network.vpc_id,
            ),
            opts=on_cluster.opts,
        )
        ArgoRollouts(
            "argo-rollouts",
            ArgoRolloutsArgs(
                install=install("argo_rollouts", ARGO_ROLLOUTS_NAMESPACE),
                irsa=IrsaBinding(
                    oidc_provider_arn=cluster.oidc_provider_arn, issuer=cluster.oidc_issuer_url
                ),
                workspace_arn=metrics.workspace_arn,
                region=region,
            ),
            opts=on_cluster.opts,
        )

    def node_group_pools(
        self,
        specs: list[GpuPoolSpec],
        cluster: EksCluster,
        network: NetworkRef,
        ebs_key: KmsKey,
        on_cluster: OnCluster,
    ) -> None:
        subnets = pulumi.Output.from_input(network.private_subnet_ids)
        for spec in specs:
            zone = self.config.gpu.pools[spec.name].zone
            GpuNodePool(
                f"gpu-{spec.name}",
                GpuNodePoolArgs(
                    spec=spec,
                    cluster_name=cluster.cluster_name,
                    node_role_arn=cluster.node_role_arn,
                    subnet_ids=[subnets[zone - 1]] if zone else subnets,
                    cluster_security_group_id=cluster.security_group_id,
                    ebs_kms_key_arn=ebs_key.arn,
                    tags=self.tags,
                ),
            )
        ClusterAutoscaler(
            "cluster-autoscaler",
            ClusterAutoscalerArgs(
                cluster_name=self.cluster_name,
                cluster_arn=cluster.cluster_arn,
                permissions_boundary_arn=cluster.workload_boundary_arn,
                chart=self.config.gpu.charts.contract("cluster_autoscaler"),
                kubernetes_version=self.config.eks.version,
                node_selector=SYSTEM_NODES,
                install_after=on_cluster.install_after(AUTOSCALER_NAMESPACE),
                tags=self.tags,
            ),
            opts=on_cluster.opts,
        )

    def karpenter_pools(
        self,
        specs: list[GpuPoolSpec],
        cluster: EksCluster,
        network: NetworkRef,
        ebs_key: KmsKey,
        on_cluster: OnCluster,
    ) -> None:
        karpenter = Karpenter(
            "karpenter",
            KarpenterArgs(
                cluster_name=self.cluster_name,
                cluster_arn=cluster.cluster_arn,
                cluster_endpoint=cluster.endpoint,
                node_role_arn=cluster.node_role_arn,
                ebs_kms_key_arn=ebs_key.arn,
                permissions_boundary_arn=cluster.workload_boundary_arn,
                chart=self.config.gpu.charts.contract("karpenter"),
                node_selector=SYSTEM_NODES,
                install_after=on_cluster.install_after(KARPENTER_NAMESPACE),
                tags=self.tags,
            ),
            opts=on_cluster.opts,
        )
        subnets = pulumi.Output.from_input(network.private_subnet_ids)
        zones = pulumi.Output.from_input(network.private_subnet_zones)
        for spec in specs:
            zone = self.config.gpu.pools[spec.name].zone
            used = [zone - 1] if zone else range(self.config.network.availability_zones)
            KarpenterNodePool(
                f"gpu-{spec.name}",
                KarpenterNodePoolArgs(
                    spec=spec,
                    cluster_name=self.cluster_name,
                    node_role_arn=cluster.node_role_arn,
                    ebs_kms_key_arn=ebs_key.arn,
                    zones=[zones[i] for i in used],
                    subnet_ids=[subnets[i] for i in used],
                    tags=self.tags,
                    karpenter_release=karpenter.release,
                ),
                opts=on_cluster.opts,
            )


def alerting(platform: Platform, key: KmsKey) -> AlertTopic:
    """The alert topic, and the environment's budget alerting to it."""
    config = platform.config
    topic = AlertTopic(
        "alerts",
        AlertTopicArgs(
            kms_key_arn=key.arn,
            subscriptions=tuple(
                AlertSubscription(s.protocol, s.endpoint, identity=s.endpoint)
                if s.endpoint is not None
                else AlertSubscription(
                    s.protocol,
                    pulumi.Config().require_secret(str(s.endpoint_secret)),
                    identity=f"secret:{s.endpoint_secret}",
                )
                for s in config.monitoring.subscriptions
            ),
            tags=platform.tags,
        ),
    )
    CostBudget(
        "cost",
        CostBudgetArgs(
            monthly_limit_usd=config.cost.monthly_budget_usd,
            actual_alert_percents=tuple(config.cost.alert_at_percent),
            forecast_alert_percents=tuple(config.cost.forecast_alert_at_percent),
            alert_topic_arn=topic.arn,
            scope=config.cost.scope,
            environment=config.environment,
            tags=platform.tags,
        ),
    )
    return topic


def gpu_monitoring(
    platform: Platform,
    cluster: EksCluster,
    network: NetworkRef,
    alerts: tuple[KmsKey, AlertTopic],
    on_cluster: OnCluster,
) -> GpuMonitoring:
    key, topic = alerts
    config = platform.config
    monitoring = config.monitoring
    metrics = GpuMonitoring(
        "monitoring",
        GpuMonitoringArgs(
            cluster_name=cluster.cluster_name,
            cluster_arn=cluster.cluster_arn,
            subnet_ids=network.private_subnet_ids,
            cluster_security_group_id=cluster.security_group_id,
            kms_key_arn=key.arn,
            alert_topic_arn=topic.arn,
            pools=tuple(
                MonitoredPool(
                    name=name,
                    resource=RESOURCE_NAMES[pool_hardware(pool.instance_types).vendor],
                    ceiling=pool.max_gpus,
                    shares=pool.time_slicing_replicas or 1,
                )
                for name, pool in sorted(config.gpu.pools.items())
            ),
            thresholds=AlertThresholds(
                gpu_idle_minutes=monitoring.gpu_idle_minutes,
                gpu_idle_utilization_percent=monitoring.gpu_idle_utilization_percent,
                node_not_ready_minutes=monitoring.node_not_ready_minutes,
                at_ceiling_minutes=monitoring.at_ceiling_minutes,
            ),
            metrics_namespace=METRICS_NAMESPACE,
            rollouts_namespace=ARGO_ROLLOUTS_NAMESPACE if config.gpu.serves_models else None,
            kube_state_metrics=config.gpu.charts.contract("kube_state_metrics"),
            install_after=on_cluster.install_after(METRICS_NAMESPACE),
            kubernetes_version=config.eks.version,
            node_selector=SYSTEM_NODES,
            log_retention_days=config.eks.log_retention_days,
            tags=platform.tags,
            protect=platform.protect,
        ),
        opts=on_cluster.opts,
    )
    pulumi.export("prometheusWorkspaceArn", metrics.workspace_arn)
    # What team projects' alert rules and canary analyses address.
    pulumi.export("prometheusWorkspaceId", metrics.workspace_id)
    pulumi.export("prometheusWorkspaceUrl", metrics.workspace_url)
    return metrics


def model_registry(platform: Platform, key: KmsKey) -> ModelRegistry:
    registries = platform.config.registries
    return ModelRegistry(
        "registry",
        ModelRegistryArgs(
            repositories=tuple(
                RepositorySpec(
                    key=name,
                    keep_tagged_images=repository.keep_tagged_images,
                    untagged_days=repository.untagged_days,
                )
                for name, repository in sorted(registries.repositories.items())
            ),
            kms_key_arn=key.arn,
            continuous_scanning=registries.continuous_scanning,
            owns_registry_scanning=registries.owns_registry_scanning,
            tags=platform.tags,
            protect=platform.protect,
        ),
    )


# A pipeline has SQS's default four days to take a new object, and five tries at it before
# the message moves to the dead-letter queue, where it stays 14 days.
ARTIFACT_EVENT_RETENTION_SECONDS = 4 * 24 * 3600
ARTIFACT_EVENT_MAX_RECEIVES = 5
# A pipeline's consumer starts a run (a workflow dispatch, a `pulumi up`) per message: five
# minutes before another consumer may take the message again.
ARTIFACT_EVENT_VISIBILITY_SECONDS = 300


@dataclass(frozen=True)
class ArtifactEvents:
    key: KmsKey
    queues: dict[str, EventQueue]


@dataclass(frozen=True)
class Grantable:
    """What the stack holds that a workload may be granted."""

    artifacts: tuple[ArtifactStorage, KmsKey]
    registry: tuple[ModelRegistry, KmsKey] | None
    features: FeatureStores | None
    tracking: ExperimentTracking | None
    events: ArtifactEvents | None


@dataclass(frozen=True)
class FeatureStores:
    key: KmsKey
    sagemaker: SageMakerFeatureStore | None
    feast: FeastStore | None


def _workload_document(grants: dict[str, Any]) -> dict[str, Any]:
    return workload_policy(
        region=grants["region"],
        buckets=[
            BucketGrant(g["arn"], g["key"], g["write"], g["prefix"]) for g in grants["buckets"]
        ],
        repositories=[
            RepositoryGrant(g["arn"], g["key"], g["push"]) for g in grants["repositories"]
        ],
        feature_groups=[
            TableGrant(g["arn"], g["key"], g["write"]) for g in grants["feature_groups"]
        ],
        tables=[TableGrant(g["arn"], g["key"], g["write"]) for g in grants["tables"]],
        tracking=(
            None
            if (t := grants["tracking"]) is None
            else TrackingGrant(
                t["arn"], BucketGrant(t["bucket"], t["key"], t["write"], t["prefix"])
            )
        ),
        queues=[QueueGrant(g["arn"], g["key"]) for g in grants["queues"]],
    )


def _ingress_cidrs(rule: IngressRuleConfig, network: NetworkRef) -> pulumi.Output[list[str]]:
    """The addresses a rule admits: those it names, and the public subnets when asked."""

    def with_public(public: Sequence[str]) -> list[str]:
        return [*rule.from_cidrs, *public]

    public = network.public_subnet_cidrs if rule.from_public_subnets else []
    return pulumi.Output.from_input(public).apply(with_public)


def pool_spec(name: str, pool: GpuPoolConfig, cluster_release: AmiRelease) -> GpuPoolSpec:
    """A validated pool config as the backend-independent spec the components take; the pool
    runs the cluster's AMI release unless it holds its own."""
    return GpuPoolSpec(
        name=name,
        purpose=pool.purpose,
        instance_types=tuple(pool.instance_types),
        hardware=pool_hardware(pool.instance_types),
        capacity=pool.capacity.type,
        reservation_id=pool.capacity.reservation_id,
        min_nodes=pool.min_nodes,
        desired_nodes=pool.desired_nodes,
        max_nodes=pool.max_nodes,
        max_accelerators=pool.max_gpus,
        root_volume=pool.root_volume,
        min_per_node=min(INSTANCE_TYPES[t].count for t in pool.instance_types),
        ami_release=AmiRelease(pool.ami_release) if pool.ami_release else cluster_release,
        efa=pool.efa,
        time_slicing_replicas=pool.time_slicing_replicas,
        labels=dict(pool.labels),
        taints=tuple(Taint(t.key, t.value, t.effect) for t in pool.taints),
    )


def build_platform(config: PlatformConfig, *, stack: str, project: str) -> None:
    platform = Platform(config, stack=stack, project=project)
    artifacts_key = platform.key(
        "artifacts", "S3 artifact buckets and their access logs", KeyUse.S3_ACCESS_LOG_DELIVERY
    )
    logs_key = platform.key(
        "logs", "VPC flow logs and EKS control-plane logs", KeyUse.CLOUDWATCH_LOGS
    )
    ebs_key = platform.key("ebs", "EKS node and persistent volumes", KeyUse.AUTOSCALING_EBS_VOLUMES)
    storage = platform.artifact_storage("artifacts", artifacts_key, platform.artifact_buckets())
    platform.replicas(storage, artifacts_key)
    network = platform.network(logs_key)
    cluster = platform.cluster(network, logs_key, ebs_key)
    platform.deploy_runner(network, cluster, logs_key)
    on_cluster = platform.kubernetes(cluster, ebs_key)
    platform.gpu_pools(cluster, network, ebs_key, on_cluster)
    namespaces = platform.team_namespaces(network, on_cluster)
    # No repositories, no registry and no key for it.
    registry = None
    if platform.config.registries.repositories:
        registry_key = platform.key("registry", "model images in ECR")
        registry = (model_registry(platform, registry_key), registry_key)
    features = platform.feature_stores(cluster)
    tracking = platform.experiment_tracking((storage, artifacts_key))
    events = platform.artifact_events(storage)
    grantable = Grantable((storage, artifacts_key), registry, features, tracking, events)
    workload_roles = platform.workload_roles(cluster, grantable)
    if workload_roles:
        pulumi.export("workloadRoleArns", workload_roles)
    monitoring_key = platform.key(
        "monitoring",
        "alert topic, metrics workspace and its logs",
        KeyUse.ALERT_PUBLISHERS,
        KeyUse.CLOUDWATCH_LOGS,
    )
    topic = alerting(platform, monitoring_key)
    metrics = gpu_monitoring(platform, cluster, network, (monitoring_key, topic), on_cluster)
    pulumi.export("alertTopicArn", topic.arn)
    platform.model_serving(cluster, network, metrics, on_cluster)
    platform.team_deployers(
        cluster,
        metrics=metrics,
        namespaces=namespaces,
        on_cluster=on_cluster,
        reach=(network, logs_key),
        grantable=grantable,
    )

    pulumi.export("environment", config.environment)
    pulumi.export("artifactKeyArn", artifacts_key.arn)
    pulumi.export("artifactBucketNames", storage.bucket_names)
    pulumi.export("artifactBucketArns", storage.bucket_arns)
    pulumi.export("accessLogBucketName", storage.access_log_bucket_name)
    pulumi.export("vpcId", network.vpc_id)
    pulumi.export("privateSubnetIds", network.private_subnet_ids)
    # Where load balancers go: team namespaces admit them there (fromPublicSubnets).
    pulumi.export("publicSubnetIds", network.public_subnet_ids)
    pulumi.export("region", aws.get_region_output().region)
    pulumi.export("clusterName", cluster.cluster_name)
    pulumi.export("clusterArn", cluster.cluster_arn)
    pulumi.export("clusterEndpoint", cluster.endpoint)
    pulumi.export("oidcIssuerUrl", cluster.oidc_issuer_url)
    pulumi.export("oidcProviderArn", cluster.oidc_provider_arn)
    pulumi.export("nodeRoleArn", cluster.node_role_arn)
    pulumi.export("workloadBoundaryArn", cluster.workload_boundary_arn)
    pulumi.export("ebsKeyArn", ebs_key.arn)
    pulumi.export("kubeconfig", cluster.kubeconfig)
    pulumi.export("teamKubeconfig", cluster.caller_kubeconfig)
    if registry is not None:
        pulumi.export("repositoryUrls", registry[0].repository_urls)


def main() -> None:
    stack = pulumi.get_stack()
    project = pulumi.get_project()
    # Everything is validated before the first resource is registered: bad config changes nothing.
    config = load_platform_config(
        pulumi.Config().get_object(CONFIG_KEY),
        stack=stack,
        project=project,
        region=pulumi.Config("aws").get("region"),
        is_secret=pulumi.runtime.is_config_secret,
    )
    build_platform(config, stack=stack, project=project)
