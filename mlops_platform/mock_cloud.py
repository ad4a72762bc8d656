"""A stand-in for AWS under Pulumi's mocks: outputs shaped like the real ones, deterministically.

Ids, names and ARNs derive from a hash of the stack, type and name, so the same program renders
the same plan byte for byte, and downstream code (policies built from ARNs, names in tags) runs as
it would against AWS.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

from pulumi.runtime.mocks import MockCallArgs, MockResourceArgs, Mocks

# A documentation-style account id: obviously not a real account.
MOCK_ACCOUNT_ID = "123456789012"


class UnmockedInvokeError(Exception):
    """The program called a data source the offline plan does not model."""


def partition_of(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


@dataclass(frozen=True)
class MockCloud(Mocks):
    stack: str
    region: str
    account_id: str = MOCK_ACCOUNT_ID

    @property
    def partition(self) -> str:
        return partition_of(self.region)

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": self.account_id,
                "arn": f"arn:{self.partition}:iam::{self.account_id}:role/offline-plan",
                "userId": "AROAOFFLINEPLAN:offline-plan",
                "id": self.account_id,
            }, []
        if args.token == "aws:index/getPartition:getPartition":
            return {
                "partition": self.partition,
                "dnsSuffix": "amazonaws.com.cn" if self.partition == "aws-cn" else "amazonaws.com",
                "reverseDnsPrefix": "com.amazonaws",
                "id": self.partition,
            }, []
        if args.token == "aws:index/getRegion:getRegion":
            return {
                "name": self.region,
                "region": self.region,
                "endpoint": f"ec2.{self.region}.amazonaws.com",
                "description": self.region,
                "id": self.region,
            }, []
        raise UnmockedInvokeError(
            f"the offline plan has no model of data source {args.token}; "
            "add it to mlops_platform/mock_cloud.py"
        )

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        if not args.custom:
            return "", {}
        outputs = dict(args.inputs)
        if "tags" in outputs:
            outputs["tagsAll"] = outputs["tags"]
        shape = _SHAPES.get(args.typ)
        if shape is None:
            return self._auto_name(args), outputs
        resource_id, extra = shape(self, args)
        outputs.update(extra)
        return resource_id, outputs

    def _seed(self, args: MockResourceArgs) -> str:
        return f"{self.stack}\0{args.typ}\0{args.name}"

    def _auto_name(self, args: MockResourceArgs) -> str:
        """Pulumi's auto-naming: the logical name plus a random 7-hex suffix."""
        return f"{args.name}-{hashlib.sha256(self._seed(args).encode()).hexdigest()[:7]}"

    def provider_id(self, urn: str) -> str:
        """The id the engine would give a default provider instance."""
        return _stable_uuid(urn)

    def _bucket(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        name = args.inputs.get("bucket") or self._auto_name(args)
        return name, {
            "bucket": name,
            "arn": f"arn:{self.partition}:s3:::{name}",
            "bucketDomainName": f"{name}.s3.amazonaws.com",
            "bucketRegionalDomainName": f"{name}.s3.{self.region}.amazonaws.com",
            "region": self.region,
        }

    def _kms_key(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        key_id = _stable_uuid(self._seed(args))
        return key_id, {
            "keyId": key_id,
            "arn": f"arn:{self.partition}:kms:{self.region}:{self.account_id}:key/{key_id}",
        }


def _stable_uuid(seed: str) -> str:
    return str(uuid.UUID(bytes=hashlib.sha256(seed.encode()).digest()[:16], version=4))


_SHAPES = {
    "aws:s3/bucket:Bucket": MockCloud._bucket,
    "aws:kms/key:Key": MockCloud._kms_key,
}
