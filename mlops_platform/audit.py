"""Drift and compliance audit: the live account judged by the same rules as the plan.

The stack's resources are found by the platform's tags (and, given a `pulumi stack export`, by
the names it records), read with read-only calls, and written down in the shape of a stack
export, so the policy pack's own rules judge them with their own ids, severities and
environment levels. Only the rules the pack marks `live` (they mean the same of a resource read
back from AWS) run; what only a comparison with the declared stack can show (policies added to a
role, its trust widened, a resource gone) are the audit's own findings. A call the credentials
may not make leaves that check unchecked, reported, never a crash.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Final

from botocore.exceptions import ClientError

from mlops_guardrails.export import resource_state, urn
from mlops_guardrails.pack import LIVE_RULES
from mlops_platform.policy_check import CheckResult, Finding, PolicyPackServer, render

ANY_RESOURCE: Final = "*"
ROLE_DRIFT: Final = "iam-role-drift"
MISSING: Final = "audit-resource-missing"
AUDIT_ONLY_REMEDIATION: Final = {
    ROLE_DRIFT: (
        "Remove what was added outside the stack (or declare it in the stack and review it); "
        "`pulumi refresh` then `pulumi up` restores the declared policies and trust."
    ),
    MISSING: (
        "Find out who deleted it (CloudTrail); `pulumi refresh` then `pulumi up` recreates it."
    ),
}
DENIED: Final = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "AuthorizationError",
        "UnauthorizedException",
    }
)

BUCKET: Final = "aws:s3/bucket:Bucket"
KEY: Final = "aws:kms/key:Key"
CLUSTER: Final = "aws:eks/cluster:Cluster"
NODE_GROUP: Final = "aws:eks/nodeGroup:NodeGroup"
LAUNCH_TEMPLATE: Final = "aws:ec2/launchTemplate:LaunchTemplate"
ROLE: Final = "aws:iam/role:Role"
ROLE_POLICY: Final = "aws:iam/rolePolicy:RolePolicy"
ATTACHMENT: Final = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
TABLE: Final = "aws:dynamodb/table:Table"
REPOSITORY: Final = "aws:ecr/repository:Repository"
REGISTRY_SCANNING: Final = "aws:ecr/registryScanningConfiguration:RegistryScanningConfiguration"


@dataclass(frozen=True)
class Unchecked:
    check: str
    resource: str
    reason: str


@dataclass
class LiveState:
    """What was read: resources in stack-export shape, and what could not be read."""

    resources: list[dict[str, Any]] = field(default_factory=list)
    unchecked: list[Unchecked] = field(default_factory=list)
    roles: dict[str, RoleGrants] = field(default_factory=dict)
    found: set[tuple[str, str]] = field(default_factory=set)
    """(type, name) of every stack resource found live."""


@dataclass(frozen=True)
class RoleGrants:
    """A role's inline policy names, attached policy ARNs and trust, live or declared."""

    inline: frozenset[str]
    attached: frozenset[str]
    trust: Any


