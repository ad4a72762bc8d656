"""The mock cloud answers like AWS, or says plainly what it does not model."""

from __future__ import annotations

import pytest
from pulumi.runtime.mocks import MockCallArgs, MockResourceArgs

from mlops_platform.mock_cloud import MockCloud, UnmockedInvokeError


@pytest.mark.parametrize(
    ("region", "partition"),
    [("us-east-1", "aws"), ("cn-north-1", "aws-cn"), ("us-gov-west-1", "aws-us-gov")],
)
def test_partition_follows_the_region(region: str, partition: str) -> None:
    cloud = MockCloud(stack="s", region=region)
    result, _ = cloud.call(MockCallArgs("aws:index/getPartition:getPartition", {}, ""))
    assert result["partition"] == partition
    _, outputs = cloud.new_resource(MockResourceArgs("aws:kms/key:Key", "k", {}, custom=True))
    assert outputs["arn"].startswith(f"arn:{partition}:kms:{region}:")


def test_an_unmodelled_data_source_is_a_clear_error() -> None:
    cloud = MockCloud(stack="s", region="us-east-1")
    with pytest.raises(UnmockedInvokeError, match="aws:ec2/getVpc:getVpc"):
        cloud.call(MockCallArgs("aws:ec2/getVpc:getVpc", {}, ""))


def test_names_are_stable_per_stack_and_differ_between_stacks() -> None:
    args = MockResourceArgs("aws:s3/bucket:Bucket", "data", {}, custom=True)
    dev, prod = (
        MockCloud(stack="dev", region="us-east-1"),
        MockCloud(stack="prod", region="us-east-1"),
    )
    assert dev.new_resource(args) == dev.new_resource(args)
    assert dev.new_resource(args)[0] != prod.new_resource(args)[0]


def test_an_explicit_bucket_name_is_kept() -> None:
    cloud = MockCloud(stack="s", region="us-east-1")
    bucket_id, outputs = cloud.new_resource(
        MockResourceArgs("aws:s3/bucket:Bucket", "data", {"bucket": "given"}, custom=True)
    )
    assert (bucket_id, outputs["arn"]) == ("given", "arn:aws:s3:::given")
