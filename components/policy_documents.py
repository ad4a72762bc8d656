"""IAM, key and bucket policy documents as plain functions returning dicts.

They take plain strings (account id, partition, ARNs) so they can be tested without Pulumi;
components call them inside `Output.all(...).apply` and serialize with `Output.json_dumps`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final

PolicyDocument = dict[str, Any]

KEY_ADMIN_ACTIONS: Final = (
    "kms:CancelKeyDeletion",
    "kms:Create*",
    "kms:Delete*",
    "kms:Describe*",
    "kms:Disable*",
    "kms:Enable*",
    "kms:Get*",
    "kms:List*",
    "kms:Put*",
    "kms:Revoke*",
    "kms:RotateKeyOnDemand",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:Update*",
)


class KeyUse(Enum):
    """An AWS service that uses a key on the account's behalf and needs the key policy's leave."""

    S3_ACCESS_LOG_DELIVERY = "s3-access-log-delivery"
    """S3 server access logging writes into SSE-KMS log buckets as logging.s3.amazonaws.com."""
    CLOUDWATCH_LOGS = "cloudwatch-logs"
    """CloudWatch Logs encrypts log groups of this account in this region."""
    AUTOSCALING_EBS_VOLUMES = "autoscaling-ebs-volumes"
    """Managed node groups' Auto Scaling groups launch instances with volumes under the key."""
    ALERT_PUBLISHERS = "alert-publishers"
    """CloudWatch alarms, AWS Budgets and Prometheus alert manager publish to a topic under it."""
    EVENT_RULES = "event-rules"
    """EventBridge rules of this account deliver to queues under it."""


# Services that publish the platform's alerts; SNS encrypts each message under the topic's key
# with the publisher's own permissions, so each needs the key policy's leave as well as the
# topic policy's.
ALERT_PUBLISHERS: Final = (
    "aps.amazonaws.com",
    "budgets.amazonaws.com",
    "cloudwatch.amazonaws.com",
)


def account_root_arn(partition: str, account_id: str) -> str:
    return f"arn:{partition}:iam::{account_id}:root"


def autoscaling_service_role_arn(partition: str, account_id: str) -> str:
    return (
        f"arn:{partition}:iam::{account_id}:role/aws-service-role/"
        "autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
    )


def _use_statements(
    use: KeyUse, account_id: str, partition: str, region: str
) -> list[dict[str, Any]]:
    if use is KeyUse.S3_ACCESS_LOG_DELIVERY:
        return [
            {
                "Sid": "AllowS3AccessLogDelivery",
                "Effect": "Allow",
                "Principal": {"Service": "logging.s3.amazonaws.com"},
                "Action": ["kms:GenerateDataKey"],
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
            }
        ]
    if use is KeyUse.CLOUDWATCH_LOGS:
        return [
            {
                "Sid": "AllowCloudWatchLogsOfThisAccount",
                "Effect": "Allow",
                "Principal": {"Service": f"logs.{region}.amazonaws.com"},
                # Only actions that carry an encryption context: under this condition any other
                # action (e.g. DescribeKey) could never be allowed anyway.
                "Action": [
                    "kms:Encrypt*",
                    "kms:Decrypt*",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                ],
                "Resource": "*",
                "Condition": {
                    "StringLike": {
                        "kms:EncryptionContext:aws:logs:arn": (
                            f"arn:{partition}:logs:{region}:{account_id}:log-group:*"
                        )
                    }
                },
            }
        ]
    if use is KeyUse.ALERT_PUBLISHERS:
        return [
            {
                "Sid": "AllowAlertPublishersThroughSns",
                "Effect": "Allow",
                "Principal": {"Service": list(ALERT_PUBLISHERS)},
                # No condition: these services call KMS without source context. The topic
                # policy is what limits publishing to this account's alarms, budgets and
                # workspaces; the key alone lets no one read or send anything.
                "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                "Resource": "*",
            }
        ]
    if use is KeyUse.EVENT_RULES:
        return [
            {
                "Sid": "AllowEventRulesOfThisAccount",
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                # SQS encrypts each message EventBridge sends with the sender's permissions
                # (the SQS guide, "Configure KMS permissions for AWS services").
                "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                "Resource": "*",
                "Condition": {
                    "ArnLike": {
                        "aws:SourceArn": f"arn:{partition}:events:{region}:{account_id}:rule/*"
                    }
                },
            }
        ]
    autoscaling = {"AWS": autoscaling_service_role_arn(partition, account_id)}
    return [
        {
            "Sid": "AllowAutoScalingVolumes",
            "Effect": "Allow",
            "Principal": autoscaling,
            "Action": [
                "kms:Encrypt",
                "kms:Decrypt",
                "kms:ReEncrypt*",
                "kms:GenerateDataKey*",
                "kms:DescribeKey",
            ],
            "Resource": "*",
        },
        {
            "Sid": "AllowAutoScalingVolumeGrants",
            "Effect": "Allow",
            "Principal": autoscaling,
            "Action": "kms:CreateGrant",
            "Resource": "*",
            "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
        },
    ]


def key_policy(
    *,
    account_id: str,
    partition: str,
    region: str,
    admin_role_arns: Sequence[str] = (),
    uses: Sequence[KeyUse] = (),
) -> PolicyDocument:
    """A key policy that names everyone who may use or manage the key.

    The account root statement delegates use to IAM policies (without it a key whose admin role
    is deleted becomes unmanageable); no statement has a wildcard principal.
    """
    statements: list[dict[str, Any]] = [
        {
            "Sid": "EnableIamPoliciesInThisAccount",
            "Effect": "Allow",
            "Principal": {"AWS": account_root_arn(partition, account_id)},
            "Action": "kms:*",
            "Resource": "*",
        }
    ]
    if admin_role_arns:
        statements.append(
            {
                "Sid": "KeyAdministrators",
                "Effect": "Allow",
                "Principal": {"AWS": sorted(admin_role_arns)},
                "Action": list(KEY_ADMIN_ACTIONS),
                "Resource": "*",
            }
        )
    for use in uses:
        statements.extend(_use_statements(use, account_id, partition, region))
    return {"Version": "2012-10-17", "Statement": statements}


def tls_only_statements(bucket_arn: str) -> list[dict[str, Any]]:
    """Deny any request to the bucket over plain HTTP or TLS older than 1.2."""
    resources = [bucket_arn, f"{bucket_arn}/*"]
    return [
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": resources,
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
        {
            "Sid": "DenyOutdatedTls",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": resources,
            "Condition": {"NumericLessThan": {"s3:TlsVersion": "1.2"}},
        },
    ]


def access_log_delivery_statement(bucket_arn: str, account_id: str) -> dict[str, Any]:
    """Let S3 server access logging of this account's buckets write into a log bucket.

    With `BucketOwnerEnforced` ACLs are off, so delivery is granted by policy, not a log ACL.
    """
    return {
        "Sid": "AllowS3AccessLogDelivery",
        "Effect": "Allow",
        "Principal": {"Service": "logging.s3.amazonaws.com"},
        "Action": "s3:PutObject",
        "Resource": f"{bucket_arn}/*",
        "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
    }


def bucket_policy(
    *, bucket_arn: str, account_id: str, receives_access_logs: bool
) -> PolicyDocument:
    statements = tls_only_statements(bucket_arn)
    if receives_access_logs:
        statements.append(access_log_delivery_statement(bucket_arn, account_id))
    return {"Version": "2012-10-17", "Statement": statements}


