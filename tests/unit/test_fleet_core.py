"""The fleet's functional core: fleet.yaml checks, windows and freezes, and the wave decisions (no AWS)."""

from __future__ import annotations

from datetime import date, datetime, time, timezone
from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import ConfigErrors
from orchestrator.fleet import decide as d
from orchestrator.fleet.calendar import freeze_at, next_opening, window_open
from orchestrator.fleet.loader import load_fleet
from orchestrator.fleet.model import Freeze, Window

FLEET = """\
version: 1
pipeline: pipeline.yaml
targets:
  staging:    {region: us-east-1, cluster: shine-staging}
  use1-cell1: {region: us-east-1, cluster: shine-cell1}
  use1-cell2: {region: us-east-1, cluster: shine-cell2}
  euw1:       {region: eu-west-1, cluster: shine, registry: {ecr: shine-api-gateway}}
waves:
  - {name: staging, targets: [staging], bake: 30m}
  - {name: one-box, targets: [use1-cell1], bake: 1h, approval: manual}
  - {name: rest, targets: [use1-cell2, euw1], max_parallel: 2, bake: 1h, barrier: test-traffic}
on_failure: {this_wave: rollback, earlier_waves: keep}
windows: [{days: mon-thu, from: "09:00", to: "16:00", zone: America/New_York}]
freezes: [{from: 2026-12-20, to: 2027-01-04, reason: holidays}]
"""


def _fleet(tmp_path: Path, text: str = FLEET):
    (tmp_path / "fleet.yaml").write_text(text)
    return load_fleet(tmp_path / "fleet.yaml")


def test_the_issue_s_fleet_yaml_loads_as_frozen_values(tmp_path: Path) -> None:
    """The contract's example: targets with overrides, waves in order, failure policy, windows, freezes."""
    f = _fleet(tmp_path)
    assert [w.name for w in f.waves] == ["staging", "one-box", "rest"]
    assert f.waves[0].bake == 1800 and f.waves[1].approval == "manual" and f.waves[2].max_parallel == 2
    assert f.waves[2].barrier == "test-traffic"
    assert f.target("euw1").region == "eu-west-1" and f.target("euw1").registry == {"ecr": "shine-api-gateway"}
    assert f.target("staging").pipeline == (tmp_path / "pipeline.yaml").absolute()
    assert f.windows[0].days == frozenset({0, 1, 2, 3}) and f.windows[0].start == time(9, 0)
    assert f.freezes[0].start == date(2026, 12, 20) and f.freezes[0].reason == "holidays"
    assert f.wave_of("euw1").name == "rest"


@pytest.mark.parametrize(
    "change, key, words",
    [
        ("targets: [staging, nobody]", "waves[0].targets", "no target named 'nobody'"),
        ("targets: [staging, use1-cell1]", "waves[1].targets", "already in wave 'staging'"),
        ("bake: forever", "waves[0].bake", ""),
        ("approval: maybe", "waves[0].approval", "not one of"),
        ("max_parallel: 0", "waves[0].max_parallel", ""),
    ],
)
def test_a_wrong_wave_names_its_file_line_and_key(tmp_path: Path, change: str, key: str, words: str) -> None:
    """Each mistake in a wave is reported with fleet.yaml's line and the key."""
    text = FLEET.replace("targets: [staging], bake: 30m", f"targets: [staging], bake: 30m, {change}")
    if change.startswith("targets"):
        text = FLEET.replace("targets: [staging], bake: 30m", f"{change}, bake: 30m")
    with pytest.raises(ConfigErrors) as exc:
        _fleet(tmp_path, text)
    errors = exc.value.errors
    line = 10 if key.startswith("waves[1]") else 9
    assert any(e.key == key and e.line == line and words in e.message for e in errors), errors
    assert all(e.path.endswith("fleet.yaml") for e in errors)


def test_a_target_in_no_wave_and_bad_windows_are_refused(tmp_path: Path) -> None:
    """A target no wave releases, a day range that is not one, a window ending before it starts, a bad zone."""
    text = FLEET.replace("  euw1:", "  lost: {cluster: x}\n  euw1:").replace(
        'days: mon-thu, from: "09:00", to: "16:00", zone: America/New_York',
        'days: mon-someday, from: "17:00", to: "16:00", zone: Mars/Olympus',
    )
    with pytest.raises(ConfigErrors) as exc:
        _fleet(tmp_path, text)
    text_of = "\n".join(str(e) for e in exc.value.errors)
    assert "targets.lost" in text_of and "is in no wave" in text_of
    assert "'mon-someday' is not a day" in text_of
    assert "unknown time zone 'Mars/Olympus'" in text_of


