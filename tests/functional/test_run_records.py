"""Every run is accounted for, and a run that could not be recorded gives back what it took (issue 25,
concurrency): the engine on in-process moto with the sandbox agent, the state on DynamoDB (a history two services
share) or SQLite."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from orchestrator.engine import executor
from orchestrator.engine.executor import RunOptions
from orchestrator.errors import Locked, UsageError
from orchestrator.state.base import RunRecord
from orchestrator.state.dynamodb import DynamoStore, create_table
from tests.functional.test_engine import World
from tests.functional.world import REGION

SERVICE = "shine-api-gateway"


@pytest.fixture
def aws():
    """In-process moto for every AWS call of the test."""
    from ecsbox import extension

    with mock_aws():
        yield
    extension.uninstall()


def test_a_run_whose_record_is_refused_releases_its_lock(aws, tmp_path: Path, http_server, monkeypatch) -> None:
    """A run id already in the shared history (another service's run in the same second) is refused at the run's
    record; the run changes nothing and gives its lock back, so the next run starts at once (no lease to wait out)."""
    w = World(tmp_path, http_server, {"health-only": "a"})
    w.server("a")
    create_table(boto3.client("dynamodb", region_name=REGION), "snail-state", wait_delay=0)
    w.store = DynamoStore(boto3.client("dynamodb", region_name=REGION), "snail-state")
    taken = "r-20261207-080000-beef"
    w.store.start_run(RunRecord(taken, "other-service", "run", "running", "2026-12-07T08:00:00+00:00"))
    monkeypatch.setattr(executor, "new_run_id", lambda clock: taken)
    before = w.live()
    with pytest.raises(UsageError, match="already recorded"):
        w.engine().run(RunOptions())
    assert w.store.lock_state(SERVICE) is None, "the refused run left its lock held"
    assert w.store.get_run(taken).service == "other-service" and w.store.get_run(taken).status == "running"
    assert w.live() == before
    monkeypatch.undo()
    out = w.engine().run(RunOptions())
    assert out.exit_code == 0, out.message
    assert out.run_id != taken


def test_a_run_whose_reconciliation_fails_releases_its_lock_and_closes_its_record(
    aws, tmp_path: Path, http_server, monkeypatch
) -> None:
    """The store fails after the run's record was written (reconciling what crashed runs left): the run's record
    is closed as failed and its lock is released."""
    w = World(tmp_path, http_server, {"health-only": "a"})
    w.server("a")

    def refuse(*_a: object, **_k: object) -> list:
        raise OSError("disk I/O error")

    monkeypatch.setattr(w.store, "open_steps", refuse)
    with pytest.raises(OSError):
        w.engine().run(RunOptions())
    assert w.store.lock_state(SERVICE) is None
    (run,) = w.store.runs(SERVICE)
    assert run.status == "failed" and "nothing changed" in run.message


def test_runs_refused_by_the_lock_are_history_rows_once_per_streak(aws, tmp_path: Path, http_server) -> None:
    """Three runs refused while one run holds the lock are one history row (status locked, exit 4, naming the
    holder); a refusal by the next holder is a new row; `run --resume` still finds the run they queued behind."""
    w = World(tmp_path, http_server, {"health-only": "a"})
    w.server("a")
    foreign = {"run_id": "r-holder-1", "user": "ci", "host": "runner-9", "pid": 1, "command": "run", "since": "t0"}
    w.store.start_run(RunRecord("r-holder-1", SERVICE, "run", "running", w.clock.now().isoformat()))
    w.store.acquire_lock(SERVICE, foreign, 300.0)
    for _ in range(3):
        w.clock.sleep(1)
        with pytest.raises(Locked, match="r-holder-1"):
            w.engine().run(RunOptions())
    runs = w.store.runs(SERVICE)
    assert [r.status for r in runs] == ["locked", "running"], [(r.status, r.message) for r in runs]
    assert runs[0].exit_code == 4 and "another run holds the lock: run r-holder-1 by ci@runner-9" in runs[0].message
    (event,) = w.store.events(SERVICE, runs[0].run_id)
    assert event.kind == "blocked" and event.data["block"] == "locked"
    assert w.engine().resume_point() == "health-only", "a refusal hides the run it queued behind"
    token = w.store.lock_state(SERVICE).token
    assert w.store.take_over(SERVICE, token, {**foreign, "run_id": "r-holder-2"}, 300.0)
    w.clock.sleep(1)
    with pytest.raises(Locked, match="r-holder-2"):
        w.engine().run(RunOptions())
    assert [r.status for r in w.store.runs(SERVICE)] == ["locked", "locked", "running"]
