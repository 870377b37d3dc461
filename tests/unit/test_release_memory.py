"""Release memory as pure decisions: rollback targets never roll forward, failed specs are quarantined, holds
stick until released or the spec changes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.release_memory import (
    QUARANTINED,
    Block,
    Refusal,
    blocked,
    blocks,
    hold,
    release,
    release_target,
    rollback_holds,
    rollback_target,
    status_lines,
)
from orchestrator.state.base import FAILED, GOOD, HELD, RELEASED, Mark, current_marks, good_from_marks

ARN = "arn:aws:ecs:us-east-1:123456789012:task-definition/svc:{}"
PHASES = ["health-only", "hybrid-ml", "optimized", "enhanced"]


def arn(n: int) -> str:
    """The ARN of revision n of family svc."""
    return ARN.format(n)


def mk(n: int, verdict: str = GOOD, minute: int | None = None, phase: str | None = None, **kw: object) -> Mark:
    """A mark on revision n that went live at minute `minute` (default n) of the day."""
    m = n if minute is None else minute
    at = kw.pop("at", f"2026-11-29T06:{m:02d}:00+00:00")
    return Mark(
        service="svc",
        revision_arn=arn(n),
        phase=phase or PHASES[(n - 1) % 4],
        verdict=verdict,
        spec_hash=str(kw.pop("spec_hash", f"spec{n}")),
        at=str(at),
        live_since=str(kw.pop("live_since", f"2026-11-29T06:{m:02d}:00+00:00")),
        run_id=str(kw.pop("run_id", f"r-{n}")),
        **kw,  # type: ignore[arg-type]
    )


def history() -> list[Mark]:
    """Four good revisions 1..4, deployed in order (newest first, as the store returns them)."""
    return [mk(4), mk(3), mk(2), mk(1)]


def newest_first(marks: list[Mark], *new: Mark) -> list[Mark]:
    """The store's order after writing `new` (newest first)."""
    return list(reversed(new)) + marks


# ---------------------------------------------------------------- rollback target: plain
@pytest.mark.parametrize("live,expected", [(4, 3), (3, 2), (2, 1)])
def test_plain_rollback_goes_to_the_revision_live_just_before(live: int, expected: int) -> None:
    """From each position of four good revisions, a plain rollback picks the one that went live just before."""
    target = rollback_target(history(), arn(live))
    assert isinstance(target, Mark) and target.revision_arn == arn(expected)


def test_plain_rollback_from_the_first_revision_is_refused() -> None:
    """From the oldest good revision there is nothing before it: a refusal for a human, never a newer revision."""
    r = rollback_target(history(), arn(1))
    assert isinstance(r, Refusal) and not r.usage
    assert "no good revision was live before svc:1" in r.message


def test_repeated_rollbacks_walk_back_and_never_forward() -> None:
    """Three rollbacks in a row go 4 -> 3 -> 2 -> 1 (holds written each time), then stop: no ping-pong."""
    marks, live, visited = history(), arn(4), []
    for _ in range(3):
        target = rollback_target(marks, live)
        assert isinstance(target, Mark)
        assert int(target.revision_arn.rsplit(":", 1)[1]) < int(live.rsplit(":", 1)[1])
        holds = rollback_holds(
            marks, target, live, service="svc", by="ops@laptop", reason="", at="2026-11-29T07:00:00+00:00", run_id="rb"
        )
        marks = newest_first(marks, *holds)
        live = target.revision_arn
        visited.append(target.short)
    assert visited == ["svc:3", "svc:2", "svc:1"]
    assert isinstance(rollback_target(marks, live), Refusal)


def test_rolling_back_does_not_make_a_revision_newer() -> None:
    """After --to-revision 2 (a rollback leaves its live_since alone), a plain rollback goes to 1, not 3 or 4."""
    marks = history()
    target = rollback_target(marks, arn(4), to_revision="2")
    assert isinstance(target, Mark) and target.short == "svc:2"
    target = rollback_target(marks, arn(2))
    assert isinstance(target, Mark) and target.short == "svc:1"


def test_regating_a_revision_later_does_not_move_it_forward() -> None:
    """A newer good mark on revision 2 (re-gated at 06:09) keeps its live_since: from 4 the target is still 3."""
    marks = [mk(2, at="2026-11-29T06:09:00+00:00", live_since="2026-11-29T06:02:00+00:00"), *history()]
    target = rollback_target(marks, arn(4))
    assert isinstance(target, Mark) and target.short == "svc:3"


