"""Ports agree everywhere: service.port, the task definition, the http gates, the target group (the log's 8080 vs 5000)."""

from __future__ import annotations

from typing import Any

from orchestrator.doctor.context import DoctorContext, Skip
from orchestrator.doctor.model import FAILED, PASSED, WARNING, Check
from orchestrator.doctor.runner import Result, check, run_checks


def _mapping_result(ctx: DoctorContext, definition: dict[str, Any], label: str, fix_where: str) -> Result:
    port = ctx.spec.port
    cd = ctx.container(definition)
    if cd is None:
        names = ", ".join(str(c.get("name")) for c in definition.get("containerDefinitions", [])) or "none"
        return Result(
            FAILED,
            f"{label} has no container named {ctx.spec.container!r} (containers: {names})",
            f"set service.container in pipeline.yaml to one of: {names}",
        )
    maps = cd.get("portMappings") or []
    ports = [m.get("containerPort") for m in maps]
    if not maps:
        return Result(
            FAILED,
            f"{label}: container {ctx.spec.container} maps no port; service.port is {port}",
            f'add "portMappings": [{{"containerPort": {port}, "protocol": "tcp"}}] to container '
            f"{ctx.spec.container} in {fix_where}",
        )
    if port not in ports:
        shown = ", ".join(map(str, ports))
        return Result(
            FAILED,
            f"{label}: container {ctx.spec.container} maps port {shown}, but service.port is {port}: "
            f"nothing the gates or the load balancer reach will answer",
            f'change "containerPort": {ports[0]} to "containerPort": {port} in {fix_where} '
            f"(or set service.port: {ports[0]} in pipeline.yaml if the app really listens on {ports[0]})",
        )
    m = maps[ports.index(port)]
    if definition.get("networkMode") == "awsvpc" and m.get("hostPort") not in (None, port):
        return Result(
            FAILED,
            f"{label}: awsvpc needs hostPort == containerPort, but {port} maps to hostPort {m.get('hostPort')}",
            f'remove "hostPort" (or set it to {port}) in {fix_where}',
        )
    return Result(PASSED, f"{label}: container {ctx.spec.container} maps {port}/{m.get('protocol', 'tcp')}")


@check("ports.task-definition", "the service's task definition maps service.port")
def taskdef_port(ctx: DoctorContext) -> Result:
    """The revision the service runs maps the container port the pipeline expects."""
    ctx.require_service()
    cur = ctx.current_taskdef()
    if cur is None:
        raise Skip("the service names no task definition")
    label = f"revision {cur.get('family')}:{cur.get('revision')}"
    where = (
        f"{ctx.rel(ctx.spec.task_definition)} and run `snail run` to register a fixed revision"
        if ctx.spec.task_definition
        else f"the task definition family {cur.get('family')} (register a new revision)"
    )
    return _mapping_result(ctx, cur, label, where)


@check("ports.template", "the task-definition template maps service.port")
def template_port(ctx: DoctorContext) -> Result:
    """The template every phase's revision is built from maps service.port."""
    tpl = ctx.template()
    if tpl is None:
        raise Skip("pipeline.yaml names no service.task_definition template (revisions start from the service's)")
    where = ctx.rel(ctx.spec.task_definition)
    return _mapping_result(ctx, tpl, f"template {where}", where)


def http_gates(ctx: DoctorContext) -> list[tuple[str, Any]]:
    """Every http gate (defaults and phases) once, with the phase that uses it."""
    seen: set[tuple[str, str]] = set()
    out = []
    groups = [("defaults", ctx.pipeline.defaults_gates)] + [(p.name, p.gates) for p in ctx.pipeline.phases]
    for owner, gates in groups:
        for g in gates:
            key = (g.source or owner, g.label)
            if g.type != "http" or key in seen:
                continue
            seen.add(key)
            out.append((owner, g))
    return out


