"""`plan` wall time beside the floor it is measured against, on this machine, in this run.

    python -m benchmarks.plan_time [--runs 7]

Every figure is the median of --runs whole processes (what a user or CI waits for):
- SDK floor: a process that only imports the Pulumi SDK modules a prod render loads (listed by
  rendering prod once first) and exits, with the collector set and the exit taken as the CLI
  does them, so the floor and the plan pay the same interpreter costs;
- the same floor as a plain `python -c` (default collector, normal exit), for reference;
- cold `plan --stack <s> --no-cache` per stack, and all three in one process;
- cached `plan --stack prod` (the render read back from .cache/renders).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import CLI, ROOT, process_seconds, table

STACKS = ("dev", "staging", "prod")
SDK_PACKAGES = ("pulumi", "pulumi_aws", "pulumi_kubernetes")
LIST_SDK_MODULES = f"""
import json, sys
from pathlib import Path
from mlops_platform.engine import render_stack
from mlops_platform.project import PulumiProject
render_stack(PulumiProject.load(Path({str(ROOT)!r})), "prod")
print(json.dumps([m for m in sys.modules if m.split(".")[0] in {SDK_PACKAGES!r}]))
"""
IMPORT_ONLY = """
import gc, importlib, json, os, sys
{tuning}
for module in json.loads(open(sys.argv[1]).read()):
    importlib.import_module(module)
{exit}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    modules = json.loads(
        subprocess.run(
            [sys.executable, "-c", LIST_SDK_MODULES], capture_output=True, text=True, check=True
        ).stdout
    )
    with tempfile.TemporaryDirectory() as scratch:
        listing = Path(scratch) / "modules.json"
        listing.write_text(json.dumps(modules))
        tuned = IMPORT_ONLY.format(tuning="gc.set_threshold(200_000, 50, 100)", exit="os._exit(0)")
        plain = IMPORT_ONLY.format(tuning="", exit="")
        floor = process_seconds([sys.executable, "-c", tuned, str(listing)], runs)
        plain_floor = process_seconds([sys.executable, "-c", plain, str(listing)], runs)
        rows: list[list[object]] = [
            [f"SDK floor ({len(modules)} modules, CLI's process settings)", floor, ""],
            ["SDK floor, plain python", plain_floor, ""],
        ]
        out = str(Path(scratch) / "plan.json")
        for stack in STACKS:
            cold = process_seconds(
                [CLI, "plan", "--stack", stack, "--out", out, "--no-cache"], runs
            )
            rows.append([f"cold plan --stack {stack}", cold, f"{cold - floor:+.2f}"])
        every = process_seconds([CLI, "plan", "--all-stacks", "--out", scratch, "--no-cache"], runs)
        rows.append(["cold plan --all-stacks (one process)", every, f"{every - floor:+.2f}"])
        subprocess.run([CLI, "plan", "--stack", "prod"], cwd=ROOT, check=True, capture_output=True)
        cached = process_seconds([CLI, "plan", "--stack", "prod", "--out", out], runs)
        rows.append(["cached plan --stack prod", cached, ""])
    print(f"median of {runs} processes, seconds; last column: over the SDK floor")
    print(table(rows, ["", "seconds", "over floor"]))


if __name__ == "__main__":
    main()
