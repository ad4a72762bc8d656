"""`check` wall time beside the pack's own start floor, on this machine, in this run.

    python -m benchmarks.check_time [--runs 7]

Every figure is the median of --runs whole processes:
- pack floor: a process that starts the pack (`policies/__main__.py`, as the Pulumi CLI does),
  connects, and has it answer one analyzer call (GetAnalyzerInfo); it starts the pack before
  loading gRPC, as `check` does;
- `check --plan <stack>.json` for each stack's plan file;
- `check --all-stacks` (cached renders, one pack for all three).
checkov on the same prod resources as a Terraform plan took 4.8 s (issue 12's measurement; not
repeated here).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import CLI, ROOT, process_seconds, table

STACKS = ("dev", "staging", "prod")
PACK_FLOOR = f"""
import subprocess, sys
pack = subprocess.Popen(
    [sys.executable, "__main__.py"], cwd={str(ROOT / "policies")!r}, stdout=subprocess.PIPE
)
import grpc
from google.protobuf.empty_pb2 import Empty
from pulumi.runtime.proto import analyzer_pb2_grpc
port = int(pack.stdout.readline())
channel = grpc.insecure_channel(f"127.0.0.1:{{port}}")
analyzer_pb2_grpc.AnalyzerStub(channel).GetAnalyzerInfo(Empty())
channel.close()
pack.kill()
pack.wait()
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    floor = process_seconds([sys.executable, "-c", PACK_FLOOR], runs)
    rows: list[list[object]] = [["pack floor: start + one analyzer call", floor, "", ""]]
    with tempfile.TemporaryDirectory() as scratch:
        subprocess.run(
            [CLI, "plan", "--all-stacks", "--out", scratch],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        for stack in STACKS:
            plan = Path(scratch) / f"{stack}.json"
            seconds = process_seconds([CLI, "check", "--plan", str(plan)], runs)
            rows.append(
                [
                    f"check --plan {stack}.json",
                    seconds,
                    f"{seconds - floor:+.2f}",
                    f"{4.8 / seconds:.1f}x" if stack == "prod" else "",
                ]
            )
        every = process_seconds([CLI, "check", "--all-stacks"], runs)
        rows.append(["check --all-stacks (cached renders)", every, f"{every - floor:+.2f}", ""])
    print(f"median of {runs} processes, seconds")
    print(table(rows, ["", "seconds", "over floor", "vs checkov 4.8 s"]))


if __name__ == "__main__":
    main()
