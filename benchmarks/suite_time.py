"""The README's test command, timed as a whole process.

    python -m benchmarks.suite_time [--runs 1]

Run it on an otherwise idle machine: the target is under 60 s on 2 cores.
"""

from __future__ import annotations

import argparse
import sys

from benchmarks.common import process_seconds

TEST_COMMAND = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=1)
    runs = parser.parse_args().runs
    seconds = process_seconds(TEST_COMMAND, runs)
    print(f"{' '.join(['python', *TEST_COMMAND[1:]])}: {seconds:.1f} s (median of {runs})")


if __name__ == "__main__":
    main()
