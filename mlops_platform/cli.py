"""`mlops-platform`: render and review the platform's stacks without cloud credentials."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import boto3
import pulumi
from botocore.exceptions import BotoCoreError, ClientError

from mlops_platform.audit import Declared, audit, render_audit
from mlops_platform.bootstrap import bootstrap
from mlops_platform.config_reference import render_reference
from mlops_platform.diagram import change_marks, component_map
from mlops_platform.diff import (
    DiffError,
    capacity,
    compare,
    load_prices,
    render_report,
    render_revision,
)
from mlops_platform.engine import STACK_TYPE, dump_deployment, render_stack
from mlops_platform.policy_check import (
    PolicyCheckError,
    PolicyPackServer,
    render,
    resolve_config,
    rule_table,
    run_check,
)
from mlops_platform.project import ProjectError, PulumiProject
from mlops_platform.summary import summarize

EXIT_OK = 0
EXIT_VIOLATIONS = 1
EXIT_BAD_INPUT = 2
EXIT_INCOMPLETE = 3
POLICY_PACK_DIR = "policies"


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.command(args))
    except ProjectError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT


def _plan(args: argparse.Namespace) -> int:
    project = _project(args)
    try:
        rendered = render_stack(project, args.stack)
    except pulumi.RunError as error:
        # Config errors and other deliberate stops: the message is the whole story.
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.out is not None:
        args.out.write_text(dump_deployment(rendered))
    if args.format == "mermaid":
        print(component_map(rendered.to_deployment()["deployment"]["resources"]), end="")
    else:
        print(summarize(rendered), end="")
    if args.out is not None:
        # With a picture on stdout, the note goes where it cannot end up inside the picture.
        print(
            f"\nwrote {args.out} ({len(rendered.resources)} resources)",
            file=sys.stderr if args.format == "mermaid" else sys.stdout,
        )
    return EXIT_OK


def _check(args: argparse.Namespace) -> int:
    project = _project(args)
    try:
        if args.plan is not None:
            title = str(args.plan)
            resources = _export_resources(_read_json(args.plan, "plan"), title)
        else:
            title = f"stack {args.stack}"
            resources = render_stack(project, args.stack).to_deployment()["deployment"]["resources"]
        config_path = args.policy_config or _environment_config(project, resources, title)
        config = _read_json(config_path, "policy config")
        result = run_check(project.root / POLICY_PACK_DIR, resources, config, str(config_path))
    except (pulumi.RunError, PolicyCheckError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(render(result, args.format, title), end="")
    return EXIT_VIOLATIONS if result.mandatory else EXIT_OK


def _rules(args: argparse.Namespace) -> int:
    project = _project(args)
    configs = sorted((project.root / POLICY_PACK_DIR / "config").glob("*.json"))
    order = {"dev": 0, "staging": 1, "prod": 2}
    configs.sort(key=lambda path: (order.get(path.stem, len(order)), path.stem))
    try:
        with PolicyPackServer(project.root / POLICY_PACK_DIR) as server:
            rules = server.rules()
        levels = {
            path.stem: resolve_config(rules, _read_json(path, "policy config"), str(path))[0]
            for path in configs
        }
    except PolicyCheckError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(rule_table(rules, levels), end="")
    return EXIT_OK


def _diff(args: argparse.Namespace) -> int:
    project = _project(args)
    try:
        before = render_revision(project.root, args.base, args.stack)
        after = render_stack(project, args.stack).to_deployment()["deployment"]["resources"]
        config_path = _environment_config(project, after, f"stack {args.stack}")
        result = run_check(
            project.root / POLICY_PACK_DIR,
            after,
            _read_json(config_path, "policy config"),
            str(config_path),
        )
    except (DiffError, PolicyCheckError, pulumi.RunError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    prices = load_prices()
    advisory = len(result.findings) - len(result.mandatory)
    changes = compare(before, after)
    picture = None
    if args.format == "markdown":
        drawn, marks = change_marks(before, after, {c.urn: c.kind for c in changes})
        picture = component_map(drawn, marks)
    print(
        render_report(
            stack=args.stack,
            revision=args.base,
            changes=changes,
            before=capacity(before, prices),
            after=capacity(after, prices),
            policy_summary=f"{len(result.mandatory)} mandatory, {advisory} advisory violations",
            prices=prices,
            markdown=args.format == "markdown",
            picture=picture,
        ),
        end="",
    )
    return EXIT_VIOLATIONS if result.mandatory else EXIT_OK


def _project(args: argparse.Namespace) -> PulumiProject:
    return PulumiProject.find(args.project_dir.resolve())


def _bootstrap(args: argparse.Namespace) -> int:
    session = boto3.session.Session(region_name=args.region)
    try:
        report = bootstrap(
            session.client("s3"),
            session.client("kms"),
            bucket=args.bucket_name,
            region=args.region,
            alias=args.key_alias,
        )
    except (BotoCoreError, ClientError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    for created in report.created:
        print(f"created {created}")
    if not report.created and not report.problems:
        print("state backend already set up; nothing changed")
    for problem in report.problems:
        print(f"NOT CHANGED, fix by hand: {problem}")
    print("\nuse it with:")
    for line in report.login_lines(args.bucket_name, args.region, args.key_alias):
        print(f"  {line}")
    return EXIT_VIOLATIONS if report.problems else EXIT_OK


def _export_resources(deployment: Any, title: str) -> list[dict[str, Any]]:
    body = deployment.get("deployment") if isinstance(deployment, dict) else None
    resources = body.get("resources") if isinstance(body, dict) else None
    if not isinstance(resources, list):
        raise PolicyCheckError(f"{title} has no deployment.resources: not a stack export")
    return resources


def _audit(args: argparse.Namespace) -> int:
    project = _project(args)
    stack_config = project.stack_config(args.stack)
    region = args.region or stack_config.region
    platform = json.loads(stack_config.values.get(f"{project.name}:platform", "{}"))
    environment = platform.get("environment") if isinstance(platform, dict) else None
    if not isinstance(environment, str):
        raise ProjectError(f"{project.stack_file(args.stack).name}: no platform `environment`")
    config_path = project.root / POLICY_PACK_DIR / "config" / f"{environment}.json"
    session = boto3.session.Session(region_name=region)
    try:
        declared = (
            Declared.from_export(_export_resources(_read_json(args.plan, "plan"), str(args.plan)))
            if args.plan is not None
            else None
        )
        result = audit(
            session.client,
            stack=args.stack,
            project=project.name,
            pack_dir=project.root / POLICY_PACK_DIR,
            policy_config=_read_json(config_path, "policy config"),
            config_source=str(config_path),
            declared=declared,
        )
    except PolicyCheckError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BotoCoreError as error:
        # No credentials, no network, an unknown region: nothing could be read at all.
        print(f"error: cannot reach AWS: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    title = f"the live account for stack {args.stack} in {region}"
    print(render_audit(result, args.format, title), end="")
    if result.check.mandatory:
        return EXIT_VIOLATIONS
    return EXIT_INCOMPLETE if result.unchecked else EXIT_OK


def _environment_config(
    project: PulumiProject, resources: list[dict[str, Any]], title: str
) -> Path:
    """The policy config of the environment the stack says it is (its `environment` output)."""
    stack = next((r for r in resources if r.get("type") == STACK_TYPE), {})
    environment = stack.get("outputs", {}).get("environment")
    if environment is None:
        raise PolicyCheckError(f"{title} has no `environment` output; pass --policy-config")
    return project.root / POLICY_PACK_DIR / "config" / f"{environment}.json"


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text())
    except OSError as error:
        raise PolicyCheckError(f"cannot read {what} {path}: {error.strerror}") from None
    except json.JSONDecodeError as error:
        raise PolicyCheckError(f"{what} {path} is not JSON: {error}") from None


def _config_reference(args: argparse.Namespace) -> int:
    project = _project(args)
    text = render_reference(project.name)
    if args.out is None:
        print(text, end="")
    else:
        args.out.write_text(text)
    return EXIT_OK


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlops-platform", description=__doc__)
    parser.add_argument(
        "--project-dir",
        type=Path,
        default=Path.cwd(),
        help="directory with Pulumi.yaml, or below it (default: the current directory)",
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    plan = commands.add_parser(
        "plan",
        help="render a stack offline: no credentials, CLI or network",
        description=(
            "Run the stack program in-process under a recording mock engine and summarize what "
            "it would create; --out writes it in the shape of `pulumi stack export`."
        ),
    )
    plan.add_argument("--stack", required=True, help="stack name, e.g. dev (Pulumi.dev.yaml)")
    plan.add_argument("--out", type=Path, help="write the rendered stack as JSON to this file")
    plan.add_argument(
        "--format",
        choices=("text", "mermaid"),
        default="text",
        help="text: what it creates and what is protected; mermaid: the component map",
    )
    plan.set_defaults(command=_plan)

    check = commands.add_parser(
        "check",
        help="run the policy pack over a stack, as `pulumi preview --policy-pack` would",
        description=(
            "Start the pack in policies/ and run it over the analyzer gRPC protocol against a "
            "stack rendered offline (--stack) or any `pulumi stack export` file (--plan). Exits "
            "1 on a mandatory violation."
        ),
    )
    target = check.add_mutually_exclusive_group(required=True)
    target.add_argument("--stack", help="render this stack offline first, then check it")
    target.add_argument("--plan", type=Path, help="check this plan or `pulumi stack export` file")
    check.add_argument(
        "--policy-config",
        type=Path,
        help="policy pack config (default: policies/config/<environment>.json)",
    )
    check.add_argument("--format", choices=("text", "json", "markdown"), default="text")
    check.set_defaults(command=_check)

    rules = commands.add_parser(
        "rules", help="print the policy rules with their level in each environment (Markdown)"
    )
    rules.set_defaults(command=_rules)

    diff = commands.add_parser(
        "diff",
        help="what a change does to a stack: resources, replacements, policy, GPUs and cost",
        description=(
            "Render the stack at a base git revision (by that revision's own code) and at the "
            "working tree, offline, and report added, changed and removed resources with "
            "property-level differences, replacements and protected resources first, the policy "
            "result, the accelerator ceiling and an estimated monthly cost before and after."
        ),
    )
    diff.add_argument("--stack", required=True)
    diff.add_argument(
        "--base", required=True, help="git revision to compare against, e.g. origin/main"
    )
    diff.add_argument("--format", choices=("text", "markdown"), default="text")
    diff.set_defaults(command=_diff)

    state = commands.add_parser(
        "bootstrap",
        help="create (or verify) an S3 bucket and KMS key for self-managed Pulumi state",
        description=(
            "Idempotently create a versioned, SSE-KMS, public-access-blocked, TLS-only S3 bucket "
            "for `pulumi login s3://...` and a rotating KMS key for `awskms://` secrets; an "
            "existing bucket is checked and reported on, never rewritten. Uses the usual AWS "
            "credential chain."
        ),
    )
    state.add_argument("--bucket-name", required=True)
    state.add_argument("--region", required=True)
    state.add_argument("--key-alias", default="alias/pulumi-state")
    state.set_defaults(command=_bootstrap)

    live = commands.add_parser(
        "audit",
        help="drift and compliance of the live account against the platform's guarantees",
        description=(
            "Read the stack's resources in AWS (found by the platform's tags, and by the names "
            "in --plan) with read-only calls and judge them by the policy pack's rules at the "
            "environment's levels. With --plan (a `pulumi stack export`), also report roles "
            "given policies or trust the stack does not declare, and declared resources that "
            "are gone. Exits 1 on a mandatory finding, 3 if some checks could not run (each is "
            "listed), 0 otherwise."
        ),
    )
    live.add_argument("--stack", required=True)
    live.add_argument("--region", help="default: the stack file's aws:region")
    live.add_argument("--plan", type=Path, help="`pulumi stack export` of the deployed stack")
    live.add_argument("--format", choices=("text", "json", "markdown"), default="text")
    live.set_defaults(command=_audit)

    reference = commands.add_parser(
        "config-reference", help="print the configuration reference (Markdown)"
    )
    reference.add_argument("--out", type=Path, help="write it to this file instead")
    reference.set_defaults(command=_config_reference)
    return parser


if __name__ == "__main__":
    sys.exit(main())
