"""Preflight against moto: a ready account, each missing prerequisite, and denied calls.

moto models IAM service-linked roles, EC2 instance types, offerings, zones and instances, and
STS. It has no Service Quotas `ListServiceQuotas`, no EC2 `DescribeCapacityReservations`, no
EKS `DescribeClusterVersions` and no CodeConnections `ListConnections` (moto 404s it): those
four, and only those, are faked here (`Fakes`), with the response shapes of botocore's models.
"""

from __future__ import annotations

import datetime
import functools
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from infra.config import PlatformConfig
from mlops_guardrails.vocabulary import KUBERNETES_VERSIONS
from mlops_platform.cli import main
from mlops_platform.preflight import Preflight, preflight, quota_names
from tests.configs import profile
from tests.conftest import REPO_ROOT

REGION = "us-east-1"
NOW = datetime.datetime(2026, 12, 2, tzinfo=datetime.UTC)
ALLOWED = ["arn:aws*:iam::*:role/platform-deployer*"]
RESERVATION = "cr-0123456789abcdef0"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
            "Action": "sts:AssumeRole",
        }
    ],
}


class Fakes:
    """What moto lacks, answered as AWS would; everything else goes to moto."""

    def __init__(self) -> None:
        self.quotas = {
            "Running On-Demand P instances": 400.0,
            "Running On-Demand G and VT instances": 64.0,
            "All G and VT Spot Instance Requests": 64.0,
        }
        self.reservation: dict[str, Any] = {
            "CapacityReservationId": RESERVATION,
            "InstanceType": "p5.48xlarge",
            "AvailabilityZone": "us-east-1a",
            "State": "active",
            "ReservationType": "default",
            "EndDate": NOW + datetime.timedelta(days=30),
        }
        self.versions = list(KUBERNETES_VERSIONS)
        self.connections = [
            {"ConnectionName": "github", "ProviderType": "GitHub", "ConnectionStatus": "AVAILABLE"}
        ]
        self.denied: set[str] = set()

    def allow(self, operation: str) -> None:
        if operation in self.denied:
            raise ClientError({"Error": {"Code": "AccessDenied"}}, operation)

    def client(self, service: str) -> Any:
        real = _moto_client(service)
        fakes = self

        class Client:
            def __getattr__(self, name: str) -> Any:
                fakes.allow(name)
                return getattr(real, name)

            def get_paginator(self, operation: str) -> Any:
                fakes.allow(operation)
                if service == "service-quotas":
                    quotas = [{"QuotaName": k, "Value": v} for k, v in fakes.quotas.items()]
                    return _Pages([{"Quotas": quotas}])
                return real.get_paginator(operation)

            def describe_capacity_reservations(self, **kwargs: Any) -> Any:
                fakes.allow("describe_capacity_reservations")
                ids = kwargs["CapacityReservationIds"]
                if ids != [fakes.reservation["CapacityReservationId"]]:
                    raise ClientError(
                        {"Error": {"Code": "InvalidCapacityReservationId.NotFound"}},
                        "DescribeCapacityReservations",
                    )
                return {"CapacityReservations": [fakes.reservation]}

            def list_connections(self, **kwargs: Any) -> Any:
                fakes.allow("list_connections")
                wanted = kwargs["ProviderTypeFilter"]
                return {
                    "Connections": [c for c in fakes.connections if c["ProviderType"] == wanted]
                }

            def describe_cluster_versions(self, **kwargs: Any) -> Any:
                fakes.allow("describe_cluster_versions")
                wanted = kwargs["clusterVersions"]
                return {
                    "clusterVersions": [
                        {"clusterVersion": v, "versionStatus": "STANDARD_SUPPORT"}
                        for v in fakes.versions
                        if v in wanted
                    ]
                }

        return Client()


@functools.cache
def _moto_client(service: str) -> Any:
    """One client per service (moto answers whichever account the module's mock holds)."""
    return boto3.client(service, region_name=REGION)


class _Pages:
    def __init__(self, pages: list[dict[str, Any]]) -> None:
        self.pages = pages

    def paginate(self, **_: Any) -> list[dict[str, Any]]:
        return self.pages


