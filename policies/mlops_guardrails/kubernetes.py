"""Rules for what runs on the cluster: workloads, Karpenter node classes, Helm releases."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any, Final

from pulumi_policy import ResourceValidationArgs, Severity

from mlops_guardrails.frameworks import cis_eks
from mlops_guardrails.props import as_strings, is_true, items, mapping
from mlops_guardrails.rule import resource_rule

POD_SPEC_PATHS: Final = {
    "kubernetes:core/v1:Pod": ("spec",),
    "kubernetes:apps/v1:Deployment": ("spec", "template", "spec"),
    "kubernetes:apps/v1:StatefulSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:DaemonSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:ReplicaSet": ("spec", "template", "spec"),
    "kubernetes:batch/v1:Job": ("spec", "template", "spec"),
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
EC2_NODE_CLASS: Final = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
HELM_RELEASE: Final = "kubernetes:helm.sh/v3:Release"
STORAGE_CLASS: Final = "kubernetes:storage.k8s.io/v1:StorageClass"
NAMESPACE: Final = "kubernetes:core/v1:Namespace"
EBS_PROVISIONERS: Final = ("ebs.csi.aws.com", "kubernetes.io/aws-ebs")
POD_SECURITY_LEVELS: Final = ("baseline", "restricted")
HOST_NAMESPACES: Final = ("hostNetwork", "hostPID", "hostIPC")
# Capabilities the Pod Security Standards' baseline profile does not allow adding.
BASELINE_CAPABILITIES: Final = frozenset(
    {
        "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
        "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
    }
)  # fmt: skip
EXACT_VERSION: Final = re.compile(r"^v?[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$")


def _pod_spec(props: Mapping[str, Any], resource_type: str) -> Mapping[str, Any]:
    spec: Any = props
    for key in POD_SPEC_PATHS[resource_type]:
        spec = mapping(spec).get(key)
    return mapping(spec)


def _workload_baseline(props: Mapping[str, Any], args: ResourceValidationArgs) -> Iterator[str]:
    spec = _pod_spec(props, args.resource_type)
    for namespace in HOST_NAMESPACES:
        if is_true(spec.get(namespace)):
            yield f"{namespace} shares the node's namespace with the pod"
    for volume in map(mapping, items(spec.get("volumes"))):
        if volume.get("hostPath"):
            yield f"volume {volume.get('name')!r} mounts a host path"
    containers = [*items(spec.get("initContainers")), *items(spec.get("containers"))]
    for container in map(mapping, containers):
        name = container.get("name", "(unnamed)")
        context = mapping(container.get("securityContext"))
        if is_true(context.get("privileged")):
            yield f"container {name!r} is privileged"
        if is_true(context.get("allowPrivilegeEscalation")):
            yield f"container {name!r} allows privilege escalation"
        added = set(as_strings(mapping(context.get("capabilities")).get("add")))
        if added - BASELINE_CAPABILITIES:
            yield f"container {name!r} adds capabilities {sorted(added - BASELINE_CAPABILITIES)}"


def _node_class_hardened(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    spec = mapping(props.get("spec"))
    # Karpenter's own defaults are IMDSv2 with hop limit 1; only an override can weaken them.
    metadata = mapping(spec.get("metadataOptions"))
    if metadata.get("httpTokens", "required") != "required":
        yield "the node class allows IMDSv1"
    if metadata.get("httpPutResponseHopLimit", 1) > 1:
        yield "the node class lets pods reach node credentials (IMDS hop limit above 1)"
    devices = [mapping(m) for m in items(spec.get("blockDeviceMappings"))]
    if not devices:
        yield "no block device mappings: volumes are not under a customer-managed key"
    for device in devices:
        ebs = mapping(device.get("ebs"))
        if not (is_true(ebs.get("encrypted")) and ebs.get("kmsKeyID")):
            name = device.get("deviceName")
            yield f"volume {name!r} is not encrypted under a customer-managed key"


def _helm_pinned(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    version = str(props.get("version", ""))
    if not EXACT_VERSION.match(version):
        yield f"chart {props.get('chart')!r} is not pinned to an exact version (got {version!r})"


def _storage_class_encrypted(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    if props.get("provisioner") not in EBS_PROVISIONERS:
        return
    parameters = mapping(props.get("parameters"))
    if not is_true(parameters.get("encrypted")):
        yield "EBS volumes from this class are not encrypted"
    elif not parameters.get("kmsKeyId"):
        yield "EBS volumes from this class use the AWS-managed key, not a customer-managed key"


RBAC_ROLES: Final = frozenset(
    {
        "kubernetes:rbac.authorization.k8s.io/v1:Role",
        "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole",
    }
)
# What holds a namespace's isolation: whoever may change these may lift it.
ISOLATION_RESOURCES: Final = frozenset(
    {
        "networkpolicies",
        "resourcequotas",
        "limitranges",
        "namespaces",
        "roles",
        "rolebindings",
        "clusterroles",
        "clusterrolebindings",
    }
)
READ_VERBS: Final = frozenset({"get", "list", "watch"})
# Verbs that grant more than the holder has, whatever the resource.
ESCALATING_VERBS: Final = frozenset({"escalate", "bind", "impersonate"})
IMPERSONABLE: Final = frozenset({"*", "users", "groups", "serviceaccounts", "uids"})


def _rbac_keeps_isolation(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    for granted in items(props.get("rules")):
        verbs = set(as_strings(mapping(granted).get("verbs")))
        resources = set(as_strings(mapping(granted).get("resources")))
        escalating = sorted(verbs & ESCALATING_VERBS)
        if "*" in verbs and resources & IMPERSONABLE:
            escalating = ["* (impersonate among them)"]
        if escalating:
            yield f"grants {', '.join(escalating)} on {', '.join(sorted(resources)) or 'nothing'}"
            continue
        writes = sorted(verbs - READ_VERBS)
        guarded = sorted(resources & ISOLATION_RESOURCES) or (["*"] if "*" in resources else [])
        if writes and guarded:
            yield (
                f"may {', '.join(writes)} {', '.join(guarded)}: its holder could lift the "
                "namespace's isolation"
            )


ADMISSION_POLICY: Final = "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicy"
ADMISSION_BINDING: Final = (
    "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicyBinding"
)


def _admission_enforced(props: Mapping[str, Any], args: ResourceValidationArgs) -> Iterator[str]:
    spec = mapping(props.get("spec"))
    if args.resource_type == ADMISSION_POLICY:
        if spec.get("failurePolicy", "Fail") != "Fail":
            yield "its rules are skipped whenever they cannot be evaluated (failurePolicy Ignore)"
    elif "Deny" not in as_strings(spec.get("validationActions")):
        actions = " and ".join(as_strings(spec.get("validationActions"))) or "names"
        yield f"it only {actions} what its policy refuses: nothing is denied"


def _namespace_pod_security(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    labels = mapping(mapping(props.get("metadata")).get("labels"))
    level = labels.get("pod-security.kubernetes.io/enforce")
    if level not in POD_SECURITY_LEVELS:
        yield f"Pod Security Admission enforces {level!r}, not baseline or restricted"


RULES = [
    resource_rule(
        name="k8s-pod-security-baseline",
        description=(
            "Workloads meet the Pod Security Standards baseline: no privileged containers, "
            "host namespaces, host paths or extra capabilities."
        ),
        resource_types=set(POD_SPEC_PATHS),
        check=_workload_baseline,
        severity=Severity.HIGH,
        framework=cis_eks("4.2.1"),
        remediation="Drop the setting, or run the component from a vetted chart with an exemption.",
    ),
    resource_rule(
        name="karpenter-node-class-hardened",
        description=(
            "Karpenter node classes keep IMDSv2 with hop limit 1 and encrypt volumes with a "
            "customer-managed key."
        ),
        resource_types={EC2_NODE_CLASS},
        check=_node_class_hardened,
        severity=Severity.HIGH,
        remediation=(
            "Leave metadataOptions at httpTokens: required and httpPutResponseHopLimit: 1, and set "
            "blockDeviceMappings with ebs.encrypted: true and ebs.kmsKeyID."
        ),
    ),
    resource_rule(
        name="helm-chart-pinned",
        description="Helm releases pin an exact chart version.",
        resource_types={HELM_RELEASE},
        check=_helm_pinned,
        severity=Severity.MEDIUM,
        remediation="Set version to an exact chart version from the stack config.",
    ),
    resource_rule(
        name="k8s-storage-class-encrypted",
        description="EBS StorageClasses encrypt volumes with a customer-managed KMS key.",
        resource_types={STORAGE_CLASS},
        check=_storage_class_encrypted,
        severity=Severity.HIGH,
        remediation="Set parameters encrypted: 'true' and kmsKeyId: <key ARN>.",
    ),
    resource_rule(
        name="k8s-rbac-keeps-isolation",
        description=(
            "Roles the stack grants (a team deployer's) never write network policies, quotas, "
            "limit ranges, namespaces or RBAC, nor escalate, bind or impersonate."
        ),
        resource_types=RBAC_ROLES,
        check=_rbac_keeps_isolation,
        severity=Severity.HIGH,
        framework=cis_eks("4.1.8"),
        remediation=(
            "Grant the kinds the workload is made of (components.team_deployer.MANAGED); the "
            "platform owns each namespace's isolation."
        ),
    ),
    resource_rule(
        name="k8s-admission-policy-enforced",
        description=(
            "Admission policies the stack sets refuse what they judge: bindings Deny, and "
            "policies fail closed."
        ),
        resource_types={ADMISSION_POLICY, ADMISSION_BINDING},
        check=_admission_enforced,
        severity=Severity.HIGH,
        remediation="Set validationActions: [Deny] on the binding and failurePolicy: Fail.",
    ),
    resource_rule(
        name="k8s-namespace-pod-security",
        description="Namespaces enforce the baseline or restricted Pod Security Standard.",
        resource_types={NAMESPACE},
        check=_namespace_pod_security,
        severity=Severity.MEDIUM,
        framework=cis_eks("4.2.1"),
        remediation="Label it pod-security.kubernetes.io/enforce: baseline (or restricted).",
    ),
]
