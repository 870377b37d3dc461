"""Typed gate specs: one frozen dataclass per gate type, every default stated once, here.

Each field read from a `gates:` entry names its checker (config/section.py); `type:` picks the class.

`timeout` means the same for every gate: the longest the gate may take in all, retries included (None: bounded
by its retries alone). The loader builds these from YAML; a good mark stores `to_dict()` of the gates a revision
passed, and `gates_from_data()` turns that record back into specs to verify a rollback with."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Union

from orchestrator.config import gate_checks as c
from orchestrator.config import schema as s
from orchestrator.config.section import checker, key

_TIMEOUT = c.bounded(0.001, 24 * 3600, "timeout")


@dataclass(frozen=True)
class Retries:
    """How often a gate is tried and how long to wait between tries (tenacity policy as data)."""

    attempts: int = key(s.integer(1, 1000), 1)
    wait: float = key(c.bounded(0, c.MAX_WAIT, "retries.wait"), 0.0)
    backoff: float = key(s.number(1.0), 1.0)
    max_wait: float = key(c.bounded(0, c.MAX_WAIT, "retries.max_wait"), 60.0)


@dataclass(frozen=True, kw_only=True)
class _Gate:
    """What every gate has: a name, an overall timeout, a retry policy, where it was written."""

    type: ClassVar[str] = ""
    name: str | None = key(s.string, None)
    timeout: float | None = key(_TIMEOUT, None)
    retries: Retries = key(checker(Retries), Retries())
    source: str = field(default="", compare=False)

    def _target(self) -> str:
        return ""

    @property
    def label(self) -> str:
        """A short human name: `http /health`, `ecs-rollout`."""
        if self.name:
            return self.name
        target = self._target()
        return f"{self.type} {target}" if target else self.type

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (type included) that `gates_from_data` turns back into this spec."""
        out: dict[str, Any] = {"type": self.type}
        for f in dataclasses.fields(self):
            if f.name == "source":
                continue
            value = getattr(self, f.name)
            if isinstance(value, Retries):
                value = dataclasses.asdict(value)
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out


@dataclass(frozen=True, kw_only=True)
class EcsRolloutGate(_Gate):
    """ECS completed *our* deployment: PRIMARY is our revision, COMPLETED, running == desired, old ones drained.

    It fails as soon as ECS gives a failure signal: the breaker's FAILED, `max_failed_tasks` of our tasks stopped,
    a service event saying tasks cannot start or be placed, an image that cannot be pulled."""

    type: ClassVar[str] = "ecs-rollout"
    timeout: float | None = key(_TIMEOUT, 600.0)
    poll: float = key(c.bounded(0.1, 60, "poll"), 2.0)
    max_failed_tasks: int = key(s.integer(1, 100), 3)


@dataclass(frozen=True, kw_only=True)
class HttpGate(_Gate):
    """Each new task (or the URL / service.endpoint) answers as expected, `consecutive` times in a row."""

    type: ClassVar[str] = "http"
    path: str | None = key(c.url_path, None)
    url: str | None = key(s.http_url, None)
    port: int | None = key(s.port, None)
    method: str = key(s.one_of("GET", "HEAD", "POST"), "GET")
    # expect_*, body_contains and max_latency are written under `expect:` (EXPECT below)
    expect_status: tuple[int, ...] = (200,)
    expect_json: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    body_contains: str | None = None
    max_latency: float | None = None
    consecutive: int = key(s.integer(1, 100), 1)
    interval: float = key(c.bounded(0, 600, "interval"), 0.5)  # between the consecutive requests of one attempt
    # one whole request: connect, headers and body (and the redirects it follows)
    request_timeout: float = key(c.bounded(0.001, 600, "request_timeout"), 5.0)
    # a 3xx is the answer unless this says follow it (hops kept as evidence)
    follow_redirects: bool = key(s.boolean, False)

    def _target(self) -> str:
        return self.path or self.url or ""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data; allowed JSON values as lists."""
        out = super().to_dict()
        out["expect_json"] = {k: list(v) for k, v in self.expect_json.items()}
        return out


@dataclass(frozen=True, kw_only=True)
class CommandGate(_Gate):
    """A smoke-test command's exit status decides; it runs with an explicit environment, never the runner's."""

    type: ClassVar[str] = "command"
    run: tuple[str, ...] | str = key(c.argv)
    env: Mapping[str, str] = key(s.run_time_str_map, {})  # SNAIL_ENDPOINT and the rest: expanded when it runs
    cwd: str | None = key(s.run_time_string, None)
    timeout: float | None = key(_TIMEOUT, 300.0)

    def _target(self) -> str:
        return self.run if isinstance(self.run, str) else " ".join(self.run)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (the env values are the gate's own, never the runner's)."""
        out = super().to_dict()
        out["env"] = dict(self.env)
        return out


