"""The target-health gate: every target of the load balancer's target group is healthy."""

from __future__ import annotations

from orchestrator.aws.errors import aws_call
from orchestrator.config.gates import TargetHealthGate
from orchestrator.gates.context import GateContext
from orchestrator.gates.verdict import FAILED, INCONCLUSIVE, PASSED, Verdict


def evaluate(spec: TargetHealthGate, ctx: GateContext) -> Verdict:
    """All registered targets healthy passes; unhealthy fails with ELB's reasons; none yet is inconclusive."""
    tg = spec.target_group_arn
    assert ctx.aws is not None
    if not tg:
        return Verdict(
            spec.label, FAILED, "no target group: set target_group_arn or service.load_balancer", terminal=True
        )
    with aws_call("elasticloadbalancing:DescribeTargetHealth"):
        out = ctx.aws.client("elbv2").describe_target_health(TargetGroupArn=tg)
    targets = out.get("TargetHealthDescriptions", [])
    evidence = {
        f"{t['Target']['Id']}:{t['Target'].get('Port', '')}": {
            "state": t["TargetHealth"]["State"],
            "reason": t["TargetHealth"].get("Reason", ""),
            "description": t["TargetHealth"].get("Description", ""),
        }
        for t in targets
    }
    if not targets:
        return Verdict(spec.label, INCONCLUSIVE, "no targets registered yet", evidence)
    bad = {k: v for k, v in evidence.items() if v["state"] not in ("healthy",)}
    if not bad:
        return Verdict(spec.label, PASSED, f"{len(targets)} target(s) healthy", evidence)
    unhealthy = {k: v for k, v in bad.items() if v["state"] == "unhealthy"}
    if unhealthy:
        k, v = next(iter(unhealthy.items()))
        return Verdict(spec.label, FAILED, f"target {k} unhealthy: {v['reason']} {v['description']}".strip(), evidence)
    return Verdict(spec.label, INCONCLUSIVE, f"{len(bad)} target(s) not yet healthy", evidence)
