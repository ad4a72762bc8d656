"""Each config rule and the message a user sees for breaking it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from infra import names
from infra.config import ConfigError, PlatformConfig, load_platform_config
from mlops_guardrails.vocabulary import KUBERNETES_VERSIONS
from mlops_platform.project import ProjectError, PulumiProject
from tests.configs import with_required_keys

ROOT = "mlops-platform:platform"


DEV_ENDPOINT = {"endpoint": {"publicAccessCidrs": ["203.0.113.0/24"]}}


def load(raw: Any, stack: str = "dev") -> PlatformConfig:
    return load_platform_config(with_required_keys(raw), stack=stack, project="mlops-platform")


def problems(raw: Any, stack: str = "dev") -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(raw, stack)
    return caught.value.problems


def test_minimal_config_takes_the_environment_profile() -> None:
    dev = load({"environment": "dev"})
    prod = load({"environment": "prod"}, stack="prod")
    assert (dev.protect_stateful_resources, prod.protect_stateful_resources) == (False, True)
    assert (dev.kms.deletion_window_days, prod.kms.deletion_window_days) == (7, 30)
    assert dev.artifacts.noncurrent_version_retention_days < (
        prod.artifacts.noncurrent_version_retention_days
    )
    assert sorted(dev.artifacts.buckets) == ["datasets", "experiments", "models"]


def test_stack_file_values_override_the_profile() -> None:
    config = load({"environment": "dev", "kms": {"deletionWindowDays": 10}})
    assert config.kms.deletion_window_days == 10


@pytest.mark.parametrize(
    ("given", "buckets"),
    [
        (
            {"features": {"purpose": "feature snapshots"}},
            ["datasets", "experiments", "features", "models"],
        ),
        ({"experiments": None}, ["datasets", "models"]),
        (
            {"models": {"noncurrentVersionRetentionDays": 730}},
            ["datasets", "experiments", "models"],
        ),
    ],
    ids=["added", "removed", "replaced"],
)
def test_bucket_entries_add_to_replace_or_remove_the_defaults(
    given: dict[str, Any], buckets: list[str]
) -> None:
    # The tracking server keeps its artifacts in the experiments bucket unless told otherwise.
    tracking = {"bucket": "models"}
    config = load(
        {"environment": "dev", "artifacts": {"buckets": given}, "experimentTracking": tracking}
    )
    assert sorted(config.artifacts.buckets) == buckets


def test_a_tracking_server_is_on_by_default_and_must_name_a_bucket_the_stack_has() -> None:
    assert load({"environment": "dev"}).experiment_tracking is not None
    assert load({"environment": "prod"}).experiment_tracking.size == "Medium"  # type: ignore[union-attr]
    assert load({"environment": "dev", "experimentTracking": None}).experiment_tracking is None
    assert problems({"environment": "dev", "artifacts": {"buckets": {"experiments": None}}}) == [
        "mlops-platform:platform.experimentTracking.bucket: no bucket 'experiments'; have: "
        "datasets, models"
    ]


def test_workloads_reach_the_tracking_server_only_when_the_stack_has_one() -> None:
    workload = {"namespace": "research", "serviceAccount": "t", "experimentTracking": "read"}
    raw = {"environment": "dev", "workloads": {"trainer": workload}}
    assert (
        "mlops-platform:platform.workloads.trainer.experimentTracking: the stack has no tracking "
        "server: set experimentTracking"
    ) in problems({**raw, "experimentTracking": None})


@pytest.mark.parametrize(
    ("tracking", "key", "shown"),
    [
        # SageMaker's pattern is title case, whatever its guide's example says.
        ({"maintenanceWindow": "TUE:03:30"}, "maintenanceWindow", "TUE:03:30"),
        # The provider reads the version back as major.minor: a patch would differ forever.
        ({"mlflowVersion": "3.0.1"}, "mlflowVersion", "3.0.1"),
        ({"prefix": ""}, "prefix", "''"),
        ({"size": "XLarge"}, "size", "XLarge"),
    ],
)
def test_tracking_server_settings_aws_refuses_are_config_errors(
    tracking: dict[str, Any], key: str, shown: str
) -> None:
    [found] = problems({"environment": "dev", "experimentTracking": tracking})
    assert found.startswith(f"mlops-platform:platform.experimentTracking.{key}: ")
    assert found.endswith(f"; got {shown}")


@pytest.mark.parametrize("stack", ["dev", "a" * 63, "0-9", "x" + "-" * 61 + "y"])
def test_every_cluster_name_config_allows_names_a_tracking_server_aws_accepts(stack: str) -> None:
    """Cluster names are lowercase letters, digits and inner hyphens, at most 63 (the key's
    pattern, or the stack name checked against it): the server's name is too, with room."""
    eks = DEV_ENDPOINT | {"clusterName": stack}
    cluster = load({"environment": "dev", "eks": eks}).cluster_name("mlops-platform", "dev")
    assert names.MLFLOW_TRACKING_SERVER.problem(names.tracking_server_name(cluster)) is None


def test_pinning_one_addon_keeps_the_others() -> None:
    eks = DEV_ENDPOINT | {"addons": {"vpc-cni": {"version": "v1.20.1-eksbuild.3"}}}
    addons = load({"environment": "dev", "eks": eks}).eks.addons
    assert addons["vpc-cni"].version == "v1.20.1-eksbuild.3"
    assert addons["coredns"].version == "recommended" and len(addons) == 6


