"""One compliant and one violating resource for every resource rule of the pack.

The mutation test reuses the violating side to break a copy of the prod plan in exactly that way.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

from mlops_guardrails.vocabulary import CONTROL_PLANE_LOG_TYPES

KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/0b7c0a8e-0000-4000-8000-000000000000"
ROLE_ARN = "arn:aws:iam::123456789012:role/ml-training"
BOUNDARY_ARN = "arn:aws:iam::123456789012:policy/workload-boundary"
OIDC = "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/ABC"
ISSUER = "oidc.eks.us-east-1.amazonaws.com/id/ABC"
TAGS = {
    "mlops:environment": "prod",
    "mlops:stack": "prod",
    "mlops:project": "mlops-platform",
    "managed-by": "pulumi",
    "owner": "ml-platform",
    "cost-center": "ml",
}


@dataclass(frozen=True)
class RuleCase:
    rule: str
    resource_type: str
    good: dict[str, Any]
    bad: dict[str, Any]
    expect: str
    """A fragment of the violation message for the bad resource."""
    bad_is_unprotected: bool = False
    config: dict[str, Any] = field(default_factory=dict)
    """The rule's own config for the bad case, e.g. a stricter tunable."""
    good_type: str | None = None
    """For rules that forbid a whole type: the compliant alternative."""

    @property
    def id(self) -> str:
        return f"{self.rule}:{self.expect[:40]}"


def doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:alerts"
QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:artifact-events-models-queue"
RULE_ARN = "arn:aws:events:us-east-1:123456789012:rule/artifact-events-models-created"
PUBLISH_FROM_ALARMS = {
    "Sid": "Alarms",
    "Effect": "Allow",
    "Principal": {"Service": "cloudwatch.amazonaws.com"},
    "Action": "sns:Publish",
    "Resource": TOPIC_ARN,
    "Condition": {"StringEquals": {"aws:SourceAccount": "123456789012"}},
}
WORKSPACE = {
    "kmsKeyArn": KEY_ARN,
    "loggingConfiguration": {"logGroupArn": "arn:aws:logs:us-east-1:1:log-group:m:*"},
    "tags": TAGS,
}
TLS_DENY = {
    "Sid": "DenyInsecureTransport",
    "Effect": "Deny",
    "Principal": "*",
    "Action": "s3:*",
    "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"],
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}
KMS_RULE = {
    "applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": KEY_ARN},
    "bucketKeyEnabled": True,
}
CLUSTER = {
    "version": "1.35",
    "roleArn": ROLE_ARN,
    "vpcConfig": {"endpointPublicAccess": False, "endpointPrivateAccess": True, "subnetIds": ["s"]},
    "encryptionConfig": {"resources": ["secrets"], "provider": {"keyArn": KEY_ARN}},
    "enabledClusterLogTypes": list(CONTROL_PLANE_LOG_TYPES),
    "accessConfig": {"authenticationMode": "API", "bootstrapClusterCreatorAdminPermissions": False},
    "deletionProtection": True,
    "tags": TAGS,
}
NODE_GROUP = {
    "clusterName": "c",
    "nodeRoleArn": ROLE_ARN,
    "subnetIds": ["s"],
    "amiType": "AL2023_x86_64_NVIDIA",
    "instanceTypes": ["p5.48xlarge"],
    "launchTemplate": {"id": "lt-1", "version": "1"},
    "taints": [{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}],
    "scalingConfig": {"minSize": 0, "maxSize": 2, "desiredSize": 0},
    "tags": TAGS,
}
KARPENTER_POOL: dict[str, Any] = {
    "apiVersion": "karpenter.sh/v1",
    "kind": "NodePool",
    "spec": {
        "template": {
            "metadata": {"labels": {"mlops.platform/accelerator": "nvidia"}},
            "spec": {
                "taints": [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}]
            },
        },
        "limits": {"nvidia.com/gpu": "16"},
    },
}
LAUNCH_TEMPLATE = {
    "metadataOptions": {
        "httpEndpoint": "enabled",
        "httpTokens": "required",
        "httpPutResponseHopLimit": 1,
    },
    "blockDeviceMappings": [
        {
            "deviceName": "/dev/xvda",
            "ebs": {"encrypted": "true", "kmsKeyId": KEY_ARN, "volumeType": "gp3"},
        }
    ],
    "networkInterfaces": [{"associatePublicIpAddress": "false"}],
    "userData": base64.b64encode(b"#!/bin/bash\necho ready\n").decode(),
    "tags": TAGS,
}
POD_TRUST_UNPINNED = doc(
    {
        "Effect": "Allow",
        "Principal": {"Service": "pods.eks.amazonaws.com"},
        "Action": ["sts:AssumeRole", "sts:TagSession"],
        "Condition": {"StringEquals": {"aws:RequestTag/kubernetes-namespace": "training"}},
    }
)
POD_TRUST = doc(
    {
        "Effect": "Allow",
        "Principal": {"Service": "pods.eks.amazonaws.com"},
        "Action": ["sts:AssumeRole", "sts:TagSession"],
        "Condition": {
            "StringEquals": {
                "aws:RequestTag/kubernetes-namespace": "training",
                "aws:RequestTag/kubernetes-service-account": "trainer",
            }
        },
    }
)
IRSA_TRUST = {
    "Effect": "Allow",
    "Principal": {"Federated": OIDC},
    "Action": "sts:AssumeRoleWithWebIdentity",
    "Condition": {
        "StringEquals": {
            f"{ISSUER}:sub": "system:serviceaccount:training:trainer",
            f"{ISSUER}:aud": "sts.amazonaws.com",
        }
    },
}
DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "api"},
    "spec": {
        "template": {
            "spec": {
                "containers": [
                    {
                        "name": "api",
                        "image": "x",
                        "securityContext": {"allowPrivilegeEscalation": False},
                    }
                ]
            }
        }
    },
}
NODE_CLASS = {
    "apiVersion": "karpenter.k8s.aws/v1",
    "kind": "EC2NodeClass",
    "spec": {
        "metadataOptions": {"httpTokens": "required", "httpPutResponseHopLimit": 1},
        "blockDeviceMappings": [
            {
                "deviceName": "/dev/xvda",
                "ebs": {"encrypted": True, "kmsKeyID": KEY_ARN, "volumeSize": "200Gi"},
            }
        ],
    },
}


