"""Stopping in-flight targets at once: the interruptible clock, a failing sibling, `fleet stop` from elsewhere, Ctrl-C."""

from __future__ import annotations

import _thread
import signal
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from orchestrator.clock import FakeClock, SystemClock
from orchestrator.fleet import decide as d
from orchestrator.fleet.goback import GoBack, GoBackClock, Recall
from orchestrator.fleet.journal import FleetJournal
from orchestrator.fleet.loader import load_fleet
from orchestrator.fleet.run import FleetExecutor, FleetOptions, TargetResult

FLEET = """\
version: 1
targets:
  staging: {cluster: staging}
  cell2:   {cluster: cell2}
  euw1:    {region: eu-west-1, cluster: shine}
waves:
  - {name: staging, targets: [staging]}
  - {name: rest, targets: [cell2, euw1], max_parallel: 2}
"""
PATIENCE = 30.0  # an upper bound so a broken build fails instead of hanging; no test waits for it when green

Script = Callable[[Recall], TargetResult]


class ScriptedTargets:
    """Targets whose delivery runs a script (in the executor's worker thread) given the fleet's Recall line."""

    def __init__(self, scripts: dict[str, Script]) -> None:
        self.scripts = scripts
        self.calls: list[tuple[str, str]] = []

    def release_of(self, fleet: Any, to_phase: str | None) -> str:
        return "rel-a"

    def plan(self, target: Any, to_phase: str | None) -> dict[str, Any]:
        return {}

    def deliver(self, target: Any, to_phase: str | None, retry_failed: bool, recall: Recall) -> TargetResult:
        self.calls.append(("deliver", target.name))
        script = self.scripts.get(target.name)
        return script(recall) if script else TargetResult(d.PASSED, "done", 0, revision=f"{target.name}:8")

    def give_back(self, target: Any, reason: str) -> TargetResult:
        self.calls.append(("give_back", target.name))
        return TargetResult(d.RETURNED, "rolled back to 7, verified", 0, revision=f"{target.name}:7")

    def look(self, target: Any, revision: str | None) -> str | None:
        return None


def _executor(tmp_path: Path, targets: ScriptedTargets, text: str = FLEET) -> FleetExecutor:
    (tmp_path / "fleet.yaml").write_text(text)
    fleet = load_fleet(tmp_path / "fleet.yaml")
    clock = FakeClock(datetime(2026, 12, 7, 17, 0, tzinfo=timezone.utc))
    return FleetExecutor(fleet, FleetJournal(fleet), targets, clock=clock, poll=60, stop_poll=0.01)


def _goes_back_when_told(recall: Recall) -> TargetResult:
    """An engine in its gates: it waits on the interruptible clock until told, then rolls back (verified)."""
    clock = GoBackClock(recall.told)
    try:
        clock.sleep(PATIENCE)
    except GoBack:
        return TargetResult(d.RETURNED, f"told to go back ({recall.reason}); rolled back to 7", 0, revision="x:7")
    return TargetResult(d.PASSED, "never told", 0, revision="x:8")


def test_the_clock_raises_go_back_once_and_then_keeps_injected_time(tmp_path: Path) -> None:
    """Told, the next sleep raises GoBack; the rollback's sleeps after it advance the fake clock as before."""
    told = threading.Event()
    base = FakeClock()
    clock = GoBackClock(told, base)
    clock.sleep(5)
    told.set()
    with pytest.raises(GoBack):
        clock.sleep(5)
    clock.sleep(7)
    assert base.sleeps == [5, 7] and clock.monotonic() == 12


def test_the_clock_wakes_a_real_sleep_the_moment_it_is_told() -> None:
    """A 10-minute real sleep in another thread ends in GoBack as soon as the event is set."""
    told = threading.Event()
    clock = GoBackClock(told, SystemClock())
    seen: list[BaseException] = []
    sleeping = threading.Event()

    def engine() -> None:
        sleeping.set()
        try:
            clock.sleep(600)
        except GoBack as exc:
            seen.append(exc)

    th = threading.Thread(target=engine)
    th.start()
    sleeping.wait(PATIENCE)
    told.set()
    th.join(PATIENCE)
    assert not th.is_alive() and len(seen) == 1


