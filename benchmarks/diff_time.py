"""`diff --stack prod --base HEAD` wall time with the base revision's render cached.

    python -m benchmarks.diff_time [--runs 5]

Medians of --runs whole processes, in a scratch render cache:
- the first diff against the revision (base rendered by its own code in a worktree);
- base cached, working tree cached (a PR comment re-run, or CI after `plan`);
- base cached, working tree rendered (a local edit since the last plan).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.common import CLI, ROOT, table
from mlops_platform.project import PulumiProject
from mlops_platform.render_cache import CACHE_ENV, render_key, working_tree_sources

DIFF = [CLI, "diff", "--stack", "prod", "--base", "HEAD"]


def timed(cache: Path, before: Callable[[], object] | None = None) -> float:
    if before is not None:
        before()
    start = time.perf_counter()
    subprocess.run(
        DIFF, cwd=ROOT, env={**os.environ, CACHE_ENV: str(cache)}, check=True, capture_output=True
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    project = PulumiProject.load(ROOT)
    head_entry = render_key(project.name, "prod", working_tree_sources(project, "prod"))
    with tempfile.TemporaryDirectory() as scratch:
        cache = Path(scratch)
        first = timed(cache)
        both = statistics.median(timed(cache) for _ in range(runs))
        # Unless the working tree is HEAD itself, its render is a separate entry: drop it.
        head_only = statistics.median(
            timed(cache, lambda: (cache / f"{head_entry}.json").unlink(missing_ok=True))
            for _ in range(runs)
        )
    print(f"median of {runs} processes, seconds (diff of prod against HEAD)")
    print(
        table(
            [
                ["first diff against the revision (base rendered in a worktree)", first],
                ["base cached, working tree cached", both],
                ["base cached, working tree rendered", head_only],
            ],
            ["", "seconds"],
        )
    )


if __name__ == "__main__":
    main()
