"""The state store contract: every backend keeps runs, steps, events, good revisions and the lease lock alike."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from orchestrator.errors import Locked
from orchestrator.state.base import GoodRecord, RunRecord, TrailEvent
from orchestrator.state.sqlite import SqliteStore

BACKENDS = ["sqlite", "dynamodb"]


@pytest.fixture(params=BACKENDS)
def store(request, tmp_path: Path):
    """A fresh store of each backend."""
    if request.param == "sqlite":
        s = SqliteStore(tmp_path / "state.db")
        yield s
        s.close()
    elif request.param == "dynamodb":
        import boto3
        from moto import mock_aws

        from orchestrator.state.dynamodb import DynamoStore, create_table

        with mock_aws():
            client = boto3.client("dynamodb", region_name="us-east-1")
            create_table(client, "snail-state")
            yield DynamoStore(client, "snail-state")


def holder(run_id: str) -> dict:
    """A lock holder record."""
    return {"run_id": run_id, "user": "ci", "host": "runner-1", "command": "run", "since": "2026-11-29T06:00:00+00:00"}


def test_runs_newest_first(store) -> None:
    """Runs come back newest first with how they ended."""
    store.start_run(RunRecord("r1", "svc", "run", "running", "2026-11-29T06:00:00"))
    store.start_run(RunRecord("r2", "svc", "rollback", "running", "2026-11-29T07:00:00"))
    store.finish_run("r1", "rolled_back", 1, "phase two failed", "2026-11-29T06:05:00")
    runs = store.runs("svc")
    assert [r.run_id for r in runs] == ["r2", "r1"]
    assert (runs[1].status, runs[1].exit_code, runs[1].message) == ("rolled_back", 1, "phase two failed")
    assert store.get_run("r1").status == "rolled_back"
    assert store.runs("other") == []


def test_steps_intent_then_result(store) -> None:
    """A step is open after its intent and closed with its result; open steps are what a crash leaves."""
    store.start_run(RunRecord("r1", "svc", "run", "running", "t0"))
    sid = store.begin_step("r1", "one", "update_service", {"from": "a:1", "to": "a:2"}, "t1")
    assert [s.kind for s in store.open_steps("svc")] == ["update_service"]
    store.end_step(sid, "ok", {"deployment": "ecs-svc/1"}, "t2")
    assert store.open_steps("svc") == []
    (step,) = store.steps("r1")
    assert step.intent == {"from": "a:1", "to": "a:2"} and step.result == {"deployment": "ecs-svc/1"}
    assert step.outcome == "ok"


def test_events_in_order(store) -> None:
    """Events keep their order and data, per run and per service."""
    for i in range(3):
        store.append_event(TrailEvent("r1", "svc", f"t{i}", "gate_passed", f"gate {i}", "one", {"n": i}))
    store.append_event(TrailEvent("r2", "svc", "t9", "noop", "nothing"))
    assert [e.data.get("n") for e in store.events("svc", "r1")] == [0, 1, 2]
    assert len(store.events("svc")) == 4


def test_last_good_per_phase(store) -> None:
    """last_good is the newest good record overall or for a phase."""
    store.mark_good(GoodRecord("svc", "one", "arn:td/a:1", "img@1", "sha256:1", "r1", "t1", "h1"))
    store.mark_good(GoodRecord("svc", "two", "arn:td/a:2", "img@2", "sha256:2", "r1", "t2", "h2"))
    assert store.last_good("svc").revision_arn == "arn:td/a:2"
    assert store.last_good("svc", "one").spec_hash == "h1"
    assert store.last_good("svc", "three") is None
    assert [g.phase for g in store.good_history("svc")] == ["two", "one"]


def test_lock_excludes_second_holder(store) -> None:
    """A live lease refuses a second run, naming the holder."""
    store.acquire_lock("svc", holder("r1"), lease=60, now=1000)
    with pytest.raises(Locked) as exc:
        store.acquire_lock("svc", holder("r2"), lease=60, now=1010)
    assert "run r1 by ci@runner-1 (run)" in str(exc.value)
    assert store.lock_holder("svc", now=1010)["run_id"] == "r1"


def test_acquire_never_judges_expiry_by_wall_clock(store) -> None:
    """A caller whose clock is far ahead still cannot acquire a held lock: expiry is the observer's call."""
    store.acquire_lock("svc", holder("r1"), lease=60, now=1000)
    with pytest.raises(Locked):
        store.acquire_lock("svc", holder("r2"), lease=60, now=1000 + 400 + 60)
    assert store.lock_state("svc").run_id == "r1"


