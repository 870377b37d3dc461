"""`barrier: test-traffic`: a wave's traffic-strategy targets held at their POST_TEST_TRAFFIC_SHIFT hooks until every
one of them has passed its test-listener gates; then they all CONTINUE. If any fails first, every one is told to go
back (ROLLBACK at its hook), so no production request anywhere in the wave reached the release.

The engine calls `hold()` (through the fleet's Recall) at the test-traffic hook once its gates passed, before it
answers CONTINUE; the hold returns when the barrier opens, or raises GoBack (the target was told to go back). While a
target is held, its hook's own timeout still guards it (ECS answers ROLLBACK): a CONTINUE refused after that is
the engine's "timed out while judged" path."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from orchestrator.clock import Clock

LOOK = 0.05  # seconds between looks for "told to go back" while held (the opening itself wakes the hold at once)


class TestTrafficBarrier:
    """One wave's barrier: who must arrive, who did, and whether it broke."""

    __test__ = False  # not a pytest test class, whatever its name says

    def __init__(
        self,
        members: set[str],
        tell_all: Callable[[str, str], None],
        record: Callable[[str, dict[str, Any]], None] = lambda _kind, _data: None,
    ) -> None:
        self.members = set(members)
        self.arrived: set[str] = set()
        self.left: set[str] = set()  # ended without arriving (passed without a hook: nothing to hold)
        self.broken: str | None = None
        self.opened = threading.Event()
        self._tell_all = tell_all
        self._record = record
        self._mutex = threading.Lock()

    def _open_if_complete(self) -> bool:
        if self.broken is None and not self.opened.is_set() and self.members <= self.arrived | self.left:
            self.opened.set()
            return True
        return False

    def hold(self, name: str, clock: Clock) -> None:
        """`name` passed its test-traffic gates: wait here until every member has (GoBack if the wave goes back)."""
        with self._mutex:
            self.arrived.add(name)
            opened = self._open_if_complete()
        if opened:
            self._record("barrier_opened", {"held": sorted(self.arrived), "passed_without_hook": sorted(self.left)})
        while not self.opened.wait(LOOK):
            clock.sleep(0)  # raises GoBack once this target is told to go back (the barrier broke, or a stop)

    def leave(self, name: str, failed: bool, reason: str = "") -> None:
        """`name`'s delivery ended without arriving (or after): a failure breaks the barrier."""
        if failed:
            self.fail(name, reason)
            return
        with self._mutex:
            self.left.add(name)
            opened = self._open_if_complete()
        if opened:
            self._record("barrier_opened", {"held": sorted(self.arrived), "passed_without_hook": sorted(self.left)})

    def fail(self, name: str, reason: str) -> None:
        """`name` failed before the barrier opened: every member goes back (ROLLBACK at its hook)."""
        with self._mutex:
            if self.opened.is_set() or self.broken is not None:
                return  # after the opening a failure is an ordinary stop of the line (on_failure decides)
            self.broken = f"barrier: {name} failed on test traffic ({reason})"
        self._record("barrier_broken", {"target": name, "reason": self.broken, "held": sorted(self.arrived)})
        self._tell_all(self.broken, name)  # not `name` itself: it is rolling back already
