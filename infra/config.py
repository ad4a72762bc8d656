"""The platform's stack configuration, parsed once at the edge into plain, validated values.

A stack's whole configuration is one structured value, `<project>:platform`, in
`Pulumi.<stack>.yaml`. Keys the stack file leaves out take the defaults of its environment's
profile (`ENVIRONMENT_DEFAULTS`: dev cheap, prod hardened). Rules that depend on the environment
read it from the validation context, so every problem in a file is reported in one pass.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import re
import types
import typing
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Final, Literal, Union

import pulumi
import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from components.accelerators import AcceleratorError, pool_hardware
from components.deploy_runner import ComputeType
from components.eks_cluster import DEPLOYER_ACCESS_KEY
from components.node_pool import (
    AMI_RELEASE_PATTERN,
    DEFAULT_AMI_RELEASES,
    GP3_BASELINE_IOPS,
    GP3_BASELINE_THROUGHPUT,
    GP3_MAX_IOPS,
    GP3_MAX_THROUGHPUT,
    AmiRelease,
    RootVolume,
)
from components.subnet_layout import SubnetLayout, SubnetLayoutError, subnet_layout
from infra import names
from mlops_guardrails import charts
from mlops_guardrails.vocabulary import (
    CONTROL_PLANE_LOG_TYPES,
    KUBERNETES_VERSIONS,
    ControlPlaneLogType,
)

CONFIG_KEY: Final = "platform"
METRICS_NAMESPACE: Final = "monitoring"
"""Where kube-state-metrics is installed: one of the platform's namespaces."""

ALL_LOG_TYPES: Final = list(CONTROL_PLANE_LOG_TYPES)
AddonName = Literal[
    "vpc-cni",
    "coredns",
    "kube-proxy",
    "aws-ebs-csi-driver",
    "eks-pod-identity-agent",
    "eks-node-monitoring-agent",
]
REQUIRED_ADDONS: Final = ("vpc-cni", "coredns", "kube-proxy", "eks-pod-identity-agent")
InterfaceEndpoint = Literal[
    "ecr.api",
    "ecr.dkr",
    "sts",
    "ec2",
    "logs",
    "kms",
    "ssm",
    "ssmmessages",
    "ec2messages",
    "elasticloadbalancing",
    "autoscaling",
    "sqs",
    "eks",
    "eks-auth",
]

Environment = Literal["dev", "staging", "prod"]
ENVIRONMENTS: Final[tuple[Environment, ...]] = typing.get_args(Environment)

# Config key paths below are camelCase, as written in the stack files.
ENVIRONMENT_DEFAULTS: Final[dict[Environment, dict[str, Any]]] = {
    "dev": {
        "cost": {"monthlyBudgetUsd": 3000},
        "experimentTracking": {"size": "Small"},
        "protectStatefulResources": False,
        "kms": {"deletionWindowDays": 7},
        "artifacts": {"noncurrentVersionRetentionDays": 30, "accessLogRetentionDays": 90},
        "network": {"availabilityZones": 2, "natGateways": "single", "flowLogRetentionDays": 30},
        "eks": {
            "endpoint": {"publicAccess": True},
            "logTypes": ["api", "audit", "authenticator"],
            "logRetentionDays": 30,
            "zonalShift": False,
            "deletionProtection": False,
            "systemNodes": {"minSize": 1, "desiredSize": 2, "maxSize": 3},
        },
    },
    "staging": {
        "cost": {"monthlyBudgetUsd": 15000},
        "experimentTracking": {"size": "Small"},
        "protectStatefulResources": True,
        "kms": {"deletionWindowDays": 14},
        "artifacts": {"noncurrentVersionRetentionDays": 90, "accessLogRetentionDays": 180},
        "network": {"availabilityZones": 3, "natGateways": "per-az", "flowLogRetentionDays": 90},
        "eks": {
            "endpoint": {"publicAccess": False},
            "logTypes": ALL_LOG_TYPES,
            "logRetentionDays": 90,
            "zonalShift": True,
            "deletionProtection": True,
            "systemNodes": {"minSize": 2, "desiredSize": 2, "maxSize": 4},
        },
    },
    "prod": {
        "cost": {"monthlyBudgetUsd": 60000},
        "experimentTracking": {"size": "Medium"},
        "protectStatefulResources": True,
        "kms": {"deletionWindowDays": 30},
        "artifacts": {"noncurrentVersionRetentionDays": 365, "accessLogRetentionDays": 400},
        "network": {"availabilityZones": 3, "natGateways": "per-az", "flowLogRetentionDays": 365},
        "eks": {
            "endpoint": {"publicAccess": False},
            "logTypes": ALL_LOG_TYPES,
            "logRetentionDays": 365,
            "zonalShift": True,
            "deletionProtection": True,
            "systemNodes": {"minSize": 3, "desiredSize": 3, "maxSize": 6},
        },
    },
}

ACCESS_LOG_BUCKET_KEY: Final = "access-logs"

TagKey = Annotated[
    str,
    StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_ .:/=+\-@]+$"),
]
TagValue = Annotated[str, StringConstraints(max_length=256, pattern=r"^[A-Za-z0-9_ .:/=+\-@]*$")]
IamRoleArn = Annotated[
    str,
    StringConstraints(
        max_length=600, pattern=r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9_+=,.@/-]+$"
    ),
]
IamRoleName = Annotated[
    str, StringConstraints(pattern=r"^([A-Za-z0-9_+=,.@-]+/)*[A-Za-z0-9_+=,.@-]{1,64}$")
]
"""A role name, with its path if it has one (IAM: 64 characters at most)."""
BucketKey = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,19}$")]
RetentionDays = Annotated[int, Field(ge=1, le=3650)]


Gp3Throughput = Annotated[
    int,
    Field(
        ge=GP3_BASELINE_THROUGHPUT,
        le=GP3_MAX_THROUGHPUT,
        description="gp3 root volume throughput, MiB/s (0.25 per IOPS at most).",
    ),
]
Gp3Iops = Annotated[
    int,
    Field(
        ge=GP3_BASELINE_IOPS,
        le=GP3_MAX_IOPS,
        description="gp3 root volume IOPS (500 per GiB at most).",
    ),
]
AmiReleaseVersion = Annotated[str, StringConstraints(pattern=AMI_RELEASE_PATTERN)]
"""An EKS-optimized AMI release version, e.g. 1.35.6-20260714 (amazon-eks-ami CHANGELOG)."""


class ConfigModel(BaseModel):
    """Base for every config section: camelCase keys, unknown keys rejected, values frozen."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        extra="forbid",
        frozen=True,
        strict=True,
    )

    @field_validator("*", mode="after")
    @classmethod
    def _list_entries_once(cls, value: Any) -> Any:
        """A repeated entry would make two resources of one name, which `pulumi up` refuses,
        or say one thing twice; every list of the config takes each entry once."""
        if not isinstance(value, list):
            return value
        seen: set[Any] = set()
        repeated: list[str] = []
        for entry in value:
            shown = (
                json.dumps(entry.model_dump(mode="json", by_alias=True), sort_keys=True)
                if isinstance(entry, BaseModel)
                else json.dumps(entry)
            )
            if shown in seen and shown not in repeated:
                repeated.append(shown)
            seen.add(shown)
        if repeated:
            raise ValueError(f"repeats {', '.join(repeated)}: list each entry once")
        return value


KUBERNETES_NAMESPACES: Final = ("default", "kube-node-lease", "kube-public", "kube-system")
"""Namespaces every cluster has already: creating one fails `pulumi up`."""


def _not_kubernetes_own(namespaces: typing.Iterable[str]) -> None:
    taken = sorted(set(namespaces) & set(KUBERNETES_NAMESPACES))
    if taken:
        raise ValueError(
            f"{', '.join(taken)}: every cluster has these namespaces already; choose other names"
        )


CROSS_FIELD_PROBLEMS: Final = "cross-field problems"
CROSS_FIELD_SOURCES: Final = frozenset(
    {"artifacts", "registries", "featureStore", "gpu", "eks", "network", "environment"}
)
"""The sections checks across keys look names up in (buckets, namespaces, zones, versions)."""


def _problem(info: ValidationInfo, path: str, message: str) -> None:
    """A problem found across fields, at its own key path: collected, so that every one is
    reported at once (load_platform_config raises them together); raised at the model when
    validated without the collector."""
    collected = (info.context or {}).get(CROSS_FIELD_PROBLEMS)
    if collected is None:
        raise ValueError(f"{path}: {message}")
    collected.append((path, message))


def _environment(info: ValidationInfo) -> Environment | None:
    context = info.context or {}
    environment: Environment | None = context.get("environment")
    return environment


class KmsConfig(ConfigModel):
    """Customer-managed KMS keys that encrypt the platform's data."""

    deletion_window_days: int = Field(
        ge=7,
        le=30,
        description=(
            "Days a scheduled key deletion waits before the key is gone (AWS allows 7-30). "
            "Must be 30 in prod, so an accidental deletion can be cancelled for a month."
        ),
    )
    admin_role_arns: list[IamRoleArn] = Field(
        default_factory=list,
        description=(
            "IAM roles allowed to administer (not use) the keys, besides the account's own "
            "IAM delegation. ARNs of roles, e.g. your break-glass or platform-admin role."
        ),
    )

    @field_validator("deletion_window_days")
    @classmethod
    def _prod_keeps_longest_window(cls, days: int, info: ValidationInfo) -> int:
        if _environment(info) == "prod" and days != 30:
            raise ValueError("must be 30 in prod (the longest window AWS allows)")
        return days


class ArtifactBucketConfig(ConfigModel):
    """One artifact bucket."""

    purpose: Annotated[
        str, StringConstraints(max_length=200, pattern=r"^[A-Za-z0-9_ .:/=+\-@]*$")
    ] = Field(default="", description="What the bucket holds; recorded as the `mlops:purpose` tag.")
    noncurrent_version_retention_days: RetentionDays | None = Field(
        default=None,
        description=(
            "Days an overwritten or deleted object version is kept before it expires; "
            "defaults to `artifacts.noncurrentVersionRetentionDays`."
        ),
    )
    events: bool = Field(
        default=False,
        description="Publish object events to EventBridge, and queue its new objects for a "
        "pipeline to consume (stack output artifactEventQueueUrls; workloads.<key>."
        "artifactEvents).",
    )


