"""Release memory, as pure decisions over marks: which revision a rollback goes to, and whether a spec may be
deployed (a failed spec is quarantined; a revision a human rolled back from is held).

Marks come newest first (StateStore.marks). Nothing here calls AWS or the store."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from orchestrator.arns import family_of, revision_of, short_name
from orchestrator.state.base import FAILED, GOOD, HELD, RELEASED, Mark, current_marks

QUARANTINED = "quarantined"


@dataclass(frozen=True)
class Refusal:
    """Why there is no rollback target; `usage` refusals are the caller's mistake (exit 2), others need a human (3)."""

    message: str
    usage: bool = False


@dataclass(frozen=True)
class Block:
    """Why a spec must not be deployed without an explicit command: quarantined (failed its gates) or held."""

    kind: str  # quarantined | held
    phase: str
    spec_hash: str
    revision_arn: str
    run_id: str
    at: str
    reason: str
    by: str = ""

    @property
    def lifted_by(self) -> str:
        """What lifts the block, in the words a release engineer types."""
        short = short_name(self.revision_arn)
        if self.kind == HELD:
            return (
                f"`snail release {short}` (or `snail release {self.phase}` while this is the phase's spec), or a change "
                "of the phase's spec"
            )
        return "a change of the phase's spec (image, environment, gates...), or `snail run --retry-failed`"

    def message(self) -> str:
        """One line for plan, run and status."""
        short = short_name(self.revision_arn)
        why = f" ({self.reason})" if self.reason else ""
        if self.kind == HELD:
            return (
                f"phase {self.phase}: spec {self.spec_hash} ({short}) is held since {self.at} by {self.by or '?'}{why}; "
                f"lifted by {self.lifted_by}"
            )
        return (
            f"phase {self.phase}: spec {self.spec_hash} ({short}) is quarantined: it failed its gates in run "
            f"{self.run_id or '?'} at {self.at}{why}; lifted by {self.lifted_by}"
        )


def _went_live(m: Mark) -> tuple[str, int]:
    """Order of going live: the forward deploy's time, then the revision number (timestamps have 1 s resolution)."""
    return (m.live_since or m.at, revision_of(m.revision_arn) or 0)


def _matches(m: Mark, revision: str, family: str | None) -> bool:
    """'7' (in `family`, if known), 'family:7' or a full ARN names this mark's revision."""
    if revision.isdigit():
        return revision_of(m.revision_arn) == int(revision) and family in (None, family_of(m.revision_arn))
    return m.revision_arn == revision or m.revision_arn.endswith("/" + revision)


def rollback_target(
    marks: Sequence[Mark],
    live_revision: str | None,
    *,
    to_phase: str | None = None,
    to_revision: str | None = None,
    phases: Sequence[str] | None = None,
) -> Mark | Refusal:
    """The revision a rollback goes to, or why there is none.

    Plain: the good revision that went live immediately before the live one (by the time it went live through a
    forward deploy), never one that went live after it, never the live one, never a deregistered one.
    --to-revision: that revision, if its newest mark is good and it is still registered. --to-phase: the phase's
    most recently live good revision other than the live one (an unknown phase is a usage error)."""
    if to_phase and to_revision:
        return Refusal("give --to-revision or --to-phase, not both", usage=True)
    current = current_marks(list(marks))
    live = next((m for m in current if m.revision_arn == live_revision), None) if live_revision else None
    live_short = (live_revision or "?").rsplit("/", 1)[-1]
    good = [m for m in current if m.verdict == GOOD]
    if to_revision:
        family = family_of(live_revision) if live_revision else None
        m = next((m for m in current if _matches(m, to_revision, family)), None)
        if m is None:
            names = ", ".join(g.short for g in good if g.active) or "none"
            return Refusal(f"revision {to_revision} never passed snail's gates; good revisions: {names}", usage=True)
        if m.revision_arn == live_revision:
            return Refusal(f"{m.short} is already live", usage=True)
        if not m.active:
            return Refusal(f"{m.short} is deregistered (INACTIVE): ECS cannot run it again", usage=True)
        if m.verdict != GOOD:
            return Refusal(_not_good(m), usage=True)
        return m
    if to_phase:
        if phases is not None and to_phase not in phases:
            return Refusal(f"no phase named {to_phase!r} (phases: {', '.join(phases)})", usage=True)
        candidates = [m for m in good if m.phase == to_phase and m.active and m.revision_arn != live_revision]
        if not candidates:
            inactive = [m.short for m in good if m.phase == to_phase and not m.active]
            extra = f" ({', '.join(inactive)} deregistered)" if inactive else ""
            return Refusal(f"phase {to_phase!r} has no good revision other than the live one{extra}", usage=True)
        return max(candidates, key=_went_live)
    candidates = [m for m in good if m.active and m.revision_arn != live_revision]
    if live is not None:
        candidates = [m for m in candidates if _went_live(m) < _went_live(live)]
    if not candidates:
        skipped = [m.short for m in good if not m.active]
        extra = f"; deregistered good revisions are never targets: {', '.join(skipped)}" if skipped else ""
        return Refusal(f"no good revision was live before {live_short}: nothing to roll back to{extra}")
    return max(candidates, key=_went_live)


def _not_good(m: Mark) -> str:
    if m.verdict == HELD:
        return f"{m.short} is held since {m.at} by {m.by or '?'} ({m.reason or 'no reason'}): `snail release {m.short}`"
    if m.verdict == FAILED:
        return f"{m.short} failed its gates in run {m.run_id or '?'} ({m.reason or 'no reason'})"
    return f"{m.short} has not passed snail's gates"


