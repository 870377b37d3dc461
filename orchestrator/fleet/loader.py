"""load_fleet(): fleet.yaml -> a frozen Fleet, or every mistake with its file, line and key.

`validate_fleet()` also loads every target's pipeline with the target's overrides applied, so one command checks
the whole release before any wave starts."""

from __future__ import annotations

import dataclasses
import os
import re
from datetime import date, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from orchestrator.config import schema as s
from orchestrator.config import yamlio
from orchestrator.config.model import Pipeline, RegistrySpec
from orchestrator.errors import ConfigError, ConfigErrors
from orchestrator.fleet.model import (
    FLEET_FILE,
    Fleet,
    FleetState,
    Freeze,
    OnFailure,
    Target,
    Wave,
    Window,
)

_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}", re.ASCII)  # target and wave names become journal keys and tags
_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_CLOCK = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])", re.ASCII)


def _days(node: yaml.Node, key: str, errors: s.Errors) -> Any:
    """'mon-thu', 'mon,wed,fri', 'sat-sun', 'mon-fri,sun' -> a set of weekday numbers (Monday 0)."""
    v = s.string(node, key, errors)
    if v is s._MISSING:
        return v
    out: set[int] = set()
    for part in str(v).lower().replace(" ", "").split(","):
        lo, _, hi = part.partition("-")
        if lo not in _DAYS or (hi and hi not in _DAYS):
            errors.add(node, key, f"{part!r} is not a day or a range of days (mon..sun, e.g. mon-thu or mon,wed)")
            return s._MISSING
        a, b = _DAYS.index(lo), _DAYS.index(hi or lo)
        out.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])  # fri-mon wraps the week
    return frozenset(out)


def _clock(node: yaml.Node, key: str, errors: s.Errors) -> Any:
    """'09:00' -> time(9, 0) (24-hour clock; quote it in YAML, or 09:00 may read as a number)."""
    v = s.string(node, key, errors)
    if v is s._MISSING:
        return v
    m = _CLOCK.fullmatch(str(v).strip())
    if not m:
        errors.add(node, key, f'expected a 24-hour time like "09:00", got {v!r}')
        return s._MISSING
    return time(int(m.group(1)), int(m.group(2)))


def _zone(node: yaml.Node, key: str, errors: s.Errors) -> Any:
    """An IANA time zone name (America/New_York, Europe/Dublin, UTC)."""
    v = s.string(node, key, errors)
    if v is s._MISSING:
        return v
    try:
        ZoneInfo(str(v))
    except (ZoneInfoNotFoundError, ValueError):
        errors.add(node, key, f"unknown time zone {v!r} (use an IANA name such as America/New_York or UTC)")
        return s._MISSING
    return str(v)


def _day(node: yaml.Node, key: str, errors: s.Errors) -> Any:
    """A calendar date, 2026-12-20 (YAML reads it as a date; a quoted one is parsed)."""
    if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:timestamp":
        value = yaml.safe_load(node.value)
        return value if isinstance(value, date) and not isinstance(value, datetime) else value.date()
    v = s.string(node, key, errors)
    if v is s._MISSING:
        return v
    try:
        return date.fromisoformat(str(v).strip())
    except ValueError:
        errors.add(node, key, f"expected a date like 2026-12-20, got {v!r}")
        return s._MISSING


def _name(what: str) -> s.Checker:
    def check(node: yaml.Node, key: str, errors: s.Errors) -> Any:
        v = s.string(node, key, errors)
        if v is not s._MISSING and not _NAME.fullmatch(str(v)):
            errors.add(node, key, f"bad {what} name {v!r} (a-z, 0-9, - and _, at most 63 characters)")
            return s._MISSING
        return v

    return check


_registry = s.Mapping(
    {"ecr": s.Field(s.string), "url": s.Field(s.string), "create": s.Field(s.boolean, default=False)},
    extra=lambda d: (
        [("registry", "give exactly one of `ecr` or `url`")] if bool(d.get("ecr")) == bool(d.get("url")) else []
    ),
)

_target = s.Mapping(
    {
        "pipeline": s.Field(s.file_path),
        "region": s.Field(s.string),
        "cluster": s.Field(s.string),
        "service": s.Field(s.string),
        "profile": s.Field(s.string),
        "role_arn": s.Field(s.string),
        "registry": s.Field(_registry),
    },
    extra=lambda d: (
        [("role_arn", "give `profile` or `role_arn`, not both")] if d.get("profile") and d.get("role_arn") else []
    ),
)


