"""IAM's decision for one request against identity policies, for tests: an explicit Deny wins,
then any Allow, else the implicit deny. Actions and resources match with `*` and `?`; the
condition operators the platform's policies use (String/Arn Equals and Like, StringEquals
ignoring case, their IfExists forms, ForAnyValue, Null) are evaluated, others refuse to guess."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from typing import Any, Literal

Decision = Literal["allow", "deny", "implicit-deny"]


def _strings(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


def _matches(patterns: Any, value: str, *, case_sensitive: bool) -> bool:
    if not case_sensitive:
        value = value.lower()
    return any(
        fnmatch.fnmatchcase(value, pattern if case_sensitive else pattern.lower())
        for pattern in _strings(patterns)
    )


def _condition_holds(conditions: Mapping[str, Any], context: Mapping[str, Any]) -> bool:
    """Every operator's every key holds. Context values are strings, or lists of strings for
    multivalued keys (aws:TagKeys), which only the ForAnyValue operators read."""
    known = {key.lower(): value for key, value in context.items()}
    for operator, tests in conditions.items():
        for key, expected in tests.items():
            actual = known.get(key.lower())
            if not _holds(operator, expected, actual):
                return False
    return True


# Single-valued operators, on a present value.
_OPERATORS: dict[str, Any] = {
    "StringEquals": lambda expected, actual: actual in _strings(expected),
    "ArnEquals": lambda expected, actual: actual in _strings(expected),
    "StringEqualsIgnoreCase": lambda expected, actual: (
        actual.lower() in {value.lower() for value in _strings(expected)}
    ),
    "StringLike": lambda expected, actual: _matches(expected, actual, case_sensitive=True),
    "ArnLike": lambda expected, actual: _matches(expected, actual, case_sensitive=True),
}


def _holds(operator: str, expected: Any, actual: Any) -> bool:
    if operator == "Null":
        return (actual is None) == (expected == "true")
    if operator.startswith("ForAnyValue:"):
        single = operator.removeprefix("ForAnyValue:")
        return any(_holds(single, expected, value) for value in actual or [])
    if operator.endswith("IfExists"):
        return actual is None or _holds(operator.removesuffix("IfExists"), expected, actual)
    if operator not in _OPERATORS:
        raise NotImplementedError(f"condition operator {operator}")
    return actual is not None and bool(_OPERATORS[operator](expected, actual))


def decide(
    documents: Iterable[Mapping[str, Any]],
    action: str,
    resource: str,
    context: Mapping[str, Any] | None = None,
) -> Decision:
    applicable = [
        statement
        for document in documents
        for statement in document["Statement"]
        if _matches(statement["Action"], action, case_sensitive=False)
        and _matches(statement["Resource"], resource, case_sensitive=True)
        and _condition_holds(statement.get("Condition", {}), context or {})
    ]
    if any(s["Effect"] == "Deny" for s in applicable):
        return "deny"
    return "allow" if applicable else "implicit-deny"
