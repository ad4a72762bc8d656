"""Workload identities: the pod role in each binding mode, the grant document each kind of data
access produces, and the program turning each configured workload into one role with exactly
the grants it names."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pulumi_aws as aws
import pytest

from components.pod_role import IrsaBinding, PodRole, PodRoleArgs
from components.policy_documents import BucketGrant, RepositoryGrant, TableGrant, workload_policy
from mlops_platform.engine import render_stack
from mlops_platform.project import PulumiProject
from mlops_platform.rendered import RenderedStack
from tests.components.data_fixtures import (
    ACCOUNT,
    BOUNDARY_ARN,
    BUCKET_ARN,
    CLUSTER_ARN,
    CLUSTER_NAME,
    KEY_ARN,
    REGION,
    TAGS,
)
from tests.conftest import named, run_component

ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ASSOCIATION = "aws:eks/podIdentityAssociation:PodIdentityAssociation"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
INLINE = {
    "Version": "2012-10-17",
    "Statement": [
        {"Sid": "Read", "Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{BUCKET_ARN}/*"}
    ],
}
MANAGED = {"cloudwatch": "arn:aws:iam::aws:policy/CloudWatchAgentServerPolicy"}
ISSUER = f"https://oidc.eks.{REGION}.amazonaws.com/id/0123456789ABCDEF0123456789ABCDEF"
IRSA = IrsaBinding(
    oidc_provider_arn=f"arn:aws:iam::{ACCOUNT}:oidc-provider/{ISSUER.removeprefix('https://')}",
    issuer=ISSUER,
)


def role_args(**overrides: object) -> PodRoleArgs:
    defaults: dict[str, object] = {
        "cluster_name": CLUSTER_NAME,
        "cluster_arn": CLUSTER_ARN,
        "namespace": "research",
        "service_account": "trainer",
        "permissions_boundary_arn": BOUNDARY_ARN,
        "tags": TAGS,
        "managed_policy_arns": MANAGED,
        "inline_policy": INLINE,
    }
    return PodRoleArgs(**{**defaults, **overrides})  # type: ignore[arg-type]


def render_role(**overrides: object) -> RenderedStack:
    args = role_args(**overrides)
    return run_component(lambda: PodRole("trainer", args))


@pytest.fixture(scope="module")
def pod_identity() -> RenderedStack:
    return render_role()


@pytest.fixture(scope="module")
def irsa() -> RenderedStack:
    return render_role(irsa=IRSA)


def trust(rendered: RenderedStack, role: str) -> dict[str, Any]:
    [statement] = json.loads(named(rendered, ROLE, role).inputs["assumeRolePolicy"])["Statement"]
    return dict(statement)


def test_a_pod_identity_role_trusts_exactly_its_service_account_on_its_cluster(
    pod_identity: RenderedStack,
) -> None:
    statement = trust(pod_identity, "trainer-role")
    assert statement["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    assert statement["Condition"] == {
        "StringEquals": {
            "aws:SourceAccount": ACCOUNT,
            "aws:RequestTag/kubernetes-namespace": "research",
            "aws:RequestTag/kubernetes-service-account": "trainer",
        },
        "ArnEquals": {"aws:SourceArn": CLUSTER_ARN},
    }
    association = named(pod_identity, ASSOCIATION, "trainer-association")
    role = named(pod_identity, ROLE, "trainer-role")
    assert [association.inputs[k] for k in ("clusterName", "namespace", "serviceAccount")] == [
        CLUSTER_NAME,
        "research",
        "trainer",
    ]
    assert association.inputs["roleArn"] == role.outputs["arn"]


def test_an_irsa_role_trusts_one_subject_and_the_sts_audience_without_an_association(
    irsa: RenderedStack,
) -> None:
    statement = trust(irsa, "trainer-role")
    issuer = ISSUER.removeprefix("https://")
    assert statement["Principal"] == {"Federated": IRSA.oidc_provider_arn}
    assert statement["Condition"] == {
        "StringEquals": {
            f"{issuer}:sub": "system:serviceaccount:research:trainer",
            f"{issuer}:aud": "sts.amazonaws.com",
        }
    }
    assert irsa.of_type(ASSOCIATION) == []


@pytest.mark.parametrize("binding", ["pod_identity", "irsa"])
def test_the_role_is_capped_by_the_boundary_and_tagged_with_its_service_account(
    binding: str, request: pytest.FixtureRequest
) -> None:
    role = named(request.getfixturevalue(binding), ROLE, "trainer-role")
    assert role.inputs["permissionsBoundary"] == BOUNDARY_ARN
    assert role.inputs["tags"] == {**TAGS, "mlops:service-account": "research/trainer"}


def test_the_role_gets_its_inline_policy_and_each_managed_policy(
    pod_identity: RenderedStack,
) -> None:
    role = named(pod_identity, ROLE, "trainer-role")
    inline = named(pod_identity, ROLE_POLICY, "trainer-inline")
    assert json.loads(inline.inputs["policy"]) == INLINE
    assert inline.property_dependencies["role"] == [role.urn]
    attachments = pod_identity.of_type(ATTACHMENT)
    assert {a.name: a.inputs["policyArn"] for a in attachments} == {
        "trainer-cloudwatch": MANAGED["cloudwatch"]
    }
    assert all(a.property_dependencies["role"] == [role.urn] for a in attachments)


def test_a_role_given_no_policies_is_granted_nothing() -> None:
    rendered = render_role(inline_policy=None, managed_policy_arns={})
    assert rendered.of_type(ROLE_POLICY) == []
    assert rendered.of_type(ATTACHMENT) == []


def test_the_role_arn_is_handed_out_only_once_the_role_is_fully_granted() -> None:
    args = role_args()
    rendered = run_component(
        lambda: aws.ssm.Parameter(
            "consumer", type="String", value=PodRole("trainer", args).role_arn
        )
    )
    [pod_role] = rendered.of_type(PodRole.TYPE)
    role_and_grants = rendered.children(pod_role.urn)
    assert sorted(r.name for r in role_and_grants) == [
        "trainer-association",
        "trainer-cloudwatch",
        "trainer-inline",
        "trainer-role",
    ]
    [consumer] = rendered.of_type("aws:ssm/parameter:Parameter")
    assert {r.urn for r in role_and_grants} <= set(consumer.property_dependencies["value"])


@dataclass(frozen=True)
class GrantKind:
    """One kind of data a workload may name, and what reading or writing it takes."""

    argument: str
    """The `workload_policy` argument it is passed in."""
    grant: Callable[[bool], Any]
    """The grant on one fixture resource, given whether it writes."""
    sid: str
    resource: str
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    service: str
    """The service that stores the data and so is the only way to its key."""

    def statements(self, write: bool) -> dict[str, dict[str, Any]]:
        document = workload_policy(region=REGION, **{self.argument: [self.grant(write)]})
        return {s["Sid"]: s for s in document["Statement"]}


REPOSITORY_ARN = f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/images"
GROUP_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:feature-group/activity"
TABLE_ARN = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/recsys.profile"
GRANT_KINDS = [
    pytest.param(
        GrantKind(
            argument="buckets",
            grant=lambda write: BucketGrant(BUCKET_ARN, KEY_ARN, write),
            sid="Objects0",
            resource=f"{BUCKET_ARN}/*",
            reads=("s3:GetObject", "s3:GetObjectVersion"),
            writes=("s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"),
            service="s3",
        ),
        id="bucket",
    ),
    pytest.param(
        GrantKind(
            argument="repositories",
            grant=lambda write: RepositoryGrant(REPOSITORY_ARN, KEY_ARN, write),
            sid="Images0",
            resource=REPOSITORY_ARN,
            reads=(
                "ecr:BatchCheckLayerAvailability",
                "ecr:BatchGetImage",
                "ecr:GetDownloadUrlForLayer",
            ),
            writes=(
                "ecr:CompleteLayerUpload",
                "ecr:InitiateLayerUpload",
                "ecr:PutImage",
                "ecr:UploadLayerPart",
            ),
            service="ecr",
        ),
        id="repository",
    ),
    pytest.param(
        GrantKind(
            argument="feature_groups",
            grant=lambda write: TableGrant(GROUP_ARN, KEY_ARN, write),
            sid="Features0",
            resource=GROUP_ARN,
            reads=("sagemaker:GetRecord", "sagemaker:BatchGetRecord"),
            writes=("sagemaker:PutRecord", "sagemaker:DeleteRecord"),
            service="sagemaker",
        ),
        id="feature-group",
    ),
    pytest.param(
        GrantKind(
            argument="tables",
            grant=lambda write: TableGrant(TABLE_ARN, KEY_ARN, write),
            sid="Table0",
            resource=TABLE_ARN,
            reads=(
                "dynamodb:BatchGetItem",
                "dynamodb:DescribeTable",
                "dynamodb:GetItem",
                "dynamodb:Query",
            ),
            writes=("dynamodb:BatchWriteItem", "dynamodb:PutItem"),
            service="dynamodb",
        ),
        id="feast-table",
    ),
]


@pytest.mark.parametrize("write", [False, True], ids=["read", "write"])
@pytest.mark.parametrize("kind", GRANT_KINDS)
def test_readers_cannot_write_and_writers_can(kind: GrantKind, write: bool) -> None:
    granted = kind.statements(write)[kind.sid]
    assert granted["Action"] == [*kind.reads, *(kind.writes if write else ())]
    assert granted["Resource"] == kind.resource


@pytest.mark.parametrize("write", [False, True], ids=["read", "write"])
@pytest.mark.parametrize("kind", GRANT_KINDS)
def test_key_use_is_only_through_the_service_that_stores_the_data(
    kind: GrantKind, write: bool
) -> None:
    keys = [s for sid, s in kind.statements(write).items() if sid.startswith("Key")]
    assert keys == [
        {
            "Sid": "Key0",
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"] if write else ["kms:Decrypt"],
            "Resource": KEY_ARN,
            "Condition": {
                "StringEquals": {"kms:ViaService": f"{kind.service}.{REGION}.amazonaws.com"}
            },
        }
    ]


@pytest.mark.parametrize("prefix", ["", "runs/"], ids=["whole-bucket", "prefix"])
def test_a_bucket_grant_reaches_only_the_keys_under_its_prefix(prefix: str) -> None:
    document = workload_policy(
        region=REGION, buckets=[BucketGrant(BUCKET_ARN, KEY_ARN, write=True, prefix=prefix)]
    )
    granted = {s["Sid"]: s for s in document["Statement"]}
    assert granted["Objects0"]["Resource"] == f"{BUCKET_ARN}/{prefix}*"
    assert granted["List0"]["Resource"] == BUCKET_ARN
    assert granted["List0"].get("Condition") == (
        {"StringLike": {"s3:prefix": f"{prefix}*"}} if prefix else None
    )


WORKLOADS_STACK = """
config:
  aws:region: eu-west-1
  mlops-platform:platform:
    environment: dev
    eks:
      endpoint: {publicAccessCidrs: ["203.0.113.0/24"]}
      # The teams' own projects create these.
      externalNamespaces: [research, feast]
    registries:
      repositories: {training-images: {}, serving-images: {}}
    featureStore:
      featureGroups:
        activity:
          recordIdentifier: id
          eventTime: at
          features: {id: String, at: String}
      feast: {project: recsys, featureViews: [profile, stats]}
    workloads:
      trainer:
        namespace: research
        serviceAccount: trainer
        buckets:
          - {bucket: datasets}
          - {bucket: models, prefix: runs/, access: read-write}
        repositories: {training-images: pull, serving-images: push}
        featureGroups: {activity: read}
        feastViews: {profile: read-write}
      ingestion:
        namespace: research
        serviceAccount: ingestion
        binding: irsa
        featureGroups: {activity: read-write}
        feastViews: {stats: read}