def alert_topic_policy(*, topic_arn: str, account_id: str) -> PolicyDocument:
    """Only this account's alarms, budgets and Prometheus workspaces publish, over TLS."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AllowAlertPublishersOfThisAccount",
                "Effect": "Allow",
                "Principal": {"Service": list(ALERT_PUBLISHERS)},
                "Action": ["sns:Publish", "sns:GetTopicAttributes"],
                "Resource": topic_arn,
                "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
            },
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "sns:Publish",
                "Resource": topic_arn,
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
        ],
    }


def service_trust(service: str, source_account: str | None = None) -> PolicyDocument:
    """A role trust for an AWS service principal; with `source_account`, only when acting for
    that account (against confused-deputy use by other accounts' resources)."""
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": "sts:AssumeRole",
    }
    if source_account is not None:
        statement["Condition"] = {"StringEquals": {"aws:SourceAccount": source_account}}
    return {"Version": "2012-10-17", "Statement": [statement]}


def pod_identity_trust(
    *, account_id: str, cluster_arn: str, namespace: str, service_account: str
) -> PolicyDocument:
    """EKS Pod Identity trust pinned to one cluster, namespace and service account.

    Pod Identity passes these as session tags, so the trust names exactly one service account
    even if another association pointed at the role.
    """
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "EksPodIdentity",
                "Effect": "Allow",
                "Principal": {"Service": "pods.eks.amazonaws.com"},
                "Action": ["sts:AssumeRole", "sts:TagSession"],
                "Condition": {
                    "StringEquals": {
                        "aws:SourceAccount": account_id,
                        "aws:RequestTag/kubernetes-namespace": namespace,
                        "aws:RequestTag/kubernetes-service-account": service_account,
                    },
                    "ArnEquals": {"aws:SourceArn": cluster_arn},
                },
            }
        ],
    }


PROMETHEUS_QUERY_ACTIONS: Final = (
    "aps:GetLabels",
    "aps:GetMetricMetadata",
    "aps:GetSeries",
    "aps:QueryMetrics",
)


# The most any pod's role may ever do: the services ML workloads and cluster add-ons use. IAM,
# STS role chaining, Organizations and account settings are out of reach whatever a role's own
# policies say.
WORKLOAD_BOUNDARY_ACTIONS: Final = (
    # Prometheus: queries (analyses, autoscalers) and remote writes (scrape agents), no admin.
    *PROMETHEUS_QUERY_ACTIONS,
    "aps:RemoteWrite",
    # Certificates for load balancers' HTTPS listeners, read only.
    "acm:DescribeCertificate",
    "acm:ListCertificates",
    "autoscaling:*",
    "cloudwatch:*",
    "dynamodb:*",
    "ec2:*",
    "ecr:*",
    "eks:Describe*",
    "elasticloadbalancing:*",
    "events:*",
    "glue:*",
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:Encrypt",
    "kms:GenerateDataKey*",
    "kms:ReEncrypt*",
    "kms:CreateGrant",
    "kms:ListGrants",
    "kms:RevokeGrant",
    "logs:*",
    "pricing:GetProducts",
    "s3:*",
    "sagemaker:*",
    # Managed MLflow has its own action namespace: `sagemaker:*` does not reach it.
    "sagemaker-mlflow:*",
    "sqs:*",
    "ssm:GetParameter*",
    "sts:TagSession",
)


