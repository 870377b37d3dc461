"""The trail renderers on a recorded trail that holds every event kind: Markdown in the field log's shape, the
HTML page, and the escaping of untrusted text."""

from __future__ import annotations

import re

from orchestrator.trail import render
from orchestrator.trail.escape import md_block, md_inline, neutralise, one_line
from orchestrator.trail.html import anchor
from orchestrator.trail.kinds import EventKind, kind_of
from orchestrator.trail.markdown import ICON, stamp
from orchestrator.trail.model import live_phase, rollbacks, runs_view, sections, unproven_change
from tests.unit.trail_recorded import PHASES, recorded

SVC = "shine-api-gateway"


def _md(events=None, runs=None) -> str:  # noqa: ANN001
    ev, rs, header = recorded()
    return render("md", SVC, ev if events is None else events, rs if runs is None else runs, PHASES, header)


def _html(events=None, runs=None) -> str:  # noqa: ANN001
    ev, rs, header = recorded()
    return render("html", SVC, ev if events is None else events, rs if runs is None else runs, PHASES, header)


def _block(md: str, heading: str) -> str:
    """The text of one `## heading` section."""
    start = md.index(heading)
    nxt = md.find("\n## ", start + len(heading))
    return md[start : nxt if nxt > 0 else len(md)]


def test_recorded_trail_holds_every_event_kind() -> None:
    """The fixture covers the whole EventKind enum, so every renderer test sees every kind."""
    events, _, _ = recorded()
    missing = {k.value for k in EventKind} - {e.kind for e in events}
    assert not missing, f"add {missing} to tests/unit/data/make_trail_recorded.py, run it, and render them"
    assert kind_of("gate_passed") is EventKind.GATE_PASSED and kind_of("no_such_kind") is None
    assert EventKind.DECISION == "decision" and str(EventKind.DECISION) == "decision"


def test_markdown_lists_every_phase_event_in_its_progress_log_with_seconds_date_and_zone() -> None:
    """Each phase-level event's message is in the Markdown once in a progress log, stamped to the second."""
    events, _, _ = recorded()
    md = _md()
    logs = "\n".join(re.findall(r"### \*\*Progress Log:\*\*\n```\n(.*?)```", md, re.S))
    for e in events:
        if e.phase is None and e.kind != "decision":
            continue
        line = f"🐌 {stamp(e.at)}: {ICON[e.kind]} {md_block(e.message)}\n"
        assert logs.count(line) == 1, e.message
    assert "🐌 [NOV 29 2026] - [07:15:38 UTC]: ❌ [ ] http /health: failed: status 500" in md
    assert "**Start Date**: November 29, 2026 - 07:15:02 UTC" in md
    assert not re.search(r"\[\d\d:\d\d\]", md), "minute-resolution stamps are gone"


def test_markdown_names_manual_rollbacks_and_lists_each_once() -> None:
    """A manual rollback: no 'Phase None', listed under rollbacks only (never a victory), its own section."""
    md = _md()
    assert "Phase None" not in md and "phase None" not in md
    rb = _block(md, "## 🚨 **EMERGENCY ROLLBACK EVENTS**")
    assert "Manual rollback to shine-api-gateway:2 (phase health-only) (run r-20261129-073000-d005)" in rb
    assert "[Reason]: requested by a person (`snail rollback`)" in rb
    assert "[Log]: RuntimeError: model file missing" in rb  # the diagnosis event's log lines
    wins = _block(md, "## 🎉 **VICTORY MILESTONES**")
    assert "rolled back" not in wins and "rollback" not in wins
    assert wins.count("🎯") == 2 and "nothing to do" not in wins  # two phases passed; a no-op is no victory
    assert "## 🐌 **MANUAL ROLLBACK TO: health-only** (run `r-20261129-073000-d005`)" in md
    decisions = _block(md, "## 📚 **KEY DECISIONS LOG**")
    assert "rolling back" not in decisions and "manual rollback" not in decisions
    for kind in (
        "lock of run r-y removed",
        "took over the lock",
        "was interrupted",
        "needs manual approval",
        "lifted",
        "notified slack",
        "notification to https://hooks.example/x failed",
    ):
        assert decisions.count(kind) == 1, kind


def test_markdown_progress_is_honest_after_a_rollback() -> None:
    """After a rollback the progress line is the live phase's share, never '100% Complete', and says why."""
    events, runs, _ = recorded()
    upto_manual = [e for e in events if e.at <= "2026-11-29T07:30:31+00:00"]
    md = _md(upto_manual)
    assert "100% Complete" not in md
    assert (
        "🐌 Overall Progress: 25% Complete (rolled back: the service runs phase health-only's last good revision)" in md
    )
    assert "- [X] **health-only**: complete" in md
    assert "- [ ] **hybrid-ml**: passed before, then rolled back: not live" in md
    first_run = [e for e in events if e.run_id == "r-20261129-070849-a001"]
    assert "🐌 Overall Progress: 50% Complete (live: phase hybrid-ml)" in _md(first_run)
    # the whole trail ends with an interrupted run that left an unverified revision: the line says so
    assert "since then the service was changed and not verified" in _md()


def test_markdown_neutralises_untrusted_text() -> None:
    """ECS and gate text with <script> and terminal escapes: no escape byte, no live HTML outside code blocks."""
    md = _md()
    assert "\x1b" not in md and "\x07" not in md
    outside = re.sub(r"```.*?```", "", md, flags=re.S)
    assert "<script>" not in outside and "\\<script\\>" in outside
    assert "Essential container in task exited" in md and "pwned" not in md.split("[Evidence]")[1].split("\n")[0]