def _targets(node: yaml.Node, key: str, errors: s.Errors) -> Any:
    """A mapping of target name -> its overrides."""
    if not isinstance(node, yaml.MappingNode):
        errors.add(node, key, "expected a mapping of target name -> {region, cluster, ...}")
        return s._MISSING
    out: dict[str, Any] = {}
    for knode, vnode in node.value:
        name = _name("target")(knode, f"{key}.{knode.value}", errors)
        if name is s._MISSING:
            continue
        if name in out:
            errors.add(knode, f"{key}.{name}", "duplicate target")
            continue
        body = _target(vnode, f"{key}.{name}", errors) if not _empty(vnode) else {}
        if body is not s._MISSING:
            out[name] = (body, knode)
    if not out:
        errors.add(node, key, "needs at least one target")
    return out


def _empty(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"


_wave = s.Mapping(
    {
        "name": s.Field(_name("wave"), required=True),
        "targets": s.Field(s.list_of(s.string, 1), required=True),
        "bake": s.Field(s.duration, default=0.0),
        "approval": s.Field(s.one_of("auto", "manual"), default="auto"),
        "max_parallel": s.Field(s.integer(1, 100), default=1),
        "barrier": s.Field(s.one_of("none", "test-traffic"), default="none"),
    }
)

_window = s.Mapping(
    {
        "days": s.Field(_days, default=frozenset(range(7))),
        "from": s.Field(_clock, required=True),
        "to": s.Field(_clock, required=True),
        "zone": s.Field(_zone, default="UTC"),
    },
    extra=lambda d: (
        [("to", "must be later than `from` (a window does not span midnight: write two)")]
        if isinstance(d.get("from"), time) and isinstance(d.get("to"), time) and d["to"] <= d["from"]
        else []
    ),
)

_freeze = s.Mapping(
    {"from": s.Field(_day, required=True), "to": s.Field(_day, required=True), "reason": s.Field(s.string, default="")},
    extra=lambda d: (
        [("to", "is before `from`")]
        if isinstance(d.get("from"), date) and isinstance(d.get("to"), date) and d["to"] < d["from"]
        else []
    ),
)

_fleet = s.Mapping(
    {
        "version": s.Field(s.integer(1, 1), required=True),
        "pipeline": s.Field(s.file_path, default="pipeline.yaml"),
        "targets": s.Field(_targets, required=True),
        "waves": s.Field(s.list_of(_wave, 1), required=True),
        "on_failure": s.Field(
            s.Mapping(
                {
                    "this_wave": s.Field(s.one_of("rollback", "finish"), default="rollback"),
                    "earlier_waves": s.Field(s.one_of("keep", "rollback"), default="keep"),
                }
            ),
            default={"this_wave": "rollback", "earlier_waves": "keep"},
        ),
        "windows": s.Field(s.list_of(_window), default=[]),
        "freezes": s.Field(s.list_of(_freeze), default=[]),
        "state": s.Field(
            s.Mapping(
                {
                    "backend": s.Field(s.one_of("local", "dynamodb"), default="local"),
                    "path": s.Field(s.file_path, default=".snail"),
                    "table": s.Field(s.string),
                    "region": s.Field(s.string),
                    "name": s.Field(_name("fleet"), default="default"),
                },
                extra=lambda d: (
                    [("table", "the dynamodb backend needs `table`")]
                    if d.get("backend") == "dynamodb" and not d.get("table")
                    else []
                ),
            )
        ),
    }
)


def find_fleet(start: Path | None = None) -> Path:
    """The nearest fleet.yaml in `start` (default: the current folder) or a folder above it."""
    here = (start or Path.cwd()).absolute()
    for folder in (here, *here.parents):
        candidate = folder / FLEET_FILE
        if candidate.exists() or candidate.is_symlink():
            return candidate
    raise yamlio.fail(FLEET_FILE, None, f"not found in {here} or any folder above it; give it with --fleet FILE")


def load_fleet(path: str | Path | None = None) -> Fleet:
    """Load and check fleet.yaml (not the targets' pipelines: see validate_fleet); raise ConfigErrors."""
    path = find_fleet() if path is None else Path(os.path.abspath(path))
    errors = s.Errors(str(path))
    node = yamlio.load(path, path.parent)
    raw = _fleet(node, "", errors)
    if raw is s._MISSING or not isinstance(raw.get("targets"), dict) or not isinstance(raw.get("waves"), list):
        raise ConfigErrors(list(errors.items) or [ConfigError(str(path), None, "not a fleet")])
    waves_node = yamlio.walk(node, "waves")
    if not isinstance(waves_node, yaml.SequenceNode) or len(waves_node.value) != len(raw["waves"]):
        raise ConfigErrors(list(errors.items))  # a wave was unreadable: its cross-checks would name wrong lines
    root = path.parent
    default_pipeline = _abs(root, raw["pipeline"])
    targets = tuple(
        Target(
            name=name,
            pipeline=_abs(root, body["pipeline"]) if body.get("pipeline") else default_pipeline,
            region=body.get("region"),
            cluster=body.get("cluster"),
            service=body.get("service"),
            profile=body.get("profile"),
            role_arn=body.get("role_arn"),
            registry={k: v for k, v in (body.get("registry") or {}).items() if v} or None,
        )
        for name, (body, _knode) in raw["targets"].items()
    )
    known = {t.name for t in targets}
    seen: dict[str, str] = {}
    waves: list[Wave] = []
    for i, w in enumerate(raw["waves"]):
        wnode = waves_node.value[i]
        if "name" not in w or "targets" not in w:
            continue
        if any(x.name == w["name"] for x in waves):
            errors.add(wnode, f"waves[{i}].name", f"wave {w['name']!r} is listed twice")
        for t in w["targets"]:
            if t not in known:
                hint = s._did_you_mean(t, dict.fromkeys(known))
                errors.add(
                    wnode, f"waves[{i}].targets", f"no target named {t!r}{hint}; targets: {', '.join(sorted(known))}"
                )
            elif t in seen:
                errors.add(wnode, f"waves[{i}].targets", f"target {t!r} is already in wave {seen[t]!r}")
            else:
                seen[t] = w["name"]
        waves.append(
            Wave(
                name=w["name"],
                targets=tuple(w["targets"]),
                bake=w.get("bake", 0.0),  # a value that failed its check is missing: the errors say so
                approval=w.get("approval", "auto"),
                max_parallel=w.get("max_parallel", 1),
                barrier=w.get("barrier", "none"),
            )
        )
    for t in targets:
        if t.name not in seen:
            knode = raw["targets"][t.name][1]
            errors.add(knode, f"targets.{t.name}", "is in no wave (add it to one, or remove it)")
    if errors.items:
        raise ConfigErrors(list(errors.items))
    st = raw.get("state") or {}
    return Fleet(
        path=path,
        pipeline=default_pipeline,
        targets=targets,
        waves=tuple(waves),
        on_failure=OnFailure(**raw["on_failure"]),
        windows=tuple(Window(days=w["days"], start=w["from"], end=w["to"], zone=w["zone"]) for w in raw["windows"]),
        freezes=tuple(Freeze(start=f["from"], end=f["to"], reason=f["reason"]) for f in raw["freezes"]),
        state=FleetState(
            backend=st.get("backend", "local"),
            path=st.get("path", ".snail"),
            table=st.get("table"),
            region=st.get("region"),
            name=st.get("name", "default"),
        ),
    )


def _abs(root: Path, p: str) -> Path:
    q = Path(p)
    return (q if q.is_absolute() else root / q).absolute()


def target_pipeline(fleet: Fleet, target: Target, base: Pipeline | None = None) -> Pipeline:
    """The target's pipeline with its overrides applied (cluster, service name, region, registry), and its own
    local state folder, so two targets of one pipeline never share a lock or a journal."""
    from orchestrator.config import load_pipeline

    pipeline = base if base is not None else load_pipeline(target.pipeline)
    service = dataclasses.replace(
        pipeline.service,
        cluster=target.cluster or pipeline.service.cluster,
        name=target.service or pipeline.service.name,
        region=target.region or pipeline.service.region,
    )
    registry = pipeline.registry
    if target.registry:
        registry = RegistrySpec(
            ecr=target.registry.get("ecr"), url=target.registry.get("url"), create=bool(target.registry.get("create"))
        )
    state = pipeline.state
    if state.backend == "local":
        state = dataclasses.replace(state, path=str(fleet.state_dir() / "targets" / target.name))
    return dataclasses.replace(pipeline, service=service, registry=registry, state=state)


def validate_fleet(fleet: Fleet) -> dict[str, Pipeline]:
    """Every target's pipeline, loaded with its overrides; ConfigErrors naming every mistake in any of them."""
    from orchestrator.config import load_pipeline

    loaded: dict[Path, Pipeline | None] = {}
    out: dict[str, Pipeline] = {}
    problems: list[ConfigError] = []
    for t in fleet.targets:
        if t.pipeline not in loaded:
            try:
                loaded[t.pipeline] = load_pipeline(t.pipeline)
            except ConfigErrors as exc:
                problems.extend(exc.errors)
                loaded[t.pipeline] = None  # said once, not once per target that runs it
        base = loaded[t.pipeline]
        if base is not None:
            out[t.name] = target_pipeline(fleet, t, base)
    if problems:
        raise ConfigErrors(problems)
    return out
