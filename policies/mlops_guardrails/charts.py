"""Chart contracts: what the platform relies on about each Helm chart it installs, per version.

Each fact is read from that chart version's own source (the chart's public repository at the
release tag; the commit is named) and carried over as data: the workloads the chart renders with
its default values, where they schedule (required node affinity, node selector, tolerations), the
Pod Security level their pods need, the namespace the chart insists on, the CRDs it installs, the
image it runs and the Kubernetes minors it supports. The platform's config refuses a chart version
without a contract, and the pack's behaviour rules judge a plan's releases by these facts (the
values a release sets merged over the chart's defaults, as Helm merges them).

Standard library only: the stack program and the pack both load it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

PodSecurityLevel = Literal["restricted", "baseline", "privileged"]
POD_SECURITY_ORDER: Final[tuple[PodSecurityLevel, ...]] = ("restricted", "baseline", "privileged")
"""Least to most permissive (Kubernetes Pod Security Standards)."""


@dataclass(frozen=True)
class Requirement:
    """A node selector requirement (`matchExpressions` entry)."""

    key: str
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class Toleration:
    key: str | None
    operator: Literal["Exists", "Equal"] = "Exists"
    value: str = ""
    effect: str | None = None
    """None tolerates every effect."""


@dataclass(frozen=True)
class Workload:
    """A pod-running object the chart renders."""

    role: str
    kind: Literal["DaemonSet", "Deployment"]
    pod_security: PodSecurityLevel
    why: str
    """What in its pod spec sets that level."""
    values_path: str = ""
    """Where its `nodeSelector`, `affinity` and `tolerations` live in the chart's values."""
    node_affinity: tuple[tuple[Requirement, ...], ...] = ()
    """Default required node affinity: any one term, every requirement of the term."""
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Toleration, ...] = ()
    fixed_tolerations: tuple[Toleration, ...] = ()
    """Tolerations the template adds whatever the values say."""
    enabled_by: str | None = None
    """A values key that must be true for it to render; None: it always renders."""
    enabled_by_default: bool = True
    namespace: str | None = None
    """A namespace the chart puts it in whatever the release's namespace."""
    optional: bool = False
    """Runs only where other software labels nodes for it: landing nowhere is expected."""
    node_resource: str | None = None
    """The extended resource of the nodes it exists for (a device plugin advertises it, an
    exporter reads it): it must run on every node that has it. None: it has no business on
    accelerator nodes."""


@dataclass(frozen=True)
class ChartContract:
    chart: str
    version: str
    repository: str
    source: str
    """Repository, tag and commit the facts were read at."""
    verified: bool
    """False when that version's source could be read only in part; the README says so."""
    image: str
    kubernetes: tuple[str | None, str | None]
    """Lowest and highest Kubernetes minor the chart (with its default image) supports; None is
    no bound stated by the chart."""
    kubernetes_source: str
    workloads: tuple[Workload, ...]
    crds: tuple[str, ...] = ()
    crd_schemas: str | None = None
    """The facts file (`crds/` in the pack) holding the OpenAPI schemas and CEL rules of the
    CRDs it installs, for the custom resources the platform makes of them."""
    images_by_kubernetes: Mapping[str, str] = field(default_factory=dict)
    """For software built per Kubernetes minor: the image tag the platform runs on each minor,
    which then decides the minors supported instead of `kubernetes`."""


def minor(version: str) -> tuple[int, int]:
    major, minor_number = version.split(".")[:2]
    return int(major), int(minor_number)


def supports(contract: ChartContract, kubernetes: str) -> bool:
    if contract.images_by_kubernetes:
        return kubernetes in contract.images_by_kubernetes
    low, high = contract.kubernetes
    return (low is None or minor(low) <= minor(kubernetes)) and (
        high is None or minor(kubernetes) <= minor(high)
    )


def supported_kubernetes(contract: ChartContract) -> str:
    """The minors a contract supports, in words for an error message."""
    if contract.images_by_kubernetes:
        return ", ".join(sorted(contract.images_by_kubernetes, key=minor))
    low, high = contract.kubernetes
    if low and high:
        return f"{low} to {high}"
    return f"{low} and newer" if low else f"up to {high}" if high else "any"


_GPU_TOLERATION = Toleration("nvidia.com/gpu", effect="NoSchedule")
_CRITICAL = Toleration("CriticalAddonsOnly")