def test_deregistered_revision_is_never_a_target() -> None:
    """Revision 3 is INACTIVE: from 4 the rollback goes to 2; from 2... to 1; INACTIVE named when nothing is left."""
    marks = [mk(4), mk(3, active=False), mk(2), mk(1, active=False)]
    target = rollback_target(marks, arn(4))
    assert isinstance(target, Mark) and target.short == "svc:2"
    r = rollback_target(marks, arn(2))
    assert isinstance(r, Refusal) and "svc:1" in r.message and "deregistered" in r.message


def test_live_revision_without_a_mark_goes_to_the_newest_good() -> None:
    """A revision deployed by hand (no mark) is live: the rollback goes to the most recently live good revision."""
    target = rollback_target(history(), arn(9))
    assert isinstance(target, Mark) and target.short == "svc:4"


def test_live_failed_revision_goes_to_the_good_one_before_it() -> None:
    """A failed revision left live (its rollback failed) is rolled back to the good revision live before it."""
    marks = newest_first(history(), mk(5, FAILED, live_since="2026-11-29T06:05:00+00:00"))
    target = rollback_target(marks, arn(5))
    assert isinstance(target, Mark) and target.short == "svc:4"


def test_same_second_deploys_are_ordered_by_revision_number() -> None:
    """Two phases deployed within the same second: the revision number breaks the tie."""
    marks = [mk(3, minute=1), mk(2, minute=1), mk(1, minute=0)]
    target = rollback_target(marks, arn(3))
    assert isinstance(target, Mark) and target.short == "svc:2"


def test_held_and_failed_revisions_are_not_plain_targets() -> None:
    """Only revisions whose newest mark is good are targets: 3 held and 2 failed leave 1."""
    marks = [mk(3, HELD, at="2026-11-29T07:00:00+00:00"), *history()]
    marks = [mk(2, FAILED, at="2026-11-29T07:01:00+00:00"), *marks]
    target = rollback_target(marks, arn(4))
    assert isinstance(target, Mark) and target.short == "svc:1"


# ---------------------------------------------------------------- rollback target: explicit
@pytest.mark.parametrize("name", ["2", "svc:2", ARN.format(2)])
def test_to_revision_accepts_number_family_and_arn(name: str) -> None:
    """--to-revision takes 2, svc:2 or the ARN."""
    target = rollback_target(history(), arn(4), to_revision=name)
    assert isinstance(target, Mark) and target.short == "svc:2"


def test_to_revision_may_go_to_a_newer_good_revision() -> None:
    """An explicit --to-revision is the human's choice, forward included (only a plain rollback never goes forward)."""
    target = rollback_target(history(), arn(2), to_revision="4")
    assert isinstance(target, Mark) and target.short == "svc:4"


@pytest.mark.parametrize(
    "marks,name,words",
    [
        (history(), "7", "never passed snail's gates; good revisions: svc:4, svc:3, svc:2, svc:1"),
        (history(), "4", "already live"),
        ([mk(2, active=False), *history()], "2", "deregistered (INACTIVE)"),
        ([mk(2, HELD, by="ops@laptop", at="2026-11-29T07:00:00+00:00"), *history()], "2", "snail release svc:2"),
        ([mk(2, FAILED, reason="status 500", at="2026-11-29T07:00:00+00:00"), *history()], "2", "failed its gates"),
    ],
)
def test_to_revision_refusals_are_usage_errors(marks: list[Mark], name: str, words: str) -> None:
    """Unknown, live, deregistered, held and failed revisions are refused with what to do (exit 2)."""
    r = rollback_target(marks, arn(4), to_revision=name)
    assert isinstance(r, Refusal) and r.usage and words in r.message


def test_to_phase_picks_that_phases_good_revision() -> None:
    """--to-phase hybrid-ml from enhanced goes to hybrid-ml's revision (2)."""
    target = rollback_target(history(), arn(4), to_phase="hybrid-ml", phases=PHASES)
    assert isinstance(target, Mark) and target.short == "svc:2"


def test_to_phase_unknown_is_a_usage_error() -> None:
    """An unknown phase name is a usage error naming the phases."""
    r = rollback_target(history(), arn(4), to_phase="turbo", phases=PHASES)
    assert isinstance(r, Refusal) and r.usage and "no phase named 'turbo'" in r.message