def test_a_window_is_read_in_its_own_zone() -> None:
    """09:00-16:00 New York on Monday..Thursday: open at 14:00 UTC on a Monday, shut on Friday and at night."""
    w = Window(days=frozenset({0, 1, 2, 3}), start=time(9), end=time(16), zone="America/New_York")
    monday_2pm_utc = datetime(2026, 12, 7, 14, 0, tzinfo=timezone.utc)  # 09:00 in New York
    assert window_open([w], monday_2pm_utc)
    assert not window_open([w], datetime(2026, 12, 7, 13, 59, tzinfo=timezone.utc))
    assert not window_open([w], datetime(2026, 12, 11, 15, 0, tzinfo=timezone.utc))  # a Friday
    assert window_open([], monday_2pm_utc)  # no windows: always open
    thursday_night = datetime(2026, 12, 10, 23, 0, tzinfo=timezone.utc)
    assert next_opening([w], thursday_night) == datetime(2026, 12, 14, 14, 0, tzinfo=timezone.utc)


def test_a_freeze_covers_its_days_inclusive() -> None:
    """From the first day to the last, both included."""
    f = Freeze(date(2026, 12, 20), date(2027, 1, 4), "holidays")
    assert freeze_at([f], datetime(2026, 12, 20, 0, 0, tzinfo=timezone.utc)) == f
    assert freeze_at([f], datetime(2027, 1, 4, 23, 59, tzinfo=timezone.utc)) == f
    assert freeze_at([f], datetime(2027, 1, 5, 0, 0, tzinfo=timezone.utc)) is None


MONDAY_NOON_NY = datetime(2026, 12, 7, 17, 0, tzinfo=timezone.utc)


def _run(fleet, **targets: str) -> d.FleetRun:
    run = d.FleetRun.new(fleet, "f-1", "rel-1", None, 0.0)
    for name, status in targets.items():
        run = run.with_target(name.replace("_", "-"), status=status)
    return run


def test_waves_go_in_order_and_a_manual_wave_waits_for_approval(tmp_path: Path) -> None:
    """Staging first; one-box waits for a person; once approved it is delivered."""
    f = _fleet(tmp_path)
    run = _run(f)
    assert d.decide(f, run, 0.0, MONDAY_NOON_NY) == d.Deliver("staging", ("staging",))
    run = _run(f, staging=d.PASSED).with_wave("staging", status="baking", bake_from=100.0)
    assert d.decide(f, run, 200.0, MONDAY_NOON_NY) == d.Bake("staging", 1900.0)
    assert d.decide(f, run, 1900.0, MONDAY_NOON_NY) == d.CloseWave("staging")
    run = run.with_wave("staging", status="passed")
    assert d.decide(f, run, 2000.0, MONDAY_NOON_NY) == d.WaitApproval("one-box")
    approved = d.Permissions(approved=frozenset({"one-box"}))
    assert d.decide(f, run, 2000.0, MONDAY_NOON_NY, approved) == d.Deliver("one-box", ("use1-cell1",))
    assert d.decide(f, run.with_wave("one-box", approved_by="ann"), 2000.0, MONDAY_NOON_NY) == d.Deliver(
        "one-box", ("use1-cell1",)
    )


def test_max_parallel_bounds_a_wave_s_batch(tmp_path: Path) -> None:
    """The rest wave delivers two at once."""
    f = _fleet(tmp_path)
    run = _run(f, staging=d.PASSED, use1_cell1=d.PASSED)
    run = run.with_wave("staging", status="passed").with_wave("one-box", status="passed")
    assert d.decide(f, run, 0.0, MONDAY_NOON_NY) == d.Deliver("rest", ("use1-cell2", "euw1"))


def test_outside_the_window_a_wave_does_not_start_but_a_running_one_goes_on(tmp_path: Path) -> None:
    """A window gates a wave's start only; --ignore-window lets it start."""
    f = _fleet(tmp_path)
    friday = datetime(2026, 12, 11, 15, 0, tzinfo=timezone.utc)
    action = d.decide(f, _run(f), 0.0, friday)
    assert isinstance(action, d.WaitWindow) and action.opens_at == datetime(2026, 12, 14, 14, 0, tzinfo=timezone.utc)
    assert d.decide(f, _run(f), 0.0, friday, d.Permissions(ignore_window=True)) == d.Deliver("staging", ("staging",))
    running = _run(f, staging=d.RUNNING).with_wave("staging", status="running")
    assert d.decide(f, running, 0.0, friday) == d.Deliver("staging", ("staging",))


def test_a_freeze_blocks_forward_moves(tmp_path: Path) -> None:
    """During the holidays no wave starts, even with the window ignored."""
    f = _fleet(tmp_path)
    christmas = datetime(2026, 12, 24, 17, 0, tzinfo=timezone.utc)
    action = d.decide(f, _run(f), 0.0, christmas, d.Permissions(ignore_window=True))
    assert isinstance(action, d.Frozen) and action.freeze.reason == "holidays"