def test_model_sections_live_phase_and_rollbacks() -> None:
    """Sections split at phase and run changes; a manual decision opens its rollback section; live phase follows."""
    events, runs, _ = recorded()
    secs = sections(events)
    titles = [(s.run_id[-4:], s.title, s.status) for s in secs]
    assert ("b002", "rollback to hybrid-ml", "rollback") in titles
    assert ("d005", "manual rollback to health-only", "rollback") in titles
    assert ("f007", "rollback to health-only", "rollback failed") in titles
    assert ("g008", "enhanced", "interrupted") in titles and ("c003", "enhanced", "paused") in titles
    assert live_phase(events) == "health-only"
    assert unproven_change(events).run_id == "r-20261129-080000-g008"  # type: ignore[union-attr]
    rbs = rollbacks(events)
    assert [rb["manual"] for rb in rbs] == [False, True, False, False]
    assert rbs[0]["target_phase"] == "hybrid-ml" and rbs[-1]["resolution"] == "IMPOSSIBLE - a human is needed"
    views = runs_view(events, runs)
    assert [v.run_id for v in views][:4] == [
        "r-20261129-081500-i010",
        "unlock-1",
        "release-1",
        "r-20261129-081000-h009",
    ]  # newest first


def test_html_page_is_self_contained_with_header_timeline_and_diagnosis() -> None:
    """The page: CSP forbidding fetches, no script, a header per run, a drawn timeline, diagnosis by the failure."""
    page = _html()
    assert '<meta http-equiv="Content-Security-Policy" content="default-src \'none\';' in page
    assert "<script" not in page.lower() and "<img" not in page.lower()
    assert not re.search(r"""(src|href)\s*=\s*['"]?\s*(https?:)?//""", page, re.I)
    # newest first, each run linked from the index by its anchor
    ids = re.findall(r"<section class=run id='([^']+)'", page)
    assert ids[0] == anchor("r-20261129-081500-i010")
    assert ids[3:5] == [anchor("r-20261129-081000-h009"), anchor("r-20261129-080000-g008")]
    for i in ids:
        assert f"href='#{i}'" in page
    assert "<dt>run by</dt><dd class='h-run-by'>oncall@ci-runner-7</dd>" in page
    assert "<dd class='h-started'>2026-11-29 07:15:00 UTC</dd>" in page
    assert "<dd class='h-exit-code'>1</dd>" in page and "<dd class='h-region'>us-east-1</dd>" in page
    assert page.count("<svg class=timeline") == 9  # every run with phases; the unlock and release entries have none
    assert "data-phase='enhanced' data-status='blocked'" in page
    assert "class='decision-mark'" in page and "class='rollback-mark' data-kind='rollback_verified'" in page
    assert "data-verdict='failed' data-attempts='10'" in page and page.count("class='attempt-tick'") == 10
    assert page.count("class='traffic-step'") == 2
    assert "data-share='blue 90%, green 10%'" in page
    run = page[page.index(f"id='{anchor('r-20261129-071500-b002')}'") :]
    aside = run[run.index("<aside class=diagnosis>") : run.index("</aside>")]
    assert "container api answers HTTP 500 on /health" in aside and "RuntimeError: model file missing" in aside
    assert "&lt;img src=x onerror=alert(1)&gt;" in aside and "\\u001b" not in aside


def test_html_limits_to_the_runs_given() -> None:
    """`--last N` hands the renderer N runs: the page shows exactly those, newest first."""
    events, runs, _ = recorded()
    two = runs[:2]
    keep = {r.run_id for r in two}
    page = _html([e for e in events if e.run_id in keep], two)
    assert re.findall(r"data-run='(r-[^']+)' data-status", page) == [r.run_id for r in two]


def test_escape_functions() -> None:
    """neutralise drops CSI/OSC/DCS sequences, C0/C1 controls and bidi overrides; Markdown and one-line helpers."""
    assert neutralise("a\x1b[31mred\x1b[0m") == "ared"
    assert neutralise("x\x1b]0;title\x07y\x1b]8;;http://e\x1b\\z") == "xyz"
    assert neutralise("p\x1bP+q\x1b\\q\x9b2Jr\u202eevil\x00\r\n") == "pqrevil\n"
    assert md_inline("<b>*x*</b> [l](u)") == "\\<b\\>\\*x\\*\\</b\\> \\[l\\](u)"
    assert md_block("a```b") == "aʼʼʼb"
    assert one_line("a\n  b\tc", 4) == "a b…"


def test_renderers_survive_unknown_kinds_and_odd_data() -> None:
    """A journal from a newer or older version (unknown kinds, naive times, odd data types) still renders."""
    from orchestrator.state.base import RunRecord, TrailEvent

    events = [
        TrailEvent("r1", SVC, "2026-11-29T07:00:00+00:00", "from_the_future", "something new", "one", {"x": 1}),
        TrailEvent("r1", SVC, "2026-11-29T07:00:05", "gate_passed", "[x] g", "one", {"attempts": "three"}),
        TrailEvent(
            "r1",
            SVC,
            "2026-11-29T07:00:06",
            "gate_failed",
            "[ ] g",
            "one",
            {"evidence": ["a"], "attempts_at": ["bad", 3]},
        ),
        TrailEvent("r1", SVC, "2026-11-29T07:00:07", "decision", "rolling back", None, {"reason": "x", "target": 5}),
        TrailEvent("r1", SVC, "2026-11-29T07:00:08", "traffic_shifted", "t", "one", {"traffic": {"blue": "x"}}),
    ]
    runs = [RunRecord("r1", SVC, "run", "failed", "2026-11-29T07:00:00+00:00")]
    md = render("md", SVC, events, runs, ["one"])
    assert "• something new" in md and "07:00:05 UTC" in md
    page = render("html", SVC, events, runs, ["one"])
    assert "something new" in page and "traffic-step" not in page
