"""The Network component in each of its modes (zone count, a NAT per zone or one for all, interface
endpoints or none, derived or listed subnets, protection), the network defaults a stack gets, and
every stack's network as its config describes it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from components.common import ComponentArgsError
from components.network import Network, NetworkArgs
from infra.config import ExistingNetworkMode
from mlops_platform.engine import render_stack
from mlops_platform.project import PulumiProject
from mlops_platform.rendered import RecordedResource, RenderedStack
from tests.configs import profile, stack_platform_config
from tests.conftest import named, run_component

SUBNET = "aws:ec2/subnet:Subnet"
NAT = "aws:ec2/natGateway:NatGateway"
ROUTE = "aws:ec2/route:Route"
ROUTE_TABLE = "aws:ec2/routeTable:RouteTable"
ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
LOGS_KEY = "arn:aws:kms:eu-west-1:123456789012:key/logs"
SERVICE_PREFIX = "com.amazonaws.eu-west-1."  # run_component's region


def network_args(**overrides: Any) -> NetworkArgs:
    defaults: dict[str, Any] = {
        "vpc_cidr": "10.8.0.0/16",
        "availability_zones": 3,
        "nat_per_az": True,
        "interface_endpoints": ("ecr.api", "sts"),
        "flow_log_retention_days": 365,
        "logs_kms_key_arn": LOGS_KEY,
        "cluster_name": "ml-test",
        "tags": {"team": "ml"},
        "protect": True,
    }
    return NetworkArgs(**{**defaults, **overrides})


MODES = {
    "hardened": network_args(),
    "cheap": network_args(
        availability_zones=2,
        nat_per_az=False,
        interface_endpoints=(),
        flow_log_retention_days=30,
        protect=False,
    ),
    "listed-subnets": network_args(
        availability_zones=2,
        private_subnet_cidrs=("10.8.0.0/20", "10.8.16.0/20"),
        public_subnet_cidrs=("10.8.255.0/26", "10.8.255.64/26"),
    ),
}


@pytest.fixture(scope="module")
def networks() -> dict[str, RenderedStack]:
    """Each mode's network, rendered once for the module."""
    return {
        mode: run_component(lambda args=args: Network("network", args))
        for mode, args in MODES.items()
    }


def subnets(rendered: RenderedStack, kind: str) -> list[RecordedResource]:
    """The private or public subnets, in zone order."""
    found = [s for s in rendered.of_type(SUBNET) if s.name.startswith(f"network-{kind}-")]
    return sorted(found, key=lambda subnet: subnet.name)


def zone_keys(args: NetworkArgs) -> list[str]:
    return [f"az{n}" for n in range(1, args.availability_zones + 1)]


@pytest.mark.parametrize("mode", MODES)
def test_one_private_and_one_public_subnet_in_each_of_the_zones_asked_for(
    networks: dict[str, RenderedStack], mode: str
) -> None:
    rendered = networks[mode]
    zones = [s.inputs["availabilityZone"] for s in subnets(rendered, "private")]
    assert len(set(zones)) == MODES[mode].availability_zones
    assert zones == sorted(zones)
    assert [s.inputs["availabilityZone"] for s in subnets(rendered, "public")] == zones


def test_a_nat_per_zone_sits_in_that_zones_public_subnet_and_serves_its_private_subnet(
    networks: dict[str, RenderedStack],
) -> None:
    rendered = networks["hardened"]
    keys = zone_keys(MODES["hardened"])
    assert len(rendered.of_type(NAT)) == len(keys)
    for zone in keys:
        nat = named(rendered, NAT, f"network-nat-{zone}")
        assert nat.inputs["subnetId"] == named(rendered, SUBNET, f"network-public-{zone}").id
        route = named(rendered, ROUTE, f"network-private-{zone}-default")
        assert route.inputs["natGatewayId"] == nat.id


