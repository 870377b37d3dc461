"""barrier: test-traffic over scripted targets: held together, CONTINUE together, or all back if one fails."""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from orchestrator.clock import FakeClock
from orchestrator.fleet import decide as d
from orchestrator.fleet.goback import GoBack, GoBackClock, Recall
from orchestrator.fleet.journal import FleetJournal
from orchestrator.fleet.loader import load_fleet
from orchestrator.fleet.run import FleetExecutor, FleetOptions, TargetResult
from tests.unit.test_fleet_goback import PATIENCE, ScriptedTargets

FLEET = """\
version: 1
targets:
  cell2: {cluster: cell2}
  euw1:  {region: eu-west-1, cluster: shine}
  apse1: {region: ap-southeast-1, cluster: shine}
waves:
  - {name: rest, targets: [cell2, euw1, apse1], max_parallel: 1, barrier: test-traffic}
"""


class BarrierTargets(ScriptedTargets):
    """Scripted targets that say which of them deliver with a traffic strategy."""

    def __init__(self, scripts: dict[str, Any], rolling: frozenset[str] = frozenset()) -> None:
        super().__init__(scripts)
        self.rolling = rolling

    def holds_at_test_traffic(self, target: Any, to_phase: str | None) -> bool:
        return target.name not in self.rolling


def _run(tmp_path: Path, targets: ScriptedTargets, text: str = FLEET) -> Any:
    (tmp_path / "fleet.yaml").write_text(text)
    fleet = load_fleet(tmp_path / "fleet.yaml")
    clock = FakeClock(datetime(2026, 12, 7, 17, 0, tzinfo=timezone.utc))
    return FleetExecutor(fleet, FleetJournal(fleet), targets, clock=clock, poll=60, stop_poll=0.01).run(FleetOptions())


def _blue_green(log: list[tuple[str, str]], verdict: str = "passed") -> Any:
    """A blue-green target: judged on test traffic, then held at the barrier, then CONTINUE (or ROLLBACK if told)."""

    def deliver(recall: Recall) -> TargetResult:
        name = threading.current_thread().name
        clock = GoBackClock(recall.told, FakeClock())
        if verdict == "failed":
            recall.watch("decision", {"message": "returning all traffic to blue because /health answered 500"})
            log.append((name, "rollback at the hook"))
            return TargetResult(d.FAILED, "phase v2 failed on test traffic; traffic back to blue", 1)
        log.append((name, "held"))
        try:
            assert recall.hold is not None
            recall.hold(clock)
        except GoBack:
            log.append((name, "rollback at the hook"))
            return TargetResult(d.RETURNED, "told to go back: ROLLBACK at POST_TEST_TRAFFIC_SHIFT", 0, revision="x:7")
        log.append((name, "continue"))
        return TargetResult(d.PASSED, "done", 0, revision="x:8")

    return deliver


def test_a_barrier_wave_starts_every_target_at_once_whatever_max_parallel_says(tmp_path: Path) -> None:
    """max_parallel 1, but the barrier needs all three at their hooks together: one Deliver of all three."""
    (tmp_path / "fleet.yaml").write_text(FLEET)
    fleet = load_fleet(tmp_path / "fleet.yaml")
    run = d.FleetRun.new(fleet, "f-1", "rel-a", None, 0.0)
    action = d.decide(fleet, run, 0.0, datetime(2026, 12, 7, tzinfo=timezone.utc))
    assert isinstance(action, d.Deliver) and action.targets == ("cell2", "euw1", "apse1")


def test_every_target_is_held_until_all_passed_on_test_traffic_then_all_continue(tmp_path: Path) -> None:
    """No target continues before every one is held: three held, then three continue."""
    log: list[tuple[str, str]] = []
    t = BarrierTargets({n: _blue_green(log) for n in ("cell2", "euw1", "apse1")})
    out = _run(tmp_path, t)
    assert out.status == "succeeded", out.message
    steps = [s for _, s in log]
    assert steps == ["held"] * 3 + ["continue"] * 3
    kinds = [e["kind"] for e in out.run.events]
    assert kinds.index("barrier_set") < kinds.index("barrier_opened")


def test_one_failure_on_test_traffic_sends_every_held_target_back_whatever_on_failure_says(tmp_path: Path) -> None:
    """euw1 fails on test traffic while cell2 and apse1 are held: both ROLLBACK at their hooks, none continues,
    even with this_wave: finish (the barrier's promise: no production request in the wave reached the release)."""
    log: list[tuple[str, str]] = []
    held = threading.Barrier(3, timeout=PATIENCE)  # euw1 fails only once the other two are held

    def after_two_held(inner: Any) -> Any:
        def deliver(recall: Recall) -> TargetResult:
            held.wait()
            return inner(recall)

        return deliver

    def holding(recall: Recall) -> TargetResult:
        hold = recall.hold
        assert hold is not None

        def at_the_hook(clock: Any) -> None:
            held.wait()  # passed on test traffic, at its hook: now euw1 may fail
            hold(clock)

        recall.hold = at_the_hook
        return _blue_green(log)(recall)

    t = BarrierTargets({"cell2": holding, "apse1": holding, "euw1": after_two_held(_blue_green(log, verdict="failed"))})
    out = _run(tmp_path, t, FLEET + "on_failure: {this_wave: finish}\n")
    assert out.status == "stopped" and out.exit_code == 1
    assert "continue" not in [s for _, s in log]
    assert {out.run.targets[n].status for n in ("cell2", "apse1")} == {d.RETURNED}
    assert out.run.targets["euw1"].status == d.FAILED
    broken = [e for e in out.run.events if e["kind"] == "barrier_broken"]
    assert broken and broken[0]["target"] == "euw1"


def test_a_rolling_target_of_the_wave_is_not_waited_for(tmp_path: Path) -> None:
    """euw1 is rolling (no test-traffic hook): cell2 and apse1 continue without it; euw1 itself waits until they
    did, which would never happen if the barrier waited for it."""
    log: list[tuple[str, str]] = []
    continued = threading.Event()
    bg = _blue_green(log)

    def blue_green(recall: Recall) -> TargetResult:
        res = bg(recall)
        continued.set()
        return res

    def rolling(recall: Recall) -> TargetResult:
        assert recall.hold is None
        assert continued.wait(PATIENCE)
        return TargetResult(d.PASSED, "done", 0, revision="euw1:8")

    t = BarrierTargets({"cell2": blue_green, "apse1": blue_green, "euw1": rolling}, rolling=frozenset({"euw1"}))
    out = _run(tmp_path, t)
    assert out.status == "succeeded", out.message
    [barrier] = [e for e in out.run.events if e["kind"] == "barrier_set"]
    assert barrier["targets"] == ["apse1", "cell2"]