NVIDIA_DEVICE_PLUGIN = ChartContract(
    chart="nvidia-device-plugin",
    version="0.18.0",
    repository="https://nvidia.github.io/k8s-device-plugin",
    source="github.com/NVIDIA/k8s-device-plugin v0.18.0 (3c9ffca), deployments/helm/"
    "nvidia-device-plugin",
    verified=True,
    image="nvcr.io/nvidia/k8s-device-plugin:v0.18.0",
    kubernetes=("1.10", None),
    kubernetes_source="Chart.yaml:7 kubeVersion '>= 1.10.0-0'; no upper bound",
    workloads=(
        Workload(
            role="device-plugin",
            kind="DaemonSet",
            pod_security="privileged",
            why="hostPath /var/lib/kubelet/device-plugins, /run/nvidia/mps, /var/run/cdi; "
            "SYS_ADMIN added when config.map is set (templates/daemonset-device-plugin.yml)",
            # values.yaml:64-85: nodes labelled by node feature discovery or GPU feature
            # discovery, neither of which the chart deploys by default.
            node_affinity=(
                (Requirement("feature.node.kubernetes.io/pci-10de.present", "In", ("true",)),),
                (Requirement("feature.node.kubernetes.io/cpu-model.vendor_id", "In", ("NVIDIA",)),),
                (Requirement("nvidia.com/gpu.present", "In", ("true",)),),
            ),
            tolerations=(_CRITICAL, _GPU_TOLERATION),
            enabled_by="devicePlugin.enabled",
            node_resource="nvidia.com/gpu",
        ),
        Workload(
            role="mps-control-daemon",
            kind="DaemonSet",
            pod_security="privileged",
            why="privileged, hostPID (templates/daemonset-mps-control-daemon.yml)",
            node_affinity=(
                (Requirement("feature.node.kubernetes.io/pci-10de.present", "In", ("true",)),),
                (Requirement("feature.node.kubernetes.io/cpu-model.vendor_id", "In", ("NVIDIA",)),),
                (Requirement("nvidia.com/gpu.present", "In", ("true",)),),
            ),
            # Only nodes GPU feature discovery marks MPS-capable: none unless MPS sharing is set.
            node_selector={"nvidia.com/mps.capable": "true"},
            tolerations=(_CRITICAL, _GPU_TOLERATION),
            enabled_by="devicePlugin.enabled",
            optional=True,
            node_resource="nvidia.com/gpu",
        ),
        Workload(
            role="gpu-feature-discovery",
            kind="DaemonSet",
            pod_security="privileged",
            why="privileged, hostPath /sys and the NFD features directory",
            tolerations=(_CRITICAL, _GPU_TOLERATION),
            enabled_by="gfd.enabled",
            enabled_by_default=False,
            node_resource="nvidia.com/gpu",
        ),
    ),
)

DCGM_EXPORTER = ChartContract(
    chart="dcgm-exporter",
    version="4.1.3",
    repository="https://nvidia.github.io/dcgm-exporter/helm-charts",
    source="github.com/NVIDIA/dcgm-exporter 4.2.3-4.1.3 (dcbb927), deployment/",
    verified=True,
    image="nvcr.io/nvidia/k8s/dcgm-exporter:4.2.3-4.1.3-ubuntu22.04",
    kubernetes=("1.19", None),
    kubernetes_source="deployment/Chart.yaml:5 kubeVersion '>= 1.19.0-0'; no upper bound",
    workloads=(
        Workload(
            role="exporter",
            kind="DaemonSet",
            pod_security="privileged",
            why="hostPath /var/lib/kubelet/pod-resources and capability SYS_ADMIN "
            "(values.yaml, templates/daemonset.yaml): both forbidden by baseline",
            node_resource="nvidia.com/gpu",
        ),
    ),
)

