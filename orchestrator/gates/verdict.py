"""Verdicts are data: every gate returns one, and one table maps a verdict to an action, by where it is judged."""

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
    RETRY = "retry"  # try the gate again (its retry policy), or look again at the next poll
    ROLLBACK = "rollback"
    STOP = "stop"  # superseded by another actor: stop judging, roll nothing back, mark nothing
    QUARANTINE = "quarantine"  # roll back and mark the revision failed: its spec is not deployed again


class Where(enum.Enum):
    """Where a verdict is judged: each place has its own row in the one table (ACTIONS)."""

    GATE = "gate"  # a phase's gate after a rolling update, each look of the bake, a rollback's verification
    ROLLOUT_LOOK = "rollout look"  # ECS looked at while another gate waits (between attempts) and by the bake
    PAUSE_HOOK = "pause hook"  # a traffic strategy's gates at a PAUSE lifecycle hook
    ECS_BAKE = "ecs bake"  # the alarm and metrics gates, once per poll, while ECS bakes green with blue still up
    QUARANTINE = "quarantine"  # the verdict that failed a phase: is the revision marked failed?


# The one verdict -> action table, by where the judgment happens (argo-rollouts' analysis.go keeps one mapping too).
# Between a gate's own attempts the answer also depends on the attempts left: decide() below.
ACTIONS: dict[Where, dict[str, Action]] = {
    # any answer that is not a pass fails the phase: the revision must prove itself
    Where.GATE: {
        PASSED: Action.CONTINUE,
        FAILED: Action.ROLLBACK,
        INCONCLUSIVE: Action.ROLLBACK,
        ERROR: Action.ROLLBACK,
        SUPERSEDED: Action.STOP,
    },
    # only a failure or another actor ends the wait: a rollout still in progress (or a throttled look) says nothing
    Where.ROLLOUT_LOOK: {
        PASSED: Action.CONTINUE,
        FAILED: Action.ROLLBACK,
        INCONCLUSIVE: Action.RETRY,
        ERROR: Action.RETRY,
        SUPERSEDED: Action.STOP,
    },
    # green must prove itself before it gets (more) traffic: anything else answers the hook ROLLBACK (no gate at a
    # hook says superseded: ECS's own status is what the driver watches between hooks)
    Where.PAUSE_HOOK: {
        PASSED: Action.CONTINUE,
        FAILED: Action.ROLLBACK,
        INCONCLUSIVE: Action.ROLLBACK,
        ERROR: Action.ROLLBACK,
        SUPERSEDED: Action.ROLLBACK,
    },
    # no traffic yet (inconclusive) or an error is no verdict: the next poll looks again; the phase's own bake
    # judges once more after ECS's, where a failure is a new deployment rather than a traffic switch
    Where.ECS_BAKE: {
        PASSED: Action.CONTINUE,
        FAILED: Action.ROLLBACK,
        INCONCLUSIVE: Action.RETRY,
        ERROR: Action.RETRY,
        SUPERSEDED: Action.RETRY,
    },
    # only a failed verdict is the release's own fault (not an AWS fault, a timeout or a snail bug): quarantined
    Where.QUARANTINE: {
        PASSED: Action.CONTINUE,
        FAILED: Action.QUARANTINE,
        INCONCLUSIVE: Action.ROLLBACK,
        ERROR: Action.ROLLBACK,
        SUPERSEDED: Action.STOP,
    },
}


def action(where: Where, verdict: Verdict) -> Action:
    """What the engine does with this verdict, judged there (the table above)."""
    return ACTIONS[where][verdict.status]


def decide(verdict: Verdict, attempts_left: bool, definitive_in_a_row: int = 0, threshold: int = 1) -> Action:
    """Between a gate's attempts: pass continues; superseded (another actor's deployment replaced ours) stops; a
    terminal failure, or `threshold` definitive failures in a row, rolls back; anything else is retried while
    attempts are left and then rolls back (as Where.GATE says)."""
    if verdict.status == PASSED:
        return Action.CONTINUE
    if verdict.status == SUPERSEDED:
        return Action.STOP
    if verdict.terminal or (verdict.definitive and definitive_in_a_row >= threshold):
        return Action.ROLLBACK
    return Action.RETRY if attempts_left else action(Where.GATE, verdict)
