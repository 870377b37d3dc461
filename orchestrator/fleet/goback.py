"""Telling an in-flight target to go back now: the line stopped while its engine was still deploying or judging.

The per-service engine already has an interrupt path (Ctrl-C: KeyboardInterrupt at a safe point, then the rollback;
a traffic strategy goes back by ROLLBACK at its hook or StopServiceDeployment). The fleet reaches that path through
the clock the engine is given: every wait of the engine is a `clock.sleep`, and this clock's sleep wakes at once and
raises GoBack when the target is told to go back. It raises once: the rollback that follows waits on the same clock
and must not be interrupted itself.

The other direction is the engine's progress: the moment a target decides to roll back (its gate failed), the fleet
hears it through `Recall.watch`, before that target's own rollback has even begun, and tells its siblings."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from orchestrator.clock import Clock, SystemClock

# The engine's trail events that mean "this target failed and is going back" (recorded before the rollback acts).
FAILING_KINDS = frozenset({"decision", "rollback_impossible"})


class GoBack(KeyboardInterrupt):
    """The fleet told this target to go back (the engine treats it as an interrupt)."""


class GoBackClock:
    """A clock whose sleep ends early, raising GoBack once, when `told` is set."""

    def __init__(self, told: threading.Event, base: Clock | None = None) -> None:
        self.told = told
        self.base = base or SystemClock()
        self.raised = False

    def monotonic(self) -> float:
        """The base clock's monotonic seconds."""
        return self.base.monotonic()

    def now(self) -> datetime:
        """The base clock's wall time."""
        return self.base.now()

    def sleep(self, seconds: float) -> None:
        """Sleep, unless told to go back first (then raise GoBack, the first time only)."""
        if not self.raised and self.told.is_set():
            self.raised = True
            raise GoBack("the fleet stopped the line: go back")
        if self.raised or not isinstance(self.base, SystemClock):
            self.base.sleep(seconds)  # injected time (tests) advances as before
        elif seconds > 0 and self.told.wait(seconds):
            self.raised = True
            raise GoBack("the fleet stopped the line: go back")


@dataclass
class Recall:
    """The fleet's two-way line to one in-flight target: `told` (go back now) and `failing` (it is going back)."""

    failing: Callable[[str], None] = field(default=lambda _reason: None)
    told: threading.Event = field(default_factory=threading.Event)
    reason: str = ""
    # barrier: test-traffic: called by the engine at the test-traffic hook once its gates passed, before CONTINUE
    hold: Callable[[Clock], None] | None = None
    verdict_at: float | None = None  # monotonic time of this target's last failed gate verdict

    def tell(self, reason: str) -> bool:
        """Tell the target to go back; False if it was told already."""
        if self.told.is_set():
            return False
        self.reason = reason
        self.told.set()
        return True

    def watch(self, kind: str, data: dict[str, Any]) -> None:
        """The engine's progress: a rollback decision of a target not told to go back is a failure of its own.
        The last failed gate verdict's time is kept: the fleet records how soon after it the others were told."""
        if kind == "gate_failed":
            self.verdict_at = time.monotonic()
        if kind in FAILING_KINDS and not self.told.is_set():
            self.failing(str(data.get("message") or kind))