@dataclass(frozen=True, kw_only=True)
class AlarmGate(_Gate):
    """None of the named CloudWatch alarms is in ALARM (checked after the gates and again after the bake)."""

    type: ClassVar[str] = "alarm"
    alarms: tuple[str, ...] = key(s.list_of(s.string, 1))


@dataclass(frozen=True, kw_only=True)
class TargetHealthGate(_Gate):
    """Every target of the target group is healthy. Without `target_group_arn` in the gate (`from_service`), the
    group the service's load balancer sends production to now is checked (after a blue-green release that may be
    the other one), and service.load_balancer's group (an ARN or a name) is the fallback."""

    type: ClassVar[str] = "target-health"
    target_group_arn: str | None = key(s.string, None)
    from_service: bool = False


@dataclass(frozen=True, kw_only=True)
class MetricsGate(_Gate):
    """The new revision's target group, read from CloudWatch (ALB metrics over `window`): its 5xx ratio and p99
    TargetResponseTime under the thresholds, with at least `min_requests` requests (fewer: no verdict). With
    `compare`, green's 5xx ratio may exceed blue's by at most `max_5xx_ratio`. The target groups are filled in
    by the strategy at each hook (green's own group, blue's as the baseline)."""

    type: ClassVar[str] = "metrics"
    timeout: float | None = key(_TIMEOUT, 300.0)
    # seconds of metrics looked at, ending now (a whole number of minutes)
    window: float = key(c.bounded(60, 3600, "window"), 60.0)
    max_5xx_ratio: float = key(s.number(0.0, 1.0), 0.01)
    max_p99_latency: float | None = key(c.bounded(0.001, 600, "max_p99_latency"), None)  # seconds
    min_requests: int = key(s.integer(0, 10**9), 10)
    compare: bool = key(s.boolean, False)
    target_group_arn: str | None = key(s.string, None)
    baseline_target_group_arn: str | None = None

    def aimed(self, green: str, blue: str) -> MetricsGate:
        """This gate pointed at green's target group (and blue's as the baseline when comparing)."""
        return dataclasses.replace(
            self, target_group_arn=green, baseline_target_group_arn=blue if self.compare else None
        )


GateSpec = Union[EcsRolloutGate, HttpGate, CommandGate, AlarmGate, TargetHealthGate, MetricsGate]  # noqa: UP007
GATE_CLASSES: dict[str, type[_Gate]] = {
    c.type: c for c in (EcsRolloutGate, HttpGate, CommandGate, AlarmGate, TargetHealthGate, MetricsGate)
}
GATE_TYPES = tuple(GATE_CLASSES)


def gate_from_data(data: Mapping[str, Any]) -> GateSpec:
    """One spec from `to_dict()` data (a recorded good mark); unknown keys are ignored, so old records load."""
    cls = GATE_CLASSES[str(data["type"])]
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for k, v in data.items():
        if k not in names or k == "source":
            continue
        if k == "retries" and isinstance(v, Mapping):
            v = Retries(**{rk: rv for rk, rv in v.items() if rk in Retries.__dataclass_fields__})
        elif k == "expect_json" and isinstance(v, Mapping):
            v = {jk: tuple(jv) if isinstance(jv, list) else (jv,) for jk, jv in v.items()}
        elif k in ("expect_status", "alarms") and isinstance(v, list) or k == "run" and isinstance(v, list):
            v = tuple(v)
        kwargs[k] = v
    return cls(**kwargs)  # type: ignore[return-value]


def gates_from_data(items: Iterable[Mapping[str, Any]]) -> tuple[GateSpec, ...]:
    """Specs from recorded data, in order."""
    return tuple(gate_from_data(d) for d in items)


def gates_hash(gates: Iterable[GateSpec]) -> str:
    """A short stable hash of gate specs (recorded with a mark: which gates a revision passed)."""
    data = [g.to_dict() for g in gates]
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def with_rollout(gates: Iterable[GateSpec]) -> tuple[GateSpec, ...]:
    """The gates with ecs-rollout first: success always includes "ECS completed our deployment"."""
    gates = tuple(gates)
    rollout = [g for g in gates if isinstance(g, EcsRolloutGate)]
    rest = [g for g in gates if not isinstance(g, EcsRolloutGate)]
    return (rollout[0] if rollout else EcsRolloutGate(), *rest)
