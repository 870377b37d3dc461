"""The ecs-rollout gate: success only when the PRIMARY deployment runs *our* revision, COMPLETED,
running == desired and older deployments drained. Anything else is never reported as success.

Failure is recognised from every signal ECS gives, within one poll: the circuit breaker's FAILED (or its
rollback to another revision), `max_failed_tasks` of our deployment's tasks failed (ECS's own breaker needs 3;
with the breaker off ECS would go on forever), a service event saying tasks cannot start or be placed, and a
task of ours that stopped because its image cannot be pulled."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from orchestrator.aws.ecs import ServiceView, short_name
from orchestrator.config.gates import EcsRolloutGate
from orchestrator.errors import AwsError
from orchestrator.gates.context import GateContext
from orchestrator.gates.retry import poll_until
from orchestrator.gates.verdict import FAILED, INCONCLUSIVE, PASSED, SUPERSEDED, Action, Verdict, Where, action

# Service events that mean our tasks will not come up by waiting (ECS's own wording).
FAILING_EVENTS = ("unable to consistently start tasks", "unable to place a task")
# Stop reasons no retry cures.
FATAL_STOPS = ("CannotPullContainerError",)


def _state(svc: ServiceView) -> dict[str, Any]:
    return {
        "deployments": [
            {
                "id": d.id,
                "status": d.status,
                "revision": short_name(d.task_definition),
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


def judge(
    svc: ServiceView | None,
    revision_arn: str,
    label: str = "ecs-rollout",
    *,
    since: datetime | None = None,
    max_failed_tasks: int | None = None,
    completed: bool = False,
) -> Verdict:
    """One look at the service: passed, failed (terminal), inconclusive (still rolling), or superseded (another
    actor's deployment replaced ours, or scaled the service to 0). `completed`: our rollout completed and passed
    (the bake), so a deployment of ours that is gone was not taken back by ECS's circuit breaker."""
    if svc is None:
        return Verdict(label, FAILED, "the service no longer exists", terminal=True)
    ours = short_name(revision_arn)
    primary = svc.primary
    state = _state(svc)
    if primary is None:
        return Verdict(label, INCONCLUSIVE, "the service has no PRIMARY deployment yet", state)
    mine = [d for d in svc.deployments if d.task_definition == revision_arn]
    if primary.task_definition != revision_arn:
        failed_mine = next((d for d in mine if d.has_failed), None)
        if failed_mine is not None:
            why = failed_mine.rollout_reason or "deployment FAILED"
            return Verdict(
                label,
                FAILED,
                f"ECS rolled {ours} back to {short_name(primary.task_definition)}: {why}",
                state,
                terminal=True,
            )
        # The service itself points at the other revision: someone's UpdateService (plain moto keeps ours there and
        # never moves the PRIMARY). Ours still listed and not failed, or gone after it had completed (ECS's breaker
        # only acts on a rollout in progress) with no ECS event saying it failed or rolled back: another actor's.
        outside = svc.task_definition != revision_arn
        if outside and (mine or (completed and _rollback_event(svc, since or primary.created_at) is None)):
            return superseded(svc, ours, state, label)
        if mine:
            return Verdict(
                label,
                FAILED,
                f"our deployment of {ours} is no longer PRIMARY: {short_name(primary.task_definition)} replaced it",
                state,
                terminal=True,
            )
        return Verdict(
            label,
            FAILED,
            f"the PRIMARY deployment runs {short_name(primary.task_definition)}, not our revision {ours}: another "
            "deployment replaced ours, or this endpoint does not emulate ECS deployments (plain moto never moves one)",
            state,
            terminal=True,
        )
    if svc.desired == 0:  # refused before the update (Engine._phase): whoever scaled it to 0 did so since
        return Verdict(
            label,
            SUPERSEDED,
            f"superseded by another actor: the service was scaled to 0 (desiredCount 0) while {ours} was judged; "
            "no task of ours runs, so nothing can answer the gates",
            {**state, "superseded_by": {"desired_count": 0}, "live": svc.task_definition},
            terminal=True,
        )
    if primary.has_failed:
        return Verdict(label, FAILED, f"deployment {primary.id} FAILED: {primary.rollout_reason}", state, terminal=True)
    if max_failed_tasks is not None and primary.failed >= max_failed_tasks and not primary.is_complete:
        return Verdict(
            label,
            FAILED,
            f"{primary.failed} tasks of {ours} failed to start (threshold "
            f"{max_failed_tasks}): ECS keeps replacing them, waiting cannot help",
            state,
            terminal=True,
        )
    event = _failing_event(svc, since or primary.created_at)
    if event and not primary.is_complete:
        return Verdict(label, FAILED, f"ECS: {event}", state, terminal=True)
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


def superseded(svc: ServiceView, ours: str, state: dict[str, Any], label: str = "ecs-rollout") -> Verdict:
    """Another actor's deployment replaced ours: what replaced it (revision, deployment id: its tasks' startedBy)
    and what is live."""
    primary = svc.primary
    assert primary is not None
    by = short_name(primary.task_definition)
    return Verdict(
        label,
        SUPERSEDED,
        f"superseded by another actor: deployment {primary.id} of {by} (its tasks' startedBy) replaced ours of "
        f"{ours}; live: {short_name(svc.task_definition)}, {primary.running}/{primary.desired} running, "
        f"rollout {primary.rollout_state or 'unknown'}",
        {
            **state,
            "superseded_by": {"deployment": primary.id, "revision": primary.task_definition, "started_by": primary.id},
            "live": svc.task_definition,
        },
        terminal=True,
    )


# ECS's own words when it failed a deployment or rolled it back (circuit breaker, deployment alarms).
ROLLBACK_EVENTS = ("deployment failed", "rolling back to deployment")


def _rollback_event(svc: ServiceView, since: datetime | None) -> str | None:
    """The newest service event since our deployment began that says ECS failed a deployment or rolled one back."""
    return _event_like(svc, since, ROLLBACK_EVENTS)


def _failing_event(svc: ServiceView, since: datetime | None) -> str | None:
    """The newest service event since our deployment began that says tasks cannot start or be placed."""
    return _event_like(svc, since, FAILING_EVENTS)


def _event_like(svc: ServiceView, since: datetime | None, words: tuple[str, ...]) -> str | None:
    for e in svc.events:
        at = e.get("createdAt")
        if since is not None and isinstance(at, datetime) and _aware(at) < _aware(since):
            continue
        msg = str(e.get("message", ""))
        if any(s in msg for s in words):
            return msg
    return None


def _aware(t: datetime) -> datetime:
    from datetime import timezone

    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def stopped_reasons(ctx: GateContext, limit: int = 5) -> list[dict[str, Any]]:
    """Why our revision's tasks stopped: stoppedReason and container exit codes (never the old tasks')."""
    assert ctx.ecs is not None
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


EARLY = "early"  # the evidence key: a gate judged on our new tasks failed while the rollout was in progress


def early_end(early: Verdict, v: Verdict, label: str) -> Verdict:
    """The rollout's wait ended by a gate judged early on our new tasks: superseded as it says, else failed."""
    if early.superseded:
        return Verdict(label, SUPERSEDED, early.summary, early.evidence, terminal=True)
    return Verdict(
        label,
        FAILED,
        f"stopped waiting, the rollout still in progress: {early.gate} {early.status} on our new task(s)",
        {**v.evidence, EARLY: {"gate": early.gate, "status": early.status}},
        terminal=True,
    )


COMPLETED_AT = "completed_at"  # the evidence key: when the rollout completed (see completed_between)


def completed_between(stamped: datetime | None, after: datetime, seen: datetime) -> datetime:
    """When the rollout completed: ECS's own stamp on the deployment, kept within what our polls prove (after the
    last poll that saw it unfinished, no later than the poll that saw it done), so a skewed clock cannot move it
    outside that window."""
    if stamped is None:
        return seen
    return min(max(_aware(stamped), _aware(after)), _aware(seen))


def completed_at(v: Verdict) -> datetime | None:
    """When a passed ecs-rollout verdict says the rollout completed (None for any other verdict)."""
    raw = v.evidence.get(COMPLETED_AT) if v.passed else None
    return datetime.fromisoformat(raw) if isinstance(raw, str) else None


def watch(ctx: GateContext, label: str = "ecs-rollout", completed: bool = False) -> Verdict | None:
    """One look while another gate waits: the terminal verdict when ECS failed our deployment or another actor's
    replaced it (`completed`: ours had completed, as in the bake)."""
    assert ctx.ecs is not None
    try:
        svc = ctx.ecs.service(ctx.cluster, ctx.service)
    except AwsError as exc:
        if exc.transient:  # throttled: this look tells nothing; the gate's own attempts go on
            return None
        raise
    v = judge(svc, ctx.revision_arn, label, since=ctx.deployed_at, completed=completed)
    return v if action(Where.ROLLOUT_LOOK, v) in (Action.ROLLBACK, Action.STOP) else None


def evaluate(spec: EcsRolloutGate, ctx: GateContext) -> Verdict:
    """Poll the service at a steady `poll` interval until our deployment completes, fails, is replaced, or times
    out; the first poll that shows a failure signal ends the wait."""
    assert ctx.ecs is not None
    ecs = ctx.ecs
    timeout = spec.timeout or EcsRolloutGate.timeout or 600.0
    label = spec.label
    polls = {"n": 0, "failed_seen": 0}
    seen: dict[str, list[dict[str, Any]]] = {}  # the stopped tasks last fetched (reused as evidence)
    still_rolling: list[datetime] = []  # when a poll last saw the rollout unfinished (our clock)

    def look() -> Verdict:
        polls["n"] += 1
        looked = ctx.clock.now()
        try:
            svc = ecs.service(ctx.cluster, ctx.service)
        except AwsError as exc:
            if not exc.transient:
                raise
            # throttling or a 5xx is ridden out inside the gate's own timeout: this poll saw nothing
            return Verdict(label, INCONCLUSIVE, f"ECS did not answer ({exc.code}); polling on", {"error": exc.code})
        ctx.found.service_view = svc
        v = judge(svc, ctx.revision_arn, label, since=ctx.deployed_at, max_failed_tasks=spec.max_failed_tasks)
        if v.status == PASSED and svc is not None and svc.primary is not None:
            lower = still_rolling[-1] if still_rolling else (ctx.deployed_at or looked)
            done = completed_between(svc.primary.updated_at, lower, looked)
            judged = ctx.early.completed(ctx, svc) if ctx.early is not None else ""
            return Verdict(v.gate, v.status, v.summary + judged, {**v.evidence, COMPLETED_AT: done.isoformat()})
        if v.status == INCONCLUSIVE:
            still_rolling[:] = [looked]
        failed = svc.primary.failed if svc is not None and svc.primary is not None else 0
        described = False
        if v.status == INCONCLUSIVE and failed > polls["failed_seen"]:
            # a task of ours just failed: one look at why, for the errors no waiting cures
            polls["failed_seen"] = failed
            seen["stopped"] = stopped_reasons(ctx)
            described = True
            fatal = next((r for r in seen["stopped"] if any(f in r["stopped_reason"] for f in FATAL_STOPS)), None)
            if fatal is not None:
                return Verdict(
                    label,
                    FAILED,
                    f"task {fatal['task']} of {short_name(ctx.revision_arn)} stopped: {fatal['stopped_reason']}",
                    v.evidence,
                    terminal=True,
                )
        if v.status == INCONCLUSIVE and ctx.early is not None and svc is not None and not described:
            # our new tasks judged while the old ones still serve (one DescribeTasks per poll at most: not on a
            # poll that already described the stopped ones)
            early = ctx.early.look(ctx, svc)
            if early is not None:
                return early_end(early, v, label)
        return v

    def report(v: Verdict) -> None:
        ctx.progress(
            "gate_waiting", {"gate": label, "attempt": polls["n"], "waiting_for": v.summary, "next_in": spec.poll}
        )
        if ctx.checkpoint is not None:
            ctx.checkpoint()

    v = poll_until(
        look,
        lambda v: v.status != INCONCLUSIVE,
        ctx.clock,
        timeout=timeout,
        first_wait=spec.poll,
        max_wait=spec.poll,
        on_poll=report,
    )
    if v.status == INCONCLUSIVE:
        v = Verdict(label, FAILED, f"timed out after {timeout:.0f}s: {v.summary}", v.evidence)
    # ended by an early verdict: no task stopped, and the time until the rollback is the point
    if v.status == FAILED and "stopped_tasks" not in v.evidence and EARLY not in v.evidence:
        evidence = dict(v.evidence)
        try:
            evidence["stopped_tasks"] = seen["stopped"] if "stopped" in seen else stopped_reasons(ctx)
        except Exception as exc:  # evidence is best effort; the verdict stands without it
            evidence["stopped_tasks_error"] = str(exc)
        v = Verdict(v.gate, v.status, v.summary, evidence, v.terminal)
    return v.after(polls["n"])