# The chart's repository has no tag for 1.1.1; the commit whose Chart.yaml says 1.1.1 could be
# read only in part (its device-plugin DaemonSet template), the defaults below are 1.1.2's.
NEURON_DEVICE_PLUGIN = ChartContract(
    chart="neuron-helm-chart",
    version="1.1.1",
    repository="oci://public.ecr.aws/neuron/neuron-helm-chart",
    source="github.com/aws-neuron/neuron-helm-charts 53a6b9f (Chart.yaml 1.1.1; defaults read at "
    "1a1d41e, 1.1.2), charts/neuron-helm-chart",
    verified=False,
    image="public.ecr.aws/neuron/neuron-device-plugin (tag not readable at 1.1.1)",
    kubernetes=(None, None),
    kubernetes_source="Chart.yaml declares no kubeVersion",
    workloads=(
        Workload(
            role="device-plugin",
            kind="DaemonSet",
            pod_security="privileged",
            why="hostPath /var/lib/kubelet/device-plugins, /run, /opt/aws",
            values_path="devicePlugin",
            node_affinity=(
                (
                    Requirement(
                        "node.kubernetes.io/instance-type",
                        "In",
                        (
                            "trn1.2xlarge",
                            "trn1.32xlarge",
                            "trn1n.32xlarge",
                            "trn2.48xlarge",
                            "trn2u.48xlarge",
                            "inf1.xlarge",
                            "inf1.2xlarge",
                            "inf1.6xlarge",
                            "inf1.24xlarge",
                            "inf2.xlarge",
                            "inf2.8xlarge",
                            "inf2.24xlarge",
                            "inf2.48xlarge",
                        ),
                    ),
                    Requirement(
                        "eks.amazonaws.com/compute-type", "NotIn", ("fargate", "hybrid", "auto")
                    ),
                ),
            ),
            tolerations=(_CRITICAL, Toleration("aws.amazon.com/neuron", effect="NoSchedule")),
            namespace="kube-system",
            node_resource="aws.amazon.com/neuron",
        ),
        Workload(
            role="node-problem-detector",
            kind="DaemonSet",
            pod_security="privileged",
            why="privileged, hostPath /var/log, /dev/kmsg",
            values_path="npd",
            enabled_by="npd.enabled",
            namespace="neuron-healthcheck-system",
            node_resource="aws.amazon.com/neuron",
        ),
    ),
)

CLUSTER_AUTOSCALER = ChartContract(
    chart="cluster-autoscaler",
    version="9.59.0",
    repository="https://kubernetes.github.io/autoscaler",
    source="github.com/kubernetes/autoscaler cluster-autoscaler-chart-9.59.0 (5a0b98e), "
    "cluster-autoscaler/charts/cluster-autoscaler",
    verified=True,
    image="registry.k8s.io/autoscaling/cluster-autoscaler:v1.35.0",
    kubernetes=("1.35", "1.35"),
    kubernetes_source="cluster-autoscaler/README.md 'Releases': each version is built for the "
    "Kubernetes minor of the same number; the chart's default image is v1.35.0",
    workloads=(
        Workload(
            role="autoscaler",
            kind="Deployment",
            pod_security="baseline",
            why="securityContext left empty by default (values.yaml:166, :421): not restricted",
        ),
    ),
    # The newest release of each minor, by the git tags of kubernetes/autoscaler
    # (cluster-autoscaler-1.34.5, -1.35.2, -1.36.1); set as image.tag.
    images_by_kubernetes={"1.34": "v1.34.5", "1.35": "v1.35.2", "1.36": "v1.36.1"},
)

KARPENTER = ChartContract(
    chart="karpenter",
    version="1.12.1",
    repository="oci://public.ecr.aws/karpenter/karpenter",
    source="github.com/aws/karpenter-provider-aws v1.12.1 (15781e3; release edits bd781d4), "
    "charts/karpenter",
    verified=True,
    image="public.ecr.aws/karpenter/controller:1.12.1",
    kubernetes=("1.29", "1.35"),
    kubernetes_source="website/content/en/preview/upgrading/compatibility.md:18-20 at v1.12.1: "
    "1.12 runs Kubernetes 1.29 to 1.35; 1.36 first appears for 1.13",
    workloads=(
        Workload(
            role="controller",
            kind="Deployment",
            pod_security="restricted",
            why="runAsNonRoot (65532), drop ALL, RuntimeDefault seccomp (values.yaml)",
            # Never on nodes Karpenter launched itself (values.yaml affinity).
            node_affinity=((Requirement("karpenter.sh/nodepool", "DoesNotExist"),),),
            node_selector={"kubernetes.io/os": "linux"},
            tolerations=(_CRITICAL,),
        ),
    ),
    crds=(
        "ec2nodeclasses.karpenter.k8s.aws",
        "nodeclaims.karpenter.sh",
        "nodeoverlays.karpenter.sh",
        "nodepools.karpenter.sh",
    ),
    crd_schemas="karpenter-1.12.1.json",
)