@dataclass(frozen=True)
class Declared:
    """What a `pulumi stack export` says the stack owns, by the names AWS knows."""

    names: dict[str, frozenset[str]]
    """Type to physical names (node groups as `cluster:group`)."""
    roles: dict[str, RoleGrants]

    @classmethod
    def from_export(cls, resources: Sequence[Mapping[str, Any]]) -> Declared:
        name_fields = {
            BUCKET: "bucket",
            KEY: "keyId",
            CLUSTER: "name",
            ROLE: "name",
            TABLE: "name",
            REPOSITORY: "name",
        }
        names: dict[str, set[str]] = {kind: set() for kind in [*name_fields, NODE_GROUP]}
        inline: dict[str, set[str]] = {}
        attached: dict[str, set[str]] = {}
        trust: dict[str, Any] = {}
        for resource in resources:
            kind, outputs = resource.get("type"), resource.get("outputs") or {}
            if kind in name_fields and outputs.get(name_fields[kind]):
                names[kind].add(outputs[name_fields[kind]])
            if kind == NODE_GROUP:
                names[NODE_GROUP].add(
                    f"{outputs.get('clusterName')}:{outputs.get('nodeGroupName')}"
                )
            if kind == ROLE:
                trust[outputs.get("name", "")] = _document(outputs.get("assumeRolePolicy"))
            if kind == ROLE_POLICY:
                inline.setdefault(outputs.get("role", ""), set()).add(outputs.get("name", ""))
            if kind == ATTACHMENT:
                attached.setdefault(outputs.get("role", ""), set()).add(
                    outputs.get("policyArn", "")
                )
        return cls(
            names={kind: frozenset(found) for kind, found in names.items()},
            roles={
                role: RoleGrants(
                    frozenset(inline.get(role, ())), frozenset(attached.get(role, ())), document
                )
                for role, document in trust.items()
            },
        )


ClientFactory = Callable[[str], Any]