def test_missing_platform_value_says_where_to_put_it() -> None:
    [problem] = problems(None)
    assert problem.startswith(f"{ROOT}: missing")


def test_platform_value_must_be_a_mapping() -> None:
    [problem] = problems("dev")
    assert "must be a mapping" in problem


def test_unknown_key_names_the_allowed_keys() -> None:
    [problem] = problems({"environment": "dev", "kms": {"deletionWindow": 7}})
    assert problem.startswith(f"{ROOT}.kms.deletionWindow: unknown key")
    assert "deletionWindowDays" in problem
    assert "adminRoleArns" in problem


def test_unknown_top_level_key_is_an_error() -> None:
    [problem] = problems({"environment": "dev", "artifact": {}})
    assert problem.startswith(f"{ROOT}.artifact: unknown key")
    assert "artifacts" in problem


def test_unknown_environment_lists_the_allowed_ones_and_nothing_else() -> None:
    [problem] = problems({"environment": "production"})
    assert problem.startswith(f"{ROOT}.environment:")
    assert "'dev', 'staging' or 'prod'" in problem
    # The value as the stack file wrote it, in YAML.
    assert problem.endswith("; got production")


def test_out_of_range_value_says_the_bound_and_the_value() -> None:
    [problem] = problems({"environment": "dev", "kms": {"deletionWindowDays": 3}})
    assert problem == (
        f"{ROOT}.kms.deletionWindowDays: Input should be greater than or equal to 7; got 3"
    )


def test_wrong_type_is_not_coerced() -> None:
    [problem] = problems({"environment": "dev", "protectStatefulResources": "yes"})
    assert problem.startswith(f"{ROOT}.protectStatefulResources: Input should be a valid boolean")


def test_prod_must_protect_stateful_resources() -> None:
    [problem] = problems({"environment": "prod", "protectStatefulResources": False}, "prod")
    assert problem == f"{ROOT}.protectStatefulResources: must be true in prod; got false"


def test_prod_keeps_the_longest_key_deletion_window() -> None:
    [problem] = problems({"environment": "prod", "kms": {"deletionWindowDays": 7}}, "prod")
    assert problem.startswith(f"{ROOT}.kms.deletionWindowDays: must be 30 in prod")


def test_access_log_bucket_key_is_reserved() -> None:
    [problem] = problems({"environment": "dev", "artifacts": {"buckets": {"access-logs": {}}}})
    assert "'access-logs' is reserved" in problem


def test_bucket_key_must_be_a_short_lowercase_name() -> None:
    [problem] = problems({"environment": "dev", "artifacts": {"buckets": {"Models": {}}}})
    assert problem.startswith(f"{ROOT}.artifacts.buckets.Models")


def test_at_least_one_bucket() -> None:
    every_default_removed = {"models": None, "datasets": None, "experiments": None}
    [problem] = problems({"environment": "dev", "artifacts": {"buckets": every_default_removed}})
    assert problem.startswith(f"{ROOT}.artifacts.buckets:")


def test_admin_role_must_be_a_role_arn() -> None:
    [problem] = problems(
        {"environment": "dev", "kms": {"adminRoleArns": ["arn:aws:iam::123456789012:user/bob"]}}
    )
    assert problem.startswith(f"{ROOT}.kms.adminRoleArns[0]:")


@pytest.mark.parametrize("key", ["mlops:environment", "managed-by", "aws:createdBy"])
def test_reserved_tag_keys_are_rejected(key: str) -> None:
    [problem] = problems({"environment": "dev", "tags": {key: "x"}})
    assert problem.startswith(f"{ROOT}.tags:")


def test_every_problem_is_reported_at_once_with_the_stack_file() -> None:
    raw = {
        "environment": "prod",
        "protectStatefulResources": False,
        "kms": {"deletionWindowDays": 99, "typo": 1},
        "artifacts": {"abortIncompleteMultipartUploadDays": 0},
    }
    with pytest.raises(ConfigError) as caught:
        load(raw, stack="prod")
    assert len(caught.value.problems) == 4
    message = str(caught.value)
    assert message.startswith("invalid platform configuration in Pulumi.prod.yaml (4 problems)")
    for problem in caught.value.problems:
        assert f"  - {problem}" in message


def test_network_defaults_follow_the_environment() -> None:
    dev = load({"environment": "dev"})
    prod = load({"environment": "prod"}, stack="prod")
    assert (dev.network.availability_zones, dev.network.nat_gateways) == (2, "single")
    assert (prod.network.availability_zones, prod.network.nat_gateways) == (3, "per-az")


def test_prod_needs_three_zones_and_a_nat_per_zone() -> None:
    raw = {"environment": "prod", "network": {"availabilityZones": 2, "natGateways": "single"}}
    assert problems(raw, "prod") == [
        f"{ROOT}.network.availabilityZones: prod needs at least 3 availability zones; got 2",
        f"{ROOT}.network.natGateways: prod needs a NAT gateway per AZ ('per-az'); got single",
    ]


def test_overlapping_subnets_are_rejected() -> None:
    network = {
        "vpcCidr": "10.0.0.0/16",
        "privateSubnetCidrs": ["10.0.0.0/18", "10.0.32.0/19"],
        "publicSubnetCidrs": ["10.0.192.0/24", "10.0.193.0/24"],
    }
    [problem] = problems({"environment": "dev", "network": network})
    assert problem.startswith(f"{ROOT}.network: subnets 10.0.0.0/18 and 10.0.32.0/19 overlap")


