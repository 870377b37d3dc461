"""The fleet executor's loop over fake targets: order, stop the line, approval, resume, quarantine, no-op."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from orchestrator.clock import FakeClock
from orchestrator.fleet import decide as d
from orchestrator.fleet.goback import Recall
from orchestrator.fleet.journal import FleetJournal
from orchestrator.fleet.loader import load_fleet
from orchestrator.fleet.run import FleetExecutor, FleetOptions, TargetResult

FLEET = """\
version: 1
targets:
  staging: {cluster: staging}
  cell1:   {cluster: cell1}
  cell2:   {cluster: cell2}
  euw1:    {region: eu-west-1, cluster: shine}
waves:
  - {name: staging, targets: [staging], bake: 10m}
  - {name: one-box, targets: [cell1], bake: 1h}
  - {name: rest, targets: [cell2, euw1], max_parallel: 2, bake: 1h}
"""


@dataclass
class FakeTargets:
    """Targets that answer from a script: which fail, which are already live, what each look sees."""

    release: str = "rel-a"
    fail: set[str] = field(default_factory=set)
    live_and_good: set[str] = field(default_factory=set)
    unhappy_bake: dict[str, str] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    crash_on: str | None = None

    def release_of(self, fleet: Any, to_phase: str | None) -> str:
        return self.release

    def plan(self, target: Any, to_phase: str | None) -> dict[str, Any]:
        return {}

    def deliver(self, target: Any, to_phase: str | None, retry_failed: bool, recall: Recall) -> TargetResult:
        self.calls.append(("deliver", target.name))
        if target.name == self.crash_on:
            raise SystemExit("killed")  # stands in for kill -9: nothing after this point runs
        if target.name in self.fail:
            return TargetResult(d.FAILED, "phase v2 failed: /health answered 500; rolled back to 3", 1)
        if target.name in self.live_and_good:
            return TargetResult(d.PASSED, "live and good", 0, revision=f"{target.name}:7", delivered=False)
        return TargetResult(d.PASSED, "done", 0, revision=f"{target.name}:8")

    def give_back(self, target: Any, reason: str) -> TargetResult:
        self.calls.append(("give_back", target.name))
        return TargetResult(d.RETURNED, "rolled back to 7, verified", 0, revision=f"{target.name}:7")

    def look(self, target: Any, revision: str | None) -> str | None:
        self.calls.append(("look", target.name))
        return self.unhappy_bake.get(target.name)


def _executor(tmp_path: Path, targets: FakeTargets, text: str = FLEET) -> FleetExecutor:
    (tmp_path / "fleet.yaml").write_text(text)
    fleet = load_fleet(tmp_path / "fleet.yaml")
    clock = FakeClock(datetime(2026, 12, 7, 17, 0, tzinfo=timezone.utc))
    return FleetExecutor(fleet, FleetJournal(fleet), targets, clock=clock, poll=60)


def test_a_good_release_goes_wave_by_wave_and_each_wave_bakes(tmp_path: Path) -> None:
    """staging, then cell1, then cell2 and euw1; each wave's bake looks at its targets until it is over."""
    t = FakeTargets()
    ex = _executor(tmp_path, t)
    out = ex.run(FleetOptions())
    assert out.status == "succeeded" and out.exit_code == 0
    delivered = [n for kind, n in t.calls if kind == "deliver"]
    assert delivered[:2] == ["staging", "cell1"] and set(delivered[2:]) == {"cell2", "euw1"}
    first_cell1 = t.calls.index(("deliver", "cell1"))
    assert ("look", "staging") in t.calls[:first_cell1]  # staging baked before the one-box started
    assert sum(ex.clock.sleeps) >= 600 + 3600 + 3600  # type: ignore[attr-defined]
    assert all(r.status == d.PASSED for r in out.run.targets.values())  # type: ignore[union-attr]


def test_a_failure_stops_the_line_returns_the_wave_and_quarantines_the_release(tmp_path: Path) -> None:
    """euw1 fails in the last wave: cell2 (passed in the same wave) goes back; a re-run deploys nowhere."""
    t = FakeTargets(fail={"euw1"})
    ex = _executor(tmp_path, t)
    out = ex.run(FleetOptions())
    assert out.status == "stopped" and out.exit_code == 1
    run = out.run
    assert run is not None and run.targets["euw1"].status == d.FAILED and run.targets["cell2"].status == d.RETURNED
    assert run.targets["staging"].status == d.PASSED  # earlier waves keep
    assert "euw1" in out.message and "cell2: returned" in out.message
    t.calls.clear()
    again = ex.run(FleetOptions())
    assert again.status == "quarantined" and again.exit_code == 1 and t.calls == []
    assert ex.run(FleetOptions(retry_failed=True)).status == "stopped"  # on purpose: tried again


def test_a_failure_in_wave_one_never_starts_a_later_wave(tmp_path: Path) -> None:
    """staging fails: cell1, cell2, euw1 are cancelled and never touched."""
    t = FakeTargets(fail={"staging"})
    out = _executor(tmp_path, t).run(FleetOptions())
    assert out.status == "stopped"
    assert [n for kind, n in t.calls if kind == "deliver"] == ["staging"]
    assert {out.run.targets[n].status for n in ("cell1", "cell2", "euw1")} == {d.CANCELLED}  # type: ignore[union-attr]


