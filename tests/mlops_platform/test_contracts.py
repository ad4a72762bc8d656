"""`mlops-platform charts`: the chart contracts in the README, unverified ones marked."""

from __future__ import annotations

import pytest

from mlops_guardrails.charts import CONTRACTS
from mlops_platform.cli import main
from tests.conftest import REPO_ROOT


def test_readme_lists_every_chart_contract_as_the_command_prints_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--project-dir", str(REPO_ROOT), "charts"]) == 0
    table = capsys.readouterr().out
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("<!-- contracts:start -->\n")[1].split("<!-- contracts:end -->")[0]
    assert section == table, "README is stale: paste `mlops-platform charts`"
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert len(rows) == len(CONTRACTS)


def test_a_chart_read_only_in_part_is_marked_unverified(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--project-dir", str(REPO_ROOT), "charts"])
    rows = {
        tuple(cell.strip("|` ") for cell in line.split(" | ")[:2]): line
        for line in capsys.readouterr().out.splitlines()
        if line.startswith("| `")
    }
    marked = {key for key, row in rows.items() if "**no**: read only in part" in row}
    assert marked == {("neuron-helm-chart", "1.1.1")}
    assert marked == {
        (chart, version)
        for (chart, version), contract in CONTRACTS.items()
        if not contract.verified
    }