def test_heartbeat_moves_only_own_counter(store) -> None:
    """Each heartbeat moves the holder's counter (its token changes); a stranger's heartbeat does nothing."""
    store.acquire_lock("svc", holder("r1"), lease=60, now=1000)
    first = store.lock_state("svc")
    assert (first.run_id, first.beats, first.lease, first.token) == ("r1", 0, 60, "r1#0")
    assert store.heartbeat("svc", "r1", lease=60, now=1020)
    assert store.heartbeat("svc", "r1", lease=60, now=1040)
    assert not store.heartbeat("svc", "r2", lease=60, now=1040)
    assert store.lock_state("svc").token == "r1#2"
    assert store.lock_holder("svc")["beats"] == 2


def test_take_over_is_conditional_on_the_token_observed(store) -> None:
    """take_over succeeds only on the exact token observed: a beat in between makes it fail."""
    store.acquire_lock("svc", holder("r1"), lease=60, now=1000)
    stale = store.lock_state("svc").token
    store.heartbeat("svc", "r1", lease=60, now=1020)
    assert not store.take_over("svc", stale, holder("r2"), lease=60)
    assert store.lock_state("svc").run_id == "r1"
    current = store.lock_state("svc").token
    assert store.take_over("svc", current, holder("r2"), lease=90)
    row = store.lock_state("svc")
    assert (row.run_id, row.beats, row.lease, row.holder["host"]) == ("r2", 0, 90, "runner-1")
    assert not store.take_over("svc", current, holder("r3"), lease=60), "the same token cannot be taken twice"
    assert not store.heartbeat("svc", "r1", lease=60), "the old holder learns it lost the lock"


def test_take_over_of_a_free_lock_fails(store) -> None:
    """A token for a lock that was released meanwhile takes nothing (acquire is the way to take a free lock)."""
    store.acquire_lock("svc", holder("r1"), lease=60)
    token = store.lock_state("svc").token
    store.release_lock("svc", "r1")
    assert not store.take_over("svc", token, holder("r2"), lease=60)
    assert store.lock_state("svc") is None


def test_release_and_force_unlock(store) -> None:
    """Release frees the lock for its holder only; force_unlock frees it and says who held it."""
    store.acquire_lock("svc", holder("r1"), lease=60, now=1000)
    store.release_lock("svc", "r2")
    assert store.lock_holder("svc", now=1001) is not None
    store.release_lock("svc", "r1")
    assert store.lock_holder("svc", now=1001) is None
    store.acquire_lock("svc", holder("r3"), lease=60, now=1000)
    assert store.force_unlock("svc")["run_id"] == "r3"
    assert store.lock_holder("svc", now=1001) is None


def test_force_unlock_with_a_token_is_conditional(store) -> None:
    """force_unlock with the token observed removes nothing if the holder renewed its lease meanwhile."""
    store.acquire_lock("svc", holder("r1"), lease=60)
    seen = store.lock_state("svc").token
    store.heartbeat("svc", "r1", lease=60)
    assert store.force_unlock("svc", seen) is None
    assert store.lock_state("svc").run_id == "r1"
    assert store.force_unlock("svc", store.lock_state("svc").token)["run_id"] == "r1"
    assert store.lock_state("svc") is None


def test_reacquire_by_the_same_run_moves_the_counter(store) -> None:
    """The holder acquiring again (re-entrant) keeps the lock and moves its counter."""
    store.acquire_lock("svc", holder("r1"), lease=60)
    assert store.acquire_lock("svc", holder("r1"), lease=60) is None
    assert store.lock_state("svc").token == "r1#1"


def _race(path: str, run_id: str, barrier, results) -> None:  # noqa: ANN001
    s = SqliteStore(path)
    barrier.wait()
    try:
        s.acquire_lock("svc", holder(run_id), lease=60, now=1000)
        results.put((run_id, "got"))
    except Locked:
        results.put((run_id, "locked"))


def test_sqlite_lock_is_safe_across_processes(tmp_path: Path) -> None:
    """Two processes racing for the lock: exactly one gets it."""
    SqliteStore(tmp_path / "state.db").close()
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(4), ctx.Queue()
    procs = [ctx.Process(target=_race, args=(str(tmp_path / "state.db"), f"r{i}", barrier, results)) for i in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    outcomes = sorted(results.get(timeout=5)[1] for _ in procs)
    assert outcomes == ["got", "locked", "locked", "locked"]
