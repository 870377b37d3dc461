"""Where to send health checks: a fixed URL, the load balancer, or each task of our revision.

Task endpoints come from networkBindings (EC2 bridge mode, and the sandbox's 127.0.0.1 ports) or the awsvpc
ENI (public address when there is one). Either way an endpoint is only a place to ask: health comes from the
answer, never from the binding itself (the field log's empty networkBindings on a healthy task)."""

from __future__ import annotations

from orchestrator.gates.context import GateContext


def task_endpoints(ctx: GateContext, port: int) -> list[str]:
    """Base URLs of our revision's RUNNING tasks."""
    assert ctx.ecs is not None
    tasks = [
        t
        for t in ctx.ecs.tasks(ctx.cluster, ctx.service, desired_status="RUNNING")
        if t.task_definition == ctx.revision_arn and t.last_status == "RUNNING"
    ]
    ctx.found.task_arns = tuple(t.arn for t in tasks)
    urls: list[str] = []
    enis: dict[str, str] = {}
    for t in tasks:
        bound = False
        for c in t.containers:
            for b in c.get("networkBindings") or []:
                if int(b.get("containerPort", -1)) == port and b.get("hostPort"):
                    host = b.get("bindIP") or "127.0.0.1"
                    host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
                    urls.append(f"http://{host}:{b['hostPort']}")
                    bound = True
        eni = t.eni_id()
        if not bound and eni:
            enis[eni] = t.private_ip() or ""
    if enis and ctx.aws is not None:
        public = _public_ips(ctx, list(enis))
        for eni, private in enis.items():
            ip = public.get(eni) or private
            if ip:
                urls.append(f"http://{ip}:{port}")
    return urls


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
