"""Verdicts are data: every gate returns one, and one function maps verdicts to actions."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from typing import Any

PASSED = "passed"
FAILED = "failed"
INCONCLUSIVE = "inconclusive"
ERROR = "error"
# Someone else's deployment replaced ours (or scaled the service to 0): not a verdict on our revision. The run stops
# judging, touches nothing (no rollback, no mark) and says what replaced ours and what is live.
SUPERSEDED = "superseded"


@dataclass(frozen=True)
class Verdict:
    """What a gate concluded, with the evidence a person needs to believe it."""

    gate: str
    status: str
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)
    terminal: bool = False  # a failure no retry can fix (e.g. ECS rolled back the deployment)
    attempts: int = 1
    # an answer retrying cannot change (a task that is up says it failed): final after the gate's threshold
    definitive: bool = False

    @property
    def passed(self) -> bool:
        """True only for a pass."""
        return self.status == PASSED

    @property
    def superseded(self) -> bool:
        """True when another actor replaced our deployment: no verdict on our revision at all."""
        return self.status == SUPERSEDED

    def after(self, attempts: int) -> Verdict:
        """The same verdict, counted over `attempts` tries."""
        return replace(self, attempts=attempts)


class Action(enum.Enum):
    """What the engine does with a verdict."""

    CONTINUE = "continue"
    RETRY = "retry"
    ROLLBACK = "rollback"
    STOP = "stop"  # superseded by another actor: stop judging, roll nothing back, mark nothing


def decide(verdict: Verdict, attempts_left: bool, definitive_in_a_row: int = 0, threshold: int = 1) -> Action:
    """The one mapping from verdict to action: pass continues; superseded (another actor's deployment replaced ours)
    stops; a terminal failure, or `threshold` definitive failures in a row, rolls back; anything else is retried while
    attempts are left and then rolls back."""
    if verdict.status == PASSED:
        return Action.CONTINUE
    if verdict.status == SUPERSEDED:
        return Action.STOP
    if verdict.terminal or (verdict.definitive and definitive_in_a_row >= threshold):
        return Action.ROLLBACK
    return Action.RETRY if attempts_left else Action.ROLLBACK
