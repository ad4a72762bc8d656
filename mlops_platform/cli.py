"""`mlops-platform`: render and review the platform's stacks without cloud credentials."""

# Each subcommand imports what it needs when it runs: `check --plan` never loads the provider SDKs,
# the program or boto3, and a cached `plan` loads no Pulumi SDK at all.

from __future__ import annotations

import argparse
import gc
import json
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from mlops_platform.errors import UserError
from mlops_platform.project import ProjectError, PulumiProject

if TYPE_CHECKING:
    from infra.config import PlatformConfig
    from mlops_platform.pack_process import PackProcess
    from mlops_platform.policy_check import CheckResult
    from mlops_platform.rendered import RenderedStack

EXIT_OK = 0
EXIT_VIOLATIONS = 1
EXIT_BAD_INPUT = 2
EXIT_INCOMPLETE = 3
EXIT_CODES = {
    EXIT_OK: "done: nothing mandatory found, nothing left unchecked",
    EXIT_VIOLATIONS: "a mandatory policy violation (check, diff, audit) or a blocker (preflight)",
    EXIT_BAD_INPUT: "bad input: a stack file, plan, export, policy config or argument, named with "
    "what is wrong; nothing was changed",
    EXIT_INCOMPLETE: "incomplete: some live checks could not run (audit, preflight); each is "
    "listed",
}
"""The one table of exit codes, shown by --help and in the README."""
FORMAT_HELP = "text for a terminal, json for tools, markdown for a pull-request comment"
POLICY_PACK_DIR = "policies"


class CommandError(UserError):
    """Input the command cannot work with; the message says which and why."""


def run() -> NoReturn:
    """The console script: `main`, tuned for a process that renders once and exits."""
    # Loading the SDKs allocates millions of long-lived objects; with the default thresholds the
    # collector walks them over and over (a third of a cold plan). Collect rarely instead.
    gc.set_threshold(200_000, 50, 100)
    # Terminated (a CI job cancelled), it still stops the pack and removes a diff's worktree.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Tearing down a thousand SDK modules takes a second and frees nothing the OS would not.
    os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.command(args))
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT


def _plan(args: argparse.Namespace) -> int:
    project = _project(args)
    stacks = _stacks(project, args)
    outs: dict[str, Path] = {}
    if args.out is not None:
        outs = {
            stack: args.out / f"{stack}.json" if _several(args) else args.out for stack in stacks
        }
        # Where the plans go is checked before anything renders.
        for path in outs.values():
            _writable(path)
    rendered = _render(project, stacks, args.cache)
    for number, (stack, plan) in enumerate(rendered.items()):
        out = outs.get(stack)
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(plan.dump())
        if number:
            print()
        if args.format == "mermaid":
            from mlops_platform.diagram import component_map

            print(component_map(plan.states()), end="")
        elif args.format == "urns":
            print("\n".join(plan.urns()))
        else:
            from mlops_platform.summary import summarize

            print(summarize(plan), end="")
        if out is not None:
            # With a picture on stdout, the note goes where it cannot end up inside the picture.
            print(
                f"\nwrote {out} ({_counted(plan)})",
                file=sys.stderr if args.format != "text" else sys.stdout,
            )
    return EXIT_OK


def _check(args: argparse.Namespace) -> int:
    project = _project(args)
    # Bad files are reported before anything starts or renders.
    if args.policy_config is not None:
        _read_json(args.policy_config, "policy config")
    targets: dict[str, list[dict[str, Any]]] = {
        str(plan): _export_resources(_read_json(plan, "plan"), str(plan))
        for plan in args.plan or ()
    }
    pack = _pack(project)
    try:
        if not args.plan:
            stacks = _stacks(project, args)
            if _uncached_renders(project, stacks, args.cache):
                # The pack boots while the stacks render; with them cached, only if a check
                # is not cached either.
                pack.boot()
            for stack, rendered in _render(project, stacks, args.cache).items():
                targets[f"stack {stack}"] = rendered.states()
        results = {
            title: _run_check(project, pack, resources, title, args.policy_config, cache=args.cache)
            for title, resources in targets.items()
        }
    finally:
        pack.stop()
    from mlops_platform.policy_check import render, render_many

    if _several(args):
        print(render_many(results, args.format), end="")
    else:
        [(title, result)] = results.items()
        print(render(result, args.format, title), end="")
    return EXIT_VIOLATIONS if any(r.mandatory for r in results.values()) else EXIT_OK