def test_a_bake_that_sees_a_target_go_wrong_stops_the_line(tmp_path: Path) -> None:
    """cell1 passed its gates but its tasks die during the one-box bake: it goes back and the rest never start."""
    t = FakeTargets(unhappy_bake={"cell1": "no task is running (0/1)"})
    out = _executor(tmp_path, t).run(FleetOptions())
    assert out.status == "stopped"
    assert out.run.targets["cell1"].status == d.FAILED and "no task is running" in out.run.targets["cell1"].message  # type: ignore[union-attr]
    assert ("give_back", "cell1") in t.calls and ("deliver", "cell2") not in t.calls


def test_a_manual_wave_stops_with_exit_0_and_goes_on_once_approved(tmp_path: Path) -> None:
    """one-box waits for a person; `--approve one-box` (or `fleet approve`) lets the next run continue."""
    text = FLEET.replace("bake: 1h}\n  - {name: rest", "bake: 1h, approval: manual}\n  - {name: rest")
    t = FakeTargets()
    ex = _executor(tmp_path, t, text)
    out = ex.run(FleetOptions())
    assert out.status == "waiting_approval" and out.exit_code == 0 and "snail fleet approve one-box" in out.message
    assert [n for kind, n in t.calls if kind == "deliver"] == ["staging"]
    out = ex.run(FleetOptions(approve=frozenset({"one-box"}), by="ann"))
    assert out.status == "succeeded"
    assert out.run.waves["one-box"].approved_by == "ann"  # type: ignore[union-attr]
    assert [n for kind, n in t.calls if kind == "deliver"].count("staging") == 1  # resumed, not restarted


def test_a_killed_fleet_run_resumes_where_it_was(tmp_path: Path) -> None:
    """Killed while cell1 was in flight: the next run continues with cell1, and staging is not delivered again."""
    t = FakeTargets(crash_on="cell1")
    ex = _executor(tmp_path, t)
    with pytest.raises(SystemExit):
        ex.run(FleetOptions())
    recorded = FleetJournal(ex.fleet).current()
    assert recorded is not None and recorded.targets["cell1"].status == d.RUNNING  # intent was recorded first
    t.crash_on, t.calls = None, []
    out = _executor(tmp_path, t).run(FleetOptions(resume=True))
    assert out.status == "succeeded" and out.run.run_id == recorded.run_id  # type: ignore[union-attr]
    assert [n for kind, n in t.calls if kind == "deliver"][0] == "cell1" and ("deliver", "staging") not in t.calls


def test_a_scheduled_run_with_the_release_live_everywhere_does_nothing(tmp_path: Path) -> None:
    """Every target is already live and good: one look each (its plan), no bake, status noop."""
    t = FakeTargets(live_and_good={"staging", "cell1", "cell2", "euw1"})
    ex = _executor(tmp_path, t)
    out = ex.run(FleetOptions())
    assert out.status == "noop" and out.exit_code == 0
    assert ex.clock.sleeps == []  # type: ignore[attr-defined]
    assert [k for k, _ in t.calls] == ["deliver"] * 4


def test_fleet_stop_returns_the_running_wave_and_cancels_the_rest(tmp_path: Path) -> None:
    """A stop asked for while the one-box waits: staging stays (earlier waves keep), the rest are cancelled."""
    text = FLEET.replace("bake: 1h}\n  - {name: rest", "bake: 1h, approval: manual}\n  - {name: rest")
    t = FakeTargets()
    ex = _executor(tmp_path, t, text)
    ex.run(FleetOptions())
    out = ex.stop("pager went off", by="ann")
    assert out.status == "stopped" and out.exit_code == 1
    assert out.run.targets["staging"].status == d.PASSED  # type: ignore[union-attr]
    assert {out.run.targets[n].status for n in ("cell1", "cell2", "euw1")} == {d.CANCELLED}  # type: ignore[union-attr]
    assert FleetJournal(ex.fleet).quarantined() == {}  # a stop by hand is not the release's failure


def test_a_stop_is_not_blocked_by_a_freeze(tmp_path: Path) -> None:
    """During a freeze no wave starts, but `fleet stop` still sends back what went out (earlier_waves: rollback)."""
    text = FLEET.replace("bake: 1h}\n  - {name: rest", "bake: 1h, approval: manual}\n  - {name: rest")
    text += "on_failure: {earlier_waves: rollback}\nfreezes: [{from: 2026-12-08, to: 2026-12-31, reason: holidays}]\n"
    t = FakeTargets()
    ex = _executor(tmp_path, t, text)
    assert ex.run(FleetOptions()).status == "waiting_approval"  # staging went out on 2026-12-07
    ex.clock.advance(24 * 3600)  # type: ignore[attr-defined]
    frozen = ex.run(FleetOptions(approve=frozenset({"one-box"})))
    assert frozen.status == "frozen" and "holidays" in frozen.message and frozen.exit_code == 0
    assert ("deliver", "cell1") not in t.calls
    out = ex.stop("back out before the holidays", by="ann")
    assert out.status == "stopped" and out.run.targets["staging"].status == d.RETURNED  # type: ignore[union-attr]
    assert ("give_back", "staging") in t.calls
