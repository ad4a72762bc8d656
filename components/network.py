"""The VPC an EKS cluster runs in: subnets per AZ, NAT, VPC endpoints and flow logs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.common import (
    ComponentArgsError,
    account_context,
    availability_zone_names,
    encrypted_log_group,
    https_ingress,
)
from components.policy_documents import flow_logs_delivery, service_trust
from components.subnet_layout import SubnetLayoutError, subnet_layout


@dataclass(frozen=True)
class NetworkRef:
    """Where the cluster goes: a network the platform built, or one it was given."""

    vpc_id: pulumi.Input[str]
    private_subnet_ids: pulumi.Input[Sequence[str]]
    public_subnet_ids: pulumi.Input[Sequence[str]]
    public_subnet_cidrs: pulumi.Input[Sequence[str]] = ()
    """Where internet-facing load balancers get their addresses, for pods that admit them."""
    private_subnet_zones: pulumi.Input[Sequence[str]] = ()
    """The availability zone of each private subnet, in the same order."""


@dataclass(frozen=True)
class NetworkArgs:
    vpc_cidr: str
    availability_zones: int
    nat_per_az: bool
    """One NAT gateway per AZ, so losing an AZ does not cut the others off the internet."""
    interface_endpoints: Sequence[str]
    """Service names under com.amazonaws.<region>., e.g. `ecr.api`, `sts`."""
    flow_log_retention_days: int
    logs_kms_key_arn: pulumi.Input[str]
    cluster_name: str
    """Tags the private subnets for Karpenter's node discovery."""
    tags: Mapping[str, str]
    private_subnet_cidrs: Sequence[str] | None = None
    public_subnet_cidrs: Sequence[str] | None = None
    protect: bool = False
    """Protect the flow-log group (the network itself holds no data)."""


