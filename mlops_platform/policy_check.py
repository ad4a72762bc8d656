"""Runs the policy pack the way `pulumi preview --policy-pack` does, against a rendered stack.

The pack's own `__main__.py` is started from `policies/` and spoken to over the analyzer gRPC
protocol: `GetAnalyzerInfo`, `Configure` with the environment's policy-pack config (validated
against each rule's schema and defaulted, as the CLI does), `Analyze` for every custom resource
(its inputs) and `AnalyzeStack` for the whole stack (outputs, parents and property dependencies).
So what is checked here is exactly what the CLI loads.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

import grpc
import jsonschema
from google.protobuf import json_format, struct_pb2
from google.protobuf.empty_pb2 import Empty
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from mlops_guardrails.export import PROVIDER_TYPE_PREFIX, SECRET_SIG_KEY, urn_name
from mlops_platform.errors import PolicyCheckError
from mlops_platform.pack_process import PackProcess

__all__ = ["PackProcess", "PolicyCheckError", "PolicyPackServer"]

CALL_SECONDS: Final = 120
LEVELS: Final = {
    analyzer_pb2.ADVISORY: "advisory",
    analyzer_pb2.MANDATORY: "mandatory",
    analyzer_pb2.REMEDIATE: "remediate",
    analyzer_pb2.DISABLED: "disabled",
}
LEVEL_VALUES: Final = {name: value for value, name in LEVELS.items()}
SEVERITIES: Final = {
    analyzer_pb2.POLICY_SEVERITY_LOW: "low",
    analyzer_pb2.POLICY_SEVERITY_MEDIUM: "medium",
    analyzer_pb2.POLICY_SEVERITY_HIGH: "high",
    analyzer_pb2.POLICY_SEVERITY_CRITICAL: "critical",
}


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    severity: str
    default_level: str
    compliance: str
    remediation: str
    config_schema: dict[str, Any]
    resource_types: list[str]
    stack: bool
    """Judges the whole stack (AnalyzeStack) rather than one resource at a time (Analyze)."""


@dataclass(frozen=True)
class Finding:
    rule: str
    level: str
    severity: str
    urn: str
    message: str
    remediation: str


@dataclass(frozen=True)
class CheckResult:
    findings: list[Finding]
    rules: list[Rule]
    levels: dict[str, str]
    """The enforcement level each rule ran at."""
    resources_checked: int

    @property
    def mandatory(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "mandatory"]

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> CheckResult:
        return cls(
            findings=[Finding(**f) for f in record["findings"]],
            rules=[Rule(**r) for r in record["rules"]],
            levels=dict(record["levels"]),
            resources_checked=int(record["resources_checked"]),
        )


class PolicyPackServer:
    """A client of the pack's analyzer.

    As a context manager it starts the pack and stops it on exit; `PackProcess.server()` gives
    one for a pack already started.
    """

    def __init__(self, pack_dir: Path) -> None:
        self.pack_dir = pack_dir
        self._process: PackProcess | None = None

    @classmethod
    def connect(cls, port: int) -> PolicyPackServer:
        server = cls(Path())
        server._open(port)
        return server

    def _open(self, port: int) -> None:
        self._channel = grpc.insecure_channel(
            f"127.0.0.1:{port}", options=[("grpc.max_receive_message_length", 400 * 1024 * 1024)]
        )
        self.stub = analyzer_pb2_grpc.AnalyzerStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> PolicyPackServer:
        self._process = PackProcess.start(self.pack_dir)
        self._open(self._process.port())
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
        if self._process is not None:
            self._process.stop()

    def rules(self) -> list[Rule]:
        info = self.stub.GetAnalyzerInfo(Empty(), timeout=CALL_SECONDS)
        return [
            Rule(
                name=policy.name,
                description=policy.description,
                severity=SEVERITIES.get(policy.severity, "unspecified"),
                default_level=LEVELS[policy.enforcementLevel],
                compliance=" ".join(
                    part for part in (policy.framework.name, policy.framework.reference) if part
                ),
                remediation=policy.remediation_steps,
                config_schema=json_format.MessageToDict(policy.configSchema),
                resource_types=list(policy.tags),
                stack=policy.policy_type == analyzer_pb2.POLICY_TYPE_STACK,
            )
            for policy in info.policies
        ]

    def configure(
        self, levels: Mapping[str, str], properties: Mapping[str, dict[str, Any]]
    ) -> None:
        request = analyzer_pb2.ConfigureAnalyzerRequest()
        for name, level in levels.items():
            config = request.policyConfig[name]
            config.enforcementLevel = LEVEL_VALUES[level]
            config.properties.update(properties.get(name, {}))
        self.stub.Configure(request, timeout=CALL_SECONDS)

    def check(
        self, resources: Sequence[Mapping[str, Any]], config: Mapping[str, Any], config_source: str
    ) -> CheckResult:
        """Configure the pack from a policy-pack config document and analyze the resources."""
        rules = self.rules()
        levels, properties = resolve_config(rules, config, config_source)
        self.configure(levels, properties)
        remediation = {rule.name: rule.remediation for rule in rules}
        findings = sorted(
            (
                Finding(
                    rule=d.policyName,
                    level=LEVELS[d.enforcementLevel],
                    severity=SEVERITIES.get(d.severity, "unspecified"),
                    urn=d.urn,
                    message=_detail(d),
                    remediation=remediation.get(d.policyName, ""),
                )
                for d in self.analyze(
                    resources,
                    resource_rules=any(levels[r.name] != "disabled" for r in rules if not r.stack),
                    stack_rules=any(levels[r.name] != "disabled" for r in rules if r.stack),
                )
            ),
            key=lambda f: (f.level != "mandatory", f.rule, f.urn, f.message),
        )
        checked = len(StackView(resources).analyzed)
        return CheckResult(findings=findings, rules=rules, levels=levels, resources_checked=checked)

    def analyze(
        self,
        resources: Sequence[Mapping[str, Any]],
        *,
        resource_rules: bool = True,
        stack_rules: bool = True,
    ) -> list[analyzer_pb2.AnalyzeDiagnostic]:
        """Resource rules for each custom resource, then stack rules for all of them; a kind of
        rule that is all disabled is not asked (it would answer nothing). A few calls are in
        flight at a time, as many as the pack serves at once (its server has four threads): with
        every call of a 1,300-resource check in flight at once, calls were cancelled."""
        stack = StackView(resources)
        requests = [stack.analyze_request(r) for r in stack.analyzed] if resource_rules else []
        with ThreadPoolExecutor(max_workers=4) as pool:
            responses = list(
                pool.map(lambda req: self.stub.Analyze(req, timeout=CALL_SECONDS), requests)
            )
        diagnostics = []
        for request, response in zip(requests, responses, strict=True):
            for diagnostic in response.diagnostics:
                # As the engine does: a resource rule's violation belongs to the resource analyzed.
                if not diagnostic.urn:
                    diagnostic.urn = request.urn
                diagnostics.append(diagnostic)
        if not stack_rules:
            return diagnostics
        stack_response = self.stub.AnalyzeStack(stack.analyze_stack_request(), timeout=CALL_SECONDS)
        return [*diagnostics, *stack_response.diagnostics]


class StackView:
    """A stack export's resources as the engine hands them to an analyzer."""

    def __init__(self, resources: Sequence[Mapping[str, Any]]) -> None:
        self.providers = {
            f"{r['urn']}::{r.get('id', '')}": r
            for r in resources
            if str(r.get("type", "")).startswith(PROVIDER_TYPE_PREFIX)
        }
        provider_urns = {p["urn"] for p in self.providers.values()}
        self.analyzed = [r for r in resources if r.get("custom") and r["urn"] not in provider_urns]
        self.all = [r for r in resources if r["urn"] not in provider_urns]

    def _provider(
        self, resource: Mapping[str, Any]
    ) -> analyzer_pb2.AnalyzerProviderResource | None:
        provider = self.providers.get(resource.get("provider", ""))
        if provider is None:
            return None
        return analyzer_pb2.AnalyzerProviderResource(
            type=provider["type"],
            urn=provider["urn"],
            name=urn_name(provider["urn"]),
            properties=_struct(provider.get("inputs", {})),
        )

    @staticmethod
    def _options(resource: Mapping[str, Any]) -> analyzer_pb2.AnalyzerResourceOptions:
        return analyzer_pb2.AnalyzerResourceOptions(
            protect=bool(resource.get("protect")), parent=resource.get("parent") or ""
        )

    def analyze_request(self, resource: Mapping[str, Any]) -> analyzer_pb2.AnalyzeRequest:
        return analyzer_pb2.AnalyzeRequest(
            type=resource["type"],
            urn=resource["urn"],
            name=urn_name(resource["urn"]),
            properties=_struct(resource.get("inputs", {})),
            options=self._options(resource),
            provider=self._provider(resource),
        )

    def analyze_stack_request(self) -> analyzer_pb2.AnalyzeStackRequest:
        return analyzer_pb2.AnalyzeStackRequest(
            resources=[
                analyzer_pb2.AnalyzerResource(
                    type=r["type"],
                    urn=r["urn"],
                    name=urn_name(r["urn"]),
                    properties=_struct(r.get("outputs", {})),
                    options=self._options(r),
                    provider=self._provider(r),
                    parent=r.get("parent") or "",
                    dependencies=r.get("dependencies") or [],
                    propertyDependencies={
                        key: analyzer_pb2.AnalyzerPropertyDependencies(urns=urns or [])
                        for key, urns in (r.get("propertyDependencies") or {}).items()
                    },
                )
                for r in self.all
            ]
        )


