"""The target-health gate: every target of the load balancer's target group is healthy.

Which group: the one the gate names (`target_group_arn`: an ARN, or a name resolved with DescribeTargetGroups),
or, when the gate names none (`from_service`: pipeline.yaml's service.load_balancer group filled in as the
fallback), the group the service's load balancer entry sends production traffic to *now*: after a blue-green
release production may be on the alternate group, and a fixed default would check the drained one. That takes one
DescribeServices, plus one DescribeRules when the entry alternates between two groups (the production listener
rule's weights say which carries production, as for the strategies themselves); the DescribeServices is saved when
the gate context carries the service as the judgment's ecs-rollout gate last saw it (`ctx.service_view`), as it
does after the ecs-rollout gate that every judgment starts with."""

from __future__ import annotations

from typing import Any

from orchestrator.aws.ecs import EcsClient, ServiceView
from orchestrator.aws.elbv2 import Elbv2Client
from orchestrator.config.gates import TargetHealthGate
from orchestrator.errors import NotFound
from orchestrator.gates.context import GateContext
from orchestrator.gates.verdict import FAILED, INCONCLUSIVE, PASSED, Verdict


def group_name(arn_or_name: str) -> str:
    """A target group's name: from its ARN (`…:targetgroup/<name>/<id>`), or the name itself."""
    if arn_or_name.startswith("arn:") and ":targetgroup/" in arn_or_name:
        return arn_or_name.split(":targetgroup/", 1)[1].split("/", 1)[0]
    return arn_or_name


def _entry(svc: ServiceView, configured: str | None, port: int) -> dict[str, Any] | None:
    """The service's load balancer entry for our container: the one holding the configured group (by ARN or name),
    else the one on our port, else the first."""
    entries = [lb for lb in svc.load_balancers if lb.get("targetGroupArn")]
    if configured:
        wanted = group_name(configured)
        for lb in entries:
            adv = lb.get("advancedConfiguration") or {}
            groups = [g for g in (lb["targetGroupArn"], adv.get("alternateTargetGroupArn")) if g]
            if configured in groups or wanted in (group_name(g) for g in groups):
                return lb
    on_port = [lb for lb in entries if lb.get("containerPort") == port]
    found = on_port or entries
    return found[0] if found else None


def production_group(ctx: GateContext, configured: str | None) -> tuple[str, str] | None:
    """(ARN, how it was found) of the group the service's load balancer sends production to now, or None when the
    service has no load balancer entry (then the configured group is the answer)."""
    assert ctx.aws is not None
    # The service as this judgment's ecs-rollout gate last saw it (its load balancer entries do not change during a
    # judgment): no DescribeServices of our own then.
    svc = ctx.service_view
    if svc is None:
        svc = (ctx.ecs or EcsClient(ctx.aws)).service(ctx.cluster, ctx.service)
    lb = _entry(svc, configured, ctx.port) if svc is not None else None
    if lb is None:
        return None
    adv = lb.get("advancedConfiguration") or {}
    alternate, rule = adv.get("alternateTargetGroupArn"), adv.get("productionListenerRule")
    if not alternate or not rule:
        return lb["targetGroupArn"], "the service's load balancer entry"
    production = Elbv2Client(ctx.aws).rule(rule)
    groups = (lb["targetGroupArn"], alternate)
    best = max(groups, key=production.share)  # a tie (no forward to either yet) keeps the entry's own group
    return best, f"the production listener rule ({production.share(best):g}% to it)"


def target_group(spec: TargetHealthGate, ctx: GateContext) -> tuple[str, str]:
    """(ARN, how it was found) of the group this gate checks; NotFound for a name no group has."""
    assert ctx.aws is not None
    configured = spec.target_group_arn
    if spec.from_service:
        found = production_group(ctx, configured)
        if found is not None:
            return found
    if not configured:
        raise NotFound("elasticloadbalancing:DescribeTargetGroups", "TargetGroupNotFound", "no target group")
    if configured.startswith("arn:"):
        return configured, "the gate" if not spec.from_service else "service.load_balancer"
    return Elbv2Client(ctx.aws).target_group(configured).arn, f"the name {configured}"


def evaluate(spec: TargetHealthGate, ctx: GateContext) -> Verdict:
    """All registered targets healthy passes; unhealthy fails with ELB's reasons; none yet is inconclusive."""
    assert ctx.aws is not None
    if not spec.target_group_arn and not spec.from_service:
        return Verdict(
            spec.label, FAILED, "no target group: set target_group_arn or service.load_balancer", terminal=True
        )
    try:
        tg, how = target_group(spec, ctx)
    except NotFound as exc:
        return Verdict(
            spec.label,
            FAILED,
            f"target group {spec.target_group_arn} not found ({exc}): name an existing group in the gate or in "
            "service.load_balancer.target_group_arn",
            {"target_group": spec.target_group_arn},
            terminal=True,
        )
    targets = Elbv2Client(ctx.aws).target_health(tg)
    evidence: dict[str, Any] = {
        f"{t.id}:{'' if t.port is None else t.port}": {
            "state": t.state,
            "reason": t.reason or "",
            "description": t.description or "",
        }
        for t in targets
    }
    where = group_name(tg)
    context = {"target_group": tg, "chosen_by": how}
    if not targets:
        return Verdict(spec.label, INCONCLUSIVE, f"no targets registered in {where} yet", {**evidence, **context})
    bad = {k: v for k, v in evidence.items() if v["state"] not in ("healthy",)}
    evidence.update(context)
    if not bad:
        return Verdict(spec.label, PASSED, f"{len(targets)} target(s) healthy in {where}", evidence)
    unhealthy = {k: v for k, v in bad.items() if v["state"] == "unhealthy"}
    if unhealthy:
        k, v = next(iter(unhealthy.items()))
        why = f"{v['reason']} {v['description']}".strip()
        return Verdict(spec.label, FAILED, f"target {k} in {where} unhealthy: {why}", evidence)
    return Verdict(spec.label, INCONCLUSIVE, f"{len(bad)} target(s) in {where} not yet healthy", evidence)
