"""load_pipeline(): pipeline.yaml + phases/*.yaml -> a frozen Pipeline, or every mistake with file:line."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import yaml

from orchestrator.config import gate_schema, yamlio
from orchestrator.config import notify as notify_spec
from orchestrator.config import schema as s
from orchestrator.config import strategy as strategy_schema
from orchestrator.config.model import (
    Defaults,
    ImageSpec,
    Phase,
    Pipeline,
    ProbeSpec,
    RegistrySpec,
    Rollback,
    ServiceSpec,
    StateSpec,
)
from orchestrator.config.offline import check_offline
from orchestrator.config.section import build, checker
from orchestrator.errors import ConfigError, ConfigErrors

_phase = checker(Phase, also={"inherit_gates": s.Field(s.boolean)})

_pipeline = s.Mapping(  # the file's top level: a section, or what the loader reads itself
    {
        "version": s.Field(s.integer(1, 1), required=True),
        "service": s.Field(checker(ServiceSpec), required=True),
        "registry": s.Field(checker(RegistrySpec), required=True),
        "state": s.Field(checker(StateSpec)),
        "defaults": s.Field(checker(Defaults)),
        "phases": s.Field(s.list_of(s.string, 1), required=True),
        "rollback": s.Field(checker(Rollback)),
        "notify": s.Field(notify_spec.schema()),
        "allow_outside_repo": s.Field(s.boolean),
    }
)


def _compose(path: Path, root: Path | None = None) -> yaml.Node:
    """Read a YAML file safely (regular file in `root`, size cap, UTF-8, bounded YAML) into nodes with lines."""
    return yamlio.load(path, root if root is not None else path.parent)


def _rel(root: Path, p: str) -> Path:
    """`p` relative to the pipeline's folder (absolute paths stay as they are)."""
    q = Path(p)
    return q if q.is_absolute() else root / q


def _phase_from(raw: dict[str, Any], path: Path, defaults: Defaults) -> Phase:
    """A checked phase file -> its Phase, with what it takes from `defaults:` merged in."""
    root = path.parent.parent
    img = raw["image"]
    probe = None
    if img.get("context") and img.get("probe") is not False:
        probe = build(ProbeSpec, img.get("probe") or {})
    secrets = img.get("build_secrets") or {}
    build_args = {k: v for k, v in {**defaults.build_args, **(img.get("build_args") or {})}.items() if k not in secrets}
    inherited = defaults.gates if raw.get("inherit_gates") is not False else ()
    return build(
        Phase,
        raw,
        root,
        image=build(ImageSpec, img, root, build_args=build_args, probe=probe),
        gates=inherited + tuple(raw.get("gates") or ()),
        bake=raw["bake"] if raw.get("bake") is not None else defaults.bake,
        path=path,
        strategy=strategy_schema.spec_from(raw.get("strategy"), defaults.strategy),
    )


def _phase_problems(praw: dict[str, Any], node: yaml.Node, ppath: Path, name: str, perr: s.Errors) -> None:
    """What a well-formed phase file can still get wrong: its name, its build context."""
    if praw["name"] != name:
        perr.add(node, "name", f"is {praw['name']!r} but the file is {ppath.name} (listed as {name!r})")
    context = praw["image"].get("context")
    if not perr.items and context and not _rel(ppath.parent.parent, context).is_dir():
        perr.add(node, "image.context", f"build context {context} is not a folder")


