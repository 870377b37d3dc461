"""A phase's deployment strategy: rolling (ECS's rolling update) or ECS's native blue-green, canary, linear.

`strategy: blue-green` or, with settings, a mapping:

    strategy: {type: canary, percent: 10, step_bake: 2m, bake: 0, hook_timeout: 10m}

ECS counts bake times and hook timeouts in whole minutes, so durations here must be whole minutes too (a
`90s` bake would be silently rounded by hand otherwise; we refuse it with the line instead)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import yaml

from orchestrator.config import schema as s
from orchestrator.config.gates import AlarmGate, CommandGate, EcsRolloutGate, GateSpec, HttpGate, TargetHealthGate
from orchestrator.config.section import build, checker, key

KINDS = ("rolling", "blue-green", "canary", "linear")
ECS_NAMES = {"rolling": "ROLLING", "blue-green": "BLUE_GREEN", "canary": "CANARY", "linear": "LINEAR"}


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:g}m"


def _whole_minutes(lo: float, hi: float) -> s.Checker:
    """A duration that is a whole number of minutes within [lo, hi] seconds (ECS takes minutes)."""

    def check(node: yaml.Node, key: str, errors: s.Errors) -> Any:
        v = s.duration(node, key, errors)
        if v is s._MISSING:
            return v
        if not math.isclose(v % 60, 0, abs_tol=1e-9) and not math.isclose(v % 60, 60, abs_tol=1e-9):
            errors.add(node, key, f"{v:g}s is not a whole number of minutes (ECS counts this in minutes)")
            return s._MISSING
        if v < lo or v > hi:
            errors.add(node, key, f"{v / 60:g}m is out of range ({lo / 60:g}m..{hi / 60:g}m)")
            return s._MISSING
        return v

    return check


@dataclass(frozen=True)
class StrategySpec:
    """How a phase's revision reaches production traffic; every default stated once, here."""

    kind: str = key(s.one_of(*KINDS), "rolling", name="type")
    percent: float = key(s.number(0.1, 100.0), 10.0)  # canary: the slice of production; linear: each step
    # canary: seconds on the slice; linear: seconds after each step (whole minutes)
    step_bake: float = key(_whole_minutes(0, 1440 * 60), 60.0)
    # ECS's bakeTimeInMinutes: blue kept (instant rollback) after the full shift
    bake: float = key(_whole_minutes(0, 1440 * 60), 0.0)
    # a PAUSE hook nobody answers rolls back after this (whole minutes)
    hook_timeout: float = key(_whole_minutes(60, 1440 * 60), 600.0)

    @property
    def uses_traffic(self) -> bool:
        """True for blue-green, canary and linear (traffic shifted by ECS through the load balancer)."""
        return self.kind != "rolling"

    @property
    def ecs_name(self) -> str:
        """ECS's name: ROLLING | BLUE_GREEN | CANARY | LINEAR."""
        return ECS_NAMES[self.kind]

    def production_steps(self) -> list[float]:
        """Green's share of production after each shift, up to 100."""
        if self.kind == "canary" and self.percent < 100:
            return [self.percent, 100.0]
        if self.kind == "linear":
            steps: list[float] = []
            pct = 0.0
            while pct + self.percent < 100 - 1e-9:
                pct = round(pct + self.percent, 1)
                steps.append(pct)
            return [*steps, 100.0]
        return [100.0]

    def describe(self) -> str:
        """One line for `plan`: the strategy and its settings."""
        if self.kind == "rolling":
            return "rolling"
        parts = [self.kind]
        if self.kind == "canary":
            parts.append(f"{self.percent:g}% for {_minutes(self.step_bake)}")
        if self.kind == "linear":
            parts.append(f"steps of {self.percent:g}%, {_minutes(self.step_bake)} each")
        parts.append(f"bake {_minutes(self.bake)}")
        parts.append(f"hooks time out after {_minutes(self.hook_timeout)} (ROLLBACK)")
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (for the trail and `plan --json`)."""
        return {
            "type": self.kind,
            "percent": self.percent,
            "step_bake": self.step_bake,
            "bake": self.bake,
            "hook_timeout": self.hook_timeout,
        }


# the mapping form names its type (the class's default, rolling, is for a phase that gives no strategy at all)
_settings = checker(StrategySpec, also={"type": s.Field(s.one_of(*KINDS), required=True)})


def check(node: yaml.Node, key: str, errors: s.Errors) -> Any:
    """`strategy:` as a name (`blue-green`) or a mapping with `type:` and settings; returns plain data."""
    if isinstance(node, yaml.ScalarNode):
        v = s.one_of(*KINDS)(node, key, errors)
        return v if v is s._MISSING else {"type": v}
    v = _settings(node, key, errors)
    if v is s._MISSING:
        return v
    percent = v.get("percent")
    if isinstance(percent, (int, float)) and v.get("type") in ("canary", "linear"):
        # ECS: canaryPercent 0.1..100, linear stepPercent 3.0..100, both in multiples of 0.1 (UpdateService refuses
        # anything else, which would stop a run after its image was built and registered)
        where = key_node(node, "percent")
        if v["type"] == "linear" and percent < 3:
            errors.add(where, f"{key}.percent", f"a linear step of {percent:g}% is too small: ECS takes 3% to 100%")
            return s._MISSING
        if not math.isclose(percent * 10, round(percent * 10), abs_tol=1e-9):
            errors.add(where, f"{key}.percent", f"{percent:g}% is not a multiple of 0.1 (ECS takes steps of 0.1%)")
            return s._MISSING
    return {k: x for k, x in v.items() if x is not None and x is not s._MISSING}


def spec_from(raw: dict[str, Any] | None, defaults: dict[str, Any] | None = None) -> StrategySpec:
    """The phase's strategy: its own settings over the defaults' (a phase naming another type starts afresh)."""
    base = dict(defaults or {})
    own = dict(raw or {})
    if own and base and own.get("type") != base.get("type"):
        base = {}
    return build(StrategySpec, {**base, **own})


WIRING = ("production_listener_rule", "test_listener_rule", "infrastructure_role")


def wiring_problem(kind: str, load_balancer: dict[str, Any] | None) -> str | None:
    """Why `service.load_balancer` cannot carry a traffic strategy (None when it can, or for rolling)."""
    if kind == "rolling":
        return None
    lb = load_balancer or {}
    missing = [f"service.load_balancer.{k}" for k in WIRING if not lb.get(k)]
    if len(lb.get("target_groups") or ()) != 2:
        missing.append("service.load_balancer.target_groups (the two groups ECS alternates between)")
    if not missing:
        return None
    return f"strategy {kind} needs {', '.join(missing)} (or use strategy: rolling)"


def key_node(node: yaml.Node, *path: str) -> yaml.Node | None:
    """The value node at `path` in a mapping node (for a mistake's line), or None."""
    for name in path:
        if not isinstance(node, yaml.MappingNode):
            return None
        found = next((v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == name), None)
        if found is None:
            return None
        node = found
    return node


TEST_STAGE = "POST_TEST_TRAFFIC_SHIFT"
SHIFT_STAGE = "PRODUCTION_TRAFFIC_SHIFT"
POST_SHIFT_STAGE = "POST_PRODUCTION_TRAFFIC_SHIFT"


def is_production_gate(g: GateSpec) -> bool:
    """Gates that need production traffic on green: metrics, alarm, target-health."""
    return isinstance(g, (AlarmGate, TargetHealthGate)) or g.type == "metrics"


def is_test_gate(g: GateSpec) -> bool:
    """Gates that judge green on the test listener: all but metrics and alarm."""
    return not isinstance(g, AlarmGate) and g.type != "metrics"


def pause_stages(strategy: StrategySpec, gates: tuple[GateSpec, ...]) -> list[str]:
    """The lifecycle stages where snail pauses the deployment to judge (what `plan` shows)."""
    if not strategy.uses_traffic:
        return []
    stages = [TEST_STAGE]
    if any(is_production_gate(g) for g in gates):
        stages.append(POST_SHIFT_STAGE if strategy.kind == "blue-green" else SHIFT_STAGE)
    return stages


def alarm_names(gates: tuple[GateSpec, ...]) -> list[str]:
    """Every alarm the phase's `alarm` gates name, once each, in order (ECS watches them during a deployment)."""
    return list(dict.fromkeys(a for g in gates if isinstance(g, AlarmGate) for a in g.alarms))


def is_bake_gate(g: GateSpec) -> bool:
    """Gates judged during ECS's bake (blue still up): alarm and metrics."""
    return isinstance(g, AlarmGate) or g.type == "metrics"


def worst_case(g: GateSpec) -> float:
    """The longest a gate may take at a PAUSE hook, in seconds: its `timeout`, or what its retries allow (each
    attempt's own bound times `attempts`, plus the waits between them), whichever is shorter. ecs-rollout reads
    the deployment once at a hook; alarm, metrics and target-health attempts are a few API calls (counted 0)."""
    if isinstance(g, EcsRolloutGate):
        return 0.0
    r = g.retries
    waits = 0.0
    for n in range(1, max(1, r.attempts)):  # tenacity's wait after attempt n (wait_fixed / wait_exponential)
        waits += min(max(r.wait * r.backoff ** (n - 1), r.wait), r.max_wait) if r.backoff > 1 and r.wait > 0 else r.wait
    each = 0.0
    if isinstance(g, HttpGate):
        each = g.consecutive * g.request_timeout + (g.consecutive - 1) * g.interval
    elif isinstance(g, CommandGate):
        each = g.timeout or 0.0
    bound = max(1, r.attempts) * each + waits
    return min(g.timeout, bound) if g.timeout is not None else bound


def stage_gates(stage: str, gates: tuple[GateSpec, ...]) -> tuple[GateSpec, ...]:
    """The gates snail judges while the deployment waits at `stage` (what the engine runs at that hook)."""
    pick = is_test_gate if stage == TEST_STAGE else is_production_gate
    return tuple(g for g in gates if pick(g))


def hook_timeout_warnings(strategy: StrategySpec, gates: tuple[GateSpec, ...]) -> list[str]:
    """One warning per PAUSE stage whose gates can take longer, in the worst case, than the strategy's
    hook_timeout: ECS would then apply the timeout's ROLLBACK while snail is still judging."""
    out = []
    for stage in pause_stages(strategy, gates):
        judged = [(g, worst_case(g)) for g in stage_gates(stage, gates)]
        total = sum(w for _, w in judged)
        if total <= strategy.hook_timeout:
            continue
        parts = ", ".join(f"{g.label} {w:g}s" for g, w in judged if w > 0)
        out.append(
            f"the gates at {stage} can take up to {total:g}s ({parts}), longer than the strategy's hook_timeout "
            f"({_minutes(strategy.hook_timeout)}): ECS would apply the timeout's ROLLBACK while snail is still "
            f"judging; raise hook_timeout to at least {math.ceil(total / 60):g}m or shorten the gates' timeout/retries"
        )
    return out


def plan_lines(strategy: StrategySpec, gates: tuple[GateSpec, ...]) -> list[str]:
    """What `plan` prints about a phase's strategy: settings, where snail pauses and judges, traffic steps."""
    if not strategy.uses_traffic:
        return []
    lines = [f"    strategy: {strategy.describe()}"]
    for stage in pause_stages(strategy, gates):
        judged = ", ".join(g.label for g in stage_gates(stage, gates)) or "(none)"
        where = "green on the test listener only" if stage == TEST_STAGE else "green on its production share"
        lines.append(f"    pause:    {stage} ({where}): {judged}; CONTINUE or ROLLBACK")
    steps = " -> ".join(f"{p:g}%" for p in strategy.production_steps())
    lines.append(f"    traffic:  production on green {steps}; a ROLLBACK returns it to blue without a new task")
    alarms = alarm_names(gates)
    if alarms:
        lines.append(f"    alarms:   ECS itself watches {', '.join(alarms)} at every stage (ALARM: ROLLBACK to blue)")
    watched = ", ".join(g.label for g in gates if is_bake_gate(g))
    if strategy.bake and watched:
        lines.append(
            f"    ECS bake: {_minutes(strategy.bake)}, blue still up: {watched} judged each poll (fails: ROLLBACK)"
        )
    lines.extend(f"    WARNING:  {w}" for w in hook_timeout_warnings(strategy, gates))
    return lines
