"""Plan time and resource count as GPU pools are added: 1 pool against 20, both backends.

    python benchmarks/pool_scaling.py [--runs 5]

Each stack is dev's config with N inference pools on the real infra/ program; the per-pool
figures are the differences from the 1-pool stack divided by 19.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlops_platform.engine import render_stack
from mlops_platform.project import PulumiProject

ROOT = Path(__file__).resolve().parent.parent
POOL = (
    "        pool{n}: {{purpose: inference, instanceTypes: [g6.xlarge, g6.2xlarge], "
    "maxNodes: 2, maxGpus: 2}}\n"
)


def project(directory: Path, pools: int, backend: str) -> PulumiProject:
    (directory / "Pulumi.yaml").write_text(
        f"name: mlops-platform\nruntime: python\nmain: {ROOT / 'infra'}\n"
    )
    (directory / "Pulumi.bench.yaml").write_text(
        "config:\n  aws:region: us-east-1\n  mlops-platform:platform:\n    environment: dev\n"
        '    eks: {endpoint: {publicAccessCidrs: ["203.0.113.0/24"]}}\n'
        f"    gpu:\n      backend: {backend}\n      pools:\n"
        + "".join(POOL.format(n=n) for n in range(pools))
    )
    return PulumiProject.load(directory)


def median(action: object, runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        action()  # type: ignore[operator]
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    print(f"median of {runs} runs")
    print(f"{'backend':22}{'pools':>6}{'resources':>11}{'in-process (s)':>16}{'process (s)':>13}")
    for backend in ("managed-node-groups", "karpenter"):
        figures = {}
        for pools in (1, 20):
            with tempfile.TemporaryDirectory() as scratch:
                bench = project(Path(scratch), pools, backend)
                count = sum(r.custom for r in render_stack(bench, "bench").resources)
                in_process = median(lambda bench=bench: render_stack(bench, "bench"), runs)
                command = [
                    sys.executable,
                    "-m",
                    "mlops_platform.cli",
                    "--project-dir",
                    scratch,
                    "plan",
                    "--stack",
                    "bench",
                ]
                process = median(
                    lambda command=command: subprocess.run(
                        command, check=True, capture_output=True
                    ),
                    runs,
                )
            figures[pools] = (count, in_process)
            print(f"{backend:22}{pools:6d}{count:11d}{in_process:16.3f}{process:13.2f}")
        (count_1, time_1), (count_20, time_20) = figures[1], figures[20]
        print(
            f"{'':22}{'per pool':>6}{(count_20 - count_1) / 19:11.1f}"
            f"{(time_20 - time_1) / 19:16.3f}"
        )


if __name__ == "__main__":
    main()
