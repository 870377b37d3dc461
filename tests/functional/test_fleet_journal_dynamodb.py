"""The fleet journal in DynamoDB (moto, in process): two runners share one fleet's run, quarantine, stop and lock."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from orchestrator.clock import FakeClock
from orchestrator.fleet import decide as d
from orchestrator.fleet.goback import Recall
from orchestrator.fleet.journal import FleetLocked
from orchestrator.fleet.journal_dynamodb import DynamoFleetJournal
from orchestrator.fleet.loader import load_fleet
from orchestrator.fleet.model import Fleet
from orchestrator.fleet.run import FleetExecutor, FleetOptions, TargetResult
from orchestrator.state.dynamodb import create_table

FLEET = """\
version: 1
targets:
  staging: {cluster: staging}
  cell1:   {cluster: cell1}
waves:
  - {name: staging, targets: [staging]}
  - {name: one-box, targets: [cell1], approval: manual}
state: {backend: dynamodb, table: snail-fleet, region: us-east-1}
"""


class Targets:
    """Targets that pass (or fail when named), recording what was delivered."""

    def __init__(self, fail: frozenset[str] = frozenset()) -> None:
        self.fail = fail
        self.delivered: list[str] = []

    def release_of(self, fleet: Any, to_phase: str | None) -> str:
        return "rel-a"

    def plan(self, target: Any, to_phase: str | None) -> dict[str, Any]:
        return {}

    def deliver(self, target: Any, to_phase: str | None, retry_failed: bool, recall: Recall) -> TargetResult:
        self.delivered.append(target.name)
        if target.name in self.fail:
            return TargetResult(d.FAILED, "phase v2 failed: /health answered 500; rolled back to 7", 1)
        return TargetResult(d.PASSED, "done", 0, revision=f"{target.name}:8")

    def give_back(self, target: Any, reason: str) -> TargetResult:
        return TargetResult(d.RETURNED, "rolled back to 7, verified", 0, revision=f"{target.name}:7")

    def look(self, target: Any, revision: str | None) -> str | None:
        return None


@pytest.fixture
def client() -> Iterator[Any]:
    """A DynamoDB client on moto with the fleet table (the state table's schema)."""
    with mock_aws():
        c = boto3.client("dynamodb", region_name="us-east-1")
        create_table(c, "snail-fleet", wait_delay=0)
        yield c


def _fleet(folder: Path, text: str = FLEET) -> Fleet:
    """A checkout of the fleet in its own folder (each runner has one)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "fleet.yaml").write_text(text)
    return load_fleet(folder / "fleet.yaml")


def _runner(fleet: Fleet, client: Any, targets: Targets) -> FleetExecutor:
    clock = FakeClock(datetime(2026, 12, 7, 17, 0, tzinfo=timezone.utc))
    return FleetExecutor(fleet, DynamoFleetJournal(fleet, client), targets, clock=clock, poll=60, stop_poll=0.01)


def test_a_second_runner_continues_the_fleet_run_the_first_one_left_waiting(tmp_path: Path, client: Any) -> None:
    """Runner A delivers staging and waits for the one-box's approval; runner B, in another checkout, approves
    and finishes the same fleet run without delivering staging again."""
    a_targets, b_targets = Targets(), Targets()
    a = _runner(_fleet(tmp_path / "ci-a"), client, a_targets)
    out = a.run(FleetOptions())
    assert out.status == "waiting_approval" and a_targets.delivered == ["staging"]
    assert not (tmp_path / "ci-a" / ".snail" / "fleet").exists()  # nothing of the fleet's state is local
    b = _runner(_fleet(tmp_path / "ci-b"), client, b_targets)
    done = b.run(FleetOptions(approve=frozenset({"one-box"}), by="bob"))
    assert done.status == "succeeded" and b_targets.delivered == ["cell1"]
    assert done.run is not None and out.run is not None and done.run.run_id == out.run.run_id
    assert DynamoFleetJournal(a.fleet, client).current().status == "succeeded"  # type: ignore[union-attr]


def test_a_quarantine_is_seen_by_every_runner_and_history_keeps_the_old_run(tmp_path: Path, client: Any) -> None:
    """A release that failed on runner A is refused on runner B; a new release moves A's run into history."""
    a = _runner(_fleet(tmp_path / "a"), client, Targets(fail=frozenset({"staging"})))
    assert a.run(FleetOptions()).status == "stopped"
    b_targets = Targets()
    b = _runner(_fleet(tmp_path / "b"), client, b_targets)
    again = b.run(FleetOptions())
    assert again.status == "quarantined" and b_targets.delivered == []
    first = DynamoFleetJournal(b.fleet, client).current()
    b.targets.release_of = lambda fleet, to: "rel-b"  # type: ignore[method-assign]
    assert b.run(FleetOptions()).status == "waiting_approval"
    history = DynamoFleetJournal(b.fleet, client).history()
    assert first is not None and [h["run_id"] for h in history] == [first.run_id]
    assert history[0]["status"] == "stopped"


def test_the_fleet_lock_is_one_runner_at_a_time_and_a_stop_request_crosses_runners(tmp_path: Path, client: Any) -> None:
    """While runner A holds the fleet's lease, runner B's lock is refused (exit 4) and its stop request is what
    A sees; once A lets go, B takes the lock."""
    ja = DynamoFleetJournal(_fleet(tmp_path / "a"), client)
    jb = DynamoFleetJournal(_fleet(tmp_path / "b"), client)
    ja.lock()
    try:
        with pytest.raises(FleetLocked) as err:
            jb.lock()
        assert err.value.exit_code == 4 and "snail-fleet" in str(err.value)
        jb.request_stop("pager went off", "bob")
        assert ja.stop_requested() == {"reason": "pager went off", "by": "bob"}
        ja.clear_stop()
        assert jb.stop_requested() is None
    finally:
        ja.unlock()
    jb.lock()
    jb.unlock()


@pytest.mark.process
def test_a_lock_left_by_a_killed_runner_is_taken_over(tmp_path: Path, client: Any) -> None:
    """A runner killed -9 leaves its lease; another runner on the same host sees its process is gone and takes it."""
    fleet = _fleet(tmp_path / "a")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout.strip())  # a process that has exited: its pid names nobody alive
    from orchestrator.engine import lock as leases

    holder = leases.holder_record("fleet-dead", "fleet run", "2026-12-07T17:00:00+00:00") | {"pid": pid}
    ja = DynamoFleetJournal(fleet, client)
    ja.store.acquire_lock(ja.lock_key, holder, 60.0, 0.0)
    jb = DynamoFleetJournal(_fleet(tmp_path / "b"), client)
    jb.lock()  # taken over at once: not after the 60-second lease
    try:
        row = jb.store.lock_state(jb.lock_key)
        assert row is not None and row.holder["run_id"] != "fleet-dead"
    finally:
        jb.unlock()
