"""Plan wall time per stack, beside the floor of importing the Pulumi SDKs.

    python benchmarks/plan_time.py [--runs 7]

Each figure is the median of --runs fresh processes (what a user or CI waits for), and the
median in-process render time once everything is imported (what the plan itself costs).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from mlops_platform.engine import render_stack
from mlops_platform.project import PulumiProject

ROOT = Path(__file__).resolve().parent.parent
STACKS = ("dev", "staging", "prod")
USED_MODULES = (
    "import pulumi_aws.cloudwatch, pulumi_aws.ec2, pulumi_aws.eks, pulumi_aws.iam, "
    "pulumi_aws.kms, pulumi_aws.s3, pulumi_aws.vpc, pulumi_kubernetes.core.v1, "
    "pulumi_kubernetes.storage.v1, infra.program"
)


def median_seconds(action: Callable[[], object], runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def run(*command: str) -> None:
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    project = PulumiProject.load(ROOT)

    floor = median_seconds(lambda: run(sys.executable, "-c", "import pulumi, pulumi_aws"), runs)
    # pulumi_aws loads service modules lazily; these are the ones the program uses.
    used = median_seconds(lambda: run(sys.executable, "-c", USED_MODULES), runs)
    print(f"median of {runs} runs")
    print(f"{'':28}{'process (s)':>12}{'in-process (s)':>16}{'resources':>11}")
    print(f"{'import pulumi, pulumi_aws':28}{floor:12.2f}")
    print(f"{'import modules used':28}{used:12.2f}")
    with tempfile.TemporaryDirectory() as scratch:
        for stack in STACKS:
            out = str(Path(scratch) / f"{stack}.json")
            command = (
                sys.executable,
                "-m",
                "mlops_platform.cli",
                "plan",
                "--stack",
                stack,
                "--out",
                out,
            )
            process = median_seconds(lambda command=command: run(*command), runs)
            in_process = median_seconds(lambda stack=stack: render_stack(project, stack), runs)
            count = len(render_stack(project, stack).resources)
            print(f"{'plan --stack ' + stack:28}{process:12.2f}{in_process:16.3f}{count:11d}")


if __name__ == "__main__":
    main()
