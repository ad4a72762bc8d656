"""The Kubernetes baseline: default encrypted gp3 storage and platform namespaces."""

from __future__ import annotations

from mlops_platform.rendered import RenderedStack
from tests.conftest import named


def test_the_default_storage_class_is_encrypted_gp3_under_the_ebs_key(
    rendered: RenderedStack,
) -> None:
    [storage_class] = rendered.of_type("kubernetes:storage.k8s.io/v1:StorageClass")
    ebs_key = named(rendered, "aws:kms/key:Key", "ebs-key")
    assert storage_class.inputs["metadata"]["annotations"] == {
        "storageclass.kubernetes.io/is-default-class": "true"
    }
    assert storage_class.inputs["provisioner"] == "ebs.csi.aws.com"
    assert storage_class.inputs["parameters"]["encrypted"] == "true"
    assert storage_class.inputs["parameters"]["kmsKeyId"] == ebs_key.outputs["arn"]
    assert storage_class.inputs["volumeBindingMode"] == "WaitForFirstConsumer"


def test_protected_environments_keep_volumes_when_claims_go(
    rendered_stacks: dict[str, RenderedStack],
) -> None:
    policies = {
        stack: r.of_type("kubernetes:storage.k8s.io/v1:StorageClass")[0].inputs["reclaimPolicy"]
        for stack, r in rendered_stacks.items()
    }
    assert policies == {"dev": "Delete", "staging": "Retain", "prod": "Retain"}


def test_platform_namespaces_enforce_pod_security(rendered: RenderedStack) -> None:
    namespaces = {
        n.inputs["metadata"]["name"]: n
        for n in rendered.of_type("kubernetes:core/v1:Namespace")
        if n.name.startswith("baseline-")
    }
    assert sorted(namespaces) == ["monitoring", "platform-system"]
    for namespace in namespaces.values():
        assert (
            namespace.inputs["metadata"]["labels"]["pod-security.kubernetes.io/enforce"]
            == "baseline"
        )


def test_kubernetes_resources_use_the_clusters_provider(rendered: RenderedStack) -> None:
    [provider] = rendered.of_type("pulumi:providers:kubernetes")
    for resource in rendered.resources:
        if resource.type.startswith("kubernetes:"):
            assert resource.provider.startswith(provider.urn)
