"""The checkers of gate values (bounded durations, status codes, JSON expectations, commands, URL paths)."""

from __future__ import annotations

import math
from typing import Any

import yaml

from orchestrator.config import schema as s

MAX_WAIT = 3600.0  # one retry wait, or a poll interval, longer than an hour is a typo, not a policy


def bounded(lo: float, hi: float, what: str) -> s.Checker:
    """A duration within [lo, hi] seconds."""

    def check(node: yaml.Node, key: str, errors: s.Errors) -> Any:
        v = s.duration(node, key, errors)
        if v is s._MISSING:
            return v
        if not math.isfinite(v) or not lo <= v <= hi:
            errors.add(node, key, f"{what} must be between {lo:g}s and {hi:g}s, got {node.value!r}")
            return s._MISSING
        return v

    return check


def status_codes(node: yaml.Node, key: str, errors: s.Errors) -> Any:
    """An HTTP status code, or a non-empty list of them."""
    nodes = node.value if isinstance(node, yaml.SequenceNode) else [node]
    if isinstance(node, yaml.SequenceNode) and not nodes:
        errors.add(node, key, "expected a status code or a non-empty list of them")
        return s._MISSING
    out = []
    for n in nodes:
        v = s.integer(None, None, "an HTTP status code")(n, key, errors)
        if v is s._MISSING:
            return v
        if not 100 <= v <= 599:
            errors.add(n, key, f"{v} is not an HTTP status code")
            return s._MISSING
        out.append(v)
    return tuple(out)


def json_expectations(node: yaml.Node, key: str, errors: s.Errors) -> Any:
    """A mapping of (dotted) JSON field -> allowed value or non-empty list of allowed values."""
    if not isinstance(node, yaml.MappingNode):
        errors.add(node, key, "expected a mapping of field -> value or list of allowed values")
        return s._MISSING
    out: dict[str, tuple[Any, ...]] = {}
    for knode, vnode in node.value:
        field = str(knode.value)
        if "${" in field:
            errors.add(knode, f"{key}.{field}", s.KEY_REFERENCE)
            continue
        if isinstance(vnode, yaml.MappingNode):
            errors.add(vnode, f"{key}.{field}", "expected a value or a list of allowed values, got a mapping")
            continue
        value = s.anything(vnode, f"{key}.{field}", errors)
        allowed = tuple(value) if isinstance(value, list) else (value,)
        if not allowed or any(isinstance(a, (dict, list)) for a in allowed):
            errors.add(vnode, f"{key}.{field}", "expected a value or a non-empty list of plain values")
            continue
        out[field] = allowed
    return out


def argv(node: yaml.Node, key: str, errors: s.Errors) -> Any:
    """A shell line (string) or an argv list of strings; no NUL anywhere."""
    if isinstance(node, yaml.ScalarNode):  # a shell line: the shell expands ${SNAIL_ENDPOINT} and the rest
        v = s.shell_line(node, key, errors)
        if v is s._MISSING:
            return v
        if not v.strip():
            errors.add(node, key, "the command is empty")
            return s._MISSING
        if "\x00" in v:
            errors.add(node, key, "the command contains a NUL character")
            return s._MISSING
        return v
    if isinstance(node, yaml.SequenceNode):
        items = []
        for i, n in enumerate(node.value):
            if not isinstance(n, yaml.ScalarNode) or n.tag != "tag:yaml.org,2002:str":
                errors.add(n, key, f"argument {i} must be a string (quote it), got {s._kind(n)}")
                return s._MISSING
            if "\x00" in n.value:
                errors.add(n, key, f"argument {i} contains a NUL character")
                return s._MISSING
            value = s.expand(n.value, n, key, errors, run_time=True)  # snail expands SNAIL_* when it runs
            if value is s._MISSING:
                return value
            items.append(value)
        if not items:
            errors.add(node, key, "the command is empty")
            return s._MISSING
        return tuple(items)
    errors.add(node, key, f"expected a command line or a list of arguments, got a {s._kind(node)}")
    return s._MISSING


def url_path(node: yaml.Node, key: str, errors: s.Errors) -> Any:
    """A URL path: starts with '/'."""
    v = s.string(node, key, errors)
    if v is not s._MISSING and not v.startswith("/"):
        errors.add(node, key, f"a path starts with '/': write {'/' + v!r}")
        return s._MISSING
    return v
