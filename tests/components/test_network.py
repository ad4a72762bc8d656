"""The network in each stack's plan: subnets per AZ, NAT by environment, endpoints, flow logs."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from components.common import ComponentArgsError
from components.network import Network, NetworkArgs
from mlops_platform.engine import render_stack
from mlops_platform.project import PulumiProject
from mlops_platform.rendered import RecordedResource, RenderedStack
from tests.conftest import named, run_component

SUBNET = "aws:ec2/subnet:Subnet"


def subnets(rendered: RenderedStack, kind: str) -> list[RecordedResource]:
    return [s for s in rendered.of_type(SUBNET) if s.name.startswith(f"network-{kind}-")]


def test_prod_spans_three_zones_with_a_nat_gateway_in_each(
    rendered_stacks: dict[str, RenderedStack],
) -> None:
    prod = rendered_stacks["prod"]
    assert len(subnets(prod, "private")) == len(subnets(prod, "public")) == 3
    nats = prod.of_type("aws:ec2/natGateway:NatGateway")
    assert len(nats) == 3
    public_ids = {s.id for s in subnets(prod, "public")}
    assert {nat.inputs["subnetId"] for nat in nats} == public_ids


def test_dev_spans_two_zones_behind_one_nat_gateway(
    rendered_stacks: dict[str, RenderedStack],
) -> None:
    dev = rendered_stacks["dev"]
    assert len(subnets(dev, "private")) == 2
    [nat] = dev.of_type("aws:ec2/natGateway:NatGateway")
    routes = [r for r in dev.of_type("aws:ec2/route:Route") if "private" in r.name]
    assert len(routes) == 2
    assert {r.inputs["natGatewayId"] for r in routes} == {nat.id}


def test_each_private_subnet_routes_through_its_own_zones_nat_in_prod(
    rendered_stacks: dict[str, RenderedStack],
) -> None:
    prod = rendered_stacks["prod"]
    for zone in ("az1", "az2", "az3"):
        route = named(prod, "aws:ec2/route:Route", f"network-private-{zone}-default")
        nat = named(prod, "aws:ec2/natGateway:NatGateway", f"network-nat-{zone}")
        assert route.inputs["natGatewayId"] == nat.id


def test_subnet_cidrs_are_derived_from_the_vpc_and_spread_over_zones(
    rendered: RenderedStack,
) -> None:
    [vpc] = rendered.of_type("aws:ec2/vpc:Vpc")
    assert vpc.inputs["cidrBlock"] == "10.40.0.0/16"
    private = [s.inputs["cidrBlock"] for s in subnets(rendered, "private")]
    assert private[:2] == ["10.40.0.0/18", "10.40.64.0/18"]
    zones = [s.inputs["availabilityZone"] for s in subnets(rendered, "private")]
    assert zones == sorted(set(zones))


def test_subnets_carry_load_balancer_and_node_discovery_tags(rendered: RenderedStack) -> None:
    cluster = rendered.outputs["clusterName"]
    for subnet in subnets(rendered, "private"):
        assert subnet.inputs["tags"]["kubernetes.io/role/internal-elb"] == "1"
        assert subnet.inputs["tags"]["karpenter.sh/discovery"] == cluster
        assert subnet.inputs["mapPublicIpOnLaunch"] is False
    for subnet in subnets(rendered, "public"):
        assert subnet.inputs["tags"]["kubernetes.io/role/elb"] == "1"
        assert subnet.inputs["mapPublicIpOnLaunch"] is False


def test_s3_gateway_and_interface_endpoints_serve_the_private_subnets(
    rendered: RenderedStack,
) -> None:
    endpoints = {
        e.inputs["serviceName"]: e for e in rendered.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")
    }
    services = {name.removeprefix("com.amazonaws.us-east-1.") for name in endpoints}
    assert services == {"s3", "ecr.api", "ecr.dkr", "sts", "ec2", "logs", "kms", "ssm"}
    s3 = endpoints["com.amazonaws.us-east-1.s3"]
    assert s3.inputs["vpcEndpointType"] == "Gateway"
    assert len(s3.inputs["routeTableIds"]) == len(subnets(rendered, "private"))
    private_ids = sorted(s.id for s in subnets(rendered, "private"))
    for name, endpoint in endpoints.items():
        if name.endswith(".s3"):
            continue
        assert endpoint.inputs["privateDnsEnabled"] is True
        assert sorted(endpoint.inputs["subnetIds"]) == private_ids


def test_endpoints_admit_https_from_the_vpc_only(rendered: RenderedStack) -> None:
    [rule] = rendered.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    assert (rule.inputs["cidrIpv4"], rule.inputs["fromPort"], rule.inputs["toPort"]) == (
        "10.40.0.0/16",
        443,
        443,
    )


def test_the_default_security_group_is_emptied(rendered: RenderedStack) -> None:
    [group] = rendered.of_type("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
    assert "ingress" not in group.inputs and "egress" not in group.inputs


def test_flow_logs_go_to_an_encrypted_retained_log_group(
    rendered_stacks: dict[str, RenderedStack],
) -> None:
    for stack, days in {"dev": 30, "prod": 365}.items():
        rendered = rendered_stacks[stack]
        [flow_log] = rendered.of_type("aws:ec2/flowLog:FlowLog")
        log_group = named(rendered, "aws:cloudwatch/logGroup:LogGroup", "network-flow-logs")
        logs_key = named(rendered, "aws:kms/key:Key", "logs-key")
        assert flow_log.inputs["trafficType"] == "ALL"
        assert flow_log.inputs["logDestination"] == log_group.outputs["arn"]
        assert log_group.inputs["kmsKeyId"] == logs_key.outputs["arn"]
        assert log_group.inputs["retentionInDays"] == days


def test_flow_logs_role_may_write_only_its_log_group(rendered: RenderedStack) -> None:
    log_group = named(rendered, "aws:cloudwatch/logGroup:LogGroup", "network-flow-logs")
    policy = named(rendered, "aws:iam/rolePolicy:RolePolicy", "network-flow-logs")
    [statement] = json.loads(policy.inputs["policy"])["Statement"]
    arn = log_group.outputs["arn"]
    assert statement["Resource"] == [arn, f"{arn}:*"]


def test_an_existing_vpc_is_used_instead_of_building_one(
    make_project: Callable[[str, str], PulumiProject],
) -> None:
    project = make_project(
        "dev",
        """
        config:
          aws:region: eu-west-1
          mlops-platform:platform:
            environment: dev
            network:
              existing:
                vpcId: vpc-0123456789abcdef0
                privateSubnetIds: [subnet-0aaaaaaaaaaaaaaaa, subnet-0bbbbbbbbbbbbbbbb]
            eks: {endpoint: {publicAccessCidrs: ["203.0.113.0/24"]}}
        """,
    )
    rendered = render_stack(project, "dev")
    assert rendered.of_type("aws:ec2/vpc:Vpc") == []
    assert rendered.of_type("mlops:network:Network") == []
    [cluster] = rendered.of_type("aws:eks/cluster:Cluster")
    assert cluster.inputs["vpcConfig"]["subnetIds"] == [
        "subnet-0aaaaaaaaaaaaaaaa",
        "subnet-0bbbbbbbbbbbbbbbb",
    ]
    assert rendered.outputs["vpcId"] == "vpc-0123456789abcdef0"


def test_a_layout_that_cannot_work_is_refused() -> None:
    args = NetworkArgs(
        vpc_cidr="10.0.0.0/16",
        availability_zones=4,
        nat_per_az=True,
        interface_endpoints=(),
        flow_log_retention_days=30,
        logs_kms_key_arn="arn:aws:kms:eu-west-1:123456789012:key/k",
        cluster_name="c",
        tags={},
    )
    with pytest.raises(ComponentArgsError, match="derived subnets cover at most 3 AZs"):
        run_component(lambda: Network("n", args))
