"""Early judgment on a rolling phase: while ECS's rolling update is IN_PROGRESS, the phase's gates that ask the tasks
themselves are judged on our new tasks as soon as each is RUNNING with an endpoint, while the old tasks still serve.

A failing early verdict is the phase's failure (the ecs-rollout gate ends with it, and the rollback begins before
ECS drains the old tasks). A pass ends nothing: the rollout must still complete and the gates run again on the
completed deployment, so no verdict is weaker than without the early look. Gates that probe a load balancer or a
fixed URL (`url:`, `service.endpoint`) are never judged early: the old tasks answer there too.

Budget: the look shares the ecs-rollout poll and lists the tasks only when the PRIMARY's counts say a task of ours is
new since the last look (more running, or one failed), so at most one ListTasks and one DescribeTasks per poll while
the rollout is in progress; only a gate's retry after an answer that is not a pass lists them again (run_gate forgets
the endpoints then, as it does after the rollout). When the rollout completes on exactly the tasks judged early
(ECS's counts say none was replaced), the gates after it ask those tasks without listing them again: a good phase
costs no extra call."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from orchestrator.config.gates import CommandGate, GateSpec, HttpGate
from orchestrator.gates.context import Findings, GateContext
from orchestrator.gates.endpoints import endpoints_by_task
from orchestrator.gates.verdict import Verdict

if TYPE_CHECKING:
    from orchestrator.aws.ecs import ServiceView

DURING = "rollout"  # the evidence key `during` of a verdict reached early (bake.py's DURING says "bake")
# The words a command gate uses to name the task it checks (in its run:, env: or cwd:); SNAIL_ENDPOINTS too.
NAMES_THE_TASK = "SNAIL_ENDPOINT"


def judged_early(g: GateSpec, endpoint: str | None) -> bool:
    """True when gate `g` asks our tasks themselves, so it can be judged on the new ones during the rollout: an http
    gate with no `url:` on a service with no `endpoint:`, or a command gate that names the task (SNAIL_ENDPOINT)."""
    if endpoint:
        return False
    if isinstance(g, HttpGate):
        return not g.url
    if isinstance(g, CommandGate):
        run = g.run if isinstance(g.run, str) else " ".join(g.run)
        return NAMES_THE_TASK in " ".join([run, *g.env.values(), g.cwd or ""])
    return False


def early_gates(gates: tuple[GateSpec, ...], endpoint: str | None) -> tuple[GateSpec, ...]:
    """The gates of a rolling phase judged early (judged_early), in the phase's order."""
    return tuple(g for g in gates if judged_early(g, endpoint))


def why_not_early(g: GateSpec, endpoint: str | None) -> str:
    """Why a gate is only judged once the rollout completed, in plan's words ("" when it is judged early)."""
    if judged_early(g, endpoint):
        return ""
    if g.type == "ecs-rollout":
        return "it is the rollout itself"
    if isinstance(g, HttpGate):
        where = "a fixed URL" if g.url else "service.endpoint"
        return f"probes {where}, which the old tasks answer too"
    if isinstance(g, CommandGate):
        return "does not name the task (${SNAIL_ENDPOINT})"
    return "does not ask the tasks themselves"


def plan_data(gates: tuple[GateSpec, ...], endpoint: str | None) -> list[dict[str, Any]]:
    """Per gate of a rolling phase: judged early or not, and why not (plan's JSON)."""
    return [
        {"gate": g.label, "early": judged_early(g, endpoint), "why_not": why_not_early(g, endpoint) or None}
        for g in gates
    ]


def during_rollout(v: Verdict, new: list[str], old: list[str]) -> Verdict:
    """The same verdict, marked as reached early: the new tasks it was judged on and the old tasks running then."""
    evidence = {**v.evidence, "during": DURING, "new_tasks": new, "old_tasks": old}
    return Verdict(v.gate, v.status, v.summary, evidence, v.terminal, v.attempts, v.definitive)


def early(v: Verdict | None) -> bool:
    """True when the verdict was reached early, on our new tasks while the rollout was in progress."""
    return v is not None and v.evidence.get("during") == DURING


def old_tasks(v: Verdict | None) -> list[str]:
    """The old tasks that still ran when an early verdict was reached (none for any other verdict)."""
    return list(v.evidence.get("old_tasks") or []) if early(v) and v is not None else []


def new_tasks(v: Verdict | None) -> list[str]:
    """Our new tasks an early verdict was reached on (none for any other verdict)."""
    return list(v.evidence.get("new_tasks") or []) if early(v) and v is not None else []


def answers_needed(g: GateSpec) -> int:
    """How many answers a gate needs before it can pass (an http gate's `consecutive`, else one)."""
    return g.consecutive if isinstance(g, HttpGate) else 1


def quickest_first(gates: tuple[GateSpec, ...]) -> tuple[GateSpec, ...]:
    """The early look's order: the gates that conclude in fewer answers first, else the phase's order. Every gate
    must pass on the new task either way, so the order decides only how soon a failure is seen: a `/ml/status`
    that says "failed" on its first answer is not kept waiting behind `/health`'s `consecutive: 2` (one interval)."""
    return tuple(sorted(gates, key=answers_needed))


