"""Workload roles in each stack's plan: one service account each, grants exactly as configured."""

from __future__ import annotations

import json
from typing import Any

from mlops_platform.rendered import RenderedStack
from tests.conftest import named


def trust(rendered: RenderedStack, workload: str) -> dict[str, Any]:
    [statement] = json.loads(
        named(rendered, "aws:iam/role:Role", f"workload-{workload}-role").inputs["assumeRolePolicy"]
    )["Statement"]
    return dict(statement)


def grants(rendered: RenderedStack, workload: str) -> dict[str, Any]:
    policy = json.loads(
        named(rendered, "aws:iam/rolePolicy:RolePolicy", f"workload-{workload}-inline").inputs[
            "policy"
        ]
    )
    return {s["Sid"]: s for s in policy["Statement"]}


def test_pod_identity_workloads_trust_exactly_their_service_account(
    rendered: RenderedStack,
) -> None:
    for workload, (namespace, account) in {
        "trainer": ("research", "trainer"),
        "model-server": ("serving", "model-server"),
    }.items():
        condition = trust(rendered, workload)["Condition"]["StringEquals"]
        assert condition["aws:RequestTag/kubernetes-namespace"] == namespace
        assert condition["aws:RequestTag/kubernetes-service-account"] == account
        association = named(
            rendered,
            "aws:eks/podIdentityAssociation:PodIdentityAssociation",
            f"workload-{workload}-association",
        )
        assert (association.inputs["namespace"], association.inputs["serviceAccount"]) == (
            namespace,
            account,
        )


def test_an_irsa_workload_trusts_one_subject_and_the_sts_audience(rendered: RenderedStack) -> None:
    statement = trust(rendered, "feature-ingestion")
    issuer = rendered.outputs["oidcIssuerUrl"].removeprefix("https://")
    assert statement["Principal"] == {"Federated": rendered.outputs["oidcProviderArn"]}
    assert statement["Condition"] == {
        "StringEquals": {
            f"{issuer}:sub": "system:serviceaccount:research:feature-ingestion",
            f"{issuer}:aud": "sts.amazonaws.com",
        }
    }
    assert not [
        a
        for a in rendered.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
        if a.name.startswith("workload-feature-ingestion")
    ]


def test_every_workload_role_has_the_permissions_boundary(rendered: RenderedStack) -> None:
    boundary = named(rendered, "aws:iam/policy:Policy", "eks-workload-boundary").outputs["arn"]
    for workload in ("trainer", "model-server", "feature-ingestion"):
        role = named(rendered, "aws:iam/role:Role", f"workload-{workload}-role")
        assert role.inputs["permissionsBoundary"] == boundary


def test_the_trainer_gets_exactly_what_it_names(rendered: RenderedStack) -> None:
    granted = grants(rendered, "trainer")
    buckets = {
        k: b.outputs["arn"]
        for k, b in (
            (b.name.removeprefix("artifacts-").removesuffix("-bucket"), b)
            for b in rendered.of_type("aws:s3/bucket:Bucket")
        )
    }
    assert granted["Objects0"]["Resource"] == f"{buckets['datasets']}/*"
    assert "s3:PutObject" not in granted["Objects0"]["Action"]
    assert granted["Objects1"]["Resource"] == f"{buckets['models']}/runs/*"
    assert "s3:PutObject" in granted["Objects1"]["Action"]
    assert granted["List1"]["Condition"] == {"StringLike": {"s3:prefix": "runs/*"}}
    assert granted["Images0"]["Action"] == [
        "ecr:BatchCheckLayerAvailability",
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
    ]
    assert granted["Features0"]["Action"] == ["sagemaker:GetRecord", "sagemaker:BatchGetRecord"]
    resources = {json.dumps(s["Resource"]) for s in granted.values()}
    assert not any("serving-images" in r or "access-logs" in r for r in resources)


def test_key_use_is_only_through_the_service_that_stores_the_data(rendered: RenderedStack) -> None:
    for workload in ("trainer", "model-server", "feature-ingestion"):
        keys = [s for sid, s in grants(rendered, workload).items() if sid.startswith("Key")]
        assert keys
        for statement in keys:
            service = statement["Condition"]["StringEquals"]["kms:ViaService"]
            assert service.split(".")[0] in {"s3", "ecr", "sagemaker", "dynamodb"}
            assert set(statement["Action"]) <= {"kms:Decrypt", "kms:GenerateDataKey"}


def test_readers_cannot_write_and_writers_can(rendered: RenderedStack) -> None:
    server = grants(rendered, "model-server")
    assert not [s for s in server.values() if "dynamodb:BatchWriteItem" in s["Action"]]
    ingestion = grants(rendered, "feature-ingestion")
    assert any("sagemaker:PutRecord" in s["Action"] for s in ingestion.values())
    assert any("dynamodb:BatchWriteItem" in s["Action"] for s in ingestion.values())


def test_role_arns_are_stack_outputs(rendered: RenderedStack) -> None:
    assert sorted(rendered.outputs["workloadRoleArns"]) == [
        "feature-ingestion",
        "model-server",
        "trainer",
    ]
