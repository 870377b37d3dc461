"""Rollback: a recorded decision first, then the act, then the verification by the target phase's gates.

The target is always the newest revision that passed snail's own gates for the service (never "N-1", never a
revision ECS merely called COMPLETED); it is known before anything is changed."""

from __future__ import annotations

from typing import Any

from orchestrator.aws.ecs import family_of
from orchestrator.config.model import GateSpec
from orchestrator.engine.journal import Journal
from orchestrator.engine.lease import Heartbeat
from orchestrator.engine.outcome import Outcome
from orchestrator.errors import ExitCode, GateFailed, Interrupted, RollbackFailed, RolledBack, SnailError, UsageError
from orchestrator.state.base import GoodRecord

ROLLOUT_GATE = GateSpec(type="ecs-rollout", timeout=600.0, name="ecs-rollout")


class _Deployed(Exception):
    """Internal: wraps a failure that happened after the service was pointed at a new revision."""

    def __init__(self, cause: BaseException, revision_arn: str, deployed_at: Any = None) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.revision_arn = revision_arn
        self.deployed_at = deployed_at


class RollbackMixin:
    """The Engine's rollback half (uses its store, ECS adapter, gates and journal)."""

    def _roll_back(self, j: Journal, phase: str, d: _Deployed) -> None:
        """Decide, record, act, verify. Raises RolledBack (exit 1), RollbackFailed (3) or Interrupted (130)."""
        cause = d.cause
        interrupted = isinstance(cause, (KeyboardInterrupt, Interrupted))
        reason = "interrupted" if interrupted else str(cause)
        if interrupted and self.p.on_interrupt == "record":
            short = d.revision_arn.rsplit("/", 1)[-1]
            msg = (
                f"interrupted during phase {phase}; the service was left on {short}, which has NOT passed its gates "
                "(rollback.on_interrupt: record): `snail run --resume` continues, `snail rollback` goes back"
            )
            j.event("interrupted", msg, revision=d.revision_arn)
            raise Interrupted(msg)
        target = next((g for g in self.store.good_history(self.svc.name) if g.revision_arn != d.revision_arn), None)
        diagnosis = ""
        if self.diagnose is not None and not interrupted:
            try:
                diagnosis = self.diagnose(d.revision_arn, cause, d.deployed_at)
            except Exception as exc:  # the diagnosis explains; it must never block the rollback
                diagnosis = f"(diagnosis failed: {exc})"
        evidence = cause.verdict.evidence if isinstance(cause, GateFailed) else {}
        if target is None:
            svc = self.ecs.service(self.svc.cluster, self.svc.name)
            state = (
                (
                    f"the service runs {svc.task_definition.rsplit('/', 1)[-1]}; "
                    + (
                        f"primary deployment {svc.primary.rollout_state}, {svc.primary.running}/{svc.primary.desired} running"
                        if svc and svc.primary
                        else "no primary deployment"
                    )
                )
                if svc
                else "the service is missing"
            )
            msg = (
                f"phase {phase} failed ({reason}) and no revision has passed its gates yet, so there is nothing "
                f"to roll back to: {state}. A human is needed."
            )
            j.event("rollback_impossible", msg, reason=reason, evidence=evidence, diagnosis=diagnosis)
            raise RollbackFailed(msg)
        short = target.revision_arn.rsplit("/", 1)[-1]
        j.event(
            "decision",
            f"rolling back to {short} (phase {target.phase}, last good) because {reason}"
            + (f" — diagnosis: {diagnosis}" if diagnosis else ""),
            reason=reason,
            target=target.revision_arn,
            evidence=evidence,
            diagnosis=diagnosis,
        )
        try:
            self._restore(j, target, d.revision_arn)
        except KeyboardInterrupt:
            raise RollbackFailed(
                f"interrupted while rolling back to {short}; the trail says where it stopped"
            ) from None
        if interrupted:
            raise Interrupted(
                f"interrupted during phase {phase}; rolled back to {short} (phase {target.phase}), verified"
            )
        raise RolledBack(
            f"phase {phase} failed: {reason}; rolled back to {short} (phase {target.phase}), verified by its gates"
            + (f"\ndiagnosis: {diagnosis}" if diagnosis else "")
        )

    def _restore(self, j: Journal, target: GoodRecord, failed_arn: str | None) -> None:
        """Point the service at a good revision and verify it with the rollout gate and its phase's gates."""
        short = target.revision_arn.rsplit("/", 1)[-1]
        j.phase = target.phase
        try:
            svc = self.ecs.service(self.svc.cluster, self.svc.name)
            with j.step("rollback", **{"from": svc.task_definition if svc else None, "to": target.revision_arn}):
                self.ecs.update_service(self.svc.cluster, self.svc.name, target.revision_arn)
            j.event("rollback_started", f"service {self.svc.name} -> {short}", revision=target.revision_arn)
            gates = self._verification_gates(target.phase)
            self._gates(j, gates, self._gate_ctx(j, target.revision_arn, target.phase), target.phase)
        except SnailError as exc:
            j.event("rollback_failed", f"rollback to {short} could not be verified: {exc}. A human is needed.")
            raise RollbackFailed(f"rollback to {short} failed: {exc}") from None
        j.event(
            "rollback_verified",
            f"rolled back to {short} (phase {target.phase}): gates passed",
            revision=target.revision_arn,
        )

    def _verification_gates(self, phase_name: str) -> tuple[GateSpec, ...]:
        try:
            gates = self.p.phase(phase_name).gates
        except KeyError:
            gates = self.p.defaults_gates
        if not any(g.type == "ecs-rollout" for g in gates):
            gates = (ROLLOUT_GATE,) + tuple(gates)
        return tuple(gates)

    def rollback(self, to_revision: str | None = None, to_phase: str | None = None) -> Outcome:
        """Manual rollback: to a revision, a phase's last good revision, or the good revision before the live one."""
        svc = self.ecs.require_service(self.svc.cluster, self.svc.name)
        history = self.store.good_history(self.svc.name)
        if to_revision:
            want = to_revision if ":" in to_revision else f"{family_of(svc.task_definition)}:{to_revision}"
            target = next((g for g in history if g.revision_arn.endswith("/" + want) or g.revision_arn == want), None)
            if target is None:
                raise UsageError(
                    f"revision {want} never passed snail's gates for {self.svc.name}; "
                    f"good revisions: {', '.join(sorted({g.revision_arn.rsplit('/', 1)[-1] for g in history})) or 'none'}"
                )
        elif to_phase:
            target = next((g for g in history if g.phase == to_phase), None)
            if target is None:
                raise UsageError(f"phase {to_phase!r} has no good revision yet")
        else:
            target = next((g for g in history if g.revision_arn != svc.task_definition), None)
            if target is None:
                raise RollbackFailed("no good revision other than the live one: nothing to roll back to")
        j = self._begin("rollback", [target.phase])
        try:
            with Heartbeat(self.store, self.svc.name, j.run_id, self.p.state.lease):
                j.event(
                    "decision",
                    f"manual rollback to {target.revision_arn.rsplit('/', 1)[-1]} (phase {target.phase}) "
                    f"from {svc.task_definition.rsplit('/', 1)[-1]}",
                    target=target.revision_arn,
                )
                self._restore(j, target, None)
                return self._finish(
                    j,
                    Outcome(
                        ExitCode.OK,
                        f"rolled back to {target.revision_arn.rsplit('/', 1)[-1]} "
                        f"(phase {target.phase}), verified by its gates",
                        status="succeeded",
                    ),
                )
        except SnailError as exc:
            self._finish(j, Outcome(exc.exit_code, str(exc), status="failed"))
            raise