ARGO_ROLLOUTS = ChartContract(
    chart="argo-rollouts",
    version="2.41.0",
    repository="https://argoproj.github.io/argo-helm",
    source="github.com/argoproj/argo-helm argo-rollouts-2.41.0 (8796aea), charts/argo-rollouts; "
    "app github.com/argoproj/argo-rollouts v1.9.0 (838d4e7)",
    verified=True,
    image="quay.io/argoproj/argo-rollouts:v1.9.0",
    # No kubeVersion in Chart.yaml. The app's e2e matrix at v1.9.0 runs 1.31 to 1.34 and it is
    # built on client-go v0.34; nothing it calls changes in 1.35 or 1.36.
    kubernetes=("1.31", None),
    kubernetes_source="argo-rollouts v1.9.0 .github/workflows/testing.yaml:77-85 (e2e on "
    "1.31 to 1.34), go.mod:52 (client-go v0.34.1); the chart states no kubeVersion",
    workloads=(
        Workload(
            role="controller",
            kind="Deployment",
            pod_security="restricted",
            why="runAsNonRoot, drop ALL, RuntimeDefault seccomp, no privilege escalation, "
            "read-only root, emptyDir volumes only (values.yaml:289-300)",
            values_path="controller",
        ),
    ),
    # In templates/crds (installCRDs: true), so Helm upgrades them with the chart.
    crds=(
        "analysisruns.argoproj.io",
        "analysistemplates.argoproj.io",
        "clusteranalysistemplates.argoproj.io",
        "experiments.argoproj.io",
        "rollouts.argoproj.io",
    ),
    crd_schemas="argo-rollouts-1.9.0.json",
)

AWS_LOAD_BALANCER_CONTROLLER = ChartContract(
    chart="aws-load-balancer-controller",
    version="3.5.0",
    repository="https://aws.github.io/eks-charts",
    source="github.com/aws/eks-charts 5239609, stable/aws-load-balancer-controller (identical to "
    "github.com/kubernetes-sigs/aws-load-balancer-controller v3.5.0 (11eb202), "
    "helm/aws-load-balancer-controller)",
    verified=True,
    image="public.ecr.aws/eks/aws-load-balancer-controller:v3.5.0",
    kubernetes=("1.22", None),
    kubernetes_source="aws-load-balancer-controller docs/deploy/installation.md at v3.5.0: "
    "v2.5.0 and later need Kubernetes 1.22 or newer; no upper bound, no kubeVersion in Chart.yaml",
    workloads=(
        Workload(
            role="controller",
            kind="Deployment",
            pod_security="baseline",
            why="capabilities.drop is commented out, no seccompProfile (values.yaml:48-57)",
        ),
    ),
    # In the chart's crds/ directory: `helm install` applies them, `helm upgrade` does not.
    crds=(
        "albtargetcontrolconfigs.elbv2.k8s.aws",
        "globalaccelerators.aga.k8s.aws",
        "ingressclassparams.elbv2.k8s.aws",
        "listenerruleconfigurations.gateway.k8s.aws",
        "loadbalancerconfigurations.gateway.k8s.aws",
        "targetgroupbindings.elbv2.k8s.aws",
        "targetgroupconfigurations.gateway.k8s.aws",
    ),
)

PROMETHEUS = ChartContract(
    chart="prometheus",
    version="29.27.0",
    repository="https://prometheus-community.github.io/helm-charts",
    source="github.com/prometheus-community/helm-charts prometheus-29.27.0 (ca06aae), "
    "charts/prometheus",
    verified=True,
    image="quay.io/prometheus/prometheus:v3.14.0",
    kubernetes=("1.19", None),
    kubernetes_source="charts/prometheus/Chart.yaml at prometheus-29.27.0: kubeVersion "
    '">=1.19.0-0"',
    workloads=(
        Workload(
            role="server",
            kind="Deployment",
            pod_security="baseline",
            why="server and config-reloader containerSecurityContext {} (values.yaml:751, :92): "
            "no capability drop, no seccomp, privilege escalation allowed",
            values_path="server",
        ),
        # Sub-charts the platform turns off: node-exporter needs host namespaces (privileged).
        Workload(
            role="alertmanager",
            kind="Deployment",
            pod_security="baseline",
            why="alertmanager sub-chart 1.42 defaults",
            values_path="alertmanager",
            enabled_by="alertmanager.enabled",
        ),
        Workload(
            role="node-exporter",
            kind="DaemonSet",
            pod_security="privileged",
            why="hostNetwork, hostPID, host root mount (node-exporter 4.56.1 values.yaml:382)",
            values_path="prometheus-node-exporter",
            enabled_by="prometheus-node-exporter.enabled",
        ),
        Workload(
            role="pushgateway",
            kind="Deployment",
            pod_security="baseline",
            why="pushgateway sub-chart 3.8 defaults",
            values_path="prometheus-pushgateway",
            enabled_by="prometheus-pushgateway.enabled",
        ),
        Workload(
            role="kube-state-metrics",
            kind="Deployment",
            pod_security="restricted",
            why="kube-state-metrics sub-chart 8.4 (the platform's own release, metrics namespace)",
            values_path="kube-state-metrics",
            enabled_by="kube-state-metrics.enabled",
        ),
    ),
)