def workload_boundary(*, account_id: str, partition: str, node_role_arn: str) -> PolicyDocument:
    """The most any pod's role may do. The only IAM in reach is what a node provisioner
    (Karpenter) needs: passing the node role and managing instance profiles for it."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "WorkloadServices",
                "Effect": "Allow",
                "Action": list(WORKLOAD_BOUNDARY_ACTIONS),
                "Resource": "*",
            },
            {
                "Sid": "PassTheNodeRole",
                "Effect": "Allow",
                "Action": "iam:PassRole",
                "Resource": node_role_arn,
            },
            {
                "Sid": "NodeInstanceProfiles",
                "Effect": "Allow",
                "Action": list(INSTANCE_PROFILE_ACTIONS),
                "Resource": f"arn:{partition}:iam::{account_id}:instance-profile/*",
            },
            LIST_INSTANCE_PROFILES,
        ],
    }


INSTANCE_PROFILE_ACTIONS: Final = (
    "iam:AddRoleToInstanceProfile",
    "iam:CreateInstanceProfile",
    "iam:DeleteInstanceProfile",
    "iam:GetInstanceProfile",
    "iam:RemoveRoleFromInstanceProfile",
    "iam:TagInstanceProfile",
)
LIST_INSTANCE_PROFILES: Final = {
    "Sid": "ListInstanceProfiles",
    "Effect": "Allow",
    # Listing has no resource to scope to; it reveals names, not permissions.
    "Action": "iam:ListInstanceProfiles",
    "Resource": "*",
}


def karpenter_controller_policy(
    *,
    cluster_name: str,
    cluster_arn: str,
    node_role_arn: str,
    queue_arn: str,
    ebs_key_arn: str,
    account_id: str,
    partition: str,
    region: str,
) -> PolicyDocument:
    """Karpenter's controller, scoped as its v1.12.1 reference policy scopes it (getting-started
    cloudformation.yaml): it launches, tags and retires only what carries this cluster's and
    Karpenter's own tags, so managed node groups' instances (which carry the cluster tag too)
    stay out of reach; plus use of the EBS key through EC2, which that policy leaves out
    (Karpenter troubleshooting, "Node terminates before ready on failed encrypted EBS volume")."""
    ec2 = f"arn:{partition}:ec2:{region}"
    cluster_tag = f"kubernetes.io/cluster/{cluster_name}"
    launched = [
        f"{ec2}:*:{kind}/*"
        for kind in (
            "fleet",
            "instance",
            "volume",
            "network-interface",
            "launch-template",
            "spot-instances-request",
        )
    ]
    requested = {
        f"aws:RequestTag/{cluster_tag}": "owned",
        "aws:RequestTag/eks:eks-cluster-name": cluster_name,
    }
    profile_requested = {**requested, "aws:RequestTag/topology.kubernetes.io/region": region}
    profile_owned = {
        f"aws:ResourceTag/{cluster_tag}": "owned",
        "aws:ResourceTag/topology.kubernetes.io/region": region,
    }
    karpenters = {"aws:ResourceTag/karpenter.sh/nodepool": "*"}
    instance_profiles = f"arn:{partition}:iam::{account_id}:instance-profile/*"
    via_ec2 = {"kms:ViaService": f"ec2.{region}.amazonaws.com"}
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "LaunchFromSharedResources",
                "Effect": "Allow",
                "Action": ["ec2:RunInstances", "ec2:CreateFleet"],
                "Resource": [
                    f"{ec2}::image/*",
                    f"{ec2}::snapshot/*",
                    f"{ec2}:*:security-group/*",
                    f"{ec2}:*:subnet/*",
                    f"{ec2}:*:capacity-reservation/*",
                    f"{ec2}:*:placement-group/*",
                ],
            },
            {
                "Sid": "LaunchFromItsLaunchTemplates",
                "Effect": "Allow",
                "Action": ["ec2:RunInstances", "ec2:CreateFleet"],
                "Resource": f"{ec2}:*:launch-template/*",
                "Condition": {
                    "StringEquals": {f"aws:ResourceTag/{cluster_tag}": "owned"},
                    "StringLike": karpenters,
                },
            },
            {
                "Sid": "LaunchOnlyTagged",
                "Effect": "Allow",
                "Action": ["ec2:RunInstances", "ec2:CreateFleet", "ec2:CreateLaunchTemplate"],
                "Resource": launched,
                "Condition": {
                    "StringEquals": requested,
                    "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"},
                },
            },
            {
                "Sid": "TagWhatItLaunches",
                "Effect": "Allow",
                "Action": "ec2:CreateTags",
                "Resource": launched,
                "Condition": {
                    "StringEquals": {
                        **requested,
                        "ec2:CreateAction": ["RunInstances", "CreateFleet", "CreateLaunchTemplate"],
                    },
                    "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"},
                },
            },
            {
                "Sid": "NameItsNodes",
                "Effect": "Allow",
                "Action": "ec2:CreateTags",
                "Resource": f"{ec2}:*:instance/*",
                "Condition": {
                    "StringEquals": {f"aws:ResourceTag/{cluster_tag}": "owned"},
                    "StringLike": karpenters,
                    "StringEqualsIfExists": {"aws:RequestTag/eks:eks-cluster-name": cluster_name},
                    "ForAllValues:StringEquals": {
                        "aws:TagKeys": ["eks:eks-cluster-name", "karpenter.sh/nodeclaim", "Name"]
                    },
                },
            },
            {
                "Sid": "RetireOnlyItsNodes",
                "Effect": "Allow",
                "Action": ["ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"],
                "Resource": [f"{ec2}:*:instance/*", f"{ec2}:*:launch-template/*"],
                "Condition": {
                    "StringEquals": {f"aws:ResourceTag/{cluster_tag}": "owned"},
                    "StringLike": karpenters,
                },
            },
            {
                "Sid": "EncryptNodeVolumesThroughEc2",
                "Effect": "Allow",
                "Action": list(VOLUME_KEY_ACTIONS),
                "Resource": ebs_key_arn,
                "Condition": {"StringEquals": via_ec2},
            },
            {
                "Sid": "GrantNodeVolumeKeyToEc2",
                "Effect": "Allow",
                "Action": "kms:CreateGrant",
                "Resource": ebs_key_arn,
                "Condition": {
                    "StringEquals": via_ec2,
                    "Bool": {"kms:GrantIsForAWSResource": "true"},
                },
            },
            {
                "Sid": "Discover",
                "Effect": "Allow",
                "Action": [
                    "ec2:DescribeAvailabilityZones",
                    "ec2:DescribeCapacityReservations",
                    "ec2:DescribeImages",
                    "ec2:DescribeInstances",
                    "ec2:DescribeInstanceStatus",
                    "ec2:DescribeInstanceTypeOfferings",
                    "ec2:DescribeInstanceTypes",
                    "ec2:DescribeLaunchTemplates",
                    "ec2:DescribePlacementGroups",
                    "ec2:DescribeSecurityGroups",
                    "ec2:DescribeSpotPriceHistory",
                    "ec2:DescribeSubnets",
                ],
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:RequestedRegion": region}},
            },
            {
                "Sid": "Prices",
                "Effect": "Allow",
                "Action": "pricing:GetProducts",
                "Resource": "*",
            },
            {
                "Sid": "ReadAmiParameters",
                "Effect": "Allow",
                "Action": "ssm:GetParameter",
                "Resource": f"arn:{partition}:ssm:{region}::parameter/aws/service/*",
            },
            {
                "Sid": "InterruptionQueue",
                "Effect": "Allow",
                "Action": ["sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage"],
                "Resource": queue_arn,
            },
            {
                "Sid": "PassTheNodeRole",
                "Effect": "Allow",
                "Action": "iam:PassRole",
                "Resource": node_role_arn,
                "Condition": {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}},
            },
            {
                "Sid": "CreateItsInstanceProfiles",
                "Effect": "Allow",
                "Action": "iam:CreateInstanceProfile",
                "Resource": instance_profiles,
                "Condition": {
                    "StringEquals": profile_requested,
                    "StringLike": {"aws:RequestTag/karpenter.k8s.aws/ec2nodeclass": "*"},
                },
            },
            {
                "Sid": "TagItsInstanceProfiles",
                "Effect": "Allow",
                "Action": "iam:TagInstanceProfile",
                "Resource": instance_profiles,
                "Condition": {
                    "StringEquals": {**profile_owned, **profile_requested},
                    "StringLike": {
                        "aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass": "*",
                        "aws:RequestTag/karpenter.k8s.aws/ec2nodeclass": "*",
                    },
                },
            },
            {
                "Sid": "ManageItsInstanceProfiles",
                "Effect": "Allow",
                "Action": [
                    "iam:AddRoleToInstanceProfile",
                    "iam:RemoveRoleFromInstanceProfile",
                    "iam:DeleteInstanceProfile",
                ],
                "Resource": instance_profiles,
                "Condition": {
                    "StringEquals": profile_owned,
                    "StringLike": {"aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass": "*"},
                },
            },
            {
                "Sid": "ReadInstanceProfiles",
                "Effect": "Allow",
                "Action": "iam:GetInstanceProfile",
                "Resource": instance_profiles,
            },
            LIST_INSTANCE_PROFILES,
            {
                "Sid": "FindTheCluster",
                "Effect": "Allow",
                "Action": "eks:DescribeCluster",
                "Resource": cluster_arn,
            },
        ],
    }


def event_queue_policy(queue_arn: str, rule_arns: Sequence[str]) -> PolicyDocument:
    """These EventBridge rules may deliver (`aws:SourceArn`, against confused-deputy use by
    other rules); nobody may use the queue without TLS. The account's own principals need no
    grant here: their IAM policies decide."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "RulesDeliver",
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": sorted(rule_arns)}},
            },
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "sqs:*",
                "Resource": queue_arn,
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
        ],
    }


def flow_logs_delivery(log_group_arn: str) -> PolicyDocument:
    """What VPC flow logs need to write into one log group."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DeliverFlowLogs",
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                "Resource": [log_group_arn, f"{log_group_arn}:*"],
            }
        ],
    }


VOLUME_KEY_ACTIONS: Final = (
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncrypt*",
    "kms:GenerateDataKey*",
    "kms:DescribeKey",
)
"""What EC2 does with a volume's key on behalf of whoever creates or attaches the volume."""


def ebs_volume_key_use(key_arn: str) -> PolicyDocument:
    """What the EBS CSI driver needs on the customer key that encrypts its volumes."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "UseVolumeKey",
                "Effect": "Allow",
                "Action": list(VOLUME_KEY_ACTIONS),
                "Resource": key_arn,
            },
            {
                "Sid": "GrantVolumeKeyToEbs",
                "Effect": "Allow",
                "Action": ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"],
                "Resource": key_arn,
                "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
            },
        ],
    }


def cluster_autoscaler_policy(
    *, cluster_name: str, account_id: str, partition: str, region: str
) -> PolicyDocument:
    """Read what it must, and resize or shrink only this cluster's Auto Scaling groups."""
    groups = (
        f"arn:{partition}:autoscaling:{region}:{account_id}:"
        "autoScalingGroup:*:autoScalingGroupName/*"
    )
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DiscoverNodeGroups",
                "Effect": "Allow",
                "Action": [
                    "autoscaling:DescribeAutoScalingGroups",
                    "autoscaling:DescribeAutoScalingInstances",
                    "autoscaling:DescribeLaunchConfigurations",
                    "autoscaling:DescribeScalingActivities",
                    "autoscaling:DescribeTags",
                    "ec2:DescribeImages",
                    "ec2:DescribeInstanceTypes",
                    "ec2:DescribeLaunchTemplateVersions",
                    "ec2:GetInstanceTypesFromInstanceRequirements",
                ],
                "Resource": "*",
            },
            {
                "Sid": "ReadThisClustersNodeGroups",
                "Effect": "Allow",
                "Action": "eks:DescribeNodegroup",
                "Resource": f"arn:{partition}:eks:{region}:{account_id}:nodegroup/{cluster_name}/*",
            },
            {
                "Sid": "ScaleThisClustersGroups",
                "Effect": "Allow",
                "Action": [
                    "autoscaling:SetDesiredCapacity",
                    "autoscaling:TerminateInstanceInAutoScalingGroup",
                ],
                "Resource": groups,
                "Condition": {
                    "StringEquals": {
                        f"aws:ResourceTag/k8s.io/cluster-autoscaler/{cluster_name}": "owned"
                    }
                },
            },
        ],
    }


