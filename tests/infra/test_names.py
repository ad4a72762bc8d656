"""Physical names AWS accepts, whatever the stack name and config keys: each rule at its limit
renders names AWS takes, one past it is a config error naming the key."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from infra import names
from infra.config import ConfigError, PlatformConfig, load_platform_config
from mlops_platform.engine import render_stack
from mlops_platform.project import PulumiProject
from mlops_platform.rendered import RenderedStack
from tests.conftest import REPO_ROOT

ROOT = "mlops-platform:platform"
DEV: dict[str, Any] = {
    "environment": "dev",
    "eks": {"endpoint": {"publicAccessCidrs": ["203.0.113.0/24"]}},
}
LONGEST_POOL = names.longest_key(names.EKS_NODE_GROUP, names.node_group_logical_name)
LONGEST_WORKLOAD = names.longest_key(names.IAM_ROLE, names.workload_role_logical_name)


def load(
    raw: dict[str, Any], stack: str = "dev", region: str | None = "us-east-1"
) -> PlatformConfig:
    return load_platform_config(raw, stack=stack, project="mlops-platform", region=region)


def problems(
    raw: dict[str, Any], stack: str = "dev", region: str | None = "us-east-1"
) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(raw, stack, region)
    return caught.value.problems


def at_the_limits(pool: str, workload: str) -> dict[str, Any]:
    return DEV | {
        "gpu": {
            "pools": {
                pool: {
                    "purpose": "training",
                    "instanceTypes": ["g6.xlarge"],
                    "maxNodes": 1,
                    "maxGpus": 1,
                }
            }
        },
        "workloads": {workload: {"namespace": "platform-system", "serviceAccount": "w"}},
    }


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> RenderedStack:
    """A copy of dev (as one makes a sandbox) with one more pool and one more workload, their
    keys as long as config allows: one render for the tests below."""
    raw = yaml.safe_load((REPO_ROOT / "Pulumi.dev.yaml").read_text())
    platform = raw["config"]["mlops-platform:platform"]
    platform["gpu"]["pools"]["p" * LONGEST_POOL] = {
        "purpose": "inference",
        "instanceTypes": ["g6.xlarge"],
        "maxNodes": 1,
        "maxGpus": 1,
    }
    platform["workloads"]["w" * LONGEST_WORKLOAD] = {
        "namespace": "research",
        "serviceAccount": "w",
    }
    root = tmp_path_factory.mktemp("sandbox")
    (root / "Pulumi.yaml").write_text(
        f"name: mlops-platform\nruntime: python\nmain: {REPO_ROOT / 'infra'}\n"
    )
    (root / "Pulumi.sandbox.yaml").write_text(yaml.safe_dump(raw))
    return render_stack(PulumiProject.load(root), "sandbox")


def test_the_longest_keys_allowed_render_names_aws_accepts(sandbox: RenderedStack) -> None:
    """Pools and workloads at their longest: the node group and role names Pulumi makes fit
    EKS's 63 and IAM's 64 characters exactly."""
    pool, workload = "p" * LONGEST_POOL, "w" * LONGEST_WORKLOAD
    [group] = [g for g in sandbox.of_type("aws:eks/nodeGroup:NodeGroup") if pool in g.name]
    assert len(group.outputs["nodeGroupName"]) == names.EKS_NODE_GROUP.max_length
    assert names.EKS_NODE_GROUP.problem(group.outputs["nodeGroupName"]) is None
    [role] = [r for r in sandbox.of_type("aws:iam/role:Role") if workload in r.name]
    assert len(role.outputs["name"]) == names.IAM_ROLE.max_length
    assert names.IAM_ROLE.problem(role.outputs["name"]) is None


@pytest.mark.parametrize(
    ("key", "limit", "what"),
    [("pool", LONGEST_POOL, "node group name"), ("workload", LONGEST_WORKLOAD, "IAM role name")],
)
def test_one_character_past_a_key_limit_is_refused_naming_the_key(
    key: str, limit: int, what: str
) -> None:
    pool = "p" * (limit + 1 if key == "pool" else 4)
    workload = "w" * (limit + 1 if key == "workload" else 4)
    [problem] = problems(at_the_limits(pool, workload))
    where = f"gpu.pools.{pool}" if key == "pool" else f"workloads.{workload}"
    assert problem.startswith(f"{ROOT}.{where}.[key]: ")
    assert f"at most {limit}: it names the {what}" in problem


def test_a_stack_name_that_makes_a_cluster_name_eks_refuses_says_which_key_to_set() -> None:
    """EKS cluster names take letters, digits, - and _; a Pulumi stack name may have dots."""
    [problem] = problems(DEV, stack="dev.eu-west-1")
    assert problem.startswith(f"{ROOT}.eks.clusterName: unset, so the stack name 'dev.eu-west-1'")
    assert problem.endswith("set eks.clusterName")
    named = DEV | {"eks": DEV["eks"] | {"clusterName": "ml-dev-euw1"}}
    assert load(named, stack="dev.eu-west-1").cluster_name("mlops-platform", "x") == "ml-dev-euw1"


@pytest.mark.parametrize("stack", ["Dev", "ml_dev"])
def test_stacks_whose_glue_database_would_collide_with_a_sibling_must_name_their_cluster(
    stack: str,
) -> None:
    """Glue lowercases and takes `_` for `-`: `Dev` and `dev`, or `ml_dev` and `ml-dev`, would
    share one feature store database in the account."""
    group = {
        "recordIdentifier": "id",
        "eventTime": "t",
        "features": {"id": "String", "t": "String"},
    }
    with_store = DEV | {"featureStore": {"featureGroups": {"clicks": group}}}
    [problem] = problems(with_store, stack=stack)
    assert problem.startswith(f"{ROOT}.eks.clusterName: unset, so the feature store's Glue")
    assert load(DEV, stack=stack)
    named = with_store | {"eks": DEV["eks"] | {"clusterName": "ml-sandbox"}}
    assert load(named, stack=stack)


def test_a_long_stack_name_is_refused_at_its_limit() -> None:
    fits = "s" * (names.EKS_CLUSTER.max_length - len("mlops-platform-"))
    assert load(DEV, stack=fits)
    [problem] = problems(DEV, stack=fits + "s")
    assert "101 characters; AWS allows 100" in problem


def test_feature_group_names_fit_sagemakers_64_characters() -> None:
    group = {
        "recordIdentifier": "id",
        "eventTime": "t",
        "features": {"id": "String", "t": "String"},
    }
    key = "k" * (names.SAGEMAKER_FEATURE_GROUP.max_length - len("mlops-platform-dev-"))
    fits = DEV | {"featureStore": {"featureGroups": {key: group}}}
    assert load(fits)
    [problem] = problems(DEV | {"featureStore": {"featureGroups": {key + "k": group}}})
    assert problem.startswith(f"{ROOT}.featureStore.featureGroups.{key}k: gives feature group")
    assert "65 characters; AWS allows 64; shorten the key or eks.clusterName" in problem


def test_regions_and_instance_types_come_from_a_catalog() -> None:
    """botocore's endpoint data and EC2 model: `us-east-7` and `m7i.lrage` do not exist."""
    [problem] = problems(DEV, region="us-east-7")
    assert problem.startswith("aws:region: 'us-east-7' is not a region with EKS")
    nodes = {"instanceTypes": ["m7i.lrage"], "minSize": 1, "desiredSize": 1, "maxSize": 2}
    [problem] = problems(DEV | {"eks": DEV["eks"] | {"systemNodes": nodes}})
    assert problem.startswith(f"{ROOT}.eks.systemNodes.instanceTypes[0]: 'm7i.lrage' is not")


