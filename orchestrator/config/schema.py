"""A small schema checker over PyYAML nodes, so every mistake names its file, line and key."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml

from orchestrator.errors import ConfigError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def parse_duration(text: Any) -> float:
    """'10m' -> 600.0, '3s' -> 3.0, '250ms' -> 0.25, 5 -> 5.0; ValueError otherwise."""
    if isinstance(text, bool):
        raise ValueError(text)
    if isinstance(text, (int, float)):
        if text < 0:
            raise ValueError(text)
        return float(text)
    m = _DURATION.match(str(text))
    if not m:
        raise ValueError(text)
    return float(m.group(1)) * _UNITS[m.group(2)]


def interpolate(text: str, env: dict[str, str] | os._Environ = os.environ) -> str:
    """Expand ${VAR} and ${VAR:-default} from the environment."""
    return _ENV.sub(lambda m: env.get(m.group(1)) or (m.group(2) or ""), text)


class Errors:
    """Collects every mistake in a file instead of stopping at the first."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.items: list[ConfigError] = []

    def add(self, node: yaml.Node | None, key: str, message: str) -> None:
        """Record a mistake at `node`'s line."""
        line = node.start_mark.line + 1 if node is not None else None
        self.items.append(ConfigError(self.path, line, message, key=key or None))


@dataclass
class Field:
    """One key of a mapping: its checker, whether it is required, its default."""

    check: Checker
    required: bool = False
    default: Any = None


Checker = Callable[[yaml.Node, str, Errors], Any]
_MISSING = object()


def _scalar(node: yaml.Node, key: str, errors: Errors, kind: str) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        errors.add(node, key, f"expected {kind}, got a {_kind(node)}")
        return _MISSING
    return yaml.safe_load(yaml.serialize(node)) if node.tag != "tag:yaml.org,2002:str" else node.value


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "mapping"
    if isinstance(node, yaml.SequenceNode):
        return "list"
    return f"value {node.value!r}"


def string(node: yaml.Node, key: str, errors: Errors) -> Any:
    """A string (numbers are accepted and turned into text; ${VAR} expanded)."""
    v = _scalar(node, key, errors, "a string")
    if v is _MISSING:
        return v
    if v is None or isinstance(v, bool):
        errors.add(node, key, f"expected a string, got {node.value!r}")
        return _MISSING
    return interpolate(str(v))


def integer(lo: int | None = None, hi: int | None = None, what: str = "a whole number") -> Checker:
    """A whole number within [lo, hi]."""

    def check(node: yaml.Node, key: str, errors: Errors) -> Any:
        v = _scalar(node, key, errors, what)
        if v is _MISSING:
            return v
        if isinstance(v, str):
            v = interpolate(v)
            if v.strip().isdigit():
                v = int(v)
        if isinstance(v, bool) or not isinstance(v, int):
            errors.add(node, key, f"expected {what}, got {node.value!r}")
            return _MISSING
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            errors.add(node, key, f"{v} is out of range ({lo}..{hi})")
            return _MISSING
        return v

    return check


port = integer(1, 65535, "a port number")


def number(lo: float = 0.0) -> Checker:
    """A number >= lo."""

    def check(node: yaml.Node, key: str, errors: Errors) -> Any:
        v = _scalar(node, key, errors, "a number")
        if v is _MISSING:
            return v
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < lo:
            errors.add(node, key, f"expected a number >= {lo}, got {node.value!r}")
            return _MISSING
        return float(v)

    return check


def boolean(node: yaml.Node, key: str, errors: Errors) -> Any:
    """true or false."""
    v = _scalar(node, key, errors, "true or false")
    if v is not _MISSING and not isinstance(v, bool):
        errors.add(node, key, f"expected true or false, got {node.value!r}")
        return _MISSING
    return v


def duration(node: yaml.Node, key: str, errors: Errors) -> Any:
    """A duration: 500ms, 3s, 10m, 1h, or plain seconds."""
    v = _scalar(node, key, errors, "a duration")
    if v is _MISSING:
        return v
    try:
        return parse_duration(interpolate(v) if isinstance(v, str) else v)
    except ValueError:
        errors.add(node, key, f"bad duration {node.value!r} (use e.g. 500ms, 3s, 10m, 1h)")
        return _MISSING


def one_of(*choices: str) -> Checker:
    """A string among `choices`."""

    def check(node: yaml.Node, key: str, errors: Errors) -> Any:
        v = string(node, key, errors)
        if v is not _MISSING and v not in choices:
            errors.add(node, key, f"{v!r} is not one of: {', '.join(choices)}")
            return _MISSING
        return v

    return check


def anything(node: yaml.Node, key: str, errors: Errors) -> Any:
    """Any YAML value, as Python data."""
    return yaml.safe_load(yaml.serialize(node))


def list_of(item: Checker, min_items: int = 0) -> Checker:
    """A list whose items each pass `item`."""

    def check(node: yaml.Node, key: str, errors: Errors) -> Any:
        if not isinstance(node, yaml.SequenceNode):
            errors.add(node, key, f"expected a list, got a {_kind(node)}")
            return _MISSING
        if len(node.value) < min_items:
            errors.add(node, key, f"needs at least {min_items} item(s)")
        out = [item(n, f"{key}[{i}]", errors) for i, n in enumerate(node.value)]
        return [v for v in out if v is not _MISSING]

    return check


def str_map(node: yaml.Node, key: str, errors: Errors) -> Any:
    """A mapping of names to strings (environment variables, build args)."""
    if not isinstance(node, yaml.MappingNode):
        errors.add(node, key, f"expected a mapping, got a {_kind(node)}")
        return _MISSING
    out: dict[str, str] = {}
    for k, v in node.value:
        name = str(k.value)
        val = string(v, f"{key}.{name}", errors)
        if val is not _MISSING:
            out[name] = val
    return out


@dataclass
class Mapping:
    """A mapping with known keys; unknown keys are mistakes (with a did-you-mean)."""

    fields: dict[str, Field]
    extra: Callable[[dict[str, Any]], list[tuple[str, str]]] | None = None
    allow_unknown: bool = False
    nodes: dict[str, yaml.Node] = field(default_factory=dict)

    def __call__(self, node: yaml.Node, key: str, errors: Errors) -> Any:
        if not isinstance(node, yaml.MappingNode):
            errors.add(node, key, f"expected a mapping, got a {_kind(node)}")
            return _MISSING
        out: dict[str, Any] = {}
        seen: dict[str, yaml.Node] = {}
        for knode, vnode in node.value:
            name = str(knode.value)
            path = f"{key}.{name}" if key else name
            if name in seen:
                errors.add(knode, path, "duplicate key")
                continue
            seen[name] = knode
            spec = self.fields.get(name)
            if spec is None:
                if self.allow_unknown:
                    out[name] = anything(vnode, path, errors)
                    continue
                hint = _did_you_mean(name, self.fields)
                errors.add(knode, path, f"unknown key{hint}; known keys: {', '.join(sorted(self.fields))}")
                continue
            v = spec.check(vnode, path, errors)
            if v is not _MISSING:
                out[name] = v
        for name, spec in self.fields.items():
            if name not in seen:
                if spec.required:
                    errors.add(node, f"{key}.{name}" if key else name, "is required")
                else:
                    out.setdefault(name, spec.default)
        if self.extra:
            for k, msg in self.extra(out):
                errors.add(seen.get(k.split(".")[-1], node), f"{key}.{k}" if key else k, msg)
        return out


def _did_you_mean(name: str, known: dict[str, Any]) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