@pytest.fixture(scope="module")
def ready_account() -> Iterator[None]:
    """One moto account for the module, ready for a first deploy; a test that changes it puts
    it back (moto's set-up is most of each test's time)."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
        }.items():
            patch.setenv(name, value)
        with mock_aws():
            iam = boto3.client("iam")
            iam.create_service_linked_role(AWSServiceName="autoscaling.amazonaws.com")
            iam.create_role(
                RoleName="platform-deployer", AssumeRolePolicyDocument=json.dumps(TRUST)
            )
            yield


@pytest.fixture
def account(ready_account: None) -> Fakes:
    return Fakes()


def config(**pools: dict[str, Any]) -> PlatformConfig:
    return profile("prod", gpu={"pools": pools})


TRAIN = {
    "purpose": "training",
    "instanceTypes": ["p5.48xlarge"],
    "maxNodes": 2,
    "maxGpus": 16,
}


def run(account: Fakes, platform: PlatformConfig) -> Preflight:
    return preflight(account.client, platform, region=REGION, admin_patterns=ALLOWED, now=NOW)


def statuses(report: Preflight) -> dict[str, str]:
    return {r.check: r.status for r in report.results}


def test_a_ready_account_passes_every_check(account: Fakes) -> None:
    report = run(account, config(train=TRAIN))
    assert report.blockers == [] and report.unchecked == []
    assert statuses(report) == {
        "service-linked role AWSServiceRoleForAutoScaling": "ok",
        "vCPU quota 'Running On-Demand P instances'": "ok",
        "pool train: instance types offered": "ok",
        "Kubernetes 1.35 on EKS": "ok",
        "deployer role": "ok",
    }


def test_a_missing_service_linked_role_blocks_with_the_command_that_makes_it(
    account: Fakes,
) -> None:
    iam = boto3.client("iam")
    iam.delete_service_linked_role(RoleName="AWSServiceRoleForAutoScaling")
    try:
        [blocker] = run(account, config(train=TRAIN)).blockers
    finally:
        iam.create_service_linked_role(AWSServiceName="autoscaling.amazonaws.com")
    assert blocker.check == "service-linked role AWSServiceRoleForAutoScaling"
    assert blocker.fix == (
        "aws iam create-service-linked-role --aws-service-name autoscaling.amazonaws.com"
    )


def test_a_pool_beyond_its_vcpu_quota_blocks_counting_what_already_runs(account: Fakes) -> None:
    """2 x p5.48xlarge = 384 vCPUs; 400 allowed, but an instance of another stack already holds
    some: new accounts start at 0 for P instances, the usual first failure of a GPU platform."""
    ec2 = boto3.client("ec2", region_name=REGION)
    image = ec2.register_image(Name="other-stack-image", RootDeviceName="/dev/xvda")["ImageId"]
    [instance] = ec2.run_instances(
        ImageId=image, InstanceType="p5.48xlarge", MinCount=1, MaxCount=1
    )["Instances"]
    try:
        [blocker] = run(account, config(train=TRAIN)).blockers
    finally:
        ec2.terminate_instances(InstanceIds=[instance["InstanceId"]])
    assert blocker.check == "vCPU quota 'Running On-Demand P instances'"
    assert "need up to 384 vCPUs; quota 400" in blocker.detail
    assert blocker.fix.startswith("request at least")


def test_instance_types_not_offered_in_a_pools_zone_block(account: Fakes) -> None:
    """moto's offerings for us-east-1 have no g6.xlarge in us-east-1e."""
    existing = {
        "vpcId": "vpc-0123456789abcdef0",
        "privateSubnets": [
            {"id": f"subnet-0{letter * 16}", "zone": f"us-east-1{letter}"} for letter in "abe"
        ],
    }
    serve = {"purpose": "inference", "instanceTypes": ["g6.xlarge"], "maxNodes": 1, "maxGpus": 1}
    platform = profile(
        "prod", network={"existing": existing}, gpu={"pools": {"serve": serve | {"zone": 3}}}
    )
    [blocker] = run(account, platform).blockers
    assert blocker.check == "pool serve: instance types offered"
    assert blocker.detail == "g6.xlarge offered in none of us-east-1e"


RESERVATION_MISFITS = [
    ({"InstanceType": "p4d.24xlarge"}, "for p4d.24xlarge, not p5.48xlarge"),
    ({"AvailabilityZone": "us-east-1b"}, "in us-east-1b, the pool is in us-east-1a"),
    ({"State": "expired"}, "its state is expired"),
    ({"ReservationType": "capacity-block"}, "a capacity block"),
]


def test_a_reservation_that_does_not_fit_its_pool_blocks(account: Fakes) -> None:
    reserved = TRAIN | {
        "capacity": {"type": "reservation", "reservationId": RESERVATION},
        "zone": 1,
    }
    platform = config(train=reserved)
    fitting = dict(account.reservation)
    assert run(account, platform).blockers == []
    for change, problem in RESERVATION_MISFITS:
        account.reservation = fitting | change
        [blocker] = run(account, platform).blockers
        assert blocker.check == f"pool train: capacity {RESERVATION}"
        assert problem in blocker.detail, change


def test_a_version_eks_does_not_offer_in_the_region_blocks(account: Fakes) -> None:
    account.versions = ["1.34"]
    [blocker] = run(account, config(train=TRAIN)).blockers
    assert blocker.check == "Kubernetes 1.35 on EKS"


def test_denied_calls_leave_their_checks_unchecked_not_failed(account: Fakes) -> None:
    account.denied = {"list_service_quotas", "describe_cluster_versions"}
    report = run(account, config(train=TRAIN))
    assert report.blockers == []
    assert {r.check for r in report.unchecked} == {"EC2 vCPU quotas", "Kubernetes 1.35 on EKS"}


