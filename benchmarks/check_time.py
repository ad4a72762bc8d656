"""Policy check time: the prod stack, and synthetic plans of 500 and 5,000 resources.

    python benchmarks/check_time.py [--runs 5]

Synthetic plans repeat the prod plan's resources under new names, links included, so stack rules
see as many buckets and guard resources as there are copies. Linear cost means the per-resource
time stays flat as the plan grows tenfold.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from mlops_platform.engine import STACK_TYPE, render_stack
from mlops_platform.policy_check import PolicyPackServer, StackView, run_check
from mlops_platform.project import PulumiProject

ROOT = Path(__file__).resolve().parent.parent
PACK = ROOT / "policies"
PROD_CONFIG = json.loads((PACK / "config" / "prod.json").read_text())

Resource = dict[str, Any]


def synthetic(resources: list[Resource], size: int) -> list[Resource]:
    """At least `size` custom resources: copies of the plan with every URN suffixed per copy."""
    shared = [
        r for r in resources if r["type"] == STACK_TYPE or r["type"].startswith("pulumi:providers:")
    ]
    own = [r for r in resources if r not in shared]
    per_copy = sum(1 for r in own if r["custom"])
    plan = list(shared)
    for copy in range((size + per_copy - 1) // per_copy):
        renamed = {r["urn"]: f"{r['urn']}-{copy}" for r in own}
        text = json.dumps(own)
        for old, new in renamed.items():
            text = text.replace(f'"{old}"', f'"{new}"')
        plan += json.loads(text)
    return plan


def median(action: Any, runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    prod = render_stack(PulumiProject.load(ROOT), "prod").to_deployment()["deployment"]["resources"]

    cold = median(lambda: run_check(PACK, prod, PROD_CONFIG, "prod.json"), runs)
    print(f"median of {runs} runs")
    print(f"{'plan':32}{'resources':>10}{'seconds':>10}{'ms/resource':>13}")
    print(f"{'prod, pack start included':32}{len(StackView(prod).analyzed):10d}{cold:10.2f}")
    with PolicyPackServer(PACK) as server:
        for label, plan in (
            ("prod", prod),
            ("synthetic 500", synthetic(prod, 500)),
            ("synthetic 5,000", synthetic(prod, 5000)),
        ):
            count = len(StackView(plan).analyzed)
            seconds = median(lambda plan=plan: server.check(plan, PROD_CONFIG, "prod.json"), runs)
            print(f"{label:32}{count:10d}{seconds:10.2f}{1000 * seconds / count:13.2f}")


if __name__ == "__main__":
    main()