def test_a_failure_stops_the_line_and_returns_the_wave_s_passed_targets(tmp_path: Path) -> None:
    """euw1 failed while use1-cell2 passed: cell2 goes back, nothing later starts, earlier waves keep."""
    f = _fleet(tmp_path)
    run = _run(f, staging=d.PASSED, use1_cell1=d.PASSED, use1_cell2=d.PASSED, euw1=d.FAILED)
    run = run.with_wave("staging", status="passed").with_wave("one-box", status="passed")
    action = d.decide(f, run, 0.0, MONDAY_NOON_NY)
    assert isinstance(action, d.StopLine)
    assert action.wave == "rest" and action.failed == ("euw1",) and action.give_back == ("use1-cell2",)
    assert action.cancel == ()


def test_earlier_waves_rollback_returns_them_too_and_pending_targets_are_cancelled(tmp_path: Path) -> None:
    """With earlier_waves: rollback, staging goes back as well; a failure in one-box cancels the rest wave."""
    f = _fleet(tmp_path, FLEET.replace("earlier_waves: keep", "earlier_waves: rollback"))
    run = _run(f, staging=d.PASSED, use1_cell1=d.NEEDS_HUMAN).with_wave("staging", status="passed")
    action = d.decide(f, run, 0.0, MONDAY_NOON_NY)
    assert isinstance(action, d.StopLine)
    assert action.give_back == ("staging",) and set(action.cancel) == {"use1-cell2", "euw1"}


def test_a_stopped_run_finishes_stopped_or_needing_a_human(tmp_path: Path) -> None:
    """After the stop the decision is final: stopped, or needs_human when any target needs one."""
    f = _fleet(tmp_path)
    from dataclasses import replace

    stopped = replace(_run(f, staging=d.FAILED), stopped="failed in staging")
    assert d.decide(f, stopped, 0.0, MONDAY_NOON_NY) == d.Finish("stopped")
    human = replace(_run(f, staging=d.NEEDS_HUMAN), stopped="x")
    assert d.decide(f, human, 0.0, MONDAY_NOON_NY) == d.Finish("needs_human")


def test_the_journal_value_round_trips_through_plain_data(tmp_path: Path) -> None:
    """What is stored is what is read back (resume after kill -9 depends on it)."""
    f = _fleet(tmp_path)
    run = _run(f, staging=d.PASSED).with_wave("staging", status="baking", bake_from=5.0).with_event(1.0, "x", a=1)
    assert d.FleetRun.from_dict(run.to_dict()) == run


def _release_of(root: Path, monkeypatch: Any, env: dict[str, str]) -> str:
    """The release key `fleet run` computes for the fleet in `root`, with these environment variables set."""
    from orchestrator.cli.app import App
    from orchestrator.cli.fleet import CliTargets
    from orchestrator.fleet.loader import validate_fleet

    for k, v in env.items():
        monkeypatch.setenv(k, v)
    fleet = load_fleet(root / "fleet.yaml")
    return CliTargets(App(), fleet, validate_fleet(fleet)).release_of(fleet, None)


def _release_folder(root: Path) -> Path:
    (root / "phases").mkdir(parents=True)
    (root / "pipeline.yaml").write_text(
        "version: 1\nservice: {cluster: shine, name: shine-api-gateway, region: us-east-1, container: api, port: 5000}\n"
        "registry: {url: 127.0.0.1:5055/shine-api-gateway}\nphases: [v1]\n"
    )
    (root / "phases" / "v1.yaml").write_text(
        'name: v1\nimage: {ref: "127.0.0.1:5055/shine-api-gateway@sha256:' + "a" * 64 + '"}\n'
        'task: {environment: {ML_FORCE_FAIL: "${DEMO_BREAK_ML:-0}"}}\n'
    )
    (root / "fleet.yaml").write_text(
        "version: 1\ntargets:\n  a: {cluster: a}\n  b: {cluster: b}\nwaves:\n  - {name: all, targets: [a, b]}\n"
    )
    return root


def test_the_release_is_its_images_and_its_phase_specs_wherever_it_is_checked_out(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """Same image, another environment value: another release (its quarantine is not the good one's); the same
    files in another folder (another CI runner's checkout): the same release."""
    one = _release_folder(tmp_path / "runner-a")
    other = _release_folder(tmp_path / "runner-b" / "deep")
    good = _release_of(one, monkeypatch, {"DEMO_BREAK_ML": "0"})
    assert _release_of(other, monkeypatch, {"DEMO_BREAK_ML": "0"}) == good
    assert _release_of(one, monkeypatch, {"DEMO_BREAK_ML": "1"}) != good


def test_a_broken_pipeline_shared_by_targets_is_reported_once(tmp_path: Path) -> None:
    """Two targets run one pipeline with a mistake: validate names it once, not once per target."""
    from orchestrator.errors import ConfigErrors
    from orchestrator.fleet.loader import validate_fleet

    root = _release_folder(tmp_path)
    (root / "pipeline.yaml").write_text((root / "pipeline.yaml").read_text().replace("port: 5000", "port: lots"))
    with pytest.raises(ConfigErrors) as err:
        validate_fleet(load_fleet(root / "fleet.yaml"))
    assert len(err.value.errors) == 1
