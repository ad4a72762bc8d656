"""Arguments the data, monitoring and workload tests hand their components."""

from __future__ import annotations

from typing import Final

from components.helm import ControllerInstall
from mlops_guardrails.charts import ChartContract
from mlops_guardrails.vocabulary import POOL_LABEL
from mlops_platform.mock_cloud import MOCK_ACCOUNT_ID

REGION: Final = "eu-west-1"
"""Where `run_component` deploys (its `aws:region`)."""
ACCOUNT: Final = MOCK_ACCOUNT_ID
"""The account the mock cloud answers `getCallerIdentity` with."""

KEY_ARN: Final = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/11111111-2222-4333-8444-555555555555"
TOPIC_ARN: Final = f"arn:aws:sns:{REGION}:{ACCOUNT}:alerts"
CLUSTER_NAME: Final = "ml-cluster"
CLUSTER_ARN: Final = f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/{CLUSTER_NAME}"
BOUNDARY_ARN: Final = f"arn:aws:iam::{ACCOUNT}:policy/workload-boundary"
BUCKET_NAME: Final = "feature-data"
BUCKET_ARN: Final = f"arn:aws:s3:::{BUCKET_NAME}"
TAGS: Final = {"owner": "ml-platform"}


def controller_install(chart: ChartContract) -> ControllerInstall:
    """A platform controller's chart on the fixture cluster, on its system nodes."""
    return ControllerInstall(
        chart=chart,
        cluster_name=CLUSTER_NAME,
        cluster_arn=CLUSTER_ARN,
        permissions_boundary_arn=BOUNDARY_ARN,
        node_selector={POOL_LABEL: "system"},
        install_after=(),
        tags=TAGS,
    )
