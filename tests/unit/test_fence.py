"""The lock holder's side of the time fence (docs/locks.md): no change is sent once the lease may have expired."""

from __future__ import annotations

import pytest

from orchestrator.clock import FakeClock
from orchestrator.engine.lease import Heartbeat
from orchestrator.errors import LockLost


class SlowStore:
    """A state store whose heartbeat write takes `seconds` on the clock before it answers."""

    def __init__(self, clock: FakeClock, seconds: float) -> None:
        self.clock, self.seconds = clock, seconds

    def heartbeat(self, *_a: object, **_k: object) -> bool:
        self.clock.sleep(self.seconds)
        return True


def test_no_change_is_sent_once_the_lease_may_have_expired() -> None:
    """A 10 s lease: a change may start until 9 s after the last good beat was sent; after that it is refused."""
    clock = FakeClock()
    hb = Heartbeat(SlowStore(clock, 0), "svc", "r-1", 10.0, clock=clock)  # type: ignore[arg-type]
    clock.sleep(8.9)
    hb.fence("UpdateService")
    clock.sleep(0.2)
    with pytest.raises(LockLost, match="UpdateService not sent"):
        hb.fence("UpdateService")
    assert hb.lost.is_set()


def test_the_lease_counts_from_when_the_beat_was_sent() -> None:
    """A beat whose answer took 4 s renews the lease from when it was sent (an observer may have seen it land
    then), not from its answer: 9 s after sending, no change is sent."""
    clock = FakeClock()
    hb = Heartbeat(SlowStore(clock, 4.0), "svc", "r-1", 10.0, clock=clock)  # type: ignore[arg-type]
    clock.sleep(5)
    sent = clock.monotonic()
    assert hb.beat()
    clock.sleep(sent + 9.0 - clock.monotonic() - 0.1)
    hb.fence("UpdateService")
    clock.sleep(0.2)
    with pytest.raises(LockLost):
        hb.fence("UpdateService")
