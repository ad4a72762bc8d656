"""`diff --stack prod --base HEAD` wall time with the base revision's render cached.

    python -m benchmarks.diff_time [--runs 5]

In a scratch clone of HEAD whose prod stack file is edited (so the working tree's render and the
base's are different cache entries), medians of --runs whole processes:
- the first diff against the revision (base rendered by its own code in a worktree, in the
  background, while the working tree renders);
- base cached, working tree cached (a PR comment re-run, or CI after `plan`): renders and
  policy checks read back;
- base cached, working tree rendered and checked (a local edit since the last plan).
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
from mlops_platform.render_cache import CACHE_ENV, render_key, revision_sources

DIFF = [CLI, "diff", "--stack", "prod", "--base", "HEAD"]


def timed(clone: Path, cache: Path, before: Callable[[], object] | None = None) -> float:
    if before is not None:
        before()
    start = time.perf_counter()
    subprocess.run(
        DIFF, cwd=clone, env={**os.environ, CACHE_ENV: str(cache)}, check=True, capture_output=True
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as scratch:
        clone, cache = Path(scratch) / "clone", Path(scratch) / "cache"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        stack_file = clone / "Pulumi.prod.yaml"
        stack_file.write_text(stack_file.read_text() + "# edited\n")
        project = PulumiProject.load(clone)
        commit = subprocess.run(
            ["git", "-C", str(clone), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        main_file = (project.main / "__main__.py").relative_to(clone).as_posix()
        sources = revision_sources(clone, commit, "prod", main_file)
        assert sources is not None
        base_entry = cache / f"{render_key(project.name, 'prod', sources)}.json"

        def keep_only_the_base() -> None:
            # The working tree renders and is checked again; only the base's render is kept.
            for entry in cache.glob("*.json"):
                if entry != base_entry:
                    entry.unlink()

        first = timed(clone, cache)
        both = statistics.median(timed(clone, cache) for _ in range(runs))
        head_only = statistics.median(timed(clone, cache, keep_only_the_base) for _ in range(runs))
    print(f"median of {runs} processes, seconds (diff of prod against HEAD)")
    print(
        table(
            [
                ["first diff against the revision (base rendered in a worktree)", first],
                ["base cached, working tree cached", both],
                ["base cached, working tree rendered and both checked", head_only],
            ],
            ["", "seconds"],
        )
    )


if __name__ == "__main__":
    main()