@pytest.mark.parametrize(
    ("instance_type", "market", "names"),
    [
        ("p5.48xlarge", "on-demand", ["Running On-Demand P instances"]),
        ("g6e.12xlarge", "spot", ["All G and VT Spot Instance Requests"]),
        ("trn1.32xlarge", "on-demand", ["Running On-Demand Trn instances"]),
        ("inf2.xlarge", "spot", ["All Inf Spot Instance Requests"]),
        ("p5.48xlarge", "spot", ["All P5 Spot Instance Requests", "All P Spot Instance Requests"]),
        (
            "p4d.24xlarge",
            "spot",
            ["All P4, P3 and P2 Spot Instance Requests", "All P Spot Instance Requests"],
        ),
    ],
)
def test_each_family_draws_on_its_quota_group(
    instance_type: str, market: str, names: list[str]
) -> None:
    """EC2 User Guide, "Spot Instance quotas" (P spot requests split into P5 and P4, P3 and P2)
    and On-Demand instance quotas."""
    assert quota_names(instance_type, market) == names


def test_a_missing_deployer_role_blocks(account: Fakes) -> None:
    iam = boto3.client("iam")
    iam.delete_role(RoleName="platform-deployer")
    try:
        [blocker] = run(account, config(train=TRAIN)).blockers
    finally:
        iam.create_role(RoleName="platform-deployer", AssumeRolePolicyDocument=json.dumps(TRUST))
    assert blocker.check == "deployer role" and "does not exist" in blocker.detail


def test_the_command_reports_what_did_not_run_and_blocks_on_the_example_repository(
    account: Fakes, capsys: pytest.CaptureFixture[str]
) -> None:
    """The real command, against moto alone, on the checked-in prod stack: quotas and versions
    cannot be read, and the report says so; the stack file's runner still names the example
    repository, a blocker (exit 1), which outranks an incomplete report (exit 3)."""
    code = main(["--project-dir", str(REPO_ROOT), "preflight", "--stack", "prod"])
    out = capsys.readouterr().out
    assert code == 1, out
    assert "unchecked EC2 vCPU quotas" in out
    assert "deployRunner.repository is the example example-org/mlops-platform" in out


RUNNER = {"repository": "acme/ml-platform", "connectionName": "github"}
RUNNER_CHECK = "deploy runner: GitHub connection github"


def with_runner(**runner: str) -> PlatformConfig:
    return profile("prod", eks={"endpoint": {"deployRunner": RUNNER | runner}})


def test_an_authorised_connection_readies_the_deploy_runner(account: Fakes) -> None:
    report = run(account, with_runner())
    assert statuses(report)[RUNNER_CHECK] == "ok" and report.blockers == []


@pytest.mark.parametrize(
    ("connections", "runner", "detail"),
    [
        ([], {}, "no GitHub connection named github in us-east-1"),
        (
            [{"ConnectionName": "github", "ProviderType": "GitHub", "ConnectionStatus": "PENDING"}],
            {},
            "its status is PENDING",
        ),
        (None, {"repository": "example-org/mlops-platform"}, "is the example"),
    ],
    ids=["missing", "pending", "example-repository"],
)
def test_a_deploy_runner_without_an_authorised_connection_blocks(
    account: Fakes, connections: list[dict[str, str]] | None, runner: dict[str, str], detail: str
) -> None:
    if connections is not None:
        account.connections = connections
    [blocker] = run(account, with_runner(**runner)).blockers
    assert blocker.check == RUNNER_CHECK and detail in blocker.detail and blocker.fix


def test_a_platform_that_serves_models_needs_the_load_balancing_role(account: Fakes) -> None:
    """Its load balancer controller may not create the role (no IAM under the workload
    boundary): an account that never had a load balancer lacks it."""
    serving = profile(
        "prod",
        gpu={
            "pools": {"train": TRAIN},
            "teams": {
                "serving": {
                    "servesModels": True,
                    "ingress": [{"ports": [8080], "fromPublicSubnets": True}],
                }
            },
        },
    )
    [blocker] = run(account, serving).blockers
    assert blocker.check == "service-linked role AWSServiceRoleForElasticLoadBalancing"
    assert blocker.fix.endswith("--aws-service-name elasticloadbalancing.amazonaws.com")
    iam = boto3.client("iam")
    # As AWS names it (IAM User Guide, "Services that work with IAM": Elastic Load Balancing);
    # moto's create_service_linked_role would name it AWSServiceRoleForelasticloadbalancing.
    iam.create_role(
        RoleName="AWSServiceRoleForElasticLoadBalancing",
        Path="/aws-service-role/elasticloadbalancing.amazonaws.com/",
        AssumeRolePolicyDocument=json.dumps(TRUST),
    )
    try:
        assert run(account, serving).blockers == []
    finally:
        iam.delete_role(RoleName="AWSServiceRoleForElasticLoadBalancing")
