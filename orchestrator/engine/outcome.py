"""How a command ended: a status, the exit code it maps to, a message, the diagnosis, the run id."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from orchestrator.errors import ExitCode

if TYPE_CHECKING:
    from orchestrator.plan import Plan

# The status of a finished command -> its exit code (the README's table; the CLI exits with it).
EXIT_FOR = {
    "succeeded": ExitCode.OK,
    "noop": ExitCode.OK,
    "paused": ExitCode.OK,
    "dry_run": ExitCode.OK,
    "rolled_back": ExitCode.ROLLED_BACK,
    "failed": ExitCode.ROLLED_BACK,  # failed before the service changed: it never left its good revision
    "quarantined": ExitCode.ROLLED_BACK,
    "held": ExitCode.ROLLED_BACK,
    "rollback_failed": ExitCode.HUMAN_NEEDED,
    "locked": ExitCode.LOCKED,  # refused: another run held the lock (a history row, once per streak)
    "lock_lost": ExitCode.LOCKED,
    "superseded": ExitCode.LOCKED,  # another actor's deployment replaced ours: not rolled back, not marked
    "interrupted": ExitCode.INTERRUPTED,
}

# Rows of the history that changed nothing and decided nothing: "what did the last run do" looks past them.
UNEVENTFUL = frozenset({"noop", "locked"})


@dataclass(frozen=True)
class Outcome:
    """How a command ended: exit code, one-line message, the diagnosis, the run id (if a run was recorded). Frozen:
    what is learnt later (the run id, what the store did not take) makes a new outcome."""

    exit_code: int
    message: str
    run_id: str | None = None
    plan: Plan | None = None
    status: str = "succeeded"
    diagnosis: str = ""

    @classmethod
    def of(
        cls,
        status: str,
        message: str,
        *,
        exit_code: int | None = None,
        diagnosis: str = "",
        plan: Plan | None = None,
    ) -> Outcome:
        """An outcome whose exit code follows from its status (unless given)."""
        code = EXIT_FOR[status] if exit_code is None else exit_code
        return cls(code, message, status=status, diagnosis=diagnosis, plan=plan)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for `--output json`."""
        return {
            "exit_code": self.exit_code,
            "outcome": self.status,
            "status": self.status,
            "message": self.message,
            "diagnosis": self.diagnosis or None,
            "run_id": self.run_id,
        }