def _run_check(
    project: PulumiProject,
    pack: PackProcess,
    resources: list[dict[str, Any]],
    title: str,
    policy_config: Path | None,
    *,
    cache: bool,
) -> CheckResult:
    """The pack's verdict, from the cache when these resources met this pack and config."""
    from mlops_platform.policy_check import CheckResult
    from mlops_platform.render_cache import RenderCache, check_key

    config_path = policy_config or _environment_config(project, resources, title)
    config = _read_json(config_path, "policy config")
    store = RenderCache.for_project(project, enabled=cache)
    key = check_key(resources, config, pack.pack_dir)
    result = store.get_record(key, CheckResult.from_record)
    if result is None:
        result = pack.server().check(resources, config, str(config_path))
        store.put_record(key, result.to_record())
    return result


def _rules(args: argparse.Namespace) -> int:
    project = _project(args)
    pack = _start_pack(project)
    from mlops_platform.policy_check import resolve_config, rule_table

    configs = sorted((_pack_dir(project) / "config").glob("*.json"))
    order = {"dev": 0, "staging": 1, "prod": 2}
    configs.sort(key=lambda path: (order.get(path.stem, len(order)), path.stem))
    try:
        rules = pack.server().rules()
    finally:
        pack.stop()
    levels = {
        path.stem: resolve_config(rules, _read_json(path, "policy config"), str(path))[0]
        for path in configs
    }
    print(rule_table(rules, levels), end="")
    return EXIT_OK


def _charts(_: argparse.Namespace) -> int:
    from mlops_platform.contracts import contract_table

    print(contract_table(), end="")
    return EXIT_OK


def _diff(args: argparse.Namespace) -> int:
    project = _project(args)
    stacks = _stacks(project, args)
    from mlops_platform.render_cache import RenderCache

    cache = RenderCache.for_project(project, enabled=args.cache)
    # The working tree's config first: a mistake there is reported before the base renders.
    # A cached render's config was valid (failed renders are never cached).
    uncached = _uncached_renders(project, stacks, args.cache)
    for stack in uncached:
        if _is_platform_stack(project, stack):
            _platform_config(project, stack)
    pack = _pack(project)
    if uncached:
        pack.boot()
    from mlops_platform.diagram import change_marks, component_map
    from mlops_platform.diff import (
        RevisionRender,
        capacity,
        compare,
        load_prices,
        policy_changes,
        render_report,
    )

    try:
        # The base renders in the background, on the other core, while the working tree does.
        with RevisionRender(project, args.base, stacks, cache) as base:
            after = _render(project, stacks, args.cache)
            before = base.result()
        prices = load_prices()
        reports = []
        mandatory = False
        for stack in stacks:
            old, new = before[stack].states(), after[stack].states()
            result = _run_check(project, pack, new, f"stack {stack}", None, cache=args.cache)
            was = (
                _run_check(
                    project, pack, old, f"stack {stack} at {args.base}", None, cache=args.cache
                )
                if old
                else None
            )
            mandatory = mandatory or bool(result.mandatory)
            advisory = len(result.findings) - len(result.mandatory)
            ignored = {r.urn: r.ignore_changes for r in after[stack].resources if r.ignore_changes}
            changes = compare(old, new, ignored)
            picture = None
            if args.format == "markdown":
                drawn, marks = change_marks(old, new, {c.urn: c.kind for c in changes})
                picture = component_map(drawn, marks)
            reports.append(
                render_report(
                    stack=stack,
                    revision=args.base,
                    changes=changes,
                    before=capacity(old, prices),
                    after=capacity(new, prices),
                    policy_summary=(
                        f"{len(result.mandatory)} mandatory, {advisory} advisory violations"
                    ),
                    policy_changes=policy_changes(
                        was.findings if was is not None else [], result.findings
                    ),
                    prices=prices,
                    markdown=args.format == "markdown",
                    picture=picture,
                )
            )
    finally:
        pack.stop()
    print("\n".join(reports), end="")
    return EXIT_VIOLATIONS if mandatory else EXIT_OK


def _bootstrap(args: argparse.Namespace) -> int:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from mlops_platform.bootstrap import bootstrap

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
        raise CommandError(str(error)) from None
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


