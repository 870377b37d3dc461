"""The lease heartbeat that keeps a run's lock alive while it works, and says so when the lock is lost.

Every lease/3 the heartbeat thread moves the lock's counter. A beat that fails (throttling, a busy SQLite
file, the network) is retried with tenacity, but only within what is left of the lease since the last good
beat: after that another runner may legitimately take the lock over, so the heartbeat declares it lost. A beat
that finds the lock held by someone else (taken over, or removed by `snail unlock --force`) declares it lost at
once. Losing the lock never kills anything: `lost` is set and `check()` raises LockLost at the engine's next
safe point, where the engine rolls back or records what it deployed and exits 4."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import structlog
from tenacity import RetryCallState, Retrying, retry_if_exception_type, wait_exponential

from orchestrator.clock import Clock, SystemClock
from orchestrator.errors import LockLost
from orchestrator.state.base import StateStore

log = structlog.get_logger(__name__)

SAFETY = 0.1  # give up this fraction of the lease early: an observer may only take over after the whole lease


class Heartbeat:
    """Keeps the lease alive while a run works; `lost` is set (and `check()` raises) when it no longer holds."""

    def __init__(
        self,
        store: StateStore,
        service: str,
        run_id: str,
        lease: float,
        *,
        clock: Clock | None = None,
        interval: float | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.store = store
        self.service = service
        self.run_id = run_id
        self.lease = lease
        self.lost = threading.Event()
        self.reason = ""
        self.taken_by: dict[str, Any] | None = None
        self._clock = clock or SystemClock()
        self._interval = interval if interval is not None else max(1.0, lease / 3)
        self._stop = threading.Event()
        self._sleep = sleep or self._nap  # retries end early when the run ends
        self._last_ok = self._clock.monotonic()
        self._wait = wait_exponential(multiplier=0.5, max=max(0.5, self._interval))
        self._thread = threading.Thread(target=self._loop, name=f"heartbeat-{run_id}", daemon=True)

    # ---------------------------------------------------------------- the beat
    def _deadline(self) -> float:
        return self._last_ok + self.lease * (1 - SAFETY)

    def _give_up(self, state: RetryCallState) -> bool:
        return self._stop.is_set() or self._clock.monotonic() >= self._deadline()

    def _nap(self, seconds: float) -> None:
        self._stop.wait(seconds)

    def _back_off(self, state: RetryCallState) -> float:
        # exponential, but never past the deadline: the last try happens before the lease can be taken over
        wanted = self._wait(state)
        return max(0.0, min(wanted, self._deadline() - self._clock.monotonic()))

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "heartbeat_retry", service=self.service, run_id=self.run_id, attempt=state.attempt_number, error=str(exc)
        )

    def beat(self) -> bool:
        """Renew the lease once (retrying within its remaining budget); False, with `lost` set, if it is gone."""
        if self.lost.is_set():
            return False
        retrying = Retrying(
            stop=self._give_up,
            wait=self._back_off,
            retry=retry_if_exception_type(Exception),
            sleep=self._sleep,
            before_sleep=self._log_retry,
            reraise=True,
        )
        # The lease counts from when the beat was sent, not when its answer came back: an observer may have seen the
        # new counter (and started its own count) as soon as the write landed.
        sent = self._clock.monotonic()
        try:
            held = retrying(self.store.heartbeat, self.service, self.run_id, self.lease, self._clock.now().timestamp())
        except Exception as exc:
            if self._stop.is_set():
                return True  # the run ended while we retried: nothing is lost
            since = self._clock.monotonic() - self._last_ok
            self._lose(
                f"the lock's heartbeat failed for {since:.0f}s of its {self.lease:g}s lease ({type(exc).__name__}: "
                f"{exc}); another run may take the lock over, so this run stops",
                None,
            )
            return False
        if not held:
            if self._stop.is_set():
                return True  # the run ended and released its lock while this beat was in flight
            self._lose_to_whoever_holds_it()
            return False
        self._last_ok = sent
        return True

    def _lose_to_whoever_holds_it(self) -> None:
        try:
            row = self.store.lock_state(self.service)
        except Exception:  # who took it is a detail: the loss itself is certain
            row = None
        if row is None:
            self._lose("the lock was removed while this run held it (`snail unlock --force`?); this run stops", None)
            return
        h = row.holder
        self._lose(
            f"run {h.get('run_id')} ({h.get('user')}@{h.get('host')}, {h.get('command')} since {h.get('since')}) "
            "took over the lock while this run held it; this run stops",
            h,
        )

    def _lose(self, reason: str, taken_by: dict[str, Any] | None) -> None:
        self.reason, self.taken_by = reason, taken_by
        self.lost.set()
        log.error("lock_lost", service=self.service, run_id=self.run_id, reason=reason)

    # ---------------------------------------------------------------- what the engine calls
    def check(self) -> None:
        """Raise LockLost if the lock is lost, or overdue (no good beat for nearly a lease: a beat is stuck)."""
        if not self.lost.is_set() and not self._stop.is_set() and self._clock.monotonic() >= self._deadline():
            since = self._clock.monotonic() - self._last_ok
            self._lose(f"the lock's heartbeat has not succeeded for {since:.0f}s of its {self.lease:g}s lease", None)
        if self.lost.is_set():
            raise LockLost(self.reason, taken_by=self.taken_by)

    def fence(self, operation: str) -> None:
        """Before each attempt of a call that changes the service: raise LockLost once the lease may have expired
        (lost, or no good beat for nearly a lease by our own monotonic clock), whatever the engine's checkpoints do.
        An attempt that starts before then lasts at most its call bound, which a takeover waits out."""
        if self._stop.is_set():
            return
        if not self.lost.is_set() and self._clock.monotonic() >= self._deadline():
            since = self._clock.monotonic() - self._last_ok
            self._lose(f"the lock's heartbeat has not succeeded for {since:.0f}s of its {self.lease:g}s lease", None)
        if self.lost.is_set():
            raise LockLost(f"{operation} not sent: {self.reason}", taken_by=self.taken_by)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            if not self.beat():
                return

    def __enter__(self) -> Heartbeat:
        self._last_ok = self._clock.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=5)  # a beat in flight finishes before the lock is released