"""


def test_each_configured_workload_gets_one_role_bound_and_granted_exactly_as_configured(
    make_project: Callable[[str, str], PulumiProject],
) -> None:
    rendered = render_stack(make_project("dev", WORKLOADS_STACK), "dev")

    def arn(type_token: str, name: str) -> str:
        return str(named(rendered, type_token, name).outputs["arn"])

    def granted(workload: str) -> Any:
        inline = named(rendered, ROLE_POLICY, f"workload-{workload}-inline")
        return json.loads(inline.inputs["policy"])

    artifacts, registry, features = (
        arn("aws:kms/key:Key", f"{name}-key") for name in ("artifacts", "registry", "features")
    )
    bucket, repository = "aws:s3/bucket:Bucket", "aws:ecr/repository:Repository"
    table = "aws:dynamodb/table:Table"
    group = arn("aws:sagemaker/featureGroup:FeatureGroup", "sagemaker-features-activity")
    assert granted("trainer") == workload_policy(
        region="eu-west-1",
        buckets=[
            BucketGrant(arn(bucket, "artifacts-datasets-bucket"), artifacts, write=False),
            BucketGrant(
                arn(bucket, "artifacts-models-bucket"), artifacts, write=True, prefix="runs/"
            ),
        ],
        repositories=[
            RepositoryGrant(arn(repository, "registry-serving-images"), registry, push=True),
            RepositoryGrant(arn(repository, "registry-training-images"), registry, push=False),
        ],
        feature_groups=[TableGrant(group, features, write=False)],
        tables=[TableGrant(arn(table, "feast-profile"), features, write=True)],
    )
    assert granted("ingestion") == workload_policy(
        region="eu-west-1",
        feature_groups=[TableGrant(group, features, write=True)],
        tables=[TableGrant(arn(table, "feast-stats"), features, write=False)],
    )

    associations = [a for a in rendered.of_type(ASSOCIATION) if a.name.startswith("workload-")]
    assert [(a.name, a.inputs["namespace"], a.inputs["serviceAccount"]) for a in associations] == [
        ("workload-trainer-association", "research", "trainer")
    ]
    assert trust(rendered, "workload-ingestion-role")["Principal"] == {
        "Federated": rendered.outputs["oidcProviderArn"]
    }
    assert rendered.outputs["workloadRoleArns"] == {
        name: arn(ROLE, f"workload-{name}-role") for name in ("ingestion", "trainer")
    }


def test_every_pod_role_in_every_stack_is_capped_by_the_workload_boundary(
    rendered: RenderedStack,
) -> None:
    boundary = named(rendered, "aws:iam/policy:Policy", "eks-workload-boundary").outputs["arn"]
    pod_roles = rendered.of_type(PodRole.TYPE)
    assert pod_roles
    for pod_role in pod_roles:
        [role] = [r for r in rendered.children(pod_role.urn) if r.type == ROLE]
        assert role.inputs["permissionsBoundary"] == boundary
