"""The ecs-rollout gate: success only when the PRIMARY deployment runs *our* revision, COMPLETED,
running == desired and older deployments drained. Anything else is never reported as success."""

from __future__ import annotations

from typing import Any

from orchestrator.aws.ecs import ServiceView
from orchestrator.config.model import GateSpec
from orchestrator.gates.context import GateContext
from orchestrator.gates.retry import poll_until
from orchestrator.gates.verdict import FAILED, INCONCLUSIVE, PASSED, Verdict

DEFAULT_TIMEOUT = 600.0


def _short(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def judge(svc: ServiceView | None, revision_arn: str, label: str = "ecs-rollout") -> Verdict:
    """One look at the service: passed, failed (terminal) or inconclusive (still rolling)."""
    if svc is None:
        return Verdict(label, FAILED, "the service no longer exists", terminal=True)
    ours = _short(revision_arn)
    primary = svc.primary
    state = {
        "deployments": [
            {
                "id": d.id,
                "status": d.status,
                "revision": _short(d.task_definition),
                "rollout": d.rollout_state,
                "reason": d.rollout_reason,
                "running": d.running,
                "desired": d.desired,
                "pending": d.pending,
                "failed": d.failed,
            }
            for d in svc.deployments
        ],
        "events": [e.get("message", "") for e in svc.events[:8]],
    }
    if primary is None:
        return Verdict(label, INCONCLUSIVE, "the service has no PRIMARY deployment yet", state)
    mine = [d for d in svc.deployments if d.task_definition == revision_arn]
    if primary.task_definition != revision_arn:
        failed_mine = next((d for d in mine if d.has_failed), None)
        if failed_mine is not None:
            return Verdict(
                label,
                FAILED,
                f"ECS rolled {ours} back to {_short(primary.task_definition)}: {failed_mine.rollout_reason or 'deployment FAILED'}",
                state,
                terminal=True,
            )
        if mine:
            return Verdict(
                label,
                FAILED,
                f"our deployment of {ours} is no longer PRIMARY: {_short(primary.task_definition)} replaced it",
                state,
                terminal=True,
            )
        return Verdict(
            label,
            FAILED,
            f"the PRIMARY deployment runs {_short(primary.task_definition)}, not our revision {ours}: another "
            "deployment replaced ours, or this endpoint does not emulate ECS deployments (plain moto never moves one)",
            state,
            terminal=True,
        )
    if primary.has_failed:
        return Verdict(label, FAILED, f"deployment {primary.id} FAILED: {primary.rollout_reason}", state, terminal=True)
    # ECS removes an old deployment from the list once its tasks are drained; until then we are not done.
    draining = list(svc.others)
    if primary.is_complete and not draining:
        return Verdict(
            label,
            PASSED,
            f"{ours} COMPLETED: {primary.running}/{primary.desired} running, old deployments drained",
            state,
        )
    waiting = (
        f"{primary.running}/{primary.desired} running, {primary.pending} pending, {primary.failed} failed"
        + (f", {len(draining)} old deployment(s) draining" if draining else "")
        + f", rollout {primary.rollout_state or 'unknown'}"
    )
    return Verdict(label, INCONCLUSIVE, waiting, state)


def stopped_reasons(ctx: GateContext, limit: int = 5) -> list[dict[str, Any]]:
    """Why our revision's tasks stopped: stoppedReason and container exit codes."""
    out = []
    for t in ctx.ecs.tasks(ctx.cluster, ctx.service, desired_status="STOPPED"):
        if t.task_definition != ctx.revision_arn:
            continue
        out.append(
            {
                "task": t.short_id,
                "stopped_reason": t.stopped_reason,
                "containers": [
                    {"name": c.get("name"), "exit_code": c.get("exitCode"), "reason": c.get("reason")}
                    for c in t.containers
                ],
            }
        )
        if len(out) >= limit:
            break
    return out


def evaluate(spec: GateSpec, ctx: GateContext) -> Verdict:
    """Poll the service with backoff until our deployment completes, fails, is replaced, or times out."""
    timeout = spec.timeout or DEFAULT_TIMEOUT
    label = spec.label
    first = float(spec.params.get("poll") or 2.0)
    polls = {"n": 0}

    def look() -> Verdict:
        polls["n"] += 1
        return judge(ctx.ecs.service(ctx.cluster, ctx.service), ctx.revision_arn, label)

    def report(v: Verdict) -> None:
        ctx.progress("gate_waiting", {"gate": label, "attempt": polls["n"], "waiting_for": v.summary})

    v = poll_until(
        look, lambda v: v.status != INCONCLUSIVE, ctx.clock, timeout=timeout, first_wait=first, on_poll=report
    )
    if v.status == INCONCLUSIVE:
        v = Verdict(label, FAILED, f"timed out after {timeout:.0f}s: {v.summary}", v.evidence, attempts=polls["n"])
    if v.status == FAILED:
        evidence = dict(v.evidence)
        try:
            evidence["stopped_tasks"] = stopped_reasons(ctx)
        except Exception as exc:  # evidence is best effort; the verdict stands without it
            evidence["stopped_tasks_error"] = str(exc)
        v = Verdict(v.gate, v.status, v.summary, evidence, v.terminal, polls["n"])
    return Verdict(v.gate, v.status, v.summary, v.evidence, v.terminal, polls["n"])