def _struct(properties: Mapping[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(_wire_secrets(properties))
    return struct


def _wire_secrets(value: Any) -> Any:
    """State files hold secrets as {sig, plaintext|ciphertext}; analyzers get {sig, value}."""
    if isinstance(value, list):
        return [_wire_secrets(item) for item in value]
    if not isinstance(value, dict):
        return value
    if SECRET_SIG_KEY in value and "value" not in value:
        plain = json.loads(value["plaintext"]) if "plaintext" in value else "[secret]"
        return {SECRET_SIG_KEY: value[SECRET_SIG_KEY], "value": plain}
    return {key: _wire_secrets(item) for key, item in value.items()}


def resolve_config(
    rules: Sequence[Rule], document: Mapping[str, Any], source: str
) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    """Enforcement levels and properties per rule from a `--policy-pack-config` document,
    validated against each rule's schema with defaults filled in, as the Pulumi CLI does."""
    if not isinstance(document, Mapping):
        raise PolicyCheckError(
            f"invalid policy pack config: {source} is a JSON {type(document).__name__}; it must "
            'be an object of rule names, e.g. {"all": "mandatory", "<rule>": "advisory"}'
        )
    by_name = {rule.name: rule for rule in rules}
    unknown = sorted(set(document) - set(by_name) - {"all"})
    problems = [f"{source}: unknown rule {name!r}" for name in unknown]
    base_level = document.get("all")
    levels: dict[str, str] = {}
    properties: dict[str, dict[str, Any]] = {}
    for rule in rules:
        entry = document.get(rule.name, {})
        if isinstance(entry, str):
            entry = {"enforcementLevel": entry}
        if not isinstance(entry, Mapping):
            problems.append(
                f"{source}: {rule.name}: {json.dumps(entry)} is neither an enforcement level "
                "nor an object of settings"
            )
            continue
        entry = dict(entry)
        level = entry.pop("enforcementLevel", base_level or rule.default_level)
        if level not in LEVEL_VALUES:
            allowed = ", ".join(sorted(LEVEL_VALUES))
            problems.append(f"{source}: {rule.name}: level {level!r} is not one of {allowed}")
            continue
        schema = {
            "type": "object",
            "additionalProperties": False,
            "properties": rule.config_schema.get("properties", {}),
            "required": rule.config_schema.get("required", []),
        }
        for error in jsonschema.Draft7Validator(schema).iter_errors(entry):
            where = ".".join(str(p) for p in error.absolute_path) or "(config)"
            problems.append(f"{source}: {rule.name}.{where}: {error.message}")
        defaults = {
            key: spec["default"] for key, spec in schema["properties"].items() if "default" in spec
        }
        levels[rule.name] = level
        properties[rule.name] = {**defaults, **entry}
    if problems:
        raise PolicyCheckError(
            "invalid policy pack config:\n" + "\n".join(f"  - {p}" for p in problems)
        )
    return levels, properties


def _detail(diagnostic: analyzer_pb2.AnalyzeDiagnostic) -> str:
    """The SDK prefixes every message with the rule's description; keep what is specific."""
    message = diagnostic.message
    prefix = diagnostic.description + "\n"
    return message[len(prefix) :] if message.startswith(prefix) else message


def short_resource(urn: str) -> str:
    """`type::name` of a URN, enough to find the resource in a plan or the console."""
    if not urn:
        return "(stack)"
    qualified_type = urn.split("::")[2]
    return f"{qualified_type.rsplit('$', 1)[-1]}::{urn_name(urn)}"


def render(result: CheckResult, fmt: str, title: str) -> str:
    if fmt == "json":
        return (
            json.dumps(
                {
                    "title": title,
                    "resourcesChecked": result.resources_checked,
                    "rules": len(result.rules),
                    "findings": [asdict(f) for f in result.findings],
                },
                indent=2,
            )
            + "\n"
        )
    return "\n".join((_markdown if fmt == "markdown" else _text)(result, title)) + "\n"


def render_many(results: Mapping[str, CheckResult], fmt: str) -> str:
    """Several checks in one report: their reports in turn, or a JSON list of them."""
    if fmt == "json":
        documents = [json.loads(render(result, fmt, title)) for title, result in results.items()]
        return json.dumps(documents, indent=2) + "\n"
    return "\n".join(render(result, fmt, title) for title, result in results.items())


def _summary(result: CheckResult) -> str:
    advisory = len(result.findings) - len(result.mandatory)
    return (
        f"{len(result.mandatory)} mandatory and {advisory} advisory violations; "
        f"{result.resources_checked} resources checked against {len(result.rules)} rules"
    )


def _by_level(result: CheckResult) -> Iterator[tuple[str, list[Finding]]]:
    for level in ("mandatory", "advisory"):
        found = [f for f in result.findings if f.level == level]
        if found:
            yield level, found


def _text(result: CheckResult, title: str) -> Iterator[str]:
    yield f"policy check of {title}: {_summary(result)}"
    for level, found in _by_level(result):
        yield ""
        yield f"{level.upper()} ({len(found)}):"
        for finding in found:
            yield f"  [{finding.severity}] {finding.rule}  {short_resource(finding.urn)}"
            yield f"      {finding.message}"
            yield f"      fix: {finding.remediation}"


def _markdown(result: CheckResult, title: str) -> Iterator[str]:
    verdict = "fails" if result.mandatory else "passes"
    yield f"### Policy check of {title} {verdict}"
    yield ""
    yield _summary(result) + "."
    for level, found in _by_level(result):
        yield ""
        yield f"#### {level.capitalize()} ({len(found)})"
        yield ""
        yield "| Rule | Severity | Resource | Violation | Fix |"
        yield "|---|---|---|---|---|"
        for f in found:
            cells = [
                f"`{f.rule}`",
                f.severity,
                f"`{short_resource(f.urn)}`",
                f.message,
                f.remediation,
            ]
            yield (
                "| "
                + " | ".join(cell.replace("|", "\\|").replace("\n", " ") for cell in cells)
                + " |"
            )


def rule_table(
    rules: Sequence[Rule], levels_by_environment: Mapping[str, Mapping[str, str]]
) -> str:
    """The rules as a Markdown table with each environment's enforcement level."""
    environments = list(levels_by_environment)
    header = ["Rule", "Resources", *environments, "Severity", "Checks", "Reference"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for rule in sorted(rules, key=lambda r: r.name):
        types = ", ".join(t.rsplit(":", 1)[-1] for t in rule.resource_types)
        levels = [levels_by_environment[env][rule.name] for env in environments]
        cells = [f"`{rule.name}`", types, *levels, rule.severity, rule.description, rule.compliance]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"
