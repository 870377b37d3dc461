"""snail sandbox up|down|status: ECS in a box on 127.0.0.1, seeded for pipeline.yaml."""

from __future__ import annotations

from typing import Any

import click

from orchestrator.cli.app import App, forget_sandbox_state, pass_app
from orchestrator.cli.sandboxing import LOG_PROCESSOR, ecsbox, spec_for, translated
from orchestrator.errors import ExitCode


def _fleet_option(f: Any) -> Any:
    return click.option(
        "--fleet",
        is_flag=False,
        flag_value="",
        default=None,
        metavar="[FILE]",
        help="the sandbox of a fleet: every target's cluster and service (FILE, or the nearest fleet.yaml)",
    )(f)


def _where(app: App, fleet: str | None) -> tuple[Any, list[Any]]:
    """The sandbox's folder and the pipelines whose sandbox state goes with it: pipeline.yaml's, or the fleet's."""
    if fleet is None:
        return app.pipeline.state_dir(), [app.pipeline]
    from orchestrator.cli import fleet_sandbox
    from orchestrator.fleet.loader import load_fleet, validate_fleet

    f = load_fleet(fleet_sandbox.fleet_file(fleet))
    return fleet_sandbox.sandbox_dir(f), list(validate_fleet(f).values())


def _up_fleet(app: App, fleet: str, port: int | None) -> int:
    """Every target of fleet.yaml seeded in one sandbox: its clusters, services and repositories, in every region."""
    from orchestrator.cli import fleet_sandbox
    from orchestrator.fleet.loader import load_fleet, validate_fleet

    f = load_fleet(fleet_sandbox.fleet_file(fleet))
    pipelines = validate_fleet(f)
    info = fleet_sandbox.seed(app, f, pipelines, port=port)
    lines = [f"sandbox up: pid {info.pid}, endpoint {info.endpoint_url}, {len(f.targets)} targets seeded"]
    for t in f.targets:
        s = pipelines[t.name].service
        lines.append(f"  {t.name:<14} {s.region}/{s.cluster}/{s.name}")
    lines.append(f"  pushes to      {info.registry_description()}")
    lines.append("use it: snail --sandbox fleet run   (or SNAIL_SANDBOX=1)")
    app.emit({**info.to_json(), "targets": [t.name for t in f.targets]}, "\n".join(lines))
    return ExitCode.OK


@click.group("sandbox")
def group() -> None:
    """ECS in a box: moto, a local registry and real containers, no AWS account needed."""


@group.command("up")
@click.option(
    "--port",
    type=int,
    envvar="SNAIL_SANDBOX_PORT",
    help="moto's port on 127.0.0.1 (default 4577, else a free one) [SNAIL_SANDBOX_PORT]",
)
@click.option("--no-service", is_flag=True, help="seed everything but the ECS service (reproduces 'service MISSING')")
@_fleet_option
@pass_app
def up(app: App, port: int | None, no_service: bool, fleet: str | None) -> int:
    """Start the sandbox if it is not running and seed what pipeline.yaml needs (every target, with --fleet)."""
    if fleet is not None:
        return _up_fleet(app, fleet, port)
    box = ecsbox()
    spec = spec_for(app.pipeline, create_service=not no_service)
    with translated():
        before = box.status(app.pipeline.state_dir())
        if before is None or not before.healthy:
            forget_sandbox_state(app.pipeline)  # a new world: revisions recorded for the old one mean nothing here
        with app.saying_sandbox_start(spec):
            info = box.up(spec, app.pipeline.state_dir(), port=port, log_processor=LOG_PROCESSOR)
    seeded = info.seeded
    lines = [
        f"sandbox up: pid {info.pid}, endpoint {info.endpoint_url}, region {info.region}",
        f"  pushes to      {info.registry_description()}",
        f"  cluster        {seeded.get('cluster_arn')}",
        f"  service        {seeded.get('service_arn') or 'not created (--no-service)'}",
        f"  task def       {seeded.get('task_definition_arn')}",
        f"  vpc            {seeded.get('vpc_id')} subnets {', '.join(seeded.get('subnet_ids', []))}",
        f"  igw / routes   {seeded.get('internet_gateway_id')} / {seeded.get('route_table_id')}",
        f"  security group {seeded.get('security_group_id')} (tcp {spec.port} open)",
        f"  repository     {seeded.get('repository_uri')} (pushes go to {info.registry})",
        f"  log group      {seeded.get('log_group')}",
        f"  execution role {seeded.get('execution_role_arn')}",
        *(
            [f"  production     {seeded['production_url']}   test {seeded.get('test_url') or '(no test listener)'}"]
            if seeded.get("production_url")
            else []
        ),
        "use it: snail --sandbox run   (or SNAIL_SANDBOX=1)",
    ]
    app.emit(info.to_json(), "\n".join(lines))
    return ExitCode.OK


