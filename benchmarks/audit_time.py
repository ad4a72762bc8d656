"""Audit time against moto: the compliant prod-shaped account, then with 100 more buckets.

    python -m benchmarks.audit_time [--runs 3]   (from the repository root: it reuses the
    moto account the audit tests deploy)

moto answers in-process, so this measures the audit's own work (reading, reshaping, judging by
one already started policy pack), not AWS latency: against AWS each bucket costs six read calls,
each tens of ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any

import moto.eks.models
from moto import mock_aws

from benchmarks.common import ROOT
from mlops_platform.policy_check import PolicyPackServer
from tests.mlops_platform.test_audit import BUCKET, audit_prod, deploy

EXTRA_BUCKETS = 100


def timed(pack: PolicyPackServer, client: Any, runs: int) -> tuple[float, int]:
    samples, checked = [], 0
    for _ in range(runs):
        start = time.perf_counter()
        result = audit_prod(pack, client)
        samples.append(time.perf_counter() - start)
        checked = result.check.resources_checked
    return statistics.median(samples), checked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    runs = parser.parse_args().runs
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "benchmark")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "benchmark")
    os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    moto.eks.models.DEFAULT_REMOTE_ACCESS = {}  # type: ignore[assignment]
    with mock_aws(), PolicyPackServer(ROOT / "policies") as pack:
        account = deploy()
        base, base_checked = timed(pack, account.client, runs)
        s3 = account.client("s3")
        tags = s3.get_bucket_tagging(Bucket=BUCKET)["TagSet"]
        for index in range(EXTRA_BUCKETS):
            name = f"extra-{index:03d}"
            s3.create_bucket(Bucket=name)
            s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": tags})
        grown, grown_checked = timed(pack, account.client, runs)
    per_resource = (grown - base) / (grown_checked - base_checked) * 1000
    print(f"audit, compliant account: {base:.2f} s for {base_checked} resources")
    print(f"audit, +{EXTRA_BUCKETS} buckets: {grown:.2f} s for {grown_checked} resources")
    print(f"marginal cost: {per_resource:.1f} ms per resource read and judged")


if __name__ == "__main__":
    main()
