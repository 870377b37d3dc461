"""Where to send health checks: a fixed URL, the load balancer, or each task of our revision.

Task endpoints come from networkBindings (EC2 bridge mode, and the sandbox's 127.0.0.1 ports) or the awsvpc
ENI (public address when there is one). Either way an endpoint is only a place to ask: health comes from the
answer, never from the binding itself (the field log's empty networkBindings on a healthy task)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchestrator.gates.context import GateContext

if TYPE_CHECKING:
    from orchestrator.aws.ecs import TaskView


def task_endpoints(ctx: GateContext, port: int) -> list[str]:
    """Base URLs of our revision's RUNNING tasks."""
    tasks = our_running_tasks(ctx)
    ctx.found.task_arns = tuple(t.arn for t in tasks)
    return [u for urls in endpoints_by_task(ctx, tasks, port).values() for u in urls]


def our_running_tasks(ctx: GateContext) -> list[TaskView]:
    """Our revision's RUNNING tasks (one ListTasks and one DescribeTasks)."""
    assert ctx.ecs is not None
    return [
        t
        for t in ctx.ecs.tasks(ctx.cluster, ctx.service, desired_status="RUNNING")
        if t.task_definition == ctx.revision_arn and t.last_status == "RUNNING"
    ]


def endpoints_by_task(ctx: GateContext, tasks: list[TaskView], port: int) -> dict[str, list[str]]:
    """Each task's base URLs on `port`, by task ARN (a task with none is left out)."""
    out: dict[str, list[str]] = {}
    enis: dict[str, tuple[str, str]] = {}
    for t in tasks:
        for c in t.containers:
            for b in c.get("networkBindings") or []:
                if int(b.get("containerPort", -1)) == port and b.get("hostPort"):
                    host = b.get("bindIP") or "127.0.0.1"
                    host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
                    out.setdefault(t.arn, []).append(f"http://{host}:{b['hostPort']}")
        eni = t.eni_id()
        if t.arn not in out and eni:
            enis[eni] = (t.arn, t.private_ip() or "")
    if enis and ctx.aws is not None:
        public = _public_ips(ctx, list(enis))
        for eni, (arn, private) in enis.items():
            ip = public.get(eni) or private
            if ip:
                out.setdefault(arn, []).append(f"http://{ip}:{port}")
    return out


def _public_ips(ctx: GateContext, eni_ids: list[str]) -> dict[str, str]:
    from orchestrator.aws.ec2 import Ec2Client

    assert ctx.aws is not None
    return Ec2Client(ctx.aws).public_ips(eni_ids)


def resolve(ctx: GateContext, url: str | None, port: int | None) -> list[str]:
    """Base URLs to check: the gate's URL, else the configured endpoint, else every new task."""
    if url:
        return [url]
    if ctx.endpoint:
        return [ctx.endpoint.rstrip("/")]
    port = port or ctx.port
    if port not in ctx.endpoints:
        found = task_endpoints(ctx, port)
        if not found:
            return found
        ctx.found.endpoints[port] = found
    return ctx.endpoints[port]
