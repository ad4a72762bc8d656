"""The kubeconfig as plain data."""

from __future__ import annotations

import json

from components.kubeconfig import kubeconfig


def test_kubeconfig_authenticates_with_aws_eks_get_token_for_its_cluster() -> None:
    config = json.loads(kubeconfig("ml", "https://x.eks.amazonaws.com", "Q0E=", "eu-west-1"))
    assert config["current-context"] == "ml"
    assert config["clusters"][0]["cluster"] == {
        "server": "https://x.eks.amazonaws.com",
        "certificate-authority-data": "Q0E=",
    }
    exec_config = config["users"][0]["user"]["exec"]
    assert exec_config["args"] == [
        "eks", "get-token", "--cluster-name", "ml", "--region", "eu-west-1", "--output", "json"
    ]  # fmt: skip
