"""What every cluster gets first: a default encrypted StorageClass and platform namespaces.

The Kubernetes provider comes from the caller (`providers={"kubernetes": ...}` in opts), built
from the cluster's outputs; this component never makes one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

DEFAULT_STORAGE_CLASS = "gp3-encrypted"


@dataclass(frozen=True)
class KubernetesBaselineArgs:
    ebs_kms_key_arn: pulumi.Input[str]
    namespaces: Sequence[str]
    labels: Mapping[str, str]
    retain_volumes: bool = False
    """Keep EBS volumes when their claims are deleted (protected environments)."""


class KubernetesBaseline(pulumi.ComponentResource):
    TYPE = "mlops:kubernetes_baseline:KubernetesBaseline"

    namespaces: dict[str, k8s.core.v1.Namespace]
    """By name: what installs into one waits for it."""

    def __init__(
        self, name: str, args: KubernetesBaselineArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(self.TYPE, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        labels = {"app.kubernetes.io/managed-by": "pulumi", **args.labels}

        k8s.storage.v1.StorageClass(
            f"{name}-{DEFAULT_STORAGE_CLASS}",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=DEFAULT_STORAGE_CLASS,
                labels=labels,
                annotations={"storageclass.kubernetes.io/is-default-class": "true"},
            ),
            provisioner="ebs.csi.aws.com",
            parameters={
                "type": "gp3",
                "encrypted": "true",
                "kmsKeyId": args.ebs_kms_key_arn,
                "csi.storage.k8s.io/fstype": "ext4",
            },
            # Bind where the pod lands, so the volume is in the pod's AZ.
            volume_binding_mode="WaitForFirstConsumer",
            allow_volume_expansion=True,
            reclaim_policy="Retain" if args.retain_volumes else "Delete",
            opts=child,
        )
        self.namespaces = {}
        for namespace in args.namespaces:
            self.namespaces[namespace] = k8s.core.v1.Namespace(
                f"{name}-{namespace}",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=namespace,
                    labels={
                        **labels,
                        # Pod Security Admission: refuse what baseline forbids, warn on
                        # anything short of restricted.
                        "pod-security.kubernetes.io/enforce": "baseline",
                        "pod-security.kubernetes.io/warn": "restricted",
                    },
                ),
                opts=child,
            )

        self.register_outputs({"namespaces": list(self.namespaces)})
