"""The bake: the revision holds all traffic for `bake` seconds while snail keeps judging it.

As argo-rollouts' background analysis does, the bake is not a sleep:
- the phase's http, target-health, command and alarm gates are judged again, each on its interval (its
  `retries.wait`, or every 5 s when it has none), with its own retry policy: the same judgment as before the bake.
  An http gate asks the tasks the gates found (no new task listing while they answer);
- the service and our tasks are looked at every 30 s and at the bake's end (DescribeServices + ListTasks): still our
  deployment, desired > 0, as many running as when the rollout completed, no task that answered the gates gone
  (a crash: ECS replaced it with a new task ARN), no failed tasks counted since;
- at the end the alarm gates once more, as before.
A failed look fails the phase ("failed during the bake": rollback, quarantine). A look that finds our deployment
replaced by someone else's (or the service scaled to 0) is superseded: the run stops judging and touches nothing.

`judge(gates, look, final)` is "judge these gates once" (engine/judging.py, `Judge.once`): the one judgment the
gates before the bake, the bake and a rollback's verification share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from orchestrator.aws.ecs import EcsClient, ServiceView, short_name
from orchestrator.config.gates import AlarmGate, GateSpec
from orchestrator.gates import early, ecs_rollout
from orchestrator.gates.context import GateContext
from orchestrator.gates.verdict import FAILED, PASSED, Action, Verdict, Where, action

REJUDGED = ("http", "target-health", "command", "alarm")
EVERY = 5.0  # how often a re-judged gate without `retries.wait` is judged again
MIN_EVERY = 1.0
SERVICE_EVERY = 30.0  # how often the service and our tasks are looked at (and at the end)
DURING = "bake"  # the evidence key `during` of a verdict reached in the bake


def silent(kind: str, data: dict[str, Any]) -> None:
    """A progress sink for the bake's looks: the display says "baking" once, not each look's attempts."""


def rejudged(gates: tuple[GateSpec, ...]) -> tuple[GateSpec, ...]:
    """The gates judged again during the bake, in the phase's order."""
    return tuple(g for g in gates if g.type in REJUDGED)


def interval(g: GateSpec) -> float:
    """How often a gate is judged again during the bake: its retries' wait, else EVERY."""
    wait = g.retries.wait
    return max(MIN_EVERY, wait) if wait > 0 else EVERY


def in_bake(v: Verdict) -> bool:
    """True when the verdict was reached during the bake."""
    return v.evidence.get("during") == DURING


def reason(v: Verdict) -> str:
    """A failed phase's reason, in one line: `gate http /health failed during the bake: …` (or `… failed early, on
    our new tasks while the rollout was in progress: …`)."""
    when = " during the bake" if in_bake(v) else ""
    if v.evidence.get("during") == early.DURING:
        when = " early, on our new tasks while the rollout was in progress"
    return f"gate {v.gate} {v.status}{when}: {v.summary}"


def during_bake(v: Verdict) -> Verdict:
    """The same verdict, marked as reached during the bake."""
    return Verdict(v.gate, v.status, v.summary, {**v.evidence, "during": DURING}, v.terminal, v.attempts, v.definitive)


@dataclass
class Baseline:
    """What the gates passed on: our deployment, its desired and failed counts, the tasks that answered."""

    deployment: str
    desired: int
    failed: int
    tasks: frozenset[str]  # empty: not known (no gate listed the tasks); the first look's listing is taken

    @classmethod
    def of(cls, svc: ServiceView | None, tasks: tuple[str, ...]) -> Baseline | None:
        """From the service as the ecs-rollout gate last saw it and the tasks the gates asked (None: not seen)."""
        primary = svc.primary if svc is not None else None
        if primary is None:
            return None
        return cls(primary.id, primary.desired, primary.failed, frozenset(tasks))


def judge_service(
    svc: ServiceView | None, arn: str, baseline: Baseline, listed: list[str], since: datetime | None
) -> Verdict:
    """One look at the service and our tasks during the bake: passed, failed (terminal) or superseded."""
    v = ecs_rollout.judge(svc, arn, "bake", since=since, completed=True)
    if action(Where.ROLLOUT_LOOK, v) in (Action.ROLLBACK, Action.STOP):
        return v
    assert svc is not None
    primary = svc.primary
    if primary is None:
        return Verdict("bake", FAILED, "the service has no PRIMARY deployment", v.evidence, terminal=True)
    if baseline.deployment and primary.id != baseline.deployment:
        # a new deployment of our own revision (someone's --force-new-deployment): their act, not our failure
        return ecs_rollout.superseded(svc, short_name(arn), v.evidence, "bake")
    problems: list[str] = []
    if primary.running < min(primary.desired, baseline.desired):
        problems.append(f"only {primary.running}/{primary.desired} of our tasks running")
    if primary.failed > baseline.failed:
        problems.append(f"{primary.failed - baseline.failed} task(s) of ours failed since the gates passed")
    now = set(listed)
    gone = sorted(baseline.tasks - now)
    new = sorted(now - baseline.tasks)
    scaled_in = primary.desired < baseline.desired and len(gone) <= baseline.desired - primary.desired and not new
    if gone and not scaled_in:
        replaced = f", replaced by {', '.join(short_name(t) for t in new)}" if new else ""
        problems.append(f"task(s) {', '.join(short_name(t) for t in gone)} that answered the gates stopped{replaced}")
    evidence = {**v.evidence, "gone": gone, "new": new}
    if problems:
        return Verdict("bake", FAILED, "; ".join(problems), evidence, terminal=True)
    which = "the tasks that answered the gates" if baseline.tasks else "tasks listed at the first look"
    return Verdict("bake", PASSED, f"still ours: {primary.running}/{primary.desired} running ({which})", evidence)


