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
    ImageSpec,
    LoadBalancerSpec,
    NetworkSpec,
    Phase,
    Pipeline,
    ProbeSpec,
    RegistrySpec,
    ServiceSpec,
    StateSpec,
    TaskSpec,
)
from orchestrator.config.offline import check_offline
from orchestrator.errors import ConfigError, ConfigErrors

_gate = gate_schema.gate


_image = s.Mapping(
    {
        "context": s.Field(s.file_path),
        "ref": s.Field(s.image_ref),
        "dockerfile": s.Field(s.file_path),
        "build_args": s.Field(s.str_map),
        "build_secrets": s.Field(s.str_map),
        "probe": s.Field(s.probe),
    },
    extra=lambda d: (
        ([("image", "give exactly one of `context` or `ref`")] if bool(d.get("context")) == bool(d.get("ref")) else [])
        + _build_secret_problems(d)
    ),
)


def _build_secret_problems(d: dict[str, Any]) -> list[tuple[str, str]]:
    """build_secrets: only for a build, names BuildKit takes, none also a build arg (that one would be in history)."""
    from orchestrator.build.buildkit import SECRET_ID

    secrets = d.get("build_secrets") or {}
    out = []
    if secrets and d.get("ref"):
        out.append(("build_secrets", "build secrets are for a build `context`, not a prebuilt `ref`"))
    out += [
        ("build_secrets", f"{n!r}: a build secret's name is letters, digits, '_', '.' or '-' (it is the mount's id)")
        for n in secrets
        if not SECRET_ID.match(str(n))
    ]
    out += [
        ("build_secrets", f"{n!r} is both a build arg and a build secret: keep it in build_secrets only")
        for n in secrets
        if n in (d.get("build_args") or {})
    ]
    return out


_task = s.Mapping(
    {
        "cpu": s.Field(s.integer(128, 16384)),
        "memory": s.Field(s.integer(128, 122880)),
        "environment": s.Field(s.str_map),
        "secrets": s.Field(s.secret_map),
        "command": s.Field(s.list_of(s.string)),
    }
)

_phase = s.Mapping(
    {
        "name": s.Field(s.string, required=True),
        "image": s.Field(_image, required=True),
        "task": s.Field(_task),
        "gates": s.Field(s.list_of(_gate)),
        "inherit_gates": s.Field(s.boolean, default=True),
        "approval": s.Field(s.one_of("auto", "manual"), default="auto"),
        "bake": s.Field(s.duration),
        "strategy": s.Field(strategy_schema.check),
    }
)

_service = s.Mapping(
    {
        "cluster": s.Field(s.ecs_name("cluster"), required=True),
        "name": s.Field(s.ecs_name("service"), required=True),
        "region": s.Field(s.region, default="us-east-1"),
        "container": s.Field(s.ecs_name("container"), required=True),
        "port": s.Field(s.port, required=True),
        "task_definition": s.Field(s.file_path),
        "desired_count": s.Field(s.integer(0, 1000), default=1),
        "launch_type": s.Field(s.one_of("FARGATE", "EC2", "EXTERNAL"), default="FARGATE"),
        "endpoint": s.Field(s.http_url),
        "circuit_breaker": s.Field(s.boolean, default=True),
        "network": s.Field(
            s.Mapping(
                {
                    "subnets": s.Field(s.list_of(s.string)),
                    "security_groups": s.Field(s.list_of(s.string)),
                    "assign_public_ip": s.Field(s.boolean, default=False),
                }
            )
        ),
        "load_balancer": s.Field(
            s.Mapping(
                {
                    "target_group_arn": s.Field(s.string, required=True),
                    "container_port": s.Field(s.port),
                    "production_listener_rule": s.Field(s.string),
                    "test_listener_rule": s.Field(s.string),
                    "target_groups": s.Field(s.list_of(s.string, 2)),
                    "infrastructure_role": s.Field(s.string),
                    "test_url": s.Field(s.http_url),
                }
            )
        ),
    }
)

_registry = s.Mapping(
    {"ecr": s.Field(s.ecr_repository), "url": s.Field(s.registry_url), "create": s.Field(s.boolean, default=False)},
    extra=lambda d: (
        [("registry", "give exactly one of `ecr` or `url`")] if bool(d.get("ecr")) == bool(d.get("url")) else []
    ),
)

_state = s.Mapping(
    {
        "backend": s.Field(s.one_of("local", "dynamodb"), default="local"),
        "path": s.Field(s.file_path, default=".snail"),
        "table": s.Field(s.dynamodb_table),
        "lease": s.Field(s.lease, default=300.0),
    },
    extra=lambda d: (
        [("table", "the dynamodb backend needs `table`")]
        if d.get("backend") == "dynamodb" and not d.get("table")
        else []
    ),
)