def test_a_single_nat_in_the_first_zone_serves_every_private_subnet(
    networks: dict[str, RenderedStack],
) -> None:
    rendered = networks["cheap"]
    [nat] = rendered.of_type(NAT)
    assert nat.inputs["subnetId"] == named(rendered, SUBNET, "network-public-az1").id
    for zone in zone_keys(MODES["cheap"]):
        route = named(rendered, ROUTE, f"network-private-{zone}-default")
        assert route.inputs["natGatewayId"] == nat.id


@pytest.mark.parametrize(
    ("mode", "private", "public"),
    [
        (
            "hardened",
            ["10.8.0.0/18", "10.8.64.0/18", "10.8.128.0/18"],
            ["10.8.192.0/22", "10.8.196.0/22", "10.8.200.0/22"],
        ),
        ("listed-subnets", ["10.8.0.0/20", "10.8.16.0/20"], ["10.8.255.0/26", "10.8.255.64/26"]),
    ],
)
def test_subnet_cidrs_are_derived_from_the_vpc_unless_listed(
    networks: dict[str, RenderedStack], mode: str, private: list[str], public: list[str]
) -> None:
    rendered = networks[mode]
    [vpc] = rendered.of_type("aws:ec2/vpc:Vpc")
    assert vpc.inputs["cidrBlock"] == MODES[mode].vpc_cidr
    assert [s.inputs["cidrBlock"] for s in subnets(rendered, "private")] == private
    assert [s.inputs["cidrBlock"] for s in subnets(rendered, "public")] == public


@pytest.mark.parametrize("mode", MODES)
def test_subnets_carry_load_balancer_and_node_discovery_tags(
    networks: dict[str, RenderedStack], mode: str
) -> None:
    args = MODES[mode]
    for subnet in subnets(networks[mode], "private"):
        assert subnet.inputs["tags"]["kubernetes.io/role/internal-elb"] == "1"
        assert subnet.inputs["tags"]["karpenter.sh/discovery"] == args.cluster_name
        assert args.tags.items() <= subnet.inputs["tags"].items()
        assert subnet.inputs["mapPublicIpOnLaunch"] is False
    for subnet in subnets(networks[mode], "public"):
        assert subnet.inputs["tags"]["kubernetes.io/role/elb"] == "1"
        assert subnet.inputs["mapPublicIpOnLaunch"] is False


def test_s3_gateway_and_interface_endpoints_serve_the_private_subnets(
    networks: dict[str, RenderedStack],
) -> None:
    rendered = networks["hardened"]
    endpoints = {
        e.inputs["serviceName"].removeprefix(SERVICE_PREFIX): e for e in rendered.of_type(ENDPOINT)
    }
    assert endpoints.keys() == {"s3", *MODES["hardened"].interface_endpoints}
    s3 = endpoints.pop("s3")
    assert s3.inputs["vpcEndpointType"] == "Gateway"
    private_route_tables = [
        named(rendered, ROUTE_TABLE, f"network-private-{zone}").id
        for zone in zone_keys(MODES["hardened"])
    ]
    assert sorted(s3.inputs["routeTableIds"]) == sorted(private_route_tables)
    [group] = rendered.of_type("aws:ec2/securityGroup:SecurityGroup")
    private_ids = sorted(s.id for s in subnets(rendered, "private"))
    for endpoint in endpoints.values():
        assert endpoint.inputs["vpcEndpointType"] == "Interface"
        assert endpoint.inputs["privateDnsEnabled"] is True
        assert sorted(endpoint.inputs["subnetIds"]) == private_ids
        assert endpoint.inputs["securityGroupIds"] == [group.id]


def test_without_interface_endpoints_only_the_s3_gateway_is_built(
    networks: dict[str, RenderedStack],
) -> None:
    rendered = networks["cheap"]
    [s3] = rendered.of_type(ENDPOINT)
    assert s3.inputs["serviceName"] == f"{SERVICE_PREFIX}s3"
    assert rendered.of_type("aws:ec2/securityGroup:SecurityGroup") == []
    assert rendered.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule") == []


