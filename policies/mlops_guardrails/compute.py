"""Node group and launch template rules: what runs on the nodes and what a pod can reach."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator, Mapping
from typing import Any, Final

from pulumi_policy import ResourceValidationArgs, Severity, StackValidationArgs

from mlops_guardrails.frameworks import aws_fsbp, cis_eks
from mlops_guardrails.props import is_true, items, mapping
from mlops_guardrails.rule import resource_rule, setting, stack_rule
from mlops_guardrails.vocabulary import ACCELERATOR_LABEL, ACCELERATOR_RESOURCES

NODE_GROUP: Final = "aws:eks/nodeGroup:NodeGroup"
KARPENTER_NODE_POOL: Final = "kubernetes:karpenter.sh/v1:NodePool"
LAUNCH_TEMPLATE: Final = "aws:ec2/launchTemplate:LaunchTemplate"
ACCELERATOR_TAINTS: Final = {"NVIDIA": "nvidia.com/gpu", "NEURON": "aws.amazon.com/neuron"}
SECRET_PATTERNS: Final = (
    re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    re.compile(r"aws_secret_access_key", re.IGNORECASE),
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"\b(password|passwd|secret|token)\s*[=:]\s*\S{8,}", re.IGNORECASE),
)
CEILING_TUNABLES: Final = {
    "maxAcceleratorsPerPool": {
        "type": "integer",
        "minimum": 1,
        "default": 64,
        "description": "Most GPUs or Neuron devices one pool may ever hold in this environment.",
    }
}
ENVIRONMENT_CEILING_TUNABLES: Final = {
    "maxAccelerators": {
        "type": "integer",
        "minimum": 0,
        "default": 64,
        "description": "Most GPUs (or Neuron devices) all pools together may hold.",
    }
}
IMDS_TUNABLES: Final = {
    "maxHopLimit": {
        "type": "integer",
        "minimum": 1,
        "maximum": 64,
        "default": 1,
        "description": "Largest IMDS response hop limit; 1 keeps pods off the node's role.",
    }
}


def _no_ssh(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    if mapping(props.get("remoteAccess")):
        yield "SSH remote access is configured; use SSM Session Manager instead"


def _launch_template(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    template = mapping(props.get("launchTemplate"))
    if not (template.get("id") or template.get("name")):
        yield "no launch template: EKS defaults allow IMDSv1 and hop limit 2"


def _karpenter_template(props: Mapping[str, Any]) -> tuple[str | None, Mapping[str, Any]]:
    """A Karpenter NodePool's accelerator vendor (from its node labels) and node template."""
    template = mapping(mapping(props.get("spec")).get("template"))
    vendor = mapping(mapping(template.get("metadata")).get("labels")).get(ACCELERATOR_LABEL)
    return vendor, mapping(template.get("spec"))


def _accelerator_taint(props: Mapping[str, Any], args: ResourceValidationArgs) -> Iterator[str]:
    if args.resource_type == KARPENTER_NODE_POOL:
        vendor, template = _karpenter_template(props)
        key = ACCELERATOR_RESOURCES.get(str(vendor))
        if key is None:
            return
        taints = [mapping(t) for t in items(template.get("taints"))]
        if not any(t.get("key") == key and t.get("effect") == "NoSchedule" for t in taints):
            yield f"{vendor} nodes lack the {key} NoSchedule taint: any pod may land on them"
        return
    ami_type = str(props.get("amiType", ""))
    for family, key in ACCELERATOR_TAINTS.items():
        if family not in ami_type:
            continue
        taints = [mapping(t) for t in items(props.get("taints"))]
        if not any(t.get("key") == key and t.get("effect") == "NO_SCHEDULE" for t in taints):
            yield f"{ami_type} nodes lack the {key} NoSchedule taint: any pod may land on them"


def _as_number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _pool_ceiling(resource_type: str, props: Mapping[str, Any]) -> tuple[str, float | None] | None:
    """An accelerator pool's extended resource and declared ceiling (None if undeclared);
    None for pools without accelerators."""
    if resource_type == KARPENTER_NODE_POOL:
        vendor, _ = _karpenter_template(props)
        resource = ACCELERATOR_RESOURCES.get(str(vendor))
        if resource is None:
            return None
        return resource, _as_number(mapping(mapping(props.get("spec")).get("limits")).get(resource))
    ami_type = str(props.get("amiType", ""))
    family = next((f for f in ACCELERATOR_TAINTS if f in ami_type), None)
    if family is None:
        return None
    ceiling = _as_number(mapping(props.get("tags")).get("mlops:accelerator-ceiling"))
    return ACCELERATOR_TAINTS[family], ceiling