def test_subnets_too_small_for_pods_are_rejected() -> None:
    network = {
        "vpcCidr": "10.0.0.0/16",
        "privateSubnetCidrs": ["10.0.0.0/24", "10.0.1.0/24"],
        "publicSubnetCidrs": ["10.0.192.0/24", "10.0.193.0/24"],
    }
    [problem] = problems({"environment": "dev", "network": network})
    assert "private subnet 10.0.0.0/24 has 256 addresses; pods need at least 4096" in problem


def test_a_vpc_too_small_for_pods_is_rejected() -> None:
    [problem] = problems({"environment": "dev", "network": {"vpcCidr": "10.0.0.0/20"}})
    assert problem.startswith(f"{ROOT}.network.vpcCidr: a /20 VPC; use /16 to /18")


def test_a_cidr_must_be_a_cidr() -> None:
    [problem] = problems({"environment": "dev", "network": {"vpcCidr": "10.0.0.300/16"}})
    assert problem.startswith(f"{ROOT}.network.vpcCidr: not an IPv4 CIDR block")


def test_unsupported_kubernetes_version_lists_the_supported_ones() -> None:
    [problem] = problems({"environment": "dev", "eks": {**DEV_ENDPOINT, "version": "1.29"}})
    assert problem == (
        f"{ROOT}.eks.version: Kubernetes 1.29 is not supported here; use one of "
        "1.34, 1.35, 1.36; got '1.29'"
    )


def test_prod_endpoint_must_be_private() -> None:
    endpoint = {"publicAccess": True, "publicAccessCidrs": ["203.0.113.0/24"]}
    [problem] = problems({"environment": "prod", "eks": {"endpoint": endpoint}}, "prod")
    assert problem.startswith(f"{ROOT}.eks.endpoint.publicAccess: the API endpoint must be private")


def test_an_open_cidr_is_refused_for_the_public_endpoint() -> None:
    [problem] = problems(
        {"environment": "dev", "eks": {"endpoint": {"publicAccessCidrs": ["0.0.0.0/0"]}}}
    )
    assert problem.startswith(f"{ROOT}.eks.endpoint.publicAccessCidrs: 0.0.0.0/0 opens the API")


RUNNER = {"repository": "example-org/mlops-platform", "connectionName": "github"}


@pytest.mark.parametrize("environment", ["staging", "prod"])
def test_a_private_endpoint_with_no_path_to_it_is_refused(environment: str) -> None:
    [problem] = problems({"environment": environment, "eks": {"endpoint": {}}}, environment)
    assert problem.startswith(f"{ROOT}.eks.endpoint: a private endpoint needs a path")
    assert "deployRunner" in problem and "privateAccessCidrs" in problem


@pytest.mark.parametrize(
    "endpoint",
    [{"deployRunner": RUNNER}, {"privateAccessCidrs": ["10.200.0.0/16"]}],
    ids=["runner", "vpn"],
)
def test_a_runner_or_a_connected_network_is_a_path_to_a_private_endpoint(
    endpoint: dict[str, Any],
) -> None:
    config = load({"environment": "prod", "eks": {"endpoint": endpoint}}, "prod")
    assert not config.eks.endpoint.public_access


@pytest.mark.parametrize(
    ("runner", "problem"),
    [
        (
            {**RUNNER, "repository": "mlops-platform"},
            "deployRunner.repository: String should match",
        ),
        ({**RUNNER, "connectionName": "my github"}, "deployRunner.connectionName: String should"),
        ({**RUNNER, "buildTimeoutMinutes": 3000}, "deployRunner.buildTimeoutMinutes: Input should"),
        ({"repository": "o/r"}, "deployRunner.connectionName: required, but not set"),
    ],
    ids=["repository", "connection", "timeout", "connection-missing"],
)
def test_a_deploy_runner_is_checked_before_anything_is_created(
    runner: dict[str, Any], problem: str
) -> None:
    [found] = problems(
        {"environment": "prod", "eks": {"endpoint": {"deployRunner": runner}}}, "prod"
    )
    assert found.startswith(f"{ROOT}.eks.endpoint.{problem}"), found


def test_a_public_endpoint_needs_an_allow_list() -> None:
    [problem] = problems({"environment": "dev", "eks": {"endpoint": {"publicAccess": True}}})
    assert problem.startswith(f"{ROOT}.eks.endpoint: a public endpoint needs publicAccessCidrs")


def test_an_unknown_addon_names_the_known_ones() -> None:
    addons = {"vpc-cni": {}, "coredns": {}, "kube-proxy": {}, "eks-pod-identity-agent": {}}
    [problem] = problems(
        {"environment": "dev", "eks": {**DEV_ENDPOINT, "addons": {**addons, "istio": {}}}}
    )
    assert problem.startswith(f"{ROOT}.eks.addons.istio")
    assert "aws-ebs-csi-driver" in problem


def test_required_addons_cannot_be_removed() -> None:
    removed = {"vpc-cni": None, "kube-proxy": None, "eks-pod-identity-agent": None}
    [problem] = problems({"environment": "dev", "eks": {**DEV_ENDPOINT, "addons": removed}})
    assert "cannot run without vpc-cni, kube-proxy, eks-pod-identity-agent" in problem


def test_addon_versions_are_exact_or_recommended() -> None:
    addons = {"vpc-cni": {"version": "latest"}}
    [problem, *_] = problems({"environment": "dev", "eks": {**DEV_ENDPOINT, "addons": addons}})
    assert problem.startswith(f"{ROOT}.eks.addons.vpc-cni.version")


