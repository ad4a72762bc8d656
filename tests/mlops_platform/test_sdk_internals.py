"""The SDK internals the offline engine drives, checked by name so an upgrade fails loudly here.

The engine (mlops_platform/engine.py) runs the program through the SDK's own mock monitor,
settings and stack runner, and replaces its quiescence wait; pyproject.toml pins the SDK to the
releases this suite has run on. Widen the pin only when this file passes on the new release.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import tomllib
from collections.abc import Callable

import pytest
from packaging.requirements import Requirement
from pulumi._utils import ContextProperty
from pulumi.runtime import config, mocks, settings, stack
from pulumi.runtime.proto import resource_pb2
from pulumi.runtime.rpc_manager import RPCManager

from mlops_platform.engine import RecordingMonitor
from tests.conftest import REPO_ROOT

VERSION = importlib.metadata.version("pulumi")
SETTINGS_PASSED = (
    "monitor",
    "monitor_features",
    "engine",
    "project",
    "stack",
    "root_directory",
    "dry_run",
    "organization",
    "callbacks",
)
REQUEST_FIELDS_RECORDED = (
    "type",
    "name",
    "parent",
    "custom",
    "object",
    "dependencies",
    "propertyDependencies",
    "protect",
    "retainOnDelete",
    "ignoreChanges",
    "provider",
    "version",
)


def parameters(function: Callable[..., object]) -> list[str]:
    return list(inspect.signature(function).parameters)


def mock_settings_keep_what_the_runtime_reads() -> bool:
    return "kwargs" in parameters(mocks.MockSettings.__init__) and all(
        isinstance(settings.Settings.__dict__.get(name), ContextProperty)
        for name in SETTINGS_PASSED
    )


def the_recording_monitor_overrides_live_methods() -> bool:
    overridden = [n for n, v in vars(RecordingMonitor).items() if n[0].isupper() and callable(v)]
    return all(callable(getattr(mocks.MockMonitor, name, None)) for name in overridden)


def quiescence_is_awaited_through_the_module_function() -> bool:
    return "await wait_for_rpcs()" in inspect.getsource(stack.run_pulumi_func) and parameters(
        stack.wait_for_rpcs
    ) == ["await_all_outstanding_tasks"]


def pending_work_is_where_the_engine_waits_for_it() -> bool:
    manager = RPCManager()
    return (
        isinstance(settings.Settings.__dict__.get("outputs"), ContextProperty)
        and isinstance(settings.SETTINGS.outputs, set)
        and hasattr(settings.SETTINGS.lock, "acquire")
        and isinstance(settings._get_rpc_manager(), RPCManager)
        and isinstance(manager.rpcs, list)
        and hasattr(manager, "unhandled_exception")
        and hasattr(manager, "exception_traceback")
    )


INTERNALS: dict[str, Callable[[], bool]] = {
    "MockSettings keeps the settings the engine passes, as the runtime reads them": (
        mock_settings_keep_what_the_runtime_reads
    ),
    "MockMonitor still has every method the recording monitor overrides": (
        the_recording_monitor_overrides_live_methods
    ),
    "configure, set_all_config and run_in_stack take what the engine passes": lambda: (
        parameters(settings.configure) == ["settings"]
        and parameters(config.set_all_config)[:2] == ["config", "secret_keys"]
        and parameters(stack.run_in_stack) == ["func"]
    ),
    "run_pulumi_func waits through the module's wait_for_rpcs, which the engine replaces": (
        quiescence_is_awaited_through_the_module_function
    ),
    "pending RPCs and outputs are where the engine's wait looks for them": (
        pending_work_is_where_the_engine_waits_for_it
    ),
    "RegisterResourceRequest has every field the monitor records": lambda: (
        set(REQUEST_FIELDS_RECORDED)
        <= set(resource_pb2.RegisterResourceRequest.DESCRIPTOR.fields_by_name)
    ),
}


@pytest.mark.parametrize("internal", INTERNALS)
def test_an_sdk_internal_the_engine_relies_on_is_unchanged(internal: str) -> None:
    assert INTERNALS[internal](), (
        f"pulumi {VERSION}: no longer true that {internal}. The offline engine "
        "(mlops_platform/engine.py) relies on it; adapt the engine before moving the pin in "
        "pyproject.toml."
    )


def test_the_installed_sdk_is_within_the_pin() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    [pin] = [Requirement(r) for r in project["dependencies"] if Requirement(r).name == "pulumi"]
    assert VERSION in pin.specifier, f"pulumi {VERSION} is outside the tested pin {pin}"
