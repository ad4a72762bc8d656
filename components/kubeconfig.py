"""A kubeconfig for an EKS cluster that authenticates with `aws eks get-token`."""

from __future__ import annotations

import json


def kubeconfig(
    cluster_name: str,
    endpoint: str,
    certificate_authority: str,
    region: str,
    *,
    role_arn: str | None = None,
) -> str:
    """Exec-based auth: whoever uses it needs their own AWS credentials and, unless it names a
    role to assume, an access entry; no token or key is stored in it."""
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": cluster_name,
                    "cluster": {
                        "server": endpoint,
                        "certificate-authority-data": certificate_authority,
                    },
                }
            ],
            "contexts": [
                {"name": cluster_name, "context": {"cluster": cluster_name, "user": cluster_name}}
            ],
            "current-context": cluster_name,
            "users": [
                {
                    "name": cluster_name,
                    "user": {
                        "exec": {
                            "apiVersion": "client.authentication.k8s.io/v1beta1",
                            "command": "aws",
                            "args": [
                                "eks",
                                "get-token",
                                "--cluster-name",
                                cluster_name,
                                "--region",
                                region,
                                "--output",
                                "json",
                                *(["--role-arn", role_arn] if role_arn else []),
                            ],
                            "interactiveMode": "Never",
                        }
                    },
                }
            ],
        },
        indent=2,
    )