def _audit(args: argparse.Namespace) -> int:
    project = _project(args)
    stack_config = project.stack_config(args.stack)
    region = args.region or stack_config.region
    platform = json.loads(stack_config.values.get(f"{project.name}:platform", "{}"))
    environment = platform.get("environment") if isinstance(platform, dict) else None
    if not isinstance(environment, str):
        raise ProjectError(f"{project.stack_file(args.stack).name}: no platform `environment`")
    config_path = _pack_dir(project) / "config" / f"{environment}.json"
    import boto3
    from botocore.exceptions import BotoCoreError

    from mlops_platform.audit import Declared, audit, render_audit

    # Bad input is refused before the pack starts or AWS is read.
    declared = None
    if args.plan is not None:
        exported = _export_resources(_read_json(args.plan, "plan"), str(args.plan))
        _same_stack(exported, args.stack, project.name, str(args.plan))
        declared = Declared.from_export(exported)
    pack = _start_pack(project)
    session = boto3.session.Session(region_name=region)
    try:
        result = audit(
            session.client,
            stack=args.stack,
            project=project.name,
            pack=pack.server(),
            policy_config=_read_json(config_path, "policy config"),
            config_source=str(config_path),
            declared=declared,
        )
    except BotoCoreError as error:
        # No credentials, no network, an unknown region: nothing could be read at all.
        raise CommandError(f"cannot reach AWS: {error}") from None
    finally:
        pack.stop()
    if not result.check.resources_checked:
        account = session.client("sts").get_caller_identity()["Account"]
        raise CommandError(
            f"found no resource of stack {args.stack} (tags mlops:stack={args.stack}, "
            f"mlops:project={project.name}) in account {account}, region {region}: is this the "
            "stack's account (AWS_PROFILE) and region (--region), and has it been deployed?"
        )
    title = f"the live account for stack {args.stack} in {region}"
    print(render_audit(result, args.format, title), end="")
    if result.check.mandatory:
        return EXIT_VIOLATIONS
    return EXIT_INCOMPLETE if result.unchecked else EXIT_OK


def _same_stack(resources: list[dict[str, Any]], stack: str, project: str, title: str) -> None:
    """An export of another stack would have the audit judge the wrong resources."""
    exported = {tuple(r["urn"].split("::")[:2]) for r in resources if r["urn"].startswith("urn:")}
    wanted = (f"urn:pulumi:{stack.rsplit('/', 1)[-1]}", project)
    others = sorted(f"{s.removeprefix('urn:pulumi:')} ({p})" for s, p in exported - {wanted})
    if others:
        raise CommandError(
            f"{title} is an export of stack {', '.join(others)}, not of {stack} ({project}): "
            f"pulumi stack export --stack {stack} > {title}"
        )


def _is_platform_stack(project: PulumiProject, stack: str) -> bool:
    """A stack of the platform (its config key set), not of a project that deploys onto it,
    whose program checks its own config."""
    return f"{project.name}:platform" in project.stack_config(stack).values


def _platform_config(
    project: PulumiProject, stack: str, region: str | None = None
) -> PlatformConfig:
    """The stack's validated config, checked against `region` (default: the stack file's)."""
    from infra.config import ConfigError, load_platform_config

    raw = project.stack_config(stack).values.get(f"{project.name}:platform")
    try:
        return load_platform_config(
            json.loads(raw) if isinstance(raw, str) else raw,
            stack=stack,
            project=project.name,
            region=region or project.stack_config(stack).region,
        )
    except ConfigError as error:
        raise CommandError(str(error)) from None


def _first_deploy(args: argparse.Namespace) -> int:
    from mlops_platform.first_deploy import first_deploy_steps

    project = _project(args)
    config = _platform_config(project, args.stack)
    plan = _render(project, [args.stack], args.cache)[args.stack]
    print(first_deploy_steps(plan, config, args.stack), end="")
    return EXIT_OK


def _preflight(args: argparse.Namespace) -> int:
    project = _project(args)
    region = args.region or project.stack_config(args.stack).region
    import boto3
    from botocore.exceptions import BotoCoreError

    from mlops_platform.preflight import admin_patterns, preflight, render_preflight

    config = _platform_config(project, args.stack, region)
    config_path = _pack_dir(project) / "config" / f"{config.environment}.json"
    session = boto3.session.Session(region_name=region)
    try:
        report = preflight(
            session.client,
            config,
            region=region,
            admin_patterns=admin_patterns(_read_json(config_path, "policy config")),
        )
    except BotoCoreError as error:
        raise CommandError(f"cannot reach AWS: {error}") from None
    print(render_preflight(report, args.format, f"stack {args.stack} in {region}"), end="")
    if report.blockers:
        return EXIT_VIOLATIONS
    return EXIT_INCOMPLETE if report.unchecked else EXIT_OK


