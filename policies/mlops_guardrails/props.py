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
