"""load_fleet(): fleet.yaml -> a frozen Fleet, or every mistake with its file, line and key.

`validate_fleet()` also loads every target's pipeline with the target's overrides applied, so one command checks
the whole release before any wave starts."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import yaml

from orchestrator.config import schema as s
from orchestrator.config import yamlio
from orchestrator.config.model import Pipeline, RegistrySpec
from orchestrator.config.section import build, checker
from orchestrator.config.yamlio import PIPELINE_FILE
from orchestrator.errors import ConfigError, ConfigErrors
from orchestrator.fleet import schema as fs
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

_target = checker(Target, also={"pipeline": s.Field(s.file_path)})


def _targets(node: yaml.Node, key: str, errors: s.Errors) -> Any:
    """A mapping of target name -> its overrides."""
    if not isinstance(node, yaml.MappingNode):
        errors.add(node, key, "expected a mapping of target name -> {region, cluster, ...}")
        return s._MISSING
    out: dict[str, Any] = {}
    for knode, vnode in node.value:
        name = fs.name("target")(knode, f"{key}.{knode.value}", errors)
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


_fleet = s.Mapping(  # the file's top level: a section, or what the loader reads itself
    {
        "version": s.Field(s.integer(1, 1), required=True),
        "pipeline": s.Field(s.file_path, default=PIPELINE_FILE),
        "targets": s.Field(_targets, required=True),
        "waves": s.Field(s.list_of(checker(Wave), 1), required=True),
        "on_failure": s.Field(checker(OnFailure)),
        "windows": s.Field(s.list_of(checker(Window))),
        "freezes": s.Field(s.list_of(checker(Freeze))),
        "state": s.Field(checker(FleetState)),
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
        build(
            Target,
            body,
            name=name,
            pipeline=_abs(root, body["pipeline"]) if body.get("pipeline") else default_pipeline,
            registry={k: v for k, v in (body.get("registry") or {}).items() if v} or None,
        )
        for name, (body, _knode) in raw["targets"].items()
    )
    waves = _waves(raw, waves_node, {t.name for t in targets}, errors)
    in_a_wave = {t for w in waves for t in w.targets}
    for t in targets:
        if t.name not in in_a_wave:
            errors.add(raw["targets"][t.name][1], f"targets.{t.name}", "is in no wave (add it to one, or remove it)")
    if errors.items:
        raise ConfigErrors(list(errors.items))
    return Fleet(
        path=path,
        pipeline=default_pipeline,
        targets=targets,
        waves=waves,
        on_failure=build(OnFailure, raw.get("on_failure") or {}),
        windows=tuple(build(Window, w) for w in raw.get("windows") or ()),
        freezes=tuple(build(Freeze, f) for f in raw.get("freezes") or ()),
        state=build(FleetState, raw.get("state") or {}),
    )


def _waves(raw: dict[str, Any], waves_node: yaml.SequenceNode, known: set[str], errors: s.Errors) -> tuple[Wave, ...]:
    """The waves, each naming targets that exist and are in no other wave (mistakes added to `errors`)."""
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
        waves.append(build(Wave, w))  # a value that failed its check is left out: the errors say so
    return tuple(waves)


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
