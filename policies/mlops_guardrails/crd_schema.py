"""Custom resources judged as the API server would judge them: against the OpenAPI schema and
the CEL rules (`x-kubernetes-validations`) of the CRD version the cluster runs.

The schemas are facts carried over from the CRDs' source (`crds/*.json`, named by a chart
contract's `crd_schemas`). A resource is checked after the API server's structural defaulting;
fields the schema does not know are reported (the API server would drop them without a word);
rules that compare with the previous object (`oldSelf`) apply only to updates and are skipped.
A value still unknown at preview is not judged, nor is any rule over it.

CEL runs on cel-expr-python (the CEL team's binding of cel-cpp), with the Kubernetes regex
library's `find`, which Karpenter's rules use and no CEL implementation ships.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from importlib import resources
from typing import Any, Final

import jsonschema
from cel_expr_python import cel
from cel_expr_python.ext import ext_strings
from pulumi_policy.proxy import UnknownValueError

from mlops_guardrails.behaviour import PlanResource, releases

VALIDATIONS: Final = "x-kubernetes-validations"


class _Unknown:
    """A value the preview does not know yet."""

    def __repr__(self) -> str:
        return "<unknown>"


UNKNOWN: Final = _Unknown()


def plain(value: Any) -> Any:
    """Properties as plain dicts and lists, values unknown at preview as UNKNOWN."""
    if isinstance(value, Mapping):
        found = {}
        for key in value:
            try:
                found[key] = plain(value[key])
            except UnknownValueError:
                found[key] = UNKNOWN
        return found
    if isinstance(value, Sequence) and not isinstance(value, str):
        elements = []
        for index in range(len(value)):
            try:
                elements.append(plain(value[index]))
            except UnknownValueError:
                elements.append(UNKNOWN)
        return elements
    return value


@functools.cache
def schemas(facts: str) -> dict[str, Any]:
    """The schemas of a facts file (`crds/<file>`) by Pulumi type token."""
    text = resources.files("mlops_guardrails").joinpath("crds", facts).read_text()
    kinds: dict[str, Any] = json.loads(text)["kinds"]
    return kinds


def with_defaults(schema: Mapping[str, Any], value: Any) -> Any:
    """The object after the API server's defaulting: each absent property with a default gets
    it, at every level that is present."""
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        # The API server drops nulls before defaulting (no Karpenter field is nullable).
        result = {
            key: with_defaults(properties.get(key) or (extra if isinstance(extra, dict) else {}), v)
            for key, v in value.items()
            if v is not None
        }
        for key, property_schema in properties.items():
            if key not in result and "default" in property_schema:
                result[key] = with_defaults(
                    property_schema, copy.deepcopy(property_schema["default"])
                )
        return result
    if isinstance(value, list):
        return [with_defaults(schema.get("items") or {}, element) for element in value]
    return value


def _strict(schema: Any) -> Any:
    """The schema with unknown fields refused: where the API server prunes them silently, a
    mistyped field name would otherwise vanish."""
    if isinstance(schema, dict):
        strict = {key: _strict(value) for key, value in schema.items()}
        if "properties" in schema and "additionalProperties" not in schema:
            strict["additionalProperties"] = False
        return strict
    if isinstance(schema, list):
        return [_strict(value) for value in schema]
    return schema


@functools.cache
def _validator(facts: str, type_token: str) -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(_strict(schemas(facts)[type_token]))


def _path(parts: Sequence[Any]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text.lstrip(".") or "(root)"


def _contains_unknown(value: Any) -> bool:
    if value is UNKNOWN:
        return True
    if isinstance(value, dict):
        return any(_contains_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(_contains_unknown(v) for v in value)
    return False


def _structural(facts: str, type_token: str, value: Any) -> Iterator[str]:
    for error in _validator(facts, type_token).iter_errors(value):
        if not _contains_unknown(error.instance):
            yield f"{_path(list(error.absolute_path))}: {error.message}"


def _find(text: str, pattern: str) -> str:
    """The Kubernetes regex library's `find`: the first match, or ''."""
    match = re.search(pattern, text)
    return match.group(0) if match else ""


@functools.cache
def _environment() -> Any:
    find = cel.FunctionDecl(
        "find",
        [
            cel.Overload(
                "kubernetes_string_find",
                cel.Type.STRING,
                [cel.Type.STRING, cel.Type.STRING],
                is_member=True,
                impl=_find,
            )
        ],
    )
    return cel.NewEnv(
        # oldSelf is declared so transition rules compile (and a typo in one still fails).
        variables={"self": cel.Type.DYN, "oldSelf": cel.Type.DYN},
        extensions=[ext_strings.ExtStrings()],
        functions=[find],
    )


@functools.cache
def _program(rule: str) -> Any:
    return _environment().compile(rule)


def is_transition_rule(rule: str) -> bool:
    return re.search(r"\boldSelf\b", rule) is not None


def _rule_holds(rule: str, value: Any) -> bool:
    """Kubernetes counts an evaluation error as a failed rule."""
    result = _program(rule).eval(data={"self": value})
    return result.type() != cel.Type.ERROR and result.value() is True


def _cel(schema: Mapping[str, Any], value: Any, path: list[Any]) -> Iterator[str]:
    # A rule over a value the preview does not know yet waits; rules below it may still judge
    # the known parts.
    if not _contains_unknown(value):
        for validation in schema.get(VALIDATIONS) or ():
            rule = validation["rule"]
            if not is_transition_rule(rule) and not _rule_holds(rule, value):
                yield f"{_path(path)}: {validation.get('message') or 'fails ' + rule}"
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        for key, element in value.items():
            element_schema = properties.get(key) or schema.get("additionalProperties")
            if isinstance(element_schema, Mapping):
                yield from _cel(element_schema, element, [*path, key])
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for index, element in enumerate(value):
            yield from _cel(schema["items"], element, [*path, index])


def problems(facts: str, type_token: str, properties: Any) -> list[str]:
    """What the API server would refuse about a custom resource, in its own words."""
    value = with_defaults(schemas(facts)[type_token], plain(properties))
    return [*_structural(facts, type_token, value), *_cel(schemas(facts)[type_token], value, [])]


def custom_resource_problems(resources: Sequence[PlanResource]) -> Iterator[tuple[str, str]]:
    """Every custom resource of a CRD a release in the plan installs, against that release's
    version of the CRD."""
    installed = {
        (release.contract.crd_schemas, f"{release.contract.chart} {release.contract.version}")
        for release in releases(resources)
        if release.contract.crd_schemas
    }
    for facts, chart in sorted(installed):
        kinds = schemas(facts)
        for resource in resources:
            if resource.type in kinds:
                kind = resource.type.rsplit(":", 1)[-1]
                for problem in problems(facts, resource.type, resource.props):
                    yield f"{kind} {problem} (the CRD of {chart} refuses it)", resource.urn