def with_(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**base, **changes}


RUNNER_ENVIRONMENT = {
    "type": "LINUX_CONTAINER",
    "computeType": "BUILD_GENERAL1_MEDIUM",
    "image": "aws/codebuild/amazonlinux-x86_64-standard:5.0",
    "privilegedMode": False,
}
RUNNER_PROJECT = {
    "serviceRole": ROLE_ARN,
    "artifacts": {"type": "NO_ARTIFACTS"},
    "environment": RUNNER_ENVIRONMENT,
    "source": {"type": "GITHUB", "location": "https://github.com/example-org/mlops-platform.git"},
    "logsConfig": {"cloudwatchLogs": {"status": "ENABLED", "groupName": "runner"}},
    "encryptionKey": KEY_ARN,
    "tags": TAGS,
}

CASES = [
    RuleCase(
        "s3-sse-kms-customer-key",
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        {"bucket": "b", "rules": [KMS_RULE]},
        {
            "bucket": "b",
            "rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}],
        },
        "default encryption is 'AES256', not SSE-KMS",
    ),
    RuleCase(
        "s3-replication-encrypted",
        "aws:s3/bucketReplicationConfig:BucketReplicationConfig",
        {
            "bucket": "b",
            "role": ROLE_ARN,
            "rules": [
                {
                    "id": "replicate-everything",
                    "status": "Enabled",
                    "sourceSelectionCriteria": {"sseKmsEncryptedObjects": {"status": "Enabled"}},
                    "destination": {
                        "bucket": "arn:aws:s3:::replica",
                        "encryptionConfiguration": {"replicaKmsKeyId": KEY_ARN},
                    },
                }
            ],
        },
        {
            "bucket": "b",
            "role": ROLE_ARN,
            "rules": [
                {
                    "id": "replicate-everything",
                    "status": "Enabled",
                    "destination": {"bucket": "arn:aws:s3:::replica"},
                }
            ],
        },
        "leaves SSE-KMS encrypted objects unreplicated",
    ),
    RuleCase(
        "s3-public-access-block",
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        {
            "bucket": "b",
            "blockPublicAcls": True,
            "blockPublicPolicy": True,
            "ignorePublicAcls": True,
            "restrictPublicBuckets": True,
        },
        {
            "bucket": "b",
            "blockPublicAcls": True,
            "blockPublicPolicy": False,
            "ignorePublicAcls": True,
            "restrictPublicBuckets": False,
        },
        "flags not set: blockPublicPolicy, restrictPublicBuckets",
    ),
    RuleCase(
        "s3-versioning-enabled",
        "aws:s3/bucketVersioning:BucketVersioning",
        {"bucket": "b", "versioningConfiguration": {"status": "Enabled"}},
        {"bucket": "b", "versioningConfiguration": {"status": "Suspended"}},
        "versioning status is 'Suspended'",
    ),
    RuleCase(
        "s3-acls-disabled",
        "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
        {"bucket": "b", "rule": {"objectOwnership": "BucketOwnerEnforced"}},
        {"bucket": "b", "rule": {"objectOwnership": "ObjectWriter"}},
        "object ownership is 'ObjectWriter'",
    ),
    RuleCase(
        "s3-tls-only",
        "aws:s3/bucketPolicy:BucketPolicy",
        {"bucket": "b", "policy": doc(TLS_DENY)},
        {
            "bucket": "b",
            "policy": doc({**TLS_DENY, "Condition": {"Bool": {"aws:SecureTransport": "true"}}}),
        },
        "does not deny requests with aws:SecureTransport=false",
    ),
    RuleCase(
        "s3-not-public",
        "aws:s3/bucketPolicy:BucketPolicy",
        {"bucket": "b", "policy": doc(TLS_DENY)},
        {
            "bucket": "b",
            "policy": doc(
                TLS_DENY,
                {
                    "Sid": "Share",
                    "Effect": "Allow",
                    "Principal": {"AWS": "*"},
                    "Action": "s3:GetObject",
                    "Resource": "arn:aws:s3:::b/*",
                },
            ),
        },
        "statement 'Share' allows anyone, unconditionally",
    ),
    RuleCase(
        "s3-lifecycle-hygiene",
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
        {
            "bucket": "b",
            "rules": [
                {
                    "id": "a",
                    "status": "Enabled",
                    "noncurrentVersionExpiration": {"noncurrentDays": 30},
                },
                {
                    "id": "b",
                    "status": "Enabled",
                    "abortIncompleteMultipartUpload": {"daysAfterInitiation": 7},
                },
            ],
        },
        {
            "bucket": "b",
            "rules": [
                {
                    "id": "a",
                    "status": "Disabled",
                    "noncurrentVersionExpiration": {"noncurrentDays": 30},
                },
                {
                    "id": "b",
                    "status": "Enabled",
                    "abortIncompleteMultipartUpload": {"daysAfterInitiation": 7},
                },
            ],
        },
        "no enabled rule expires noncurrent versions",
    ),
    RuleCase(
        "kms-key-rotation",
        "aws:kms/key:Key",
        {"enableKeyRotation": True, "deletionWindowInDays": 30, "tags": TAGS},
        {"enableKeyRotation": False, "deletionWindowInDays": 30, "tags": TAGS},
        "automatic key rotation is off",
    ),
    RuleCase(
        "kms-key-deletion-window",
        "aws:kms/key:Key",
        {"enableKeyRotation": True, "deletionWindowInDays": 30, "tags": TAGS},
        {"enableKeyRotation": True, "deletionWindowInDays": 7, "tags": TAGS},
        "deletion window is 7 days; at least 30 required here",
        config={"minimumDays": 30},
    ),
    RuleCase(
        "kms-key-policy-scoped",
        "aws:kms/key:Key",
        {
            "enableKeyRotation": True,
            "policy": doc(
                {
                    "Sid": "Root",
                    "Effect": "Allow",
                    "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                    "Action": "kms:*",
                    "Resource": "*",
                }
            ),
        },
        {
            "enableKeyRotation": True,
            "policy": doc(
                {
                    "Sid": "Open",
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "kms:Decrypt",
                    "Resource": "*",
                }
            ),
        },
        "statement 'Open' lets anyone use the key",
    ),
    RuleCase(
        "eks-secrets-encryption",
        "aws:eks/cluster:Cluster",
        CLUSTER,
        with_(CLUSTER, encryptionConfig={"resources": []}),
        "secrets are not envelope-encrypted",
    ),
    RuleCase(
        "eks-endpoint-private",
        "aws:eks/cluster:Cluster",
        CLUSTER,
        with_(
            CLUSTER,
            vpcConfig={
                "endpointPublicAccess": True,
                "endpointPrivateAccess": True,
                "publicAccessCidrs": ["203.0.113.0/24"],
            },
        ),
        "reachable from the internet",
    ),
    RuleCase(
        "eks-public-endpoint-restricted",
        "aws:eks/cluster:Cluster",
        with_(
            CLUSTER,
            vpcConfig={
                "endpointPublicAccess": True,
                "endpointPrivateAccess": True,
                "publicAccessCidrs": ["203.0.113.0/24"],
            },
        ),
        with_(CLUSTER, vpcConfig={"endpointPublicAccess": True, "endpointPrivateAccess": True}),
        "open to 0.0.0.0/0",
    ),
    RuleCase(
        "eks-control-plane-logging",
        "aws:eks/cluster:Cluster",
        CLUSTER,
        with_(CLUSTER, enabledClusterLogTypes=["api", "audit"]),
        "not enabled: authenticator, controllerManager, scheduler",
    ),
    RuleCase(
        "eks-api-authentication",
        "aws:eks/cluster:Cluster",
        CLUSTER,
        with_(CLUSTER, accessConfig={"authenticationMode": "API_AND_CONFIG_MAP"}),
        "the cluster creator gets implicit cluster-admin",
    ),
    RuleCase(
        "eks-version-allowed",
        "aws:eks/cluster:Cluster",
        CLUSTER,
        with_(CLUSTER, version="1.29"),
        "version '1.29' is not one of",
    ),
    RuleCase(
        "eks-no-system-masters",
        "aws:eks/accessEntry:AccessEntry",
        {
            "clusterName": "c",
            "principalArn": ROLE_ARN,
            "kubernetesGroups": ["ml-readers"],
            "tags": TAGS,
        },
        {
            "clusterName": "c",
            "principalArn": ROLE_ARN,
            "kubernetesGroups": ["system:masters"],
            "tags": TAGS,
        },
        "system:masters",
    ),
    RuleCase(
        "eks-cluster-admin-scoped",
        "aws:eks/accessPolicyAssociation:AccessPolicyAssociation",
        {
            "clusterName": "c",
            "principalArn": ROLE_ARN,
            "policyArn": "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy",
            "accessScope": {"type": "namespace", "namespaces": ["ml"]},
        },
        {
            "clusterName": "c",
            "principalArn": ROLE_ARN,
            "policyArn": "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy",
            "accessScope": {"type": "cluster"},
        },
        "gets cluster-wide admin but is not an allowed admin principal",
    ),
    RuleCase(
        "eks-nodegroup-no-ssh",
        "aws:eks/nodeGroup:NodeGroup",
        NODE_GROUP,
        with_(NODE_GROUP, remoteAccess={"ec2SshKey": "ops"}),
        "SSH remote access is configured",
    ),
    RuleCase(
        "eks-nodegroup-launch-template",
        "aws:eks/nodeGroup:NodeGroup",
        NODE_GROUP,
        {key: value for key, value in NODE_GROUP.items() if key != "launchTemplate"},
        "no launch template",
    ),
    RuleCase(
        "eks-accelerator-nodes-tainted",
        "aws:eks/nodeGroup:NodeGroup",
        NODE_GROUP,
        with_(NODE_GROUP, amiType="AL2023_x86_64_NEURON"),
        "lack the aws.amazon.com/neuron NoSchedule taint",
    ),
    RuleCase(
        "ec2-imdsv2-required",
        "aws:ec2/launchTemplate:LaunchTemplate",
        LAUNCH_TEMPLATE,
        with_(
            LAUNCH_TEMPLATE,
            metadataOptions={"httpTokens": "optional", "httpPutResponseHopLimit": 2},
        ),
        "IMDSv1 is allowed",
    ),
    RuleCase(
        "ec2-ebs-encrypted",
        "aws:ec2/launchTemplate:LaunchTemplate",
        LAUNCH_TEMPLATE,
        with_(
            LAUNCH_TEMPLATE,
            blockDeviceMappings=[{"deviceName": "/dev/xvda", "ebs": {"encrypted": "false"}}],
        ),
        "EBS volume /dev/xvda is not encrypted",
    ),
    RuleCase(
        "ec2-no-public-ip",
        "aws:ec2/launchTemplate:LaunchTemplate",
        LAUNCH_TEMPLATE,
        with_(LAUNCH_TEMPLATE, networkInterfaces=[{"associatePublicIpAddress": "true"}]),
        "gets a public IP address",
    ),
    RuleCase(
        "ec2-no-secrets-in-user-data",
        "aws:ec2/launchTemplate:LaunchTemplate",
        LAUNCH_TEMPLATE,
        with_(
            LAUNCH_TEMPLATE,
            userData=base64.b64encode(b"export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\n").decode(),
        ),
        "looks like a credential",
    ),
    RuleCase(
        "iam-no-admin",
        "aws:iam/policy:Policy",
        {
            "policy": doc(
                {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}
            ),
            "tags": TAGS,
        },
        {"policy": doc({"Effect": "Allow", "Action": "*", "Resource": "*"}), "tags": TAGS},
        "allows every action on every resource",
    ),
    RuleCase(
        "iam-no-privilege-escalation",
        "aws:iam/rolePolicy:RolePolicy",
        {
            "role": "r",
            "policy": doc({"Effect": "Allow", "Action": "iam:PassRole", "Resource": ROLE_ARN}),
        },
        {
            "role": "r",
            "policy": doc(
                {"Effect": "Allow", "Action": ["iam:Pass*", "s3:GetObject"], "Resource": "*"}
            ),
        },
        "allows iam:PassRole on every resource",
    ),
    RuleCase(
        "iam-trust-scoped",
        "aws:iam/role:Role",
        {"assumeRolePolicy": doc(IRSA_TRUST), "permissionsBoundary": ROLE_ARN, "tags": TAGS},
        {
            "assumeRolePolicy": doc(
                {
                    **IRSA_TRUST,
                    "Condition": {
                        "StringLike": {f"{ISSUER}:sub": "system:serviceaccount:training:*"}
                    },
                }
            ),
            "permissionsBoundary": ROLE_ARN,
            "tags": TAGS,
        },
        "IRSA trust must name exactly one service account",
    ),
    RuleCase(
        "iam-workload-permissions-boundary",
        "aws:iam/role:Role",
        {"assumeRolePolicy": POD_TRUST, "permissionsBoundary": ROLE_ARN, "tags": TAGS},
        {"assumeRolePolicy": POD_TRUST, "tags": TAGS},
        "a role assumed by pods has no permissions boundary",
    ),
    RuleCase(
        "iam-no-long-lived-credentials",
        "aws:iam/accessKey:AccessKey",
        {"assumeRolePolicy": POD_TRUST, "permissionsBoundary": ROLE_ARN, "tags": TAGS},
        {"user": "ci"},
        "AccessKey creates long-lived credentials",
        good_type="aws:iam/role:Role",
    ),
    RuleCase(
        "iam-oidc-provider-audience",
        "aws:iam/openIdConnectProvider:OpenIdConnectProvider",
        {"url": f"https://{ISSUER}", "clientIdLists": ["sts.amazonaws.com"], "tags": TAGS},
        {
            "url": f"https://{ISSUER}",
            "clientIdLists": ["sts.amazonaws.com", "my-app"],
            "tags": TAGS,
        },
        "only sts.amazonaws.com may use",
    ),
    RuleCase(
        "logs-encrypted-and-retained",
        "aws:cloudwatch/logGroup:LogGroup",
        {"kmsKeyId": KEY_ARN, "retentionInDays": 365, "tags": TAGS},
        {"retentionInDays": 0, "tags": TAGS},
        "keeps events forever",
    ),
    RuleCase(
        "ecr-immutable-tags",
        "aws:ecr/repository:Repository",
        {
            "imageTagMutability": "IMMUTABLE",
            "encryptionConfigurations": [{"encryptionType": "KMS", "kmsKey": KEY_ARN}],
            "tags": TAGS,
        },
        {"encryptionConfigurations": [{"encryptionType": "KMS", "kmsKey": KEY_ARN}], "tags": TAGS},
        "image tags are MUTABLE",
    ),
    RuleCase(
        "ecr-kms-encryption",
        "aws:ecr/repository:Repository",
        {
            "imageTagMutability": "IMMUTABLE",
            "encryptionConfigurations": [{"encryptionType": "KMS", "kmsKey": KEY_ARN}],
            "tags": TAGS,
        },
        {
            "imageTagMutability": "IMMUTABLE",
            "encryptionConfigurations": [{"encryptionType": "AES256"}],
            "tags": TAGS,
        },
        "not encrypted with a customer-managed KMS key",
    ),
    RuleCase(
        "ecr-not-public",
        "aws:ecr/repositoryPolicy:RepositoryPolicy",
        {
            "repository": "models",
            "policy": doc(
                {
                    "Sid": "Pull",
                    "Effect": "Allow",
                    "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                    "Action": "ecr:BatchGetImage",
                }
            ),
        },
        {
            "repository": "models",
            "policy": doc(
                {"Sid": "Pull", "Effect": "Allow", "Principal": "*", "Action": "ecr:BatchGetImage"}
            ),
        },
        "statement 'Pull' lets anyone pull or push",
    ),
    RuleCase(
        "dynamodb-cmk-encryption",
        "aws:dynamodb/table:Table",
        {
            "serverSideEncryption": {"enabled": True, "kmsKeyArn": KEY_ARN},
            "pointInTimeRecovery": {"enabled": True},
            "deletionProtectionEnabled": True,
            "tags": TAGS,
        },
        {"pointInTimeRecovery": {"enabled": True}, "deletionProtectionEnabled": True, "tags": TAGS},
        "AWS-owned key",
    ),
    RuleCase(
        "dynamodb-point-in-time-recovery",
        "aws:dynamodb/table:Table",
        {
            "serverSideEncryption": {"enabled": True, "kmsKeyArn": KEY_ARN},
            "pointInTimeRecovery": {"enabled": True},
            "deletionProtectionEnabled": True,
            "tags": TAGS,
        },
        {
            "serverSideEncryption": {"enabled": True, "kmsKeyArn": KEY_ARN},
            "deletionProtectionEnabled": True,
            "tags": TAGS,
        },
        "point-in-time recovery is off",
    ),
    RuleCase(
        "sagemaker-feature-group-encrypted",
        "aws:sagemaker/featureGroup:FeatureGroup",
        {
            "onlineStoreConfig": {
                "enableOnlineStore": True,
                "securityConfig": {"kmsKeyId": KEY_ARN},
            },
            "offlineStoreConfig": {"s3StorageConfig": {"s3Uri": "s3://b/p", "kmsKeyId": KEY_ARN}},
            "tags": TAGS,
        },
        {
            "onlineStoreConfig": {"enableOnlineStore": True},
            "offlineStoreConfig": {"s3StorageConfig": {"s3Uri": "s3://b/p"}},
            "tags": TAGS,
        },
        "the online store is not encrypted",
    ),
    RuleCase(
        "mlflow-tracking-server-maintained",
        "aws:sagemaker/mlflowTrackingServer:MlflowTrackingServer",
        {
            "trackingServerName": "ml-prod-mlflow",
            "artifactStoreUri": "s3://ml-experiments/mlflow/",
            "roleArn": ROLE_ARN,
            "weeklyMaintenanceWindowStart": "Sun:03:00",
            "mlflowVersion": "3.0",
            "tags": TAGS,
        },
        {
            "trackingServerName": "ml-prod-mlflow",
            "artifactStoreUri": "s3://ml-experiments/mlflow/",
            "roleArn": ROLE_ARN,
            "mlflowVersion": "3.0.1",
            "tags": TAGS,
        },
        "no weekly maintenance window",
    ),
    RuleCase(
        "eventbridge-target-dead-letter",
        "aws:cloudwatch/eventTarget:EventTarget",
        {
            "rule": "artifact-events-models-created",
            "arn": QUEUE_ARN,
            "deadLetterConfig": {"arn": f"{QUEUE_ARN}-dead-letter"},
        },
        {"rule": "artifact-events-models-created", "arn": QUEUE_ARN},
        "no dead-letter queue",
    ),
    RuleCase(
        "sqs-queue-not-public",
        "aws:sqs/queuePolicy:QueuePolicy",
        {
            "queueUrl": "https://sqs.us-east-1.amazonaws.com/123456789012/q",
            "policy": doc(
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "events.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": QUEUE_ARN,
                    "Condition": {"ArnEquals": {"aws:SourceArn": RULE_ARN}},
                }
            ),
        },
        {
            "queueUrl": "https://sqs.us-east-1.amazonaws.com/123456789012/q",
            "policy": doc(
                {
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "sqs:SendMessage",
                    "Resource": QUEUE_ARN,
                }
            ),
        },
        "lets anyone use the queue",
    ),
    RuleCase(
        "k8s-pod-security-baseline",
        "kubernetes:apps/v1:Deployment",
        DEPLOYMENT,
        with_(
            DEPLOYMENT,
            spec={
                "template": {
                    "spec": {
                        "hostNetwork": True,
                        "containers": [{"name": "api", "securityContext": {"privileged": True}}],
                    }
                }
            },
        ),
        "container 'api' is privileged",
    ),
    RuleCase(
        "karpenter-node-class-hardened",
        "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass",
        NODE_CLASS,
        with_(NODE_CLASS, spec={"metadataOptions": {"httpTokens": "optional"}}),
        "the node class allows IMDSv1",
    ),
    RuleCase(
        "helm-chart-pinned",
        "kubernetes:helm.sh/v3:Release",
        {"chart": "nvidia-device-plugin", "version": "0.17.1"},
        {"chart": "nvidia-device-plugin", "version": ">=0.17"},
        "is not pinned to an exact version",
    ),
    RuleCase(
        "required-tags",
        "aws:kms/key:Key",
        {"enableKeyRotation": True, "tags": TAGS},
        {"enableKeyRotation": True, "tags": {**TAGS, "mlops:stack": "dev", "owner": ""}},
        "tag mlops:stack is 'dev', expected 'prod'",
    ),
    RuleCase(
        "stateful-resources-protected",
        "aws:s3/bucket:Bucket",
        {"forceDestroy": False, "tags": TAGS},
        {"forceDestroy": False, "tags": TAGS},
        "stateful resource is not protected",
        bad_is_unprotected=True,
    ),
    RuleCase(
        "aws-deletion-protection",
        "aws:s3/bucket:Bucket",
        {"forceDestroy": False, "tags": TAGS},
        {"forceDestroy": True, "tags": TAGS},
        "force_destroy deletes every object",
    ),
    RuleCase(
        "ec2-no-open-ingress",
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
        {
            "securityGroupId": "sg-1",
            "cidrIpv4": "10.40.0.0/16",
            "ipProtocol": "tcp",
            "fromPort": 443,
            "toPort": 443,
        },
        {
            "securityGroupId": "sg-1",
            "cidrIpv4": "0.0.0.0/0",
            "ipProtocol": "tcp",
            "fromPort": 22,
            "toPort": 22,
        },
        "ingress on ports 22-22 is open to 0.0.0.0/0",
    ),
    RuleCase(
        "ec2-subnet-no-auto-public-ip",
        "aws:ec2/subnet:Subnet",
        {"vpcId": "vpc-1", "cidrBlock": "10.40.0.0/18", "mapPublicIpOnLaunch": False, "tags": TAGS},
        {"vpcId": "vpc-1", "cidrBlock": "10.40.0.0/18", "mapPublicIpOnLaunch": True, "tags": TAGS},
        "get a public IP address automatically",
    ),
    RuleCase(
        "eks-addon-version-pinned",
        "aws:eks/addon:Addon",
        {
            "clusterName": "c",
            "addonName": "coredns",
            "addonVersion": "v1.12.1-eksbuild.2",
            "tags": TAGS,
        },
        {"clusterName": "c", "addonName": "coredns", "tags": TAGS},
        "add-on 'coredns' has no version",
    ),
    RuleCase(
        "k8s-storage-class-encrypted",
        "kubernetes:storage.k8s.io/v1:StorageClass",
        {
            "provisioner": "ebs.csi.aws.com",
            "parameters": {"type": "gp3", "encrypted": "true", "kmsKeyId": KEY_ARN},
        },
        {"provisioner": "ebs.csi.aws.com", "parameters": {"type": "gp3", "encrypted": "true"}},
        "use the AWS-managed key",
    ),
    RuleCase(
        "k8s-namespace-pod-security",
        "kubernetes:core/v1:Namespace",
        {"metadata": {"name": "ml", "labels": {"pod-security.kubernetes.io/enforce": "baseline"}}},
        {
            "metadata": {
                "name": "ml",
                "labels": {"pod-security.kubernetes.io/enforce": "privileged"},
            }
        },
        "enforces 'privileged', not baseline or restricted",
    ),
    RuleCase(
        "iam-trust-scoped",
        "aws:iam/role:Role",
        {"assumeRolePolicy": POD_TRUST, "permissionsBoundary": ROLE_ARN, "tags": TAGS},
        {"assumeRolePolicy": POD_TRUST_UNPINNED, "permissionsBoundary": ROLE_ARN, "tags": TAGS},
        "Pod Identity trust does not pin kubernetes-service-account to one value",
    ),
    RuleCase(
        "gpu-capacity-ceiling",
        "aws:eks/nodeGroup:NodeGroup",
        with_(
            NODE_GROUP,
            tags={**TAGS, "mlops:accelerator-ceiling": "16", "mlops:accelerators-per-node": "8"},
        ),
        with_(
            NODE_GROUP,
            scalingConfig={"minSize": 0, "maxSize": 4, "desiredSize": 0},
            tags={**TAGS, "mlops:accelerator-ceiling": "16", "mlops:accelerators-per-node": "8"},
        ),
        "maxSize 4 x 8 accelerators = 32, above the pool's ceiling 16",
    ),
    RuleCase(
        "gpu-capacity-ceiling",
        "kubernetes:karpenter.sh/v1:NodePool",
        KARPENTER_POOL,
        with_(KARPENTER_POOL, spec={**KARPENTER_POOL["spec"], "limits": {}}),
        "no nvidia.com/gpu limit: the pool can grow without bound",
    ),
    RuleCase(
        "eks-accelerator-nodes-tainted",
        "kubernetes:karpenter.sh/v1:NodePool",
        KARPENTER_POOL,
        with_(
            KARPENTER_POOL,
            spec={
                **KARPENTER_POOL["spec"],
                "template": {**KARPENTER_POOL["spec"]["template"], "spec": {"taints": []}},
            },
        ),
        "nvidia nodes lack the nvidia.com/gpu NoSchedule taint",
    ),
    RuleCase(
        "sqs-encrypted",
        "aws:sqs/queue:Queue",
        {"kmsMasterKeyId": KEY_ARN, "tags": TAGS},
        {"sqsManagedSseEnabled": False, "tags": TAGS},
        "messages are stored unencrypted",
    ),
    RuleCase(
        "iam-no-service-wildcards",
        "aws:iam/rolePolicy:RolePolicy",
        {
            "role": "r",
            "policy": doc(
                {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::b/*"}
            ),
        },
        {
            "role": "r",
            "policy": doc({"Effect": "Allow", "Action": ["s3:*"], "Resource": "arn:aws:s3:::b/*"}),
        },
        "allows every action of s3:*",
    ),
    RuleCase(
        "sns-topic-encrypted",
        "aws:sns/topic:Topic",
        {"kmsMasterKeyId": KEY_ARN, "tags": TAGS},
        {"kmsMasterKeyId": "alias/aws/sns", "tags": TAGS},
        "the AWS-managed SNS key cannot let CloudWatch alarms or Budgets publish",
    ),
    RuleCase(
        "sns-topic-encrypted",
        "aws:sns/topic:Topic",
        {"kmsMasterKeyId": KEY_ARN, "tags": TAGS},
        {"tags": TAGS},
        "the topic is not encrypted at rest",
    ),
    RuleCase(
        "sns-topic-policy-scoped",
        "aws:sns/topicPolicy:TopicPolicy",
        {"arn": TOPIC_ARN, "policy": doc(PUBLISH_FROM_ALARMS)},
        {
            "arn": TOPIC_ARN,
            "policy": doc({k: v for k, v in PUBLISH_FROM_ALARMS.items() if k != "Condition"}),
        },
        "statement 'Alarms' lets an AWS service publish for any account (confused deputy)",
    ),
    RuleCase(
        "sns-topic-policy-scoped",
        "aws:sns/topicPolicy:TopicPolicy",
        {"arn": TOPIC_ARN, "policy": doc(PUBLISH_FROM_ALARMS)},
        {
            "arn": TOPIC_ARN,
            "policy": doc({"Sid": "Alarms", "Effect": "Allow", "Principal": "*", "Action": "*"}),
        },
        "statement 'Alarms' lets anyone use the topic",
    ),
    RuleCase(
        "sns-subscription-encrypted-transport",
        "aws:sns/topicSubscription:TopicSubscription",
        {"topic": TOPIC_ARN, "protocol": "https", "endpoint": "https://hooks.example.com/a"},
        {"topic": TOPIC_ARN, "protocol": "http", "endpoint": "http://hooks.example.com/a"},
        "an http subscription delivers alerts unencrypted",
    ),
    RuleCase(
        "amp-workspace-encrypted-and-logged",
        "aws:amp/workspace:Workspace",
        WORKSPACE,
        with_(WORKSPACE, loggingConfiguration={}),
        "rule and alert manager errors are not logged",
    ),
    RuleCase(
        "amp-workspace-encrypted-and-logged",
        "aws:amp/workspace:Workspace",
        WORKSPACE,
        {k: v for k, v in WORKSPACE.items() if k != "kmsKeyArn"},
        "encrypted with an AWS-owned key",
    ),
    RuleCase(
        "codebuild-project-hardened",
        "aws:codebuild/project:Project",
        RUNNER_PROJECT,
        {**RUNNER_PROJECT, "environment": {**RUNNER_ENVIRONMENT, "privilegedMode": True}},
        "builds run privileged",
    ),
    RuleCase(
        "codebuild-project-hardened",
        "aws:codebuild/project:Project",
        RUNNER_PROJECT,
        {
            **RUNNER_PROJECT,
            "logsConfig": {"cloudwatchLogs": {"status": "DISABLED"}},
            "encryptionKey": "arn:aws:kms:us-east-1:123456789012:alias/aws/s3",
        },
        "build logs are off",
    ),
    RuleCase(
        "codebuild-no-plaintext-credentials",
        "aws:codebuild/project:Project",
        RUNNER_PROJECT,
        {
            **RUNNER_PROJECT,
            "environment": {
                **RUNNER_ENVIRONMENT,
                "environmentVariables": [
                    {"name": "PULUMI_ACCESS_TOKEN", "value": "pul-0000", "type": "PLAINTEXT"}
                ],
            },
        },
        "PULUMI_ACCESS_TOKEN holds a credential in plain text",
    ),
    RuleCase(
        "codebuild-no-plaintext-credentials",
        "aws:codebuild/project:Project",
        RUNNER_PROJECT,
        {
            **RUNNER_PROJECT,
            "source": {"type": "GITHUB", "location": "https://bot:ghp_0000@github.com/o/r.git"},
        },
        "a source URL carries credentials",
    ),
    RuleCase(
        "codebuild-webhook-trusted-events",
        "aws:codebuild/webhook:Webhook",
        {
            "projectName": "runner",
            "buildType": "BUILD",
            "filterGroups": [{"filters": [{"type": "EVENT", "pattern": "WORKFLOW_JOB_QUEUED"}]}],
        },
        {
            "projectName": "runner",
            "buildType": "BUILD",
            "filterGroups": [
                {"filters": [{"type": "EVENT", "pattern": "WORKFLOW_JOB_QUEUED"}]},
                {"filters": [{"type": "EVENT", "pattern": "PUSH, PULL_REQUEST_CREATED"}]},
            ],
        },
        "pull requests start builds",
    ),
    RuleCase(
        "iam-role-creation-bounded",
        "aws:iam/rolePolicy:RolePolicy",
        {
            "role": "team-deployer",
            "policy": doc(
                {
                    "Effect": "Allow",
                    "Action": ["iam:CreateRole", "iam:PutRolePolicy"],
                    "Resource": "arn:aws:iam::123456789012:role/teams/serving/*",
                    "Condition": {"ArnEquals": {"iam:PermissionsBoundary": BOUNDARY_ARN}},
                }
            ),
        },
        {
            "role": "team-deployer",
            "policy": doc(
                {
                    "Effect": "Allow",
                    "Action": ["iam:CreateRole", "iam:PutRolePolicy"],
                    "Resource": "arn:aws:iam::123456789012:role/teams/serving/*",
                }
            ),
        },
        "allows iam:CreateRole, iam:PutRolePolicy without an iam:PermissionsBoundary condition",
    ),
    RuleCase(
        "iam-role-creation-bounded",
        "aws:iam/rolePolicy:RolePolicy",
        {
            "role": "team-deployer",
            "policy": doc(
                {
                    "Effect": "Deny",
                    "Action": "iam:DeleteRolePermissionsBoundary",
                    "Resource": "arn:aws:iam::123456789012:role/teams/serving/*",
                }
            ),
        },
        {
            "role": "team-deployer",
            "policy": doc(
                {
                    "Effect": "Allow",
                    "Action": "iam:Delete*",
                    "Resource": "arn:aws:iam::123456789012:role/teams/serving/*",
                }
            ),
        },
        "a role could shed its boundary",
    ),
    RuleCase(
        "k8s-rbac-keeps-isolation",
        "kubernetes:rbac.authorization.k8s.io/v1:Role",
        {
            "metadata": {"name": "deployer", "namespace": "serving"},
            "rules": [
                {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["*"]},
                {
                    "apiGroups": ["networking.k8s.io"],
                    "resources": ["networkpolicies"],
                    "verbs": ["get", "list"],
                },
            ],
        },
        {
            "metadata": {"name": "deployer", "namespace": "serving"},
            "rules": [
                {
                    "apiGroups": ["networking.k8s.io"],
                    "resources": ["networkpolicies"],
                    "verbs": ["get", "delete"],
                },
            ],
        },
        "may delete networkpolicies",
    ),
    RuleCase(
        "k8s-rbac-keeps-isolation",
        "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole",
        {
            "metadata": {"name": "reader"},
            "rules": [{"apiGroups": [""], "resources": ["*"], "verbs": ["get", "list", "watch"]}],
        },
        {
            "metadata": {"name": "binder"},
            "rules": [
                {
                    "apiGroups": ["rbac.authorization.k8s.io"],
                    "resources": ["clusterroles"],
                    "verbs": ["bind"],
                }
            ],
        },
        "grants bind on clusterroles",
    ),
    RuleCase(
        "alb-ingress-hardened",
        "kubernetes:networking.k8s.io/v1:Ingress",
        {
            "metadata": {
                "name": "ranker",
                "namespace": "serving",
                "annotations": {
                    "alb.ingress.kubernetes.io/scheme": "internet-facing",
                    "alb.ingress.kubernetes.io/listen-ports": '[{"HTTPS": 443}]',
                    "alb.ingress.kubernetes.io/ssl-policy": (
                        "ELBSecurityPolicy-TLS13-1-2-Res-2021-06"
                    ),
                    "alb.ingress.kubernetes.io/load-balancer-attributes": (
                        "routing.http.drop_invalid_header_fields.enabled=true"
                    ),
                },
            },
            "spec": {"ingressClassName": "alb"},
        },
        {
            "metadata": {
                "name": "ranker",
                "namespace": "serving",
                "annotations": {
                    "alb.ingress.kubernetes.io/scheme": "internet-facing",
                    "alb.ingress.kubernetes.io/listen-ports": '[{"HTTP": 80}, {"HTTPS": 443}]',
                    "alb.ingress.kubernetes.io/load-balancer-attributes": (
                        "routing.http.drop_invalid_header_fields.enabled=true"
                    ),
                },
            },
            "spec": {"ingressClassName": "alb"},
        },
        "not HTTPS only",
    ),
    RuleCase(
        "alb-ingress-hardened",
        "kubernetes:networking.k8s.io/v1:Ingress",
        {
            "metadata": {
                "name": "ranker",
                "namespace": "serving",
                "annotations": {
                    "alb.ingress.kubernetes.io/scheme": "internal",
                    "alb.ingress.kubernetes.io/load-balancer-attributes": (
                        "routing.http.drop_invalid_header_fields.enabled=true"
                    ),
                },
            },
            "spec": {"ingressClassName": "alb"},
        },
        {
            "metadata": {
                "name": "ranker",
                "namespace": "serving",
                "annotations": {
                    "alb.ingress.kubernetes.io/scheme": "internal",
                    "alb.ingress.kubernetes.io/group.name": "shared",
                },
            },
            "spec": {"ingressClassName": "alb"},
        },
        "keeps HTTP headers that are not valid",
    ),
    RuleCase(
        "rollout-canary-analysed",
        "kubernetes:argoproj.io/v1alpha1:Rollout",
        {
            "metadata": {"name": "ranker", "namespace": "serving"},
            "spec": {
                "strategy": {
                    "canary": {
                        "trafficRouting": {"alb": {"ingress": "ranker", "servicePort": 8080}},
                        "analysis": {"templates": [{"templateName": "ranker"}]},
                        "steps": [{"setWeight": 10}, {"pause": {"duration": "10m"}}],
                    }
                }
            },
        },
        {
            "metadata": {"name": "ranker", "namespace": "serving"},
            "spec": {"strategy": {"canary": {"steps": [{"setWeight": 10}, {"pause": {}}]}}},
        },
        "nothing analyses the canary",
    ),
    RuleCase(
        "keda-scaling-bounded",
        "kubernetes:keda.sh/v1alpha1:ScaledObject",
        {
            "metadata": {"name": "ranker", "namespace": "serving"},
            "spec": {
                "scaleTargetRef": {"name": "ranker"},
                "minReplicaCount": 2,
                "maxReplicaCount": 4,
                "fallback": {"failureThreshold": 3, "replicas": 2},
                "triggers": [
                    {
                        "type": "prometheus",
                        "metadata": {"query": "sum(up)", "threshold": "8"},
                        "authenticationRef": {"name": "ranker"},
                    }
                ],
            },
        },
        {
            "metadata": {"name": "ranker", "namespace": "serving"},
            "spec": {
                "scaleTargetRef": {"name": "ranker"},
                "maxReplicaCount": 4,
                "fallback": {"failureThreshold": 3, "replicas": 2},
                "triggers": [
                    {
                        "type": "prometheus",
                        "metadata": {"awsAccessKeyID": "AKIA0000", "threshold": "8"},
                    }
                ],
            },
        },
        "a trigger carries AWS credentials in its metadata (awsAccessKeyID)",
    ),
    RuleCase(
        "k8s-admission-policy-enforced",
        "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicyBinding",
        {
            "metadata": {"name": "team-services"},
            "spec": {"policyName": "team-services", "validationActions": ["Deny"]},
        },
        {
            "metadata": {"name": "team-services"},
            "spec": {"policyName": "team-services", "validationActions": ["Warn"]},
        },
        "it only Warn what its policy refuses",
    ),
    RuleCase(
        "k8s-admission-policy-enforced",
        "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicy",
        {"metadata": {"name": "team-services"}, "spec": {"failurePolicy": "Fail"}},
        {"metadata": {"name": "team-services"}, "spec": {"failurePolicy": "Ignore"}},
        "failurePolicy Ignore",
    ),
]
