"""Verdicts are data: every gate returns one, and one function maps verdicts to actions."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any

PASSED = "passed"
FAILED = "failed"
INCONCLUSIVE = "inconclusive"
ERROR = "error"


@dataclass(frozen=True)
class Verdict:
    """What a gate concluded, with the evidence a person needs to believe it."""

    gate: str
    status: str
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)
    terminal: bool = False  # a failure no retry can fix (e.g. ECS rolled back the deployment)
    attempts: int = 1

    @property
    def passed(self) -> bool:
        """True only for a pass."""
        return self.status == PASSED

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the trail and JSON output."""
        return asdict(self)


class Action(enum.Enum):
    """What the engine does with a verdict."""

    CONTINUE = "continue"
    RETRY = "retry"
    ROLLBACK = "rollback"


def decide(verdict: Verdict, attempts_left: bool) -> Action:
    """The one mapping from verdict to action: pass continues, a terminal failure rolls back,
    anything else is retried while attempts are left and then rolls back."""
    if verdict.status == PASSED:
        return Action.CONTINUE
    if verdict.terminal:
        return Action.ROLLBACK
    return Action.RETRY if attempts_left else Action.ROLLBACK