def _config_reference(args: argparse.Namespace) -> int:
    project = _project(args)
    from mlops_platform.config_reference import render_reference

    text = render_reference(project.name)
    if args.out is None:
        print(text, end="")
    else:
        args.out.write_text(text)
    return EXIT_OK


def _project(args: argparse.Namespace) -> PulumiProject:
    return PulumiProject.find(args.project_dir.resolve())


def _stacks(project: PulumiProject, args: argparse.Namespace) -> list[str]:
    if args.all_stacks:
        stacks = project.stacks()
        if not stacks:
            raise ProjectError(f"no Pulumi.<stack>.yaml in {project.root}")
        return stacks
    return list(dict.fromkeys(args.stack))


def _several(args: argparse.Namespace) -> bool:
    """Whether the command line names several stacks or plans (the shape of the output follows
    the flags, not how many stack files there happen to be)."""
    named = getattr(args, "stack", None) or getattr(args, "plan", None) or []
    return bool(getattr(args, "all_stacks", False)) or len(named) > 1


def _render(project: PulumiProject, stacks: list[str], cache: bool) -> dict[str, RenderedStack]:
    from mlops_platform.render_cache import RenderCache, RenderError, render_stacks

    try:
        return render_stacks(project, stacks, RenderCache.for_project(project, enabled=cache))
    except RenderError as error:
        raise CommandError(str(error)) from None


def _pack_dir(project: PulumiProject) -> Path:
    """The policy pack: the project's own `policies/`, or the nearest above it, so a model
    team's project in the platform repository is judged by the platform's pack."""
    for directory in (project.root, *project.root.parents):
        if (directory / POLICY_PACK_DIR / "PulumiPolicy.yaml").is_file():
            return directory / POLICY_PACK_DIR
    return project.root / POLICY_PACK_DIR


def _start_pack(project: PulumiProject) -> PackProcess:
    pack = _pack(project)
    pack.boot()
    return pack


def _pack(project: PulumiProject) -> PackProcess:
    """The policy pack, not started yet."""
    from mlops_platform.pack_process import PackProcess

    return PackProcess(_pack_dir(project))


def _uncached_renders(project: PulumiProject, stacks: list[str], cache: bool) -> list[str]:
    """The stacks whose working tree has no render in the cache."""
    from mlops_platform.render_cache import RenderCache, render_key, working_tree_sources

    store = RenderCache.for_project(project, enabled=cache)
    return [
        stack
        for stack in stacks
        if not store.holds(render_key(project.name, stack, working_tree_sources(project, stack)))
    ]


def _export_resources(document: Any, title: str) -> list[dict[str, Any]]:
    """The resources of a `pulumi stack export`, each checked for what every reader needs."""
    body = document.get("deployment") if isinstance(document, dict) else None
    resources = body.get("resources") if isinstance(body, dict) else None
    if not isinstance(resources, list):
        raise CommandError(f"{title} has no deployment.resources: not a stack export")
    for index, resource in enumerate(resources):
        where = f"{title}: deployment.resources[{index}]"
        if not isinstance(resource, dict):
            raise CommandError(f"{where} is {json.dumps(resource)}, not a resource")
        missing = [key for key in ("urn", "type") if not isinstance(resource.get(key), str)]
        if missing:
            raise CommandError(f"{where} has no {' or '.join(missing)}: not a stack export")
    return resources


def _environment_config(
    project: PulumiProject, resources: list[dict[str, Any]], title: str
) -> Path:
    """The policy config of the environment the stack says it is (its `environment` output)."""
    from mlops_guardrails.export import STACK_TYPE

    stack = next((r for r in resources if r.get("type") == STACK_TYPE), {})
    environment = stack.get("outputs", {}).get("environment")
    if environment is None:
        raise CommandError(f"{title} has no `environment` output; pass --policy-config")
    return _pack_dir(project) / "config" / f"{environment}.json"


def _counted(plan: RenderedStack) -> str:
    resources, components = plan.resources_and_components
    return f"{len(resources)} resources and {len(components)} components"


