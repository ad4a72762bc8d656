"""Defensive reads of resource properties.

At run time the SDK hands rules read-only Mapping/Sequence proxies, not dicts and lists; a
property the program did not set is absent rather than None; a value unknown at preview raises
the SDK's UnknownValueError when read, which the SDK turns into "not checked".
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any


def mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def items(value: Any) -> list[Any]:
    if isinstance(value, Sequence) and not isinstance(value, str):
        return list(value)
    return []


def is_true(value: Any) -> bool:
    """Provider booleans sometimes arrive as strings ("true")."""
    return value is True or (isinstance(value, str) and value.lower() == "true")


def policy_statements(document: Any) -> list[Mapping[str, Any]]:
    """The statements of an IAM-style policy given as a JSON string or an object."""
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError:
            return []
    statements = mapping(document).get("Statement")
    if isinstance(statements, Mapping):
        return [statements]
    return [mapping(statement) for statement in items(statements)]


def as_strings(value: Any) -> list[str]:
    """IAM fields that may be one string or a list of strings."""
    if isinstance(value, str):
        return [value]
    return [item for item in items(value) if isinstance(item, str)]


def principals(statement: Mapping[str, Any]) -> list[str]:
    """Every principal a statement names, whatever its kind (`*` stands for anyone)."""
    principal = statement.get("Principal")
    if isinstance(principal, str):
        return [principal]
    return [name for value in mapping(principal).values() for name in as_strings(value)]


def is_open_to_anyone(statement: Mapping[str, Any]) -> bool:
    """An Allow whose principal is anyone and that no condition narrows."""
    return (
        statement.get("Effect") == "Allow"
        and "*" in principals(statement)
        and not mapping(statement.get("Condition"))
    )


def action_matches(pattern: str, action: str) -> bool:
    """Whether an IAM action pattern (`iam:Put*`, `*`) covers an action, case-insensitively."""
    pattern, action = pattern.lower(), action.lower()
    if pattern == "*":
        return True
    if pattern.endswith("*"):
        return action.startswith(pattern[:-1])
    return pattern == action