def blocked(
    marks: Sequence[Mark],
    spec_hash: str,
    phase: str,
    *,
    allow_failed: bool = False,
    allow_held: bool = False,
) -> Block | None:
    """Whether a phase's spec may be deployed: the newest mark with this spec decides. Failed: quarantined (unless
    `allow_failed`, i.e. `run --retry-failed`); held: held (unless `allow_held`). A changed spec has no marks."""
    if not spec_hash:
        return None
    newest = next((m for m in marks if m.spec_hash == spec_hash and m.phase == phase), None)
    if newest is None:
        return None
    if newest.verdict == FAILED and not allow_failed:
        kind = QUARANTINED
    elif newest.verdict == HELD and not allow_held:
        kind = HELD
    else:
        return None
    return Block(kind, phase, spec_hash, newest.revision_arn, newest.run_id, newest.at, newest.reason, newest.by)


def blocks(marks: Sequence[Mark]) -> list[Block]:
    """Every spec currently quarantined or held (for `status`), newest first."""
    out: list[Block] = []
    seen: set[tuple[str, str]] = set()
    for m in marks:
        key = (m.phase, m.spec_hash or m.revision_arn)
        if key in seen:
            continue
        seen.add(key)
        if m.verdict in (FAILED, HELD):
            kind = QUARANTINED if m.verdict == FAILED else HELD
            out.append(Block(kind, m.phase, m.spec_hash, m.revision_arn, m.run_id, m.at, m.reason, m.by))
    return out


def status_lines(marks: Sequence[Mark]) -> list[str]:
    """What `status` says about release memory: held and quarantined specs with what lifts them, and good
    revisions that were deregistered (never rollback targets)."""
    lines = [b.message() for b in blocks(marks)]
    gone = [m for m in current_marks(list(marks)) if m.verdict == GOOD and not m.active]
    lines += [
        f"{m.short} ({m.phase}) passed its gates but is deregistered (INACTIVE): never a rollback target" for m in gone
    ]
    return lines


def hold(
    held: Mark | None,
    *,
    service: str,
    revision_arn: str,
    by: str,
    reason: str,
    at: str,
    run_id: str,
) -> Mark:
    """The mark a manual rollback puts on the revision it rolled back FROM (its current mark, if it had one)."""
    base = held or Mark(service=service, revision_arn=revision_arn, phase="", verdict=RELEASED)
    return replace(
        base,
        verdict=HELD,
        prior=base.verdict if base.verdict != HELD else base.prior,
        by=by,
        reason=reason,
        at=at,
        run_id=run_id,
        source="local",
    )


def rollback_holds(
    marks: Sequence[Mark],
    target: Mark,
    live_revision: str | None,
    *,
    service: str,
    by: str,
    reason: str,
    at: str,
    run_id: str,
) -> list[Mark]:
    """The holds a manual rollback to `target` writes, so it sticks: the live revision, and every good revision
    that went live after the target (what a `--to-phase` rollback skipped over, which a scheduled run would
    otherwise deploy again)."""
    current = current_marks(list(marks))
    out: list[Mark] = []
    if live_revision and live_revision != target.revision_arn:
        live = next((m for m in current if m.revision_arn == live_revision), None)
        out.append(hold(live, service=service, revision_arn=live_revision, by=by, reason=reason, at=at, run_id=run_id))
    for m in current:
        skipped_over = m.verdict == GOOD and m.revision_arn not in (live_revision, target.revision_arn)
        if skipped_over and _went_live(m) > _went_live(target):
            out.append(
                hold(m, service=service, revision_arn=m.revision_arn, by=by, reason=reason, at=at, run_id=run_id)
            )
    return out


def release(held: Mark, *, by: str, at: str, run_id: str, reason: str = "") -> Mark:
    """The mark `snail release` writes: the verdict the hold replaced (good if it had passed), else released."""
    restored = held.prior if held.prior in (GOOD, FAILED) else RELEASED
    return replace(held, verdict=restored, prior="", by=by, reason=reason or "hold lifted", at=at, run_id=run_id)


def release_target(
    marks: Sequence[Mark],
    target: str,
    current_specs: dict[str, str],
    live_revision: str | None = None,
) -> Mark | Refusal:
    """The one held revision `snail release TARGET` lifts, or why there is none.

    A phase name (a key of `current_specs`, each phase's spec as its files compose it now): the hold on that
    phase's current spec, and only it. An older revision of the phase a human rolled back from keeps its hold until
    it is released by name ('7', 'family:7' or its ARN): it never becomes a rollback target again by accident."""
    held = [m for m in current_marks(list(marks)) if m.verdict == HELD]
    listed = ", ".join(m.short + (f" ({m.phase})" if m.phase else "") for m in held) or "nothing"
    if target in current_specs:
        spec = current_specs[target]
        mine = [m for m in held if m.phase == target]
        match = next((m for m in mine if spec and m.spec_hash == spec), None)  # newest first
        if match is not None:
            return match
        if not mine:
            return Refusal(f"nothing held matches {target!r} (phase {target}); held: {listed}", usage=True)
        others = "; ".join(
            f"{m.short} (spec {m.spec_hash or '?'}, held since {m.at} by {m.by or '?'}: {m.reason or 'no reason'})"
            for m in mine
        )
        return Refusal(
            f"phase {target}'s current spec {spec or '?'} is not held, so nothing blocks it; its held revisions have "
            f"other specs: {others}. Each is lifted only by name (`snail release {mine[0].short}`)",
            usage=True,
        )
    family = family_of(live_revision) if live_revision else None
    found = next((m for m in held if _matches(m, target, family)), None)
    if found is None:
        return Refusal(f"nothing held matches {target!r}; held: {listed}", usage=True)
    return found