class EarlyCrash(BaseException):  # noqa: N818 - not an error of its own: it carries one past the rollout gate
    """An exception of the early judge's own (the gate machinery, the clock), carried out of the ecs-rollout gate's
    poll untouched. The rollout gate turns what its own check raises into its error verdict; what the early look
    raises is not the rollout's, so it leaves as it would from the gates after the rollout, and the engine reports
    it as the unexpected error it is (judging.py unwraps it)."""

    def __init__(self, error: Exception) -> None:
        super().__init__(error)
        self.error = error


# Judges gates once each on a context, with a note for the trail: the first verdict that is not a pass, or None.
JudgeOnce = Callable[[tuple[GateSpec, ...], GateContext, str], "Verdict | None"]


@dataclass
class EarlyLook:
    """The ecs-rollout poll's hook (GateContext.early): judge `gates` on our new tasks not judged yet."""

    gates: tuple[GateSpec, ...]
    judge: JudgeOnce
    # our tasks whose early judgment passed: their endpoints by port, by task ARN
    judged: dict[str, dict[int, list[str]]] = field(default_factory=dict)
    failed_seen: int = 0  # the PRIMARY's failed count at the last listing
    passes: list[str] = field(default_factory=list)  # what passed early, in the trail's words
    failure: Verdict | None = None  # the early verdict that failed the phase

    def ports(self, ctx: GateContext) -> list[int]:
        """The ports the gates ask the tasks on (a command gate's SNAIL_ENDPOINT is the service's port)."""
        return sorted({g.port or ctx.port for g in self.gates if isinstance(g, HttpGate)} | {ctx.port})

    def due(self, svc: ServiceView, revision_arn: str) -> bool:
        """True when this poll's service says a task of ours may be new since the last look (no call made)."""
        primary = svc.primary
        if not self.gates or primary is None or primary.task_definition != revision_arn:
            return False
        if primary.rollout_state != "IN_PROGRESS":
            return False
        return primary.running > len(self.judged) or primary.failed > self.failed_seen

    def look(self, ctx: GateContext, svc: ServiceView) -> Verdict | None:
        """One look at this poll's service: the failing verdict of a gate on a new task, or None (nothing new, or
        every new task passed). At most one ListTasks and one DescribeTasks."""
        if not self.due(svc, ctx.revision_arn):
            return None
        assert ctx.ecs is not None and svc.primary is not None
        self.failed_seen = svc.primary.failed
        listed = ctx.ecs.tasks(ctx.cluster, ctx.service, desired_status="RUNNING")
        ours = [t for t in listed if t.task_definition == ctx.revision_arn and t.last_status == "RUNNING"]
        old = [t.arn for t in listed if t.task_definition != ctx.revision_arn and t.last_status == "RUNNING"]
        for arn in [a for a in self.judged if a not in {t.arn for t in ours}]:  # gone since (a crash, replaced)
            del self.judged[arn]
        fresh = [t for t in ours if t.arn not in self.judged]
        ports = self.ports(ctx)
        found = {p: endpoints_by_task(ctx, fresh, p) for p in ports} if fresh else {}
        new = [t for t in fresh if all(t.arn in found[p] for p in ports)]
        if not new:
            return None  # RUNNING, but no endpoint yet: the next poll looks again
        endpoints = {p: [u for t in new for u in found[p][t.arn]] for p in ports}
        look = dataclasses.replace(
            ctx, found=Findings(endpoints=endpoints, task_arns=tuple(t.arn for t in new)), early=None
        )
        names = ", ".join(t.short_id for t in new)
        note = f" (early: on new task{'s' if len(new) > 1 else ''} {names}, while the rollout was in progress)"
        try:
            failed = self.judge(quickest_first(self.gates), look, note)
        except Exception as exc:  # noqa: BLE001 - not the rollout's error: carried out of its poll (EarlyCrash)
            raise EarlyCrash(exc) from exc
        if failed is not None:
            self.failure = during_rollout(failed, [t.arn for t in new], old)
            return self.failure
        for t in new:
            self.judged[t.arn] = {p: found[p][t.arn] for p in ports}
        self.passes.append(f"{', '.join(g.label for g in self.gates)} passed on new task(s) {names}")
        return None

    def completed(self, ctx: GateContext, svc: ServiceView) -> str:
        """The rollout completed: hand the gates after it the tasks judged early when ECS's counts say they are the
        ones that completed it (as many running, none failed since); what passed early, in the trail's words."""
        primary = svc.primary
        same = (
            primary is not None
            and bool(self.judged)
            and primary.running == len(self.judged)
            and primary.failed == self.failed_seen
        )
        if same:
            for port in self.ports(ctx):
                ctx.found.endpoints[port] = [u for arn in self.judged for u in self.judged[arn][port]]
            ctx.found.task_arns = tuple(self.judged)
        if not self.passes:
            return ""
        return "; judged early: " + "; ".join(self.passes)