class LiveReader:
    """Reads the stack's resources with read-only calls."""

    def __init__(
        self, client: ClientFactory, *, stack: str, project: str, declared: Declared | None
    ) -> None:
        self.client = client
        self.stack = stack
        self.project = project
        self.declared = declared
        self.state = LiveState()

    def read(self) -> LiveState:
        for reader in (
            self._buckets,
            self._keys,
            self._clusters,
            self._roles,
            self._tables,
            self._repositories,
        ):
            reader()
        return self.state

    def _ours(self, tags: Mapping[str, str]) -> bool:
        return tags.get("mlops:stack") == self.stack and tags.get("mlops:project") == self.project

    def _declared(self, kind: str) -> frozenset[str]:
        return self.declared.names.get(kind, frozenset()) if self.declared else frozenset()

    def _add(self, kind: str, name: str, props: Mapping[str, Any]) -> None:
        self.state.resources.append(
            resource_state(
                urn=urn(self.stack, self.project, kind, name),
                type=kind,
                id=name,
                inputs=props,
                outputs=props,
            )
        )
        self.state.found.add((kind, name))

    @contextmanager
    def _reading(self, what: str, resource: str) -> Iterator[None]:
        """Run reads; credentials that may not make a call leave this check unchecked."""
        try:
            yield
        except ClientError as error:
            code = _code(error)
            # Denied is the usual cause; any other refusal (throttling, an opt-in region) also
            # leaves just this check undone rather than the whole audit.
            kind = "not permitted" if code in DENIED else "failed"
            self.state.unchecked.append(
                Unchecked(what, resource, f"{kind}: {code} on {error.operation_name}")
            )

    # S3 ---------------------------------------------------------------------------------------

    def _buckets(self) -> None:
        s3 = self.client("s3")
        with self._reading("listing", BUCKET):
            names = [b["Name"] for b in s3.list_buckets().get("Buckets", [])]
            wanted = self._declared(BUCKET)
            for name in names:
                tags = self._bucket_tags(s3, name)
                if tags is not None and (self._ours(tags) or name in wanted):
                    self._bucket(s3, name, tags)

    def _bucket_tags(self, s3: Any, name: str) -> dict[str, str] | None:
        with self._reading("bucket tags", name):
            try:
                tag_set = s3.get_bucket_tagging(Bucket=name).get("TagSet", [])
            except ClientError as error:
                if _code(error) != "NoSuchTagSet":
                    raise
                tag_set = []
            return {t["Key"]: t["Value"] for t in tag_set}
        return None

    def _bucket(self, s3: Any, name: str, tags: Mapping[str, str]) -> None:
        self._add(BUCKET, name, {"bucket": name, "tags": tags})
        with self._reading("s3-sse-kms-customer-key", name):
            rules = _optional(
                lambda: s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"][
                    "Rules"
                ],
                "ServerSideEncryptionConfigurationNotFoundError",
                [],
            )
            self._add(
                "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
                name,
                {
                    "bucket": name,
                    "rules": [
                        {
                            "applyServerSideEncryptionByDefault": {
                                "sseAlgorithm": rule.get(
                                    "ApplyServerSideEncryptionByDefault", {}
                                ).get("SSEAlgorithm"),
                                "kmsMasterKeyId": rule.get(
                                    "ApplyServerSideEncryptionByDefault", {}
                                ).get("KMSMasterKeyID"),
                            },
                            "bucketKeyEnabled": rule.get("BucketKeyEnabled", False),
                        }
                        for rule in rules
                    ],
                },
            )
        with self._reading("s3-public-access-block", name):
            block = _optional(
                lambda: s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"],
                "NoSuchPublicAccessBlockConfiguration",
                {},
            )
            self._add(
                "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
                name,
                {
                    "bucket": name,
                    "blockPublicAcls": block.get("BlockPublicAcls", False),
                    "blockPublicPolicy": block.get("BlockPublicPolicy", False),
                    "ignorePublicAcls": block.get("IgnorePublicAcls", False),
                    "restrictPublicBuckets": block.get("RestrictPublicBuckets", False),
                },
            )
        with self._reading("s3-versioning-enabled", name):
            status = s3.get_bucket_versioning(Bucket=name).get("Status", "Disabled")
            self._add(
                "aws:s3/bucketVersioning:BucketVersioning",
                name,
                {"bucket": name, "versioningConfiguration": {"status": status}},
            )
        with self._reading("s3-tls-only", name):
            policy = _optional(
                lambda: s3.get_bucket_policy(Bucket=name)["Policy"], "NoSuchBucketPolicy", ""
            )
            self._add("aws:s3/bucketPolicy:BucketPolicy", name, {"bucket": name, "policy": policy})
        with self._reading("s3-acls-disabled", name):
            controls = _optional(
                lambda: s3.get_bucket_ownership_controls(Bucket=name)["OwnershipControls"],
                "OwnershipControlsNotFoundError",
                {"Rules": []},
            )
            ownership = next((r.get("ObjectOwnership") for r in controls["Rules"]), None)
            self._add(
                "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
                name,
                {"bucket": name, "rule": {"objectOwnership": ownership}},
            )

    # KMS --------------------------------------------------------------------------------------

    def _keys(self) -> None:
        kms = self.client("kms")
        with self._reading("listing", KEY):
            wanted = self._declared(KEY)
            for page in kms.get_paginator("list_keys").paginate():
                for entry in page["Keys"]:
                    self._key(kms, entry["KeyId"], wanted)

    def _key(self, kms: Any, key_id: str, wanted: frozenset[str]) -> None:
        props: dict[str, Any] = {"keyId": key_id}
        with self._reading("key", key_id):
            metadata = kms.describe_key(KeyId=key_id)["KeyMetadata"]
            tags = kms.list_resource_tags(KeyId=key_id).get("Tags", [])
            props["tags"] = {t["TagKey"]: t["TagValue"] for t in tags}
            props["customerMasterKeySpec"] = metadata.get("KeySpec", "SYMMETRIC_DEFAULT")
            props["awsManaged"] = metadata.get("KeyManager") == "AWS"
        if props.get("awsManaged", True) or not (self._ours(props["tags"]) or key_id in wanted):
            return
        del props["awsManaged"]
        with self._reading("kms-key-rotation", key_id):
            rotation = kms.get_key_rotation_status(KeyId=key_id)
            props["enableKeyRotation"] = rotation["KeyRotationEnabled"]
        with self._reading("kms-key-policy-scoped", key_id):
            props["policy"] = kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]
        self._add(KEY, key_id, props)

    # EKS and the node groups' launch templates ------------------------------------------------

    def _clusters(self) -> None:
        eks = self.client("eks")
        with self._reading("listing", CLUSTER):
            wanted = self._declared(CLUSTER)
            for page in eks.get_paginator("list_clusters").paginate():
                for name in page["clusters"]:
                    cluster = eks.describe_cluster(name=name)["cluster"]
                    if self._ours(cluster.get("tags", {})) or name in wanted:
                        self._cluster(eks, cluster)

    def _cluster(self, eks: Any, cluster: Mapping[str, Any]) -> None:
        name = cluster["name"]
        vpc = cluster.get("resourcesVpcConfig", {})
        encryption: Mapping[str, Any] = next(iter(cluster.get("encryptionConfig") or []), {})
        access = cluster.get("accessConfig") or {}
        self._add(
            CLUSTER,
            name,
            {
                "name": name,
                "version": cluster.get("version"),
                "vpcConfig": {
                    "endpointPublicAccess": vpc.get("endpointPublicAccess"),
                    "endpointPrivateAccess": vpc.get("endpointPrivateAccess"),
                    "publicAccessCidrs": vpc.get("publicAccessCidrs", []),
                },
                "enabledClusterLogTypes": sorted(
                    kind
                    for entry in cluster.get("logging", {}).get("clusterLogging", [])
                    if entry.get("enabled")
                    for kind in entry.get("types", [])
                ),
                "encryptionConfig": {
                    "resources": encryption.get("resources", []),
                    "provider": {"keyArn": encryption.get("provider", {}).get("keyArn")},
                },
                "accessConfig": {
                    "authenticationMode": access.get("authenticationMode", "CONFIG_MAP"),
                    # Fixed at creation, so never drift; EKS may leave it out of the response.
                    "bootstrapClusterCreatorAdminPermissions": False,
                },
                "tags": cluster.get("tags", {}),
            },
        )
        if not access:
            self.state.unchecked.append(
                Unchecked(
                    "eks-api-authentication", name, "DescribeCluster returned no accessConfig"
                )
            )
        with self._reading("listing", f"{name}:*"):
            for page in eks.get_paginator("list_nodegroups").paginate(clusterName=name):
                for group in page["nodegroups"]:
                    self._node_group(eks, name, group)

    def _node_group(self, eks: Any, cluster: str, group_name: str) -> None:
        group = eks.describe_nodegroup(clusterName=cluster, nodegroupName=group_name)["nodegroup"]
        template = group.get("launchTemplate") or {}
        self._add(
            NODE_GROUP,
            f"{cluster}:{group_name}",
            {
                "clusterName": cluster,
                "nodeGroupName": group_name,
                "amiType": group.get("amiType", ""),
                "launchTemplate": {"id": template.get("id"), "version": template.get("version")},
                "remoteAccess": group.get("remoteAccess") or {},
                "scalingConfig": group.get("scalingConfig", {}),
                "taints": group.get("taints", []),
                "tags": group.get("tags", {}),
            },
        )
        if template.get("id"):
            self._launch_template(template["id"], str(template.get("version", "$Default")))

    def _launch_template(self, template_id: str, version: str) -> None:
        ec2 = self.client("ec2")
        with self._reading("launch template", template_id):
            [described] = ec2.describe_launch_templates(LaunchTemplateIds=[template_id])[
                "LaunchTemplates"
            ]
            [found] = ec2.describe_launch_template_versions(
                LaunchTemplateId=template_id, Versions=[version]
            )["LaunchTemplateVersions"]
            data = found["LaunchTemplateData"]
            metadata = data.get("MetadataOptions", {})
            self._add(
                LAUNCH_TEMPLATE,
                template_id,
                {
                    "metadataOptions": {
                        key: value
                        for key, value in {
                            "httpEndpoint": metadata.get("HttpEndpoint"),
                            "httpTokens": metadata.get("HttpTokens", "optional"),
                            "httpPutResponseHopLimit": metadata.get("HttpPutResponseHopLimit"),
                        }.items()
                        if value is not None
                    },
                    "blockDeviceMappings": [
                        {
                            "deviceName": device.get("DeviceName"),
                            "ebs": {
                                "encrypted": device.get("Ebs", {}).get("Encrypted", False),
                                "kmsKeyId": device.get("Ebs", {}).get("KmsKeyId"),
                            },
                        }
                        for device in data.get("BlockDeviceMappings", [])
                    ],
                    "networkInterfaces": [
                        {"associatePublicIpAddress": i.get("AssociatePublicIpAddress", False)}
                        for i in data.get("NetworkInterfaces", [])
                    ],
                    "userData": data.get("UserData", ""),
                    "tags": {t["Key"]: t["Value"] for t in described.get("Tags", [])},
                },
            )

    # IAM --------------------------------------------------------------------------------------

    def _roles(self) -> None:
        iam = self.client("iam")
        with self._reading("listing", ROLE):
            wanted = self._declared(ROLE)
            for page in iam.get_paginator("list_roles").paginate():
                for role in page["Roles"]:
                    name = role["RoleName"]
                    tags = {t["Key"]: t["Value"] for t in iam.list_role_tags(RoleName=name)["Tags"]}
                    if self._ours(tags) or name in wanted:
                        self._role(iam, role, tags)

    def _role(self, iam: Any, role: Mapping[str, Any], tags: Mapping[str, str]) -> None:
        name = role["RoleName"]
        trust = _document(role.get("AssumeRolePolicyDocument"))
        # ListRoles leaves the boundary out; GetRole has it.
        boundary = iam.get_role(RoleName=name)["Role"].get("PermissionsBoundary", {})
        inline: list[str] = []
        attached: list[str] = []
        with self._reading("role policies", name):
            for page in iam.get_paginator("list_role_policies").paginate(RoleName=name):
                for policy_name in page["PolicyNames"]:
                    document = iam.get_role_policy(RoleName=name, PolicyName=policy_name)
                    inline.append(policy_name)
                    self._add(
                        ROLE_POLICY,
                        f"{name}:{policy_name}",
                        {
                            "role": name,
                            "name": policy_name,
                            "policy": json.dumps(_document(document["PolicyDocument"])),
                        },
                    )
            for page in iam.get_paginator("list_attached_role_policies").paginate(RoleName=name):
                for policy in page["AttachedPolicies"]:
                    attached.append(policy["PolicyArn"])
                    self._attached_policy(iam, name, policy["PolicyArn"])
        self._add(
            ROLE,
            name,
            {
                "name": name,
                "assumeRolePolicy": json.dumps(trust),
                "managedPolicyArns": sorted(attached),
                "permissionsBoundary": boundary.get("PermissionsBoundaryArn"),
                "tags": dict(tags),
            },
        )
        self.state.roles[name] = RoleGrants(frozenset(inline), frozenset(attached), trust)

    def _attached_policy(self, iam: Any, role: str, arn: str) -> None:
        """A customer-managed policy's grants are judged like an inline policy's."""
        if ":aws:policy/" in arn:
            return
        policy = iam.get_policy(PolicyArn=arn)["Policy"]
        version = iam.get_policy_version(PolicyArn=arn, VersionId=policy["DefaultVersionId"])
        self._add(
            ROLE_POLICY,
            f"{role}:{policy['PolicyName']}",
            {
                "role": role,
                "name": policy["PolicyName"],
                "policy": json.dumps(_document(version["PolicyVersion"]["Document"])),
            },
        )

    # DynamoDB and ECR -------------------------------------------------------------------------

    def _tables(self) -> None:
        dynamodb = self.client("dynamodb")
        with self._reading("listing", TABLE):
            wanted = self._declared(TABLE)
            for page in dynamodb.get_paginator("list_tables").paginate():
                for name in page["TableNames"]:
                    table = dynamodb.describe_table(TableName=name)["Table"]
                    tags = {
                        t["Key"]: t["Value"]
                        for t in dynamodb.list_tags_of_resource(ResourceArn=table["TableArn"]).get(
                            "Tags", []
                        )
                    }
                    if self._ours(tags) or name in wanted:
                        self._table(dynamodb, table, tags)

    def _table(self, dynamodb: Any, table: Mapping[str, Any], tags: Mapping[str, str]) -> None:
        name = table["TableName"]
        sse = table.get("SSEDescription", {})
        props: dict[str, Any] = {
            "name": name,
            "serverSideEncryption": {
                "enabled": sse.get("Status") == "ENABLED",
                "kmsKeyArn": sse.get("KMSMasterKeyArn"),
            },
            "tags": dict(tags),
        }
        with self._reading("dynamodb-point-in-time-recovery", name):
            backups = dynamodb.describe_continuous_backups(TableName=name)
            recovery = backups["ContinuousBackupsDescription"].get(
                "PointInTimeRecoveryDescription", {}
            )
            props["pointInTimeRecovery"] = {
                "enabled": recovery.get("PointInTimeRecoveryStatus") == "ENABLED"
            }
        self._add(TABLE, name, props)

    def _repositories(self) -> None:
        ecr = self.client("ecr")
        with self._reading("listing", REPOSITORY):
            wanted = self._declared(REPOSITORY)
            found = False
            for page in ecr.get_paginator("describe_repositories").paginate():
                for repository in page["repositories"]:
                    tags = {
                        t["Key"]: t["Value"]
                        for t in ecr.list_tags_for_resource(
                            resourceArn=repository["repositoryArn"]
                        ).get("tags", [])
                    }
                    if self._ours(tags) or repository["repositoryName"] in wanted:
                        self._repository(repository, tags)
                        found = True
            if found:
                self._registry_scanning(ecr)

    def _repository(self, repository: Mapping[str, Any], tags: Mapping[str, str]) -> None:
        encryption = repository.get("encryptionConfiguration", {})
        self._add(
            REPOSITORY,
            repository["repositoryName"],
            {
                "name": repository["repositoryName"],
                "imageTagMutability": repository.get("imageTagMutability", "MUTABLE"),
                "imageScanningConfiguration": {
                    "scanOnPush": repository.get("imageScanningConfiguration", {}).get(
                        "scanOnPush", False
                    )
                },
                "encryptionConfigurations": [
                    {
                        "encryptionType": encryption.get("encryptionType"),
                        "kmsKey": encryption.get("kmsKey"),
                    }
                ],
                "tags": dict(tags),
            },
        )

    def _registry_scanning(self, ecr: Any) -> None:
        # Unreadable, it leaves every repository's scanning unknown, hence the wildcard.
        with self._reading("ecr-image-scanning", ANY_RESOURCE):
            config = ecr.get_registry_scanning_configuration()["scanningConfiguration"]
            rules = [
                {
                    "scanFrequency": rule.get("scanFrequency"),
                    "repositoryFilters": [
                        {"filter": f.get("filter"), "filterType": f.get("filterType")}
                        for f in rule.get("repositoryFilters", [])
                    ],
                }
                for rule in config.get("rules", [])
            ]
            self._add(
                REGISTRY_SCANNING, "registry", {"scanType": config.get("scanType"), "rules": rules}
            )


