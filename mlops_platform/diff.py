"""What a change does to a stack: the plan at a base git revision against the working tree.

The base is rendered by its own code (a detached worktree, its own `infra/` and `components/`),
so a refactor shows as the resource changes it really causes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from components.accelerators import INSTANCE_TYPES, RESOURCE_NAMES

# Properties whose change makes the provider replace the resource (delete and create), from the
# pulumi-aws schema's ForceNew fields for the types this platform creates. The SDK does not
# expose them, so they are listed here; a path matches a listed property or anything under it.
REPLACE_ON_CHANGE: Final[dict[str, tuple[str, ...]]] = {
    "aws:s3/bucket:Bucket": ("bucket", "bucketPrefix", "objectLockEnabled"),
    "aws:kms/key:Key": ("customerMasterKeySpec", "keyUsage", "multiRegion"),
    "aws:eks/cluster:Cluster": (
        "name", "vpcConfig.subnetIds", "kubernetesNetworkConfig", "outpostConfig",
    ),
    "aws:eks/nodeGroup:NodeGroup": (
        "amiType", "capacityType", "clusterName", "instanceTypes", "nodeGroupName",
        "nodeRoleArn", "subnetIds", "remoteAccess",
    ),
    "aws:ec2/vpc:Vpc": ("cidrBlock",),
    "aws:ec2/subnet:Subnet": ("cidrBlock", "availabilityZone", "vpcId"),
    "aws:dynamodb/table:Table": ("name", "hashKey", "rangeKey"),
    "aws:ecr/repository:Repository": ("name",),
    "aws:sagemaker/featureGroup:FeatureGroup": (
        "featureGroupName", "featureDefinitions", "recordIdentifierFeatureName",
        "eventTimeFeatureName", "offlineStoreConfig", "roleArn",
    ),
    "aws:cloudwatch/logGroup:LogGroup": ("name", "namePrefix", "kmsKeyId"),
    "aws:glue/catalogDatabase:CatalogDatabase": ("name",),
    "aws:iam/role:Role": ("name", "namePrefix", "path"),
    "aws:sns/topic:Topic": ("name", "namePrefix", "fifoTopic"),
    "aws:budgets/budget:Budget": ("name", "namePrefix", "accountId"),
    "aws:amp/workspace:Workspace": ("kmsKeyArn",),
    "aws:amp/scraper:Scraper": ("source",),
    "aws:amp/ruleGroupNamespace:RuleGroupNamespace": ("name", "workspaceId"),
}  # fmt: skip
PRICES_FILE: Final = Path(__file__).with_name("prices.json")
HOURS_PER_MONTH: Final = 730


class DiffError(Exception):
    """The base revision cannot be found or rendered; the message says which and why."""


@dataclass(frozen=True)
class PropertyChange:
    path: str
    before: Any
    after: Any
    replaces: bool


@dataclass
class ResourceChange:
    urn: str
    type: str
    kind: str
    """added, removed or changed."""
    protected: bool
    properties: list[PropertyChange] = field(default_factory=list)

    @property
    def replaces(self) -> bool:
        return any(p.replaces for p in self.properties)


def render_revision(root: Path, revision: str, stack: str) -> list[dict[str, Any]]:
    """The stack's plan as the code at `revision` renders it."""
    with tempfile.TemporaryDirectory() as scratch:
        tree = Path(scratch) / "tree"
        added = subprocess.run(
            ["git", "-C", str(root), "worktree", "add", "--detach", str(tree), revision],
            capture_output=True,
            text=True,
            check=False,
        )
        if added.returncode != 0:
            raise DiffError(f"base revision {revision!r} not found: {added.stderr.strip()}")
        try:
            out = Path(scratch) / "plan.json"
            rendered = subprocess.run(
                [sys.executable, "-m", "mlops_platform.cli", "--project-dir", str(tree),
                 "plan", "--stack", stack, "--out", str(out)],
                cwd=tree,
                env={**os.environ, "PYTHONPATH": str(tree)},
                capture_output=True,
                text=True,
                check=False,
            )  # fmt: skip
            if rendered.returncode != 0:
                detail = "\n".join(rendered.stderr.strip().splitlines()[-10:])
                raise DiffError(
                    f"base revision {revision!r} does not render stack {stack}:\n{detail}"
                )
            resources: list[dict[str, Any]] = json.loads(out.read_text())["deployment"]["resources"]
            return resources
        finally:
            subprocess.run(
                ["git", "-C", str(root), "worktree", "remove", "--force", str(tree)],
                capture_output=True,
                check=False,
            )


def flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict) and value:
        for key in sorted(value):
            yield from flatten(value[key], f"{prefix}.{key}" if prefix else key)
    elif isinstance(value, list) and value and any(isinstance(v, (dict, list)) for v in value):
        for index, item in enumerate(value):
            yield from flatten(item, f"{prefix}[{index}]")
    else:
        yield prefix, value


def _replaces(type_token: str, path: str) -> bool:
    return any(
        path == prop or path.startswith((f"{prop}.", f"{prop}["))
        for prop in REPLACE_ON_CHANGE.get(type_token, ())
    )


def compare(
    before: Sequence[Mapping[str, Any]], after: Sequence[Mapping[str, Any]]
) -> list[ResourceChange]:
    """Added, removed and changed custom resources, property by property."""
    old = {r["urn"]: r for r in before if r.get("custom")}
    new = {r["urn"]: r for r in after if r.get("custom")}
    changes = []
    for urn in sorted(old.keys() | new.keys()):
        if str(urn).split("::")[2].startswith("pulumi:providers:"):
            continue
        was, now = old.get(urn), new.get(urn)
        if was is None or now is None:
            resource = now or was
            assert resource is not None
            kind = "added" if was is None else "removed"
            changes.append(
                ResourceChange(urn, resource["type"], kind, bool(resource.get("protect")))
            )
            continue
        before_props = dict(flatten(was.get("inputs", {})))
        after_props = dict(flatten(now.get("inputs", {})))
        properties = [
            PropertyChange(
                path, before_props.get(path), after_props.get(path), _replaces(now["type"], path)
            )
            for path in sorted(before_props.keys() | after_props.keys())
            if before_props.get(path) != after_props.get(path)
        ]
        if properties:
            changes.append(
                ResourceChange(urn, now["type"], "changed", bool(was.get("protect")), properties)
            )
    return changes


@dataclass(frozen=True)
class Capacity:
    gpu_ceiling: int
    monthly_floor: float
    """Estimated USD per month with every pool at its minimum size."""
    monthly_ceiling: float
    """Estimated USD per month with every pool at its maximum size."""
    unpriced: tuple[str, ...] = ()
    """Instance types the price table lacks, left out of the estimate."""


def capacity(resources: Sequence[Mapping[str, Any]], prices: Mapping[str, Any]) -> Capacity:
    """Accelerator ceiling and a node-cost estimate from a plan and a price table.

    A managed node group costs its cheapest instance type times its minimum and maximum size. A
    Karpenter pool scales to zero, and at its GPU limit costs the cheapest price per GPU among
    the instance types it may launch.
    """
    hourly: Mapping[str, float] = prices["hourly"]
    ceiling = floor_cost = ceiling_cost = 0.0
    unpriced: set[str] = set()

    def cheapest(types: Sequence[str], per_accelerator: bool) -> float:
        unpriced.update(t for t in types if t not in hourly)
        return min(
            (
                hourly[t] / (INSTANCE_TYPES[t].count if per_accelerator else 1)
                for t in types
                if t in hourly and (t in INSTANCE_TYPES or not per_accelerator)
            ),
            default=0.0,
        )

    for resource in resources:
        inputs = resource.get("inputs", {})
        if resource.get("type") == "aws:eks/nodeGroup:NodeGroup":
            ceiling += float(inputs.get("tags", {}).get("mlops:accelerator-ceiling", 0))
            scaling = inputs.get("scalingConfig", {})
            price = cheapest(inputs.get("instanceTypes", []), per_accelerator=False)
            floor_cost += scaling.get("minSize", 0) * price * HOURS_PER_MONTH
            ceiling_cost += scaling.get("maxSize", 0) * price * HOURS_PER_MONTH
        elif resource.get("type") == "kubernetes:karpenter.sh/v1:NodePool":
            spec = inputs.get("spec", {})
            limits = spec.get("limits", {})
            gpus = sum(float(v) for k, v in limits.items() if k in RESOURCE_NAMES.values())
            requirements = spec.get("template", {}).get("spec", {}).get("requirements", [])
            types = [
                value
                for requirement in requirements
                if requirement.get("key") == "node.kubernetes.io/instance-type"
                for value in requirement.get("values", [])
            ]
            ceiling += gpus
            ceiling_cost += gpus * cheapest(types, per_accelerator=True) * HOURS_PER_MONTH
    clusters = sum(1 for r in resources if r.get("type") == "aws:eks/cluster:Cluster")
    nats = sum(1 for r in resources if r.get("type") == "aws:ec2/natGateway:NatGateway")
    hourly_fixed = clusters * prices["eksClusterHourly"] + nats * prices["natGatewayHourly"]
    fixed = hourly_fixed * HOURS_PER_MONTH
    return Capacity(int(ceiling), floor_cost + fixed, ceiling_cost + fixed, tuple(sorted(unpriced)))