def test_prod_logs_all_five_types_and_protects_the_cluster() -> None:
    raw = {"environment": "prod", "eks": {"logTypes": ["api"], "deletionProtection": False}}
    assert [p.split(":")[1] for p in problems(raw, "prod")] == [
        "platform.eks.logTypes",
        "platform.eks.deletionProtection",
    ]


def test_node_group_sizes_must_be_ordered() -> None:
    nodes = {"minSize": 3, "desiredSize": 2, "maxSize": 4}
    [problem] = problems({"environment": "dev", "eks": {**DEV_ENDPOINT, "systemNodes": nodes}})
    assert "need minSize <= desiredSize <= maxSize, got 3, 2, 4" in problem


def test_the_metrics_namespace_cannot_be_left_out() -> None:
    """kube-state-metrics installs into it and Helm releases do not create namespaces."""
    eks = {**DEV_ENDPOINT, "namespaces": ["platform-system"]}
    [problem] = problems({"environment": "dev", "eks": eks})
    assert problem.startswith(f"{ROOT}.eks.namespaces: must include 'monitoring'")


def test_every_namespace_config_names_must_be_made_by_someone() -> None:
    raw = {
        "environment": "dev",
        "eks": {**DEV_ENDPOINT, "externalNamespaces": ["apps"]},
        "gpu": {"teams": {"serving": {"ingress": [{"ports": [8080], "fromNamespaces": ["web"]}]}}},
        "workloads": {
            "api": {"namespace": "apps", "serviceAccount": "api"},
            "batch": {"namespace": "jobs", "serviceAccount": "batch"},
        },
    }
    where = (
        "is not made by this stack; add it to gpu.teams, eks.namespaces or eks.externalNamespaces"
    )
    # One line per problem, each at its own key.
    assert problems(raw) == [
        f"{ROOT}.workloads.batch.namespace: namespace 'jobs' {where}",
        f"{ROOT}.gpu.teams.serving.ingress[0].fromNamespaces: namespace 'web' {where}",
    ]


def test_a_namespace_has_one_owner() -> None:
    raw = {
        "environment": "dev",
        "eks": {**DEV_ENDPOINT, "externalNamespaces": ["research"]},
        "gpu": {"teams": {"research": {}}},
    }
    [problem] = problems(raw)
    assert problem == f"{ROOT}.gpu.teams.research: also a platform or external namespace"


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"ports": [8080]}, "name at least one source"),
        ({"ports": [], "fromNamespaces": ["research"]}, "at least 1 item"),
        ({"ports": [70000], "fromNamespaces": ["research"]}, "less than or equal to 65535"),
        (
            {"ports": [8080], "fromCidrs": ["10.40.0.0/16"]},
            "10.40.0.0/16 overlaps the private subnets, where pods get their addresses",
        ),
    ],
    ids=["no-source", "no-port", "bad-port", "pod-addresses"],
)
def test_ingress_rules_name_ports_and_sources_outside_the_cluster(
    rule: dict[str, Any], message: str
) -> None:
    raw = {
        "environment": "dev",
        "eks": DEV_ENDPOINT,
        "gpu": {"teams": {"research": {}, "serving": {"ingress": [rule]}}},
    }
    [problem] = problems(raw)
    assert message in problem


SERVING: dict[str, Any] = {
    "servesModels": True,
    "ingress": [{"ports": [8080], "fromNamespaces": ["research"]}],
}


@pytest.mark.parametrize(
    ("team", "message"),
    [
        (
            {
                "ingress": SERVING["ingress"],
                "deployer": {"repository": "a/b", "environments": ["dev"]},
            },
            "serving: deployer ships model services: set servesModels: true",
        ),
        (
            {"servesModels": True},
            "serving: servesModels: declare the port model services answer on in ingress",
        ),
        (
            {**SERVING, "deployer": {"repository": "acme/serving", "environments": []}},
            "serving.deployer.environments: List should have at least 1 item",
        ),
        (
            {**SERVING, "deployer": {"repository": "acme/serving", "environments": ["prod*"]}},
            "serving.deployer.environments[0]: String should match pattern",
        ),
        (
            {**SERVING, "deployer": {"repository": "acme", "environments": ["dev"]}},
            "serving.deployer.repository: String should match pattern",
        ),
    ],
    ids=[
        "not-serving",
        "no-serving-port",
        "no-environment",
        "wildcard-environment",
        "not-owner-slash-name",
    ],
)
def test_a_team_deployer_names_exact_github_environments_of_one_repository_of_a_serving_team(
    team: dict[str, Any], message: str
) -> None:
    raw = {"environment": "dev", "eks": DEV_ENDPOINT, "gpu": {"teams": {"serving": team}}}
    [problem] = problems(raw)
    assert f"{ROOT}.gpu.teams.{message}" in problem


def test_public_subnet_callers_need_public_subnets() -> None:
    existing = {"vpcId": "vpc-0123456789abcdef0", "privateSubnets": PRIVATE_SUBNETS}
    raw = {
        "environment": "dev",
        "eks": DEV_ENDPOINT,
        "network": {"existing": existing},
        "gpu": {"teams": {"serving": {"ingress": [{"ports": [80], "fromPublicSubnets": True}]}}},
    }
    [problem] = problems(raw)
    assert problem == (
        f"{ROOT}.gpu.teams.serving.ingress[0].fromPublicSubnets: network.existing names no "
        "public subnets (publicSubnets)"
    )


