"""Builds the pack's policies: type filtering, tunables and exemptions, written once.

Every rule built here is also listed in `RULE_METADATA` by name, with what a report or another
runner needs to know of it: among that, whether it means the same of a resource read back from
AWS (`live`), which is how `mlops-platform audit` picks the rules it applies.

Every rule accepts an `exemptions` list in its policy-pack config (`--policy-pack-config`):
`{"urn": ..., "reason": ..., "expires": "YYYY-MM-DD"}`. An exemption silences the rule for that
URN until it expires; an expired exemption is itself a violation, so exemptions cannot outlive
their reason unnoticed.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pulumi_policy import (
    PolicyComplianceFramework,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)

ResourceCheck = Callable[[Mapping[str, Any], ResourceValidationArgs], Iterable[str]]
"""Yields one message per problem with a resource's properties."""
StackCheck = Callable[[StackValidationArgs], Iterable[tuple[str, str]]]
"""Yields (message, urn) per problem found across the stack."""

EXEMPTIONS_SCHEMA: dict[str, Any] = {
    "type": "array",
    "description": "Resources this rule does not apply to, each with a reason and an expiry.",
    "default": [],
    "items": {
        "type": "object",
        "additionalProperties": False,
        "required": ["urn", "reason", "expires"],
        "properties": {
            "urn": {"type": "string", "pattern": "^urn:pulumi:"},
            "reason": {"type": "string", "minLength": 10},
            "expires": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"},
        },
    },
}


@dataclass(frozen=True)
class RuleMetadata:
    name: str
    description: str
    resource_types: frozenset[str]
    stack: bool
    """Judges several resources at once (their links), rather than one resource's properties."""
    live: bool
    """Means the same of resources read back from AWS as of planned ones: rules about deploy
    options (protect), links only a plan records, or settings AWS does not report do not."""


RULE_METADATA: dict[str, RuleMetadata] = {}
"""Every rule built by `resource_rule` or `stack_rule`, by name."""


def _register(metadata: RuleMetadata) -> None:
    if metadata.name in RULE_METADATA:
        raise ValueError(f"two rules are named {metadata.name}")
    RULE_METADATA[metadata.name] = metadata


@dataclass(frozen=True)
class Exemption:
    urn: str
    reason: str
    expires: datetime.date

    @property
    def expired(self) -> bool:
        return self.expires < datetime.datetime.now(datetime.UTC).date()

    def expiry_message(self) -> str:
        return (
            f"exemption expired on {self.expires.isoformat()} (reason given: {self.reason}); "
            "fix the resource or renew the exemption with a new reason and date"
        )


def exemptions(config: Mapping[str, Any]) -> dict[str, Exemption]:
    found = {}
    for entry in config.get("exemptions") or []:
        found[entry["urn"]] = Exemption(
            urn=entry["urn"],
            reason=entry["reason"],
            expires=datetime.date.fromisoformat(entry["expires"]),
        )
    return found


def _schema(tunables: Mapping[str, Any] | None) -> PolicyConfigSchema:
    return PolicyConfigSchema(properties={"exemptions": EXEMPTIONS_SCHEMA, **(tunables or {})})


def resource_rule(
    *,
    name: str,
    description: str,
    resource_types: Collection[str],
    check: ResourceCheck,
    severity: Severity,
    remediation: str,
    framework: PolicyComplianceFramework | None = None,
    tunables: Mapping[str, Any] | None = None,
    live: bool = False,
) -> ResourceValidationPolicy:
    """A rule decided by one resource's own properties."""
    _register(RuleMetadata(name, description, frozenset(resource_types), False, live))

    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        if args.resource_type not in resource_types:
            return
        exemption = exemptions(args.get_config()).get(args.urn)
        if exemption is not None:
            if exemption.expired:
                report(exemption.expiry_message(), None)
            return
        for message in check(args.props, args):
            report(message, None)

    return ResourceValidationPolicy(
        name=name,
        description=description,
        validate=validate,
        config_schema=_schema(tunables),
        severity=severity,
        framework=framework,
        remediation_steps=remediation,
        # Tags name the resource types a rule applies to, for reports and the README's table.
        tags=sorted(resource_types),
    )


def stack_rule(
    *,
    name: str,
    description: str,
    resource_types: Collection[str],
    check: StackCheck,
    severity: Severity,
    remediation: str,
    framework: PolicyComplianceFramework | None = None,
    tunables: Mapping[str, Any] | None = None,
    live: bool = False,
) -> StackValidationPolicy:
    """A rule that needs several resources at once, linked by parents or property dependencies."""
    _register(RuleMetadata(name, description, frozenset(resource_types), True, live))

    def validate(args: StackValidationArgs, report: ReportViolation) -> None:
        exempt = exemptions(args.get_config())
        for exemption in exempt.values():
            if exemption.expired:
                report(exemption.expiry_message(), exemption.urn)
        for message, urn in check(args):
            if urn not in exempt:
                report(message, urn)

    return StackValidationPolicy(
        name=name,
        description=description,
        validate=validate,
        config_schema=_schema(tunables),
        severity=severity,
        framework=framework,
        remediation_steps=remediation,
        tags=sorted(resource_types),
    )


def setting(
    args: ResourceValidationArgs | StackValidationArgs, tunables: Mapping[str, Any], key: str
) -> Any:
    """A rule's tunable from the pack config, or its schema default (the CLI fills defaults in,
    but a pack run without config must behave the same)."""
    config = args.get_config()
    return config[key] if key in config else tunables[key]["default"]
