"""Manual rollback (`snail rollback`): choose the target from release memory, record the decision, restore, hold.

The target is a revision, a phase's last good revision, or the good revision that was live immediately before the
live one (never a newer one); it is chosen before the run starts (a refusal changes nothing). Once the service is
back and verified, the revisions it left are held, so a scheduled run does not roll forward again until
`snail release` or a spec change. The engine holds the lock and the run record around `act`."""

from __future__ import annotations

import getpass
import socket
from collections.abc import Callable
from dataclasses import dataclass

from orchestrator.aws.ecs import ServiceView, short_name
from orchestrator.engine.journal import Journal
from orchestrator.engine.outcome import Outcome
from orchestrator.engine.rollback import Rollback
from orchestrator.errors import RollbackFailed, UsageError
from orchestrator.release_memory import Refusal, rollback_holds, rollback_target
from orchestrator.state.base import Mark
from orchestrator.trail.kinds import EventKind as K


@dataclass(frozen=True)
class ManualRollback:
    """One manual rollback, decided: the service (its name in the pipeline, and as ECS described it), release
    memory's marks, the target."""

    name: str
    service: ServiceView
    marks: list[Mark]
    target: Mark

    @classmethod
    def choose(
        cls,
        name: str,
        service: ServiceView,
        marks: list[Mark],
        phases: list[str],
        to_revision: str | None = None,
        to_phase: str | None = None,
    ) -> ManualRollback:
        """The rollback to make, or UsageError / RollbackFailed saying why there is none (nothing changed)."""
        target = rollback_target(
            marks, service.task_definition, to_phase=to_phase, to_revision=to_revision, phases=phases
        )
        if isinstance(target, Refusal):
            raise UsageError(target.message) if target.usage else RollbackFailed(target.message)
        return cls(name, service, marks, target)

    def act(
        self,
        journal: Journal,
        rollbacks: Rollback,
        write_mark: Callable[[Journal, Mark], None],
        reason: str = "",
    ) -> Outcome:
        """The decision (recorded first), the restore and its verification, then the holds."""
        target = self.target
        why = f": {reason}" if reason else ""
        journal.event(
            K.DECISION,
            f"manual rollback to {target.short} (phase {target.phase}) from "
            f"{short_name(self.service.task_definition)}{why}",
            target=target.revision_arn,
            manual=True,
            reason=reason,
        )
        restored = rollbacks.restore(journal, target.to_good())
        outcome = Outcome.of("succeeded" if restored.verified else "rollback_failed", restored.message)
        if restored.verified:
            by = f"{getpass.getuser()}@{socket.gethostname()}"
            for held in rollback_holds(
                self.marks,
                target,
                self.service.task_definition,
                service=self.name,
                by=by,
                reason=reason or "manual rollback",
                at=journal.now(),
                run_id=journal.run_id,
            ):
                write_mark(journal, held)
        return outcome