def test_cluster_admin_cannot_be_namespaced() -> None:
    entry = {
        "principalArn": "arn:aws:iam::123456789012:role/ml-admins",
        "access": "cluster-admin",
        "namespaces": ["ml"],
    }
    [problem] = problems(
        {"environment": "dev", "eks": {**DEV_ENDPOINT, "access": {"ml-admins": entry}}}
    )
    assert problem.startswith(f"{ROOT}.eks.access.ml-admins: cluster-admin cannot be limited")


def pool(**overrides: Any) -> dict[str, Any]:
    return {
        "purpose": "training",
        "instanceTypes": ["p5.48xlarge"],
        "maxNodes": 2,
        "maxGpus": 16,
    } | overrides


def gpu_problems(pools: dict[str, Any], **gpu: Any) -> list[str]:
    return problems({"environment": "dev", "gpu": {"pools": pools, **gpu}})


def test_a_gpu_pool_derives_its_hardware() -> None:
    config = load({"environment": "dev", "gpu": {"pools": {"train": pool()}}})
    assert config.gpu.pools["train"].max_gpus == 16


def test_a_non_accelerator_instance_type_is_refused() -> None:
    [problem] = gpu_problems({"train": pool(instanceTypes=["m7i.large"])})
    assert problem.startswith(f"{ROOT}.gpu.pools.train: not accelerator instance types: m7i.large")


def test_mixed_accelerator_families_are_refused() -> None:
    [problem] = gpu_problems({"mix": pool(instanceTypes=["g6.xlarge", "inf2.xlarge"], maxGpus=100)})
    assert "mix accelerator families (neuron/x86_64, nvidia/x86_64)" in problem


def test_min_above_max_and_desired_out_of_range_are_refused() -> None:
    [problem] = gpu_problems({"train": pool(minNodes=3, desiredNodes=5, maxNodes=2)})
    assert "minNodes 3 is above maxNodes 2" in problem
    assert "desiredNodes 5 is outside minNodes..maxNodes (3..2)" in problem


def test_a_capacity_block_is_for_one_instance_type() -> None:
    capacity = {"type": "capacity-block", "reservationId": "cr-0123456789abcdef0"}
    [problem] = gpu_problems(
        {
            "train": pool(
                instanceTypes=["p5.48xlarge", "p5e.48xlarge"], capacity=capacity, maxGpus=64
            )
        }
    )
    assert "a capacity block is for exactly one instance type" in problem


def test_reserved_capacity_needs_its_id() -> None:
    [problem] = gpu_problems({"train": pool(capacity={"type": "reservation"})})
    assert problem.startswith(
        f"{ROOT}.gpu.pools.train.capacity: capacity type reservation needs reservationId"
    )


def test_efa_across_zones_is_refused() -> None:
    [problem] = gpu_problems({"train": pool(efa=True)})
    assert "set zone (no EFA across AZs)" in problem


def test_efa_needs_capable_instance_types() -> None:
    [problem] = gpu_problems({"small": pool(instanceTypes=["g6.xlarge"], efa=True, zone=1)})
    assert "EFA needs instance types that support it" in problem


def test_a_pool_that_could_exceed_its_gpu_ceiling_is_refused() -> None:
    [problem] = gpu_problems({"train": pool(maxNodes=4, maxGpus=16)})
    assert "maxNodes 4 x 8 accelerators per node = 32, above maxGpus 16" in problem


def test_a_team_quota_above_the_pools_ceiling_is_refused() -> None:
    [problem] = gpu_problems({"train": pool()}, teams={"research": {"gpuQuota": 24}})
    assert problem.startswith(f"{ROOT}.gpu: team research may request 24 nvidia accelerators")
    assert "the pools advertise at most 16" in problem


def test_team_quotas_count_time_sliced_gpus_once_per_share() -> None:
    """Pods request shares of a time-sliced GPU: 4 GPUs in 4 shares each serve 16 requests."""
    shared = pool(
        purpose="inference", instanceTypes=["g6.xlarge"], maxGpus=4, timeSlicingReplicas=4
    )
    gpu = {"pools": {"chat": shared}, "teams": {"serving": {"gpuQuota": 16}}}
    assert load({"environment": "dev", "gpu": gpu}).gpu.teams["serving"].gpu_quota == 16
    [problem] = gpu_problems({"chat": shared}, teams={"serving": {"gpuQuota": 17}})
    assert "advertise at most 16" in problem


def test_a_root_volume_faster_than_its_iops_allow_is_refused() -> None:
    """gp3 gives at most 0.25 MiB/s per IOPS: 1,000 MiB/s needs 4,000 IOPS, not the 3,000
    baseline (EBS volume types page)."""
    [problem] = gpu_problems({"train": pool(rootVolumeThroughput=1000)})
    assert "needs at least 4000 IOPS" in problem
    fast = pool(rootVolumeThroughput=1000, rootVolumeIops=4000)
    assert load({"environment": "dev", "gpu": {"pools": {"train": fast}}}).gpu.pools["train"]


@pytest.mark.parametrize("capacity", ["capacity-block", "reservation"])
def test_reserved_capacity_pools_name_their_zone(capacity: str) -> None:
    """A capacity block or On-Demand Capacity Reservation holds capacity in one zone."""
    reserved = {"type": capacity, "reservationId": "cr-0123456789abcdef0"}
    [problem] = gpu_problems({"train": pool(capacity=reserved)})
    assert f"a {capacity} holds capacity in one availability zone: set zone" in problem


