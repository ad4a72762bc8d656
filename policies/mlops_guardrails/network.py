"""VPC rules: flow logs, closed default security groups, no open ingress, private subnets."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

from pulumi_policy import ResourceValidationArgs, Severity, StackValidationArgs

from mlops_guardrails.frameworks import aws_fsbp, cis_aws
from mlops_guardrails.props import as_strings, is_true, items, mapping
from mlops_guardrails.rule import resource_rule, stack_rule

VPC: Final = "aws:ec2/vpc:Vpc"
SUBNET: Final = "aws:ec2/subnet:Subnet"
FLOW_LOG: Final = "aws:ec2/flowLog:FlowLog"
DEFAULT_SECURITY_GROUP: Final = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
SECURITY_GROUP: Final = "aws:ec2/securityGroup:SecurityGroup"
INGRESS_RULE: Final = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
SECURITY_GROUP_RULE: Final = "aws:ec2/securityGroupRule:SecurityGroupRule"
OPEN_CIDRS: Final = frozenset({"0.0.0.0/0", "::/0"})


def _linked_to_vpc(args: StackValidationArgs, linked_type: str) -> dict[str, list[Any]]:
    linked: dict[str, list[Any]] = {}
    for resource in args.resources:
        if resource.resource_type == linked_type:
            for vpc in resource.property_dependencies.get("vpcId", []):
                linked.setdefault(vpc.urn, []).append(resource)
    return linked


def _flow_logs(args: StackValidationArgs) -> Iterator[tuple[str, str]]:
    logged = _linked_to_vpc(args, FLOW_LOG)
    for vpc in (r for r in args.resources if r.resource_type == VPC):
        if not logged.get(vpc.urn):
            yield f"VPC {vpc.name} has no flow log", vpc.urn


def _default_group_closed(args: StackValidationArgs) -> Iterator[tuple[str, str]]:
    groups = _linked_to_vpc(args, DEFAULT_SECURITY_GROUP)
    for vpc in (r for r in args.resources if r.resource_type == VPC):
        managed = groups.get(vpc.urn, [])
        if not managed:
            yield f"VPC {vpc.name}'s default security group is left with AWS's open rules", vpc.urn
        for group in managed:
            if items(group.props.get("ingress")) or items(group.props.get("egress")):
                yield f"VPC {vpc.name}'s default security group has rules", group.urn


def _open_cidrs(rule: Mapping[str, Any]) -> list[str]:
    cidrs = [
        *as_strings(rule.get("cidrIpv4")),
        *as_strings(rule.get("cidrIpv6")),
        *as_strings(rule.get("cidrBlocks")),
        *as_strings(rule.get("ipv6CidrBlocks")),
    ]
    return sorted(OPEN_CIDRS.intersection(cidrs))


def _port(value: Any) -> str:
    """Ports arrive as floats over the analyzer protocol; absent means every port."""
    return f"{value:g}" if isinstance(value, int | float) else "all"


def _no_open_ingress(props: Mapping[str, Any], args: ResourceValidationArgs) -> Iterator[str]:
    if args.resource_type == SECURITY_GROUP:
        rules = [mapping(rule) for rule in items(props.get("ingress"))]
    elif args.resource_type == SECURITY_GROUP_RULE and props.get("type") != "ingress":
        return
    else:
        rules = [props]
    for rule in rules:
        opened = _open_cidrs(rule)
        if opened:
            ports = f"{_port(rule.get('fromPort'))}-{_port(rule.get('toPort'))}"
            yield f"ingress on ports {ports} is open to {', '.join(opened)}"


def _no_auto_public_ip(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterator[str]:
    if is_true(props.get("mapPublicIpOnLaunch")):
        yield "instances launched here get a public IP address automatically"


RULES = [
    stack_rule(
        name="vpc-flow-logs",
        description="Every VPC records its traffic in flow logs.",
        resource_types={VPC, FLOW_LOG},
        check=_flow_logs,
        severity=Severity.MEDIUM,
        framework=cis_aws("3.7"),
        remediation="Add an aws.ec2.FlowLog with vpc_id=<vpc>.id into an encrypted log group.",
    ),
    stack_rule(
        name="vpc-default-security-group-closed",
        description="Each VPC's default security group is managed and has no rules.",
        resource_types={VPC, DEFAULT_SECURITY_GROUP},
        check=_default_group_closed,
        severity=Severity.MEDIUM,
        framework=cis_aws("5.4"),
        remediation="Add an aws.ec2.DefaultSecurityGroup with vpc_id=<vpc>.id and no rules.",
    ),
    resource_rule(
        name="ec2-no-open-ingress",
        description="No security group admits traffic from the whole internet.",
        resource_types={SECURITY_GROUP, INGRESS_RULE, SECURITY_GROUP_RULE},
        check=_no_open_ingress,
        severity=Severity.HIGH,
        framework=cis_aws("5.2"),
        remediation="Admit only the VPC CIDR, a prefix list or another security group.",
    ),
    resource_rule(
        name="ec2-subnet-no-auto-public-ip",
        description="Subnets do not hand out public IP addresses on launch.",
        resource_types={SUBNET},
        check=_no_auto_public_ip,
        severity=Severity.MEDIUM,
        framework=aws_fsbp("EC2.15"),
        remediation="Set map_public_ip_on_launch=False; load balancers and NAT get their own.",
    ),
]
