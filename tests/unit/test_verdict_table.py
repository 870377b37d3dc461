"""The one verdict -> action table (gates/verdict.py), row by row: where a verdict is judged decides what it means."""

from __future__ import annotations

import pytest

from orchestrator.gates.verdict import (
    ACTIONS,
    ERROR,
    FAILED,
    INCONCLUSIVE,
    PASSED,
    SUPERSEDED,
    Action,
    Verdict,
    Where,
    action,
)

STATUSES = (PASSED, FAILED, INCONCLUSIVE, ERROR, SUPERSEDED)
C, R, B, S, Q = Action.CONTINUE, Action.RETRY, Action.ROLLBACK, Action.STOP, Action.QUARANTINE


def test_every_place_answers_every_status() -> None:
    """Each place a verdict is judged has an action for each status (no status falls through to a default)."""
    assert set(ACTIONS) == set(Where)
    for where, row in ACTIONS.items():
        assert set(row) == set(STATUSES), where


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        # a gate after the update (and each bake look, and a rollback's verification): only a pass continues
        (Where.GATE, (C, B, B, B, S)),
        # a look at ECS while a gate waits: a rollout in progress or a throttled look says nothing yet
        (Where.ROLLOUT_LOOK, (C, B, R, R, S)),
        # at a PAUSE hook green must prove itself: anything but a pass answers ROLLBACK
        (Where.PAUSE_HOOK, (C, B, B, B, B)),
        # during ECS's bake only a failure stops the deployment; anything else is looked at again next poll
        (Where.ECS_BAKE, (C, B, R, R, R)),
        # only a failed verdict quarantines the spec; another actor's deployment stops without touching anything
        (Where.QUARANTINE, (C, Q, B, B, S)),
    ],
)
def test_the_action_for_each_status_depends_on_where(where: Where, expected: tuple[Action, ...]) -> None:
    """The rules the engine applied in five places, now one table: the same status means different things."""
    got = tuple(action(where, Verdict("g", status, "x")) for status in STATUSES)
    assert got == expected
