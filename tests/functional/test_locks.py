"""Locks that cannot be lost silently (issue 12 §3), on SQLite and on DynamoDB (moto).

Deterministic interleavings through the store API, `engine.lock.acquire` and the `Heartbeat` on fake clocks:
a lost lease, a host whose clock is 400 s ahead, takeover races. Then real processes where a real process
matters: racing takeovers of a dead holder, `snail unlock --force` against a live and a killed holder, and the
CLI on corrupt state files."""

from __future__ import annotations

import collections
import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from orchestrator.clock import FakeClock
from orchestrator.engine import lock
from orchestrator.engine.lease import Heartbeat
from orchestrator.engine.lock import FileObservations, LockWait, MemoryObservations, TakenOver, acquire
from orchestrator.errors import AwsError, ExitCode, Locked, LockLost, StateBusy, StateCorrupt
from orchestrator.state.base import RunRecord, TrailEvent
from orchestrator.state.sqlite import SqliteStore
from tests.harness.cli import snail, start_snail
from tests.harness.pipeline import image, write_pipeline

LEASE = 60.0
SVC = "svc"
RACES: collections.Counter[str] = collections.Counter()  # "won"/"lost" over every race below, for the report
# the report at the end counts the races of this module: under xdist (--dist loadgroup) they all run in one worker
pytestmark = [pytest.mark.process, pytest.mark.xdist_group("lock-races")]


def holder(run_id: str, host: str = "host-a", **extra: Any) -> dict[str, Any]:
    """A lock holder on some other host (its process cannot be looked at from here)."""
    return {"run_id": run_id, "user": "ci", "host": host, "pid": 1, "command": "run", "since": "t0", **extra}


