"""snail sandbox up|down|status: ECS in a box on 127.0.0.1, seeded for pipeline.yaml."""

from __future__ import annotations

from typing import Any

import click

from orchestrator.cli.app import App, forget_sandbox_state, pass_app
from orchestrator.cli.sandboxing import LOG_PROCESSOR, ecsbox, spec_for, translated
from orchestrator.errors import ExitCode


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
@pass_app
def up(app: App, port: int | None, no_service: bool) -> int:
    """Start the sandbox if it is not running and seed what pipeline.yaml needs."""
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
@pass_app
def down(app: App, all_containers: bool) -> int:
    """Stop the sandbox and remove every container it started."""
    with translated():
        result = ecsbox().down(app.pipeline.state_dir(), all_containers=all_containers)
    result["state_forgotten"] = forget_sandbox_state(app.pipeline)
    text = (
        f"sandbox down: daemon {result['daemon'] or 'was not recorded'}, "
        f"{result['containers_removed']} leftover container(s) removed"
        + (", registry stopped" if result["registry_stopped"] else "")
        + (", sandbox state store removed" if result["state_forgotten"] else "")
    )
    app.emit(result, text)
    return ExitCode.OK


@group.command("status")
@pass_app
def status(app: App) -> int:
    """Whether the sandbox runs and answers, and its services, deployments and tasks."""
    with translated():
        info = ecsbox().status(app.pipeline.state_dir(), with_services=True)
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
