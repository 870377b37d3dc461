"""The metrics gate: the new revision's target group judged on CloudWatch's ALB metrics (GetMetricData).

Read over `window` ending now: RequestCount, HTTPCode_Target_5XX_Count (sums) and TargetResponseTime (p99),
namespace AWS/ApplicationELB, dimensions TargetGroup + LoadBalancer, as an ALB publishes them. Fewer requests
than `min_requests` is no verdict (inconclusive, retried): no traffic proves nothing. With a baseline (blue's
group), green's 5xx ratio is compared with blue's over the same window."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from orchestrator.aws.cloudwatch import CloudWatchClient
from orchestrator.aws.elbv2 import Elbv2Client
from orchestrator.config.gates import MetricsGate
from orchestrator.gates.context import GateContext
from orchestrator.gates.verdict import FAILED, INCONCLUSIVE, PASSED, Verdict

NAMESPACE = "AWS/ApplicationELB"


def _dimensions(ctx: GateContext, group_arn: str) -> list[dict[str, str]]:
    """TargetGroup (+ LoadBalancer, when the group is behind one) dimensions of a target group."""
    assert ctx.aws is not None
    dims = [{"Name": "TargetGroup", "Value": group_arn.rsplit(":", 1)[-1]}]
    groups = Elbv2Client(ctx.aws).target_groups(TargetGroupArns=[group_arn])
    lbs = groups[0].load_balancer_arns if groups else ()
    if lbs:
        dims.append({"Name": "LoadBalancer", "Value": lbs[0].split(":loadbalancer/", 1)[-1]})
    return dims


def read(ctx: GateContext, spec: MetricsGate, group_arn: str) -> dict[str, Any]:
    """requests, 5xx, ratio and p99 (seconds, None without data) of one target group over the window."""
    assert ctx.aws is not None
    dims = _dimensions(ctx, group_arn)
    period = max(60, int(math.ceil(spec.window / 60)) * 60)
    end = ctx.clock.now()
    start = end - timedelta(seconds=spec.window)

    def query(qid: str, name: str, stat: str) -> dict[str, Any]:
        metric = {"Namespace": NAMESPACE, "MetricName": name, "Dimensions": dims}
        return {"Id": qid, "MetricStat": {"Metric": metric, "Period": period, "Stat": stat}, "ReturnData": True}

    queries = [
        query("requests", "RequestCount", "Sum"),
        query("errors", "HTTPCode_Target_5XX_Count", "Sum"),
        query("p99", "TargetResponseTime", "p99"),
    ]
    values = CloudWatchClient(ctx.aws).metric_data(queries, start, end + timedelta(seconds=1))
    requests = sum(values.get("requests", []))
    errors = sum(values.get("errors", []))
    p99 = max(values["p99"]) if values.get("p99") else None
    return {
        "target_group": group_arn.rsplit(":", 1)[-1],
        "requests": int(requests),
        "5xx": int(errors),
        "5xx_ratio": round(errors / requests, 4) if requests else None,
        "p99_seconds": p99,
        "window_seconds": spec.window,
    }


def evaluate(spec: MetricsGate, ctx: GateContext) -> Verdict:
    """Thresholds on green's numbers (and its margin over blue's); too few requests is inconclusive."""
    if not spec.target_group_arn:
        return Verdict(
            spec.label,
            FAILED,
            "no target group to read: set target_group_arn, or use a traffic strategy (it aims the gate at green)",
            terminal=True,
        )
    green = read(ctx, spec, spec.target_group_arn)
    evidence: dict[str, Any] = {"green": green}
    if green["requests"] < spec.min_requests:
        return Verdict(
            spec.label,
            INCONCLUSIVE,
            f"{green['requests']} request(s) in {spec.window:g}s, fewer than {spec.min_requests}: no verdict",
            evidence,
        )
    ratio = green["5xx_ratio"] or 0.0
    limit = spec.max_5xx_ratio
    if spec.baseline_target_group_arn:
        blue = read(ctx, spec, spec.baseline_target_group_arn)
        evidence["blue"] = blue
        limit = (blue["5xx_ratio"] or 0.0) + spec.max_5xx_ratio
    if ratio > limit:
        base = (
            f" (blue {evidence['blue']['5xx_ratio'] or 0:.2%} + {spec.max_5xx_ratio:.2%})" if "blue" in evidence else ""
        )
        return Verdict(
            spec.label,
            FAILED,
            f"5xx ratio {ratio:.2%} ({green['5xx']}/{green['requests']}) over {limit:.2%}{base}",
            evidence,
            definitive=True,
        )
    p99 = green["p99_seconds"]
    if spec.max_p99_latency is not None and p99 is not None and p99 > spec.max_p99_latency:
        return Verdict(
            spec.label,
            FAILED,
            f"p99 TargetResponseTime {p99 * 1000:.0f} ms over {spec.max_p99_latency * 1000:.0f} ms",
            evidence,
            definitive=True,
        )
    p99_text = f", p99 {p99 * 1000:.0f} ms" if p99 is not None else ""
    return Verdict(spec.label, PASSED, f"5xx {ratio:.2%} of {green['requests']} request(s){p99_text}", evidence)
