"""The first `pulumi up` of a stack whose cluster API only a runner inside the VPC can reach.

That runner is part of the stack, so the first run goes from outside the VPC and leaves out the
cluster's software: `pulumi up --exclude <Kubernetes provider> --exclude-dependents` (Pulumi
3.158+) skips every resource that uses the provider and everything that depends on those,
while the provider itself is still configured. Every later run goes from the runner.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable

from infra.config import PlatformConfig
from mlops_platform.rendered import RecordedResource, RenderedStack

KUBERNETES_PROVIDER = "pulumi:providers:kubernetes"
MIN_PULUMI = "3.158.0"


def _provider_urn(reference: str) -> str:
    """A provider reference is `<provider urn>::<provider id>`."""
    return reference.rsplit("::", 1)[0] if reference else ""


def excluded_by(resources: Iterable[RecordedResource], roots: set[str]) -> set[str]:
    """The URNs `--exclude <roots> --exclude-dependents` leaves out: whatever uses an excluded
    resource as its provider, depends on one, or is its child, transitively. The roots stay
    in: Pulumi still registers an excluded provider."""
    resources = list(resources)
    excluded: set[str] = set()
    frontier = set(roots)
    while frontier:
        reached = {
            r.urn
            for r in resources
            if r.urn not in excluded
            and r.urn not in roots
            and (
                _provider_urn(r.provider) in frontier
                or r.parent in frontier
                or frontier.intersection(r.dependencies)
                or any(frontier.intersection(urns) for urns in r.property_dependencies.values())
            )
        }
        excluded |= reached
        frontier = reached
    return excluded


def first_deploy_steps(plan: RenderedStack, config: PlatformConfig, stack: str) -> str:
    """How this stack's first `pulumi up` goes, as commands."""
    endpoint = config.eks.endpoint
    if endpoint.public_access:
        return (
            f"Stack {stack}: the API endpoint is public to eks.endpoint.publicAccessCidrs "
            f"({', '.join(endpoint.public_access_cidrs)}).\n"
            f"Run `pulumi up --stack {stack}` from an address on that list; later runs, too.\n"
        )
    if endpoint.deploy_runner is None:
        return (
            f"Stack {stack}: the API endpoint is private; the cluster admits HTTPS from "
            f"eks.endpoint.privateAccessCidrs ({', '.join(endpoint.private_access_cidrs)}).\n"
            f"Run `pulumi up --stack {stack}` from a host in one of those networks; later "
            "runs, too.\n"
        )
    providers = sorted(r.urn for r in plan.resources if r.type == KUBERNETES_PROVIDER)
    skipped = excluded_by(plan.resources, set(providers))
    custom = [r for r in plan.resources if r.custom and not r.type.startswith("pulumi:providers:")]
    left_out = [r for r in custom if r.urn in skipped]
    exclude = " ".join(f"--exclude {shlex.quote(urn)}" for urn in providers)
    variable = f"DEPLOY_RUNNER_{stack.upper().replace('-', '_')}"
    return "\n".join(
        [
            f"Stack {stack}: the API endpoint is private, and only the deploy runner (a CodeBuild",
            "project inside the VPC, created by this stack) may reach it. The first run goes",
            "from outside the VPC without the cluster's software; then the runner does the rest.",
            "",
            f"1. As the deployer role, from anywhere (Pulumi CLI {MIN_PULUMI} or later):",
            f"   pulumi up --stack {stack} {exclude} --exclude-dependents",
            f"   This creates {len(custom) - len(left_out)} of the stack's {len(custom)} "
            "resources: everything but",
            f"   the {len(left_out)} that go through the Kubernetes provider or wait for them.",
            "2. Point the delivery workflow at the runner:",
            f'   gh variable set {variable} --body "$(pulumi stack output --stack {stack} '
            'deployRunnerProject)"',
            "3. Run the deploy workflow (Actions > deploy > Run workflow, or merge to main): its",
            f"   {stack} job runs on the runner, where `pulumi up` creates the rest. Every later",
            "   run goes the same way.",
            "",
        ]
    )
