"""CI only: the Prometheus alert rules and alert manager config in each plan pass Prometheus's
own checkers (promtool, amtool), as Amazon Managed Service for Prometheus will parse them.

Usage: python .ci/check_prometheus.py PLAN.json...
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

RULES = "aws:amp/ruleGroupNamespace:RuleGroupNamespace"
ALERT_MANAGER = "aws:amp/alertManagerDefinition:AlertManagerDefinition"


def main(plans: list[str]) -> int:
    failed = 0
    with tempfile.TemporaryDirectory() as scratch:
        for plan in plans:
            resources = json.loads(Path(plan).read_text())["deployment"]["resources"]
            checks = []
            for resource in resources:
                target = Path(scratch) / f"{Path(plan).stem}-{resource['urn'].rsplit('::')[-1]}"
                if resource["type"] == RULES:
                    target.write_text(resource["inputs"]["data"])
                    checks.append(["promtool", "check", "rules", str(target)])
                elif resource["type"] == ALERT_MANAGER:
                    # AMP wraps the alert manager config in `alertmanager_config: |`.
                    definition = yaml.safe_load(resource["inputs"]["definition"])
                    target.write_text(definition["alertmanager_config"])
                    checks.append(["amtool", "check-config", str(target)])
            if len(checks) != 2:
                print(f"{plan}: expected one rule group and one alert manager definition")
                failed += 1
            for command in checks:
                result = subprocess.run(command, capture_output=True, text=True, check=False)
                verdict = "FAILED" if result.returncode else "ok"
                print(f"{plan}: {' '.join(command[:-1])}: {verdict}")
                if result.returncode:
                    print(result.stdout + result.stderr)
                    failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
