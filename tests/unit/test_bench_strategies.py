"""The figures of `make bench-strategies` (bench/strategies/figures.py): pure functions, no Docker, no sandbox."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

_PATH = Path(__file__).resolve().parents[2] / "bench" / "strategies" / "figures.py"
_spec = importlib.util.spec_from_file_location("bench_strategies_figures", _PATH)
assert _spec is not None and _spec.loader is not None
fig: Any = importlib.util.module_from_spec(_spec)
sys.modules["bench_strategies_figures"] = fig
_spec.loader.exec_module(fig)

R = fig.Response


def test_version_is_read_from_the_apps_server_header() -> None:
    """`Server: snail-PHASE/VERSION BaseHTTP/… Python/…` names the version; the balancer's own replies do not."""
    assert fig.version_of("snail-hybrid-ml/broken-3 BaseHTTP/0.6 Python/3.11.2") == "broken-3"
    assert fig.version_of("snail-hybrid-ml/good-0") == "good-0"
    assert fig.version_of(None) is None
    assert fig.version_of("nginx/1.2") is None
    assert fig.version_of("snail-x/") is None


def test_failed_means_no_answer_or_5xx() -> None:
    """A 503 from the broken app, a 502 from the balancer and no answer fail; a 404 does not."""
    rs = [R(1.0, 200, "good-0"), R(2.0, 503, "broken-1"), R(3.0, None, None), R(4.0, 502, None), R(5.0, 404, None)]
    assert fig.counts(rs) == (5, 3)


def test_seconds_broken_is_first_to_last_response_of_the_broken_revision() -> None:
    """Only responses that name the broken version count, whatever their status, and failures of no task do not."""
    rs = [R(10.0, 200, "good-0"), R(11.5, 503, "broken-2"), R(12.0, None, None), R(14.0, 200, "broken-2")]
    rs.append(R(15.0, 200, "good-0"))
    assert fig.broken_served(rs) == (2, 11.5, 14.0)
    assert fig.seconds_broken(rs) == pytest.approx(2.5)
    assert fig.seconds_broken([R(1.0, 200, "good-0")]) == 0.0


def test_back_to_good_counts_from_the_decision_to_the_first_good_answer_after_the_last_bad_one() -> None:
    """Broken and failed answers after the decision delay 'back on good'; good ones in between do not end it."""
    rs = [
        R(9.0, 503, "broken-1"),
        R(10.2, 200, "good-0"),
        R(10.4, 503, "broken-1"),
        R(10.9, None, None),
        R(11.3, 200, "good-0"),
        R(11.5, 200, "good-0"),
    ]
    assert fig.back_to_good(rs, 10.0) == pytest.approx(1.3)


def test_back_to_good_is_zero_when_production_never_left_good_and_none_without_decision_or_recovery() -> None:
    """Blue-green caught on the test listener: 0.0; no decision or still broken at the end: None."""
    good = [R(t, 200, "good-0") for t in (1.0, 2.0, 3.0)]
    assert fig.back_to_good(good, 1.5) == 0.0
    assert fig.back_to_good(good, None) is None
    assert fig.back_to_good([*good, R(4.0, 503, "broken-1")], 1.5) is None


def test_decision_time_is_the_earliest_gate_failed_or_rollback_event_of_the_run() -> None:
    """Events before `since` (an earlier run) and other kinds are ignored; ISO times become epoch seconds."""
    events = [
        {"kind": "gate_failed", "at": "2026-11-29T19:00:00+00:00"},  # an earlier run
        {"kind": "service_updated", "at": "2026-11-29T19:09:18+00:00"},
        {"kind": "decision", "at": "2026-11-29T19:09:28+00:00"},
        {"kind": "gate_failed", "at": "2026-11-29T19:09:27+00:00"},
        {"kind": "rollback_started", "at": "2026-11-29T19:09:29+00:00"},
    ]
    since = fig._epoch("2026-11-29T19:09:17+00:00")
    assert fig.decision_time(events, since=since) == fig._epoch("2026-11-29T19:09:27+00:00")
    assert fig.decision_time([{"kind": "gate_passed", "at": "2026-11-29T19:09:27+00:00"}]) is None


def test_decision_call_is_the_first_rollback_call_at_or_after_the_journaled_second() -> None:
    """The release's own UpdateService and calls before the decision's second are not the decision."""
    calls = [
        ("UpdateService", 100.2),
        ("ContinueServiceDeployment", 104.9),  # before the decision's second: a CONTINUE
        ("DescribeServices", 110.1),
        ("ContinueServiceDeployment", 110.4),
        ("UpdateService", 111.0),
    ]
    assert fig.decision_call(calls, 110.0) == pytest.approx(110.4)
    assert fig.decision_call([("UpdateService", 100.2), ("UpdateService", 107.3)], 107.0) == pytest.approx(107.3)
    assert fig.decision_call([("UpdateService", 100.2)], 100.0) is None
    assert fig.decision_call(calls, None) is None


def test_tasks_started_counts_new_arns_only() -> None:
    """Tasks present when the run began are not started by it."""
    assert fig.tasks_started({"a", "b"}, {"a", "b", "c", "d"}) == 2


def test_targets_are_judged_on_every_run() -> None:
    """One run over the bar fails a target even when the median is fine; ecs-deploy is not judged on 2 s."""
    run = {"sent": 1500, "load_seconds": 30.0, "failed": 0, "decision_to_good_s": 0.0}
    rows = {
        "blue-green": [run, {**run, "failed": 1}, run],
        "canary": [{**run, "failed": 40}],
        "canary-metrics": [{**run, "failed": 51}],
        "rolling": [{**run, "decision_to_good_s": 4.2}],
        "linear": [{**run, "decision_to_good_s": None}],
        "ecs-deploy": [{**run, "decision_to_good_s": None}],
    }
    t = fig.targets(rows, gate_window_s=10.0)
    assert t["blue-green: 0 failed production requests"][0] is False
    assert t["canary: failed <= its 10 % share of one gate window"][0] is True  # 10 % of 50 req/s * 10 s = 50
    assert t["canary-metrics: failed <= its 10 % share of one gate window"][0] is False
    assert t["canary: back on good <= 2 s after the decision"][0] is True
    assert t["rolling: back on good <= 2 s after the decision"][0] is False
    assert t["linear: back on good <= 2 s after the decision"][0] is False
    assert not any(k.startswith("ecs-deploy") for k in t)