_KEDA_WHY: Final = (
    "runAsNonRoot, drop ALL, RuntimeDefault seccomp, no privilege escalation, read-only root, "
    "secret volumes only (values.yaml:467-525)"
)
KEDA = ChartContract(
    chart="keda",
    version="2.20.2",
    repository="https://kedacore.github.io/charts",
    source="github.com/kedacore/charts v2.20.2 (cbb9bb8), keda",
    verified=True,
    image="ghcr.io/kedacore/keda:2.20.2",
    kubernetes=("1.33", "1.35"),
    kubernetes_source="keda-docs content/docs/2.20/operate/cluster.md:19-23: KEDA 2.20 is "
    "tested on Kubernetes 1.33 to 1.35 (N-2); the chart's kubeVersion is >=1.23",
    workloads=tuple(
        Workload(
            role=role,
            kind="Deployment",
            pod_security="restricted",
            why=_KEDA_WHY,
            values_path=path,
            # Every Deployment's template adds it before the values' selector.
            node_selector={"kubernetes.io/os": "linux"},
        )
        for role, path in (
            ("operator", "operator"),
            ("metrics-apiserver", "metricsServer"),
            ("admission-webhooks", "webhooks"),
        )
    ),
    crds=(
        "cloudeventsources.eventing.keda.sh",
        "clustercloudeventsources.eventing.keda.sh",
        "clustertriggerauthentications.keda.sh",
        "scaledjobs.keda.sh",
        "scaledobjects.keda.sh",
        "triggerauthentications.keda.sh",
    ),
    crd_schemas="keda-2.20.2.json",
)

# The same in 6.3.0 and 8.4.0 (values.yaml securityContext and containerSecurityContext).
_KUBE_STATE_METRICS_EXPORTER = Workload(
    role="exporter",
    kind="Deployment",
    pod_security="restricted",
    why="runAsNonRoot (65534), RuntimeDefault seccomp, drop ALL, no privilege escalation",
)

KUBE_STATE_METRICS = ChartContract(
    chart="kube-state-metrics",
    version="8.4.0",
    repository="https://prometheus-community.github.io/helm-charts",
    source="github.com/prometheus-community/helm-charts kube-state-metrics-8.4.0 (1982f1c), "
    "charts/kube-state-metrics",
    verified=True,
    image="registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.20.0",
    kubernetes=("1.36", "1.36"),
    kubernetes_source="kube-state-metrics README 'Compatibility matrix' (v2.20.0 README:88): "
    "v2.18 is built for Kubernetes 1.34, v2.19 for 1.35, v2.20 for 1.36; other versions are "
    "best effort",
    workloads=(_KUBE_STATE_METRICS_EXPORTER,),
    # The release built for each minor; the chart's arguments (port, collectors, the labels
    # allowlist) are those of every 2.x release.
    images_by_kubernetes={"1.34": "v2.18.0", "1.35": "v2.19.1", "1.36": "v2.20.0"},
)

KUBE_STATE_METRICS_6 = ChartContract(
    chart="kube-state-metrics",
    version="6.3.0",
    repository="https://prometheus-community.github.io/helm-charts",
    source="github.com/prometheus-community/helm-charts kube-state-metrics-6.3.0 (bd5ce9b), "
    "charts/kube-state-metrics",
    verified=True,
    image="registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.17.0",
    kubernetes=(None, "1.33"),
    kubernetes_source="kube-state-metrics README 'Compatibility matrix' at v2.17.0: client-go "
    "v1.33; 'the supported Kubernetes cluster version is determined by client-go'",
    workloads=(_KUBE_STATE_METRICS_EXPORTER,),
)