_defaults = s.Mapping(
    {
        "gates": s.Field(s.list_of(_gate), default=[]),
        "bake": s.Field(s.duration, default=0.0),
        "build_args": s.Field(s.str_map, default={}),
        "strategy": s.Field(strategy_schema.check),
    }
)

_pipeline = s.Mapping(
    {
        "version": s.Field(s.integer(1, 1), required=True),
        "service": s.Field(_service, required=True),
        "registry": s.Field(_registry, required=True),
        "state": s.Field(_state),
        "defaults": s.Field(_defaults),
        "phases": s.Field(s.list_of(s.string, 1), required=True),
        "rollback": s.Field(s.Mapping({"on_interrupt": s.Field(s.one_of("rollback", "record"), default="rollback")})),
        "notify": s.Field(notify_spec.schema(), default=[]),
        "allow_outside_repo": s.Field(s.boolean, default=False),
    }
)


def _compose(path: Path, root: Path | None = None) -> yaml.Node:
    """Read a YAML file safely (regular file in `root`, size cap, UTF-8, bounded YAML) into nodes with lines."""
    return yamlio.load(path, root if root is not None else path.parent)


def _rel(root: Path, p: str) -> Path:
    """`p` relative to the pipeline's folder (absolute paths stay as they are)."""
    q = Path(p)
    return q if q.is_absolute() else root / q


def _phase_from(raw: dict[str, Any], path: Path, defaults: dict[str, Any]) -> Phase:
    img = raw["image"]
    probe_raw = img.get("probe")
    probe = None
    if img.get("context") and probe_raw is not False:
        pr = probe_raw if isinstance(probe_raw, dict) else {}
        probe = ProbeSpec(path=str(pr.get("path", "/health")), timeout=s.parse_duration(pr.get("timeout", 30)))
    build_secrets = dict(img.get("build_secrets") or {})
    build_args = {
        k: v
        for k, v in {**defaults.get("build_args", {}), **(img.get("build_args") or {})}.items()
        if k not in build_secrets
    }
    image = ImageSpec(
        context=_rel(path.parent.parent, img["context"]) if img.get("context") else None,
        ref=img.get("ref"),
        dockerfile=img.get("dockerfile"),
        build_args=build_args,
        probe=probe,
        build_secrets=build_secrets,
    )
    t = raw.get("task") or {}
    task = TaskSpec(
        cpu=t.get("cpu"),
        memory=t.get("memory"),
        environment=dict(t.get("environment") or {}),
        secrets=dict(t.get("secrets") or {}),
        command=tuple(t["command"]) if t.get("command") else None,
    )
    own = tuple(raw.get("gates") or ())
    gates = (tuple(defaults.get("gates") or ()) if raw.get("inherit_gates", True) else ()) + own
    bake = raw["bake"] if raw.get("bake") is not None else defaults.get("bake", 0.0)
    return Phase(
        name=raw["name"],
        image=image,
        task=task,
        gates=gates,
        bake=bake,
        approval=raw.get("approval") or "auto",
        path=path,
        strategy=strategy_schema.spec_from(raw.get("strategy"), defaults.get("strategy")),
    )


