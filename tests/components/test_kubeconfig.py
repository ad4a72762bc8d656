"""The kubeconfig as plain data: exec auth through `aws eks get-token`, no credential inside."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.kubeconfig import kubeconfig


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(
        kubeconfig("ml", "https://x.eks.amazonaws.com", "Q0E=", "eu-west-1")
    )
    return loaded


def test_kubeconfig_points_its_only_context_at_its_cluster(config: dict[str, Any]) -> None:
    assert config["current-context"] == "ml"
    assert config["contexts"] == [{"name": "ml", "context": {"cluster": "ml", "user": "ml"}}]
    assert config["clusters"] == [
        {
            "name": "ml",
            "cluster": {
                "server": "https://x.eks.amazonaws.com",
                "certificate-authority-data": "Q0E=",
            },
        }
    ]


def test_kubeconfig_authenticates_with_aws_eks_get_token_for_its_cluster(
    config: dict[str, Any],
) -> None:
    [user] = config["users"]
    assert user["name"] == "ml"
    exec_config = user["user"]["exec"]
    assert exec_config["command"] == "aws"
    assert exec_config["args"] == [
        "eks", "get-token", "--cluster-name", "ml", "--region", "eu-west-1", "--output", "json"
    ]  # fmt: skip
    # Never prompts: it runs under CI and Pulumi's Kubernetes provider.
    assert exec_config["interactiveMode"] == "Never"
    assert exec_config["apiVersion"] == "client.authentication.k8s.io/v1beta1"


def test_kubeconfig_holds_no_token_or_key(config: dict[str, Any]) -> None:
    [user] = config["users"]
    # Whoever uses it authenticates with their own AWS credentials.
    assert set(user["user"]) == {"exec"}
    assert "token" not in json.dumps(config).replace("get-token", "")