def test_time_slicing_is_for_nvidia() -> None:
    [problem] = gpu_problems({"neuron": pool(instanceTypes=["inf2.xlarge"], timeSlicingReplicas=4)})
    assert "time slicing is for NVIDIA GPUs" in problem


def test_a_pool_zone_must_exist() -> None:
    [problem] = gpu_problems({"train": pool(efa=True, zone=3)})
    assert problem.endswith("gpu.pools.train.zone: zone 3 is beyond network.availabilityZones (2)")


def test_duplicate_pool_names_in_a_stack_file_are_refused(
    make_project: Callable[[str, str], PulumiProject],
) -> None:
    project = make_project(
        "dev",
        """
        config:
          aws:region: eu-west-1
          mlops-platform:platform:
            environment: dev
            gpu:
              pools:
                train: {purpose: training, instanceTypes: [g6.xlarge], maxNodes: 1, maxGpus: 1}
                train: {purpose: inference, instanceTypes: [g6.xlarge], maxNodes: 1, maxGpus: 1}
        """,
    )
    with pytest.raises(ProjectError, match="duplicate key 'train'"):
        project.stack_config("dev")


def group(**overrides: Any) -> dict[str, Any]:
    return {
        "recordIdentifier": "id",
        "eventTime": "ts",
        "features": {"id": "String", "ts": "String", "clicks": "Integral"},
    } | overrides


def store_problems(groups: dict[str, Any]) -> list[str]:
    return problems({"environment": "dev", "featureStore": {"featureGroups": groups}})


def test_reserved_feature_names_are_refused() -> None:
    [problem] = store_problems(
        {"g": group(features={"id": "String", "ts": "String", "write_time": "String"})}
    )
    assert "feature names ['write_time'] are reserved by SageMaker" in problem


def test_record_id_and_event_time_must_be_features() -> None:
    [problem] = store_problems({"g": group(recordIdentifier="user", eventTime="when")})
    assert "recordIdentifier 'user' is not one of the features" in problem
    assert "eventTime 'when' is not one of the features" in problem


def test_event_time_must_be_a_timestamp_type() -> None:
    [problem] = store_problems({"g": group(features={"id": "String", "ts": "Integral"})})
    assert "must be String (ISO 8601) or Fractional (epoch)" in problem


def test_a_feature_group_needs_a_store() -> None:
    [problem] = store_problems({"g": group(online=False, offline=False)})
    assert "enable the online store, the offline store or both" in problem


def test_provisioned_throughput_needs_the_standard_online_store_or_none() -> None:
    [problem] = store_problems({"g": group(onlineStorage="InMemory", throughput="Provisioned")})
    assert "Provisioned throughput needs the Standard online store" in problem
    assert load(
        {
            "environment": "dev",
            "featureStore": {
                "featureGroups": {
                    "standard": group(throughput="Provisioned"),
                    "offline-only": group(
                        online=False, onlineStorage="InMemory", throughput="Provisioned"
                    ),
                }
            },
        }
    )


def test_duplicate_feast_views_are_refused() -> None:
    [problem] = problems(
        {
            "environment": "dev",
            "featureStore": {"feast": {"project": "p", "featureViews": ["a", "a"]}},
        }
    )
    assert 'repeats "a": list each entry once' in problem


def test_workloads_may_name_only_what_exists() -> None:
    workload = {
        "namespace": "ml",
        "serviceAccount": "job",
        "buckets": [{"bucket": "logs"}],
        "repositories": {"images": "pull"},
    }
    found = problems(
        {
            "environment": "dev",
            "gpu": {"teams": {"ml": {}}},
            "workloads": {"job": workload},
        }
    )
    assert found == [
        f"{ROOT}.workloads.job.buckets[0].bucket: no bucket 'logs'; have: datasets, experiments, "
        "models",
        f"{ROOT}.workloads.job.repositories.images: no repository 'images'; have: none",
    ]


def test_two_workloads_cannot_share_a_service_account() -> None:
    same = {"namespace": "ml", "serviceAccount": "job"}
    teams = {"teams": {"ml": {}}}
    [problem] = problems({"environment": "dev", "gpu": teams, "workloads": {"a": same, "b": same}})
    assert problem == (
        f"{ROOT}.workloads.b.serviceAccount: workload a has service account ml/job too: one role "
        "per service account"
    )


@pytest.mark.parametrize(
    ("subscription", "expected"),
    [
        ({"protocol": "https", "endpoint": "http://hooks.example.com"}, "must be an https:// URL"),
        ({"protocol": "email", "endpoint": "on-call"}, "must be an email address"),
        ({"protocol": "sqs", "endpoint": "my-queue"}, "must be an SQS queue ARN"),
        ({"protocol": "sms", "endpoint": "+15555550100"}, "Input should be 'email', 'https'"),
    ],
)
def test_alert_subscriptions_are_checked_against_their_protocol(
    subscription: dict[str, str], expected: str
) -> None:
    [problem] = problems({"environment": "dev", "monitoring": {"subscriptions": [subscription]}})
    assert problem.startswith(f"{ROOT}.monitoring.subscriptions[0]") and expected in problem