def _capacity_ceiling(props: Mapping[str, Any], args: ResourceValidationArgs) -> Iterator[str]:
    pool = _pool_ceiling(args.resource_type, props)
    if pool is None:
        return
    resource, ceiling = pool
    maximum = setting(args, CEILING_TUNABLES, "maxAcceleratorsPerPool")
    if args.resource_type == KARPENTER_NODE_POOL:
        if ceiling is None:
            yield f"no {resource} limit: the pool can grow without bound"
        elif ceiling > maximum:
            yield f"{resource} limit {ceiling:g} is above this environment's {maximum:g} per pool"
        return
    per_node = _as_number(mapping(props.get("tags")).get("mlops:accelerators-per-node"))
    if ceiling is None or per_node is None:
        yield "no declared ceiling (tags mlops:accelerator-ceiling, mlops:accelerators-per-node)"
        return
    max_nodes = _as_number(mapping(props.get("scalingConfig")).get("maxSize")) or 0
    if max_nodes * per_node > ceiling:
        yield (
            f"maxSize {max_nodes:g} x {per_node:g} accelerators = {max_nodes * per_node:g}, "
            f"above the pool's ceiling {ceiling:g}"
        )
    if ceiling > maximum:
        yield f"ceiling {ceiling:g} is above this environment's {maximum:g} per pool"


def _environment_ceiling(args: StackValidationArgs) -> Iterator[tuple[str, str]]:
    maximum = setting(args, ENVIRONMENT_CEILING_TUNABLES, "maxAccelerators")
    totals: dict[str, float] = {}
    largest: dict[str, tuple[float, str]] = {}
    for resource in args.resources:
        kind, ceiling = _pool_ceiling(resource.resource_type, resource.props) or ("", None)
        # Undeclared ceilings are gpu-capacity-ceiling's to report.
        if ceiling is None:
            continue
        totals[kind] = totals.get(kind, 0) + ceiling
        largest[kind] = max(largest.get(kind, (0, "")), (ceiling, resource.urn))
    for kind, total in sorted(totals.items()):
        if total > maximum:
            yield (
                f"the pools' {kind} ceilings add up to {total:g}, above this environment's "
                f"{maximum:g}",
                largest[kind][1],
            )


def _imdsv2(props: Mapping[str, Any], args: ResourceValidationArgs) -> Iterator[str]:
    metadata = mapping(props.get("metadataOptions"))
    if metadata.get("httpEndpoint") == "disabled":
        return
    if metadata.get("httpTokens") != "required":
        yield "IMDSv1 is allowed (metadata_options.http_tokens is not 'required')"
    limit = metadata.get("httpPutResponseHopLimit")
    maximum = setting(args, IMDS_TUNABLES, "maxHopLimit")
    if limit is None:
        yield f"IMDS hop limit is not set (EKS default 2); at most {maximum:g} keeps pods off it"
    elif limit > maximum:
        yield f"IMDS hop limit is {limit:g}; at most {maximum:g} keeps pods off node credentials"


