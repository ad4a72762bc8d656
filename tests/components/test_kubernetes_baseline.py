"""The Kubernetes baseline: the default encrypted gp3 StorageClass and pod-security-enforcing
platform namespaces, on the caller's provider; and how each stack's config shapes it."""

from __future__ import annotations

import json

import pulumi
import pulumi_kubernetes as k8s
import pytest

from components.kubernetes_baseline import KubernetesBaseline, KubernetesBaselineArgs
from infra.config import CONFIG_KEY, load_platform_config
from mlops_platform.project import PulumiProject
from mlops_platform.rendered import RecordedResource, RenderedStack
from tests.configs import with_required_keys
from tests.conftest import run_component

STORAGE_CLASS = "kubernetes:storage.k8s.io/v1:StorageClass"
NAMESPACE = "kubernetes:core/v1:Namespace"
EBS_KEY = "arn:aws:kms:eu-west-1:123456789012:key/ebs"

BASELINES = {
    "retaining": KubernetesBaselineArgs(
        ebs_kms_key_arn=EBS_KEY,
        namespaces=("platform-system", "monitoring"),
        labels={"mlops.platform/stack": "prod"},
        retain_volumes=True,
    ),
    "deleting": KubernetesBaselineArgs(
        ebs_kms_key_arn=EBS_KEY,
        namespaces=("ml",),
        # A caller's label must not weaken pod security.
        labels={"mlops.platform/stack": "dev", "pod-security.kubernetes.io/enforce": "privileged"},
    ),
}
EVERY_BASELINE = pytest.mark.parametrize("baseline", list(BASELINES))


def on_a_cluster(args: KubernetesBaselineArgs) -> None:
    """The baseline on a provider of the caller's, as the program passes the cluster's."""
    provider = k8s.Provider("cluster", kubeconfig="{}")
    KubernetesBaseline(
        "baseline", args, opts=pulumi.ResourceOptions(providers={"kubernetes": provider})
    )


@pytest.fixture(scope="module")
def baselines() -> dict[str, RenderedStack]:
    return {
        name: run_component(lambda args=args: on_a_cluster(args))
        for name, args in BASELINES.items()
    }


def storage_class_of(rendered: RenderedStack) -> RecordedResource:
    [storage_class] = rendered.of_type(STORAGE_CLASS)
    return storage_class


@EVERY_BASELINE
def test_the_default_storage_class_is_encrypted_gp3_under_the_given_key(
    baselines: dict[str, RenderedStack], baseline: str
) -> None:
    inputs = storage_class_of(baselines[baseline]).inputs
    assert inputs["metadata"]["name"] == "gp3-encrypted"
    assert inputs["metadata"]["annotations"] == {
        "storageclass.kubernetes.io/is-default-class": "true"
    }
    assert inputs["provisioner"] == "ebs.csi.aws.com"
    assert inputs["parameters"] == {
        "type": "gp3",
        "encrypted": "true",
        "kmsKeyId": EBS_KEY,
        "csi.storage.k8s.io/fstype": "ext4",
    }
    # Bound where the pod lands, so the volume is in the pod's AZ.
    assert inputs["volumeBindingMode"] == "WaitForFirstConsumer"
    assert inputs["allowVolumeExpansion"] is True


@pytest.mark.parametrize(("baseline", "policy"), [("retaining", "Retain"), ("deleting", "Delete")])
def test_volumes_outlive_their_claims_only_where_asked(
    baselines: dict[str, RenderedStack], baseline: str, policy: str
) -> None:
    assert storage_class_of(baselines[baseline]).inputs["reclaimPolicy"] == policy


@EVERY_BASELINE
def test_platform_namespaces_enforce_baseline_pod_security_and_warn_short_of_restricted(
    baselines: dict[str, RenderedStack], baseline: str
) -> None:
    args = BASELINES[baseline]
    namespaces = {n.inputs["metadata"]["name"]: n for n in baselines[baseline].of_type(NAMESPACE)}
    assert sorted(namespaces) == sorted(args.namespaces)
    for namespace in namespaces.values():
        assert namespace.inputs["metadata"]["labels"] == {
            **args.labels,
            "app.kubernetes.io/managed-by": "pulumi",
            "pod-security.kubernetes.io/enforce": "baseline",
            "pod-security.kubernetes.io/warn": "restricted",
        }


@EVERY_BASELINE
def test_the_baseline_uses_the_callers_provider_and_makes_none_of_its_own(
    baselines: dict[str, RenderedStack], baseline: str
) -> None:
    rendered = baselines[baseline]
    [provider] = rendered.of_type("pulumi:providers:kubernetes")
    kubernetes = [r for r in rendered.resources if r.type.startswith("kubernetes:")]
    assert kubernetes
    for resource in kubernetes:
        assert resource.provider.startswith(f"{provider.urn}::")


def test_platform_namespaces_default_to_platform_system_and_monitoring() -> None:
    config = load_platform_config(
        with_required_keys({"environment": "prod"}), stack="prod", project="mlops-platform"
    )
    assert config.eks.namespaces == ["platform-system", "monitoring"]


def test_kubernetes_resources_use_the_clusters_provider(rendered: RenderedStack) -> None:
    """A stack-wide invariant: every Kubernetes resource in every stack goes to the stack's own
    cluster, through the one provider built from that cluster's kubeconfig."""
    [provider] = rendered.of_type("pulumi:providers:kubernetes")
    [cluster] = rendered.of_type("aws:eks/cluster:Cluster")
    assert cluster.urn in provider.property_dependencies["kubeconfig"]
    for resource in rendered.resources:
        if resource.type.startswith("kubernetes:"):
            assert resource.provider.startswith(f"{provider.urn}::")


def test_every_stacks_baseline_follows_its_config(
    rendered: RenderedStack, project: PulumiProject
) -> None:
    """A stack-wide invariant of the config -> baseline wiring: volumes are kept exactly where
    stateful resources are protected, and the platform namespaces are the configured ones,
    labelled with their stack."""
    raw = json.loads(project.stack_config(rendered.stack).values[f"{project.name}:{CONFIG_KEY}"])
    config = load_platform_config(raw, stack=rendered.stack, project=project.name)
    reclaim = storage_class_of(rendered).inputs["reclaimPolicy"]
    assert reclaim in ("Retain", "Delete")
    assert (reclaim == "Retain") is config.protect_stateful_resources
    namespaces = {
        n.inputs["metadata"]["name"]: n.inputs["metadata"]["labels"]
        for n in rendered.of_type(NAMESPACE)
        if n.name.startswith("baseline-")
    }
    assert sorted(namespaces) == sorted(config.eks.namespaces)
    for labels in namespaces.values():
        assert labels["mlops.platform/stack"] == rendered.stack