class Network(pulumi.ComponentResource):
    TYPE = "mlops:network:Network"

    vpc_id: pulumi.Output[str]
    ref: NetworkRef

    def __init__(
        self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(self.TYPE, name, None, opts)
        try:
            layout = subnet_layout(
                args.vpc_cidr,
                args.availability_zones,
                args.private_subnet_cidrs,
                args.public_subnet_cidrs,
            )
        except SubnetLayoutError as error:
            raise ComponentArgsError(self.TYPE, name, str(error)) from None

        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)
        account = account_context(self)
        zones = availability_zone_names(pulumi.InvokeOptions(parent=self))

        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.vpc_cidr,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags={**tags, "Name": f"{args.cluster_name}"},
            opts=child,
        )
        # CIS AWS 5.4: the default security group admits nothing; everything uses its own group.
        aws.ec2.DefaultSecurityGroup(
            f"{name}-default-security-group", vpc_id=vpc.id, tags=tags, opts=child
        )
        internet_gateway = aws.ec2.InternetGateway(
            f"{name}-internet-gateway", vpc_id=vpc.id, tags=tags, opts=child
        )
        public_routes = aws.ec2.RouteTable(f"{name}-public", vpc_id=vpc.id, tags=tags, opts=child)
        aws.ec2.Route(
            f"{name}-public-default",
            route_table_id=public_routes.id,
            destination_cidr_block="0.0.0.0/0",
            gateway_id=internet_gateway.id,
            opts=child,
        )

        # Subnets are keyed by AZ ordinal: adding an AZ appends, it never renames the others.
        public_subnets, private_subnets, private_routes, nat_gateways = [], [], [], []
        for index, (private_cidr, public_cidr) in enumerate(
            zip(layout.private, layout.public, strict=True)
        ):
            zone_key = f"az{index + 1}"
            zone = zones[index]
            public = aws.ec2.Subnet(
                f"{name}-public-{zone_key}",
                vpc_id=vpc.id,
                cidr_block=public_cidr,
                availability_zone=zone,
                map_public_ip_on_launch=False,
                tags={**tags, "kubernetes.io/role/elb": "1", "Name": f"public-{zone_key}"},
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{zone_key}",
                subnet_id=public.id,
                route_table_id=public_routes.id,
                opts=child,
            )
            private = aws.ec2.Subnet(
                f"{name}-private-{zone_key}",
                vpc_id=vpc.id,
                cidr_block=private_cidr,
                availability_zone=zone,
                map_public_ip_on_launch=False,
                tags={
                    **tags,
                    "kubernetes.io/role/internal-elb": "1",
                    "karpenter.sh/discovery": args.cluster_name,
                    "Name": f"private-{zone_key}",
                },
                opts=child,
            )
            if args.nat_per_az or index == 0:
                address = aws.ec2.Eip(f"{name}-nat-{zone_key}", domain="vpc", tags=tags, opts=child)
                nat_gateways.append(
                    aws.ec2.NatGateway(
                        f"{name}-nat-{zone_key}",
                        allocation_id=address.allocation_id,
                        subnet_id=public.id,
                        tags=tags,
                        opts=pulumi.ResourceOptions(parent=self, depends_on=[internet_gateway]),
                    )
                )
            routes = aws.ec2.RouteTable(
                f"{name}-private-{zone_key}", vpc_id=vpc.id, tags=tags, opts=child
            )
            aws.ec2.Route(
                f"{name}-private-{zone_key}-default",
                route_table_id=routes.id,
                destination_cidr_block="0.0.0.0/0",
                nat_gateway_id=nat_gateways[-1].id,
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{zone_key}",
                subnet_id=private.id,
                route_table_id=routes.id,
                opts=child,
            )
            public_subnets.append(public)
            private_subnets.append(private)
            private_routes.append(routes)

        # S3 traffic (datasets, checkpoints, images' layers) stays off the NAT gateways.
        aws.ec2.VpcEndpoint(
            f"{name}-s3",
            vpc_id=vpc.id,
            service_name=pulumi.Output.concat("com.amazonaws.", account.region, ".s3"),
            vpc_endpoint_type="Gateway",
            route_table_ids=[routes.id for routes in private_routes],
            tags=tags,
            opts=child,
        )
        if args.interface_endpoints:
            endpoint_group = aws.ec2.SecurityGroup(
                f"{name}-endpoints",
                description="HTTPS from inside the VPC to AWS service endpoints",
                vpc_id=vpc.id,
                tags=tags,
                opts=child,
            )
            https_ingress(
                f"{name}-endpoints-https",
                self,
                security_group_id=endpoint_group.id,
                description="HTTPS from the VPC",
                cidr=args.vpc_cidr,
                tags=tags,
            )
            for service in args.interface_endpoints:
                aws.ec2.VpcEndpoint(
                    f"{name}-{service.replace('.', '-')}",
                    vpc_id=vpc.id,
                    service_name=pulumi.Output.concat(
                        "com.amazonaws.", account.region, ".", service
                    ),
                    vpc_endpoint_type="Interface",
                    private_dns_enabled=True,
                    subnet_ids=[subnet.id for subnet in private_subnets],
                    security_group_ids=[endpoint_group.id],
                    tags=tags,
                    opts=child,
                )

        self._flow_logs(name, args, vpc, account.account_id)

        self.vpc_id = vpc.id
        self.ref = NetworkRef(
            vpc_id=vpc.id,
            private_subnet_ids=pulumi.Output.all(*[s.id for s in private_subnets]),
            public_subnet_ids=pulumi.Output.all(*[s.id for s in public_subnets]),
            public_subnet_cidrs=pulumi.Output.all(*[s.cidr_block for s in public_subnets]),
            private_subnet_zones=pulumi.Output.all(*[s.availability_zone for s in private_subnets]),
        )
        self.register_outputs(
            {
                "vpcId": self.vpc_id,
                "privateSubnetIds": self.ref.private_subnet_ids,
                "publicSubnetIds": self.ref.public_subnet_ids,
            }
        )

    def _flow_logs(
        self, name: str, args: NetworkArgs, vpc: aws.ec2.Vpc, account_id: pulumi.Output[str]
    ) -> None:
        child = pulumi.ResourceOptions(parent=self)
        log_group = encrypted_log_group(
            f"{name}-flow-logs",
            self,
            kms_key_arn=args.logs_kms_key_arn,
            retention_days=args.flow_log_retention_days,
            tags=args.tags,
            protect=args.protect,
        )
        role = aws.iam.Role(
            f"{name}-flow-logs",
            assume_role_policy=pulumi.Output.json_dumps(
                account_id.apply(
                    lambda account: service_trust("vpc-flow-logs.amazonaws.com", account)
                )
            ),
            tags=dict(args.tags),
            opts=child,
        )
        delivery = aws.iam.RolePolicy(
            f"{name}-flow-logs",
            role=role.id,
            policy=pulumi.Output.json_dumps(log_group.arn.apply(flow_logs_delivery)),
            opts=child,
        )
        aws.ec2.FlowLog(
            f"{name}-flow-logs",
            vpc_id=vpc.id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=log_group.arn,
            iam_role_arn=role.arn,
            max_aggregation_interval=60,
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[delivery]),
        )
