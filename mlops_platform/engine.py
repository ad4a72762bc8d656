"""Runs the real `infra/` program in-process under a recording mock engine.

Pulumi's mock monitor does not hand parent, dependencies or options to `Mocks.new_resource`
(pulumi/pulumi#14421), so `RecordingMonitor` records each RegisterResource request itself and
then lets the SDK's monitor answer it. The program runs through `run_in_stack`, as the Python
language host runs it under `pulumi up`, so its exports land on the stack resource.
"""

from __future__ import annotations

import asyncio
import contextvars
import heapq
import json
import logging
import runpy
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format, struct_pb2
from google.protobuf.empty_pb2 import Empty
from pulumi.runtime.config import set_all_config
from pulumi.runtime.mocks import MockEngine, MockMonitor, MockSettings
from pulumi.runtime.settings import configure
from pulumi.runtime.stack import run_in_stack

from mlops_platform.mock_cloud import MockCloud
from mlops_platform.project import PulumiProject, StackConfig

STACK_TYPE = "pulumi:pulumi:Stack"
SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"


@dataclass
class RecordedResource:
    urn: str
    type: str
    name: str
    custom: bool
    id: str
    parent: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    dependencies: list[str]
    property_dependencies: dict[str, list[str]]
    protect: bool
    retain_on_delete: bool
    provider: str
    ignore_changes: list[str] = field(default_factory=list)
    """Kept for review and tests; `pulumi stack export` has no place for it."""

    def to_state(self) -> dict[str, Any]:
        """This resource as an entry of `pulumi stack export`'s `deployment.resources`."""
        state: dict[str, Any] = {"urn": self.urn, "custom": self.custom}
        if self.custom:
            state["id"] = self.id
        state.update(
            type=self.type,
            inputs=self.inputs,
            outputs=self.outputs,
            parent=self.parent,
            dependencies=self.dependencies,
            propertyDependencies=self.property_dependencies,
            protect=self.protect,
            retainOnDelete=self.retain_on_delete,
            provider=self.provider,
        )
        return state


@dataclass
class RenderedStack:
    project: str
    stack: str
    resources: list[RecordedResource]
    """In dependency order: everything a resource refers to comes before it."""
    _by_urn: dict[str, RecordedResource] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._by_urn = {resource.urn: resource for resource in self.resources}

    @property
    def outputs(self) -> dict[str, Any]:
        """The stack's exports."""
        return self.of_type(STACK_TYPE)[0].outputs

    def get(self, urn: str) -> RecordedResource:
        return self._by_urn[urn]

    def of_type(self, type_token: str) -> list[RecordedResource]:
        return [resource for resource in self.resources if resource.type == type_token]

    def children(self, urn: str) -> list[RecordedResource]:
        return [resource for resource in self.resources if resource.parent == urn]

    def dependents_through(self, urn: str, prop: str) -> list[RecordedResource]:
        """Resources whose input `prop` was computed from the resource `urn`."""
        return [
            resource
            for resource in self.resources
            if urn in resource.property_dependencies.get(prop, [])
        ]

    def to_deployment(self) -> dict[str, Any]:
        """The stack in the shape of `pulumi stack export` (a version 3 deployment)."""
        return {
            "version": 3,
            "deployment": {
                "manifest": {
                    "time": "0001-01-01T00:00:00Z",
                    "magic": "",
                    "version": "mlops-platform offline plan",
                },
                "resources": [resource.to_state() for resource in self.resources],
            },
        }


def dump_deployment(rendered: RenderedStack) -> str:
    return json.dumps(rendered.to_deployment(), indent=2, sort_keys=True) + "\n"


class RecordingMonitor(MockMonitor):
    """The SDK's mock monitor, keeping the full registration requests it answers."""

    def __init__(self, mocks: MockCloud, project: str, stack: str) -> None:
        super().__init__(mocks)
        self.project = project
        self.stack = stack
        self.recorded: dict[str, RecordedResource] = {}

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        """URNs as the engine makes them: the parent's whole type chain, the stack left out."""
        parent_type = parent.split("::")[2] if parent else STACK_TYPE
        qualified = type_ if parent_type == STACK_TYPE else f"{parent_type}${type_}"
        return f"urn:pulumi:{self.stack}::{self.project}::{qualified}::{name}"

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802  (gRPC method name)
        response = super().RegisterResource(request)
        self.recorded[response.urn] = RecordedResource(
            urn=response.urn,
            type=request.type,
            name=request.name,
            custom=request.custom,
            id=response.id,
            parent=request.parent,
            inputs=_plain(request.object),
            outputs=_plain(response.object) if request.custom else {},
            dependencies=sorted(set(request.dependencies)),
            property_dependencies={
                key: sorted(set(deps.urns))
                for key, deps in sorted(request.propertyDependencies.items())
            },
            protect=request.protect,
            retain_on_delete=request.retainOnDelete,
            ignore_changes=sorted(request.ignoreChanges),
            # The engine binds a custom resource without a provider to the package's default
            # provider; `_with_default_providers` adds those and fills this in.
            provider=request.provider
            or (
                f"default:{request.version}"
                if _takes_default_provider(request.type, request.custom)
                else ""
            ),
        )
        return response

    def RegisterResourceOutputs(self, request: Any) -> Empty:  # noqa: N802
        self.recorded[request.urn].outputs = _plain(request.outputs)
        return Empty()


def _takes_default_provider(type_token: str, custom: bool) -> bool:
    """Custom resources run on their package's default provider unless given one; providers
    themselves run on none."""
    return custom and not type_token.startswith("pulumi:providers:")