def test_endpoints_admit_https_from_the_vpc_only(networks: dict[str, RenderedStack]) -> None:
    rendered = networks["hardened"]
    [group] = rendered.of_type("aws:ec2/securityGroup:SecurityGroup")
    [rule] = rendered.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    assert rule.inputs["securityGroupId"] == group.id
    assert (
        rule.inputs["cidrIpv4"],
        rule.inputs["ipProtocol"],
        rule.inputs["fromPort"],
        rule.inputs["toPort"],
    ) == (MODES["hardened"].vpc_cidr, "tcp", 443, 443)


def test_the_default_security_group_is_emptied(networks: dict[str, RenderedStack]) -> None:
    [group] = networks["cheap"].of_type("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
    assert "ingress" not in group.inputs and "egress" not in group.inputs


@pytest.mark.parametrize("mode", MODES)
def test_flow_logs_go_to_an_encrypted_retained_log_group(
    networks: dict[str, RenderedStack], mode: str
) -> None:
    rendered = networks[mode]
    [vpc] = rendered.of_type("aws:ec2/vpc:Vpc")
    [flow_log] = rendered.of_type("aws:ec2/flowLog:FlowLog")
    log_group = named(rendered, LOG_GROUP, "network-flow-logs")
    assert flow_log.inputs["vpcId"] == vpc.id
    assert flow_log.inputs["trafficType"] == "ALL"
    assert flow_log.inputs["logDestination"] == log_group.outputs["arn"]
    assert log_group.inputs["kmsKeyId"] == LOGS_KEY
    assert log_group.inputs["retentionInDays"] == MODES[mode].flow_log_retention_days


@pytest.mark.parametrize("mode", ["hardened", "cheap"])
def test_only_the_flow_log_group_is_protected_and_only_when_asked(
    networks: dict[str, RenderedStack], mode: str
) -> None:
    rendered = networks[mode]
    protect = MODES[mode].protect
    log_group = named(rendered, LOG_GROUP, "network-flow-logs")
    assert log_group.retain_on_delete is protect
    assert log_group.inputs["deletionProtectionEnabled"] is protect
    assert [r.type for r in rendered.resources if r.protect] == ([LOG_GROUP] if protect else [])


def test_flow_logs_role_serves_only_this_accounts_flow_logs_and_writes_only_its_log_group(
    networks: dict[str, RenderedStack],
) -> None:
    rendered = networks["hardened"]
    role = named(rendered, "aws:iam/role:Role", "network-flow-logs")
    [trust] = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert trust["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}
    policy = named(rendered, "aws:iam/rolePolicy:RolePolicy", "network-flow-logs")
    [statement] = json.loads(policy.inputs["policy"])["Statement"]
    arn = named(rendered, LOG_GROUP, "network-flow-logs").outputs["arn"]
    assert statement["Resource"] == [arn, f"{arn}:*"]


def test_a_layout_that_cannot_work_is_refused() -> None:
    with pytest.raises(ComponentArgsError, match="derived subnets cover at most 3 AZs"):
        run_component(lambda: Network("n", network_args(availability_zones=4)))


def test_a_stack_that_sets_no_network_gets_the_default_cidr_endpoints_and_log_retention() -> None:
    dev, staging, prod = profile("dev"), profile("staging"), profile("prod")
    # Changing the default CIDR would replace the VPC of every stack that relies on it.
    assert {c.network.vpc_cidr for c in (dev, staging, prod)} == {"10.40.0.0/16"}
    assert dev.network.interface_endpoints == [
        "ecr.api",
        "ecr.dkr",
        "sts",
        "ec2",
        "logs",
        "kms",
        "ssm",
    ]
    assert [c.network.flow_log_retention_days for c in (dev, staging, prod)] == [30, 90, 365]


def test_every_stack_builds_the_network_its_config_describes(
    rendered: RenderedStack, project: PulumiProject
) -> None:
    """Config to Network wiring, on whatever each stack file says."""
    config = stack_platform_config(project, rendered.stack)
    network = config.network
    if isinstance(network, ExistingNetworkMode):
        pytest.skip("the stack uses an existing VPC")
    [vpc] = rendered.of_type("aws:ec2/vpc:Vpc")
    assert vpc.inputs["cidrBlock"] == network.vpc_cidr
    assert len(subnets(rendered, "private")) == network.availability_zones
    per_az = network.nat_gateways == "per-az"
    assert len(rendered.of_type(NAT)) == (network.availability_zones if per_az else 1)
    region = project.stack_config(rendered.stack).region
    assert {e.inputs["serviceName"] for e in rendered.of_type(ENDPOINT)} == {
        f"com.amazonaws.{region}.{service}" for service in ("s3", *network.interface_endpoints)
    }
    log_group = named(rendered, LOG_GROUP, "network-flow-logs")
    logs_key = named(rendered, "aws:kms/key:Key", "logs-key")
    assert log_group.inputs["retentionInDays"] == network.flow_log_retention_days
    assert log_group.inputs["kmsKeyId"] == logs_key.outputs["arn"]
    assert log_group.protect is config.protect_stateful_resources


def test_every_stacks_cluster_discovers_its_own_private_subnets(rendered: RenderedStack) -> None:
    for subnet in subnets(rendered, "private"):
        assert subnet.inputs["tags"]["karpenter.sh/discovery"] == rendered.outputs["clusterName"]


@pytest.mark.parametrize("backend", ["managed-node-groups", "karpenter"])
def test_an_existing_vpc_is_used_instead_of_building_one(
    make_project: Callable[[str, str], PulumiProject], backend: str
) -> None:
    """Spans the program: the config's VPC and subnets reach the cluster, each GPU backend's
    pools (a pinned pool its zone's subnet) and the stack outputs, and no Network is built."""
    project = make_project(
        "dev",
        f"""
        config:
          aws:region: eu-west-1
          mlops-platform:platform:
            environment: dev
            network:
              existing:
                vpcId: vpc-0123456789abcdef0
                privateSubnets:
                  - {{id: subnet-0aaaaaaaaaaaaaaaa, zone: eu-west-1b}}
                  - {{id: subnet-0bbbbbbbbbbbbbbbb, zone: eu-west-1c}}
            eks: {{endpoint: {{publicAccessCidrs: ["203.0.113.0/24"]}}}}
            gpu:
              backend: {backend}
              pools:
                train: {{purpose: training, instanceTypes: [g6e.12xlarge], maxNodes: 2,
                         maxGpus: 8, zone: 2}}
                serve: {{purpose: inference, instanceTypes: [g6.xlarge], maxNodes: 2, maxGpus: 2}}
        """,
    )
    rendered = render_stack(project, "dev")
    given = ["subnet-0aaaaaaaaaaaaaaaa", "subnet-0bbbbbbbbbbbbbbbb"]
    assert rendered.of_type("aws:ec2/vpc:Vpc") == []
    assert rendered.of_type("mlops:network:Network") == []
    [cluster] = rendered.of_type("aws:eks/cluster:Cluster")
    assert cluster.inputs["vpcConfig"]["subnetIds"] == given
    assert rendered.outputs["vpcId"] == "vpc-0123456789abcdef0"
    if backend == "karpenter":
        classes = {
            r.inputs["metadata"]["name"]: r.inputs["spec"]
            for r in rendered.of_type("kubernetes:karpenter.k8s.aws/v1:EC2NodeClass")
        }
        assert classes["serve"]["subnetSelectorTerms"] == [{"id": s} for s in given]
        assert classes["train"]["subnetSelectorTerms"] == [{"id": given[1]}]
        pools = {
            r.inputs["metadata"]["name"]: r.inputs["spec"]["template"]["spec"]["requirements"]
            for r in rendered.of_type("kubernetes:karpenter.sh/v1:NodePool")
        }
        zone = next(r for r in pools["train"] if r["key"] == "topology.kubernetes.io/zone")
        assert zone["values"] == ["eu-west-1c"]
    else:
        groups = {g.name: g for g in rendered.of_type("aws:eks/nodeGroup:NodeGroup")}
        assert groups["gpu-train-node-group"].inputs["subnetIds"] == [given[1]]
        assert groups["gpu-serve-node-group"].inputs["subnetIds"] == given
