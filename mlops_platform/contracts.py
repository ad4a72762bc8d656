"""The chart contracts as the README shows them (`mlops-platform charts`)."""

from __future__ import annotations

from mlops_guardrails.charts import CONTRACTS, ChartContract, supported_kubernetes


def _workloads(contract: ChartContract) -> str:
    return "; ".join(
        f"{w.role} ({w.kind}, {w.pod_security}"
        + ("" if w.enabled_by is None or w.enabled_by_default else ", off by default")
        + ")"
        for w in contract.workloads
    )


def contract_table() -> str:
    """Every chart contract as a Markdown table, unverified ones marked."""
    header = [
        "Chart",
        "Version",
        "Verified",
        "Workloads (Pod Security)",
        "Image",
        "Kubernetes",
        "CRDs",
        "Read at",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for (chart, version), contract in sorted(CONTRACTS.items()):
        cells = [
            f"`{chart}`",
            version,
            "yes" if contract.verified else "**no**: read only in part",
            _workloads(contract),
            f"`{contract.image}`",
            supported_kubernetes(contract),
            ", ".join(contract.crds) or "none",
            contract.source,
        ]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"
