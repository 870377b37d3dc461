"""The journal: every decision goes to the state store (the trail), the structured log and the progress display."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import structlog

from orchestrator.clock import Clock
from orchestrator.engine import failpoints
from orchestrator.state.base import StateStore, TrailEvent


class Journal:
    """Append-only events for one run; steps are written as intent before acting and result after."""

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
        self.phase: str | None = None
        self._progress = progress or (lambda event, data: None)
        self.log = structlog.get_logger().bind(run_id=run_id, service=service)

    def now(self) -> str:
        """The clock's time as ISO 8601."""
        return self.clock.now().isoformat(timespec="seconds")

    def event(self, kind: str, message: str, **data: Any) -> None:
        """Record one trail line, log it and show it."""
        self.store.append_event(
            TrailEvent(
                run_id=self.run_id,
                service=self.service,
                at=self.now(),
                kind=kind,
                message=message,
                phase=self.phase,
                data=data,
            )
        )
        self.log.info(kind, phase=self.phase, message=message)
        self._progress(kind, {"phase": self.phase, "message": message, **data})

    def progress(self, kind: str, data: dict[str, Any]) -> None:
        """Show progress without recording it (polls, attempts)."""
        self.log.debug(kind, phase=self.phase, **data)
        self._progress(kind, {"phase": self.phase, **data})

    @contextlib.contextmanager
    def step(self, kind: str, **intent: Any) -> Iterator[dict[str, Any]]:
        """Write the intent, act, write the result; a crash in between leaves an open step to reconcile."""
        step_id = self.store.begin_step(self.run_id, self.phase, kind, intent, self.now())
        failpoints.hit(f"{kind}:intent")
        result: dict[str, Any] = {}
        try:
            yield result
        except BaseException as exc:
            self.store.end_step(step_id, "failed", {**result, "error": str(exc) or type(exc).__name__}, self.now())
            raise
        failpoints.hit(f"{kind}:acted")
        self.store.end_step(step_id, "ok", result, self.now())