class Bake:
    """One phase's bake: sleep in slices (a lost lock is noticed), judge the gates on their interval, look at the
    service every SERVICE_EVERY seconds and at the end. `run()` returns the first failing (or superseded) verdict,
    or None; `summary` then says what was checked, and `service` the last look at the service."""

    def __init__(
        self,
        *,
        ctx: GateContext,
        gates: tuple[GateSpec, ...],
        judge: Callable[[tuple[GateSpec, ...], int, bool], Verdict | None],
        ecs: EcsClient,
        left: float,
        slice_: float,
        checkpoint: Callable[[], None],
        on_failed: Callable[[Verdict, int], None],
    ) -> None:
        self.ctx = ctx
        self.gates = rejudged(gates)
        self.judge = judge
        self.ecs = ecs
        self.left = left
        self.slice = slice_
        self.checkpoint = checkpoint
        self.on_failed = on_failed  # the trail's `[ ] bake: …` for a failed look at the service
        self.baseline = Baseline.of(ctx.service_view, ctx.task_arns)
        self.looks = 0
        self.judged: dict[str, int] = {}  # gate label -> looks that passed it during the bake
        self.service: ServiceView | None = None
        self.service_summary = ""

    def run(self) -> Verdict | None:
        """The bake to its end, or to its first failing look."""
        clock = self.ctx.clock
        start = clock.monotonic()
        end = start + self.left
        due = [start + interval(g) for g in self.gates]
        next_service = start + SERVICE_EVERY
        while True:
            now = clock.monotonic()
            if now >= end:
                break
            wake = min(end, next_service, now + self.slice, *due)
            if wake > now:
                clock.sleep(wake - now)
            self.checkpoint()
            now = clock.monotonic()
            if now >= end:
                break
            ready = tuple(g for g, at in zip(self.gates, due, strict=True) if at <= now)
            if ready:
                failed = self._judge(ready)
                after = clock.monotonic()
                due = [after + interval(g) if g in ready else at for g, at in zip(self.gates, due, strict=True)]
                if failed is not None:
                    return failed
            if clock.monotonic() >= next_service:
                failed = self._look_at_service()
                next_service = clock.monotonic() + SERVICE_EVERY
                if failed is not None:
                    return failed
        failed = self._look_at_service()
        if failed is not None:
            return failed
        alarms = tuple(g for g in self.gates if isinstance(g, AlarmGate))
        return self._judge(alarms, final=True) if alarms else None

    def _judge(self, gates: tuple[GateSpec, ...], final: bool = False) -> Verdict | None:
        self.looks += 1
        failed = self.judge(gates, self.looks, final)
        if failed is not None:
            return failed
        if not final:
            for g in gates:
                self.judged[g.label] = self.judged.get(g.label, 0) + 1
        return None

    def _look_at_service(self) -> Verdict | None:
        """The service and our tasks' ARNs (two calls); the stopped tasks' reasons only when some are gone."""
        ctx = self.ctx
        svc = self.ecs.service(ctx.cluster, ctx.service)
        if svc is not None:
            self.service = svc
            ctx.found.service_view = svc  # a later target-health look reads the load balancer entries here
        if self.baseline is None:
            self.baseline = Baseline.of(svc, ())
        listed = self.ecs.task_arns(ctx.cluster, ctx.service) if svc is not None else []
        if self.baseline is None:
            v = ecs_rollout.judge(svc, ctx.revision_arn, "bake", since=ctx.deployed_at, completed=True)
        else:
            if not self.baseline.tasks:  # no gate listed the tasks: these are the ones the bake holds to
                b = self.baseline
                self.baseline = Baseline(b.deployment, b.desired, b.failed, frozenset(listed))
            v = judge_service(svc, ctx.revision_arn, self.baseline, listed, ctx.deployed_at)
        if action(Where.GATE, v) is Action.CONTINUE:
            self.service_summary = v.summary
            return None
        if v.status == FAILED and v.evidence.get("gone"):
            v = Verdict(v.gate, v.status, v.summary, {**v.evidence, "stopped_tasks": self._stopped(v)}, v.terminal)
        v = during_bake(v)
        self.on_failed(v, self.looks)
        return v

    def _stopped(self, v: Verdict) -> list[dict[str, Any]] | str:
        try:
            tasks = self.ecs.describe_tasks(self.ctx.cluster, list(v.evidence["gone"]))
        except Exception as exc:  # noqa: BLE001 - evidence is best effort; the verdict stands without it
            return f"could not be described: {exc}"
        return [{"task": t.short_id, "status": t.last_status, "stopped_reason": t.stopped_reason} for t in tasks]

    def summary(self) -> str:
        """What the bake checked, in words that are all true: the service look, and each gate's passing looks."""
        parts = [self.service_summary] if self.service_summary else []
        parts += [f"{label} passed {n} more look(s)" for label, n in self.judged.items()]
        return "; ".join(parts)
