"""The ladder, as pure decisions: which phases a run delivers, given which phase is live.

The phases are a path climbed once. Before any phase is live, a run climbs them in order (resuming at the last
phase that already passed with the same spec). Once a phase is live, a run delivers a new spec of the live phase
directly, continues the climb above it, and never moves production back down: a phase behind the live one is not
deployed, changed or not; `run --from PHASE` re-climbs from it on purpose and `rollback --to-phase` goes down.

"skip" exists once: LIVE, the live phase whose live revision has this very spec. Nothing here calls AWS."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.arns import short_name

LIVE = "live"  # live and good with this very spec: nothing to do
DELIVER = "deliver"  # this run deploys it
BEHIND = "behind"  # behind the live phase, unchanged: its good revision stays a rollback fallback
CHANGED_BEHIND = "changed-behind"  # behind the live phase with a spec that is not its good one: not deployed
PASSED = "passed"  # no phase is live: passed earlier with this spec, below where the climb resumes


@dataclass(frozen=True)
class Rung:
    """One phase as the ladder sees it: its spec now and its newest good revision's spec."""

    phase: str
    spec_hash: str
    good_spec: str = ""  # "" when the phase never passed
    good_revision: str = ""

    @property
    def passed_as_is(self) -> bool:
        """True when the phase's newest good revision has exactly this spec."""
        return bool(self.good_spec) and self.good_spec == self.spec_hash


@dataclass(frozen=True)
class Step:
    """What a run does with one phase, and why, in the words plan and run print."""

    phase: str
    case: str
    reason: str

    @property
    def delivers(self) -> bool:
        """True when this run deploys the phase."""
        return self.case == DELIVER


def climb(
    order: Sequence[str],
    rungs: Sequence[Rung],
    *,
    live_phase: str | None,
    live_spec: str = "",
    explicit_start: bool = False,
) -> list[Step]:
    """One step per rung (the selected phases, in pipeline `order`).

    `live_phase` is the phase whose good revision the service runs (None: no phase is live), `live_spec` that
    revision's spec hash. `explicit_start` (`run --from`, `promote`): every selected phase is delivered."""
    if explicit_start:
        return [Step(r.phase, DELIVER, "asked for: delivered from the named phase on") for r in rungs]
    if live_phase is None or live_phase not in order:
        return _first_climb(rungs)
    live_at = order.index(live_phase)
    steps = []
    for r in rungs:
        at = order.index(r.phase)
        if at < live_at:
            steps.append(_behind(r, live_phase))
        elif at == live_at:
            if live_spec and r.spec_hash == live_spec:
                steps.append(Step(r.phase, LIVE, "live and good"))
            else:
                steps.append(Step(r.phase, DELIVER, "the live phase changed: its new spec is delivered directly"))
        else:
            again = f" (passed earlier on {short_name(r.good_revision)}: reused)" if r.passed_as_is else ""
            steps.append(Step(r.phase, DELIVER, f"above the live phase {live_phase}: the climb continues{again}"))
    return steps


def _behind(r: Rung, live_phase: str) -> Step:
    if r.passed_as_is:
        return Step(
            r.phase,
            BEHIND,
            f"behind the live phase {live_phase}; its good revision {short_name(r.good_revision)} is kept as a "
            "fallback, not deployed",
        )
    what = "changed" if r.good_spec else "never passed"
    fallback = f" (its last good revision {short_name(r.good_revision)} stays the fallback)" if r.good_revision else ""
    return Step(
        r.phase,
        CHANGED_BEHIND,
        f"{r.phase} {what}; it is behind the live phase {live_phase}: not deployed{fallback}; "
        f"`snail run --from {r.phase}` re-climbs",
    )


def _first_climb(rungs: Sequence[Rung]) -> list[Step]:
    """No phase is live: climb in order, resuming at the last phase of the leading run that already passed (the
    service left it, so it is delivered again before the climb goes on)."""
    prefix = 0
    for r in rungs:
        if not r.passed_as_is:
            break
        prefix += 1
    resume = min(prefix, len(rungs) - 1) if rungs else 0
    steps = []
    for i, r in enumerate(rungs):
        if i < resume:
            steps.append(
                Step(
                    r.phase,
                    PASSED,
                    f"passed earlier on {short_name(r.good_revision)} with this spec, not live: the climb resumes at "
                    f"{rungs[resume].phase}",
                )
            )
        else:
            steps.append(Step(r.phase, DELIVER, "no phase is live: the ladder is climbed in order"))
    return steps


def behind_notes(steps: Sequence[Step]) -> list[str]:
    """What a run says about changed phases it did not deploy because they are behind the live one."""
    return [s.reason for s in steps if s.case == CHANGED_BEHIND]