def test_every_environment_has_a_budget_by_default_and_the_stack_may_set_its_own() -> None:
    assert load({"environment": "dev"}).cost.monthly_budget_usd == 3000
    own = load({"environment": "prod", "cost": {"alertAtPercent": [90]}}, stack="prod").cost
    assert (own.monthly_budget_usd, own.alert_at_percent) == (60000, [90])


def test_budget_alerts_stay_within_what_aws_budgets_accepts() -> None:
    [problem] = problems(
        {"environment": "dev", "cost": {"alertAtPercent": list(range(10, 110, 10))}}
    )
    # The section is named by its path, not restated.
    assert problem == f"{ROOT}.cost: 11 alert thresholds; AWS Budgets takes at most 10 per budget"


def test_idle_gpu_alerts_need_a_sensible_window() -> None:
    [problem] = problems({"environment": "dev", "monitoring": {"gpuIdleMinutes": 1}})
    assert problem.startswith(f"{ROOT}.monitoring.gpuIdleMinutes: Input should be greater")


def test_a_chart_version_without_a_contract_is_refused() -> None:
    """The platform relies on facts read from each chart version's source; a version nobody
    read is refused, naming the versions that were."""
    [problem] = gpu_problems({"train": pool()}, charts={"karpenter": "1.11.0"})
    assert problem.startswith(
        f"{ROOT}.gpu.charts.karpenter: karpenter 1.11.0 has no chart contract"
    )
    assert "(versions with one: 1.12.1)" in problem


def test_a_kubernetes_version_the_pinned_charts_do_not_support_is_refused() -> None:
    """Karpenter 1.12's compatibility table stops at Kubernetes 1.35 (compatibility.md at
    v1.12.1); a Karpenter cluster on 1.36 is refused, a node-group cluster is not."""
    karpenter = {"backend": "karpenter", "pools": {"train": pool()}}
    [problem] = problems(
        {"environment": "dev", "eks": DEV_ENDPOINT | {"version": "1.36"}, "gpu": karpenter}
    )
    assert problem.startswith(f"{ROOT}.eks.version: 1.36 is outside what the pinned charts support")
    assert "karpenter 1.12.1 supports Kubernetes 1.29 to 1.35" in problem
    node_groups = {"pools": {"train": pool()}}
    assert load(
        {"environment": "dev", "eks": DEV_ENDPOINT | {"version": "1.36"}, "gpu": node_groups}
    )


def test_an_ami_release_for_another_kubernetes_minor_is_refused() -> None:
    """A release version names the Kubernetes patch its AMI was built for (amazon-eks-ami
    CHANGELOG: 1.35.6-20260714); EKS refuses a node group whose AMI is for another minor."""
    [problem] = problems(
        {"environment": "dev", "eks": DEV_ENDPOINT | {"amiRelease": "1.34.9-20260714"}}
    )
    assert problem.startswith(
        f"{ROOT}.eks: amiRelease 1.34.9-20260714 is built for Kubernetes 1.34, the cluster "
        "runs 1.35"
    )
    [problem] = gpu_problems({"train": pool(amiRelease="1.36.2-20260714")})
    assert problem.startswith(
        f"{ROOT}.gpu.pools.train.amiRelease: 1.36.2-20260714 is built for Kubernetes 1.36"
    )


def test_the_ami_release_follows_the_kubernetes_minor_unless_pinned() -> None:
    on_136 = load({"environment": "dev", "eks": DEV_ENDPOINT | {"version": "1.36"}})
    assert on_136.eks.node_ami_release.release_version == "1.36.2-20260714"
    pinned = load({"environment": "dev", "eks": DEV_ENDPOINT | {"amiRelease": "1.35.5-20260601"}})
    assert pinned.eks.node_ami_release.karpenter_alias == "al2023@v20260601"


def test_an_efa_pool_needs_instance_types_with_one_fabric() -> None:
    [problem] = gpu_problems(
        {"train": pool(instanceTypes=["p5.48xlarge", "p5en.48xlarge"], efa=True, zone=1)}
    )
    assert "EFA pools take instance types with the same number of network cards" in problem


def test_karpenter_pools_do_not_time_slice() -> None:
    """Karpenter 1.12.1 counts a node's nvidia.com/gpu from EC2's physical GPU count; only the
    alpha NodeOverlay (off: charts/karpenter/values.yaml featureGates) changes it."""
    karpenter = {"backend": "karpenter", "pools": {"chat": pool(instanceTypes=["g6.xlarge"])}}
    karpenter["pools"]["chat"] |= {"purpose": "inference", "maxGpus": 2, "timeSlicingReplicas": 4}
    [problem] = problems({"environment": "dev", "gpu": karpenter})
    assert "pool chat: Karpenter 1.12 sizes nodes by physical GPUs" in problem


@pytest.mark.parametrize(
    ("raw", "key", "repeated"),
    [
        (
            {"network": {"interfaceEndpoints": ["sts", "kms", "sts"]}},
            "network.interfaceEndpoints",
            '"sts"',
        ),
        (
            {"eks": DEV_ENDPOINT | {"namespaces": ["monitoring", "monitoring"]}},
            "eks.namespaces",
            '"monitoring"',
        ),
        (
            {"gpu": {"pools": {"train": pool(taints=[{"key": "a"}, {"key": "a"}])}}},
            "gpu.pools.train.taints",
            '{"effect": "NoSchedule", "key": "a", "value": "true"}',
        ),
    ],
    ids=["endpoints", "namespaces", "taints"],
)
def test_a_repeated_list_entry_is_refused_at_its_key(
    raw: dict[str, Any], key: str, repeated: str
) -> None:
    """The offline engine would otherwise record one of two resources with the same URN, and
    `pulumi up` refuse them."""
    [problem] = problems({"environment": "dev", **raw})
    assert problem.startswith(f"{ROOT}.{key}: repeats {repeated}: list each entry once")


