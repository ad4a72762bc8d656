"""Component type tokens are part of every child's URN, and so of the state: they never change.

Each component writes its token as a literal (`mlops:<module>:<Class>`, as pulumi-eks writes
`eks:index:Cluster`); this list records them. Moving or renaming a module must not change a
token: if one has to change, it ships with `aliases` and an upgrade note, and this list changes
with it in the same review.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pulumi

import components
from mlops_platform.rendered import RenderedStack

RECORDED_TOKENS = {
    "AlertTopic": "mlops:alert_topic:AlertTopic",
    "ArgoRollouts": "mlops:argo_rollouts:ArgoRollouts",
    "ArtifactStorage": "mlops:artifact_storage:ArtifactStorage",
    "BucketReplication": "mlops:bucket_replication:BucketReplication",
    "ClusterAutoscaler": "mlops:cluster_autoscaler:ClusterAutoscaler",
    "CostBudget": "mlops:cost_budget:CostBudget",
    "DeployRunner": "mlops:deploy_runner:DeployRunner",
    "EksCluster": "mlops:eks_cluster:EksCluster",
    "EventQueue": "mlops:event_queue:EventQueue",
    "ExperimentTracking": "mlops:experiment_tracking:ExperimentTracking",
    "FeastStore": "mlops:feast_store:FeastStore",
    "GpuMonitoring": "mlops:gpu_monitoring:GpuMonitoring",
    "GpuNodePool": "mlops:gpu_node_pool:GpuNodePool",
    "GpuSoftware": "mlops:gpu_software:GpuSoftware",
    "Karpenter": "mlops:karpenter:Karpenter",
    "KarpenterNodePool": "mlops:karpenter:KarpenterNodePool",
    "Keda": "mlops:keda:Keda",
    "KmsKey": "mlops:kms_key:KmsKey",
    "MetricsAgent": "mlops:metrics_agent:MetricsAgent",
    "LoadBalancerController": "mlops:load_balancer_controller:LoadBalancerController",
    "KubernetesBaseline": "mlops:kubernetes_baseline:KubernetesBaseline",
    "ModelRegistry": "mlops:model_registry:ModelRegistry",
    "ModelService": "mlops:model_service:ModelService",
    "Network": "mlops:network:Network",
    "NodePool": "mlops:node_pool:NodePool",
    "PodRole": "mlops:pod_role:PodRole",
    "SageMakerFeatureStore": "mlops:sagemaker_feature_store:SageMakerFeatureStore",
    "SecureBucket": "mlops:secure_bucket:SecureBucket",
    "TeamDeployer": "mlops:team_deployer:TeamDeployer",
    "TeamNamespaces": "mlops:team_namespaces:TeamNamespaces",
}


def component_classes() -> set[str]:
    found = set()
    for module_info in pkgutil.iter_modules(components.__path__):
        module = importlib.import_module(f"components.{module_info.name}")
        found |= {
            name
            for name, cls in inspect.getmembers(module, inspect.isclass)
            if issubclass(cls, pulumi.ComponentResource) and cls.__module__ == module.__name__
        }
    return found


def test_every_component_class_has_a_recorded_token() -> None:
    assert component_classes() == set(RECORDED_TOKENS)


# Components model teams instantiate in their own projects, not the platform's stacks.
TEAM_COMPONENTS = {"ModelService"}


def test_the_stacks_register_exactly_the_recorded_tokens(
    rendered_stacks: dict[str, RenderedStack],
) -> None:
    """Across the stacks every platform component is used (Karpenter only in staging)."""
    seen = {
        r.type
        for rendered in rendered_stacks.values()
        for r in rendered.resources
        if r.type.startswith("mlops:")
    }
    assert seen == {t for c, t in RECORDED_TOKENS.items() if c not in TEAM_COMPONENTS}
