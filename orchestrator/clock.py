"""Injected time: the engine, pollers and gates take a Clock so tests never really sleep."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Protocol


class Clock(Protocol):
    """Monotonic seconds, wall time and sleep."""

    def monotonic(self) -> float: ...

    def now(self) -> datetime: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin, never going backwards."""
        return time.monotonic()

    def now(self) -> datetime:
        """The current UTC time."""
        return datetime.now(timezone.utc)

    def sleep(self, seconds: float) -> None:
        """Really sleep."""
        if seconds > 0:
            time.sleep(seconds)


class FakeClock:
    """A clock for tests: sleeping advances time instantly and is recorded."""

    def __init__(self, start: datetime | None = None) -> None:
        self._t = 0.0
        self._start = start or datetime(2025, 8, 11, 22, 19, tzinfo=timezone.utc)
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        """Fake seconds since the start."""
        return self._t

    def now(self) -> datetime:
        """The fake wall time."""
        from datetime import timedelta

        return self._start + timedelta(seconds=self._t)

    def sleep(self, seconds: float) -> None:
        """Advance fake time without waiting."""
        self.sleeps.append(seconds)
        self._t += max(0.0, seconds)

    def advance(self, seconds: float) -> None:
        """Move time forward as if something else took that long."""
        self._t += seconds
