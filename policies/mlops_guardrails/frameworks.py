"""Compliance frameworks rules cite."""

from __future__ import annotations

from pulumi_policy import PolicyComplianceFramework


def cis_aws(control: str) -> PolicyComplianceFramework:
    return PolicyComplianceFramework(
        name="CIS Amazon Web Services Foundations Benchmark", version="3.0.0", reference=control
    )


def cis_eks(control: str) -> PolicyComplianceFramework:
    return PolicyComplianceFramework(
        name="CIS Amazon Elastic Kubernetes Service (EKS) Benchmark",
        version="1.7.0",
        reference=control,
    )


def aws_fsbp(control: str) -> PolicyComplianceFramework:
    return PolicyComplianceFramework(
        name="AWS Foundational Security Best Practices", version="1.0.0", reference=control
    )
