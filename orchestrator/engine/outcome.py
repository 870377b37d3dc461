"""How a command ended."""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.plan import Plan


@dataclass
class Outcome:
    """How a command ended: exit code, one-line message, the run id (if a run was recorded)."""

    exit_code: int
    message: str
    run_id: str | None = None
    plan: Plan | None = None
    status: str = "succeeded"