def test_to_phase_whose_only_good_revision_is_live_is_refused() -> None:
    """--to-phase of the live revision's own phase with no other good revision: refused."""
    r = rollback_target(history(), arn(4), to_phase="enhanced", phases=PHASES)
    assert isinstance(r, Refusal) and r.usage and "no good revision other than the live one" in r.message


def test_to_phase_and_to_revision_together_are_refused() -> None:
    """Both targets at once is a usage error."""
    r = rollback_target(history(), arn(4), to_phase="enhanced", to_revision="2")
    assert isinstance(r, Refusal) and r.usage


# ---------------------------------------------------------------- holds
def test_to_phase_rollback_holds_the_live_and_the_skipped_revisions() -> None:
    """Rolling back 4 -> 2 holds 4 (rolled back from) and 3 (skipped over), so a scheduled run deploys neither."""
    marks = history()
    target = rollback_target(marks, arn(4), to_phase="hybrid-ml", phases=PHASES)
    assert isinstance(target, Mark)
    holds = rollback_holds(
        marks,
        target,
        arn(4),
        service="svc",
        by="ops@laptop",
        reason="login broken",
        at="2026-11-29T07:00:00+00:00",
        run_id="rb-1",
    )
    assert sorted(h.short for h in holds) == ["svc:3", "svc:4"]
    assert all(h.verdict == HELD and h.prior == GOOD and h.by == "ops@laptop" for h in holds)
    marks = newest_first(marks, *holds)
    b = blocked(marks, "spec4", "enhanced")
    assert b is not None and b.kind == HELD and b.by == "ops@laptop" and b.reason == "login broken"
    assert "held since 2026-11-29T07:00:00+00:00 by ops@laptop (login broken)" in b.message()
    assert "snail release svc:4" in b.lifted_by
    assert blocked(marks, "spec3", "optimized") is not None
    assert blocked(marks, "spec2", "hybrid-ml") is None


def test_release_lifts_a_hold_and_restores_good() -> None:
    """`snail release` writes the verdict the hold replaced: the spec deploys again and is a rollback target."""
    held = hold(
        mk(4),
        service="svc",
        revision_arn=arn(4),
        by="ops@laptop",
        reason="",
        at="2026-11-29T07:00:00+00:00",
        run_id="rb",
    )
    marks = newest_first(history(), held)
    assert blocked(marks, "spec4", "enhanced") is not None
    released = release(held, by="lead@desk", at="2026-11-29T07:05:00+00:00", run_id="rel")
    marks = newest_first(marks, released)
    assert released.verdict == GOOD and released.live_since == mk(4).live_since
    assert blocked(marks, "spec4", "enhanced") is None
    assert [g.revision_arn for g in good_from_marks(marks)][:1] == [arn(4)]


def test_hold_on_an_unmarked_revision_is_released_as_released() -> None:
    """A hand-deployed revision (no mark) rolled back from is held; releasing it does not make it good."""
    held = hold(None, service="svc", revision_arn=arn(9), by="ops", reason="", at="t", run_id="rb")
    assert (held.verdict, held.prior) == (HELD, RELEASED)
    assert release(held, by="ops", at="t2", run_id="rel").verdict == RELEASED


def test_a_changed_spec_is_not_held() -> None:
    """A new spec for the held phase is a new release: not blocked."""
    marks = newest_first(
        history(), hold(mk(4), service="svc", revision_arn=arn(4), by="o", reason="", at="t9", run_id="r")
    )
    assert blocked(marks, "spec4-changed", "enhanced") is None


def test_release_target_by_phase_or_revision() -> None:
    """`snail release enhanced` (its current spec is held) and `snail release 4` name the same held revision."""
    marks = newest_first(
        history(), hold(mk(4), service="svc", revision_arn=arn(4), by="o", reason="", at="t9", run_id="r")
    )
    specs = {p: f"spec{i + 1}" for i, p in enumerate(PHASES)}
    assert release_target(marks, "enhanced", specs) == marks[0]
    assert release_target(marks, "4", specs, arn(3)) == marks[0]
    assert release_target(marks, "svc:4", specs) == marks[0]
    refused = release_target(marks, "3", specs, arn(3))
    assert isinstance(refused, Refusal) and refused.usage and "held: svc:4 (enhanced)" in refused.message