def repository_policy(account_id: str) -> PolicyDocument:
    """Images are for this account's principals only, whatever a caller's own IAM says."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyOutsideTheAccount",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "ecr:*",
                "Condition": {"StringNotEquals": {"aws:PrincipalAccount": account_id}},
            }
        ],
    }


def repository_lifecycle(*, keep_tagged: int, untagged_days: int) -> PolicyDocument:
    """Untagged layers go after a few days; only the newest tagged images are kept."""
    return {
        "rules": [
            {
                "rulePriority": 1,
                "description": f"expire untagged images after {untagged_days} days",
                "selection": {
                    "tagStatus": "untagged",
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": untagged_days,
                },
                "action": {"type": "expire"},
            },
            {
                "rulePriority": 2,
                "description": f"keep the newest {keep_tagged} tagged images",
                "selection": {
                    "tagStatus": "tagged",
                    "tagPatternList": ["*"],
                    "countType": "imageCountMoreThan",
                    "countNumber": keep_tagged,
                },
                "action": {"type": "expire"},
            },
        ]
    }


def feature_store_policy(
    *, bucket_arn: str, prefix: str, database_arn: str, catalog_arn: str, key_arn: str
) -> PolicyDocument:
    """What SageMaker needs to write an offline store: its own prefix, database and key.

    AWS's reference for this role (the managed policy AmazonSageMakerFeatureStoreAccess, v3)
    grants s3:PutObject, s3:PutObjectAcl and s3:GetBucketAcl on the offline store's bucket: the
    service reads the bucket's owner and writes each object with an ACL. With ACLs disabled
    (BucketOwnerEnforced, as every platform bucket is) S3 still accepts the one ACL that grants
    the bucket owner full control, and a PutObject that carries an ACL needs s3:PutObjectAcl.
    Iceberg tables also read and replace their own metadata files, hence Get and Delete.
    """
    tables_arn = database_arn.replace(":database/", ":table/") + "/*"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "OfflineStoreObjects",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject", "s3:PutObjectAcl", "s3:DeleteObject"],
                "Resource": f"{bucket_arn}/{prefix}*",
            },
            {
                "Sid": "OfflineStoreBucket",
                "Effect": "Allow",
                "Action": ["s3:GetBucketAcl", "s3:ListBucket"],
                "Resource": bucket_arn,
            },
            {
                "Sid": "OfflineStoreTables",
                "Effect": "Allow",
                "Action": [
                    "glue:CreateTable",
                    "glue:GetDatabase",
                    "glue:GetTable",
                    "glue:UpdateTable",
                ],
                "Resource": [catalog_arn, database_arn, tables_arn],
            },
            {
                "Sid": "OfflineStoreKey",
                "Effect": "Allow",
                "Action": ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
                "Resource": key_arn,
            },
        ],
    }


def feast_server_policy(
    *, table_arns: Sequence[str], bucket_arn: str, registry_prefix: str, key_arn: str
) -> PolicyDocument:
    """The calls Feast's feature server and materialization make, on its own tables only."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "OnlineTables",
                "Effect": "Allow",
                "Action": [
                    "dynamodb:BatchGetItem",
                    "dynamodb:BatchWriteItem",
                    "dynamodb:DescribeTable",
                    "dynamodb:GetItem",
                    "dynamodb:ListTagsOfResource",
                    "dynamodb:Query",
                    "dynamodb:TagResource",
                ],
                "Resource": sorted(table_arns),
            },
            {
                "Sid": "Registry",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                "Resource": f"{bucket_arn}/{registry_prefix}*",
            },
            {
                "Sid": "ListRegistry",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": bucket_arn,
                "Condition": {"StringLike": {"s3:prefix": f"{registry_prefix}*"}},
            },
            {
                "Sid": "DataKey",
                "Effect": "Allow",
                "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                "Resource": key_arn,
            },
        ],
    }


def irsa_trust(
    *, oidc_provider_arn: str, issuer: str, namespace: str, service_account: str
) -> PolicyDocument:
    """IRSA trust for exactly one service account, and only for STS."""
    host = issuer.removeprefix("https://")
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "IrsaServiceAccount",
                "Effect": "Allow",
                "Principal": {"Federated": oidc_provider_arn},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        f"{host}:sub": f"system:serviceaccount:{namespace}:{service_account}",
                        f"{host}:aud": "sts.amazonaws.com",
                    }
                },
            }
        ],
    }


@dataclass(frozen=True)
class BucketGrant:
    bucket_arn: str
    key_arn: str
    write: bool
    prefix: str = ""


@dataclass(frozen=True)
class RepositoryGrant:
    repository_arn: str
    key_arn: str
    push: bool


@dataclass(frozen=True)
class TrackingGrant:
    """A managed MLflow tracking server: its API, and the artifact prefix clients read and
    write themselves (the MLflow client moves artifacts to S3 directly)."""

    server_arn: str
    artifacts: BucketGrant


@dataclass(frozen=True)
class QueueGrant:
    """A queue a workload consumes: it receives and deletes messages, and decrypts them."""

    queue_arn: str
    key_arn: str


@dataclass(frozen=True)
class TableGrant:
    """A Feast online table or a SageMaker feature group: records behind a key."""

    arn: str
    key_arn: str
    write: bool


S3_READ: Final = ("s3:GetObject", "s3:GetObjectVersion")
S3_WRITE: Final = ("s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload")
SQS_CONSUME: Final = (
    "sqs:ChangeMessageVisibility",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "sqs:GetQueueUrl",
    "sqs:ReceiveMessage",
)
ECR_PULL: Final = (
    "ecr:BatchCheckLayerAvailability",
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
)
ECR_PUSH: Final = (
    "ecr:CompleteLayerUpload",
    "ecr:InitiateLayerUpload",
    "ecr:PutImage",
    "ecr:UploadLayerPart",
)


# The Service Authorization Reference's Read and List actions of `sagemaker-mlflow`, and its
# Write actions (the AWS guide "Set up IAM permissions for MLflow" lists the same set).
MLFLOW_READ: Final = tuple(
    f"sagemaker-mlflow:{action}"
    for action in (
        # AccessUI is left out: it takes no resource, so it cannot be scoped to a server, and
        # people reach the UI through presigned URLs, not pods.
        "GetDownloadURIForModelVersionArtifacts",
        "GetExperiment",
        "GetExperimentByName",
        "GetLatestModelVersions",
        "GetLoggedModel",
        "GetMetricHistory",
        "GetModelVersion",
        "GetModelVersionByAlias",
        "GetRegisteredModel",
        "GetRun",
        "GetTraceInfo",
        "ListArtifacts",
        "ListLoggedModelArtifacts",
        "SearchExperiments",
        "SearchLoggedModels",
        "SearchModelVersions",
        "SearchRegisteredModels",
        "SearchRuns",
        "SearchTraces",
    )
)
MLFLOW_WRITE: Final = tuple(
    f"sagemaker-mlflow:{action}"
    for action in (
        "CreateExperiment",
        "CreateModelVersion",
        "CreateRegisteredModel",
        "CreateRun",
        "DeleteExperiment",
        "DeleteLoggedModel",
        "DeleteLoggedModelTag",
        "DeleteModelVersion",
        "DeleteModelVersionTag",
        "DeleteRegisteredModel",
        "DeleteRegisteredModelAlias",
        "DeleteRegisteredModelTag",
        "DeleteRun",
        "DeleteTag",
        "DeleteTraceTag",
        "DeleteTraces",
        "EndTrace",
        "FinalizeLoggedModel",
        "LogBatch",
        "LogInputs",
        "LogLoggedModelParams",
        "LogMetric",
        "LogModel",
        "LogOutputs",
        "LogParam",
        "RenameRegisteredModel",
        "RestoreExperiment",
        "RestoreRun",
        "SetExperimentTag",
        "SetLoggedModelTags",
        "SetModelVersionTag",
        "SetRegisteredModelAlias",
        "SetRegisteredModelTag",
        "SetTag",
        "SetTraceTag",
        "StartTrace",
        "TransitionModelVersionStage",
        "UpdateExperiment",
        "UpdateModelVersion",
        "UpdateRegisteredModel",
        "UpdateRun",
    )
)


