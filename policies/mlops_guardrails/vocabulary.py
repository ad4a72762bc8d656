"""Facts the policy pack and the platform both rely on, defined here once.

The pack owns them and ships them; the platform (`infra/`, `components/`, `mlops_platform/`)
imports them from here, never the reverse, so the pack still runs alone from `policies/` under the
Pulumi CLI. This module imports nothing beyond the standard library: the stack program loads it.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Final, Literal

STATEFUL_TYPES: Final = frozenset(
    {
        "aws:s3/bucket:Bucket",
        "aws:kms/key:Key",
        "aws:dynamodb/table:Table",
        "aws:ecr/repository:Repository",
        "aws:sagemaker/featureGroup:FeatureGroup",
        # Experiments, runs and registered models live in the server: not in any bucket.
        "aws:sagemaker/mlflowTrackingServer:MlflowTrackingServer",
        "aws:cloudwatch/logGroup:LogGroup",
        "aws:eks/cluster:Cluster",
        "aws:amp/workspace:Workspace",
    }
)
"""Types that hold data or identity a redeploy cannot recreate: protected in staging and prod."""

TAGGABLE_TYPES: Final = STATEFUL_TYPES | frozenset(
    {
        "aws:iam/role:Role",
        "aws:iam/policy:Policy",
        "aws:iam/openIdConnectProvider:OpenIdConnectProvider",
        "aws:eks/nodeGroup:NodeGroup",
        "aws:eks/addon:Addon",
        "aws:eks/accessEntry:AccessEntry",
        "aws:eks/podIdentityAssociation:PodIdentityAssociation",
        "aws:ec2/launchTemplate:LaunchTemplate",
        "aws:ec2/vpc:Vpc",
        "aws:ec2/subnet:Subnet",
        "aws:ec2/natGateway:NatGateway",
        "aws:ec2/eip:Eip",
        "aws:ec2/internetGateway:InternetGateway",
        "aws:ec2/routeTable:RouteTable",
        "aws:ec2/securityGroup:SecurityGroup",
        "aws:ec2/vpcEndpoint:VpcEndpoint",
        "aws:ec2/flowLog:FlowLog",
        "aws:sqs/queue:Queue",
        "aws:sns/topic:Topic",
        "aws:cloudwatch/eventRule:EventRule",
        "aws:cloudwatch/metricAlarm:MetricAlarm",
        "aws:glue/catalogDatabase:CatalogDatabase",
        "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup",
        "aws:ec2/placementGroup:PlacementGroup",
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
        "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
        "aws:codebuild/project:Project",
        "aws:amp/scraper:Scraper",
        "aws:amp/ruleGroupNamespace:RuleGroupNamespace",
        "aws:budgets/budget:Budget",
    }
)
"""Types that carry the platform's tags (the required-tags rule and cost allocation)."""

KubernetesVersion = Literal["1.34", "1.35", "1.36"]
KUBERNETES_VERSIONS: Final[tuple[KubernetesVersion, ...]] = typing.get_args(KubernetesVersion)
"""Kubernetes minors in EKS standard support on 2026-11-22 (1.34's ends on 2026-12-02)."""

ControlPlaneLogType = Literal["api", "audit", "authenticator", "controllerManager", "scheduler"]
CONTROL_PLANE_LOG_TYPES: Final[tuple[ControlPlaneLogType, ...]] = typing.get_args(
    ControlPlaneLogType
)
"""Every EKS control-plane log type, in the order the EKS API lists them."""

POOL_LABEL: Final = "mlops.platform/pool"
"""Every platform node's pool: `system`, or a GPU pool's name."""
PURPOSE_LABEL: Final = "mlops.platform/purpose"
ACCELERATOR_LABEL: Final = "mlops.platform/accelerator"
"""The accelerator vendor of a GPU pool's nodes; what the vendor's device plugin selects."""
SYSTEM_POOL: Final = "system"
AcceleratorVendor = Literal["nvidia", "neuron"]
ACCELERATOR_RESOURCES: Final[dict[str, str]] = {
    "nvidia": "nvidia.com/gpu",
    "neuron": "aws.amazon.com/neuron",
}
"""The extended resource each vendor's device plugin advertises; also its pools' taint key."""
EFA_LABEL: Final = "mlops.platform/efa"
"""On the nodes of a pool launched with EFA interfaces ("true"): what the EFA device plugin
selects."""
EFA_RESOURCE: Final = "vpc.amazonaws.com/efa"
"""What the EFA device plugin advertises, one per interface."""


@dataclass(frozen=True)
class Taint:
    """A node taint, in Kubernetes spelling."""

    key: str
    value: str
    effect: str
    """NoSchedule, NoExecute or PreferNoSchedule."""


EKS_TAINT_EFFECTS: Final = {
    "NoSchedule": "NO_SCHEDULE",
    "NoExecute": "NO_EXECUTE",
    "PreferNoSchedule": "PREFER_NO_SCHEDULE",
}
"""Kubernetes taint effects as the EKS node group API spells them."""

TEAM_LABEL: Final = "mlops.platform/team"
"""Marks a team namespace: default-deny networking with the exceptions its config names."""
INGRESS_ANNOTATION: Final = "mlops.platform/ingress"
"""A team namespace's declared callers (JSON: ports, fromNamespaces, fromCidrs per rule)."""
POD_IDENTITY_AGENT_CIDR: Final = "169.254.170.23/32"
POD_IDENTITY_AGENT_PORT: Final = 80
"""Where pods bound through EKS Pod Identity fetch credentials (EKS user guide, "Set up the
Amazon EKS Pod Identity Agent": link-local 169.254.170.23; the credentials URI is plain HTTP)."""

MODEL_SERVER_LABELS: Final = {"app.kubernetes.io/component": "model-server"}
"""What marks a model service's pods: the metrics agent scrapes these, and only these, in team
namespaces."""
MODEL_SERVER_PORT_NAME: Final = "http"
"""The container port a model server answers and reports its metrics on."""
SERVICE_METRIC_LABEL: Final = "model_service"
"""The label the metrics agent gives a model server's series: its pods' app.kubernetes.io/name."""
ROLLOUT_HASH_METRIC_LABEL: Final = "rollouts_pod_template_hash"
"""The label telling a canary's series from the stable version's: the hash Argo Rollouts gives
each version's pods."""

ELB_TLS_POLICIES: Final = frozenset(
    {
        "ELBSecurityPolicy-TLS13-1-3-2021-06",
        "ELBSecurityPolicy-TLS13-1-3-FIPS-2023-04",
        "ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
        "ELBSecurityPolicy-TLS13-1-2-Res-FIPS-2023-04",
        "ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09",
        "ELBSecurityPolicy-TLS13-1-3-PQ-2025-09",
        "ELBSecurityPolicy-TLS13-1-2-Res-FIPS-PQ-2025-09",
        "ELBSecurityPolicy-TLS13-1-3-FIPS-PQ-2025-09",
    }
)
"""HTTPS listener policies AWS Security Hub ELB.17 accepts (Config rule
elbv2-predefined-security-policy-ssl-check): TLS 1.3, and 1.2 only with strong ciphers."""

ALB_ANNOTATIONS: Final = "alb.ingress.kubernetes.io"
"""The prefix of the AWS Load Balancer Controller's Ingress annotations."""
DROP_INVALID_HEADERS: Final = "routing.http.drop_invalid_header_fields.enabled=true"
"""The ALB attribute that drops malformed header fields (AWS Security Hub ELB.4)."""
