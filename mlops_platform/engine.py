"""Runs the real `infra/` program in-process under a recording mock engine.

Pulumi's mock monitor does not hand parent, dependencies or options to `Mocks.new_resource`
(pulumi/pulumi#14421), so `RecordingMonitor` records each RegisterResource request itself and
then lets the SDK's monitor answer it. The program runs through `run_in_stack`, as the Python
language host runs it under `pulumi up`, so its exports land on the stack resource.

The engine drives SDK internals (the mock monitor and settings, `run_in_stack`, the RPC manager
and the set of pending outputs); `pyproject.toml` pins the SDK to the releases this is tested on
and `tests/mlops_platform/test_sdk_internals.py` fails by name when one of them changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import heapq
import json
import logging
import re
import runpy
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from google.protobuf import json_format, struct_pb2
from google.protobuf.empty_pb2 import Empty
from pulumi.runtime import stack as sdk_stack
from pulumi.runtime.config import set_all_config
from pulumi.runtime.mocks import MockEngine, MockMonitor, MockSettings
from pulumi.runtime.proto import resource_pb2
from pulumi.runtime.settings import SETTINGS, _get_rpc_manager, configure
from pulumi.runtime.stack import run_in_stack

from mlops_guardrails.export import (
    PROVIDER_TYPE_PREFIX,
    SECRET_SIG,
    SECRET_SIG_KEY,
    STACK_TYPE,
    urn,
)
from mlops_platform.errors import UserError
from mlops_platform.mock_cloud import STACK_REFERENCE, MockCloud
from mlops_platform.project import STACK_REFERENCE_NAME, PulumiProject, StackConfig
from mlops_platform.render_cache import RenderCache, render_key, render_stacks, working_tree_sources
from mlops_platform.rendered import RecordedResource, RenderedStack


class DuplicateUrnError(UserError):
    """Two resources registered under one URN: `pulumi up` refuses the program."""


class RefusedRegistrationError(UserError):
    """A registration the engine's resource monitor refuses and the SDK's mocks accept."""


TYPE_TOKEN = re.compile(r"^[^:]+:[^:]*:[^:]+$")
"""`package:module:Type`, as the engine parses a type token before registering anything
(pulumi's tokens.ParseTypeToken); providers are `pulumi:providers:<package>`."""


class RecordingMonitor(MockMonitor):
    """The SDK's mock monitor, keeping the full registration requests it answers."""

    def __init__(self, mocks: MockCloud, project: str, stack: str) -> None:
        super().__init__(mocks)
        self.cloud = mocks
        self.project = project
        self.stack = stack
        self.recorded: dict[str, RecordedResource] = {}

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        """URNs as the engine makes them: the parent's whole type chain, the stack left out."""
        parent_type = parent.split("::")[2] if parent else STACK_TYPE
        qualified = type_ if parent_type == STACK_TYPE else f"{parent_type}${type_}"
        return urn(self.stack, self.project, qualified, name)

    def ReadResource(self, request: Any) -> Any:  # noqa: N802
        """A StackReference the engine has no outputs for yet reads as unknown, as a value not
        yet known does in a preview: what the program builds from it waits."""
        if request.type == STACK_REFERENCE and request.id not in self.cloud.stack_outputs:
            self.cloud.unresolved.add(request.id)
            return resource_pb2.ReadResourceResponse(
                urn=self.make_urn(request.parent, request.type, request.name), unknown=True
            )
        return super().ReadResource(request)

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802  (gRPC method name)
        if not TYPE_TOKEN.match(request.type):
            raise RefusedRegistrationError(
                f"resource '{request.name}': type '{request.type}' is not a valid type token "
                "(must have format '*:*:*')"
            )
        response = super().RegisterResource(request)
        if response.urn in self.recorded:
            # The engine refuses a second registration of one URN; the SDK's mocks would answer
            # it and let the second overwrite the first.
            raise DuplicateUrnError(
                f"Duplicate resource URN '{response.urn}'; try giving it a unique name"
            )
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
            aliases=self._alias_urns(request),
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

    def _alias_urns(self, request: Any) -> list[str]:
        """Each alias as the URN it names, in the program's order (the engine takes the first
        that matches): given as one, or a spec whose unset parts are the resource's own
        (Pulumi's Alias defaults)."""
        found = []
        for alias in request.aliases:
            if alias.urn:
                found.append(alias.urn)
                continue
            spec = alias.spec
            parent = "" if spec.noParent else spec.parentUrn or request.parent
            found.append(
                self.make_urn(parent, spec.type or request.type, spec.name or request.name)
            )
        return list(dict.fromkeys(found))

    def RegisterResourceOutputs(self, request: Any) -> Empty:  # noqa: N802
        self.recorded[request.urn].outputs = _plain(request.outputs)
        return Empty()


def _takes_default_provider(type_token: str, custom: bool) -> bool:
    """Custom resources run on their package's default provider unless given one; providers
    themselves run on none."""
    return custom and not type_token.startswith(PROVIDER_TYPE_PREFIX)


def render_stack(project: PulumiProject, stack: str) -> RenderedStack:
    """Run the project's program for `stack` offline and return everything it registered.

    A stack the program reads through a StackReference is rendered too (through the render
    cache) and its outputs given to the program, which then runs again: a model team's project
    renders against the platform stack it deploys onto.

    Raises whatever the program raises (a `pulumi.RunError` for bad config) once the runtime
    has shut down.
    """
    config = project.stack_config(stack)

    def program() -> None:
        runpy.run_path(str(project.main), run_name="__main__")

    # A reference named in the stack's config (the usual way) is rendered first, so the
    # program runs once; any other is found by running it.
    outputs: dict[str, dict[str, Any]] = {}
    references: dict[str, dict[str, str]] = {}
    for name, _, _ in project.config_references(stack):
        outputs[name], references[name] = _referenced_stack(project, name)
    while True:
        unresolved: set[str] = set()
        rendered = render_program(
            program,
            project=project.name,
            stack=stack,
            config=config,
            root_directory=str(project.root),
            stack_outputs=outputs,
            unresolved=unresolved,
        )
        missing = unresolved - outputs.keys()
        if not missing:
            rendered.references = references
            return rendered
        for name in sorted(missing):
            outputs[name], references[name] = _referenced_stack(project, name)


def _referenced_stack(project: PulumiProject, name: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The outputs of the stack a StackReference names (`<organization>/<project>/<stack>`),
    rendered from the nearest project of that name at or above this one."""
    if not STACK_REFERENCE_NAME.fullmatch(name):
        raise StackReferenceError(
            f"stack reference {name!r}: name it <organization>/<project>/<stack>"
        )
    _, project_name, stack = name.split("/")
    referenced = project.named_above(project_name)
    if referenced is None:
        raise StackReferenceError(
            f"stack reference {name!r}: no project {project_name!r} at or above "
            f"{project.root} to render it from"
        )
    rendered = render_stacks(referenced, [stack], RenderCache.for_project(referenced))[stack]
    key = render_key(referenced.name, stack, working_tree_sources(referenced, stack))
    return rendered.outputs, {"root": str(referenced.root), "stack": stack, "key": key}


class StackReferenceError(UserError):
    """A StackReference the offline engine cannot resolve; the message says which and why."""


def render_program(
    program: Callable[[], None],
    *,
    project: str,
    stack: str,
    config: StackConfig,
    root_directory: str = ".",
    stack_outputs: Mapping[str, Mapping[str, Any]] | None = None,
    unresolved: set[str] | None = None,
) -> RenderedStack:
    """Run any Pulumi program function under the recording engine, as `pulumi up` would.
    `stack_outputs` answers the program's StackReferences; the names it lacks are added to
    `unresolved`."""
    cloud = MockCloud(
        stack=stack,
        region=config.region,
        stack_outputs=stack_outputs or {},
        unresolved=unresolved if unresolved is not None else set(),
    )
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
            with _quiescence_in_one_pass():
                loop.run_until_complete(run_in_stack(program))
        finally:
            # A program that failed leaves outputs pending; cancelled and awaited here (as
            # asyncio.run does), they are not destroyed pending when the loop goes, and the
            # SDK's record of them goes with this loop rather than into the next render's.
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            with SETTINGS.lock:
                SETTINGS.outputs.clear()
            loop.run_until_complete(loop.shutdown_default_executor())
            asyncio.set_event_loop(None)
            loop.close()

    # A fresh context gives the SDK's context-variable globals (root stack, settings) their
    # defaults, so several stacks can render in one process.
    contextvars.Context().run(run)
    resources = _with_default_providers(list(monitor.recorded.values()), project, stack, cloud)
    return RenderedStack(project=project, stack=stack, resources=_dependency_order(resources))


@contextlib.contextmanager
def _quiescence_in_one_pass() -> Iterator[None]:
    """Wait for the program's outstanding work as the SDK does, in linear rather than
    quadratic time.

    After the program returns, the SDK's `wait_for_rpcs` waits for the first of all pending
    outputs to finish, then starts over with all the others: O(outputs) per finished output,
    half of a 200-resource render. Here each output is watched once, from when it appears, with
    the same meaning: every RPC and output finished, outputs created meanwhile included, the
    first failure raised as soon as it happens (even while another output never resolves).
    """
    original = sdk_stack.wait_for_rpcs
    sdk_stack.wait_for_rpcs = _wait_for_rpcs
    try:
        yield
    finally:
        sdk_stack.wait_for_rpcs = original


async def _wait_for_rpcs(await_all_outstanding_tasks: bool = True) -> None:
    rpc_manager = _get_rpc_manager()
    while True:
        while rpc_manager.rpcs:
            await asyncio.sleep(0)
            await rpc_manager.rpcs.pop()
        if rpc_manager.unhandled_exception is not None:
            raise rpc_manager.unhandled_exception.with_traceback(rpc_manager.exception_traceback)
        if await_all_outstanding_tasks:
            await _outputs_settled()
        if not rpc_manager.rpcs:
            return


async def _outputs_settled() -> None:
    """Until no output is pending; each output gets one done-callback, so this is linear."""
    pending: set[asyncio.Future[Any]] = set()
    failed: list[asyncio.Future[Any]] = []
    woken = asyncio.Event()

    def settled(output: asyncio.Future[Any]) -> None:
        pending.discard(output)
        if output.cancelled() or output.exception() is not None:
            failed.append(output)
        woken.set()

    while True:
        with SETTINGS.lock:
            appeared = list(SETTINGS.outputs)
            SETTINGS.outputs.clear()
        for output in appeared:
            if output not in pending:
                pending.add(output)
                output.add_done_callback(settled)
        if failed:
            # A failed input fails, a few turns later, the registration that awaited it, with a
            # message naming the resource and input; let that happen and raise it (as the SDK's
            # `await task` raises a failure).
            for _ in range(3):
                await asyncio.sleep(0)
            # The others are the same failure seen further in; they need no report of their own.
            for output in failed[:-1]:
                if not output.cancelled():
                    output.exception()
            await failed[-1]
        if not pending and not appeared:
            return
        if pending:
            woken.clear()
            await woken.wait()


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
        provider_urn = urn(stack, project, f"{PROVIDER_TYPE_PREFIX}{package}", name)
        if provider_urn not in providers:
            inputs = {"version": version} if version else {}
            if package == "aws":
                inputs["region"] = cloud.region
            providers[provider_urn] = RecordedResource(
                urn=provider_urn,
                type=f"{PROVIDER_TYPE_PREFIX}{package}",
                name=name,
                custom=True,
                id=cloud.provider_id(provider_urn),
                parent="",
                inputs=inputs,
                outputs=dict(inputs),
                dependencies=[],
                property_dependencies={},
                protect=False,
                retain_on_delete=False,
                provider="",
            )
        resource.provider = f"{provider_urn}::{providers[provider_urn].id}"
    return [*providers.values(), *resources]


def _dependency_order(resources: list[RecordedResource]) -> list[RecordedResource]:
    """Topological order with ties broken by URN: stable whatever order RPCs completed in."""
    by_urn = {resource.urn: resource for resource in resources}
    prerequisites = {
        key: set(_refers_to(resource)) & by_urn.keys() for key, resource in by_urn.items()
    }
    dependents: dict[str, list[str]] = {key: [] for key in by_urn}
    for key, needs in prerequisites.items():
        for need in needs:
            dependents[need].append(key)
    # The stack resource leads, as in `pulumi stack export`.
    ready = [
        (by_urn[key].type != STACK_TYPE, key) for key, needs in prerequisites.items() if not needs
    ]
    heapq.heapify(ready)
    ordered = []
    while ready:
        _, key = heapq.heappop(ready)
        ordered.append(by_urn[key])
        for dependent in dependents[key]:
            prerequisites[dependent].discard(key)
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
