"""KEDA: its operator queries the platform's workspace and nothing else, through Pod Identity,
and its three deployments run on the system nodes."""

from __future__ import annotations

import json

import pytest

from components.keda import Keda, KedaArgs
from mlops_guardrails import charts
from mlops_guardrails.vocabulary import POOL_LABEL
from mlops_platform.rendered import RenderedStack
from tests.components.data_fixtures import ACCOUNT, REGION, controller_install
from tests.conftest import run_component

WORKSPACE_ARN = f"arn:aws:aps:{REGION}:{ACCOUNT}:workspace/ws-0123"


@pytest.fixture(scope="module")
def rendered() -> RenderedStack:
    return run_component(
        lambda: Keda(
            "keda",
            KedaArgs(install=controller_install(charts.KEDA), workspace_arn=WORKSPACE_ARN),
        )
    )


def test_the_operator_queries_the_platforms_workspace_only_through_pod_identity(
    rendered: RenderedStack,
) -> None:
    [policy] = rendered.of_type("aws:iam/rolePolicy:RolePolicy")
    [statement] = json.loads(policy.inputs["policy"])["Statement"]
    assert statement["Resource"] == WORKSPACE_ARN
    assert "aps:RemoteWrite" not in statement["Action"]
    [association] = rendered.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
    [release] = rendered.of_type("kubernetes:helm.sh/v3:Release")
    values = release.inputs["values"]
    assert (association.inputs["namespace"], association.inputs["serviceAccount"]) == (
        release.inputs["namespace"],
        values["serviceAccount"]["operator"]["name"],
    )


def test_each_of_its_deployments_runs_on_the_system_nodes(rendered: RenderedStack) -> None:
    [release] = rendered.of_type("kubernetes:helm.sh/v3:Release")
    values = release.inputs["values"]
    for workload in charts.KEDA.workloads:
        assert values[workload.values_path]["nodeSelector"] == {POOL_LABEL: "system"}