def load_pipeline(path: str | Path | None = None) -> Pipeline:
    """Load and check pipeline.yaml and every phase file; raise ConfigErrors listing every mistake.

    Compose (YAML nodes with their lines) -> check and build each section -> the checks across sections and
    files. Without a path, the nearest pipeline.yaml in the current folder or above is used (as git finds .git)."""
    path = yamlio.find_pipeline() if path is None else Path(os.path.abspath(path))
    errors = s.Errors(str(path))
    root_node = _compose(path)
    raw = _pipeline(root_node, "", errors)
    problems: list[ConfigError] = list(errors.items)
    if raw is s._MISSING or "phases" not in raw:
        raise ConfigErrors(problems)
    defaults = build(Defaults, raw.get("defaults") or {})
    phases = _phases(path, root_node, raw, defaults, problems)
    svc = raw.get("service") or {}
    for i, ph in enumerate(phases):  # across sections: what a gate takes from the service
        wired, wrong = gate_schema.wire(ph.gates, svc)
        phases[i] = dataclasses.replace(ph, gates=wired)
        problems.extend(wrong)
    defaults_gates, wrong = gate_schema.wire(defaults.gates, svc)
    problems.extend(p for p in wrong if p not in problems)
    tdef = svc.get("task_definition")
    if tdef and not _rel(path.parent, tdef).exists():
        problems.append(
            ConfigError(str(path), None, f"task definition template {tdef} does not exist", "service.task_definition")
        )
    problems.extend(check_offline(path, raw, phases))
    if problems:
        raise ConfigErrors(problems)
    return Pipeline(
        version=raw["version"],
        service=build(ServiceSpec, svc, path.parent),
        registry=build(RegistrySpec, raw["registry"]),
        state=build(StateSpec, raw.get("state") or {}),
        phases=tuple(phases),
        path=path,
        defaults_gates=defaults_gates,
        bake=defaults.bake,
        on_interrupt=build(Rollback, raw.get("rollback") or {}).on_interrupt,
        notify=notify_spec.specs_from(raw.get("notify"), str(path)),
    )


def _phases(
    path: Path, root_node: yaml.Node, raw: dict[str, Any], defaults: Defaults, problems: list[ConfigError]
) -> list[Phase]:
    """The phases `phases:` lists, each file composed, checked and built; every mistake added to `problems`."""
    root = path.parent
    names_node = next(v for k, v in root_node.value if k.value == "phases")
    if not isinstance(names_node, yaml.SequenceNode):
        raise ConfigErrors(problems)
    phases: list[Phase] = []
    seen: set[str] = set()
    for i, name in enumerate(raw["phases"]):
        line = names_node.value[i].start_mark.line + 1
        ppath = root / "phases" / f"{name}.yaml"
        problem = s.phase_name_problem(name) or (f"phase {name!r} is listed twice" if name in seen else None)
        if not problem:
            seen.add(name)
            problem = None if ppath.exists() else f"phase file {ppath.relative_to(root)} does not exist"
        if problem:
            problems.append(ConfigError(str(path), line, problem, f"phases[{i}]"))
            continue
        phase = _phase_file(path, ppath, name, root_node, raw, defaults, problems)
        if phase is not None:
            phases.append(phase)
    return phases


def _phase_file(
    path: Path,
    ppath: Path,
    name: str,
    root_node: yaml.Node,
    raw: dict[str, Any],
    defaults: Defaults,
    problems: list[ConfigError],
) -> Phase | None:
    """Phase file `ppath` of pipeline `path` -> its Phase (None when it has mistakes, added to `problems`)."""
    root = path.parent
    perr = s.Errors(str(ppath))
    try:
        node = _compose(ppath, root)
    except ConfigErrors as exc:
        problems.extend(exc.errors)
        return None
    praw = _phase(node, "", perr)
    if praw is not s._MISSING and not perr.items:
        _phase_problems(praw, node, ppath, name, perr)
    if praw is not s._MISSING and not perr.items:  # a traffic strategy needs the load balancer's wiring
        kind = (praw.get("strategy") or defaults.strategy or {}).get("type", "rolling")
        problem = strategy_schema.wiring_problem(kind, (raw.get("service") or {}).get("load_balancer"))
        if problem and praw.get("strategy"):
            perr.add(strategy_schema.key_node(node, "strategy") or node, "strategy", problem)
        elif problem and not any(e.key == "defaults.strategy" for e in problems):
            at = s.Errors(str(path))
            at.add(strategy_schema.key_node(root_node, "defaults", "strategy"), "defaults.strategy", problem)
            problems.extend(at.items)
    problems.extend(perr.items)
    if praw is s._MISSING or perr.items:
        return None
    return _phase_from(praw, ppath, defaults)