EFA_ACCELERATOR_TYPES: Final = (
    "dl2q.24xlarge",
    "g4dn.8xlarge",
    "g4dn.12xlarge",
    "g4dn.16xlarge",
    "g4dn.metal",
    "g5.8xlarge",
    "g5.12xlarge",
    "g5.16xlarge",
    "g5.24xlarge",
    "g5.48xlarge",
    "g6.8xlarge",
    "g6.12xlarge",
    "g6.16xlarge",
    "g6.24xlarge",
    "g6.48xlarge",
    "g6e.8xlarge",
    "g6e.12xlarge",
    "g6e.16xlarge",
    "g6e.24xlarge",
    "g6e.48xlarge",
    "g7.8xlarge",
    "g7.12xlarge",
    "g7.24xlarge",
    "g7.48xlarge",
    "g7e.8xlarge",
    "g7e.12xlarge",
    "g7e.24xlarge",
    "g7e.48xlarge",
    "gr6.8xlarge",
    "inf1.24xlarge",
    "p3dn.24xlarge",
    "p4d.24xlarge",
    "p4de.24xlarge",
    "p5.4xlarge",
    "p5.48xlarge",
    "p5e.48xlarge",
    "p5en.48xlarge",
    "p6-b200.48xlarge",
    "p6-b300.48xlarge",
    "p6e-gb200.36xlarge",
    "p6e-gb300.36xlarge",
    "trn1.32xlarge",
    "trn1n.32xlarge",
    "trn2.3xlarge",
    "trn2.48xlarge",
    "trn2-ac.24xlarge",
    "trn2u.48xlarge",
    "trn2u-ac.24xlarge",
)
"""The accelerator instance types of the EFA device plugin's default node affinity."""

EFA_DEVICE_PLUGIN = ChartContract(
    chart="aws-efa-k8s-device-plugin",
    version="v0.5.30",
    repository="https://aws.github.io/eks-charts",
    source="github.com/aws/eks-charts bfe91c4, stable/aws-efa-k8s-device-plugin",
    verified=True,
    image="602401143452.dkr.ecr.us-west-2.amazonaws.com/eks/aws-efa-k8s-device-plugin:v0.5.20",
    kubernetes=(None, None),
    kubernetes_source="Chart.yaml declares no kubeVersion; EKS docs: all EKS-supported versions",
    workloads=(
        Workload(
            role="device-plugin",
            kind="DaemonSet",
            pod_security="privileged",
            why="privileged, hostNetwork, hostPath /var/lib/kubelet/device-plugins, "
            "/dev/infiniband (values.yaml:5-9, templates/daemonset.yaml:64-91)",
            # templates/daemonset.yaml:49-63 from values.yaml supportedInstanceLabels: 303
            # instance types; these are its accelerator types.
            node_affinity=(
                (
                    Requirement("node.kubernetes.io/instance-type", "In", EFA_ACCELERATOR_TYPES),
                    Requirement("eks.amazonaws.com/compute-type", "NotIn", ("auto",)),
                ),
            ),
            fixed_tolerations=(_CRITICAL,),
            node_resource="vpc.amazonaws.com/efa",
        ),
    ),
)

CONTRACTS: Final[dict[tuple[str, str], ChartContract]] = {
    (contract.chart, contract.version): contract
    for contract in (
        NVIDIA_DEVICE_PLUGIN,
        DCGM_EXPORTER,
        NEURON_DEVICE_PLUGIN,
        CLUSTER_AUTOSCALER,
        KARPENTER,
        ARGO_ROLLOUTS,
        AWS_LOAD_BALANCER_CONTROLLER,
        PROMETHEUS,
        KEDA,
        KUBE_STATE_METRICS,
        KUBE_STATE_METRICS_6,
        EFA_DEVICE_PLUGIN,
    )
}
"""Every chart version the platform may install, by (chart, version)."""


def contract(chart: str, version: str) -> ChartContract | None:
    return CONTRACTS.get((chart, version))


def image_tag(contract: ChartContract, kubernetes: str) -> dict[str, str]:
    """Helm values that run the image built for the cluster's minor, where the software is
    built per minor; nothing otherwise."""
    tag = contract.images_by_kubernetes.get(kubernetes)
    return {"tag": tag} if tag else {}


def versions(chart: str) -> list[str]:
    """The versions of a chart that have a contract."""
    return sorted(v for c, v in CONTRACTS if c == chart)