@check("ports.gates", "every http gate probes service.port")
def gate_ports(ctx: DoctorContext) -> Result:
    """A gate probing another port than the service's can never pass (or passes on the wrong thing)."""
    port = ctx.spec.port
    gates = http_gates(ctx)
    if not gates:
        raise Skip("the pipeline has no http gates")
    bad, ok = [], []
    for owner, g in gates:
        gp = g.port
        where = g.source or owner
        if gp is not None and int(gp) != port:
            bad.append((where, g, int(gp)))
        else:
            ok.append(f"{g.label} ({where}): port {gp if gp is not None else f'{port} (service.port)'}")
    if bad:
        lines = [f"{g.label} ({where}) probes port {gp}, service.port is {port}" for where, g, gp in bad]
        fixes = [
            f"{where}: change `port: {gp}` to `port: {port}` (or drop it: gates default to service.port)"
            for where, g, gp in bad
        ]
        return Result(
            FAILED,
            "\n".join([f"{len(bad)} http gate(s) probe a port the service does not use"] + lines),
            "; ".join(fixes),
        )
    return Result(PASSED, f"{len(ok)} http gate(s) probe {port}\n" + "\n".join(ok))


@check("ports.load-balancer", "the target group's port and health check match service.port")
def lb_ports(ctx: DoctorContext) -> Result:
    """The target group, its health check and the service's loadBalancers entry all point at service.port."""
    lb = ctx.spec.load_balancer
    if lb is None:
        raise Skip("pipeline.yaml configures no load balancer")
    port = ctx.spec.port
    tg = ctx.target_group()
    assert tg is not None
    name = tg.get("TargetGroupName", lb.target_group_arn)
    hc_port = str(tg.get("HealthCheckPort", "traffic-port"))
    hc_path = tg.get("HealthCheckPath", "/")
    facts = [
        f"target group {name}: port {tg.get('Port')}, target type {tg.get('TargetType')}, "
        f"health check {tg.get('HealthCheckProtocol')} port {hc_port} path {hc_path}"
    ]
    problems, fixes = [], []
    if lb.container_port is not None and lb.container_port != port:
        problems.append(f"pipeline load_balancer.container_port is {lb.container_port}, service.port is {port}")
        fixes.append(f"set service.load_balancer.container_port: {port} in pipeline.yaml")
    svc = ctx.service()
    for entry in (svc or {}).get("loadBalancers", []):
        if entry.get("targetGroupArn") == lb.target_group_arn and entry.get("containerPort") not in (None, port):
            problems.append(
                f"service registers container port {entry.get('containerPort')} in {name}, service.port is {port}"
            )
            fixes.append(
                "snail run --create-service cannot change this: the service must be re-created with "
                f"containerPort {port} (ECS cannot update loadBalancers of a rolling-update service in place)"
            )
    if hc_port != "traffic-port" and hc_port != str(port):
        problems.append(f"health check probes port {hc_port}, service.port is {port}")
        fixes.append(
            f"aws elbv2 modify-target-group --target-group-arn {lb.target_group_arn} "
            f"--health-check-port traffic-port --region {ctx.spec.region}"
        )
    gate_paths = sorted({str(g.path) for _, g in http_gates(ctx) if g.path})
    if problems:
        return Result(FAILED, "\n".join([problems[0]] + problems[1:] + facts), "; ".join(fixes))
    if tg.get("Port") != port:
        return Result(
            WARNING,
            f"target group port {tg.get('Port')} differs from service.port {port} "
            "(ECS registers targets on the container port, so traffic still works; the mismatch confuses people)\n"
            + "\n".join(facts),
        )
    if gate_paths and hc_path not in gate_paths:
        facts.append(f"note: the health check path {hc_path} is not one the gates check ({', '.join(gate_paths)})")
    return Result(PASSED, f"the load balancer reaches service.port {port}\n" + "\n".join(facts))


CHECKS = (taskdef_port, template_port, gate_ports, lb_ports)


def checks(ctx: DoctorContext) -> list[Check]:
    """Port agreement checks."""
    return run_checks(ctx, CHECKS)
