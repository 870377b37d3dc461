"""Taking a service's lock: free, ours, a dead process on this host, or a lease whose heartbeat stopped.

Expiry never trusts wall clocks across hosts. The lock row carries a heartbeat counter that its holder moves
every lease/3; an observer takes the lock over only when the counter (the row's token) has not moved for the
lease duration as measured by the observer's OWN monotonic clock. A host whose clock is 400 s ahead therefore
sees a live lock as live: the counter keeps moving.

What an observer has seen is kept:
- in memory while `acquire(wait=...)` waits (`MemoryObservations`);
- in a small local file for repeated CLI calls (`FileObservations`, e.g. .snail/lock-observed.json): a `snail
  run` that finds the lock held records "token T first seen at monotonic M (boot B)"; a later call that finds
  the same token at M + lease takes over. CLOCK_MONOTONIC is system-wide, so separate processes on one host
  agree on it; the boot id makes a record from before a reboot worthless (it is discarded).

Every takeover is one conditional write on the token observed (`store.take_over`), so of two runners that
both judge a lock dead, exactly one gets it and the other is told who did.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import structlog

from orchestrator.clock import Clock, SystemClock
from orchestrator.errors import Locked
from orchestrator.procs import boot_id, pid_alive, process_start
from orchestrator.state.base import LockRow, StateStore

log = structlog.get_logger(__name__)

POLL = 1.0  # seconds between two looks at a held lock while waiting


@dataclass(frozen=True)
class TakenOver:
    """The holder whose lock we took, and why we could."""

    previous: dict[str, Any]
    reason: Literal["dead_process", "expired"]
    detail: str

    def message(self) -> str:
        """One line for the trail's lock_taken_over event."""
        p = self.previous
        return (
            f"took over the lock of run {p.get('run_id')} ({self.detail}; "
            f"{p.get('user')}@{p.get('host')}, {p.get('command')} since {p.get('since')})"
        )


@dataclass(frozen=True)
class LockWait:
    """What a waiting acquirer knows at one look (for a countdown display)."""

    holder: dict[str, Any]
    beats: int
    waited: float  # seconds we have waited so far
    remaining: float  # seconds we will still wait before giving up
    still_for: float  # seconds this machine has seen the holder's counter unchanged
    expires_in: float  # seconds until the lease counts as expired if the counter stays still


class Observations(Protocol):
    """Where an observer keeps when it first saw a lock token (on its own monotonic clock)."""

    def first_seen(self, service: str, token: str, now: float) -> float: ...
    def forget(self, service: str) -> None: ...


@dataclass
class MemoryObservations:
    """Observations for the life of one process (a waiting acquirer)."""

    seen: dict[str, tuple[str, float]] = field(default_factory=dict)

    def first_seen(self, service: str, token: str, now: float) -> float:
        """When this token was first seen (now, if it is new or changed)."""
        old = self.seen.get(service)
        if old is None or old[0] != token:
            self.seen[service] = (token, now)
            return now
        return old[1]

    def forget(self, service: str) -> None:
        """Drop what we saw (after a takeover)."""
        self.seen.pop(service, None)


class FileObservations:
    """Observations that outlive the process: a JSON file, valid for this boot of this host only.

    Writes are atomic (rename); two CLI calls that race may each keep their own record, which only ever
    restarts an observation (a later takeover), never hastens one."""

    def __init__(self, path: str | Path, clock_is_system: bool = True) -> None:
        self.path = Path(path)
        self.boot = boot_id() if clock_is_system else "test"

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) and data.get("boot") == self.boot else {}

    def _save(self, data: dict[str, Any]) -> None:
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.new")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(data))
            os.replace(tmp, self.path)
        except OSError as exc:  # a record we cannot keep only delays a takeover
            log.warning("lock_observation_not_saved", path=str(self.path), error=str(exc))
            tmp.unlink(missing_ok=True)

    def first_seen(self, service: str, token: str, now: float) -> float:
        """When this token was first seen by any call on this host since boot (now, if it is new)."""
        data = self._load()
        locks = data.setdefault("locks", {})
        old = locks.get(service)
        seen = old.get("seen") if isinstance(old, dict) and old.get("token") == token else None
        if isinstance(seen, (int, float)) and seen <= now:  # a record from the future is not ours to trust
            return float(seen)
        locks[service] = {"token": token, "seen": now}
        data["boot"] = self.boot
        self._save(data)
        return now

    def forget(self, service: str) -> None:
        """Drop what we saw (after a takeover)."""
        data = self._load()
        if data.get("locks", {}).pop(service, None) is not None:
            self._save(data)


def holder_record(run_id: str, command: str, since: str) -> dict[str, Any]:
    """Who we are, as the lock shows it: run, user@host, this process (pid and start time) and this boot."""
    pid = os.getpid()
    return {
        "run_id": run_id,
        "user": getpass.getuser(),
        "host": socket.gethostname(),
        "pid": pid,
        "pid_start": process_start(pid),
        "boot": boot_id(),
        "command": command,
        "since": since,
    }