def test_release_of_a_phase_lifts_only_the_hold_on_its_current_spec() -> None:
    """Two held revisions of enhanced: the one a human rolled back from long ago (svc:4, another spec) and the
    current spec's (svc:8). `release enhanced` names svc:8 only; svc:4 is lifted only by its own name, so it
    never becomes a rollback target again by accident."""
    old = hold(mk(4), service="svc", revision_arn=arn(4), by="o", reason="/health 500 after bake", at="t5", run_id="a")
    new = hold(
        mk(8, phase="enhanced", spec_hash="spec8"),
        service="svc",
        revision_arn=arn(8),
        by="o",
        reason="",
        at="t9",
        run_id="b",
    )
    marks = newest_first([mk(8, phase="enhanced", spec_hash="spec8"), *history()], old, new)
    specs = {"health-only": "spec1", "hybrid-ml": "spec2", "optimized": "spec3", "enhanced": "spec8"}
    assert release_target(marks, "enhanced", specs).revision_arn == arn(8)
    lifted = release(new, by="o", at="t10", run_id="rel")
    after = newest_first(marks, lifted)
    again = release_target(after, "enhanced", specs)
    assert isinstance(again, Refusal) and "current spec spec8 is not held" in again.message
    assert "svc:4 (spec spec4" in again.message and "/health 500 after bake" in again.message
    assert "`snail release svc:4`" in again.message
    target = rollback_target(after, arn(1), to_phase="enhanced")
    assert isinstance(target, Mark) and target.revision_arn == arn(8)
    assert isinstance(rollback_target(after, arn(1), to_revision="4"), Refusal)


def test_release_of_a_phase_with_nothing_held_is_a_usage_error() -> None:
    """Nothing held for the phase: exit 2, naming what is held."""
    refused = release_target(history(), "enhanced", {"enhanced": "spec4"})
    assert (
        isinstance(refused, Refusal)
        and refused.usage
        and "nothing held matches 'enhanced' (phase enhanced)" in refused.message
    )


# ---------------------------------------------------------------- quarantine
def test_failed_spec_is_quarantined_with_who_when_why() -> None:
    """A spec that failed its gates is blocked: the block names the run, the time, the reason and the way out."""
    marks = newest_first(
        history(),
        mk(5, FAILED, phase="enhanced", spec_hash="bad", reason="status 500, expected 200", run_id="r-cron-1"),
    )
    b = blocked(marks, "bad", "enhanced")
    assert isinstance(b, Block) and b.kind == QUARANTINED
    assert (b.run_id, b.reason) == ("r-cron-1", "status 500, expected 200")
    assert "failed its gates in run r-cron-1" in b.message() and "--retry-failed" in b.message()


def test_retry_failed_allows_a_quarantined_spec() -> None:
    """allow_failed (run --retry-failed) lets a quarantined spec through; a hold still blocks."""
    marks = newest_first(history(), mk(5, FAILED, phase="enhanced", spec_hash="bad"))
    assert blocked(marks, "bad", "enhanced", allow_failed=True) is None
    held = newest_first(
        history(), hold(mk(4), service="svc", revision_arn=arn(4), by="o", reason="", at="t9", run_id="r")
    )
    assert blocked(held, "spec4", "enhanced", allow_failed=True) is not None


def test_a_failed_spec_that_later_passed_is_not_quarantined() -> None:
    """The newest mark with the spec decides: failed, then good after --retry-failed: free."""
    marks = newest_first(
        history(),
        mk(5, FAILED, phase="enhanced", spec_hash="s"),
        mk(6, GOOD, phase="enhanced", spec_hash="s", minute=7),
    )
    assert blocked(marks, "s", "enhanced") is None


@pytest.mark.parametrize("spec,phase", [("other", "enhanced"), ("bad", "optimized"), ("", "enhanced")])
def test_quarantine_matches_only_the_same_spec_and_phase(spec: str, phase: str) -> None:
    """A changed spec, another phase, or no spec at all is not quarantined."""
    marks = newest_first(history(), mk(5, FAILED, phase="enhanced", spec_hash="bad"))
    assert blocked(marks, spec, phase) is None


def test_blocks_lists_every_quarantined_and_held_spec() -> None:
    """status: one line per blocked spec, newest first; lifted ones are not listed."""
    marks = newest_first(
        history(),
        mk(5, FAILED, phase="enhanced", spec_hash="bad", minute=5),
        hold(mk(3), service="svc", revision_arn=arn(3), by="o", reason="", at="t9", run_id="r"),
    )
    assert [(b.kind, b.phase) for b in blocks(marks)] == [(HELD, "optimized"), (QUARANTINED, "enhanced")]
    lifted = newest_first(marks, release(marks[0], by="o", at="t10", run_id="x"))
    assert [(b.kind, b.phase) for b in blocks(lifted)] == [(QUARANTINED, "enhanced")]


