"""The policy pack, started once for the session as the Pulumi CLI starts it, and helpers that
run it over the analyzer gRPC protocol, exactly as `mlops-platform check` does."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from mlops_guardrails.export import resource_state, urn
from mlops_guardrails.pack import RULES_BY_NAME
from mlops_platform.policy_check import Finding, PolicyPackServer
from mlops_platform.rendered import RenderedStack
from tests.conftest import REPO_ROOT

PACK_DIR = REPO_ROOT / "policies"


def environment_config(environment: str) -> dict[str, Any]:
    config: dict[str, Any] = json.loads((PACK_DIR / "config" / f"{environment}.json").read_text())
    return config


def state(
    resource_type: str,
    props: Mapping[str, Any],
    *,
    name: str = "case",
    protect: bool = True,
    stack: str = "prod",
) -> dict[str, Any]:
    """A custom resource as it appears in a stack export."""
    return resource_state(
        urn=urn(stack, "mlops-platform", resource_type, name),
        type=resource_type,
        id=f"{name}-id",
        inputs=copy.deepcopy(dict(props)),
        outputs=copy.deepcopy(dict(props)),
        protect=protect,
        retain_on_delete=protect,
    )


def check(
    pack: PolicyPackServer,
    resources: list[dict[str, Any]],
    config: Mapping[str, Any] | None = None,
) -> list[Finding]:
    """Every finding for the resources, by default with every rule mandatory."""
    return pack.check(
        resources, config if config is not None else {"all": "mandatory"}, "test"
    ).findings


def of_rule(findings: list[Finding], rule: str) -> list[Finding]:
    return [f for f in findings if f.rule == rule]


def check_rule(
    pack: PolicyPackServer,
    rule: str,
    resources: list[dict[str, Any]],
    config: Mapping[str, Any] | None = None,
) -> list[Finding]:
    """The findings of one rule, at its level and with its settings in `config` (mandatory by
    default), every other rule switched off: the pack then skips them, as the CLI's would. A
    resource rule judges each resource alone and ignores other types, so only resources of its
    types are sent."""
    config = config if config is not None else {"all": "mandatory"}
    entry = config.get(rule, {})
    settings = {"enforcementLevel": entry} if isinstance(entry, str) else dict(entry)
    settings.setdefault("enforcementLevel", config.get("all", "mandatory"))
    metadata = RULES_BY_NAME[rule]
    if not metadata.stack:
        resources = [r for r in resources if r["type"] in metadata.resource_types]
    return of_rule(check(pack, resources, {"all": "disabled", rule: settings}), rule)


def deployment_resources(rendered: RenderedStack) -> list[dict[str, Any]]:
    resources: list[dict[str, Any]] = copy.deepcopy(
        rendered.to_deployment()["deployment"]["resources"]
    )
    return resources


def key_without_event_rules(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events key as if made without KeyUse.EVENT_RULES."""
    [key] = [r for r in resources if r["urn"].endswith("::events-key")]
    for props in (key["inputs"], key["outputs"]):
        policy = json.loads(props["policy"])
        policy["Statement"] = [
            s for s in policy["Statement"] if s["Sid"] != "AllowEventRulesOfThisAccount"
        ]
        props["policy"] = json.dumps(policy)
    return resources
