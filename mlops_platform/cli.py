"""`mlops-platform`: render and review the platform's stacks without cloud credentials."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import pulumi

from mlops_platform.config_reference import render_reference
from mlops_platform.engine import dump_deployment, render_stack
from mlops_platform.project import ProjectError, PulumiProject
from mlops_platform.summary import summarize

EXIT_OK = 0
EXIT_PROGRAM_FAILED = 1
EXIT_BAD_INPUT = 2


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        project = PulumiProject.find(args.project_dir.resolve())
        return int(args.command(project, args))
    except ProjectError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT


def _plan(project: PulumiProject, args: argparse.Namespace) -> int:
    try:
        rendered = render_stack(project, args.stack)
    except pulumi.RunError as error:
        # Config errors and other deliberate stops: the message is the whole story.
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.out is not None:
        args.out.write_text(dump_deployment(rendered))
    print(summarize(rendered), end="")
    if args.out is not None:
        print(f"\nwrote {args.out} ({len(rendered.resources)} resources)")
    return EXIT_OK


def _config_reference(project: PulumiProject, args: argparse.Namespace) -> int:
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
    plan.set_defaults(command=_plan)

    reference = commands.add_parser(
        "config-reference", help="print the configuration reference (Markdown)"
    )
    reference.add_argument("--out", type=Path, help="write it to this file instead")
    reference.set_defaults(command=_config_reference)
    return parser


if __name__ == "__main__":
    sys.exit(main())