def over_defaults(defaults: Callable[[], Mapping[str, Any]]) -> BeforeValidator:
    """How a map with default entries takes the stack file's: its entries are added to the
    defaults, an entry under a default's key replaces that default whole, and `<key>: null`
    removes a default. (Without this, giving one entry would silently drop every default.)"""

    def merge(given: Any) -> Any:
        if not isinstance(given, Mapping):
            return given
        merged = dict(defaults())
        for key, entry in given.items():
            if entry is None:
                merged.pop(key, None)
            else:
                merged[key] = entry
        return merged

    return BeforeValidator(merge)


DEFAULTS_RULE: Final = (
    " Your entries are added to the defaults; one under a default's key replaces it; "
    "`<key>: null` removes it."
)


def _default_buckets() -> dict[str, ArtifactBucketConfig]:
    return {
        "models": ArtifactBucketConfig(purpose="trained model artifacts", events=True),
        "datasets": ArtifactBucketConfig(purpose="training and evaluation datasets", events=True),
        "experiments": ArtifactBucketConfig(purpose="experiment tracking artifacts"),
    }


class ArtifactStorageConfig(ConfigModel):
    """S3 buckets for models, datasets and experiment artifacts, with their access-log bucket."""

    buckets: Annotated[dict[BucketKey, ArtifactBucketConfig], over_defaults(_default_buckets)] = (
        Field(
            default_factory=_default_buckets,
            min_length=1,
            description=(
                "The artifact buckets, by key (lowercase letters, digits and dashes): models, "
                "datasets and experiments by default. The key names the Pulumi resources, so "
                "renaming one replaces its bucket." + DEFAULTS_RULE
            ),
        )
    )
    noncurrent_version_retention_days: RetentionDays = Field(
        description="Days an overwritten or deleted object version is kept before it expires.",
    )
    abort_incomplete_multipart_upload_days: int = Field(
        default=7,
        ge=1,
        le=30,
        description="Days after which the parts of an unfinished multipart upload are deleted.",
    )
    access_log_retention_days: RetentionDays = Field(
        description="Days S3 server access logs are kept in the access-log bucket.",
    )

    replica_region: str | None = Field(
        default=None,
        description="A second region holding replicas of replicatedBuckets (their own key and "
        "access logs, as hardened as the sources), so the data survives the loss of the "
        "stack's region; required in prod.",
    )
    replicated_buckets: list[BucketKey] = Field(
        default_factory=lambda: ["models", "datasets"],
        description="The buckets replicated to replicaRegion: those whose loss cannot be "
        "rebuilt by rerunning something.",
    )

    @field_validator("replica_region")
    @classmethod
    def _a_known_region(cls, region: str | None) -> str | None:
        if region is not None and region not in names.eks_regions():
            raise ValueError(f"{region!r} is not an AWS region (botocore's endpoint data)")
        return region

    @model_validator(mode="after")
    def _replicas_where_needed(self, info: ValidationInfo) -> ArtifactStorageConfig:
        if _environment(info) == "prod" and self.replica_region is None:
            raise ValueError("prod keeps models and datasets in a second region: set replicaRegion")
        unknown = sorted(set(self.replicated_buckets) - set(self.buckets))
        if self.replica_region is not None and unknown:
            raise ValueError(f"replicatedBuckets names buckets that do not exist: {unknown}")
        return self

    @field_validator("buckets")
    @classmethod
    def _log_bucket_key_is_reserved(
        cls, buckets: dict[str, ArtifactBucketConfig]
    ) -> dict[str, ArtifactBucketConfig]:
        if ACCESS_LOG_BUCKET_KEY in buckets:
            raise ValueError(f"'{ACCESS_LOG_BUCKET_KEY}' is reserved for the access-log bucket")
        return buckets


def _is_cidr(value: str) -> str:
    try:
        ipaddress.IPv4Network(value)
    except ValueError as error:
        raise ValueError(f"not an IPv4 CIDR block ({error})") from None
    return value


Cidr = Annotated[str, AfterValidator(_is_cidr)]
KubernetesName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")]


def _key_fits(rule: names.NameRule, logical_name_of: typing.Callable[[str], str]) -> Any:
    longest = names.longest_key(rule, logical_name_of)

    def check(key: str) -> str:
        if len(key) > longest:
            example = logical_name_of(key) + "-" + "x" * (names.AUTONAME_SUFFIX - 1)
            raise ValueError(
                f"{key!r} is {len(key)} characters; at most {longest}: it names the "
                f"{rule.what} {example!r} ({len(example)} characters; AWS allows "
                f"{rule.max_length})"
            )
        return key

    return AfterValidator(check)


PoolName = Annotated[KubernetesName, _key_fits(names.EKS_NODE_GROUP, names.node_group_logical_name)]
WorkloadName = Annotated[
    KubernetesName, _key_fits(names.IAM_ROLE, names.workload_role_logical_name)
]


def _known_instance_type(instance_type: str) -> str:
    if instance_type not in names.ec2_instance_types():
        raise ValueError(f"{instance_type!r} is not an EC2 instance type (botocore's EC2 model)")
    return instance_type


ChartVersion = Annotated[
    str, StringConstraints(pattern=r"^v?[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$")
]
InstanceType = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z][a-z0-9-]*\.[a-z0-9]+$"),
    AfterValidator(_known_instance_type),
]


SubnetId = Annotated[str, StringConstraints(pattern=r"^subnet-[0-9a-f]{8,17}$")]
ZoneName = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}(-[a-z]+)+-[0-9]+[a-z]$")]


class ExistingSubnetConfig(ConfigModel):
    """A subnet of the given VPC and the availability zone it is in."""

    id: SubnetId = Field(description="Subnet id.")
    zone: ZoneName = Field(description="Its availability zone name, e.g. us-east-1a.")


class ExistingNetworkConfig(ConfigModel):
    """A VPC the platform is given instead of creating one (enterprise networks often are)."""

    vpc_id: Annotated[str, StringConstraints(pattern=r"^vpc-[0-9a-f]{8,17}$")] = Field(
        description="Id of the VPC the cluster goes into."
    )
    private_subnets: list[ExistingSubnetConfig] = Field(
        min_length=2,
        description="Private subnets for nodes and pods, one per availability zone (at least "
        "two, three in prod); GPU pools' `zone` counts them from 1 in this order.",
    )
    public_subnets: list[ExistingSubnetConfig] = Field(
        default_factory=list, description="Public subnets for internet-facing load balancers."
    )

    @field_validator("private_subnets")
    @classmethod
    def _one_subnet_per_zone(
        cls, subnets: list[ExistingSubnetConfig], info: ValidationInfo
    ) -> list[ExistingSubnetConfig]:
        zones = [subnet.zone for subnet in subnets]
        if len(set(zones)) < len(zones):
            raise ValueError(
                "two private subnets in one zone: give one per zone (a pool pinned to a zone "
                "takes its subnet)"
            )
        if len({zone[:-1] for zone in zones}) > 1:
            raise ValueError(f"zones {zones} are not all in one region")
        if _environment(info) == "prod" and len(zones) < 3:
            raise ValueError("prod needs private subnets in at least 3 availability zones")
        return subnets


class ExistingNetworkMode(ConfigModel):
    """The network section when the platform is given a network: only `existing`."""

    existing: ExistingNetworkConfig = Field(
        description="Use this VPC and these subnets instead of creating a network; nothing of "
        "the created network's settings applies (no CIDRs, NAT, endpoints or flow logs)."
    )

    @property
    def availability_zones(self) -> int:
        return len(self.existing.private_subnets)


def _default_endpoints() -> list[InterfaceEndpoint]:
    return ["ecr.api", "ecr.dkr", "sts", "ec2", "logs", "kms", "ssm"]


class NetworkConfig(ConfigModel):
    """The VPC: subnets per AZ, NAT, VPC endpoints and flow logs."""

    vpc_cidr: Cidr = Field(
        default="10.40.0.0/16",
        description="IPv4 CIDR of the VPC (/16 to /18; pods take VPC addresses).",
    )
    availability_zones: int = Field(
        ge=2, le=6, description="How many AZs to spread subnets over (at least 3 in prod)."
    )
    nat_gateways: Literal["single", "per-az"] = Field(
        description="One NAT gateway for the VPC (cheap) or one per AZ (no cross-AZ outage); "
        "per-az in prod."
    )
    private_subnet_cidrs: list[Cidr] | None = Field(
        default=None,
        description="Private subnet CIDRs, one per AZ; derived from the VPC CIDR when unset.",
    )
    public_subnet_cidrs: list[Cidr] | None = Field(
        default=None,
        description="Public subnet CIDRs, one per AZ; derived from the VPC CIDR when unset.",
    )
    interface_endpoints: list[InterfaceEndpoint] = Field(
        default_factory=_default_endpoints,
        description="AWS services reached through interface endpoints instead of the NAT.",
    )
    flow_log_retention_days: RetentionDays = Field(
        description="Days VPC flow logs are kept in their KMS-encrypted log group."
    )

    @field_validator("availability_zones")
    @classmethod
    def _prod_spans_three_zones(cls, count: int, info: ValidationInfo) -> int:
        if _environment(info) == "prod" and count < 3:
            raise ValueError("prod needs at least 3 availability zones")
        return count

    @field_validator("nat_gateways")
    @classmethod
    def _prod_nat_per_zone(cls, nat: str, info: ValidationInfo) -> str:
        if _environment(info) == "prod" and nat != "per-az":
            raise ValueError("prod needs a NAT gateway per AZ ('per-az')")
        return nat

    @field_validator("vpc_cidr")
    @classmethod
    def _vpc_size(cls, cidr: str) -> str:
        prefix = ipaddress.IPv4Network(cidr).prefixlen
        if not 16 <= prefix <= 18:
            raise ValueError(f"a /{prefix} VPC; use /16 to /18 so each AZ gets room for pods")
        return cidr

    @model_validator(mode="after")
    def _subnets_fit(self) -> NetworkConfig:
        try:
            self.layout()
        except SubnetLayoutError as error:
            raise ValueError(str(error)) from None
        return self

    def layout(self) -> SubnetLayout:
        """The subnets the network component makes, given or derived."""
        return subnet_layout(
            self.vpc_cidr,
            self.availability_zones,
            self.private_subnet_cidrs,
            self.public_subnet_cidrs,
        )


CREATED_NETWORK: Final = "(created network)"
EXISTING_NETWORK: Final = "(existing network)"
"""Tags of the network section's two modes; they stand in config error paths and are left out
of them (no config key looks like one)."""


def _network_mode(value: Any) -> str:
    given = value if isinstance(value, dict) else value.__dict__
    return EXISTING_NETWORK if "existing" in given else CREATED_NETWORK