def tracking_server_policy(
    *,
    bucket_arn: str,
    prefix: str,
    key_arn: str,
    region: str,
    model_registration: str | None,
) -> PolicyDocument:
    """What a managed MLflow tracking server does with its role: reads and writes run
    artifacts under its own prefix (the key through S3 only), and, with automatic model
    registration, mirrors registered models into the SageMaker Model Registry.

    AWS's guide ("Set up IAM permissions for MLflow") grants s3:Get*, s3:Put* and s3:List* and
    the model-package actions on every resource; here they are the object reads and writes a
    workload gets, on the prefix, listing on the bucket, and the model-package actions on
    `model_registration`, the account's model-package ARN prefix
    (`arn:<partition>:sagemaker:<region>:<account>:model-package`). Not verified against a
    running server: AWS publishes no narrower list.
    """
    statements: list[dict[str, Any]] = [
        {
            "Sid": "ArtifactObjects",
            "Effect": "Allow",
            "Action": [*S3_READ, *S3_WRITE],
            "Resource": f"{bucket_arn}/{prefix}*",
        },
        {
            # The service lists and locates the bucket as it needs; AWS documents no prefix
            # form of its listing to condition on.
            "Sid": "ArtifactBucket",
            "Effect": "Allow",
            "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
            "Resource": bucket_arn,
        },
        {
            "Sid": "ArtifactKey",
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": key_arn,
            "Condition": {"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}},
        },
    ]
    if model_registration is not None:
        statements.append(
            {
                "Sid": "ModelRegistry",
                "Effect": "Allow",
                "Action": [
                    "sagemaker:AddTags",
                    "sagemaker:CreateModelPackage",
                    "sagemaker:CreateModelPackageGroup",
                    "sagemaker:DescribeModelPackageGroup",
                    "sagemaker:UpdateModelPackage",
                ],
                "Resource": [f"{model_registration}-group/*", f"{model_registration}/*"],
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


def workload_policy(
    *,
    region: str,
    buckets: Sequence[BucketGrant] = (),
    repositories: Sequence[RepositoryGrant] = (),
    feature_groups: Sequence[TableGrant] = (),
    tables: Sequence[TableGrant] = (),
    tracking: TrackingGrant | None = None,
    queues: Sequence[QueueGrant] = (),
) -> PolicyDocument:
    """Exactly what one workload names, and the key uses behind it (only through the service
    that stores the data, `kms:ViaService`)."""
    statements: list[dict[str, Any]] = []
    key_uses: dict[tuple[str, str], set[str]] = {}

    def uses(key_arn: str, service: str, write: bool) -> None:
        actions = key_uses.setdefault((key_arn, service), {"kms:Decrypt"})
        if write:
            actions.add("kms:GenerateDataKey")

    if tracking is not None:
        statements.append(
            {
                "Sid": "Tracking",
                "Effect": "Allow",
                "Action": sorted(MLFLOW_READ + (MLFLOW_WRITE if tracking.artifacts.write else ())),
                "Resource": tracking.server_arn,
            }
        )
        buckets = [*buckets, tracking.artifacts]
    for index, grant in enumerate(buckets):
        objects = f"{grant.bucket_arn}/{grant.prefix}*"
        statements.append(
            {
                "Sid": f"Objects{index}",
                "Effect": "Allow",
                "Action": [*S3_READ, *(S3_WRITE if grant.write else ())],
                "Resource": objects,
            }
        )
        listing: dict[str, Any] = {
            "Sid": f"List{index}",
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": grant.bucket_arn,
        }
        if grant.prefix:
            listing["Condition"] = {"StringLike": {"s3:prefix": f"{grant.prefix}*"}}
        statements.append(listing)
        uses(grant.key_arn, "s3", grant.write)
    if repositories:
        # ECR's login token is account-wide by design: it has no resource to scope to.
        statements.append(
            {
                "Sid": "RegistryLogin",
                "Effect": "Allow",
                "Action": "ecr:GetAuthorizationToken",
                "Resource": "*",
            }
        )
    for index, repository in enumerate(repositories):
        statements.append(
            {
                "Sid": f"Images{index}",
                "Effect": "Allow",
                "Action": [*ECR_PULL, *(ECR_PUSH if repository.push else ())],
                "Resource": repository.repository_arn,
            }
        )
        uses(repository.key_arn, "ecr", repository.push)
    for index, group in enumerate(feature_groups):
        actions = ["sagemaker:GetRecord", "sagemaker:BatchGetRecord"]
        if group.write:
            actions += ["sagemaker:PutRecord", "sagemaker:DeleteRecord"]
        statements.append(
            {"Sid": f"Features{index}", "Effect": "Allow", "Action": actions, "Resource": group.arn}
        )
        uses(group.key_arn, "sagemaker", group.write)
    for index, table in enumerate(tables):
        actions = [
            "dynamodb:BatchGetItem",
            "dynamodb:DescribeTable",
            "dynamodb:GetItem",
            "dynamodb:Query",
        ]
        if table.write:
            actions += ["dynamodb:BatchWriteItem", "dynamodb:PutItem"]
        statements.append(
            {"Sid": f"Table{index}", "Effect": "Allow", "Action": actions, "Resource": table.arn}
        )
        uses(table.key_arn, "dynamodb", table.write)
    for index, queue in enumerate(queues):
        statements.append(
            {
                "Sid": f"Queue{index}",
                "Effect": "Allow",
                "Action": list(SQS_CONSUME),
                "Resource": queue.queue_arn,
            }
        )
        uses(queue.key_arn, "sqs", write=False)
    for index, ((key_arn, service), key_actions) in enumerate(sorted(key_uses.items())):
        statements.append(
            {
                "Sid": f"Key{index}",
                "Effect": "Allow",
                "Action": sorted(key_actions),
                "Resource": key_arn,
                "Condition": {
                    "StringEquals": {"kms:ViaService": f"{service}.{region}.amazonaws.com"}
                },
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


def replication_policy(
    *,
    pairs: Sequence[tuple[str, str]],
    source_key_arn: str,
    destination_key_arn: str,
    source_region: str,
    destination_region: str,
) -> PolicyDocument:
    """What S3 replication needs, as its role, to copy SSE-KMS objects from each source bucket
    to its replica (S3 User Guide, "Replicating encrypted objects"): read the sources' versions,
    write replicas, and use each key only through S3 in its region for its buckets (with S3
    Bucket Keys the encryption context is the bucket's ARN, otherwise the object's)."""
    sources = [source for source, _ in pairs]
    replicas = [replica for _, replica in pairs]

    def through_s3(region: str, buckets: list[str]) -> dict[str, Any]:
        return {
            "StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"},
            "StringLike": {
                "kms:EncryptionContext:aws:s3:arn": [
                    arn for bucket in buckets for arn in (bucket, f"{bucket}/*")
                ]
            },
        }

    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadSourceConfiguration",
                "Effect": "Allow",
                "Action": ["s3:GetReplicationConfiguration", "s3:ListBucket"],
                "Resource": sources,
            },
            {
                "Sid": "ReadSourceVersions",
                "Effect": "Allow",
                "Action": [
                    "s3:GetObjectVersionForReplication",
                    "s3:GetObjectVersionAcl",
                    "s3:GetObjectVersionTagging",
                ],
                "Resource": [f"{source}/*" for source in sources],
            },
            {
                "Sid": "WriteReplicas",
                "Effect": "Allow",
                "Action": ["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags"],
                "Resource": [f"{replica}/*" for replica in replicas],
            },
            {
                "Sid": "DecryptSources",
                "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": source_key_arn,
                "Condition": through_s3(source_region, sources),
            },
            {
                "Sid": "EncryptReplicas",
                "Effect": "Allow",
                "Action": ["kms:Encrypt", "kms:GenerateDataKey"],
                "Resource": destination_key_arn,
                "Condition": through_s3(destination_region, replicas),
            },
        ],
    }


def deploy_runner_policy(
    *,
    log_group_arn: str,
    subnet_ids: Sequence[str],
    connection_arn: str,
    key_arn: str,
    partition: str,
    account_id: str,
    region: str,
) -> PolicyDocument:
    """What a CodeBuild-hosted deploy runner's own role may do, and nothing more: write its
    log group, attach to its subnets (CodeBuild User Guide, "Use CodeBuild with Amazon VPC"),
    check out through the GitHub connection, and use its key through CodeBuild. Deploy
    credentials never come from this role: the job assumes the deployer role by GitHub OIDC,
    which only a protected GitHub environment's jobs can."""
    ec2 = f"arn:{partition}:ec2:{region}:{account_id}"
    subnet_arns = sorted(f"{ec2}:subnet/{subnet}" for subnet in subnet_ids)
    service = connection_arn.split(":")[2]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "WriteOwnLogs",
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": [log_group_arn, f"{log_group_arn}:log-stream:*"],
            },
            {
                # Describe calls support no resource-level scoping.
                "Sid": "SeeTheVpc",
                "Effect": "Allow",
                "Action": [
                    "ec2:DescribeDhcpOptions",
                    "ec2:DescribeNetworkInterfaces",
                    "ec2:DescribeSecurityGroups",
                    "ec2:DescribeSubnets",
                    "ec2:DescribeVpcs",
                ],
                "Resource": "*",
            },
            {
                "Sid": "InterfacesInRunnerSubnetsOnly",
                "Effect": "Allow",
                "Action": "ec2:CreateNetworkInterface",
                "Resource": [
                    f"{ec2}:network-interface/*",
                    f"{ec2}:security-group/*",
                    *subnet_arns,
                ],
            },
            {
                # Whoever runs in a job holds this role too: it may delete no interface
                # outside the runner's subnets.
                "Sid": "DeleteOwnInterfacesOnly",
                "Effect": "Allow",
                "Action": "ec2:DeleteNetworkInterface",
                "Resource": f"{ec2}:network-interface/*",
                "Condition": {"ArnEquals": {"ec2:Subnet": subnet_arns}},
            },
            {
                "Sid": "AttachForCodeBuildInRunnerSubnetsOnly",
                "Effect": "Allow",
                "Action": "ec2:CreateNetworkInterfacePermission",
                "Resource": f"{ec2}:network-interface/*",
                "Condition": {
                    "ArnEquals": {"ec2:Subnet": subnet_arns},
                    "StringEquals": {"ec2:AuthorizedService": "codebuild.amazonaws.com"},
                },
            },
            {
                # Connections made before the service's rename have `codestar-connections`
                # ARNs, later ones `codeconnections`; each takes its own action prefix.
                "Sid": "CheckOutThroughConnection",
                "Effect": "Allow",
                "Action": [f"{service}:GetConnection", f"{service}:GetConnectionToken"],
                "Resource": connection_arn,
            },
            {
                # CodeBuild encrypts what it stores for a build (caches, reports) with the
                # project's key, itself or through S3.
                "Sid": "UseProjectKeyThroughCodeBuild",
                "Effect": "Allow",
                "Action": ["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey*"],
                "Resource": key_arn,
                "Condition": {
                    "StringEquals": {
                        "kms:ViaService": [
                            f"codebuild.{region}.amazonaws.com",
                            f"s3.{region}.amazonaws.com",
                        ]
                    }
                },
            },
        ],
    }