@group.command("down")
@click.option(
    "--all", "all_containers", is_flag=True, help="also remove containers of other sandboxes (label snail-sandbox=1)"
)
@_fleet_option
@pass_app
def down(app: App, all_containers: bool, fleet: str | None) -> int:
    """Stop the sandbox and remove every container it started."""
    where, pipelines = _where(app, fleet)
    with translated():
        result = ecsbox().down(where, all_containers=all_containers)
    result["state_forgotten"] = any([forget_sandbox_state(p) for p in pipelines])
    text = (
        f"sandbox down: daemon {result['daemon'] or 'was not recorded'}, "
        f"{result['containers_removed']} leftover container(s) removed"
        + (", registry stopped" if result["registry_stopped"] else "")
        + (", sandbox state store removed" if result["state_forgotten"] else "")
    )
    app.emit(result, text)
    return ExitCode.OK


@group.command("status")
@_fleet_option
@pass_app
def status(app: App, fleet: str | None) -> int:
    """Whether the sandbox runs and answers, and its services, deployments and tasks."""
    where, _ = _where(app, fleet)
    with translated():
        info = ecsbox().status(where, with_services=True)
    if info is None:
        app.emit({"running": False}, "sandbox: not running (start it with `snail sandbox up`)")
        return ExitCode.OK
    data: dict[str, Any] = {
        **info.to_json(),
        "alive": info.alive,
        "answering": info.answering,
        "services": info.services,
    }
    if not info.healthy:
        why = "process is gone" if not info.alive else "endpoint does not answer"
        app.emit(data, f"sandbox: DEAD (pid {info.pid}: {why}); `snail sandbox up` cleans up and restarts it")
        return ExitCode.OK
    lines = [f"sandbox: up since {info.started_at}, pid {info.pid}, {info.endpoint_url}, registry {info.registry}"]
    if info.seeded.get("production_url"):
        lines.append(f"  load balancer: production {info.seeded['production_url']}, test {info.seeded.get('test_url')}")
    for svc in info.services:
        lines.append(
            f"  {svc['cluster']}/{svc['service']}: {svc['running']}/{svc['desired']} running, "
            f"{(svc['task_definition'] or '-').rsplit('/', 1)[-1]}"
        )
        for d in svc["deployments"]:
            lines.append(
                f"    {d['status']:<7} {d['id']} {d['rolloutState']} {(d['taskDefinition'] or '').rsplit('/', 1)[-1]} "
                f"running {d['runningCount']} failed {d['failedTasks']}"
            )
        sd = svc.get("service_deployment")
        if sd and sd["status"] not in ("SUCCESSFUL",):
            lines.append(
                f"    service deployment {sd['id']} {sd['strategy']} {sd['status']}"
                + (f" at {sd['stage']}" if sd["stage"] else "")
                + (
                    f", new revision on {sd['production_percent']:g}% production / {sd['test_percent']:g}% test"
                    if sd["production_percent"] is not None and sd["test_percent"] is not None
                    else ""
                )
                + (f", waiting: {' '.join(sd['awaiting_hooks'])}" if sd["awaiting_hooks"] else "")
            )
        for t in svc["tasks"]:
            lines.append(
                f"    task {t['id'][:12]} {t['last_status']} {t['task_definition']} {' '.join(t['endpoints'])}"
            )
    app.emit(data, "\n".join(lines))
    return ExitCode.OK
