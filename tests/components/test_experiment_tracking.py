"""The managed MLflow tracking server: its artifacts, its role, and what a protected stack keeps."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.experiment_tracking import ExperimentTracking, ExperimentTrackingArgs
from mlops_platform.rendered import RenderedStack
from tests.components.data_fixtures import ACCOUNT, BUCKET_ARN, BUCKET_NAME, KEY_ARN, REGION, TAGS
from tests.conftest import run_component

SERVER = "aws:sagemaker/mlflowTrackingServer:MlflowTrackingServer"


def tracking(**overrides: Any) -> RenderedStack:
    args: dict[str, Any] = {
        "server_name": "ml-cluster-mlflow",
        "bucket_name": BUCKET_NAME,
        "bucket_arn": BUCKET_ARN,
        "prefix": "mlflow/",
        "kms_key_arn": KEY_ARN,
        "size": "Small",
        "maintenance_window": "Sun:03:00",
        "mlflow_version": None,
        "automatic_model_registration": False,
        "tags": TAGS,
        **overrides,
    }
    return run_component(lambda: ExperimentTracking("tracking", ExperimentTrackingArgs(**args)))


@pytest.fixture(scope="module")
def plain() -> RenderedStack:
    return tracking()


@pytest.fixture(scope="module")
def registering() -> RenderedStack:
    return tracking(automatic_model_registration=True, mlflow_version="3.0", protect=True)


def statements(rendered: RenderedStack) -> dict[str, dict[str, Any]]:
    [policy] = rendered.of_type("aws:iam/rolePolicy:RolePolicy")
    return {s["Sid"]: s for s in json.loads(policy.inputs["policy"])["Statement"]}


def test_the_server_keeps_artifacts_under_its_prefix_and_patches_in_its_window(
    plain: RenderedStack,
) -> None:
    [server] = plain.of_type(SERVER)
    assert server.inputs["artifactStoreUri"] == f"s3://{BUCKET_NAME}/mlflow/"
    assert server.inputs["trackingServerName"] == "ml-cluster-mlflow"
    assert server.inputs["weeklyMaintenanceWindowStart"] == "Sun:03:00"
    assert server.inputs["trackingServerSize"] == "Small"
    # SageMaker picks the version: left out, not sent as null.
    assert "mlflowVersion" not in server.inputs


def test_the_role_reaches_the_prefix_and_the_key_only_through_s3(plain: RenderedStack) -> None:
    found = statements(plain)
    assert set(found) == {"ArtifactObjects", "ArtifactBucket", "ArtifactKey"}
    assert found["ArtifactObjects"]["Resource"] == f"{BUCKET_ARN}/mlflow/*"
    assert found["ArtifactKey"]["Condition"] == {
        "StringEquals": {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}
    }
    [role] = plain.of_type("aws:iam/role:Role")
    [trust] = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert trust["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}


def test_the_server_waits_for_its_grant_and_is_unprotected_by_default(
    plain: RenderedStack,
) -> None:
    [server] = plain.of_type(SERVER)
    [policy] = plain.of_type("aws:iam/rolePolicy:RolePolicy")
    assert policy.urn in server.dependencies
    assert (server.protect, server.retain_on_delete) == (False, False)


def test_automatic_registration_may_write_the_accounts_model_packages_only(
    registering: RenderedStack,
) -> None:
    registry = statements(registering)["ModelRegistry"]
    packages = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package"
    assert registry["Resource"] == [f"{packages}-group/*", f"{packages}/*"]
    [server] = registering.of_type(SERVER)
    assert server.inputs["automaticModelRegistration"] is True
    assert server.inputs["mlflowVersion"] == "3.0"


def test_a_protected_stack_keeps_the_server_and_its_experiments(registering: RenderedStack) -> None:
    [server] = registering.of_type(SERVER)
    assert (server.protect, server.retain_on_delete) == (True, True)
