"""Experiment tracking and a model registry: a SageMaker managed MLflow tracking server whose
run artifacts live under one prefix of a platform bucket, written by a role scoped to that
prefix and the bucket's key.

The server has no key or network settings of its own (CreateMlflowTrackingServer takes none):
its artifacts are encrypted by the bucket's default SSE-KMS, and clients reach it through the
SageMaker API with IAM (`sagemaker-mlflow:*` actions on its ARN).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.common import account_context, stateful_options
from components.policy_documents import service_trust, tracking_server_policy


@dataclass(frozen=True)
class ExperimentTrackingArgs:
    server_name: str
    """Account- and region-wide, and part of the server's ARN (infra.names checks it)."""
    bucket_name: pulumi.Input[str]
    bucket_arn: pulumi.Input[str]
    prefix: str
    """Where run artifacts go, e.g. `mlflow/`: the server's role reaches nothing else."""
    kms_key_arn: pulumi.Input[str]
    """The bucket's default encryption key, which every artifact is written with."""
    size: str
    maintenance_window: str
    """Weekly start, UTC, as `Sun:03:00`."""
    mlflow_version: str | None
    """major.minor, or None for the version SageMaker picks; changing it replaces the server."""
    automatic_model_registration: bool
    tags: Mapping[str, str]
    protect: bool = False
    """The server holds the experiments, runs and registered models: deleting it loses them."""


class ExperimentTracking(pulumi.ComponentResource):
    TYPE = "mlops:experiment_tracking:ExperimentTracking"

    server_arn: pulumi.Output[str]
    """What clients set as their tracking URI (`mlflow.set_tracking_uri(arn)`)."""
    server_url: pulumi.Output[str]
    artifact_uri: pulumi.Output[str]

    def __init__(
        self, name: str, args: ExperimentTrackingArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(self.TYPE, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        account = account_context(self)
        role = aws.iam.Role(
            f"{name}-role",
            description=f"MLflow tracking server {args.server_name}: its run artifacts",
            assume_role_policy=pulumi.Output.json_dumps(
                account.account_id.apply(lambda a: service_trust("sagemaker.amazonaws.com", a))
            ),
            tags=dict(args.tags),
            opts=child,
        )
        registry = pulumi.Output.all(account.partition, account.region, account.account_id).apply(
            lambda v: f"arn:{v[0]}:sagemaker:{v[1]}:{v[2]}:model-package"
        )
        access = aws.iam.RolePolicy(
            f"{name}-artifacts",
            role=role.id,
            policy=pulumi.Output.json_dumps(
                pulumi.Output.all(
                    args.bucket_arn, args.kms_key_arn, account.region, registry
                ).apply(
                    lambda v: tracking_server_policy(
                        bucket_arn=v[0],
                        prefix=args.prefix,
                        key_arn=v[1],
                        region=v[2],
                        model_registration=v[3] if args.automatic_model_registration else None,
                    )
                )
            ),
            opts=child,
        )
        self.artifact_uri = pulumi.Output.concat("s3://", args.bucket_name, "/", args.prefix)
        server = aws.sagemaker.MlflowTrackingServer(
            f"{name}-server",
            tracking_server_name=args.server_name,
            role_arn=role.arn,
            artifact_store_uri=self.artifact_uri,
            tracking_server_size=args.size,
            weekly_maintenance_window_start=args.maintenance_window,
            mlflow_version=args.mlflow_version,
            automatic_model_registration=args.automatic_model_registration,
            tags=dict(args.tags),
            # The server works as this role from its first start: the grant comes first.
            opts=stateful_options(self, args.protect, depends_on=[access]),
        )
        self.server_arn = server.arn
        self.server_url = server.tracking_server_url
        self.register_outputs(
            {
                "serverArn": self.server_arn,
                "serverUrl": self.server_url,
                "artifactUri": self.artifact_uri,
            }
        )