NetworkSection = Annotated[
    Annotated[NetworkConfig, Tag(CREATED_NETWORK)]
    | Annotated[ExistingNetworkMode, Tag(EXISTING_NETWORK)],
    Discriminator(_network_mode),
]


GitHubRepository = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")
]
# No wildcards or separators: each name becomes one exact `sub` in a role's trust.
GitHubEnvironmentName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,255}$")]


class DeployRunnerConfig(ConfigModel):
    """A GitHub Actions runner inside the VPC (a CodeBuild project), the one place deploys of
    a private cluster run from; the cluster admits HTTPS from it only."""

    repository: GitHubRepository = Field(
        description="The GitHub repository (`owner/name`) whose workflow jobs run here."
    )
    connection_name: Annotated[
        str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")
    ] = Field(
        description="Name of the CodeConnections connection to GitHub in the stack's account and "
        "region, created and authorised once in the console (Developer Tools > Connections); "
        "an API-created connection stays pending until then."
    )
    compute_type: ComputeType = Field(
        default="BUILD_GENERAL1_MEDIUM",
        description="CodeBuild compute per job (MEDIUM: 4 vCPUs, 7 GiB, enough for a render).",
    )
    build_timeout_minutes: int = Field(
        default=120, ge=5, le=2160, description="A job running longer than this is stopped."
    )
    log_retention_days: RetentionDays = Field(
        default=365, description="Days the runner's job logs are kept (KMS-encrypted)."
    )


class EndpointConfig(ConfigModel):
    """Who can reach the Kubernetes API server."""

    public_access: bool = Field(
        description="Expose the API endpoint on the internet (never in prod); the private "
        "endpoint is always on."
    )
    public_access_cidrs: list[Cidr] = Field(
        default_factory=list,
        description="CIDRs allowed to reach a public endpoint (your office or VPN egress); "
        "0.0.0.0/0 is refused.",
    )

    deploy_runner: DeployRunnerConfig | None = Field(
        default=None,
        description="A runner inside the VPC that `pulumi up` runs from (see the README's "
        "first-deploy steps); needed by a private endpoint unless privateAccessCidrs gives "
        "another path.",
    )
    private_access_cidrs: list[Cidr] = Field(
        default_factory=list,
        description="Networks admitted to the private endpoint on HTTPS: your VPN, Direct "
        "Connect or a peered VPC that deploys run from. The cluster security group admits "
        "only itself otherwise.",
    )

    @field_validator("public_access")
    @classmethod
    def _prod_is_private(cls, public: bool, info: ValidationInfo) -> bool:
        if _environment(info) == "prod" and public:
            raise ValueError("the API endpoint must be private in prod")
        return public

    @field_validator("public_access_cidrs")
    @classmethod
    def _no_open_cidr(cls, cidrs: list[str]) -> list[str]:
        open_to_all = [c for c in cidrs if ipaddress.IPv4Network(c).prefixlen == 0]
        if open_to_all:
            raise ValueError(f"{open_to_all[0]} opens the API to the internet; list your CIDRs")
        return cidrs

    @model_validator(mode="after")
    def _public_needs_allow_list(self) -> EndpointConfig:
        if self.public_access and not self.public_access_cidrs:
            raise ValueError("a public endpoint needs publicAccessCidrs (EKS would open it to all)")
        return self

    @model_validator(mode="after")
    def _api_has_a_path(self, info: ValidationInfo) -> EndpointConfig:
        # A private endpoint only admits what the cluster security group admits: itself. (An
        # unknown environment borrows prod's profile; its one problem is the environment.)
        if _environment(info) is None:
            return self
        if not (self.public_access or self.deploy_runner or self.private_access_cidrs):
            raise ValueError(
                "a private endpoint needs a path for `pulumi up` and kubectl: set deployRunner "
                "(a runner inside the VPC) or privateAccessCidrs (your VPN's networks)"
            )
        return self


class AccessEntryConfig(ConfigModel):
    """One IAM role's access to the cluster, through an EKS access policy."""

    principal_arn: IamRoleArn = Field(description="The IAM role granted access.")
    access: Literal["cluster-admin", "admin", "edit", "view"] = Field(
        description="EKS access policy: AmazonEKSClusterAdminPolicy, AmazonEKSAdminPolicy, "
        "AmazonEKSEditPolicy or AmazonEKSViewPolicy."
    )
    namespaces: list[KubernetesName] = Field(
        default_factory=list,
        description="Limit the access to these namespaces; empty means the whole cluster.",
    )

    @model_validator(mode="after")
    def _cluster_admin_is_cluster_wide(self) -> AccessEntryConfig:
        if self.access == "cluster-admin" and self.namespaces:
            raise ValueError("cluster-admin cannot be limited to namespaces; use 'admin'")
        return self


class AddonConfig(ConfigModel):
    """One EKS managed add-on."""

    version: Annotated[
        str, StringConstraints(pattern=r"^(recommended|v[0-9]+\.[0-9]+\.[0-9]+-eksbuild\.[0-9]+)$")
    ] = Field(
        default="recommended",
        description="Exact add-on version (e.g. v1.20.1-eksbuild.3), or `recommended`: the "
        "version EKS recommends for the cluster's Kubernetes version, looked up at deploy time.",
    )


def _default_addons() -> dict[AddonName, AddonConfig]:
    return {name: AddonConfig() for name in typing.get_args(AddonName)}


class SystemNodesConfig(ConfigModel):
    """The on-demand, non-GPU node group that runs cluster add-ons."""

    instance_types: list[InstanceType] = Field(
        default_factory=lambda: ["m7i.large", "m6i.large"],
        min_length=1,
        description="EC2 instance types, in order of preference.",
    )
    min_size: int = Field(ge=1, le=100, description="Fewest nodes the group scales down to.")
    desired_size: int = Field(
        ge=1, le=100, description="Nodes at creation; afterwards the autoscaler owns it."
    )
    max_size: int = Field(ge=1, le=100, description="Most nodes the group scales up to.")
    root_volume_gib: int = Field(
        default=50, ge=20, le=1000, description="Root volume size in GiB (gp3)."
    )
    root_volume_throughput: Gp3Throughput = GP3_BASELINE_THROUGHPUT
    root_volume_iops: Gp3Iops = GP3_BASELINE_IOPS

    @property
    def root_volume(self) -> RootVolume:
        return RootVolume(self.root_volume_gib, self.root_volume_throughput, self.root_volume_iops)

    @model_validator(mode="after")
    def _sizes_in_order(self) -> SystemNodesConfig:
        problems = self.root_volume.problems()
        if not self.min_size <= self.desired_size <= self.max_size:
            problems.append(
                f"need minSize <= desiredSize <= maxSize, got {self.min_size}, "
                f"{self.desired_size}, {self.max_size}"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self


class EksConfig(ConfigModel):
    """The EKS cluster: control plane, access, add-ons and system nodes."""

    cluster_name: KubernetesName | None = Field(
        default=None,
        description="EKS cluster name; default `<project>-<stack>`. It must be known before the "
        "cluster exists because its log group is created first; feature group names start "
        "with it.",
    )
    version: str = Field(
        default="1.35",
        description=f"Kubernetes minor version; one of {', '.join(KUBERNETES_VERSIONS)}.",
    )
    ami_release: AmiReleaseVersion | None = Field(
        default=None,
        description="EKS-optimized Amazon Linux 2023 AMI release every node runs, as "
        "`<kubernetes patch>-<date>` (amazon-eks-ami CHANGELOG, e.g. 1.35.6-20260714); a node "
        "changes AMI only when this changes. Default: the platform's pin for eks.version ("
        + ", ".join(DEFAULT_AMI_RELEASES.values())
        + ").",
    )
    endpoint: EndpointConfig = Field(description="API server endpoint exposure.")
    managed_node_groups_quota: int = Field(
        default=30,
        ge=1,
        le=1000,
        description="Managed node groups per cluster the account allows (EKS's default quota "
        "is 30); state a raised quota here once Service Quotas has granted it.",
    )
    deployer_is_cluster_admin: bool = Field(
        default=True,
        description="Give deployerRoleName cluster-admin through an explicit access entry and "
        "have the stack's kubeconfig assume it (EKS's implicit creator admin is always off).",
    )
    deployer_role_name: IamRoleName = Field(
        default="platform-deployer",
        description="The IAM role, by name in the stack's account, that deploys the stack and "
        "administers the cluster; CI and people assume it. From config, never from whoever runs "
        "`pulumi up`, so the access entry never changes with the caller.",
    )
    access: dict[KubernetesName, AccessEntryConfig] = Field(
        default_factory=dict,
        description="Further roles' access to the cluster, by a stable key.",
    )
    log_types: list[ControlPlaneLogType] = Field(
        description="Control-plane log types sent to CloudWatch (all five in prod)."
    )
    log_retention_days: RetentionDays = Field(
        description="Days control-plane logs are kept in their KMS-encrypted log group."
    )
    addons: Annotated[dict[AddonName, AddonConfig], over_defaults(_default_addons)] = Field(
        default_factory=_default_addons,
        description="EKS managed add-ons and their versions, all six by default; vpc-cni, "
        "coredns, kube-proxy and eks-pod-identity-agent are required." + DEFAULTS_RULE,
    )
    upgrade_support: Literal["STANDARD", "EXTENDED"] = Field(
        default="STANDARD",
        description="STANDARD upgrades the cluster when standard support ends; EXTENDED pays "
        "to stay longer.",
    )
    zonal_shift: bool = Field(description="Let ARC zonal shift move traffic out of a bad AZ.")
    deletion_protection: bool = Field(
        description="EKS refuses to delete the cluster while on (required in prod)."
    )
    system_nodes: SystemNodesConfig = Field(description="The system node group.")
    external_namespaces: list[KubernetesName] = Field(
        default_factory=list,
        description="Namespaces another project creates (a model team's own Pulumi stack) that "
        "workloads may be bound in; the platform sets no policies there.",
    )
    namespaces: list[KubernetesName] = Field(
        default_factory=lambda: ["platform-system", METRICS_NAMESPACE],
        description=f"Namespaces created for platform components; must include "
        f"'{METRICS_NAMESPACE}', where kube-state-metrics is installed.",
    )

    @field_validator("version")
    @classmethod
    def _supported_version(cls, version: str) -> str:
        if version not in KUBERNETES_VERSIONS:
            raise ValueError(
                f"Kubernetes {version} is not supported here; use one of "
                f"{', '.join(KUBERNETES_VERSIONS)}"
            )
        return version

    @property
    def node_ami_release(self) -> AmiRelease:
        return AmiRelease(self.ami_release or DEFAULT_AMI_RELEASES[self.version])

    @model_validator(mode="after")
    def _ami_release_matches_the_cluster(self) -> EksConfig:
        release = self.node_ami_release
        if release.kubernetes_minor != self.version:
            raise ValueError(
                f"amiRelease {release.release_version} is built for Kubernetes "
                f"{release.kubernetes_minor}, the cluster runs {self.version}: pin a release for "
                f"{self.version} (amazon-eks-ami CHANGELOG), or remove amiRelease"
            )
        return self

    @field_validator("access")
    @classmethod
    def _deployer_key_is_the_platforms(
        cls, access: dict[str, AccessEntryConfig]
    ) -> dict[str, AccessEntryConfig]:
        if DEPLOYER_ACCESS_KEY in access:
            raise ValueError(
                f"'{DEPLOYER_ACCESS_KEY}' names the platform's own entry for the principal that "
                "runs `pulumi up` (deployerIsClusterAdmin); give this entry another key"
            )
        return access

    @field_validator("namespaces")
    @classmethod
    def _namespaces_are_free(cls, namespaces: list[str]) -> list[str]:
        _not_kubernetes_own(namespaces)
        return namespaces

    @field_validator("namespaces")
    @classmethod
    def _metrics_namespace_made(cls, namespaces: list[str]) -> list[str]:
        if METRICS_NAMESPACE not in namespaces:
            raise ValueError(
                f"must include '{METRICS_NAMESPACE}': kube-state-metrics is installed there, and "
                "Helm does not create it"
            )
        return namespaces

    @field_validator("log_types")
    @classmethod
    def _prod_logs_everything(cls, log_types: list[str], info: ValidationInfo) -> list[str]:
        if _environment(info) == "prod" and set(log_types) != set(ALL_LOG_TYPES):
            raise ValueError(f"prod sends all five log types: {', '.join(ALL_LOG_TYPES)}")
        return log_types

    @field_validator("deletion_protection")
    @classmethod
    def _prod_cluster_is_protected(cls, protected: bool, info: ValidationInfo) -> bool:
        if _environment(info) == "prod" and not protected:
            raise ValueError("must be true in prod")
        return protected

    @field_validator("addons")
    @classmethod
    def _required_addons(cls, addons: dict[str, AddonConfig]) -> dict[str, AddonConfig]:
        missing = [name for name in REQUIRED_ADDONS if name not in addons]
        if missing:
            raise ValueError(f"the cluster cannot run without {', '.join(missing)}")
        return addons


class CapacityConfig(ConfigModel):
    """How a GPU pool's instances are bought."""

    type: Literal["on-demand", "spot", "capacity-block", "reservation"] = Field(
        default="on-demand",
        description="on-demand, spot (interruptible, cheap), capacity-block (an EC2 Capacity "
        "Block for ML) or reservation (an On-Demand Capacity Reservation).",
    )
    reservation_id: Annotated[str, StringConstraints(pattern=r"^cr-[0-9a-f]{17}$")] | None = Field(
        default=None, description="The capacity block or reservation id (cr-...)."
    )

    @model_validator(mode="after")
    def _reservation_id_when_reserved(self) -> CapacityConfig:
        reserved = self.type in ("capacity-block", "reservation")
        if reserved and self.reservation_id is None:
            raise ValueError(f"capacity type {self.type} needs reservationId")
        if not reserved and self.reservation_id is not None:
            raise ValueError("reservationId only goes with capacity-block or reservation")
        return self


class TaintConfig(ConfigModel):
    """A Kubernetes taint on a pool's nodes."""

    key: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9./-]{1,253}$")] = Field(
        description="Taint key, e.g. team or workload."
    )
    value: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{0,63}$")] = Field(
        default="true", description="Taint value pods must tolerate."
    )
    effect: Literal["NoSchedule", "NoExecute", "PreferNoSchedule"] = Field(
        default="NoSchedule", description="What the taint does to pods without the toleration."
    )