def load_prices() -> dict[str, Any]:
    prices: dict[str, Any] = json.loads(PRICES_FILE.read_text())
    return prices


def short(urn: str) -> str:
    return f"{urn.split('::')[2].rsplit('$', 1)[-1]}::{urn.rsplit('::', 1)[-1]}"


def render_report(
    *,
    stack: str,
    revision: str,
    changes: Sequence[ResourceChange],
    before: Capacity,
    after: Capacity,
    policy_summary: str,
    prices: Mapping[str, Any],
    markdown: bool,
    picture: str | None = None,
) -> str:
    """The report; `picture`, a Mermaid component map, is appended folded (Markdown only)."""
    counts = {
        kind: sum(c.kind == kind for c in changes) for kind in ("added", "changed", "removed")
    }
    risky = [c for c in changes if c.replaces or (c.protected and c.kind != "added")]
    lines = [
        f"{'### ' if markdown else ''}Stack {stack} against {revision}: "
        f"{counts['added']} to add, {counts['changed']} to change, {counts['removed']} to remove",
        "",
    ]
    if risky:
        lines.append(f"{'**' if markdown else ''}Needs attention:{'**' if markdown else ''}")
        for change in risky:
            reasons = []
            if change.replaces:
                reasons.append("REPLACED (delete and create)")
            if change.protected:
                reasons.append(f"PROTECTED resource {change.kind}: `pulumi up` will refuse it")
            lines.append(f"- {short(change.urn)}: {'; '.join(reasons)}")
        lines.append("")
    for change in changes:
        lines.append(f"- {change.kind} {short(change.urn)}")
        for prop in change.properties:
            mark = " (forces replacement)" if prop.replaces else ""
            lines.append(
                f"  - {prop.path}: {json.dumps(prop.before)} -> {json.dumps(prop.after)}{mark}"
            )
    lines += [
        "",
        f"Policy check of the change: {policy_summary}",
        f"Accelerator ceiling: {before.gpu_ceiling} -> {after.gpu_ceiling}",
        f"Estimated monthly cost, nodes at minimum: ${before.monthly_floor:,.0f} -> "
        f"${after.monthly_floor:,.0f}; at maximum: ${before.monthly_ceiling:,.0f} -> "
        f"${after.monthly_ceiling:,.0f}",
        f"(estimate: {prices['source']}, {prices['date']}; node, EKS and NAT hours only)",
    ]
    unpriced = sorted(set(before.unpriced) | set(after.unpriced))
    if unpriced:
        lines.append(f"Not in the price table, so not in the estimate: {', '.join(unpriced)}")
    if markdown and picture is not None:
        lines += [
            "",
            "<details><summary>Component map: added green, changed yellow, removed red</summary>",
            "",
            "```mermaid",
            picture.rstrip("\n"),
            "```",
            "</details>",
        ]
    return "\n".join(lines) + "\n"
