"""The journal: every decision goes to the state store (the trail), the structured log and the progress display.

Writing the trail must never stop a rollout: progress to a dead pipe is dropped, and an event the store cannot
take right now (locked, disk full) is kept in memory and written at the end of the run (`flush`). A rollback
acts even when its intent cannot be written: the service's safety comes before the record, and the step is
written, whole, once the store takes writes again."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator
from typing import Any

import structlog

from orchestrator.clock import Clock
from orchestrator.engine import failpoints
from orchestrator.state.base import StateStore, TrailEvent

# Steps whose act must not wait for the state store: putting the service back on a good revision.
ACT_EVEN_UNRECORDED = frozenset({"rollback"})
_Begun = tuple[str | None, str, dict[str, Any], str]  # a step's phase, kind, intent and start time


class Journal:
    """Append-only events for one run; steps are written as intent before acting and result after. A journal
    records for one phase (`phase`, None for the run itself); `at(phase)` is the same run's journal for another."""

    def __init__(
        self,
        store: StateStore,
        run_id: str,
        service: str,
        clock: Clock,
        progress: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.service = service
        self.clock = clock
        self._phase: str | None = None
        self._progress = progress or (lambda event, data: None)
        self.log = structlog.get_logger().bind(run_id=run_id, service=service)
        self.unsaved: list[TrailEvent] = []
        self.unsaved_steps: list[tuple[_Begun, str, dict[str, Any]]] = []  # (intent, outcome, result)

    @property
    def phase(self) -> str | None:
        """The phase this journal records for (its trail section), or None for the run itself."""
        return self._phase

    def at(self, phase: str | None) -> Journal:
        """The same run's journal for `phase`: events and steps go to that phase's section of the trail. What the
        store could not take yet is kept once, for the whole run (the views share it)."""
        view = copy.copy(self)  # shallow: the unsaved lists, the store and the log are the run's, shared
        view._phase = phase
        return view

    def now(self) -> str:
        """The clock's time as ISO 8601."""
        return self.clock.now().isoformat(timespec="seconds")

    def event(self, kind: str, message: str, **data: Any) -> None:
        """Record one trail line, log it and show it."""
        ev = TrailEvent(
            run_id=self.run_id,
            service=self.service,
            at=self.now(),
            kind=str(kind),
            message=message,
            phase=self.phase,
            data=data,
        )
        try:
            self.flush()
            self.store.append_event(ev)
        except Exception as exc:  # noqa: BLE001 - the rollout goes on; the event is written at the end
            self.unsaved.append(ev)
            self._log("trail_write_deferred", error=f"{type(exc).__name__}: {exc}", event_kind=str(kind))
        # debug: the progress display (with --log-format json, its `progress` lines) says each event once; at info
        # a JSON log had every event twice
        self._log(str(kind), debug=True, phase=self.phase, message=message)
        self._show(str(kind), {"phase": self.phase, "message": message, **data})

    def flush(self) -> None:
        """Write the events the store could not take earlier (raises if it still cannot)."""
        while self.unsaved_steps:
            begun, outcome, result = self.unsaved_steps[0]
            step_id = self.store.begin_step(self.run_id, *begun)
            self.unsaved_steps.pop(0)  # written once: a result that fails now leaves an open step to reconcile
            self.store.end_step(step_id, outcome, result, begun[3])
        while self.unsaved:
            self.store.append_event(self.unsaved[0])
            self.unsaved.pop(0)

    def progress(self, kind: str, data: dict[str, Any]) -> None:
        """Show progress without recording it (polls, attempts)."""
        self._show(kind, {"phase": self.phase, **data})

    def _show(self, kind: str, data: dict[str, Any]) -> None:
        try:
            self._progress(kind, data)
        except Exception:  # noqa: BLE001 - a closed terminal or pipe never stops a rollout
            pass

    def _log(self, kind: str, *, debug: bool = False, **data: Any) -> None:
        try:
            (self.log.debug if debug else self.log.info)(kind, **data)
        except Exception:  # noqa: BLE001 - same for the log stream
            pass

    @contextlib.contextmanager
    def step(self, kind: str, **intent: Any) -> Iterator[dict[str, Any]]:
        """Write the intent, act, write the result; a crash in between leaves an open step to reconcile."""
        begun = (self.phase, kind, intent, self.now())
        try:
            step_id: int | None = self.store.begin_step(self.run_id, *begun)
        except Exception as exc:
            if kind not in ACT_EVEN_UNRECORDED:
                raise  # no intent on record, no act: the caller says nothing changed
            step_id = None
            self._log("step_intent_deferred", step=kind, error=f"{type(exc).__name__}: {exc}")
        failpoints.hit(f"{kind}:intent")
        result: dict[str, Any] = {}
        try:
            yield result
        except BaseException as exc:
            self._end(step_id, "failed", {**result, "error": str(exc) or type(exc).__name__}, begun)
            raise
        failpoints.hit(f"{kind}:acted")
        self._end(step_id, "ok", result, begun)

    def _end(self, step_id: int | None, outcome: str, result: dict[str, Any], begun: _Begun) -> None:
        if step_id is None:  # its intent was never written: the whole step is written by flush()
            self.unsaved_steps.append((begun, outcome, result))
            return
        try:
            self.store.end_step(step_id, outcome, result, self.now())
        except Exception as exc:  # noqa: BLE001 - the act happened; the next run reconciles the open step
            self._log("step_result_unsaved", step=step_id, error=f"{type(exc).__name__}: {exc}")