class GpuPoolConfig(ConfigModel):
    """A pool of accelerator nodes for training or inference."""

    purpose: Literal["training", "inference"] = Field(
        description="training (long jobs, never consolidated while busy) or inference."
    )
    instance_types: list[Annotated[str, StringConstraints(pattern=r"^[a-z0-9-]+\.[a-z0-9]+$")]] = (
        Field(
            min_length=1,
            description="Accelerator instance types, one family (NVIDIA x86, "
            "NVIDIA ARM or Neuron); the AMI type follows from them.",
        )
    )
    capacity: CapacityConfig = Field(
        default_factory=CapacityConfig, description="On-demand, spot or reserved capacity."
    )
    min_nodes: int = Field(
        default=0, ge=0, le=1000, description="Fewest nodes; 0 lets the pool scale to zero."
    )
    desired_nodes: int = Field(
        default=0,
        ge=0,
        le=1000,
        description="Nodes at creation; afterwards the autoscaler owns it.",
    )
    max_nodes: int = Field(ge=1, le=1000, description="Most nodes the pool scales up to.")
    max_gpus: int = Field(
        ge=1,
        le=100000,
        description="Ceiling on the pool's accelerators (GPUs or Neuron devices); maxNodes of "
        "the largest instance type must fit under it.",
    )
    root_volume_gib: int = Field(
        default=200, ge=50, le=4000, description="Root volume size in GiB; GPU images are large."
    )
    root_volume_throughput: Gp3Throughput = 500
    root_volume_iops: Gp3Iops = GP3_BASELINE_IOPS
    labels: dict[Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9./-]{1,253}$")], str] = (
        Field(default_factory=dict, description="Extra Kubernetes labels on the pool's nodes.")
    )
    taints: list[TaintConfig] = Field(
        default_factory=list, description="Extra taints, besides the accelerator taint."
    )
    efa: bool = Field(
        default=False,
        description="Elastic Fabric Adapter interfaces (one per network card) and a cluster "
        "placement group for multi-node training; needs a single zone.",
    )
    zone: int | None = Field(
        default=None,
        ge=1,
        le=6,
        description="Keep the pool in this availability zone (1-based, as the network numbers "
        "them); required with EFA.",
    )
    ami_release: AmiReleaseVersion | None = Field(
        default=None,
        description="Hold this pool at another AMI release than eks.amiRelease (a training "
        "pool keeping its release until its jobs finish); same Kubernetes minor.",
    )
    time_slicing_replicas: int | None = Field(
        default=None,
        ge=2,
        le=48,
        description="Share each NVIDIA GPU among this many pods (inference); unset for whole GPUs.",
    )

    @property
    def root_volume(self) -> RootVolume:
        return RootVolume(self.root_volume_gib, self.root_volume_throughput, self.root_volume_iops)

    @model_validator(mode="after")
    def _hardware_fits(self) -> GpuPoolConfig:
        try:
            hardware = pool_hardware(self.instance_types)
        except AcceleratorError as error:
            raise ValueError(str(error)) from None
        problems = self.root_volume.problems()
        if not self.min_nodes <= self.max_nodes:
            problems.append(f"minNodes {self.min_nodes} is above maxNodes {self.max_nodes}")
        if not self.min_nodes <= self.desired_nodes <= self.max_nodes:
            problems.append(
                f"desiredNodes {self.desired_nodes} is outside minNodes..maxNodes "
                f"({self.min_nodes}..{self.max_nodes})"
            )
        if self.capacity.type == "capacity-block" and len(self.instance_types) != 1:
            problems.append("a capacity block is for exactly one instance type")
        if self.capacity.type in ("capacity-block", "reservation") and self.zone is None:
            problems.append(
                f"a {self.capacity.type} holds capacity in one availability zone: set zone to "
                "that zone"
            )
        if self.efa and not hardware.efa_interfaces:
            problems.append("EFA needs instance types that support it (e.g. p5.48xlarge)")
        if self.efa and hardware.efa_interfaces_differ:
            problems.append(
                "EFA pools take instance types with the same number of network cards: each "
                "node gets one EFA interface per card"
            )
        if self.efa and self.zone is None:
            problems.append("EFA runs in one cluster placement group: set zone (no EFA across AZs)")
        clashing = sorted(
            {
                name
                for keys in (list(self.labels), [t.key for t in self.taints])
                for name in (key.replace("/", "-") for key in keys)
                if [k.replace("/", "-") for k in keys].count(name) > 1
            }
        )
        if clashing:
            problems.append(
                f"label or taint keys {clashing} differ only by '/' and '-': the Auto Scaling "
                "group tags that carry them would share a name"
            )
        if self.time_slicing_replicas is not None and hardware.vendor != "nvidia":
            problems.append("time slicing is for NVIDIA GPUs")
        ceiling = self.max_nodes * hardware.max_per_node
        if ceiling > self.max_gpus:
            problems.append(
                f"maxNodes {self.max_nodes} x {hardware.max_per_node} accelerators per node = "
                f"{ceiling}, above maxGpus {self.max_gpus}"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self


class IngressRuleConfig(ConfigModel):
    """Connections a team namespace accepts: from which sources, to which TCP ports."""

    ports: list[Annotated[int, Field(ge=1, le=65535)]] = Field(
        min_length=1, description="TCP ports the namespace's pods serve on."
    )
    from_namespaces: list[KubernetesName] = Field(
        default_factory=list,
        description="Namespaces whose pods may connect; a team namespace's egress is opened "
        "to match.",
    )
    from_cidrs: list[Cidr] = Field(
        default_factory=list,
        description="Addresses outside the cluster that may connect (a VPN, a peered network); "
        "never a range that holds pod addresses.",
    )
    from_public_subnets: bool = Field(
        default=False,
        description="Internet-facing load balancers, which live in the public subnets and "
        "reach pods by IP (ALB, or NLB with IP targets).",
    )

    @model_validator(mode="after")
    def _names_a_source(self) -> IngressRuleConfig:
        if not (self.from_namespaces or self.from_cidrs or self.from_public_subnets):
            raise ValueError(
                "name at least one source: fromNamespaces, fromCidrs or fromPublicSubnets"
            )
        return self


class TeamDeployerConfig(ConfigModel):
    """Who may deploy a team's model services: jobs of one GitHub repository, in named
    GitHub environments (whose protection rules then decide who deploys)."""

    repository: GitHubRepository = Field(description="The team's repository, `owner/name`.")
    environments: list[GitHubEnvironmentName] = Field(
        min_length=1,
        description="GitHub environments whose jobs may assume the role; a job in any other, "
        "or in none (a pull request, a branch), cannot.",
    )


class TeamConfig(ConfigModel):
    """A team's namespace: its share of the accelerators, and who may connect to it."""

    gpu_quota: int = Field(
        default=0,
        ge=0,
        description="Most nvidia.com/gpu the team's pods may request at once, in the unit nodes "
        "advertise: a time-sliced GPU counts once per share.",
    )
    neuron_quota: int = Field(
        default=0, ge=0, description="Most Neuron devices the team's pods may request at once."
    )
    ingress: list[IngressRuleConfig] = Field(
        default_factory=list,
        description="Connections the namespace accepts; everything else from outside it is "
        "refused (a serving namespace names its callers here).",
    )
    serves_models: bool = Field(
        default=False,
        description="The team deploys model services from its own project (components."
        "model_service): their pods, bound to roles by Pod Identity, may reach the agent and "
        "the AWS APIs, as a configured workload's may.",
    )
    deployer: TeamDeployerConfig | None = Field(
        default=None,
        description="A role the team's GitHub Actions jobs assume to ship model services from "
        "the team's own project: it may make roles only under `/teams/<team>/` and the "
        "workload boundary, bind them by Pod Identity, and manage model services in the "
        "team's namespace only. Needs servesModels.",
    )

    @model_validator(mode="after")
    def _serving_port_declared(self) -> TeamConfig:
        if self.serves_models and not self.ingress:
            raise ValueError(
                "servesModels: declare the port model services answer on in ingress (their "
                "callers, and the metrics agent, connect to it)"
            )
        return self

    @model_validator(mode="after")
    def _deployer_serves_models(self) -> TeamConfig:
        if self.deployer is not None and not self.serves_models:
            raise ValueError(
                "deployer ships model services: set servesModels: true so their pods may reach AWS"
            )
        return self


# Each chart version field, by the chart it pins (the name chart contracts know it by).
CHARTS: Final = {
    "nvidia_device_plugin": "nvidia-device-plugin",
    "dcgm_exporter": "dcgm-exporter",
    "neuron_device_plugin": "neuron-helm-chart",
    "cluster_autoscaler": "cluster-autoscaler",
    "karpenter": "karpenter",
    "kube_state_metrics": "kube-state-metrics",
    "efa_device_plugin": "aws-efa-k8s-device-plugin",
    "argo_rollouts": "argo-rollouts",
    "aws_load_balancer_controller": "aws-load-balancer-controller",
    "prometheus_agent": "prometheus",
    "keda": "keda",
}


class ChartVersions(ConfigModel):
    """Helm chart versions, pinned; each needs a chart contract (policies/mlops_guardrails/
    charts.py), the facts the platform relies on, read from that version's source."""

    nvidia_device_plugin: ChartVersion = Field(
        default="0.18.0", description="nvidia-device-plugin chart (NVIDIA k8s-device-plugin)."
    )
    dcgm_exporter: ChartVersion = Field(
        default="4.1.3", description="dcgm-exporter chart (GPU metrics for Prometheus)."
    )
    neuron_device_plugin: ChartVersion = Field(
        default="1.1.1", description="neuron-helm-chart (AWS Neuron device plugin)."
    )
    cluster_autoscaler: ChartVersion = Field(
        default="9.59.0",
        description="cluster-autoscaler chart (managed-node-group backend); its image follows "
        "the cluster's Kubernetes minor.",
    )
    karpenter: ChartVersion = Field(
        default="1.12.1", description="karpenter chart (karpenter backend)."
    )
    kube_state_metrics: ChartVersion = Field(
        default="8.4.0",
        description="kube-state-metrics chart (node readiness and pool labels for GPU alerts); "
        "its image follows the cluster's Kubernetes minor.",
    )

    efa_device_plugin: ChartVersion = Field(
        default="v0.5.30",
        description="aws-efa-k8s-device-plugin chart (eks-charts), for pools with EFA.",
    )
    argo_rollouts: ChartVersion = Field(
        default="2.41.0",
        description="argo-rollouts chart (canary rollouts of model services), installed when a "
        "team serves models.",
    )
    aws_load_balancer_controller: ChartVersion = Field(
        default="3.5.0",
        description="aws-load-balancer-controller chart (eks-charts): the ALBs whose weighted "
        "target groups split a canary's traffic, installed when a team serves models.",
    )
    keda: ChartVersion = Field(
        default="2.20.2",
        description="keda chart (autoscaling model services on their load from the platform's "
        "Prometheus), installed when a team serves models.",
    )
    prometheus_agent: ChartVersion = Field(
        default="29.27.0",
        description="prometheus chart (prometheus-community), run as an agent: scrapes model "
        "servers in team namespaces into the platform's workspace, installed when a team "
        "serves models.",
    )

    @field_validator(*CHARTS)
    @classmethod
    def _has_a_contract(cls, version: str, info: ValidationInfo) -> str:
        chart = CHARTS[str(info.field_name)]
        if charts.contract(chart, version) is None:
            known = ", ".join(charts.versions(chart)) or "none"
            raise ValueError(
                f"{chart} {version} has no chart contract (versions with one: {known}); add its "
                "facts to policies/mlops_guardrails/charts.py from that version's source"
            )
        return version

    def contract(self, field_name: str) -> charts.ChartContract:
        """The contract of the version a field pins (every pinned version has one)."""
        found = charts.contract(CHARTS[field_name], getattr(self, field_name))
        assert found is not None, field_name
        return found

    def in_use(self, gpu: GpuConfig) -> list[charts.ChartContract]:
        """The contracts of the charts a cluster with these pools installs."""
        vendors = {pool_hardware(p.instance_types).vendor for p in gpu.pools.values()}
        wanted = {"kube_state_metrics"}
        if "nvidia" in vendors:
            wanted |= {"nvidia_device_plugin", "dcgm_exporter"}
        if "neuron" in vendors:
            wanted.add("neuron_device_plugin")
        if any(pool.efa for pool in gpu.pools.values()):
            wanted.add("efa_device_plugin")
        if gpu.pools:
            wanted.add("karpenter" if gpu.backend == "karpenter" else "cluster_autoscaler")
        if gpu.serves_models:
            wanted |= {
                "argo_rollouts",
                "aws_load_balancer_controller",
                "keda",
                "prometheus_agent",
            }
        return [self.contract(name) for name in sorted(wanted)]


MAX_POOLS: Final = 100
"""More pools than any cluster needs: a config that has them is a mistake, found before a render
of thousands of resources."""


class GpuConfig(ConfigModel):
    """GPU and Neuron node pools, the software that makes them usable, and team quotas."""

    backend: Literal["managed-node-groups", "karpenter"] = Field(
        default="managed-node-groups",
        description="managed-node-groups (one EKS node group per pool, scaled by the cluster "
        "autoscaler) or karpenter (a NodePool and EC2NodeClass per pool).",
    )
    pools: dict[PoolName, GpuPoolConfig] = Field(
        default_factory=dict,
        max_length=MAX_POOLS,
        description=f"Accelerator pools by name (the name labels the nodes); at most {MAX_POOLS}.",
    )
    teams: dict[KubernetesName, TeamConfig] = Field(
        default_factory=dict,
        description="Team namespaces with accelerator quotas, a LimitRange and default-deny "
        "network policy (open within the namespace, to DNS, to AWS for pods holding roles, and "
        "to the connections `ingress` names).",
    )
    charts: ChartVersions = Field(
        default_factory=ChartVersions, description="Pinned Helm chart versions."
    )

    @property
    def serves_models(self) -> bool:
        """A team deploys model services: the platform runs what they need (their scraping,
        traffic router and rollout controller)."""
        return any(team.serves_models for team in self.teams.values())

    @field_validator("teams")
    @classmethod
    def _team_namespaces_are_free(cls, teams: dict[str, TeamConfig]) -> dict[str, TeamConfig]:
        _not_kubernetes_own(teams)
        return teams

    @model_validator(mode="after")
    def _karpenter_pools_are_elastic(self) -> GpuConfig:
        if self.backend != "karpenter":
            return self
        problems = [
            f"pool {name}: Karpenter provisions for pending pods and keeps no minimum; "
            "set minNodes and desiredNodes to 0 or use managed-node-groups"
            for name, pool in self.pools.items()
            if pool.min_nodes or pool.desired_nodes
        ] + [
            f"pool {name}: Karpenter 1.12 sizes nodes by physical GPUs and would launch "
            f"{pool.time_slicing_replicas} times the nodes time-sliced pods need (NodeOverlay, "
            "which changes that, is alpha and off); use managed-node-groups for time slicing"
            for name, pool in self.pools.items()
            if pool.time_slicing_replicas
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="after")
    def _quotas_fit_the_pools(self) -> GpuConfig:
        # Quotas count what pods request: a time-sliced GPU once per share.
        ceilings = {"nvidia": 0, "neuron": 0}
        for pool in self.pools.values():
            shares = pool.time_slicing_replicas or 1
            ceilings[pool_hardware(pool.instance_types).vendor] += pool.max_gpus * shares
        problems = [
            f"team {name} may request {quota} {vendor} accelerators, but the pools advertise "
            f"at most {ceilings[vendor]} (time-sliced GPUs once per share)"
            for name, team in self.teams.items()
            for vendor, quota in (("nvidia", team.gpu_quota), ("neuron", team.neuron_quota))
            if quota > ceilings[vendor]
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return self


class RepositoryConfig(ConfigModel):
    """One ECR repository for model images."""

    keep_tagged_images: int = Field(
        default=200, ge=1, le=10000, description="How many of the newest tagged images to keep."
    )
    untagged_days: int = Field(
        default=7, ge=1, le=365, description="Days before untagged images (orphaned layers) expire."
    )


class RegistriesConfig(ConfigModel):
    """Container registries for model images."""

    repositories: dict[KubernetesName, RepositoryConfig] = Field(
        default_factory=dict,
        description="ECR repositories by key: immutable tags, KMS-encrypted, account-only.",
    )
    continuous_scanning: bool = Field(
        default=True,
        description="Rescan images as new vulnerabilities are published (Inspector enhanced "
        "scanning), not only on push; applies where ownsRegistryScanning is set.",
    )
    owns_registry_scanning: bool = Field(
        default=False,
        description="This stack sets the account and region's one ECR registry scanning "
        "configuration (enhanced scanning of every repository). Set it in exactly one stack per "
        "account and region, the longest-lived (prod); the setting is kept in AWS if that stack "
        "is destroyed. Every repository scans on push either way.",
    )

    @model_validator(mode="after")
    def _scanning_owner_has_a_registry(self) -> RegistriesConfig:
        if self.owns_registry_scanning and not self.repositories:
            raise ValueError(
                "ownsRegistryScanning is set, but the stack has no repositories, so no registry "
                "to set it: own it from a stack with repositories"
            )
        return self


FeatureName = Annotated[str, StringConstraints(pattern=r"^[a-zA-Z0-9]([-_]*[a-zA-Z0-9]){0,63}$")]
# SageMaker adds these columns to every offline-store record.
RESERVED_FEATURE_NAMES: Final = frozenset({"is_deleted", "write_time", "api_invocation_time"})


class FeatureGroupConfig(ConfigModel):
    """One SageMaker feature group."""

    description: Annotated[str, StringConstraints(max_length=128)] = Field(
        default="", description="What the features describe."
    )
    record_identifier: FeatureName = Field(description="The feature that identifies a record.")
    event_time: FeatureName = Field(description="The feature holding each record's event time.")
    features: dict[FeatureName, Literal["Integral", "Fractional", "String"]] = Field(
        min_length=2, description="Feature names and their types (record id and event time too)."
    )
    online: bool = Field(
        default=True, description="Keep the latest record per id for low-latency reads."
    )
    online_storage: Literal["Standard", "InMemory"] = Field(
        default="Standard",
        description="Online store tier: Standard, or InMemory for lowest latency.",
    )
    online_ttl_days: int | None = Field(
        default=None,
        ge=1,
        le=365,
        description="Expire online records after this many days (Standard only).",
    )
    offline: bool = Field(
        default=True, description="Keep every record in the S3 offline store for training sets."
    )
    table_format: Literal["Iceberg", "Glue"] = Field(
        default="Iceberg", description="Offline store table format; Iceberg compacts and deletes."
    )
    throughput: Literal["OnDemand", "Provisioned"] = Field(
        default="OnDemand", description="Online store capacity mode."
    )

    @model_validator(mode="after")
    def _well_formed(self) -> FeatureGroupConfig:
        problems = []
        reserved = sorted(RESERVED_FEATURE_NAMES & set(self.features))
        if reserved:
            problems.append(f"feature names {reserved} are reserved by SageMaker")
        for role, feature in (
            ("recordIdentifier", self.record_identifier),
            ("eventTime", self.event_time),
        ):
            if feature not in self.features:
                problems.append(f"{role} {feature!r} is not one of the features")
        if self.features.get(self.event_time) == "Integral":
            problems.append(
                "the event time feature must be String (ISO 8601) or Fractional (epoch)"
            )
        if not (self.online or self.offline):
            problems.append("enable the online store, the offline store or both")
        if self.online_ttl_days is not None and self.online_storage != "Standard":
            problems.append("onlineTtlDays needs the Standard online store")
        # SageMaker API reference, ThroughputConfig: provisioned throughput only for
        # offline-only groups or the Standard online store.
        if self.throughput == "Provisioned" and self.online and self.online_storage != "Standard":
            problems.append(
                "Provisioned throughput needs the Standard online store (or no online store); "
                "the InMemory store is on demand only"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self


class FeastConfig(ConfigModel):
    """Storage for a Feast feature store: DynamoDB online tables and an S3 registry."""

    project: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")] = Field(
        description="The Feast project; online tables are named `<project>.<feature view>`."
    )
    feature_views: list[Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]] = (
        Field(min_length=1, description="Feature views with an online table each.")
    )
    server_namespace: KubernetesName = Field(
        default="feast", description="Namespace of the Feast feature server."
    )
    server_service_account: KubernetesName = Field(
        default="feast-server", description="Service account the Feast server runs as."
    )


class FeatureStoreConfig(ConfigModel):
    """Feature stores: SageMaker feature groups and/or Feast-compatible storage."""

    feature_groups: dict[FeatureName, FeatureGroupConfig] = Field(
        default_factory=dict, description="SageMaker feature groups by name."
    )
    feast: FeastConfig | None = Field(default=None, description="Feast-compatible storage.")


class BucketAccessConfig(ConfigModel):
    """Access to one artifact bucket, or a prefix of it."""

    bucket: BucketKey = Field(description="Artifact bucket key (from artifacts.buckets).")
    prefix: Annotated[str, StringConstraints(pattern=r"^([A-Za-z0-9_.-]+/)*$")] = Field(
        default="", description="Limit access to keys under this prefix (ending in /)."
    )
    access: Literal["read", "read-write"] = Field(
        default="read", description="read, or read-write (put and delete too)."
    )


class ExperimentTrackingConfig(ConfigModel):
    """A SageMaker managed MLflow tracking server: experiments, runs and a model registry,
    with run artifacts under a prefix of an artifact bucket."""

    bucket: BucketKey = Field(
        default="experiments",
        description="Artifact bucket (from artifacts.buckets) that holds the run artifacts.",
    )
    prefix: Annotated[str, StringConstraints(pattern=r"^([A-Za-z0-9_.-]+/)+$")] = Field(
        default="mlflow/",
        description="Key prefix of the run artifacts (ending in /): the server's role and the "
        "workloads' grants reach nothing else of the bucket.",
    )
    size: Literal["Small", "Medium", "Large"] = Field(
        description="Server size: AWS sizes Small for up to 25 users, Medium 50, Large 100.",
    )
    maintenance_window: Annotated[
        str, StringConstraints(pattern=r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun):([01]\d|2[0-3]):[0-5]\d$")
    ] = Field(
        default="Sun:03:00",
        description="Start of the weekly maintenance window, UTC, as Sun:03:00.",
    )
    mlflow_version: Annotated[str, StringConstraints(pattern=r"^\d+\.\d+$")] | None = Field(
        default=None,
        description="MLflow major.minor (e.g. 3.0), or null for the version SageMaker picks. "
        "SageMaker cannot upgrade a server in place: a new version replaces it, and its "
        "experiments with it (protected stacks refuse).",
    )
    automatic_model_registration: bool = Field(
        default=False,
        description="Mirror models registered in MLflow into the SageMaker Model Registry.",
    )


class WorkloadConfig(ConfigModel):
    """One workload's identity: a role bound to one service account, granted what it names."""

    namespace: KubernetesName = Field(description="Namespace the workload runs in.")
    service_account: KubernetesName = Field(description="Service account the workload runs as.")
    binding: Literal["pod-identity", "irsa"] = Field(
        default="pod-identity",
        description="EKS Pod Identity (default), or IRSA for clients that predate it.",
    )
    buckets: list[BucketAccessConfig] = Field(
        default_factory=list, description="Artifact buckets (or prefixes) it reads or writes."
    )
    repositories: dict[KubernetesName, Literal["pull", "push"]] = Field(
        default_factory=dict, description="Model image repositories it pulls from or pushes to."
    )
    feature_groups: dict[FeatureName, Literal["read", "read-write"]] = Field(
        default_factory=dict, description="SageMaker feature groups it reads or writes."
    )
    feast_views: dict[str, Literal["read", "read-write"]] = Field(
        default_factory=dict, description="Feast online tables it reads or writes."
    )
    experiment_tracking: Literal["read", "read-write"] | None = Field(
        default=None,
        description="The MLflow tracking server (experimentTracking): read, or read-write "
        "(log runs, register models); with its artifacts, which clients move to S3 themselves.",
    )
    artifact_events: list[BucketKey] = Field(
        default_factory=list,
        description="Artifact buckets whose new-object queue it consumes (buckets with events).",
    )


AlertProtocol = Literal["email", "https", "sqs", "lambda"]
SecretConfigKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")]
"""A stack config key of the project (`<project>:<key>`) set with `pulumi config set --secret`."""
ENDPOINT_PATTERNS: Final[dict[str, tuple[str, str]]] = {
    "email": (r"^[^@\s]+@[^@\s]+\.[^@\s]+$", "an email address"),
    "https": (r"^https://\S+$", "an https:// URL (plain http would send alerts in the clear)"),
    "sqs": (r"^arn:aws[a-z-]*:sqs:[a-z0-9-]+:[0-9]{12}:\S+$", "an SQS queue ARN"),
    "lambda": (r"^arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:function:\S+$", "a Lambda ARN"),
}


class AlertSubscriptionConfig(ConfigModel):
    """Where the alert topic delivers."""

    protocol: AlertProtocol = Field(description="email, https, sqs or lambda.")
    endpoint: str | None = Field(
        default=None, description="The address, URL or ARN that receives the alerts."
    )
    endpoint_secret: SecretConfigKey | None = Field(
        default=None,
        description="Instead of endpoint: the name of the stack config key holding it as a "
        "secret (`pulumi config set --secret <name> <url>`), for endpoints that are "
        "credentials, such as webhook URLs carrying a token.",
    )

    @model_validator(mode="after")
    def _endpoint_fits_protocol(self) -> AlertSubscriptionConfig:
        if (self.endpoint is None) == (self.endpoint_secret is None):
            raise ValueError("set endpoint or endpointSecret, one of them")
        pattern, what = ENDPOINT_PATTERNS[self.protocol]
        if self.endpoint is not None and not re.fullmatch(pattern, self.endpoint):
            raise ValueError(f"{self.protocol} endpoints must be {what}")
        return self


class MonitoringConfig(ConfigModel):
    """GPU metrics in Amazon Managed Service for Prometheus, alerts to an encrypted SNS topic."""

    subscriptions: list[AlertSubscriptionConfig] = Field(
        default_factory=list,
        description="Subscriptions to the alert topic (email ones must be confirmed).",
    )
    gpu_idle_minutes: int = Field(
        default=60,
        ge=10,
        le=1440,
        description="Alert when a GPU node's GPUs stay below the idle utilization this long.",
    )
    gpu_idle_utilization_percent: int = Field(
        default=5, ge=0, le=50, description="Mean GPU utilization below which a node is idle."
    )
    node_not_ready_minutes: int = Field(
        default=10, ge=1, le=120, description="Alert when a GPU node stays NotReady this long."
    )
    at_ceiling_minutes: int = Field(
        default=30,
        ge=5,
        le=1440,
        description="Alert when a GPU pool holds its ceiling (maxGpus) this long.",
    )


MAX_BUDGET_NOTIFICATIONS: Final = 10


class CostConfig(ConfigModel):
    """The environment's monthly AWS Budgets budget."""

    monthly_budget_usd: int = Field(
        ge=1, le=10_000_000, description="Monthly cost budget in USD for this environment."
    )
    alert_at_percent: list[Annotated[int, Field(ge=1, le=1000)]] = Field(
        default_factory=lambda: [50, 80, 100],
        min_length=1,
        description="Alert when actual spend passes these percentages of the budget.",
    )
    forecast_alert_at_percent: list[Annotated[int, Field(ge=1, le=1000)]] = Field(
        default_factory=lambda: [100],
        description="Alert when forecast spend passes these percentages of the budget.",
    )

    scope: Literal["account", "environment-tag"] = Field(
        default="account",
        description="account: all spend in the account (one account per environment, as AWS "
        "recommends); environment-tag: only resources tagged with this environment, which "
        "needs `mlops:environment` activated as a cost allocation tag in Billing.",
    )

    @model_validator(mode="after")
    def _within_the_budgets_api_limit(self) -> CostConfig:
        alerts = len(set(self.alert_at_percent)) + len(set(self.forecast_alert_at_percent))
        if alerts > MAX_BUDGET_NOTIFICATIONS:
            raise ValueError(
                f"{alerts} alert thresholds; AWS Budgets takes at most "
                f"{MAX_BUDGET_NOTIFICATIONS} per budget"
            )
        return self


class PlatformConfig(ConfigModel):
    """The whole platform configuration of one stack (`mlops-platform:platform`)."""

    environment: Environment = Field(
        description=(
            "Which environment this stack is. Selects the defaults profile (dev cheap, prod "
            "hardened) and the rules that apply."
        ),
    )
    tags: dict[TagKey, TagValue] = Field(
        default_factory=dict,
        description=(
            "Extra tags for every taggable resource, e.g. `owner`, `cost-center`. The platform "
            "adds `mlops:environment`, `mlops:stack`, `mlops:project` and `managed-by` itself."
        ),
    )
    protect_stateful_resources: bool = Field(
        description=(
            "Protect buckets, keys and other stateful resources from delete and replacement, "
            "and keep them in AWS if they leave the stack. Must be true in prod."
        ),
    )
    kms: KmsConfig = Field(description="Customer-managed KMS keys.")
    artifacts: ArtifactStorageConfig = Field(description="Artifact storage buckets.")
    network: NetworkSection = Field(
        description="The VPC the cluster runs in: one the platform creates, or `existing`."
    )
    eks: EksConfig = Field(description="The EKS cluster.")
    gpu: GpuConfig = Field(
        default_factory=GpuConfig, description="Accelerator node pools and team quotas."
    )
    registries: RegistriesConfig = Field(
        default_factory=RegistriesConfig, description="Model image registries."
    )
    feature_store: FeatureStoreConfig = Field(
        default_factory=FeatureStoreConfig, description="Feature stores."
    )
    workloads: dict[WorkloadName, WorkloadConfig] = Field(
        default_factory=dict,
        description="Workload identities: one IAM role per workload, bound to one service "
        "account, with a permissions boundary.",
    )
    monitoring: MonitoringConfig = Field(
        default_factory=MonitoringConfig, description="GPU metrics and alerting."
    )
    cost: CostConfig = Field(description="Cost budget and its alerts.")
    github_oidc_provider: Literal["existing", "create"] = Field(
        default="existing",
        description="The account's IAM OIDC provider for GitHub Actions, which team deployers "
        "trust: `existing` looks it up (IAM holds one per issuer URL, so usually one stack or "
        "the account's baseline made it); `create` makes it in this stack.",
    )
    experiment_tracking: ExperimentTrackingConfig | None = Field(
        default=None,
        description="A managed MLflow tracking server and model registry; null for none.",
    )

    def cluster_name(self, project: str, stack: str) -> str:
        return self.eks.cluster_name or names.default_cluster_name(project, stack)

    @model_validator(mode="after")
    def _workloads_name_what_exists(self, info: ValidationInfo) -> PlatformConfig:
        known = {
            "buckets": ("bucket", set(self.artifacts.buckets)),
            "repositories": ("repository", set(self.registries.repositories)),
            "featureGroups": ("feature group", set(self.feature_store.feature_groups)),
            "feastViews": (
                "Feast view",
                set(self.feature_store.feast.feature_views if self.feature_store.feast else ()),
            ),
        }
        bound: dict[tuple[str, str], str] = {}
        for name, workload in sorted(self.workloads.items()):
            named = {
                "buckets": [(f"[{i}].bucket", g.bucket) for i, g in enumerate(workload.buckets)],
                "repositories": [(f".{ref}", ref) for ref in workload.repositories],
                "featureGroups": [(f".{ref}", ref) for ref in workload.feature_groups],
                "feastViews": [(f".{ref}", ref) for ref in workload.feast_views],
            }
            for key, references in named.items():
                kind, have = known[key]
                for where, ref in references:
                    if ref not in have:
                        _problem(
                            info,
                            f"workloads.{name}.{key}{where}",
                            f"no {kind} {ref!r}; have: {', '.join(sorted(have)) or 'none'}",
                        )
            identity = (workload.namespace, workload.service_account)
            if identity in bound:
                _problem(
                    info,
                    f"workloads.{name}.serviceAccount",
                    f"workload {bound[identity]} has service account {identity[0]}/"
                    f"{identity[1]} too: one role per service account",
                )
            bound[identity] = name
        return self

    @model_validator(mode="after")
    def _tracking_and_events_name_what_exists(self, info: ValidationInfo) -> PlatformConfig:
        tracking = self.experiment_tracking
        if tracking is not None and tracking.bucket not in self.artifacts.buckets:
            _problem(
                info,
                "experimentTracking.bucket",
                f"no bucket {tracking.bucket!r}; have: {', '.join(sorted(self.artifacts.buckets))}",
            )
        publishing = sorted(key for key, bucket in self.artifacts.buckets.items() if bucket.events)
        for name, workload in sorted(self.workloads.items()):
            for index, key in enumerate(workload.artifact_events):
                if key not in publishing:
                    _problem(
                        info,
                        f"workloads.{name}.artifactEvents[{index}]",
                        f"bucket {key!r} publishes no events; those that do: "
                        f"{', '.join(publishing) or 'none'} (artifacts.buckets.<key>.events)",
                    )
        if tracking is None:
            for name, workload in sorted(self.workloads.items()):
                if workload.experiment_tracking is not None:
                    _problem(
                        info,
                        f"workloads.{name}.experimentTracking",
                        "the stack has no tracking server: set experimentTracking",
                    )
        return self

    @model_validator(mode="after")
    def _namespaces_exist(self, info: ValidationInfo) -> PlatformConfig:
        teams, platform = set(self.gpu.teams), set(self.eks.namespaces)
        external = set(self.eks.external_namespaces)
        made = teams | platform | external
        where = "add it to gpu.teams, eks.namespaces or eks.externalNamespaces"
        for n in sorted(teams & (platform | external)):
            _problem(info, f"gpu.teams.{n}", "also a platform or external namespace")
        for n in sorted(platform & external):
            _problem(info, "eks.externalNamespaces", f"{n!r} is also a platform namespace")
        users = [
            (f"workloads.{name}.namespace", workload.namespace)
            for name, workload in sorted(self.workloads.items())
        ] + [
            (f"gpu.teams.{team}.ingress[{index}].fromNamespaces", source)
            for team, config in sorted(self.gpu.teams.items())
            for index, rule in enumerate(config.ingress)
            for source in rule.from_namespaces
        ]
        if self.feature_store.feast is not None:
            users.append(
                ("featureStore.feast.serverNamespace", self.feature_store.feast.server_namespace)
            )
        for path, namespace in users:
            if namespace not in made:
                _problem(info, path, f"namespace {namespace!r} is not made by this stack; {where}")
        return self

    @model_validator(mode="after")
    def _ingress_sources_are_outside_the_cluster(self, info: ValidationInfo) -> PlatformConfig:
        rules = [
            (f"gpu.teams.{team}.ingress[{index}]", rule)
            for team, config in sorted(self.gpu.teams.items())
            for index, rule in enumerate(config.ingress)
        ]
        if isinstance(self.network, ExistingNetworkMode):
            if not self.network.existing.public_subnets:
                for path, rule in rules:
                    if rule.from_public_subnets:
                        _problem(
                            info,
                            f"{path}.fromPublicSubnets",
                            "network.existing names no public subnets (publicSubnets)",
                        )
            return self
        pods = [ipaddress.ip_network(c) for c in self.network.layout().private]
        for path, rule in rules:
            for cidr in rule.from_cidrs:
                if any(ipaddress.ip_network(cidr).overlaps(p) for p in pods):
                    _problem(
                        info,
                        f"{path}.fromCidrs",
                        f"{cidr} overlaps the private subnets, where pods get their addresses: "
                        "it would admit pods of every namespace; name them in fromNamespaces",
                    )
        return self

    @model_validator(mode="after")
    def _charts_support_the_cluster(self, info: ValidationInfo) -> PlatformConfig:
        unsupported = [
            f"{c.chart} {c.version} supports Kubernetes {charts.supported_kubernetes(c)} "
            f"({c.kubernetes_source})"
            for c in self.gpu.charts.in_use(self.gpu)
            if not charts.supports(c, self.eks.version)
        ]
        if unsupported:
            _problem(
                info,
                "eks.version",
                f"{self.eks.version} is outside what the pinned charts support: "
                + "; ".join(unsupported),
            )
        return self

    @model_validator(mode="after")
    def _pool_ami_releases_match_the_cluster(self, info: ValidationInfo) -> PlatformConfig:
        for name, pool in sorted(self.gpu.pools.items()):
            if (
                pool.ami_release
                and AmiRelease(pool.ami_release).kubernetes_minor != self.eks.version
            ):
                _problem(
                    info,
                    f"gpu.pools.{name}.amiRelease",
                    f"{pool.ami_release} is built for Kubernetes "
                    f"{AmiRelease(pool.ami_release).kubernetes_minor}, the cluster runs "
                    f"{self.eks.version}",
                )
        return self

    @model_validator(mode="after")
    def _node_groups_within_quota(self, info: ValidationInfo) -> PlatformConfig:
        if self.gpu.backend != "managed-node-groups":
            return self
        groups = 1 + len(self.gpu.pools)  # the system node group and one per pool
        if groups > self.eks.managed_node_groups_quota:
            _problem(
                info,
                "gpu.pools",
                f"{groups} managed node groups (the system group and {len(self.gpu.pools)} "
                f"pools), above eks.managedNodeGroupsQuota ({self.eks.managed_node_groups_quota}): "
                "raise the quota in Service Quotas and say so there, or use fewer pools",
            )
        return self

    @model_validator(mode="after")
    def _pool_zones_exist(self, info: ValidationInfo) -> PlatformConfig:
        zones = self.network.availability_zones
        for name, pool in sorted(self.gpu.pools.items()):
            if pool.zone and pool.zone > zones:
                _problem(
                    info,
                    f"gpu.pools.{name}.zone",
                    f"zone {pool.zone} is beyond network.availabilityZones ({zones})",
                )
        return self

    @field_validator("protect_stateful_resources")
    @classmethod
    def _prod_is_protected(cls, protect: bool, info: ValidationInfo) -> bool:
        if _environment(info) == "prod" and not protect:
            raise ValueError("must be true in prod")
        return protect

    @field_validator("tags")
    @classmethod
    def _reserved_tag_keys(cls, tags: dict[str, str]) -> dict[str, str]:
        by_aws = sorted(key for key in tags if key.lower().startswith("aws:"))
        by_platform = sorted(key for key in tags if key.startswith("mlops:") or key == "managed-by")
        if by_aws:
            raise ValueError(f"keys {by_aws} use the `aws:` prefix, which AWS reserves")
        if by_platform:
            raise ValueError(f"keys {by_platform} are set by the platform; use other tag keys")
        return tags


class ConfigError(pulumi.RunError):
    """Bad stack configuration. A RunError, so `pulumi up` prints it without a traceback."""

    def __init__(self, stack_file: str, problems: list[str]) -> None:
        self.problems = problems
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(
            f"invalid platform configuration in {stack_file} ({count}); nothing was changed:\n"
            f"{lines}"
        )


def stack_file_name(stack: str) -> str:
    return f"Pulumi.{stack}.yaml"


def load_platform_config(
    raw: Any,
    *,
    stack: str,
    project: str,
    region: str | None = None,
    is_secret: typing.Callable[[str], bool] | None = None,
) -> PlatformConfig:
    """Validate a stack's raw `<project>:platform` value; one ConfigError lists all problems."""
    root = f"{project}:{CONFIG_KEY}"
    stack_file = stack_file_name(stack)
    if raw is None:
        raise ConfigError(
            stack_file,
            [f"{root}: missing; set it under `config:` (see docs/config-reference.md)"],
        )
    if not isinstance(raw, dict):
        raise ConfigError(stack_file, [f"{root}: must be a mapping of settings, got {raw!r}"])

    environment = raw.get("environment")
    known_environment = environment if environment in ENVIRONMENTS else None
    # With an unknown environment, the prod profile (which needs no further keys) stands in so
    # that the one real problem is not buried under "missing" errors for every
    # environment-dependent key; prod's own rules still apply only to prod.
    data = with_environment_defaults(raw, known_environment or "prod")
    problems = []
    if is_secret is not None and is_secret(root):
        problems.append(
            f"{root}: holds a secret (a `secure:` value): the whole value would become a secret, "
            "unreadable in previews and reviews; put each secret under its own key (`pulumi "
            "config set --secret <key> <value>`) and name that key here (e.g. "
            "monitoring.subscriptions[].endpointSecret)"
        )
    if region is not None and region not in names.eks_regions():
        problems.append(
            f"aws:region: {region!r} is not a region with EKS (botocore's endpoint data lists "
            f"{len(names.eks_regions())})"
        )
    replica_region = (data.get("artifacts") or {}).get("replicaRegion")
    partitions = names.region_partitions()
    if (
        region in partitions
        and replica_region in partitions
        and partitions[region] != partitions[replica_region]
    ):
        problems.append(
            f"{root}.artifacts.replicaRegion: {replica_region} is in partition "
            f"{partitions[replica_region]}, the stack's region {region} in {partitions[region]}; "
            "S3 replicates only within a partition"
        )
    if region is not None and replica_region == region:
        problems.append(
            f"{root}.artifacts.replicaRegion: {region} is the stack's own region (aws:region); "
            "replicas must survive its loss"
        )
    context = {"environment": known_environment, "project": project, "stack": stack}
    cross_field: list[tuple[str, str]] = []
    try:
        config = PlatformConfig.model_validate(
            data, context={**context, CROSS_FIELD_PROBLEMS: cross_field}
        )
    except ValidationError as error:
        raise ConfigError(
            stack_file,
            [
                *problems,
                *describe_errors(error, root),
                *_cross_field_problems_beside(
                    error, raw, known_environment or "prod", context, root
                ),
            ],
        ) from None
    problems += [f"{root}.{path}: {message}" for path, message in cross_field]
    if is_secret is not None:
        problems += [
            f"{root}.monitoring.subscriptions[{index}].endpointSecret: {project}:{name} is not "
            f"set as a secret in {stack_file}: pulumi config set --secret {name} <endpoint>"
            for index, subscription in enumerate(config.monitoring.subscriptions)
            if (name := subscription.endpoint_secret) and not is_secret(f"{project}:{name}")
        ]
    if region is not None and isinstance(config.network, ExistingNetworkMode):
        given = config.network.existing
        problems += [
            f"{root}.network.existing.{kind}[{index}].zone: {subnet.zone} is not a zone of "
            f"the stack's region {region} (aws:region)"
            for kind, subnets in (
                ("privateSubnets", given.private_subnets),
                ("publicSubnets", given.public_subnets),
            )
            for index, subnet in enumerate(subnets)
            if not re.fullmatch(rf"{re.escape(region)}([a-z]|-[a-z0-9-]+)", subnet.zone)
        ]
    problems += _name_problems(config, root, project=project, stack=stack)
    if problems:
        raise ConfigError(stack_file, problems)
    return config


def _name_problems(config: PlatformConfig, root: str, *, project: str, stack: str) -> list[str]:
    """Physical names built from config that AWS would refuse (infra.names), at the key that
    makes them."""
    problems: list[str] = []
    cluster_name = config.cluster_name(project, stack)
    if config.eks.cluster_name is None and (problem := names.EKS_CLUSTER.problem(cluster_name)):
        problems.append(
            f"{root}.eks.clusterName: unset, so the stack name {stack!r} {problem}: set "
            "eks.clusterName"
        )
    if (
        config.eks.cluster_name is None
        and config.feature_store.feature_groups
        and not names.CASE_AND_SEPARATOR_FREE.fullmatch(cluster_name)
    ):
        problems.append(
            f"{root}.eks.clusterName: unset, so the feature store's Glue database is named "
            f"after {cluster_name!r}, lowercased with - and _ alike, which a stack whose name "
            "differs only in case, - or _ would share in this account: set eks.clusterName "
            "(lowercase letters, digits and -)"
        )
    problems += [
        f"{root}.featureStore.featureGroups.{key}: {problem}; shorten the key or eks.clusterName"
        for key in config.feature_store.feature_groups
        if (
            problem := names.SAGEMAKER_FEATURE_GROUP.problem(
                names.feature_group_name(cluster_name, key)
            )
        )
    ]
    return problems


def _cross_field_problems_beside(
    error: ValidationError,
    raw: dict[str, Any],
    environment: Environment,
    context: dict[str, Any],
    root: str,
) -> list[str]:
    """Checks across keys are skipped while a key is invalid on its own; run them once more
    with the sections that failed left to their defaults, so every problem is reported at once.
    Not when a failed section is one the checks look names up in: its defaults would stand in
    for what the stack file meant, and the report would be about them."""
    failed = {detail["loc"][0] for detail in error.errors() if detail["loc"]}
    if failed & CROSS_FIELD_SOURCES:
        return []
    standing_in = with_environment_defaults(
        {key: value for key, value in raw.items() if key not in failed}, environment
    )
    found: list[tuple[str, str]] = []
    try:
        PlatformConfig.model_validate(standing_in, context={**context, CROSS_FIELD_PROBLEMS: found})
    except ValidationError:
        return []
    return [f"{root}.{path}: {message}" for path, message in found]


def with_environment_defaults(raw: dict[str, Any], environment: Environment) -> dict[str, Any]:
    """The raw config with the environment profile filled in beneath what the stack file sets."""
    merged = copy.deepcopy(raw)
    defaults = ENVIRONMENT_DEFAULTS[environment]
    network = merged.get("network")
    if isinstance(network, dict) and "existing" in network:
        # The profile's network settings are the created network's.
        defaults = {key: value for key, value in defaults.items() if key != "network"}
    _fill(merged, defaults)
    return merged


def _fill(target: dict[str, Any], defaults: dict[str, Any]) -> None:
    for key, default in defaults.items():
        if key not in target:
            target[key] = copy.deepcopy(default)
        elif isinstance(default, dict) and isinstance(target[key], dict):
            _fill(target[key], default)


def describe_errors(error: ValidationError, root: str) -> list[str]:
    problems = []
    for detail in error.errors(include_url=False):
        loc = tuple(part for part in detail["loc"] if not _is_tag(part))
        path = root + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)
        kind = detail["type"]
        if kind == "extra_forbidden":
            allowed = ", ".join(_allowed_keys(detail["loc"][:-1]))
            problems.append(f"{path}: unknown key; allowed keys here: {allowed}")
        elif kind == "missing":
            problems.append(f"{path}: required, but not set")
        elif kind == "too_long" and isinstance(detail["input"], dict | list):
            problems.append(
                f"{path}: {len(detail['input'])} entries; at most {detail['ctx']['max_length']}"
            )
        else:
            message = detail["msg"].removeprefix("Value error, ")
            given = detail["input"]
            # A whole section restated would bury the message; the path already names it.
            shown = "" if isinstance(given, dict) else f"; got {_as_yaml(given)}"
            problems.append(f"{path}: {message}{shown}")
    return problems