def _ebs_encrypted(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    mappings = [mapping(m) for m in items(props.get("blockDeviceMappings"))]
    if not mappings:
        yield "no block device mapping: the root volume takes the AMI's default encryption"
    for device in mappings:
        ebs = mapping(device.get("ebs"))
        name = device.get("deviceName", "(unnamed)")
        if not is_true(ebs.get("encrypted")):
            yield f"EBS volume {name} is not encrypted"
        elif not ebs.get("kmsKeyId"):
            yield f"EBS volume {name} uses the AWS-managed key, not a customer-managed key"


def _no_public_ip(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    for interface in map(mapping, items(props.get("networkInterfaces"))):
        if is_true(interface.get("associatePublicIpAddress")):
            yield "a network interface gets a public IP address"


def _user_data_text(props: Mapping[str, Any]) -> str:
    raw = str(props.get("userData", ""))
    try:
        return base64.b64decode(raw, validate=True).decode("utf-8", errors="replace")
    except (binascii.Error, ValueError):
        return raw


def _no_secrets_in_user_data(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    text = _user_data_text(props)
    if any(pattern.search(text) for pattern in SECRET_PATTERNS):
        yield "user data contains what looks like a credential; anyone with ec2:Describe* reads it"


RULES = [
    resource_rule(
        name="eks-nodegroup-no-ssh",
        description="Managed node groups allow no SSH access.",
        resource_types={NODE_GROUP},
        check=_no_ssh,
        severity=Severity.HIGH,
        remediation="Remove remote_access; nodes are reached with SSM Session Manager.",
        live=True,
    ),
    resource_rule(
        name="eks-nodegroup-launch-template",
        description="Managed node groups use the platform's launch template.",
        resource_types={NODE_GROUP},
        check=_launch_template,
        severity=Severity.MEDIUM,
        remediation="Pass launch_template(id, version) of one with IMDSv2 and encrypted EBS.",
        live=True,
    ),
    resource_rule(
        name="gpu-capacity-ceiling",
        description=(
            "Every accelerator pool has a ceiling its size cannot exceed, within the "
            "environment's maximum per pool."
        ),
        resource_types={NODE_GROUP, KARPENTER_NODE_POOL},
        check=_capacity_ceiling,
        severity=Severity.HIGH,
        remediation=(
            "Set the pool's maxGpus in config (tags the node group, or sets the NodePool's "
            "limits); raise maxAcceleratorsPerPool in the environment's policy config if the "
            "budget allows."
        ),
        tunables=CEILING_TUNABLES,
    ),
    stack_rule(
        name="gpu-environment-ceiling",
        description=(
            "The accelerator pools' ceilings together stay within the environment's cap, so "
            "no set of changes can scale GPU spend past what the environment is allowed."
        ),
        resource_types={NODE_GROUP, KARPENTER_NODE_POOL},
        check=_environment_ceiling,
        severity=Severity.HIGH,
        remediation=(
            "Lower pools' maxGpus, or raise maxAccelerators in the environment's policy "
            "config with the budget owner's approval."
        ),
        tunables=ENVIRONMENT_CEILING_TUNABLES,
    ),
    resource_rule(
        name="eks-accelerator-nodes-tainted",
        description="GPU and Neuron node pools are tainted so only accelerator pods land there.",
        resource_types={NODE_GROUP, KARPENTER_NODE_POOL},
        check=_accelerator_taint,
        severity=Severity.MEDIUM,
        remediation=(
            "Add the taint nvidia.com/gpu=true:NO_SCHEDULE (Neuron: aws.amazon.com/neuron) and "
            "tolerate it in accelerator workloads."
        ),
        live=True,
    ),
    resource_rule(
        name="ec2-imdsv2-required",
        description="Instances require IMDSv2, with a hop limit keeping pods off node credentials.",
        resource_types={LAUNCH_TEMPLATE},
        check=_imdsv2,
        severity=Severity.HIGH,
        framework=cis_eks("4.6.1"),
        remediation=(
            "Set metadata_options(http_tokens='required', http_put_response_hop_limit=1); "
            "pods get AWS access through Pod Identity or IRSA."
        ),
        tunables=IMDS_TUNABLES,
        live=True,
    ),
    resource_rule(
        name="ec2-ebs-encrypted",
        description="Launch template EBS volumes are encrypted under a customer-managed key.",
        resource_types={LAUNCH_TEMPLATE},
        check=_ebs_encrypted,
        severity=Severity.HIGH,
        framework=aws_fsbp("EC2.7"),
        remediation=(
            "Map the root device with ebs(encrypted='true', kms_key_id=<key ARN>, "
            "volume_type='gp3')."
        ),
        live=True,
    ),
    resource_rule(
        name="ec2-no-public-ip",
        description="Launch templates never give instances a public IP address.",
        resource_types={LAUNCH_TEMPLATE},
        check=_no_public_ip,
        severity=Severity.HIGH,
        framework=aws_fsbp("EC2.25"),
        remediation="Set associate_public_ip_address='false'; nodes sit in private subnets.",
        live=True,
    ),
    resource_rule(
        name="ec2-no-secrets-in-user-data",
        description="Launch template user data carries no credentials.",
        resource_types={LAUNCH_TEMPLATE},
        check=_no_secrets_in_user_data,
        severity=Severity.HIGH,
        remediation="Fetch secrets at boot from Secrets Manager or SSM with the node's role.",
        live=True,
    ),
]