def test_a_failing_target_tells_its_in_flight_sibling_before_its_own_rollback(tmp_path: Path) -> None:
    """euw1 decides to roll back: cell2, still judging, is told at that moment and goes back itself."""
    both_in_flight = threading.Barrier(2, timeout=PATIENCE)
    seen: dict[str, Any] = {}

    def cell2(recall: Recall) -> TargetResult:
        seen["cell2"] = recall
        both_in_flight.wait()
        return _goes_back_when_told(recall)

    def euw1(recall: Recall) -> TargetResult:
        both_in_flight.wait()
        recall.watch("gate_failed", {"message": "/health answered 500"})  # a failed attempt is not a decision
        assert not seen["cell2"].told.is_set()
        recall.watch("decision", {"message": "rolling back to 7 because /health answered 500"})
        seen["told_before_rollback"] = seen["cell2"].told.is_set()
        return TargetResult(d.FAILED, "phase v2 failed: /health answered 500; rolled back to 7", 1)

    t = ScriptedTargets({"cell2": cell2, "euw1": euw1})
    out = _executor(tmp_path, t).run(FleetOptions())
    assert out.status == "stopped" and out.exit_code == 1
    run = out.run
    assert run is not None and run.targets["cell2"].status == d.RETURNED and run.targets["euw1"].status == d.FAILED
    assert seen["told_before_rollback"] is True
    assert "euw1 failed" in seen["cell2"].reason
    told = [e for e in run.events if e["kind"] == "targets_told"]
    assert told and told[0]["targets"] == ["cell2"] and told[0]["by"] == "euw1"
    assert 0 <= told[0]["after_verdict_s"] < PATIENCE  # measured from euw1's failed gate verdict
    assert ("give_back", "cell2") not in t.calls  # it went back itself, once
    assert run.targets["staging"].status == d.PASSED
    assert "rel-a" in FleetJournal(load_fleet(tmp_path / "fleet.yaml")).quarantined()


def test_with_this_wave_finish_a_sibling_is_not_told(tmp_path: Path) -> None:
    """on_failure: {this_wave: finish}: euw1 fails, cell2 finishes its delivery and stays on the release."""
    euw1_done = threading.Event()
    told: list[bool] = []

    def cell2(recall: Recall) -> TargetResult:
        euw1_done.wait(PATIENCE)
        told.append(recall.told.is_set())
        return TargetResult(d.PASSED, "done", 0, revision="cell2:8")

    def euw1(recall: Recall) -> TargetResult:
        recall.watch("decision", {"message": "rolling back to 7"})
        euw1_done.set()
        return TargetResult(d.FAILED, "phase v2 failed; rolled back to 7", 1)

    t = ScriptedTargets({"cell2": cell2, "euw1": euw1})
    out = _executor(tmp_path, t, FLEET + "on_failure: {this_wave: finish}\n").run(FleetOptions())
    assert out.status == "stopped" and told == [False]
    assert out.run is not None and out.run.targets["cell2"].status == d.PASSED


def test_fleet_stop_from_another_process_tells_what_is_in_flight(tmp_path: Path) -> None:
    """`snail fleet stop` while staging is judging: staging goes back now, the rest never starts, no quarantine."""
    journal = FleetJournal(load_fleet((tmp_path / "fleet.yaml").write_text(FLEET) and tmp_path / "fleet.yaml"))

    def staging(recall: Recall) -> TargetResult:
        journal.request_stop("pager went off", "bob")  # what `snail fleet stop` writes when the lock is held
        return _goes_back_when_told(recall)

    t = ScriptedTargets({"staging": staging})
    out = _executor(tmp_path, t).run(FleetOptions())
    assert out.status == "stopped" and out.exit_code == 1
    run = out.run
    assert run is not None and run.targets["staging"].status == d.RETURNED
    assert {run.targets[n].status for n in ("cell2", "euw1")} == {d.CANCELLED}
    assert [k for k, _ in t.calls] == ["deliver"]
    assert any(e["kind"] == "line_stopped_by_hand" and e["by"] == "bob" for e in run.events)
    assert journal.quarantined() == {} and journal.stop_requested() is None


def test_ctrl_c_on_the_fleet_sends_in_flight_back_and_the_run_resumes(tmp_path: Path) -> None:
    """Interrupted while staging is in flight: staging is told and goes back, the fleet exits on the interrupt,
    and `fleet run --resume` delivers staging again and finishes."""

    def staging(recall: Recall) -> TargetResult:
        _thread.interrupt_main()  # Ctrl-C (SIGTERM is turned into the same) reaches the fleet's main thread
        return _goes_back_when_told(recall)

    t = ScriptedTargets({"staging": staging})
    ex = _executor(tmp_path, t)
    # Python's own SIGINT handler, as in `snail`: a pytest-xdist worker ignores SIGINT, and interrupt_main() then
    # does nothing
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            ex.run(FleetOptions())
    finally:
        signal.signal(signal.SIGINT, before)
    recorded = FleetJournal(ex.fleet).current()
    assert recorded is not None and not recorded.finished
    assert recorded.targets["staging"].status in (d.PENDING, d.RUNNING)  # either way, resume delivers it again
    t.scripts.clear()
    out = _executor(tmp_path, t).run(FleetOptions(resume=True))
    assert out.status == "succeeded" and out.run is not None and out.run.run_id == recorded.run_id
    assert [n for k, n in t.calls if k == "deliver"].count("staging") == 2