def drift_findings(state: LiveState, declared: Declared, stack: str, project: str) -> list[Finding]:
    """What only the declared stack can show: roles changed outside it, resources gone."""
    findings = []

    def finding(rule: str, kind: str, name: str, message: str) -> Finding:
        return Finding(
            rule=rule,
            level="mandatory",
            severity="high",
            urn=urn(stack, project, kind, name),
            message=message,
            remediation=AUDIT_ONLY_REMEDIATION[rule],
        )

    for name, want in sorted(declared.roles.items()):
        live = state.roles.get(name)
        if live is None:
            continue
        added = sorted(live.inline - want.inline) + sorted(live.attached - want.attached)
        if added:
            findings.append(
                finding(
                    ROLE_DRIFT,
                    ROLE,
                    name,
                    f"policies the stack does not declare: {', '.join(added)}",
                )
            )
        if _canonical(live.trust) != _canonical(want.trust):
            findings.append(
                finding(ROLE_DRIFT, ROLE, name, "trust policy differs from the stack's")
            )
    # A resource the audit could not list or read is unknown, not missing.
    unread = {u.resource for u in state.unchecked}

    def unreadable(kind: str, name: str) -> bool:
        cluster_listing = f"{name.split(':', 1)[0]}:*" if kind == NODE_GROUP else None
        return bool({kind, name, cluster_listing} & unread)

    for kind, names in sorted(declared.names.items()):
        for name in sorted(names - {n for k, n in state.found if k == kind}):
            if not unreadable(kind, name):
                findings.append(
                    finding(
                        MISSING, kind, name, "declared by the stack but not found in the account"
                    )
                )
    return findings