GITHUB_ACTIONS_ISSUER: Final = "token.actions.githubusercontent.com"


def github_actions_trust(
    *, provider_arn: str, repository: str, environments: Sequence[str]
) -> PolicyDocument:
    """Trust for jobs of one repository that run in one of the named GitHub environments: an
    environment's protection rules (reviewers, branches) then decide who deploys, and a job
    of any other repository, branch or pull request cannot assume the role."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "GitHubActionsEnvironments",
                "Effect": "Allow",
                "Principal": {"Federated": provider_arn},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        f"{GITHUB_ACTIONS_ISSUER}:aud": "sts.amazonaws.com",
                        f"{GITHUB_ACTIONS_ISSUER}:sub": [
                            f"repo:{repository}:environment:{environment}"
                            for environment in environments
                        ],
                    }
                },
            }
        ],
    }


# What Pulumi (terraform-provider-aws) calls to create, read, update and delete a role with
# inline policies: the model service's own role is one.
TEAM_ROLE_ACTIONS: Final = (
    "iam:DeleteRole",
    "iam:DeleteRolePolicy",
    "iam:GetRole",
    "iam:GetRolePolicy",
    "iam:ListAttachedRolePolicies",
    "iam:ListInstanceProfilesForRole",
    "iam:ListRolePolicies",
    "iam:TagRole",
    "iam:UntagRole",
    "iam:UpdateAssumeRolePolicy",
    "iam:UpdateRole",
    "iam:UpdateRoleDescription",
)
POD_IDENTITY_ASSOCIATION_CHANGES: Final = (
    "eks:DeletePodIdentityAssociation",
    "eks:UntagResource",
    "eks:UpdatePodIdentityAssociation",
)
TEAM_TAG: Final = "mlops:team"
"""Marks what a team's deployer made (its team) or the platform made (`platform`), so a
deployer changes nothing but its own of a kind."""
PLATFORM_TEAM: Final = "platform"
POD_IDENTITY_SESSION_TAGS: Final = (
    "eks-cluster-arn",
    "eks-cluster-name",
    "kubernetes-namespace",
    "kubernetes-pod-name",
    "kubernetes-pod-uid",
    "kubernetes-service-account",
)
"""The session tags EKS Pod Identity sets. Tag keys match whatever their case (STS: "not case
sensitive, but case is preserved"), so they are refused ignoring it."""


ALERT_RULE_ACTIONS: Final = (
    "aps:CreateRuleGroupsNamespace",
    "aps:DeleteRuleGroupsNamespace",
    "aps:DescribeRuleGroupsNamespace",
    "aps:ListTagsForResource",
    "aps:PutRuleGroupsNamespace",
    "aps:TagResource",
    "aps:UntagResource",
)


def team_deployer_policy(
    *,
    team: str,
    partition: str,
    account_id: str,
    region: str,
    role_path: str,
    boundary_arn: str,
    cluster_name: str,
    cluster_arn: str,
    rule_groups_arn: str,
) -> PolicyDocument:
    """What a model team's own `pulumi up` may do in AWS: make roles only under its path and
    only capped by the workload boundary, hand them only to EKS Pod Identity, and bind them in
    the platform's cluster. Every role it makes can do at most what the boundary allows, so
    the team can never grant more than the platform lets a workload hold."""
    team_roles = f"arn:{partition}:iam::{account_id}:role{role_path}*"
    bounded = {"ArnEquals": {"iam:PermissionsBoundary": boundary_arn}}
    associations = (
        f"arn:{partition}:eks:{region}:{account_id}:podidentityassociation/{cluster_name}/*"
    )
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "CreateTeamRolesUnderTheBoundary",
                "Effect": "Allow",
                "Action": ["iam:CreateRole", "iam:PutRolePermissionsBoundary", "iam:PutRolePolicy"],
                "Resource": team_roles,
                "Condition": bounded,
            },
            {
                "Sid": "ManageTeamRoles",
                "Effect": "Allow",
                "Action": list(TEAM_ROLE_ACTIONS),
                "Resource": team_roles,
            },
            {
                # Without its boundary a team role could be granted anything.
                "Sid": "KeepTheBoundary",
                "Effect": "Deny",
                "Action": "iam:DeleteRolePermissionsBoundary",
                "Resource": team_roles,
            },
            {
                "Sid": "PassTeamRolesToPodIdentityOnly",
                "Effect": "Allow",
                "Action": "iam:PassRole",
                "Resource": team_roles,
                "Condition": {"StringEquals": {"iam:PassedToService": "pods.eks.amazonaws.com"}},
            },
            {
                "Sid": "SeeTheCluster",
                "Effect": "Allow",
                "Action": ["eks:DescribeCluster", "eks:ListPodIdentityAssociations"],
                "Resource": cluster_arn,
            },
            {
                "Sid": "SeePodIdentityAssociations",
                "Effect": "Allow",
                "Action": "eks:DescribePodIdentityAssociation",
                "Resource": associations,
            },
            {
                # Only associations marked as the team's: not the platform's (marked as the
                # platform's), nor another team's.
                "Sid": "CreateTeamAssociations",
                "Effect": "Allow",
                "Action": "eks:CreatePodIdentityAssociation",
                "Resource": [cluster_arn, associations],
                "Condition": {"StringEquals": {f"aws:RequestTag/{TEAM_TAG}": team}},
            },
            {
                # Its own (or one being created), keeping or giving the team's mark; a tag
                # change that leaves the mark out of the request keeps it.
                "Sid": "TagTeamAssociations",
                "Effect": "Allow",
                "Action": "eks:TagResource",
                "Resource": associations,
                "Condition": {
                    "StringEqualsIfExists": {
                        f"aws:ResourceTag/{TEAM_TAG}": team,
                        f"aws:RequestTag/{TEAM_TAG}": team,
                    }
                },
            },
            {
                "Sid": "ChangeTeamAssociations",
                "Effect": "Allow",
                "Action": list(POD_IDENTITY_ASSOCIATION_CHANGES),
                "Resource": associations,
                "Condition": {"StringEquals": {f"aws:ResourceTag/{TEAM_TAG}": team}},
            },
            {
                "Sid": "KeepTheTeamsMark",
                "Effect": "Deny",
                "Action": "eks:UntagResource",
                "Resource": associations,
                "Condition": {"ForAnyValue:StringEquals": {"aws:TagKeys": [TEAM_TAG]}},
            },
            {
                # Pod Identity sets these as session tags, and the team's boundary trusts them;
                # as a role's own tags they would pass for a pod's session.
                "Sid": "NoPodIdentityTagsOnRoles",
                "Effect": "Deny",
                "Action": ["iam:CreateRole", "iam:TagRole"],
                "Resource": team_roles,
                "Condition": {
                    "ForAnyValue:StringEqualsIgnoreCase": {
                        "aws:TagKeys": list(POD_IDENTITY_SESSION_TAGS)
                    }
                },
            },
            {
                # Its services' alert rules, in the platform's workspace under its prefix.
                "Sid": "ManageTeamAlertRules",
                "Effect": "Allow",
                "Action": list(ALERT_RULE_ACTIONS),
                "Resource": rule_groups_arn,
            },
        ],
    }


