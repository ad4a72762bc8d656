"""Arguments the data, monitoring and workload tests hand their components."""

from __future__ import annotations

from typing import Final

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