def render_stack(project: PulumiProject, stack: str) -> RenderedStack:
    """Run the project's program for `stack` offline and return everything it registered.

    Raises whatever the program raises (a `pulumi.RunError` for bad config) once the runtime
    has shut down.
    """
    config = project.stack_config(stack)

    def program() -> None:
        runpy.run_path(str(project.main), run_name="__main__")

    return render_program(
        program,
        project=project.name,
        stack=stack,
        config=config,
        root_directory=str(project.root),
    )


def render_program(
    program: Callable[[], None],
    *,
    project: str,
    stack: str,
    config: StackConfig,
    root_directory: str = ".",
) -> RenderedStack:
    """Run any Pulumi program function under the recording engine, as `pulumi up` would."""
    cloud = MockCloud(stack=stack, region=config.region)
    monitor = RecordingMonitor(cloud, project, stack)

    def run() -> None:
        configure(
            MockSettings(
                monitor=monitor,
                monitor_features=set(monitor.GetDeploymentInfo(Empty()).supportedFeatures),
                engine=MockEngine(logging.getLogger("mlops_platform.program")),
                project=project,
                stack=stack,
                root_directory=root_directory,
                dry_run=False,
                organization="organization",
                callbacks=None,
            )
        )
        set_all_config(config.values, config.secret_keys)
        loop = asyncio.new_event_loop()
        loop.set_default_executor(_ExecutorWithThreadLoops())
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(run_in_stack(program))
        finally:
            loop.run_until_complete(loop.shutdown_default_executor())
            asyncio.set_event_loop(None)
            loop.close()

    # A fresh context gives the SDK's context-variable globals (root stack, settings) their
    # defaults, so several stacks can render in one process.
    contextvars.Context().run(run)
    resources = _with_default_providers(list(monitor.recorded.values()), project, stack, cloud)
    return RenderedStack(project=project, stack=stack, resources=_dependency_order(resources))


class _ExecutorWithThreadLoops(ThreadPoolExecutor):
    """The SDK's mock monitor needs an event loop in each RPC thread and makes one if missing,
    never closing it; here each worker gets its loop up front and the pool closes them."""

    def __init__(self) -> None:
        self._thread_loops: list[asyncio.AbstractEventLoop] = []
        super().__init__(initializer=self._give_thread_a_loop)

    def _give_thread_a_loop(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._thread_loops.append(loop)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        super().shutdown(wait=True, cancel_futures=cancel_futures)
        for loop in self._thread_loops:
            loop.close()


def _plain(message: struct_pb2.Struct) -> dict[str, Any]:
    """A property struct as JSON values, in the form Pulumi's state file uses."""
    result: dict[str, Any] = _normalize(json_format.MessageToDict(message))
    return result


def _normalize(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_normalize(item) for item in value]
    if isinstance(value, dict):
        if value.get(SECRET_SIG_KEY) == SECRET_SIG and "value" in value:
            # State files carry secrets as {sig, ciphertext}; a plan has only mock and
            # placeholder values to hide, so it shows them the way `--show-secrets` does.
            return {
                SECRET_SIG_KEY: SECRET_SIG,
                "plaintext": json.dumps(_normalize(value["value"]), sort_keys=True),
            }
        return {key: _normalize(item) for key, item in value.items()}
    return value


def _with_default_providers(
    resources: list[RecordedResource], project: str, stack: str, cloud: MockCloud
) -> list[RecordedResource]:
    """Add the default provider resources the engine would create, and bind resources to them."""
    providers: dict[str, RecordedResource] = {}
    for resource in resources:
        if not resource.provider.startswith("default:"):
            continue
        package = resource.type.split(":", 1)[0]
        version = resource.provider.removeprefix("default:")
        name = "default_" + version.replace(".", "_") if version else "default"
        urn = f"urn:pulumi:{stack}::{project}::pulumi:providers:{package}::{name}"
        if urn not in providers:
            inputs = {"version": version} if version else {}
            if package == "aws":
                inputs["region"] = cloud.region
            providers[urn] = RecordedResource(
                urn=urn,
                type=f"pulumi:providers:{package}",
                name=name,
                custom=True,
                id=cloud.provider_id(urn),
                parent="",
                inputs=inputs,
                outputs=dict(inputs),
                dependencies=[],
                property_dependencies={},
                protect=False,
                retain_on_delete=False,
                provider="",
            )
        resource.provider = f"{urn}::{providers[urn].id}"
    return [*providers.values(), *resources]


def _dependency_order(resources: list[RecordedResource]) -> list[RecordedResource]:
    """Topological order with ties broken by URN: stable whatever order RPCs completed in."""
    by_urn = {resource.urn: resource for resource in resources}
    prerequisites = {
        urn: set(_refers_to(resource)) & by_urn.keys() for urn, resource in by_urn.items()
    }
    dependents: dict[str, list[str]] = {urn: [] for urn in by_urn}
    for urn, needs in prerequisites.items():
        for need in needs:
            dependents[need].append(urn)
    # The stack resource leads, as in `pulumi stack export`.
    ready = [
        (by_urn[urn].type != STACK_TYPE, urn) for urn, needs in prerequisites.items() if not needs
    ]
    heapq.heapify(ready)
    ordered = []
    while ready:
        _, urn = heapq.heappop(ready)
        ordered.append(by_urn[urn])
        for dependent in dependents[urn]:
            prerequisites[dependent].discard(urn)
            if not prerequisites[dependent]:
                heapq.heappush(ready, (True, dependent))
    return ordered


def _refers_to(resource: RecordedResource) -> Iterator[str]:
    if resource.parent:
        yield resource.parent
    yield from resource.dependencies
    for urns in resource.property_dependencies.values():
        yield from urns
    if resource.provider:
        yield resource.provider.rsplit("::", 1)[0]