def load_pipeline(path: str | Path | None = None) -> Pipeline:
    """Load and check pipeline.yaml and every phase file; raise ConfigErrors listing every mistake.

    Without a path, the nearest pipeline.yaml in the current folder or above is used (as git finds .git)."""
    path = yamlio.find_pipeline() if path is None else Path(os.path.abspath(path))
    errors = s.Errors(str(path))
    root_node = _compose(path)
    raw = _pipeline(root_node, "", errors)
    all_errors: list[ConfigError] = list(errors.items)
    if raw is s._MISSING or "phases" not in raw:
        raise ConfigErrors(all_errors)

    root = path.parent
    defaults = raw.get("defaults") or {"gates": [], "bake": 0.0, "build_args": {}}
    defaults = {k: v for k, v in defaults.items() if v is not s._MISSING}
    phases: list[Phase] = []
    seen: set[str] = set()
    names_node = next(v for k, v in root_node.value if k.value == "phases")
    if not isinstance(names_node, yaml.SequenceNode):
        raise ConfigErrors(all_errors)
    for i, name in enumerate(raw["phases"]):
        line = names_node.value[i].start_mark.line + 1
        problem = s.phase_name_problem(name)
        if problem:
            all_errors.append(ConfigError(str(path), line, problem, f"phases[{i}]"))
            continue
        if name in seen:
            all_errors.append(ConfigError(str(path), line, f"phase {name!r} is listed twice", f"phases[{i}]"))
            continue
        seen.add(name)
        ppath = root / "phases" / f"{name}.yaml"
        if not ppath.exists():
            all_errors.append(
                ConfigError(str(path), line, f"phase file {ppath.relative_to(root)} does not exist", f"phases[{i}]")
            )
            continue
        perr = s.Errors(str(ppath))
        try:
            node = _compose(ppath, root)
        except ConfigErrors as exc:
            all_errors.extend(exc.errors)
            continue
        praw = _phase(node, "", perr)
        if praw is not s._MISSING and not perr.items and praw["name"] != name:
            perr.add(node, "name", f"is {praw['name']!r} but the file is {ppath.name} (listed as {name!r})")
        if praw is not s._MISSING and not perr.items and praw["image"].get("context"):
            ctx = _rel(root, praw["image"]["context"])
            if not ctx.is_dir():
                perr.add(node, "image.context", f"build context {praw['image']['context']} is not a folder")
        if praw is not s._MISSING and not perr.items:  # a traffic strategy needs the load balancer's wiring
            kind = (praw.get("strategy") or defaults.get("strategy") or {}).get("type", "rolling")
            problem = strategy_schema.wiring_problem(kind, (raw.get("service") or {}).get("load_balancer"))
            if problem and praw.get("strategy"):
                perr.add(strategy_schema.key_node(node, "strategy") or node, "strategy", problem)
            elif problem and not any(e.key == "defaults.strategy" for e in all_errors):
                at = s.Errors(str(path))
                at.add(strategy_schema.key_node(root_node, "defaults", "strategy"), "defaults.strategy", problem)
                all_errors.extend(at.items)
        all_errors.extend(perr.items)
        if praw is not s._MISSING and not perr.items:
            phases.append(_phase_from(praw, ppath, defaults))

    svc = raw.get("service") or {}
    for i, ph in enumerate(phases):
        wired, problems = gate_schema.wire(ph.gates, svc)
        phases[i] = dataclasses.replace(ph, gates=wired)
        all_errors.extend(problems)
    defaults_gates, problems = gate_schema.wire(tuple(defaults.get("gates") or ()), svc)
    all_errors.extend(p for p in problems if p not in all_errors)
    tdef = svc.get("task_definition")
    if tdef and not _rel(root, tdef).exists():
        all_errors.append(
            ConfigError(str(path), None, f"task definition template {tdef} does not exist", "service.task_definition")
        )
    all_errors.extend(check_offline(path, raw, phases))
    if all_errors:
        raise ConfigErrors(all_errors)

    net = svc.get("network")
    lb = svc.get("load_balancer")
    st = raw.get("state") or {}
    reg = raw["registry"]
    return Pipeline(
        version=raw["version"],
        service=ServiceSpec(
            cluster=svc["cluster"],
            name=svc["name"],
            region=svc["region"],
            container=svc["container"],
            port=svc["port"],
            task_definition=_rel(root, tdef) if tdef else None,
            desired_count=svc["desired_count"],
            launch_type=svc["launch_type"],
            endpoint=svc.get("endpoint"),
            network=NetworkSpec(
                tuple(net.get("subnets") or ()),
                tuple(net.get("security_groups") or ()),
                bool(net.get("assign_public_ip")),
            )
            if net
            else None,
            load_balancer=LoadBalancerSpec(
                lb["target_group_arn"],
                lb.get("container_port"),
                lb.get("production_listener_rule"),
                lb.get("test_listener_rule"),
                tuple(lb.get("target_groups") or ()),
                lb.get("infrastructure_role"),
                lb.get("test_url"),
            )
            if lb
            else None,
            circuit_breaker=svc["circuit_breaker"],
        ),
        registry=RegistrySpec(ecr=reg.get("ecr"), url=reg.get("url"), create=bool(reg.get("create"))),
        state=StateSpec(
            backend=st.get("backend") or "local",
            path=st.get("path") or ".snail",
            table=st.get("table"),
            lease=st.get("lease") or 300.0,
        ),
        phases=tuple(phases),
        path=path,
        defaults_gates=defaults_gates,
        bake=defaults.get("bake") or 0.0,
        on_interrupt=(raw.get("rollback") or {}).get("on_interrupt") or "rollback",
        notify=notify_spec.specs_from(raw.get("notify"), str(path)),
    )