def test_existing_subnets_must_be_in_the_stacks_region() -> None:
    existing = {
        "vpcId": "vpc-0123456789abcdef0",
        "privateSubnets": [
            {"id": "subnet-0aaaaaaaaaaaaaaaa", "zone": "eu-west-1a"},
            {"id": "subnet-0bbbbbbbbbbbbbbbb", "zone": "eu-west-1b"},
        ],
    }
    found = problems(DEV | {"network": {"existing": existing}})
    assert found == [
        f"{ROOT}.network.existing.privateSubnets[{index}].zone: eu-west-1{letter} is not a zone "
        "of the stack's region us-east-1 (aws:region)"
        for index, letter in enumerate("ab")
    ]
    assert load(DEV | {"network": {"existing": existing}}, region="eu-west-1")


def test_a_replica_region_in_another_partition_is_refused() -> None:
    prod = {"environment": "prod", "eks": {"endpoint": {"privateAccessCidrs": ["10.0.0.0/8"]}}}
    [problem] = problems(prod | {"artifacts": {"replicaRegion": "us-gov-west-1"}}, stack="prod")
    assert problem.startswith(f"{ROOT}.artifacts.replicaRegion: us-gov-west-1 is in partition")
    assert "S3 replicates only within a partition" in problem
    assert load(prod | {"artifacts": {"replicaRegion": "us-west-2"}}, stack="prod")


def small_pools(count: int) -> dict[str, Any]:
    one = {"purpose": "inference", "instanceTypes": ["g6.xlarge"], "maxNodes": 1, "maxGpus": 1}
    return {f"p{i}": dict(one) for i in range(count)}


def test_node_groups_above_the_default_quota_need_the_raised_quota_stated() -> None:
    pools = small_pools(30)
    [problem] = problems(DEV | {"gpu": {"pools": pools}})
    assert "31 managed node groups (the system group and 30 pools), above" in problem
    raised = DEV | {"eks": DEV["eks"] | {"managedNodeGroupsQuota": 40}, "gpu": {"pools": pools}}
    assert load(raised)


def test_thousands_of_pools_are_refused_before_anything_renders() -> None:
    pools = small_pools(10_000)
    [problem] = problems(DEV | {"gpu": {"backend": "karpenter", "pools": pools}})
    assert problem == f"{ROOT}.gpu.pools: 10000 entries; at most 100"


NAME_OUTPUTS = ("name", "bucket", "nodeGroupName", "featureGroupName", "clusterName")


def physical_names(rendered: RenderedStack) -> set[tuple[str, str]]:
    """(type, name) of every AWS resource with a name, as AWS would hold it."""
    found = set()
    for resource in rendered.resources:
        if resource.custom and resource.type.startswith("aws:"):
            for key in NAME_OUTPUTS:
                value = resource.outputs.get(key)
                if isinstance(value, str) and value:
                    found.add((resource.type, value))
                    break
    return found


def test_no_two_stacks_share_a_physical_name_not_even_a_copied_one(
    rendered_stacks: dict[str, RenderedStack], sandbox: RenderedStack
) -> None:
    """Every stack and a copy of dev in one account and region: no table, cluster, feature
    group, bucket or role is named twice."""
    seen: dict[tuple[str, str], str] = {}
    for stack, rendered in [*rendered_stacks.items(), ("sandbox", sandbox)]:
        for name in physical_names(rendered):
            assert name not in seen, f"{name} in both {seen[name]} and {stack}"
            seen[name] = stack
    assert ("aws:dynamodb/table:Table", "mlops-platform-sandbox.recsys.user_profile") in seen
