"""Plan and check time as a stack grows from config, up to about 5,000 resources.

    python -m benchmarks.scaling [--runs 3] [--units 10 80 160 320]

Each unit adds a bucket, a model repository, a Feast view and a workload granted all three to a
dev stack (about 15 resources; see benchmarks/common.py). For each size: the median of --runs
whole processes of a cold `plan --no-cache` and of `check --plan`, and the cost per resource
between consecutive sizes; linear means that marginal cost stays flat as the stack grows.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from benchmarks.common import CLI, ROOT, process_seconds, synthetic_project, table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--units", type=int, nargs="+", default=[10, 80, 160, 320])
    args = parser.parse_args()
    rows: list[list[object]] = []
    previous: tuple[int, float, float] | None = None
    for units in args.units:
        with tempfile.TemporaryDirectory() as scratch:
            project = synthetic_project(Path(scratch), units)
            plan = project / "plan.json"
            base = [CLI, "--project-dir", str(project)]
            rendered = [*base, "plan", "--stack", "synthetic", "--out", str(plan), "--no-cache"]
            planned = process_seconds(rendered, args.runs, cwd=project)
            resources = sum(
                r["custom"] for r in json.loads(plan.read_text())["deployment"]["resources"]
            )
            # The repository's pack at dev's levels (the plan's environment output).
            checked_command = [CLI, "--project-dir", str(ROOT), "check", "--plan", str(plan)]
            checked = process_seconds(checked_command, args.runs)
        marginal = ["", ""]
        if previous is not None:
            count, plan_seconds, check_seconds = previous
            added = resources - count
            marginal = [
                f"{(planned - plan_seconds) / added * 1000:.2f}",
                f"{(checked - check_seconds) / added * 1000:.2f}",
            ]
        rows.append([units, resources, planned, checked, *marginal])
        previous = (resources, planned, checked)
    print(f"median of {args.runs} processes; marginal = ms per added resource")
    print(table(rows, ["units", "resources", "plan s", "check s", "plan ms/res", "check ms/res"]))


if __name__ == "__main__":
    main()
