"""The `gates:` entries of pipeline.yaml and phase files: checked node by node (file:line), built as typed specs."""

from __future__ import annotations

import dataclasses
from typing import Any

import yaml

from orchestrator.config import gate_checks as c
from orchestrator.config import schema as s
from orchestrator.config.gates import GATE_CLASSES, GATE_TYPES, GateSpec, HttpGate, TargetHealthGate, _Gate
from orchestrator.config.section import build, checker
from orchestrator.errors import ConfigError

_EXPECT = s.Mapping(  # an http gate's `expect:`, read into its expect_* fields
    {
        "status": s.Field(c.status_codes),
        "json": s.Field(c.json_expectations),
        "body_contains": s.Field(s.string),
        "max_latency": s.Field(c.bounded(0.001, 600, "max_latency")),
    }
)
_TYPE = {"type": s.Field(s.one_of(*GATE_TYPES), required=True)}
_CHECKERS = {
    t: checker(cls, also={**_TYPE, **({"expect": s.Field(_EXPECT)} if cls is HttpGate else {})})
    for t, cls in GATE_CLASSES.items()
}
_UNTYPED = checker(_Gate, also=_TYPE)  # no type, or one that is not a gate's: its own error, then the rest


def gate(node: yaml.Node, key: str, errors: s.Errors) -> Any:
    """One `gates:` entry -> its typed spec (or _MISSING after recording every mistake with its line)."""
    if not isinstance(node, yaml.MappingNode):
        errors.add(node, key, "a gate must be a mapping with a `type`")
        return s._MISSING
    gtype = next((str(v.value) for k, v in node.value if k.value == "type" and isinstance(v, yaml.ScalarNode)), None)
    before = len(errors.items)
    raw = _CHECKERS.get(gtype or "", _UNTYPED)(node, key, errors)
    if raw is s._MISSING or raw.get("type") is None or len(errors.items) > before:
        return s._MISSING
    cls = GATE_CLASSES[raw["type"]]
    source = f"{errors.path}:{node.start_mark.line + 1}"
    if cls is not HttpGate:
        return build(cls, raw, source=source)
    if bool(raw.get("path")) == bool(raw.get("url")):
        errors.add(node, key, "an http gate needs exactly one of `path` or `url`")
        return s._MISSING
    expect = raw.get("expect") or {}
    given: dict[str, Any] = {"expect_status": expect.get("status"), "expect_json": expect.get("json") or None}
    given.update(body_contains=expect.get("body_contains"), max_latency=expect.get("max_latency"))
    return build(HttpGate, raw, source=source, **{k: v for k, v in given.items() if v is not None})


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
