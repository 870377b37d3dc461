"""The `gates:` entries of pipeline.yaml and phase files: checked node by node (file:line), built as typed specs."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import yaml

from orchestrator.config import schema as s
from orchestrator.config.gates import (
    GATE_TYPES,
    AlarmGate,
    CommandGate,
    EcsRolloutGate,
    GateSpec,
    HttpGate,
    MetricsGate,
    Retries,
    TargetHealthGate,
)
from orchestrator.errors import ConfigError

MAX_WAIT = 3600.0  # one retry wait, or a poll interval, longer than an hour is a typo, not a policy


def _bounded(lo: float, hi: float, what: str) -> s.Checker:
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


_retries = s.Mapping(
    {
        "attempts": s.Field(s.integer(1, 1000)),
        "wait": s.Field(_bounded(0, MAX_WAIT, "retries.wait")),
        "backoff": s.Field(s.number(1.0)),
        "max_wait": s.Field(_bounded(0, MAX_WAIT, "retries.max_wait")),
    }
)


def _status_codes(node: yaml.Node, key: str, errors: s.Errors) -> Any:
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


def _json_expectations(node: yaml.Node, key: str, errors: s.Errors) -> Any:
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


def _argv(node: yaml.Node, key: str, errors: s.Errors) -> Any:
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


def _path(node: yaml.Node, key: str, errors: s.Errors) -> Any:
    """A URL path: starts with '/'."""
    v = s.string(node, key, errors)
    if v is not s._MISSING and not v.startswith("/"):
        errors.add(node, key, f"a path starts with '/': write {'/' + v!r}")
        return s._MISSING
    return v


_COMMON = {
    "type": s.Field(s.one_of(*GATE_TYPES), required=True),
    "name": s.Field(s.string),
    "timeout": s.Field(_bounded(0.001, 24 * 3600, "timeout")),
    "retries": s.Field(_retries),
}

_FIELDS: dict[str, dict[str, s.Field]] = {
    "ecs-rollout": {
        "poll": s.Field(_bounded(0.1, 60, "poll")),
        "max_failed_tasks": s.Field(s.integer(1, 100)),
    },
    "http": {
        "path": s.Field(_path),
        "url": s.Field(s.http_url),
        "port": s.Field(s.port),
        "method": s.Field(s.one_of("GET", "HEAD", "POST")),
        "expect": s.Field(
            s.Mapping(
                {
                    "status": s.Field(_status_codes),
                    "json": s.Field(_json_expectations),
                    "body_contains": s.Field(s.string),
                    "max_latency": s.Field(_bounded(0.001, 600, "max_latency")),
                }
            )
        ),
        "consecutive": s.Field(s.integer(1, 100)),
        "interval": s.Field(_bounded(0, 600, "interval")),
        "request_timeout": s.Field(_bounded(0.001, 600, "request_timeout")),
        "follow_redirects": s.Field(s.boolean),
    },
    "command": {
        "run": s.Field(_argv, required=True),
        "env": s.Field(s.run_time_str_map),  # SNAIL_ENDPOINT and the rest: expanded when the gate runs
        "cwd": s.Field(s.run_time_string),
    },
    "target-health": {"target_group_arn": s.Field(s.string)},
    "alarm": {"alarms": s.Field(s.list_of(s.string, 1), required=True)},
    "metrics": {
        "window": s.Field(_bounded(60, 3600, "window")),
        "max_5xx_ratio": s.Field(s.number(0.0, 1.0)),
        "max_p99_latency": s.Field(_bounded(0.001, 600, "max_p99_latency")),
        "min_requests": s.Field(s.integer(0, 10**9)),
        "compare": s.Field(s.boolean),
        "target_group_arn": s.Field(s.string),
    },
}


def _given(raw: dict[str, Any], *keys: str) -> dict[str, Any]:
    """Only the keys the YAML really set (absent keys keep the spec's own defaults: stated once, on the class)."""
    return {k: raw[k] for k in keys if raw.get(k) is not None}


def gate(node: yaml.Node, key: str, errors: s.Errors) -> Any:
    """One `gates:` entry -> its typed spec (or _MISSING after recording every mistake with its line)."""
    if not isinstance(node, yaml.MappingNode):
        errors.add(node, key, "a gate must be a mapping with a `type`")
        return s._MISSING
    gtype = next((str(v.value) for k, v in node.value if k.value == "type" and isinstance(v, yaml.ScalarNode)), None)
    before = len(errors.items)
    raw = s.Mapping({**_COMMON, **_FIELDS.get(gtype or "", {})})(node, key, errors)
    if raw is s._MISSING or raw.get("type") is None or len(errors.items) > before:
        return s._MISSING
    common: dict[str, Any] = {"source": f"{errors.path}:{node.start_mark.line + 1}", **_given(raw, "name", "timeout")}
    if raw.get("retries"):
        common["retries"] = Retries(**_given(raw["retries"], "attempts", "wait", "backoff", "max_wait"))
    t = raw["type"]
    spec: GateSpec
    if t == "http":
        if bool(raw.get("path")) == bool(raw.get("url")):
            errors.add(node, key, "an http gate needs exactly one of `path` or `url`")
            return s._MISSING
        expect = raw.get("expect") or {}
        fields = _given(raw, "path", "url", "port", "method", "consecutive", "interval", "request_timeout")
        fields.update(_given(raw, "follow_redirects"))
        if expect.get("status") is not None:
            fields["expect_status"] = expect["status"]
        if expect.get("json"):
            fields["expect_json"] = expect["json"]
        fields.update(_given(expect, "body_contains", "max_latency"))
        spec = HttpGate(**common, **fields)
    elif t == "ecs-rollout":
        spec = EcsRolloutGate(**common, **_given(raw, "poll", "max_failed_tasks"))
    elif t == "command":
        spec = CommandGate(**common, run=raw["run"], env=dict(raw.get("env") or {}), **_given(raw, "cwd"))
    elif t == "alarm":
        spec = AlarmGate(**common, alarms=tuple(raw["alarms"]))
    elif t == "metrics":
        keys = ("window", "max_5xx_ratio", "max_p99_latency", "min_requests", "compare", "target_group_arn")
        spec = MetricsGate(**common, **_given(raw, *keys))
    else:
        spec = TargetHealthGate(**common, **_given(raw, "target_group_arn"))
    return spec


def wire(gates: tuple[GateSpec, ...], service: dict[str, Any]) -> tuple[tuple[GateSpec, ...], list[ConfigError]]:
    """Settle what a gate takes from the service: target-health defaults to service.load_balancer's target
    group; an http gate probing another port than service.port can never pass (the field log's 8080 vs 5000)."""
    out: list[GateSpec] = []
    problems: list[ConfigError] = []
    lb = service.get("load_balancer") or {}
    for g in gates:
        where, _, line = g.source.rpartition(":")
        at = (where or g.source, int(line) if line.isdigit() else None)
        if isinstance(g, TargetHealthGate) and not g.target_group_arn:
            if not lb.get("target_group_arn"):
                problems.append(
                    ConfigError(
                        *at,
                        "a target-health gate needs `target_group_arn` or service.load_balancer",
                        key="gates.target_group_arn",
                    )
                )
            else:  # the group production is on when the gate runs; this one is the fallback
                g = dataclasses.replace(g, target_group_arn=lb["target_group_arn"], from_service=True)
        if isinstance(g, HttpGate) and g.port is not None and not g.url and service.get("port") not in (None, g.port):
            problems.append(
                ConfigError(
                    *at,
                    f"probes port {g.port} but service.port is {service['port']}: it can "
                    "never pass (drop `port:`, gates default to service.port)",
                    key="gates.port",
                )
            )
        out.append(g)
    return tuple(out), problems
