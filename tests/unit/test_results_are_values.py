"""Results are values: an Outcome and a GateContext are frozen once made, and a journal's phase is passed, not set."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from orchestrator.clock import FakeClock
from orchestrator.engine.journal import Journal
from orchestrator.engine.outcome import Outcome
from orchestrator.gates.context import GateContext


def test_an_outcome_is_frozen_and_changes_by_a_new_value() -> None:
    """What is learnt after an outcome is made (its run id) makes a new outcome; the first one stays as it was."""
    out = Outcome.of("rolled_back", "phase two failed")
    with pytest.raises(dataclasses.FrozenInstanceError):
        out.run_id = "r-1"  # type: ignore[misc]
    recorded = dataclasses.replace(out, run_id="r-1")
    assert (out.run_id, recorded.run_id, recorded.exit_code) == (None, "r-1", 1)


def test_a_gate_context_is_frozen_and_its_variants_share_what_the_gates_found() -> None:
    """A variant of a gate context (the bake's quiet one) is a new value; the tasks the gates found are shared."""
    ctx = GateContext("c", "s", "td", 5000, clock=FakeClock())
    with pytest.raises(dataclasses.FrozenInstanceError):
        ctx.deadline = 1.0  # type: ignore[misc]
    quiet = dataclasses.replace(ctx, watch=None, deadline=5.0)
    quiet.found.task_arns = ("arn:task/1",)
    assert ctx.task_arns == ("arn:task/1",) and ctx.deadline is None


class _Store:
    """Takes no event until told to (a locked state store), then takes them all."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self.refuse = True

    def append_event(self, ev: Any) -> None:
        if self.refuse:
            raise OSError("database is locked")
        self.events.append(ev)


def test_a_journal_for_a_phase_is_a_view_of_the_same_run() -> None:
    """`at(phase)` records into that phase's section and leaves the run's journal as it was; what the store could
    not take from either is written once, in order, when it takes writes again."""
    store = _Store()
    run = Journal(store, "r-1", "shine", FakeClock())  # type: ignore[arg-type]
    one = run.at("one")
    one.event("phase_started", "phase one started")
    run.event("warning", "a run-level note")
    assert (run.phase, one.phase) == (None, "one")
    assert len(run.unsaved) == 2
    store.refuse = False
    run.flush()
    assert [(e.phase, e.message) for e in store.events] == [("one", "phase one started"), (None, "a run-level note")]
    assert one.unsaved == []
