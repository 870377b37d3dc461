"""Judging a revision: its gates in order, each with its retry policy, then the bake.

One judgment serves the gates after an update, each look of the bake (engine/bake.py) and a rollback's
verification: both deployers and the rollback collaborator call it, and none of them reaches into the engine."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from orchestrator.aws.ecs import EcsClient, ServiceView
from orchestrator.aws.session import AwsContext
from orchestrator.clock import Clock
from orchestrator.config.gates import EcsRolloutGate, GateSpec
from orchestrator.config.model import Phase, ServiceSpec
from orchestrator.engine import bake
from orchestrator.engine.journal import Journal
from orchestrator.gates import GateContext, ecs_rollout, run_gate
from orchestrator.gates.early import EarlyCrash, EarlyLook, early_gates
from orchestrator.gates.verdict import Action, Verdict, Where, action
from orchestrator.trail.kinds import EventKind as K


@dataclass(frozen=True)
class Judge:
    """Judges one service's revisions: the gate context, the gates once each, the bake."""

    spec: ServiceSpec
    ecs: EcsClient
    aws: AwsContext
    clock: Clock
    workdir: str
    lease: float  # seconds: the bake sleeps in slices of a third of it, so a lost lock is noticed during it
    checkpoint: Callable[[], None]  # a safe point: raises LockLost when our lease was lost
    log_lines: Callable[[str], list[str]] | None = None  # a revision's last container log lines (evidence)

    def context(self, journal: Journal, revision_arn: str, phase: str, deployed_at: Any = None) -> GateContext:
        """What the gates of one judgment share (the tasks the first http gate found, the service last seen)."""
        return GateContext(
            cluster=self.spec.cluster,
            service=self.spec.name,
            revision_arn=revision_arn,
            port=self.spec.port,
            ecs=self.ecs,
            aws=self.aws,
            endpoint=self.spec.endpoint,
            deployed_at=deployed_at or self.clock.now(),
            clock=self.clock,
            progress=journal.progress,
            phase=phase,
            workdir=self.workdir,
            checkpoint=self.checkpoint,
            watch=ecs_rollout.watch,
        )

    def gates(
        self,
        journal: Journal,
        gates: tuple[GateSpec, ...],
        revision_arn: str,
        phase: str,
        deployed_at: Any = None,
        passed: list[tuple[GateSpec, Verdict]] | None = None,
        ctx: GateContext | None = None,
    ) -> Verdict | None:
        """Run the gates in order; record each verdict; the first failing (or superseded) verdict, or None when all
        passed (`passed` collects the passing verdicts)."""
        ctx = ctx or self.context(journal, revision_arn, phase, deployed_at)
        return self.once(journal, gates, ctx, passed=passed)

    def once(
        self,
        journal: Journal,
        gates: tuple[GateSpec, ...],
        ctx: GateContext,
        *,
        passed: list[tuple[GateSpec, Verdict]] | None = None,
        look: int = 0,
        final: bool = False,
        early: str = "",
    ) -> Verdict | None:
        """Judge these gates once each, in order, with their retry policies: the first verdict that is not a pass,
        or None. The one judgment that the gates after an update, each look of the bake (`look` > 0: its passes are
        not recorded, its verdicts say "during the bake"; `final`: the bake's last look, recorded), a rolling update's
        early looks (`early`: the trail's note; passes not recorded) and a rollback's verification share."""
        for g in gates:
            v = run_gate(g, ctx)
            if look:
                v = bake.during_bake(v)
            data = {"gate": g.label, "status": v.status, "attempts": v.attempts, "evidence": v.evidence}
            where = (" (at the bake's end)" if final else f" (during the bake, look {look})") if look else early
            if early:
                data["early"] = True
            act = action(Where.GATE, v)
            if act is Action.CONTINUE:
                if passed is not None:
                    passed.append((g, v))
                if (look and not final) or early:  # an early pass is said once, by the rollout's verdict
                    continue
                after = f" (after {v.attempts} attempts)" if v.attempts > 1 else ""
                journal.event(K.GATE_PASSED, f"[x] {g.label}: {v.summary}{after}{where}", **data)
                continue
            # A gate stopped by our lost lock (LockLost at its checkpoint, which run_gate turns into an error
            # verdict) did not fail the revision: raise the loss here, so it is handled as one (exit 4, and a
            # lock taken by another run leaves the service to that run instead of rolling back its work).
            self.checkpoint()
            if act is Action.STOP:  # superseded: not a verdict on our revision (no log lines, no failure)
                journal.event(K.SUPERSEDED, f"[-] {g.label}: {v.summary}{where}", **data)
                return v
            # Not for a verdict reached early, nor for the rollout's wait it ended: the old tasks still serve beside
            # the failing one, so the rollback comes first, and the diagnosis after it reads the same containers'
            # lines (the trail shows them from there).
            if self.log_lines is not None and ecs_rollout.EARLY not in v.evidence and not early:
                try:  # the first thing anyone asks for: what the containers printed (masked)
                    data["evidence"] = {**v.evidence, "log_lines": self.log_lines(ctx.revision_arn)}
                except Exception:  # noqa: BLE001 - evidence is best effort
                    pass
            journal.event(K.GATE_FAILED, f"[ ] {g.label}: {v.status}: {v.summary}{where}", **data)
            return v
        return None

    def and_bake(
        self,
        journal: Journal,
        phase: Phase,
        gates: tuple[GateSpec, ...],
        phase_gates: tuple[GateSpec, ...],
        revision_arn: str,
        deployed_at: Any,
        seen: list[ServiceView] | None = None,
        early: bool = False,
    ) -> Verdict | None:
        """`gates` in order, then the bake (judging `phase_gates` again) counted from when the ecs-rollout gate saw
        the rollout complete: the first failing (or superseded) verdict, or None. The bake shares the gates'
        context: the tasks they found are the ones it holds to, and its http looks ask them without listing them.
        `early` (a rolling update): the ecs-rollout gate's polls judge `phase_gates` on our new tasks while the
        rollout is in progress (gates/early.py)."""
        passed: list[tuple[GateSpec, Verdict]] = []
        ctx = self.context(journal, revision_arn, phase.name, deployed_at)
        eligible = early_gates(phase_gates, self.spec.endpoint) if early else ()
        looks: EarlyLook | None = None
        if eligible and any(isinstance(g, EcsRolloutGate) for g in gates):
            looks = EarlyLook(eligible, lambda gs, c, note: self.once(journal, gs, c, early=note))
            ctx = dataclasses.replace(ctx, early=looks)
        try:
            failed = self.gates(journal, gates, revision_arn, phase.name, deployed_at, passed=passed, ctx=ctx)
        except EarlyCrash as crash:
            raise crash.error from None  # the early judge's own exception, as the gates after the rollout raise it
        if failed is not None and looks is not None and looks.failure is not None and not failed.superseded:
            return looks.failure  # the phase failed on the gate judged early, not on the rollout
        if failed is not None:
            return failed
        done = next((ecs_rollout.completed_at(v) for g, v in passed if isinstance(g, EcsRolloutGate)), None)
        return self.bake(journal, phase, phase_gates, revision_arn, deployed_at, since=done, seen=seen, ctx=ctx)

    def bake(
        self,
        journal: Journal,
        phase: Phase,
        gates: tuple[GateSpec, ...],
        revision_arn: str,
        deployed_at: Any,
        since: datetime | None = None,
        seen: list[ServiceView] | None = None,
        ctx: GateContext | None = None,
    ) -> Verdict | None:
        """The bake (engine/bake.py): the revision holds all traffic for `bake` seconds, counted from when its
        rollout completed (`since`, as ECS stamped it, within what our polls saw; the gates after the rollout run
        inside it), while its http, target-health, command and alarm gates are judged again on their interval and
        the service and our tasks are looked at (still ours, none crashed or replaced)."""
        if phase.bake <= 0:
            return None
        held = (self.clock.now() - since).total_seconds() if since is not None else 0.0
        left = max(0.0, phase.bake - max(0.0, held))
        looks = dataclasses.replace(
            ctx or self.context(journal, revision_arn, phase.name, deployed_at),
            progress=bake.silent,
            watch=functools.partial(ecs_rollout.watch, completed=True),
            early=None,
        )
        watched = [g.label for g in bake.rejudged(gates)]
        journal.progress("baking", {"seconds": phase.bake, "left": round(left, 1), "judged": watched})

        def failed_look(v: Verdict, look: int) -> None:
            data = {"gate": "bake", "status": v.status, "evidence": v.evidence}
            if action(Where.GATE, v) is Action.STOP:
                journal.event(K.SUPERSEDED, f"[-] bake: {v.summary} (during the bake)", **data)
            else:
                journal.event(K.GATE_FAILED, f"[ ] bake: failed during the bake: {v.summary}", **data)

        baking = bake.Bake(
            ctx=looks,
            gates=gates,
            judge=lambda gs, look, final: self.once(journal, gs, looks, look=look, final=final),
            ecs=self.ecs,
            left=left,
            slice_=max(1.0, self.lease / 3),  # a lost lock is noticed during a long bake, not after it
            checkpoint=self.checkpoint,
            on_failed=failed_look,
        )
        failed = baking.run()
        if baking.service is not None and seen is not None:
            seen.append(baking.service)
        if failed is None:
            counted = f" (since the rollout completed at {since:%H:%M:%S})" if since is not None else ""
            journal.event(
                K.BAKE_DONE,
                f"baked {phase.bake:g}s{counted}: {baking.summary()}",
                seconds=phase.bake,
                looks=baking.looks,
                judged=baking.judged,
            )
        return failed
