"""What the benchmarks share: whole-process medians, the CLI as users run it, synthetic stacks."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The console script users run (`mlops_platform.cli:run`), from the same virtualenv.
CLI = str(Path(sys.executable).with_name("mlops-platform"))


def median_seconds(action: Callable[[], object], runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def process_seconds(command: Sequence[str], runs: int, cwd: Path = ROOT) -> float:
    """Median wall time of a whole process, start to exit, as a user or CI waits for it."""
    return median_seconds(
        lambda: subprocess.run(command, cwd=cwd, check=True, capture_output=True), runs
    )


def synthetic_project(directory: Path, units: int) -> Path:
    """A project running the real program on a dev stack grown from config: each unit adds a
    bucket, a model repository, a Feast view and a workload granted all three."""
    (directory / "Pulumi.yaml").write_text(
        f"name: mlops-platform\nruntime: python\nmain: {ROOT / 'infra'}\n"
    )
    buckets = "".join(f"        b{n}: {{purpose: synthetic data {n}}}\n" for n in range(units))
    repositories = "".join(f"        r{n}: {{}}\n" for n in range(units))
    views = ", ".join(f"v{n}" for n in range(units))
    workloads = "".join(
        f"      w{n}:\n        namespace: research\n        serviceAccount: w{n}\n"
        f"        buckets: [{{bucket: b{n}, access: read}}]\n"
        f"        repositories: {{r{n}: pull}}\n        feastViews: {{v{n}: read}}\n"
        for n in range(units)
    )
    (directory / "Pulumi.synthetic.yaml").write_text(
        "config:\n  aws:region: us-east-1\n  mlops-platform:platform:\n    environment: dev\n"
        "    tags: {owner: benchmarks, cost-center: benchmarks}\n"
        '    eks: {endpoint: {publicAccessCidrs: ["203.0.113.0/24"]}}\n'
        f"    artifacts:\n      buckets:\n{buckets}"
        f"    registries:\n      repositories:\n{repositories}"
        f"    featureStore:\n      feast: {{project: bench, featureViews: [{views}]}}\n"
        f"    workloads:\n{workloads}"
    )
    return directory


def table(rows: Sequence[Sequence[object]], header: Sequence[str]) -> str:
    cells = [
        [str(c) for c in header],
        *([f"{c:.3f}" if isinstance(c, float) else str(c) for c in r] for r in rows),
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join(
        "  ".join(
            cell.rjust(width) if i else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        )
        for row in cells
    )