def _document(value: Any) -> Any:
    """A policy document as data, whether AWS returned it decoded or as JSON text."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _canonical(document: Any) -> str:
    """Key order and the order of lists do not change what a policy means."""

    def normal(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: normal(v) for k, v in sorted(value.items())}
        if isinstance(value, list):
            items = [normal(v) for v in value]
            return items[0] if len(items) == 1 else sorted(items, key=json.dumps)
        return value

    return json.dumps(normal(document), sort_keys=True)


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _optional(read: Callable[[], Any], absent: str, default: Any) -> Any:
    """A read whose `absent` error means the setting is not configured."""
    try:
        return read()
    except ClientError as error:
        if _code(error) != absent:
            raise
        return default


@dataclass(frozen=True)
class AuditResult:
    check: CheckResult
    unchecked: list[Unchecked]


def audit(
    client: ClientFactory,
    *,
    stack: str,
    project: str,
    pack: PolicyPackServer,
    policy_config: Mapping[str, Any],
    config_source: str,
    declared: Declared | None,
) -> AuditResult:
    """Read the stack's live resources and judge them by the pack's live rules at the
    environment's levels, plus the drift only the declared stack can show."""
    state = LiveReader(client, stack=stack, project=project, declared=declared).read()
    rules = pack.rules()
    # Levels and tunables as the environment sets them, for the rules that apply live.
    config = {
        **policy_config,
        **{rule.name: "disabled" for rule in rules if rule.name not in LIVE_RULES},
    }
    result = pack.check(state.resources, config, config_source)
    unknown = {(u.check, u.resource) for u in state.unchecked}
    findings = [
        f
        for f in result.findings
        if not {(f.rule, f.urn.rsplit("::", 1)[-1]), (f.rule, ANY_RESOURCE)} & unknown
    ]
    if declared is not None:
        findings += drift_findings(state, declared, stack, project)
    return AuditResult(
        check=CheckResult(
            findings=findings,
            rules=[rule for rule in result.rules if rule.name in LIVE_RULES],
            levels=result.levels,
            resources_checked=len(state.resources),
        ),
        unchecked=state.unchecked,
    )


def render_audit(result: AuditResult, fmt: str, title: str) -> str:
    if fmt == "json":
        document = json.loads(render(result.check, "json", title))
        document["unchecked"] = [asdict(u) for u in result.unchecked]
        return json.dumps(document, indent=2) + "\n"
    text = render(result.check, fmt, title)
    if not result.unchecked:
        return text
    bullet = "- " if fmt == "markdown" else "  "
    lines = ["", f"NOT CHECKED ({len(result.unchecked)}): the audit is incomplete"]
    lines += [f"{bullet}{u.check} on {u.resource}: {u.reason}" for u in result.unchecked]
    return text + "\n".join(lines) + "\n"