def _as_yaml(value: Any) -> str:
    """A value as the stack file would write it: `false`, `null`, `yes-please`, `[a, b]`."""
    return (
        str(yaml.safe_dump(value, default_flow_style=True, width=1000))
        .removesuffix("\n...\n")
        .strip()
    )


def _allowed_keys(loc: tuple[int | str, ...]) -> list[str]:
    """The keys the model accepts at a config path, to say what a misspelt key should be."""
    annotation: Any = PlatformConfig
    for part in loc:
        if _is_tag(part):
            annotation = _tagged_member(annotation, str(part))
            continue
        annotation = _unwrap(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = next(
                f for name, f in annotation.model_fields.items() if (f.alias or name) == part
            )
            annotation = field.annotation
        else:
            annotation = typing.get_args(annotation)[-1]
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [field.alias or name for name, field in annotation.model_fields.items()]
    return []


def _is_tag(part: int | str) -> bool:
    return isinstance(part, str) and part.startswith("(")


def _tagged_member(union: Any, tag: str) -> Any:
    """The member of a tagged union (NetworkSection) that a tag names."""
    while typing.get_origin(union) is Annotated:
        union = typing.get_args(union)[0]
    for member in typing.get_args(union):
        if any(getattr(meta, "tag", None) == tag for meta in typing.get_args(member)[1:]):
            return typing.get_args(member)[0]
    raise LookupError(tag)


def _unwrap(annotation: Any) -> Any:
    """Strip Annotated and Optional around a model or container type."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
        else:
            return annotation
