"""The ladder's decisions (orchestrator/ladder.py), without AWS: which phases a run delivers given the live one."""

from __future__ import annotations

from orchestrator.ladder import BEHIND, CHANGED_BEHIND, DELIVER, LIVE, PASSED, Rung, behind_notes, climb

ORDER = ["v1", "v2", "v3"]
REV = "arn:aws:ecs:us-east-1:1:task-definition/app:{}"


def rungs(*specs: tuple[str, str]) -> list[Rung]:
    """One rung per phase of ORDER: (spec now, spec of its good revision or '')."""
    return [
        Rung(name, now, good, REV.format(i + 2) if good else "")
        for i, (name, (now, good)) in enumerate(zip(ORDER, specs, strict=True))
    ]


def cases(steps) -> list[str]:  # noqa: ANN001
    return [s.case for s in steps]


def test_nothing_changed_with_the_last_phase_live_is_one_skip_and_two_fallbacks() -> None:
    """v3 live with its spec: v3 is the only skip ("live and good"); v1 and v2 are behind, not deployed."""
    steps = climb(ORDER, rungs(("a", "a"), ("b", "b"), ("c", "c")), live_phase="v3", live_spec="c")
    assert cases(steps) == [BEHIND, BEHIND, LIVE]
    assert steps[2].reason == "live and good"
    assert "kept as a fallback, not deployed" in steps[0].reason
    assert behind_notes(steps) == []


def test_a_change_of_the_live_phase_is_delivered_directly() -> None:
    """v3 changed while live: v3 only, no climb through v1 and v2."""
    steps = climb(ORDER, rungs(("a", "a"), ("b", "b"), ("c2", "c")), live_phase="v3", live_spec="c")
    assert cases(steps) == [BEHIND, BEHIND, DELIVER]
    assert [s.phase for s in steps if s.delivers] == ["v3"]


def test_a_change_behind_the_live_phase_is_reported_and_not_deployed() -> None:
    """v1 changed while v3 is live: nothing delivered; the note says why and how to re-climb."""
    steps = climb(ORDER, rungs(("a2", "a"), ("b", "b"), ("c", "c")), live_phase="v3", live_spec="c")
    assert cases(steps) == [CHANGED_BEHIND, BEHIND, LIVE]
    assert not any(s.delivers for s in steps)
    (note,) = behind_notes(steps)
    assert note.startswith("v1 changed; it is behind the live phase v3: not deployed")
    assert "app:2" in note and "`snail run --from v1` re-climbs" in note


def test_a_phase_behind_that_never_passed_is_not_deployed_either() -> None:
    """A phase added before the live one never passed: reported, not deployed."""
    steps = climb(ORDER, rungs(("a", ""), ("b", "b"), ("c", "c")), live_phase="v3", live_spec="c")
    assert cases(steps) == [CHANGED_BEHIND, BEHIND, LIVE]
    assert "v1 never passed" in steps[0].reason


def test_phases_above_the_live_one_are_climbed_even_if_they_passed_before() -> None:
    """After `rollback --to-phase v1` and `release v2`: v2 passed earlier with this spec but is not live, so the
    run delivers it (and climbs on to v3); skip never means "passed earlier"."""
    steps = climb(ORDER, rungs(("a", "a"), ("b", "b"), ("c", "")), live_phase="v1", live_spec="a")
    assert cases(steps) == [LIVE, DELIVER, DELIVER]
    assert "passed earlier on app:3: reused" in steps[1].reason


def test_before_any_phase_is_live_the_ladder_is_climbed_in_order() -> None:
    """A service on a revision snail did not mark: every phase in order."""
    steps = climb(ORDER, rungs(("a", ""), ("b", ""), ("c", "")), live_phase=None)
    assert cases(steps) == [DELIVER, DELIVER, DELIVER]


def test_a_first_climb_resumes_at_the_first_phase_that_has_not_passed() -> None:
    """No phase live, v1 passed earlier with this spec: v1 is "passed" (not skip), the climb resumes at v2."""
    steps = climb(ORDER, rungs(("a", "a"), ("b", ""), ("c", "")), live_phase=None)
    assert cases(steps) == [PASSED, DELIVER, DELIVER]
    assert "not live: the climb resumes at v2" in steps[0].reason


def test_a_first_climb_where_everything_passed_delivers_the_last_phase_again() -> None:
    """Every phase passed but none is live (someone deployed another revision): the last phase is delivered."""
    steps = climb(ORDER, rungs(("a", "a"), ("b", "b"), ("c", "c")), live_phase=None)
    assert cases(steps) == [PASSED, PASSED, DELIVER]


def test_a_named_start_delivers_every_selected_phase() -> None:
    """`run --from v1` re-climbs on purpose, even with v3 live and nothing changed."""
    steps = climb(ORDER, rungs(("a", "a"), ("b", "b"), ("c", "c")), live_phase="v3", live_spec="c", explicit_start=True)
    assert cases(steps) == [DELIVER, DELIVER, DELIVER]


def test_a_selection_below_the_live_phase_never_moves_production_down() -> None:
    """`run --to v2` while v3 is live: v1 and v2 are behind, nothing is delivered."""
    steps = climb(ORDER, rungs(("a", "a"), ("b2", "b"), ("c", "c"))[:2], live_phase="v3", live_spec="c")
    assert cases(steps) == [BEHIND, CHANGED_BEHIND]