def test_kubernetes_own_namespaces_cannot_be_made_again() -> None:
    [problem] = problems({"environment": "dev", "gpu": {"teams": {"kube-system": {}}}})
    assert problem.startswith(f"{ROOT}.gpu.teams: kube-system: every cluster has these")
    [problem] = problems(
        {"environment": "dev", "eks": DEV_ENDPOINT | {"namespaces": ["monitoring", "default"]}}
    )
    assert "default: every cluster has these namespaces already" in problem


def test_the_deployers_access_key_is_the_platforms() -> None:
    """An `eks.access.deployer` entry would register a second resource under the URN of the
    implicit deployer grant."""
    access = {
        "deployer": {"principalArn": "arn:aws:iam::123456789012:role/ci", "access": "cluster-admin"}
    }
    [problem] = problems({"environment": "dev", "eks": DEV_ENDPOINT | {"access": access}})
    assert problem.startswith(f"{ROOT}.eks.access: 'deployer' names the platform's own entry")


PRIVATE_SUBNETS = [
    {"id": "subnet-0123456789abcdef0", "zone": "eu-west-1a"},
    {"id": "subnet-0123456789abcdef1", "zone": "eu-west-1b"},
]


def test_an_existing_network_takes_none_of_the_created_networks_settings() -> None:
    """Nothing of the created network applies beside `existing`: the environment profile's
    network settings are left out, and one the stack file sets is an unknown key."""
    existing = {"vpcId": "vpc-0123456789abcdef0", "privateSubnets": PRIVATE_SUBNETS}
    config = load({"environment": "dev", "network": {"existing": existing}})
    assert config.network.availability_zones == 2
    [problem] = problems(
        {"environment": "dev", "network": {"existing": existing, "natGateways": "single"}}
    )
    assert problem == (f"{ROOT}.network.natGateways: unknown key; allowed keys here: existing")


@pytest.mark.parametrize(
    ("subnets", "environment", "message"),
    [
        (PRIVATE_SUBNETS, "prod", "prod needs private subnets in at least 3 availability zones"),
        (
            [PRIVATE_SUBNETS[0], {**PRIVATE_SUBNETS[1], "zone": "eu-west-1a"}],
            "dev",
            "two private subnets in one zone",
        ),
        (
            [PRIVATE_SUBNETS[0], {**PRIVATE_SUBNETS[1], "zone": "us-east-1b"}],
            "dev",
            "zones ['eu-west-1a', 'us-east-1b'] are not all in one region",
        ),
    ],
    ids=["prod-two-zones", "one-zone-twice", "two-regions"],
)
def test_existing_private_subnets_are_one_per_zone(
    subnets: list[dict[str, str]], environment: str, message: str
) -> None:
    existing = {"vpcId": "vpc-0123456789abcdef0", "privateSubnets": subnets}
    [problem] = problems(
        {"environment": environment, "network": {"existing": existing}}, environment
    )
    assert problem.startswith(f"{ROOT}.network.existing.privateSubnets: {message}")


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_supported_kubernetes_minor_has_a_pinned_ami_release(version: str) -> None:
    config = load({"environment": "dev", "eks": DEV_ENDPOINT | {"version": version}})
    assert config.eks.node_ami_release.kubernetes_minor == version


def test_label_keys_that_would_name_one_autoscaling_tag_twice_are_refused() -> None:
    labels = {"example.com/team": "a", "example.com-team": "b"}
    [problem] = gpu_problems({"train": pool(labels=labels)})
    assert "label or taint keys ['example.com-team'] differ only by '/' and '-'" in problem


def test_the_registry_scanning_owner_needs_repositories() -> None:
    [problem] = problems({"environment": "dev", "registries": {"ownsRegistryScanning": True}})
    assert problem.startswith(f"{ROOT}.registries: ownsRegistryScanning is set, but")


def test_a_mistake_across_keys_is_reported_beside_one_in_a_single_key() -> None:
    raw = {
        "environment": "dev",
        "protectStatefulResources": "yes-please",
        "gpu": {"teams": {"research": {}}},
        "workloads": {
            "trainer": {
                "namespace": "research",
                "serviceAccount": "t",
                "buckets": [{"bucket": "x"}],
            }
        },
    }
    assert problems(raw) == [
        f"{ROOT}.protectStatefulResources: Input should be a valid boolean; got yes-please",
        f"{ROOT}.workloads.trainer.buckets[0].bucket: no bucket 'x'; have: datasets, experiments, "
        "models",
    ]


def test_models_and_datasets_publish_events_and_workloads_consume_only_publishing_buckets() -> None:
    config = load({"environment": "dev"})
    assert sorted(k for k, b in config.artifacts.buckets.items() if b.events) == [
        "datasets",
        "models",
    ]
    workload = {"namespace": "research", "serviceAccount": "t", "artifactEvents": ["experiments"]}
    assert (
        "mlops-platform:platform.workloads.retrain.artifactEvents[0]: bucket 'experiments' "
        "publishes no events; those that do: datasets, models (artifacts.buckets.<key>.events)"
    ) in problems({"environment": "dev", "workloads": {"retrain": workload}})