def test_current_marks_keeps_the_newest_per_revision() -> None:
    """current_marks: one mark per revision, the newest."""
    marks = newest_first(history(), mk(2, FAILED, at="t9"))
    cur = current_marks(marks)
    assert len(cur) == 4 and next(m for m in cur if m.short == "svc:2").verdict == FAILED


# ---------------------------------------------------------------- properties

_HISTORY = st.lists(
    st.tuples(
        st.sampled_from([GOOD, GOOD, GOOD, FAILED, HELD]),  # verdict
        st.booleans(),  # still registered
        st.integers(min_value=0, max_value=59),  # minute it went live (ties happen)
    ),
    min_size=1,
    max_size=12,
)


def _marks(rows: list[tuple[str, bool, int]]) -> list[Mark]:
    """Revisions 1..n with these verdicts, registration states and go-live minutes, newest mark first."""
    return [mk(n, v, minute=m, active=a) for n, (v, a, m) in reversed(list(enumerate(rows, start=1)))]


@settings(max_examples=300, deadline=None)
@given(_HISTORY, st.integers(min_value=1, max_value=13))
def test_property_a_plain_rollback_never_goes_forward(rows: list[tuple[str, bool, int]], live_n: int) -> None:
    """Whatever the history: the target is good, registered, not live, and went live before the live revision."""
    marks = _marks(rows)
    target = rollback_target(marks, arn(live_n))
    if isinstance(target, Refusal):
        return
    assert target.verdict == GOOD and target.active and target.revision_arn != arn(live_n)
    live = next((m for m in marks if m.revision_arn == arn(live_n)), None)
    if live is not None:
        assert (target.live_since, int(target.short.split(":")[1])) < (live.live_since, live_n)


@settings(max_examples=200, deadline=None)
@given(_HISTORY, st.integers(min_value=1, max_value=12))
def test_property_repeated_rollbacks_end_and_never_revisit(rows: list[tuple[str, bool, int]], live_n: int) -> None:
    """Rolling back again and again (holds written each time) visits each revision at most once, then stops."""
    marks, live, seen = _marks(rows), arn(live_n), {arn(live_n)}
    for _ in range(len(rows) + 1):
        target = rollback_target(marks, live)
        if isinstance(target, Refusal):
            return
        assert target.revision_arn not in seen
        seen.add(target.revision_arn)
        marks = newest_first(
            marks, *rollback_holds(marks, target, live, service="svc", by="o", reason="", at="t", run_id="r")
        )
        live = target.revision_arn
    raise AssertionError("rollbacks never stopped")


@settings(max_examples=300, deadline=None)
@given(_HISTORY, st.integers(min_value=1, max_value=12))
def test_property_quarantined_or_held_spec_is_never_allowed_without_a_flag(
    rows: list[tuple[str, bool, int]], n: int
) -> None:
    """A spec whose newest mark is failed or held is blocked unless the matching flag is given; good is free."""
    marks = _marks(rows)
    m = next((m for m in marks if m.revision_arn == arn(n)), None)
    if m is None:
        return
    b = blocked(marks, m.spec_hash, m.phase)
    if m.verdict == GOOD:
        assert b is None
    else:
        assert b is not None and b.revision_arn == m.revision_arn
        assert (blocked(marks, m.spec_hash, m.phase, allow_failed=True) is None) == (m.verdict == FAILED)
        assert (blocked(marks, m.spec_hash, m.phase, allow_held=True) is None) == (m.verdict == HELD)


def test_status_lines_name_blocks_and_deregistered_good_revisions() -> None:
    """status: held and quarantined specs with what lifts them, and a deregistered good revision, one line each."""
    marks = newest_first(
        [mk(4), mk(3, active=False), mk(2), mk(1)],
        mk(5, FAILED, phase="enhanced", spec_hash="bad", reason="status 500", minute=5),
        hold(mk(4), service="svc", revision_arn=arn(4), by="ops@laptop", reason="slow", at="t9", run_id="r"),
    )
    lines = status_lines(marks)
    assert len(lines) == 3
    assert "held since t9 by ops@laptop (slow)" in lines[0] and "snail release svc:4" in lines[0]
    assert "quarantined" in lines[1] and "--retry-failed" in lines[1]
    assert lines[2] == "svc:3 (optimized) passed its gates but is deregistered (INACTIVE): never a rollback target"