@pytest.fixture(params=["sqlite", "dynamodb"])
def stores(request, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A factory of store instances sharing one backend (each instance plays one runner)."""
    if request.param == "sqlite":
        made: list[SqliteStore] = []

        def make_sqlite() -> SqliteStore:
            made.append(SqliteStore(tmp_path / "state.db"))
            return made[-1]

        yield make_sqlite
        for s in made:
            s.close()
    else:
        import boto3
        from moto import mock_aws

        from orchestrator.state.dynamodb import DynamoStore, create_table

        serialise_moto_writes(monkeypatch)
        with mock_aws():
            create_table(boto3.client("dynamodb", region_name="us-east-1"), "snail-state", wait_delay=0)
            yield lambda: DynamoStore(boto3.client("dynamodb", region_name="us-east-1"), "snail-state")


def serialise_moto_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Real DynamoDB applies writes to one item one at a time; moto does not, so its write handlers get a lock."""
    from moto.dynamodb.responses import DynamoHandler

    write_lock = threading.Lock()
    for name in ("put_item", "update_item", "delete_item", "transact_write_items"):
        original = getattr(DynamoHandler, name)

        def serialised(self, _original=original):  # noqa: ANN001, ANN202
            with write_lock:
                return _original(self)

        monkeypatch.setattr(DynamoHandler, name, serialised)


def never_here(h: dict[str, Any]) -> bool | None:
    """Every holder in these interleavings runs on another host."""
    return None


# ---------------------------------------------------------------- skew: wall clocks are never trusted
def skewed_clock(ahead: float = 400) -> FakeClock:
    """A fake clock whose wall time is `ahead` seconds ahead of this machine's."""
    return FakeClock(start=datetime.now(timezone.utc) + timedelta(seconds=ahead))


def test_host_400s_ahead_never_takes_over_a_live_lock(stores) -> None:
    """B's wall clock is 400 s ahead; A keeps beating: B waits 5 leases on its own clock and never gets the lock."""
    a, b = stores(), stores()
    a.acquire_lock(SVC, holder("A"), LEASE, now=time.time())
    clock = skewed_clock()  # B's clock; A beats on a clock of its own, not ahead
    a_clock = FakeClock(start=datetime.now(timezone.utc))
    beat_a = Heartbeat(a, SVC, "A", LEASE, clock=a_clock, sleep=a_clock.sleep)
    waits: list[LockWait] = []

    def a_lives(w: LockWait) -> None:
        waits.append(w)
        if len(waits) % 20 == 0:  # A beats every 20 of B's seconds (lease/3)
            assert beat_a.beat()

    with pytest.raises(Locked) as exc:
        acquire(
            b, SVC, holder("B", "host-b"), LEASE, wait=5 * LEASE, clock=clock, on_wait=a_lives, alive_here=never_here
        )
    assert clock.monotonic() >= 5 * LEASE
    assert max(w.still_for for w in waits) < LEASE, "the counter kept moving, so the lease never looked stale"
    assert "run A by ci@host-a" in str(exc.value)
    assert a.lock_state(SVC).run_id == "A"
    beat_a.check()  # A never lost it
    RACES["won"] += 1


def test_repeated_cli_calls_from_a_skewed_host_never_take_over(stores, tmp_path: Path) -> None:
    """B (400 s ahead) calls acquire(wait=0) every 10 s for 10 leases, observations in a file: A keeps the lock."""
    a, b = stores(), stores()
    a.acquire_lock(SVC, holder("A"), LEASE, now=time.time())
    clock = skewed_clock()
    seen = FileObservations(tmp_path / "seen.json", clock_is_system=False)
    for step in range(60):
        clock.advance(10)
        if step % 2 == 0:
            assert a.heartbeat(SVC, "A", LEASE)
        with pytest.raises(Locked):
            acquire(b, SVC, holder("B", "host-b"), LEASE, clock=clock, observations=seen, alive_here=never_here)
    assert a.lock_state(SVC).run_id == "A"
    RACES["won"] += 1


def test_dead_remote_holder_expires_after_a_lease_on_the_observers_clock(stores) -> None:
    """A stops beating (its host died): B takes over once B's monotonic clock saw the counter still for a lease."""
    a, b = stores(), stores()
    a.acquire_lock(SVC, holder("A"), LEASE)
    a.heartbeat(SVC, "A", LEASE)
    clock = FakeClock()
    taken = acquire(b, SVC, holder("B", "host-b"), LEASE, wait=2 * LEASE, clock=clock, alive_here=never_here)
    assert isinstance(taken, TakenOver) and taken.reason == "expired"
    assert LEASE <= clock.monotonic() <= LEASE + lock.POLL
    assert "heartbeat counter stayed at 1" in taken.message() and "run A" in taken.message()
    assert b.lock_state(SVC).run_id == "B"


def test_repeated_cli_calls_take_over_a_dead_holder_through_the_observation_file(stores, tmp_path: Path) -> None:
    """wait=0 twice, a lease apart on this host's monotonic clock: the first is refused, the second takes over."""
    a, b = stores(), stores()
    a.acquire_lock(SVC, holder("A"), LEASE)
    clock = FakeClock()
    path = tmp_path / "seen.json"
    with pytest.raises(Locked) as exc:
        acquire(
            b,
            SVC,
            holder("B1", "host-b"),
            LEASE,
            clock=clock,
            observations=FileObservations(path, False),
            alive_here=never_here,
        )
    assert "still for 60s (seen still for 0s so far)" in str(exc.value)
    clock.advance(LEASE)
    taken = acquire(
        b,
        SVC,
        holder("B2", "host-b"),
        LEASE,
        clock=clock,
        observations=FileObservations(path, False),
        alive_here=never_here,
    )
    assert taken is not None and taken.reason == "expired"


def test_observation_from_another_boot_is_discarded(tmp_path: Path) -> None:
    """A record written before a reboot (other boot id) is ignored: monotonic times do not survive a reboot."""
    path = tmp_path / "seen.json"
    path.write_text('{"boot": "an-older-boot", "locks": {"svc": {"token": "A#3", "seen": 1.0}}}')
    assert FileObservations(path).first_seen("svc", "A#3", 5000.0) == 5000.0
    assert FileObservations(path).first_seen("svc", "A#3", 6000.0) == 5000.0


def test_cli_calls_on_sqlite_keep_their_observations_next_to_the_state_file(tmp_path: Path) -> None:
    """With the real clock an SQLite store's observations go to .snail/lock-observed.json; a fake clock's never."""
    from orchestrator.clock import SystemClock

    store = SqliteStore(tmp_path / ".snail" / "state.db")
    store.acquire_lock(SVC, holder("A"), LEASE)
    with pytest.raises(Locked):
        acquire(store, SVC, holder("B", "host-b"), LEASE, clock=SystemClock(), alive_here=never_here)
    record = (tmp_path / ".snail" / "lock-observed.json").read_text()
    assert '"token": "A#0@' in record
    assert isinstance(lock.default_observations(store, FakeClock()), MemoryObservations)


def test_a_holder_from_an_older_snail_that_only_renews_expires_at_is_live(tmp_path: Path) -> None:
    """During an upgrade an older holder moves only expires_at, not the counter: that still counts as a beat."""
    store = SqliteStore(tmp_path / "state.db")
    store.acquire_lock(SVC, holder("old"), LEASE, now=1000)
    clock = FakeClock()
    seen = MemoryObservations()
    for step in range(1, 13):  # six leases; the old holder renews every 20 s the only way it knows
        clock.advance(10)
        if step % 2 == 0:
            raw = sqlite3.connect(str(tmp_path / "state.db"))
            raw.execute("UPDATE locks SET expires_at = ? WHERE service = ?", (1000 + 10 * step + LEASE, SVC))
            raw.commit()
            raw.close()
        with pytest.raises(Locked):
            acquire(store, SVC, holder("B", "host-b"), LEASE, clock=clock, observations=seen, alive_here=never_here)
    assert store.lock_state(SVC).run_id == "old"


# ---------------------------------------------------------------- takeover races
def test_two_observers_of_one_stale_lease_exactly_one_takes_over(stores) -> None:
    """B and C both judge A's lease expired from the same token; B's conditional write wins, C is told B holds it."""
    a, b, c = stores(), stores(), stores()
    a.acquire_lock(SVC, holder("A"), LEASE)
    clock = FakeClock()
    seen_b, seen_c = MemoryObservations(), MemoryObservations()
    for s, seen in ((b, seen_b), (c, seen_c)):  # both look now ...
        with pytest.raises(Locked):
            acquire(s, SVC, holder("x", "host-x"), LEASE, clock=clock, observations=seen, alive_here=never_here)
    clock.advance(LEASE)  # ... and again a lease later: both see A's counter still
    row_b, row_c = b.lock_state(SVC), c.lock_state(SVC)
    assert row_b.token == row_c.token
    assert b.take_over(SVC, row_b.token, holder("B", "host-b"), LEASE)
    assert not c.take_over(SVC, row_c.token, holder("C", "host-c"), LEASE)
    with pytest.raises(Locked) as exc:  # C looks again: a new token, a fresh observation
        acquire(c, SVC, holder("C", "host-c"), LEASE, clock=clock, observations=seen_c, alive_here=never_here)
    assert "run B by ci@host-b" in str(exc.value)
    RACES["won"] += 1


def test_threaded_takeover_race_has_one_winner(stores) -> None:
    """Four runners whose observations say A is dead call acquire at the same moment, 10 rounds: one winner each."""
    for round_ in range(10):
        service = f"svc{round_}"
        runners = [stores() for _ in range(4)]
        runners[0].acquire_lock(service, holder("A"), LEASE)
        token = lock._moved(runners[0].lock_state(service))
        clock = FakeClock()
        clock.advance(LEASE)
        barrier = threading.Barrier(4)
        out: dict[int, Any] = {}

        def go(
            i: int, service: str = service, token: str = token, barrier=barrier, runners=runners, clock=clock, out=out
        ) -> None:  # noqa: ANN001
            seen = MemoryObservations({service: (token, 0.0)})
            barrier.wait()
            try:
                out[i] = acquire(
                    runners[i],
                    service,
                    holder(f"R{i}", f"h{i}"),
                    LEASE,
                    clock=clock,
                    observations=seen,
                    alive_here=never_here,
                )
            except Locked as exc:
                out[i] = exc

        threads = [threading.Thread(target=go, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        winners = [i for i, v in out.items() if isinstance(v, TakenOver)]
        ok = len(winners) == 1 and all(
            isinstance(v, Locked) and v.holder["run_id"] == f"R{winners[0]}" for i, v in out.items() if i != winners[0]
        )
        RACES["won" if ok else "lost"] += 1
        assert ok, out
        assert runners[1].lock_state(service).run_id == f"R{winners[0]}"


def test_dead_process_on_this_host_is_taken_over_at_once(stores) -> None:
    """A holder on this host whose process is gone is taken over without waiting for its lease."""
    a, b = stores(), stores()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    a.acquire_lock(SVC, lock.holder_record("A", "run", "t0") | {"pid": gone.pid, "pid_start": None}, LEASE)
    clock = FakeClock()
    taken = acquire(b, SVC, holder("B"), LEASE, clock=clock)
    assert taken is not None and taken.reason == "dead_process" and clock.monotonic() == 0
    assert f"its process {gone.pid} is gone" in taken.message()


def test_live_process_on_this_host_is_never_taken_over(stores) -> None:
    """A holder on this host whose process is alive keeps the lock; the refusal names its pid."""
    a, b = stores(), stores()
    a.acquire_lock(SVC, lock.holder_record("A", "run", "t0"), LEASE)
    with pytest.raises(Locked) as exc:
        acquire(b, SVC, holder("B"), LEASE, clock=FakeClock())
    assert f"its process {os.getpid()} is alive on this host" in str(exc.value)


def test_recycled_pid_is_not_mistaken_for_the_holder(stores) -> None:
    """A live pid with another start time is a different process: the recorded holder is dead."""
    a, b = stores(), stores()
    me = lock.holder_record("A", "run", "t0")
    a.acquire_lock(SVC, {**me, "pid_start": (me["pid_start"] or 0) + 12345}, LEASE)
    taken = acquire(b, SVC, holder("B"), LEASE, clock=FakeClock())
    assert taken is not None and taken.reason == "dead_process"


# ---------------------------------------------------------------- the heartbeat
def test_heartbeat_finds_the_lock_taken_and_the_run_stops(stores) -> None:
    """A's lease is taken over while A is slow: A's next beat finds it, lost is set, check() raises LockLost (exit 4)."""
    a, b = stores(), stores()
    a.acquire_lock(SVC, holder("A"), LEASE)
    clock = FakeClock()
    hb = Heartbeat(a, SVC, "A", LEASE, clock=clock, sleep=clock.sleep)
    assert hb.beat() and not hb.lost.is_set()
    hb.check()
    assert b.take_over(SVC, b.lock_state(SVC).token, holder("B", "host-b", since="t9"), LEASE)
    assert not hb.beat()
    assert hb.lost.is_set()
    with pytest.raises(LockLost) as exc:
        hb.check()
    assert exc.value.exit_code == ExitCode.LOCKED == 4
    assert exc.value.taken_by["run_id"] == "B"
    assert "run B (ci@host-b, run since t9) took over the lock" in str(exc.value)
    RACES["won"] += 1


def test_heartbeat_finds_the_lock_removed(stores) -> None:
    """A lock removed under the holder (unlock --force elsewhere) is a lost lock too, and says so."""
    a = stores()
    a.acquire_lock(SVC, holder("A"), LEASE)
    hb = Heartbeat(a, SVC, "A", LEASE, clock=FakeClock())
    a.force_unlock(SVC)
    assert not hb.beat()
    with pytest.raises(LockLost, match="the lock was removed"):
        hb.check()


class Flaky:
    """A store whose heartbeat fails while `failing` is true (the rest is the real store)."""

    def __init__(self, store: Any, clock: FakeClock, fail_until: float) -> None:
        self.store, self.clock, self.fail_until = store, clock, fail_until
        self.failures = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def heartbeat(self, *args: Any, **kwargs: Any) -> bool:
        """Throttled until fail_until on the fake clock, then the real heartbeat."""
        if self.clock.monotonic() < self.fail_until:
            self.failures += 1
            raise AwsError("dynamodb:UpdateItem", "ThrottlingException", "Rate exceeded")
        return self.store.heartbeat(*args, **kwargs)


def test_transient_heartbeat_failures_are_retried_within_the_lease(stores) -> None:
    """Beats throttled for 20 s are retried (tenacity, on our clock) and the lease is kept."""
    a = stores()
    a.acquire_lock(SVC, holder("A"), LEASE)
    clock = FakeClock()
    flaky = Flaky(a, clock, fail_until=20)
    hb = Heartbeat(flaky, SVC, "A", LEASE, clock=clock, sleep=clock.sleep)
    assert hb.beat()
    assert flaky.failures >= 3 and clock.monotonic() >= 20
    assert not hb.lost.is_set() and a.lock_state(SVC).beats == 1
    hb.check()


def test_persistent_heartbeat_failure_is_declared_lost_before_anyone_may_take_over(stores) -> None:
    """Beats fail for good: the holder gives up within its lease, before an observer's lease has run out."""
    a, b = stores(), stores()
    a.acquire_lock(SVC, holder("A"), LEASE)
    clock = FakeClock()
    hb = Heartbeat(Flaky(a, clock, fail_until=10**9), SVC, "A", LEASE, clock=clock, sleep=clock.sleep)
    with pytest.raises(Locked):  # an observer starts watching A's counter now
        acquire(
            b,
            SVC,
            holder("B", "host-b"),
            LEASE,
            clock=clock,
            observations=(seen := MemoryObservations()),
            alive_here=never_here,
        )
    assert not hb.beat()
    lost_at = clock.monotonic()
    assert lost_at < LEASE
    with pytest.raises(LockLost) as exc:
        hb.check()
    assert exc.value.taken_by is None and "ThrottlingException" in str(exc.value)
    with pytest.raises(Locked):
        acquire(b, SVC, holder("B", "host-b"), LEASE, clock=clock, observations=seen, alive_here=never_here)
    clock.advance(LEASE - lost_at)
    taken = acquire(b, SVC, holder("B", "host-b"), LEASE, clock=clock, observations=seen, alive_here=never_here)
    assert taken is not None and clock.monotonic() >= LEASE > lost_at
    RACES["won"] += 1


def test_check_raises_when_no_beat_succeeded_for_most_of_the_lease(stores) -> None:
    """A beat stuck in a call is noticed at the next safe point: no good beat for 90 % of the lease is a loss."""
    a = stores()
    a.acquire_lock(SVC, holder("A"), LEASE)
    clock = FakeClock()
    hb = Heartbeat(a, SVC, "A", LEASE, clock=clock)
    clock.advance(0.5 * LEASE)
    hb.check()
    clock.advance(0.45 * LEASE)
    with pytest.raises(LockLost, match="has not succeeded for 57s"):
        hb.check()


def test_heartbeat_thread_keeps_the_lease_and_stops_cleanly(stores) -> None:
    """The real thread beats every interval; leaving the block stops it before the lock is released."""
    a = stores()
    a.acquire_lock(SVC, holder("A"), LEASE)
    with Heartbeat(a, SVC, "A", LEASE, interval=0.05) as hb:
        deadline = time.time() + 10
        while a.lock_state(SVC).beats < 3 and time.time() < deadline:
            time.sleep(0.05)
        hb.check()
    assert a.lock_state(SVC).beats >= 3
    assert not hb._thread.is_alive()


# ---------------------------------------------------------------- SQLite: threads, busy, corrupt files
def test_heartbeat_thread_never_shares_the_main_threads_transaction(tmp_path: Path) -> None:
    """The stress case: 600 writes on the main thread while the heartbeat beats nonstop: no error at all."""
    store = SqliteStore(tmp_path / "state.db")
    store.acquire_lock(SVC, holder("A"), LEASE)
    store.start_run(RunRecord("A", SVC, "run", "running", "t0"))
    errors: list[str] = []
    stop = threading.Event()

    def beat() -> None:
        while not stop.is_set():
            try:
                store.heartbeat(SVC, "A", LEASE)
            except Exception as exc:  # noqa: BLE001 - counted, that is the test
                errors.append(f"{type(exc).__name__}: {exc}")

    t = threading.Thread(target=beat)
    t.start()
    try:
        for i in range(600):
            store.append_event(TrailEvent("A", SVC, "t", "gate_passed", f"e{i}"))
    finally:
        stop.set()
        t.join()
    assert errors == []
    assert len(store.events(SVC, "A")) == 600 and store.lock_state(SVC).beats >= 1


def test_database_locked_beyond_the_busy_timeout_is_a_clear_error(tmp_path: Path) -> None:
    """Another process holding a write transaction past the busy timeout: StateBusy naming the file, exit 4."""
    path = tmp_path / "state.db"
    store = SqliteStore(path, busy_timeout=0.2)
    store.acquire_lock(SVC, holder("A"), LEASE)
    other = sqlite3.connect(str(path), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StateBusy) as exc:
            store.append_event(TrailEvent("A", SVC, "t", "noop", "x"))
        assert str(path) in str(exc.value) and "stayed locked by another process for more than 0.2s" in str(exc.value)
        assert exc.value.exit_code == 4
        # a heartbeat in the same busy spell is retried, and the other transaction ends during its back-off
        clock = FakeClock()

        def back_off(seconds: float) -> None:
            clock.sleep(seconds)
            if other.in_transaction:
                other.execute("COMMIT")

        hb = Heartbeat(store, SVC, "A", LEASE, clock=clock, sleep=back_off)
        assert hb.beat() and not hb.lost.is_set()
        assert store.lock_state(SVC).beats == 1
    finally:
        if other.in_transaction:
            other.execute("COMMIT")
        other.close()


def test_an_older_state_file_gains_the_lock_counter(tmp_path: Path) -> None:
    """A state.db from before the counter (locks without beats/lease) opens, its lock reads with beats 0."""
    path = tmp_path / "state.db"
    db = sqlite3.connect(str(path))
    db.executescript(
        "CREATE TABLE locks (service TEXT PRIMARY KEY, run_id TEXT NOT NULL, holder TEXT NOT NULL, expires_at REAL NOT NULL);"
        "INSERT INTO locks VALUES ('svc', 'old', '{\"run_id\": \"old\"}', 5.0);"
    )
    db.close()
    row = SqliteStore(path).lock_state(SVC)
    assert (row.run_id, row.beats, row.token) == ("old", 0, "old#0")


def _corrupt(case: str, root: Path) -> Path:
    """Damage the state of a pipeline folder one way; returns the path the error must name."""
    state = root / ".snail"
    db = state / "state.db"
    if case == "snail-is-a-file":
        state.write_text("not a folder")
        return state
    state.mkdir()
    if case == "directory":
        db.mkdir()
        return db
    if case == "zero-bytes":
        db.write_bytes(b"")
        return db
    if case == "garbage":
        db.write_bytes(os.urandom(8192))
        return db
    s = SqliteStore(db)
    s.start_run(RunRecord("r1", "shine-api-gateway", "run", "succeeded", "t0"))
    for i in range(400):
        s.append_event(TrailEvent("r1", "shine-api-gateway", "t", "noop", "x" * 200 + str(i)))
    s.close()
    if case == "truncated":
        data = db.read_bytes()
        db.write_bytes(data[: len(data) // 2 + 100])
    elif case == "truncated-at-a-page":
        data = db.read_bytes()
        db.write_bytes(data[: 4096 * 3])
    elif case == "wrong-schema":
        db.unlink()
        other = sqlite3.connect(str(db))
        other.executescript("CREATE TABLE runs (id INTEGER PRIMARY KEY, name TEXT NOT NULL);")
        other.close()
    elif case == "bad-json-row":
        other = sqlite3.connect(str(db))
        other.execute("UPDATE runs SET phases = '{not json'")
        other.commit()
        other.close()
    return db


CORRUPT = [
    "snail-is-a-file",
    "directory",
    "zero-bytes",
    "garbage",
    "truncated",
    "truncated-at-a-page",
    "wrong-schema",
    "bad-json-row",
]


@pytest.mark.parametrize("case", CORRUPT)
def test_corrupt_state_is_a_clear_error_naming_the_file(case: str, tmp_path: Path) -> None:
    """Each way a state file breaks: `history` and `state show` exit 2 naming the file and the recovery, no
    traceback, and the file is left exactly as it was."""
    write_pipeline(tmp_path, {"health-only": "a"})
    where = _corrupt(case, tmp_path)
    before = where.read_bytes() if where.is_file() else None
    for command in (["history"], ["state", "show"]):
        r = snail(tmp_path, *command)
        assert r.returncode == 2, (command, r.stdout, r.stderr)
        assert "Traceback" not in r.stderr
        assert f"state store {where}" in r.stderr and "Nothing was changed" in r.stderr
        if case != "snail-is-a-file":
            assert "snail state sync" in r.stderr
    if case == "zero-bytes":
        assert "0 bytes" in r.stderr
    if before is not None:
        assert where.read_bytes() == before, "a state file snail refused must be left untouched"


def test_corrupt_state_through_the_store_api(tmp_path: Path) -> None:
    """The store raises StateCorrupt (exit 2) with the recovery: move the file aside, snail state sync."""
    (tmp_path / "state.db").write_bytes(b"")
    with pytest.raises(StateCorrupt) as exc:
        SqliteStore(tmp_path / "state.db")
    assert exc.value.exit_code == 2 and f"mv {tmp_path / 'state.db'}" in str(exc.value)


def test_concurrent_first_opens_never_see_a_half_made_file(tmp_path: Path) -> None:
    """Four processes creating the same new state.db at once: all open it (no 0-byte file is ever visible)."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        results = pool.map(_open_store, [str(tmp_path / "state.db")] * 4)
    assert results == ["ok"] * 4


def _open_store(path: str) -> str:
    try:
        SqliteStore(path).runs(SVC)
        return "ok"
    except Exception as exc:  # noqa: BLE001 - reported to the test
        return f"{type(exc).__name__}: {exc}"


# ---------------------------------------------------------------- real processes
HOLD = textwrap.dedent(
    """
    import sys, time
    from orchestrator.engine.lease import Heartbeat
    from orchestrator.engine.lock import holder_record
    from orchestrator.state.sqlite import SqliteStore
    store = SqliteStore(sys.argv[1])
    store.acquire_lock("shine-api-gateway", holder_record("r-holder", "run", "t0"), 10.0)
    with Heartbeat(store, "shine-api-gateway", "r-holder", 10.0, interval=0.1):
        print("held", flush=True)
        time.sleep(600)
    """
)


def test_unlock_force_refuses_a_live_holder_then_removes_a_killed_one(tmp_path: Path) -> None:
    """A real process holds the lock: unlock --force refuses (exit 4, pid, kill); after kill -9 it removes and records."""
    write_pipeline(tmp_path, {"health-only": "a"})
    db = tmp_path / ".snail" / "state.db"
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(db)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        refused = snail(tmp_path, "unlock", "--force")
        assert refused.returncode == 4, refused.stderr
        assert f"its process {proc.pid} is alive on this host" in refused.stderr
        assert f"`kill {proc.pid}`" in refused.stderr and "Traceback" not in refused.stderr
        assert SqliteStore(db).lock_state("shine-api-gateway").run_id == "r-holder"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    removed = snail(tmp_path, "unlock", "--force")
    assert removed.returncode == 0, removed.stderr
    assert "lock of run r-holder" in removed.stdout and "removed by" in removed.stdout
    store = SqliteStore(db)
    assert store.lock_state("shine-api-gateway") is None
    (event,) = [e for e in store.events("shine-api-gateway") if e.kind == "unlocked"]
    assert event.run_id == "r-holder" and event.data["holder"]["pid"] == proc.pid
    assert snail(tmp_path, "unlock", "--force").stdout.strip() == "no lock was held"


def test_unlock_force_is_conditional_on_what_it_read(stores) -> None:
    """If the holder renews between unlock's look and its delete, nothing is removed (the conditional write)."""
    a = stores()
    a.acquire_lock(SVC, holder("A"), LEASE)
    seen = a.lock_state(SVC)
    a.heartbeat(SVC, "A", LEASE)
    assert a.force_unlock(SVC, seen.token) is None
    assert a.lock_state(SVC).run_id == "A"


RACER = textwrap.dedent(
    """
    import json, os, sys, time
    from orchestrator.clock import SystemClock
    from orchestrator.engine.lock import acquire, holder_record, FileObservations
    from orchestrator.errors import Locked
    backend, where, run_id, gate, seen = sys.argv[1:6]
    if backend == "sqlite":
        from orchestrator.state.sqlite import SqliteStore
        store = SqliteStore(where)
    else:
        import boto3
        from orchestrator.state.dynamodb import DynamoStore
        store = DynamoStore(boto3.client("dynamodb", region_name="us-east-1", endpoint_url=where,
                            aws_access_key_id="t", aws_secret_access_key="t"), "snail-state")
    def wait_for(path):
        while not os.path.exists(path):
            time.sleep(0.005)
    print("READY", flush=True)
    wait_for(gate + ".go")  # every racer is loaded and waiting: they start within milliseconds of each other
    try:
        taken = acquire(store, "svc", holder_record(run_id, "run", "t0"), 10.0, clock=SystemClock(),
                        observations=FileObservations(seen))
        print("RESULT " + json.dumps({"run": run_id, "got": taken.reason if taken else "free"}), flush=True)
    except Locked as exc:
        print("RESULT " + json.dumps({"run": run_id, "locked_by": exc.holder["run_id"]}), flush=True)
    wait_for(gate + ".done")  # the winner stays alive (its pid is the lock's) until every racer has looked
    """
)


def _line(proc: subprocess.Popen, prefix: str) -> str:
    """The next stdout line of a racer that starts with prefix (structlog may print lines of its own)."""
    while True:
        line = proc.stdout.readline()
        assert line, proc.stderr.read()
        if line.startswith(prefix):
            return line[len(prefix) :].strip()


def _process_race(backend: str, where: str, tmp_path: Path, seed_dead: Any, rounds: int = 4, n: int = 4) -> None:
    import json

    for round_ in range(rounds):
        seen = seed_dead(round_)
        gate = str(tmp_path / f"gate{round_}")
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", RACER, backend, where, f"p{round_}-{i}", gate, str(seen)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in range(n)
        ]
        try:
            for proc in procs:
                _line(proc, "READY")
            Path(gate + ".go").touch()
            outs = [json.loads(_line(proc, "RESULT ")) for proc in procs]
        finally:
            Path(gate + ".done").touch()
            for proc in procs:
                proc.wait(timeout=60)
        winners = [o["run"] for o in outs if "got" in o]
        ok = len(winners) == 1 and all(o["locked_by"] == winners[0] for o in outs if "locked_by" in o)
        RACES["won" if ok else "lost"] += 1
        assert ok, outs


def test_processes_race_for_a_dead_holders_lock_on_sqlite(tmp_path: Path) -> None:
    """Four `snail`-like processes find a dead holder on this host at once: one takes over, three are told who."""
    db = tmp_path / "state.db"
    store = SqliteStore(db)

    def seed(round_: int) -> Path:
        store.force_unlock("svc")
        gone = subprocess.Popen([sys.executable, "-c", "pass"])
        gone.wait()
        store.acquire_lock("svc", lock.holder_record("dead", "run", "t0") | {"pid": gone.pid, "pid_start": None}, 10.0)
        return tmp_path / f"seen{round_}.json"

    _process_race("sqlite", str(db), tmp_path, seed)


@pytest.fixture
def dynamo_url(moto_server: str):
    """The session's moto server, reset, with a state table and DynamoDB's per-item write serialisation restored."""
    import boto3
    import requests

    from orchestrator.state.dynamodb import create_table

    mp = pytest.MonkeyPatch()
    serialise_moto_writes(mp)
    requests.post(f"{moto_server}/moto-api/reset", timeout=10)
    url = moto_server
    client = boto3.client(
        "dynamodb", region_name="us-east-1", endpoint_url=url, aws_access_key_id="t", aws_secret_access_key="t"
    )
    create_table(client, "snail-state", wait_delay=0)
    yield url
    mp.undo()


def test_processes_race_for_an_expired_lease_on_dynamodb(dynamo_url: str, tmp_path: Path) -> None:
    """Four processes whose observation file says a remote holder's counter has been still for a lease: one wins."""
    import json

    import boto3

    from orchestrator.procs import boot_id
    from orchestrator.state.dynamodb import DynamoStore

    client = boto3.client(
        "dynamodb", region_name="us-east-1", endpoint_url=dynamo_url, aws_access_key_id="t", aws_secret_access_key="t"
    )
    store = DynamoStore(client, "snail-state")

    def seed(round_: int) -> Path:
        store.force_unlock("svc")
        store.acquire_lock("svc", holder("remote", "elsewhere"), 10.0)
        seen = tmp_path / f"seen{round_}.json"
        token = lock._moved(store.lock_state("svc"))  # what an observer watches: counter and renewal time
        seen.write_text(
            json.dumps({"boot": boot_id(), "locks": {"svc": {"token": token, "seen": time.monotonic() - 11}}})
        )
        return seen

    _process_race("dynamodb", dynamo_url, tmp_path, seed)


def test_two_snail_runs_race_for_a_killed_runs_lock(world) -> None:
    """`snail run` killed -9 holding the lock; two `snail run`s start at once: one takes over, the other exits 4."""
    write_pipeline(world["root"], {"health-only": "a"})
    world["serve"]("a")
    crashed = snail(world, "run", "--skip-preflight", env={"SNAIL_FAILPOINTS": "update_service:acted"}, process=True)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    (world["root"] / "phases" / "health-only.yaml").write_text(
        f'name: health-only\nimage: {{ref: "{image("a")}"}}\nbake: 4s\n'
    )
    runs = [start_snail(world, "run", "--skip-preflight") for _ in range(2)]
    results = [(p.wait(timeout=180), p.stdout.read(), p.stderr.read()) for p in runs]
    codes = sorted(code for code, _, _ in results)
    ok = codes == [0, 4]
    RACES["won" if ok else "lost"] += 1
    assert ok, results
    loser = next(err for code, _, err in results if code == 4)
    assert "another run holds the lock" in loser and "Traceback" not in loser
    store = SqliteStore(world["root"] / ".snail" / "state.db")
    taken = [e for e in store.events("shine-api-gateway") if e.kind == "lock_taken_over"]
    assert len(taken) == 1, [e.message for e in taken]
    assert store.lock_state("shine-api-gateway") is None


def test_a_run_whose_lock_is_taken_over_stops_with_exit_4(world) -> None:
    """A real `snail run` baking a deployed phase loses its lock to another holder: it stops at its next safe
    point, exits 4 saying who took it, leaves the lock to the new holder and records how the run ended."""
    path = write_pipeline(world["root"], {"health-only": "a"})
    path.write_text(path.read_text().replace("  path: ", "  lease: 10s\n  path: "))
    (world["root"] / "phases" / "health-only.yaml").write_text(
        f'name: health-only\nimage: {{ref: "{image("a")}"}}\nbake: 12s\n'
    )
    world["serve"]("a")
    proc = start_snail(world, "run", "--skip-preflight")
    store = SqliteStore(world["root"] / ".snail" / "state.db")
    deadline = time.time() + 90
    while time.time() < deadline and not any(e.kind == "service_updated" for e in store.events("shine-api-gateway")):
        time.sleep(0.2)
    row = store.lock_state("shine-api-gateway")
    assert row is not None, proc.communicate(timeout=60)
    intruder = holder("r-intruder", "host-z", since="t9")
    while not store.take_over("shine-api-gateway", row.token, intruder, 10.0):  # it may beat meanwhile
        row = store.lock_state("shine-api-gateway")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 4, out + err
    assert "run r-intruder (ci@host-z, run since t9) took over the lock" in out + err
    assert "Traceback" not in err
    assert store.lock_state("shine-api-gateway").run_id == "r-intruder", "the loser never releases the new lock"
    (run,) = store.runs("shine-api-gateway")
    assert run.status != "running" and run.exit_code == 4


def test_zz_report_lock_races() -> None:
    """Print how many of the races above the lock won (every one must)."""
    total = RACES["won"] + RACES["lost"]
    print(f"\nlock races won {RACES['won']}/{total}")
    assert RACES["lost"] == 0


def test_bad_json_in_a_dynamodb_item_is_state_corrupt() -> None:
    """An item whose JSON does not parse (a run's phases, the lock's holder) is StateCorrupt naming the table."""
    import boto3
    from moto import mock_aws

    from orchestrator.state.dynamodb import DynamoStore, create_table

    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_table(client, "snail-state", wait_delay=0)
        _corrupt_dynamo_items(DynamoStore(client, "snail-state"))


def _corrupt_dynamo_items(s: Any) -> None:
    s.start_run(RunRecord("r1", SVC, "run", "running", "t0"))
    s.acquire_lock(SVC, holder("A"), LEASE)
    for key, attr in ((("RUN#r1", "RUN"), "phases"), ((f"SVC#{SVC}", "LOCK"), "holder")):
        s.client.update_item(
            TableName=s.table,
            Key={"pk": {"S": key[0]}, "sk": {"S": key[1]}},
            UpdateExpression="SET #a = :bad",
            ExpressionAttributeNames={"#a": attr},
            ExpressionAttributeValues={":bad": {"S": "{not json"}},
        )
    with pytest.raises(StateCorrupt, match="DynamoDB table snail-state"):
        s.get_run("r1")
    with pytest.raises(StateCorrupt, match="DynamoDB table snail-state") as exc:
        s.lock_state(SVC)
    assert exc.value.exit_code == 2