TARGET_GROUP_READS: Final = (
    "elasticloadbalancing:DescribeListeners",
    "elasticloadbalancing:DescribeLoadBalancers",
    "elasticloadbalancing:DescribeRules",
    "elasticloadbalancing:DescribeTags",
    "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeTargetHealth",
)


def rollouts_controller_policy(workspace_arn: str) -> PolicyDocument:
    """Argo Rollouts: its analyses' queries, and (`--aws-verify-target-group`) reading the
    ALB's target groups, so a version's pods are registered healthy before the other version
    scales down (argo-rollouts docs/features/traffic-management/alb.md, v1.9.0)."""
    document = prometheus_query_policy(workspace_arn)
    document["Statement"].append(
        {
            # Describe calls take no resource-level scoping.
            "Sid": "VerifyTargetGroups",
            "Effect": "Allow",
            "Action": list(TARGET_GROUP_READS),
            "Resource": "*",
        }
    )
    return document


def prometheus_query_policy(workspace_arn: str) -> PolicyDocument:
    """Read the platform's Prometheus workspace through its query API, and nothing else:
    AmazonPrometheusQueryAccess's actions, on one workspace instead of every one."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "QueryThePlatformsWorkspace",
                "Effect": "Allow",
                "Action": list(PROMETHEUS_QUERY_ACTIONS),
                "Resource": workspace_arn,
            }
        ],
    }


LOAD_BALANCER_READS: Final = (
    "acm:ListCertificates",
    "ec2:DescribeAccountAttributes",
    "ec2:DescribeAddresses",
    "ec2:DescribeAvailabilityZones",
    "ec2:DescribeInstances",
    "ec2:DescribeInternetGateways",
    "ec2:DescribeIpamPools",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeRouteTables",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSubnets",
    "ec2:DescribeTags",
    "ec2:DescribeVpcPeeringConnections",
    "ec2:DescribeVpcs",
    "elasticloadbalancing:DescribeCapacityReservation",
    "elasticloadbalancing:DescribeListenerAttributes",
    "elasticloadbalancing:DescribeListenerCertificates",
    "elasticloadbalancing:DescribeListeners",
    "elasticloadbalancing:DescribeLoadBalancerAttributes",
    "elasticloadbalancing:DescribeLoadBalancers",
    "elasticloadbalancing:DescribeRules",
    "elasticloadbalancing:DescribeSSLPolicies",
    "elasticloadbalancing:DescribeTags",
    "elasticloadbalancing:DescribeTargetGroupAttributes",
    "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeTargetHealth",
    "elasticloadbalancing:DescribeTrustStores",
)
LOAD_BALANCER_CHANGES: Final = (
    "elasticloadbalancing:DeleteLoadBalancer",
    "elasticloadbalancing:DeleteTargetGroup",
    "elasticloadbalancing:ModifyCapacityReservation",
    "elasticloadbalancing:ModifyIpPools",
    "elasticloadbalancing:ModifyListenerAttributes",
    "elasticloadbalancing:ModifyLoadBalancerAttributes",
    "elasticloadbalancing:ModifyTargetGroup",
    "elasticloadbalancing:ModifyTargetGroupAttributes",
    "elasticloadbalancing:SetIpAddressType",
    "elasticloadbalancing:SetSecurityGroups",
    "elasticloadbalancing:SetSubnets",
)
LOAD_BALANCER_LISTENERS: Final = (
    "elasticloadbalancing:AddListenerCertificates",
    "elasticloadbalancing:CreateListener",
    "elasticloadbalancing:CreateRule",
    "elasticloadbalancing:DeleteListener",
    "elasticloadbalancing:DeleteRule",
    "elasticloadbalancing:ModifyListener",
    "elasticloadbalancing:ModifyRule",
    "elasticloadbalancing:RemoveListenerCertificates",
    "elasticloadbalancing:SetRulePriorities",
)
CLUSTER_TAG: Final = "elbv2.k8s.aws/cluster"


def load_balancer_controller_policy(
    *, partition: str, account_id: str, region: str, vpc_id: str
) -> PolicyDocument:
    """The AWS Load Balancer Controller's reference policy (docs/install/iam_policy.json at
    v3.5.0), narrowed: this account and region, security group rules only in the cluster's VPC,
    and without what the platform turns off (WAF, Shield, Cognito, IAM server certificates),
    leaves to the account (the ELB service-linked role) or never runs on (Outposts' pools).
    Everything it creates carries the `elbv2.k8s.aws/cluster` tag, and it changes only what
    does."""
    ec2 = f"arn:{partition}:ec2:{region}:{account_id}"
    elb = f"arn:{partition}:elasticloadbalancing:{region}:{account_id}"
    balancers = [
        f"{elb}:targetgroup/*/*",
        f"{elb}:loadbalancer/net/*/*",
        f"{elb}:loadbalancer/app/*/*",
    ]
    tagged = {"Null": {f"aws:ResourceTag/{CLUSTER_TAG}": "false"}}
    tagging = {"Null": {f"aws:RequestTag/{CLUSTER_TAG}": "false"}}
    retagging = {
        "Null": {f"aws:RequestTag/{CLUSTER_TAG}": "true", f"aws:ResourceTag/{CLUSTER_TAG}": "false"}
    }
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                # Describe and list calls take no resource-level scoping.
                "Sid": "Discover",
                "Effect": "Allow",
                "Action": list(LOAD_BALANCER_READS),
                "Resource": "*",
            },
            {
                "Sid": "ReadCertificatesAndVpcGroups",
                "Effect": "Allow",
                "Action": ["acm:DescribeCertificate", "ec2:GetSecurityGroupsForVpc"],
                "Resource": [
                    f"arn:{partition}:acm:{region}:{account_id}:certificate/*",
                    f"{ec2}:security-group/*",
                    f"{ec2}:vpc/{vpc_id}",
                ],
            },
            {
                # Backend rules on the nodes' security groups, which it did not create.
                "Sid": "BackendRulesInTheClustersVpc",
                "Effect": "Allow",
                "Action": ["ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"],
                "Resource": f"{ec2}:security-group/*",
                "Condition": {"ArnEquals": {"ec2:Vpc": f"{ec2}:vpc/{vpc_id}"}},
            },
            {
                "Sid": "CreateSecurityGroupsInTheClustersVpc",
                "Effect": "Allow",
                "Action": "ec2:CreateSecurityGroup",
                "Resource": [f"{ec2}:security-group/*", f"{ec2}:vpc/{vpc_id}"],
            },
            {
                "Sid": "TagSecurityGroupsItCreates",
                "Effect": "Allow",
                "Action": "ec2:CreateTags",
                "Resource": f"{ec2}:security-group/*",
                "Condition": {
                    "StringEquals": {"ec2:CreateAction": "CreateSecurityGroup"},
                    **tagging,
                },
            },
            {
                "Sid": "RetagOwnSecurityGroups",
                "Effect": "Allow",
                "Action": ["ec2:CreateTags", "ec2:DeleteTags"],
                "Resource": f"{ec2}:security-group/*",
                "Condition": retagging,
            },
            {
                "Sid": "ManageOwnSecurityGroups",
                "Effect": "Allow",
                "Action": [
                    "ec2:AuthorizeSecurityGroupIngress",
                    "ec2:DeleteSecurityGroup",
                    "ec2:RevokeSecurityGroupIngress",
                ],
                "Resource": f"{ec2}:security-group/*",
                "Condition": tagged,
            },
            {
                "Sid": "CreateTaggedLoadBalancers",
                "Effect": "Allow",
                "Action": [
                    "elasticloadbalancing:CreateLoadBalancer",
                    "elasticloadbalancing:CreateTargetGroup",
                ],
                "Resource": balancers,
                "Condition": tagging,
            },
            {
                "Sid": "TagWhatItCreates",
                "Effect": "Allow",
                "Action": "elasticloadbalancing:AddTags",
                "Resource": balancers,
                "Condition": {
                    "StringEquals": {
                        "elasticloadbalancing:CreateAction": [
                            "CreateTargetGroup",
                            "CreateLoadBalancer",
                        ]
                    },
                    **tagging,
                },
            },
            {
                "Sid": "RetagOwnLoadBalancers",
                "Effect": "Allow",
                "Action": ["elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"],
                "Resource": balancers,
                "Condition": retagging,
            },
            {
                "Sid": "ChangeOwnLoadBalancers",
                "Effect": "Allow",
                "Action": list(LOAD_BALANCER_CHANGES),
                "Resource": "*",
                "Condition": tagged,
            },
            {
                "Sid": "ListenersAndRules",
                "Effect": "Allow",
                "Action": list(LOAD_BALANCER_LISTENERS),
                "Resource": [
                    f"{elb}:loadbalancer/app/*/*",
                    f"{elb}:listener/app/*/*/*",
                    f"{elb}:listener-rule/app/*/*/*",
                    f"{elb}:loadbalancer/net/*/*",
                    f"{elb}:listener/net/*/*/*",
                    f"{elb}:listener-rule/net/*/*/*",
                ],
            },
            {
                "Sid": "TagListenersAndRules",
                "Effect": "Allow",
                "Action": ["elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"],
                "Resource": [
                    f"{elb}:listener/app/*/*/*",
                    f"{elb}:listener-rule/app/*/*/*",
                    f"{elb}:listener/net/*/*/*",
                    f"{elb}:listener-rule/net/*/*/*",
                ],
            },
            {
                "Sid": "RegisterPodTargets",
                "Effect": "Allow",
                "Action": [
                    "elasticloadbalancing:DeregisterTargets",
                    "elasticloadbalancing:RegisterTargets",
                ],
                "Resource": f"{elb}:targetgroup/*/*",
            },
        ],
    }


def prometheus_remote_write_policy(workspace_arn: str) -> PolicyDocument:
    """Write samples into the platform's workspace, and nothing else."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "WriteThePlatformsWorkspace",
                "Effect": "Allow",
                "Action": "aps:RemoteWrite",
                "Resource": workspace_arn,
            }
        ],
    }


