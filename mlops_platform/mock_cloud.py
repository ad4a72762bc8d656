"""A stand-in for AWS under Pulumi's mocks: outputs shaped like the real ones, deterministically.

Ids, names and ARNs derive from a hash of the stack, type and name, so the same program renders
the same plan byte for byte, and downstream code (policies built from ARNs, names in tags) runs as
it would against AWS.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from pulumi.runtime.mocks import MockCallArgs, MockResourceArgs, Mocks

from mlops_guardrails.export import SECRET_SIG, SECRET_SIG_KEY

# A documentation-style account id: obviously not a real account.
MOCK_ACCOUNT_ID = "123456789012"
# The role the offline plan pretends to deploy as (policy configs allow it cluster-admin).
DEPLOYER_ROLE = "platform-deployer"
EC2_ID_PREFIXES = {
    "aws:ec2/vpc:Vpc": ("vpc", "vpc"),
    "aws:ec2/subnet:Subnet": ("subnet", "subnet"),
    "aws:ec2/internetGateway:InternetGateway": ("igw", "internet-gateway"),
    "aws:ec2/eip:Eip": ("eipalloc", "elastic-ip"),
    "aws:ec2/natGateway:NatGateway": ("nat", "natgateway"),
    "aws:ec2/routeTable:RouteTable": ("rtb", "route-table"),
    "aws:ec2/securityGroup:SecurityGroup": ("sg", "security-group"),
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": ("sg", "security-group"),
    "aws:ec2/vpcEndpoint:VpcEndpoint": ("vpce", "vpc-endpoint"),
    "aws:ec2/flowLog:FlowLog": ("fl", "vpc-flow-log"),
    "aws:ec2/launchTemplate:LaunchTemplate": ("lt", "launch-template"),
    "aws:ec2/placementGroup:PlacementGroup": ("pg", "placement-group"),
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": ("sgr", "security-group-rule"),
}


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
    provider_regions: dict[str, str] = field(default_factory=dict, compare=False)
    """The region of each explicit AWS provider, by the id the mocks gave it: resources and
    data sources through it answer as that region would."""
    stack_outputs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, compare=False)
    """Other stacks' outputs by the name a StackReference gives (`<org>/<project>/<stack>`)."""
    unresolved: set[str] = field(default_factory=set, compare=False)
    """Stacks the program referenced whose outputs were not given (the engine's monitor reads
    them as unknown): the engine renders them and runs the program again."""

    @property
    def partition(self) -> str:
        return partition_of(self.region)

    def _through(self, provider: str | None) -> MockCloud:
        region = self.provider_regions.get((provider or "").rsplit("::", 1)[-1])
        return dataclasses.replace(self, region=region) if region else self

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        return self._through(args.provider)._call(args)

    def _call(self, args: MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": self.account_id,
                "arn": (
                    f"arn:{self.partition}:sts::{self.account_id}:assumed-role/"
                    f"{DEPLOYER_ROLE}/offline-plan"
                ),
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
        if args.token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            letters = "abcdef"
            return {
                "names": [f"{self.region}{letter}" for letter in letters],
                "zoneIds": [f"use1-az{n}" for n in range(1, len(letters) + 1)],
                "id": self.region,
            }, []
        if args.token == "aws:iam/getSessionContext:getSessionContext":
            return {
                "arn": args.args["arn"],
                "issuerArn": f"arn:{self.partition}:iam::{self.account_id}:role/{DEPLOYER_ROLE}",
                "issuerName": DEPLOYER_ROLE,
                "issuerId": "AROAOFFLINEPLAN",
                "sessionName": "offline-plan",
                "id": args.args["arn"],
            }, []
        answer = _CALLS.get(args.token)
        if answer is not None:
            return answer(self, args), []
        raise UnmockedInvokeError(
            f"the offline plan has no model of data source {args.token}; "
            "add it to mlops_platform/mock_cloud.py"
        )

    def _existing_oidc_provider(self, args: MockCallArgs) -> dict[str, Any]:
        """The account's baseline holds the GitHub Actions provider, as most accounts that
        deploy from GitHub do; a real preview fails by name where it does not."""
        url = str(args.args.get("url", ""))
        arn = f"arn:{self.partition}:iam::{self.account_id}:oidc-provider/{url.removeprefix('https://')}"
        return {
            "arn": arn,
            "url": url,
            "clientIdLists": ["sts.amazonaws.com"],
            "thumbprintLists": [],
            "tags": {},
            "id": arn,
        }

    def _addon_version(self, args: MockCallArgs) -> dict[str, Any]:
        addon, kubernetes = args.args["addonName"], args.args["kubernetesVersion"]
        return {
            "addonName": addon,
            "kubernetesVersion": kubernetes,
            # Plainly not a real build: AWS picks the version when the stack is deployed.
            "version": f"v0.0.0-eksbuild.0+recommended-for-{kubernetes}",
            "id": addon,
        }

    def _connection(self, args: MockCallArgs) -> dict[str, Any]:
        """A GitHub connection someone authorised in the console, as the deploy runner needs."""
        name = args.args["name"]
        connection_id = _stable_uuid(f"{self.stack}\0connection\0{name}")
        arn = (
            f"arn:{self.partition}:codeconnections:{self.region}:{self.account_id}:"
            f"connection/{connection_id}"
        )
        return {
            "arn": arn,
            "name": name,
            "connectionStatus": "AVAILABLE",
            "providerType": "GitHub",
            "hostArn": "",
            "region": self.region,
            "tags": {},
            "id": arn,
        }

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        if args.typ == STACK_REFERENCE:
            return self._stack_reference(args)
        if args.typ == "pulumi:providers:aws" and args.inputs.get("region"):
            provider_id = self._auto_name(args)
            self.provider_regions[provider_id] = args.inputs["region"]
            return provider_id, dict(args.inputs)
        return self._through(args.provider)._new_resource(args)

    def _stack_reference(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        """What the engine reads for a StackReference: the stack's outputs, and which of them
        are secrets (the SDK marks those secret in the program)."""
        name = str(args.resource_id or args.inputs.get("name"))
        outputs = self.stack_outputs[name]
        secrets = sorted(key for key, value in outputs.items() if _is_secret(value))
        marked = {key: _as_secret_values(value) for key, value in outputs.items()}
        return name, {"name": name, "outputs": marked, "secretOutputNames": secrets}

    def _new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        if not args.custom:
            return "", {}
        outputs = dict(args.inputs)
        if "tags" in outputs:
            outputs["tagsAll"] = outputs["tags"]
        if args.typ.startswith("kubernetes:") and not args.typ.startswith("kubernetes:helm"):
            # The Kubernetes provider names an object without metadata.name as Pulumi would.
            metadata = dict(outputs.get("metadata") or {})
            metadata.setdefault("name", self._auto_name(args))
            outputs["metadata"] = metadata
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

    def _hex(self, args: MockResourceArgs, length: int) -> str:
        return hashlib.sha256(self._seed(args).encode()).hexdigest()[:length]

    def _ec2(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        prefix, arn_kind = EC2_ID_PREFIXES[args.typ]
        resource_id = f"{prefix}-{self._hex(args, 17)}"
        arn_prefix = f"arn:{self.partition}:ec2:{self.region}:{self.account_id}"
        outputs: dict[str, Any] = {"arn": f"{arn_prefix}:{arn_kind}/{resource_id}"}
        if args.typ == "aws:ec2/eip:Eip":
            outputs.update(
                allocationId=resource_id,
                publicIp=f"198.51.100.{int(self._hex(args, 2), 16) % 250 + 1}",
            )
        if args.typ == "aws:ec2/launchTemplate:LaunchTemplate":
            outputs.update(latestVersion=1, defaultVersion=1, name=self._auto_name(args))
        if args.typ == "aws:ec2/placementGroup:PlacementGroup":
            # Placement groups are known by name; the id is the name.
            name = args.inputs.get("name") or self._auto_name(args)
            outputs.update(name=name, placementGroupId=resource_id)
            return name, outputs
        return resource_id, outputs

    def _log_group(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        name = args.inputs.get("name") or self._auto_name(args)
        arn = f"arn:{self.partition}:logs:{self.region}:{self.account_id}:log-group:{name}"
        return name, {"name": name, "arn": arn}

    def _iam_role(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        name = args.inputs.get("name") or self._auto_name(args)
        arn = (
            f"arn:{self.partition}:iam::{self.account_id}:role{args.inputs.get('path', '/')}{name}"
        )
        return name, {"name": name, "arn": arn, "uniqueId": f"AROA{self._hex(args, 17).upper()}"}

    def _iam_policy(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        name = args.inputs.get("name") or self._auto_name(args)
        arn = f"arn:{self.partition}:iam::{self.account_id}:policy/{name}"
        return arn, {"name": name, "arn": arn, "policyId": f"ANPA{self._hex(args, 17).upper()}"}

    def _oidc_provider(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        host = str(args.inputs.get("url", "")).removeprefix("https://")
        arn = f"arn:{self.partition}:iam::{self.account_id}:oidc-provider/{host}"
        return arn, {"arn": arn}

    def _eks_cluster(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        name = args.inputs.get("name") or self._auto_name(args)
        token = self._hex(args, 32).upper()
        vpc_config = {
            **args.inputs.get("vpcConfig", {}),
            "clusterSecurityGroupId": f"sg-{self._hex(args, 17)}",
        }
        certificate = base64.b64encode(f"offline-plan CA for {name}".encode()).decode()
        return name, {
            "name": name,
            "arn": f"arn:{self.partition}:eks:{self.region}:{self.account_id}:cluster/{name}",
            "endpoint": f"https://{token}.gr7.{self.region}.eks.amazonaws.com",
            "certificateAuthority": {"data": certificate},
            "identities": [
                {"oidcs": [{"issuer": f"https://oidc.eks.{self.region}.amazonaws.com/id/{token}"}]}
            ],
            "vpcConfig": vpc_config,
            "platformVersion": "eks.1",
            "status": "ACTIVE",
        }

    def _eks_node_group(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        cluster = args.inputs.get("clusterName", "")
        name = args.inputs.get("nodeGroupName") or self._auto_name(args)
        arn = (
            f"arn:{self.partition}:eks:{self.region}:{self.account_id}:nodegroup/"
            f"{cluster}/{name}/{_stable_uuid(self._seed(args))}"
        )
        autoscaling_group = f"eks-{name}-{_stable_uuid(self._seed(args))}"
        return f"{cluster}:{name}", {
            "nodeGroupName": name,
            "arn": arn,
            "status": "ACTIVE",
            "resources": [{"autoscalingGroups": [{"name": autoscaling_group}]}],
        }

    def _eks_addon(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        cluster, addon = args.inputs.get("clusterName", ""), args.inputs.get("addonName", "")
        arn = (
            f"arn:{self.partition}:eks:{self.region}:{self.account_id}:addon/"
            f"{cluster}/{addon}/{_stable_uuid(self._seed(args))}"
        )
        return f"{cluster}:{addon}", {"arn": arn}

    def _pod_identity_association(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        association = f"a-{self._hex(args, 17)}"
        cluster = args.inputs.get("clusterName", "")
        arn = (
            f"arn:{self.partition}:eks:{self.region}:{self.account_id}:podidentityassociation/"
            f"{cluster}/{association}"
        )
        return association, {"associationId": association, "associationArn": arn}

    def _ecr_repository(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        name = args.inputs.get("name") or self._auto_name(args)
        return name, {
            "name": name,
            "arn": f"arn:{self.partition}:ecr:{self.region}:{self.account_id}:repository/{name}",
            "repositoryUrl": f"{self.account_id}.dkr.ecr.{self.region}.amazonaws.com/{name}",
            "registryId": self.account_id,
        }

    def _feature_group(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        name = args.inputs.get("featureGroupName") or self._auto_name(args)
        arn = f"arn:{self.partition}:sagemaker:{self.region}:{self.account_id}:feature-group/{name}"
        return name, {"featureGroupName": name, "arn": arn}

    def _tracking_server(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        name = args.inputs["trackingServerName"]
        arn = (
            f"arn:{self.partition}:sagemaker:{self.region}:{self.account_id}:"
            f"mlflow-tracking-server/{name}"
        )
        url = f"https://t-{self._hex(args, 12)}.{self.region}.experiments.sagemaker.aws"
        return name, {"arn": arn, "trackingServerUrl": url}

    def _glue_database(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        name = args.inputs.get("name") or self._auto_name(args)
        arn = f"arn:{self.partition}:glue:{self.region}:{self.account_id}:database/{name}"
        return f"{self.account_id}:{name}", {"name": name, "arn": arn, "catalogId": self.account_id}

    def _dynamodb_table(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        name = args.inputs.get("name") or self._auto_name(args)
        arn = f"arn:{self.partition}:dynamodb:{self.region}:{self.account_id}:table/{name}"
        return name, {"name": name, "arn": arn}

    def _sqs_queue(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        name = args.inputs.get("name") or self._auto_name(args)
        url = f"https://sqs.{self.region}.amazonaws.com/{self.account_id}/{name}"
        arn = f"arn:{self.partition}:sqs:{self.region}:{self.account_id}:{name}"
        return url, {"name": name, "arn": arn, "url": url}

    def _codebuild_project(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        name = args.inputs.get("name") or self._auto_name(args)
        arn = f"arn:{self.partition}:codebuild:{self.region}:{self.account_id}:project/{name}"
        # CodeBuild knows a project by its name; the provider's id is its ARN.
        return arn, {"name": name, "arn": arn}

    def _event_rule(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        name = args.inputs.get("name") or self._auto_name(args)
        return name, {
            "name": name,
            "arn": f"arn:{self.partition}:events:{self.region}:{self.account_id}:rule/{name}",
        }

    def _sns_topic(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        name = args.inputs.get("name") or self._auto_name(args)
        arn = f"arn:{self.partition}:sns:{self.region}:{self.account_id}:{name}"
        return arn, {"name": name, "arn": arn}

    def _sns_subscription(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        arn = f"{args.inputs.get('topic', '')}:{_stable_uuid(self._seed(args))}"
        return arn, {"arn": arn}

    def _amp_workspace(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        workspace = f"ws-{_stable_uuid(self._seed(args))}"
        return workspace, {
            "arn": (
                f"arn:{self.partition}:aps:{self.region}:{self.account_id}:workspace/{workspace}"
            ),
            "prometheusEndpoint": (
                f"https://aps-workspaces.{self.region}.amazonaws.com/workspaces/{workspace}/"
            ),
        }

    def _amp_scraper(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        scraper = f"s-{_stable_uuid(self._seed(args))}"
        return scraper, {
            "arn": f"arn:{self.partition}:aps:{self.region}:{self.account_id}:scraper/{scraper}",
            "roleArn": (
                f"arn:{self.partition}:iam::{self.account_id}:role/"
                f"AWSServiceRoleForAmazonPrometheusScraper_{self._hex(args, 15)}"
            ),
        }

    def _amp_rule_group_namespace(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        workspace = args.inputs.get("workspaceId", "")
        name = args.inputs.get("name") or self._auto_name(args)
        arn = (
            f"arn:{self.partition}:aps:{self.region}:{self.account_id}:rulegroupsnamespace/"
            f"{workspace}/{name}"
        )
        return arn, {"arn": arn, "name": name}

    def _budget(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        name = args.inputs.get("name") or self._auto_name(args)
        return f"{self.account_id}:{name}", {
            "name": name,
            "accountId": self.account_id,
            "arn": f"arn:{self.partition}:budgets::{self.account_id}:budget/{name}",
        }


def _stable_uuid(seed: str) -> str:
    return str(uuid.UUID(bytes=hashlib.sha256(seed.encode()).digest()[:16], version=4))


_SHAPES = {
    "aws:s3/bucket:Bucket": MockCloud._bucket,
    "aws:kms/key:Key": MockCloud._kms_key,
    "aws:cloudwatch/logGroup:LogGroup": MockCloud._log_group,
    "aws:iam/role:Role": MockCloud._iam_role,
    "aws:iam/policy:Policy": MockCloud._iam_policy,
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": MockCloud._oidc_provider,
    "aws:eks/cluster:Cluster": MockCloud._eks_cluster,
    "aws:eks/nodeGroup:NodeGroup": MockCloud._eks_node_group,
    "aws:eks/addon:Addon": MockCloud._eks_addon,
    "aws:eks/podIdentityAssociation:PodIdentityAssociation": MockCloud._pod_identity_association,
    "aws:sqs/queue:Queue": MockCloud._sqs_queue,
    "aws:ecr/repository:Repository": MockCloud._ecr_repository,
    "aws:sagemaker/featureGroup:FeatureGroup": MockCloud._feature_group,
    "aws:sagemaker/mlflowTrackingServer:MlflowTrackingServer": MockCloud._tracking_server,
    "aws:glue/catalogDatabase:CatalogDatabase": MockCloud._glue_database,
    "aws:dynamodb/table:Table": MockCloud._dynamodb_table,
    "aws:cloudwatch/eventRule:EventRule": MockCloud._event_rule,
    "aws:codebuild/project:Project": MockCloud._codebuild_project,
    "aws:sns/topic:Topic": MockCloud._sns_topic,
    "aws:sns/topicSubscription:TopicSubscription": MockCloud._sns_subscription,
    "aws:amp/workspace:Workspace": MockCloud._amp_workspace,
    "aws:amp/scraper:Scraper": MockCloud._amp_scraper,
    "aws:amp/ruleGroupNamespace:RuleGroupNamespace": MockCloud._amp_rule_group_namespace,
    "aws:budgets/budget:Budget": MockCloud._budget,
    **dict.fromkeys(EC2_ID_PREFIXES, MockCloud._ec2),
}
_CALLS = {
    "aws:eks/getAddonVersion:getAddonVersion": MockCloud._addon_version,
    "aws:codestarconnections/getConnection:getConnection": MockCloud._connection,
    "aws:iam/getOpenIdConnectProvider:getOpenIdConnectProvider": MockCloud._existing_oidc_provider,
}


STACK_REFERENCE: Final = "pulumi:pulumi:StackReference"


def _is_secret(value: Any) -> bool:
    return isinstance(value, Mapping) and value.get(SECRET_SIG_KEY) == SECRET_SIG


def _as_secret_values(value: Any) -> Any:
    """A recorded output (secrets as `{sig, plaintext}`, at any depth) as the engine sends a
    StackReference's outputs: secrets as `{sig, value}`, which the SDK reads back as secret."""
    if _is_secret(value):
        return {SECRET_SIG_KEY: SECRET_SIG, "value": json.loads(value["plaintext"])}
    if isinstance(value, Mapping):
        return {key: _as_secret_values(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_as_secret_values(item) for item in value]
    return value