def _writable(path: Path) -> None:
    """The file could be written (its folder made if need be), or a clear error; nothing is
    created yet."""
    if path.is_dir():
        raise CommandError(f"cannot write {path}: it is a folder")
    existing = next(parent for parent in path.absolute().parents if parent.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise CommandError(f"cannot write {path}: {existing} is not a folder this user may write")


def _read_json(path: Path, what: str) -> Any:
    """JSON as `pulumi stack export` may have written it: UTF-8, or UTF-16 with its byte-order
    mark (PowerShell's `>`), or UTF-8 with one."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise CommandError(f"cannot read {what} {path}: {error.strerror}") from None
    encoding = "utf-16" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig"
    try:
        return json.loads(data.decode(encoding))
    except UnicodeDecodeError:
        raise CommandError(f"{what} {path} is neither UTF-8 nor UTF-16 text") from None
    except json.JSONDecodeError as error:
        raise CommandError(f"{what} {path} is not JSON: {error}") from None


def _stack_arguments(command: argparse.ArgumentParser, *, required: bool) -> None:
    """--stack, repeatable, or --all-stacks: several stacks render in one process."""
    group = command.add_mutually_exclusive_group(required=required)
    group.add_argument(
        "--stack",
        action="append",
        help="stack name, e.g. dev (Pulumi.dev.yaml); repeat for several",
    )
    group.add_argument(
        "--all-stacks", action="store_true", help="every Pulumi.<stack>.yaml of the project"
    )


def _add_first_deploy(commands: Any) -> None:
    first = commands.add_parser(
        "first-deploy",
        help="how a stack's first `pulumi up` reaches its cluster, as commands",
        description=(
            "Print the steps of the stack's first `pulumi up`. For a private cluster reached "
            "through the deploy runner: the exact `pulumi up --exclude ... --exclude-dependents` "
            "that creates everything but the cluster's software from outside the VPC, then how "
            "the delivery workflow's job on the runner creates the rest."
        ),
    )
    first.add_argument("--stack", required=True, help="the stack to deploy for the first time")
    _cache_argument(first)
    first.set_defaults(command=_first_deploy)


def _cache_argument(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--no-cache",
        dest="cache",
        action="store_false",
        help=(
            "render (and policy-check) even if a render of the same sources, stack file, "
            "Python and packages, or a check of the same resources, config and pack, is cached "
            "(in .cache/renders, or $MLOPS_PLATFORM_CACHE_DIR)"
        ),
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlops-platform",
        description=__doc__,
        epilog="exit codes:\n"
        + "\n".join(f"  {code}  {meaning}" for code, meaning in EXIT_CODES.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--project-dir",
        type=Path,
        default=Path.cwd(),
        help="directory with Pulumi.yaml, or below it (default: the current directory)",
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    plan = commands.add_parser(
        "plan",
        help="render stacks offline: no credentials, CLI or network",
        description=(
            "Run the stack program in-process under a recording mock engine and summarize what "
            "it would create; --out writes it in the shape of `pulumi stack export`."
        ),
    )
    _stack_arguments(plan, required=True)
    plan.add_argument(
        "--out",
        type=Path,
        help=(
            "write the rendered stack as JSON to this file; with several stacks or --all-stacks, "
            "a directory that gets <stack>.json each"
        ),
    )
    plan.add_argument(
        "--format",
        choices=("text", "mermaid", "urns"),
        default="text",
        help="text: what it creates and what is protected; mermaid: the component map; urns: "
        "every resource's URN, as tests/urns/<stack>.txt records them",
    )
    _cache_argument(plan)
    plan.set_defaults(command=_plan)

    check = commands.add_parser(
        "check",
        help="run the policy pack over stacks, as `pulumi preview --policy-pack` would",
        description=(
            "Start the pack in policies/ and run it over the analyzer gRPC protocol against "
            "stacks rendered offline (--stack, --all-stacks) or `pulumi stack export` files "
            "(--plan). Exits 1 on a mandatory violation."
        ),
    )
    target = check.add_mutually_exclusive_group(required=True)
    target.add_argument(
        "--stack", action="append", help="render this stack offline first; repeat for several"
    )
    target.add_argument("--all-stacks", action="store_true", help="every stack of the project")
    target.add_argument(
        "--plan",
        type=Path,
        action="append",
        help="check this plan or `pulumi stack export` file; repeat for several",
    )
    check.add_argument(
        "--policy-config",
        type=Path,
        help="policy pack config (default: policies/config/<environment>.json)",
    )
    check.add_argument(
        "--format", choices=("text", "json", "markdown"), default="text", help=FORMAT_HELP
    )
    _cache_argument(check)
    check.set_defaults(command=_check)

    rules = commands.add_parser(
        "rules",
        help="print the policy rules with their level in each environment (Markdown)",
        description=(
            "Start the pack and print every rule it holds, with the resource types it judges, "
            "its level in each policies/config/<environment>.json, its severity and the "
            "compliance control it maps to: the table the README carries."
        ),
    )
    rules.set_defaults(command=_rules)

    charts = commands.add_parser(
        "charts",
        help="print the chart contracts: what each pinned chart version does (Markdown)",
        description=(
            "Print, for each Helm chart the platform pins, what its version does with the "
            "platform's values: workloads, default affinity and tolerations, Pod Security "
            "level, namespace, CRDs, image and supported Kubernetes minors, and where each "
            "fact was read."
        ),
    )
    charts.set_defaults(command=_charts)

    diff = commands.add_parser(
        "diff",
        help="what a change does to stacks: resources, replacements, policy, GPUs and cost",
        description=(
            "Render the stacks at a base git revision (by that revision's own code, once per "
            "revision: renders are cached) and at the working tree, offline, and report what "
            "`pulumi up` would do to each resource (create, update, replace, delete) with its "
            "properties: first what makes the preview fail (a protected resource replaced or "
            "deleted), protection lost, probable renames with the alias that keeps them, and "
            "replacements (from the providers' own rules, propagated to dependents); then the "
            "policy result with violations new and fixed, the accelerator ceiling and an "
            "estimated monthly cost before and after."
        ),
    )
    _stack_arguments(diff, required=True)
    diff.add_argument(
        "--base", required=True, help="git revision to compare against, e.g. origin/main"
    )
    diff.add_argument(
        "--format",
        choices=("text", "markdown"),
        default="text",
        help="text for a terminal, markdown for a pull-request comment (with the component map)",
    )
    _cache_argument(diff)
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
    state.add_argument(
        "--bucket-name", required=True, help="the state bucket, made if it does not exist"
    )
    state.add_argument("--region", required=True, help="the region of the bucket and key")
    state.add_argument(
        "--key-alias",
        default="alias/pulumi-state",
        help="alias of the secrets key, made with the key if it does not exist",
    )
    state.set_defaults(command=_bootstrap)

    live = commands.add_parser(
        "audit",
        help="drift and compliance of the live account against the platform's guarantees",
        description=(
            "Read the stack's resources in AWS (found by the platform's tags, and by the names "
            "in --plan) with read-only calls and judge them by the policy pack's rules that "
            "apply to live resources, at the environment's levels. With --plan (a `pulumi stack "
            "export`), also report roles given policies or trust the stack does not declare, "
            "and declared resources that are gone. Exits 1 on a mandatory finding, 3 if some "
            "checks could not run (each is listed), 0 otherwise."
        ),
    )
    live.add_argument("--stack", required=True, help="the stack whose live resources to audit")
    live.add_argument("--region", help="default: the stack file's aws:region")
    live.add_argument("--plan", type=Path, help="`pulumi stack export` of the deployed stack")
    live.add_argument(
        "--format", choices=("text", "json", "markdown"), default="text", help=FORMAT_HELP
    )
    live.set_defaults(command=_audit)

    ready = commands.add_parser(
        "preflight",
        help="read-only checks of the live account before a stack's first `pulumi up`",
        description=(
            "Check, with read-only calls, what a first `pulumi up` of the stack needs of the "
            "account: service-linked roles, EC2 vCPU quotas for the GPU pools, instance types "
            "offered in the pools' zones, capacity reservations and blocks, the Kubernetes "
            "version in the region, and the deployer role the policy pack allows. Exits 1 on a "
            "blocker, 3 if some checks could not run (each is listed), 2 on bad input, 0 "
            "otherwise."
        ),
    )
    ready.add_argument("--stack", required=True, help="the stack about to be deployed")
    ready.add_argument("--region", help="default: the stack file's aws:region")
    ready.add_argument(
        "--format", choices=("text", "json"), default="text", help="text for a terminal, json"
    )
    ready.set_defaults(command=_preflight)

    _add_first_deploy(commands)

    reference = commands.add_parser(
        "config-reference",
        help="print the configuration reference (Markdown)",
        description=(
            "Print every key of mlops-platform:platform with its type, default per environment "
            "and description, from the config models themselves: docs/config-reference.md."
        ),
    )
    reference.add_argument("--out", type=Path, help="write it to this file instead")
    reference.set_defaults(command=_config_reference)
    return parser


if __name__ == "__main__":
    run()