def team_workload_boundary(
    *,
    team: str,
    cluster_arn: str,
    region: str,
    bucket_arns: Sequence[str],
    key_arn: str,
    tracking_server_arn: str | None,
) -> PolicyDocument:
    """The most a role a team makes may ever do: read the platform's artifact buckets (models,
    registry versions) through their key, and read the MLflow registry. Every grant holds only
    for a Pod Identity session of the team's namespace in the platform's cluster (the session
    tags EKS sets), so a role the team trusted to anything else could do nothing with it."""
    from_team_pods = {
        "StringEquals": {
            "aws:PrincipalTag/kubernetes-namespace": team,
            "aws:PrincipalTag/eks-cluster-arn": cluster_arn,
        }
    }
    statements: list[dict[str, Any]] = [
        {
            "Sid": "ReadArtifacts",
            "Effect": "Allow",
            "Action": [*S3_READ, "s3:GetBucketLocation", "s3:ListBucket"],
            "Resource": sorted([*bucket_arns, *(f"{arn}/*" for arn in bucket_arns)]),
            "Condition": from_team_pods,
        },
        {
            "Sid": "DecryptArtifactsThroughS3",
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:DescribeKey"],
            "Resource": key_arn,
            "Condition": {
                "StringEquals": {
                    **from_team_pods["StringEquals"],
                    "kms:ViaService": f"s3.{region}.amazonaws.com",
                }
            },
        },
    ]
    if tracking_server_arn is not None:
        statements.append(
            {
                "Sid": "ReadTheModelRegistry",
                "Effect": "Allow",
                "Action": sorted(MLFLOW_READ),
                "Resource": tracking_server_arn,
                "Condition": from_team_pods,
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}