def holder_alive_here(holder: dict[str, Any]) -> bool | None:
    """True/False if the holder ran on this host (we can look at its process); None if it is elsewhere."""
    if holder.get("host") != socket.gethostname() or not holder.get("pid"):
        return None
    if holder.get("boot") and boot_id() and holder["boot"] != boot_id():
        return False  # recorded before this host rebooted: that process is gone
    try:
        return pid_alive(int(holder["pid"]), holder.get("pid_start"))
    except (TypeError, ValueError):
        return None


def _moved(row: LockRow) -> str:
    """What must stay still for a lease: the counter, and the renewal time a holder from before the counter
    (an older snail, which only moved expires_at) writes on each beat."""
    return f"{row.token}@{row.expires_at!r}"


def _try_take_over(
    store: StateStore,
    row: LockRow,
    holder: dict[str, Any],
    lease: float,
    clock: Clock,
    observations: Observations,
    alive_here: Callable[[dict[str, Any]], bool | None],
) -> TakenOver | bool:
    """A TakenOver if we took the lock; True if it changed under us (look again); False if it is live."""
    if alive_here(row.holder) is False:
        if store.take_over(row.service, row.token, holder, lease, clock.now().timestamp()):
            observations.forget(row.service)
            return TakenOver(row.holder, "dead_process", f"its process {row.holder.get('pid')} is gone")
        return True
    now = clock.monotonic()
    still = now - observations.first_seen(row.service, _moved(row), now)
    need = max(lease, row.lease)
    if still >= need:
        if store.take_over(row.service, row.token, holder, lease, clock.now().timestamp()):
            observations.forget(row.service)
            detail = (
                f"its heartbeat counter stayed at {row.beats} for {still:.0f}s on this machine's monotonic clock; "
                f"lease {need:g}s"
            )
            return TakenOver(row.holder, "expired", detail)
        return True
    return False


def _locked(row: LockRow, still: float, need: float) -> Locked:
    err = Locked(row.holder)
    alive = holder_alive_here(row.holder)
    if alive:
        err.message += f"; its process {row.holder.get('pid')} is alive on this host"
    else:
        err.message += (
            f"; if it is dead, its lease expires once this machine has seen its heartbeat counter ({row.beats}) "
            f"still for {need:g}s (seen still for {still:.0f}s so far): run again then, or wait for the lock"
        )
    err.data.update(holder=row.holder, beats=row.beats, still_for=still, lease=need)
    return err


def acquire(
    store: StateStore,
    service: str,
    holder: dict[str, Any],
    lease: float,
    *,
    wait: float = 0.0,
    clock: Clock,
    on_wait: Callable[[LockWait], None] | None = None,
    observations: Observations | None = None,
    alive_here: Callable[[dict[str, Any]], bool | None] = holder_alive_here,
    poll: float = POLL,
    on_busy: Callable[[], None] | None = None,
) -> TakenOver | None:
    """Take the service's lock, waiting up to `wait` seconds; None if it was free, TakenOver if we replaced a holder.
    `on_busy` is called each time the lock was found held (another run may have changed the service meanwhile).

    Raises Locked (exit 4) naming the holder when it is still held after `wait`."""
    seen = observations if observations is not None else default_observations(store, clock)
    start = clock.monotonic()
    relooked = False
    while True:
        try:
            store.acquire_lock(service, holder, lease, clock.now().timestamp())  # wall time: display only
            return None
        except Locked:
            if on_busy is not None:
                on_busy()
        row = store.lock_state(service)
        if row is None:
            continue  # released between our two looks: try again
        taken = _try_take_over(store, row, holder, lease, clock, seen, alive_here)
        if isinstance(taken, TakenOver):
            log.warning("lock_taken_over", service=service, previous=row.holder.get("run_id"), why=taken.detail)
            return taken
        if taken:
            continue  # the row changed under us (released, renewed or taken by another): look again
        now = clock.monotonic()
        waited, need = now - start, max(lease, row.lease)
        still = now - seen.first_seen(service, _moved(row), now)
        if waited >= wait:
            fresh = store.lock_state(service)  # name who holds it now, not who held it when we first looked
            if fresh is None or (fresh.token != row.token and not relooked):
                relooked = True
                continue  # freed or changed hands while we looked: one more look
            raise _locked(fresh, still if fresh.token == row.token else 0.0, max(lease, fresh.lease))
        if on_wait is not None:
            on_wait(LockWait(row.holder, row.beats, waited, wait - waited, still, max(0.0, need - still)))
        clock.sleep(min(poll, wait - waited))


def observations_for(state_dir: str | Path) -> FileObservations:
    """The observation record a CLI run keeps next to its local state."""
    return FileObservations(Path(state_dir) / "lock-observed.json")


def default_observations(store: Any, clock: Clock) -> Observations:
    """Next to an SQLite store's file when time is real (repeated CLI calls add up); else in memory.

    A fake clock's monotonic values mean nothing to another process, so they are never written down."""
    path = getattr(store, "path", None)
    if isinstance(clock, SystemClock) and isinstance(path, Path):
        return observations_for(path.parent)
    return MemoryObservations()
