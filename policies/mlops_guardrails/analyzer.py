"""Read each resource's properties once per analyzer request, not once per rule.

pulumi-policy's analyzer (`pulumi_policy/policy.py`, 1.21) converts a resource's properties from
protobuf, deserializes them and wraps them in an unknown-checking proxy inside its loop over the
pack's policies: for every rule, even the rules that do not apply to the resource's type. With
sixty rules that is sixty conversions of the same message, three quarters of a check's time in
`pulumi preview --policy-pack` as in `mlops-platform check`. Each step builds a new structure
from its input without changing it, so within one request the result for the same message is
the same; `analyze_each_resource_once` remembers it for the length of the request. The rules
see the same properties, so they must only read them (the proxy would let one write): a test
reads every rule's source and fails on a write to its properties.

The names patched exist in the pulumi-policy release `policies/requirements.txt` pins; should
they move, nothing is changed and the pack runs as before.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

import pulumi_policy.policy

# Private names of the SDK's analyzer module, patched by name.
sdk: Any = pulumi_policy.policy
PATCHED_NAMES = ("json_format", "deserialize_properties", "unknown_checking_proxy")
REQUEST_METHODS = ("Analyze", "AnalyzeStack")


class _RequestMemory(threading.local):
    """Results by the identity of their input, for the request this thread is serving."""

    entries: dict[tuple[str, int], tuple[Any, Any]] | None = None


_memory = _RequestMemory()


def _remembered(kind: str, source: Any, compute: Callable[[], Any]) -> Any:
    entries = _memory.entries
    if entries is None:
        return compute()
    key = (kind, id(source))
    found = entries.get(key)
    # The source is held with its result, so its id cannot be reused within the request.
    if found is not None and found[0] is source:
        return found[1]
    result = compute()
    entries[key] = (source, result)
    return result


class _RememberingJsonFormat:
    def __init__(self, json_format: Any) -> None:
        self._json_format = json_format

    def __getattr__(self, name: str) -> Any:
        return getattr(self._json_format, name)

    def MessageToDict(self, message: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N802
        if args or kwargs:
            return self._json_format.MessageToDict(message, *args, **kwargs)
        return _remembered("dict", message, lambda: self._json_format.MessageToDict(message))


def _one_request(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def serve(self: Any, request: Any, context: Any) -> Any:
        _memory.entries = {}
        try:
            return method(self, request, context)
        finally:
            _memory.entries = None

    return serve


def analyze_each_resource_once() -> bool:
    """Install the memory into pulumi-policy's analyzer; False if its internals have moved."""
    servicer = getattr(sdk, "_PolicyAnalyzerServicer", None)
    if servicer is None or not all(hasattr(sdk, name) for name in PATCHED_NAMES):
        return False
    if not all(callable(getattr(servicer, name, None)) for name in REQUEST_METHODS):
        return False
    if isinstance(sdk.json_format, _RememberingJsonFormat):
        return True
    deserialize = sdk.deserialize_properties

    def deserialize_once(props: Any, *args: Any, **kwargs: Any) -> Any:
        kind = f"deserialized:{args}:{sorted(kwargs.items())}"
        return _remembered(kind, props, lambda: deserialize(props, *args, **kwargs))

    proxy = sdk.unknown_checking_proxy

    def proxy_once(value: Any, *args: Any, **kwargs: Any) -> Any:
        kind = f"proxy:{args}:{sorted(kwargs.items())}"
        return _remembered(kind, value, lambda: proxy(value, *args, **kwargs))

    sdk.json_format = _RememberingJsonFormat(sdk.json_format)
    sdk.deserialize_properties = deserialize_once
    sdk.unknown_checking_proxy = proxy_once
    for name in REQUEST_METHODS:
        setattr(servicer, name, _one_request(getattr(servicer, name)))
    return True
