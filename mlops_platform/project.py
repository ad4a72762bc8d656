"""Reads a Pulumi project and its stack files the way the Pulumi CLI hands them to a program."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mlops_platform.errors import UserError

# The CLI decrypts `secure:` values; offline there is no key, so the program gets this marker.
SECRET_PLACEHOLDER = "[secret: not decrypted offline]"


STACK_REFERENCE_NAME = re.compile(r"[\w.-]+/[\w.-]+/[\w.-]+")


class ProjectError(UserError):
    """A project or stack file that cannot be read; the message says which and why."""


@dataclass(frozen=True)
class StackConfig:
    values: dict[str, str]
    """Fully qualified key (`namespace:key`) to the string the CLI would pass the program."""
    secret_keys: list[str]

    @property
    def region(self) -> str:
        try:
            return self.values["aws:region"]
        except KeyError:
            raise ProjectError("aws:region is not set in the stack file") from None


@dataclass(frozen=True)
class PulumiProject:
    root: Path
    name: str
    main: Path

    @classmethod
    def load(cls, root: Path) -> PulumiProject:
        project_file = root / "Pulumi.yaml"
        document = _read_yaml(project_file)
        if not isinstance(document, dict) or not isinstance(document.get("name"), str):
            raise ProjectError(f"{project_file}: no project `name`")
        return cls(root=root, name=document["name"], main=root / document.get("main", "."))

    @classmethod
    def find(cls, start: Path) -> PulumiProject:
        """The project whose Pulumi.yaml is in `start` or the nearest directory above it."""
        for directory in (start, *start.parents):
            if (directory / "Pulumi.yaml").is_file():
                return cls.load(directory)
        raise ProjectError(f"no Pulumi.yaml in {start} or any directory above it")

    def stack_file(self, stack: str) -> Path:
        return self.root / f"Pulumi.{stack}.yaml"

    def named_above(self, name: str) -> PulumiProject | None:
        """The nearest project called `name` in this project's directory or above it."""
        for directory in (self.root, *self.root.parents):
            if (directory / "Pulumi.yaml").is_file():
                found = PulumiProject.load(directory)
                if found.name == name:
                    return found
        return None

    def config_references(self, stack: str) -> list[tuple[str, PulumiProject, str]]:
        """Stacks of other projects at or above this one that the stack's config names
        (`<organization>/<project>/<stack>`, as a StackReference takes them): by name, with the
        project and stack."""
        found = []
        for value in sorted(set(self.stack_config(stack).values.values())):
            if not STACK_REFERENCE_NAME.fullmatch(value):
                continue
            _, project_name, referenced_stack = value.split("/")
            referenced = self.named_above(project_name)
            if (
                referenced is not None
                and referenced.root != self.root
                and referenced.stack_file(referenced_stack).is_file()
            ):
                found.append((value, referenced, referenced_stack))
        return found

    def stacks(self) -> list[str]:
        return sorted(
            path.name.removeprefix("Pulumi.").removesuffix(".yaml")
            for path in self.root.glob("Pulumi.*.yaml")
        )

    def stack_config(self, stack: str) -> StackConfig:
        path = self.stack_file(stack)
        if not path.is_file():
            known = ", ".join(self.stacks()) or "none"
            raise ProjectError(f"no stack file {path.name} (stacks here: {known})")
        document = _read_yaml(path) or {}
        if not isinstance(document, dict):
            raise ProjectError(f"{path.name}: expected a mapping with a `config` key")
        raw_config = document.get("config") or {}
        if not isinstance(raw_config, dict):
            raise ProjectError(f"{path.name}: `config` must be a mapping")
        values: dict[str, str] = {}
        secret_keys: list[str] = []
        for key, value in raw_config.items():
            full_key = key if ":" in key else f"{self.name}:{key}"
            plain, is_secret = _without_secrets(value)
            values[full_key] = _as_config_string(plain)
            if is_secret:
                secret_keys.append(full_key)
        return StackConfig(values=values, secret_keys=sorted(secret_keys))


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys; the Pulumi CLI rejects them, and so does this."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.load(path.read_text(), Loader=_UniqueKeyLoader)
    except OSError as error:
        raise ProjectError(f"cannot read {path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise ProjectError(f"{path.name} is not valid YAML: {error}") from None


def _without_secrets(value: Any) -> tuple[Any, bool]:
    """Replace every `{secure: ...}` node with the placeholder; say whether there was one."""
    if isinstance(value, dict):
        if set(value) == {"secure"}:
            return SECRET_PLACEHOLDER, True
        pairs = {key: _without_secrets(item) for key, item in value.items()}
        return {key: plain for key, (plain, _) in pairs.items()}, any(
            secret for _, secret in pairs.values()
        )
    if isinstance(value, list):
        items = [_without_secrets(item) for item in value]
        return [plain for plain, _ in items], any(secret for _, secret in items)
    return value, False


def _as_config_string(value: Any) -> str:
    """The CLI passes strings as-is and everything else as JSON (`true`, `7`, objects)."""
    if isinstance(value, str):
        return value
    return json.dumps(value)
