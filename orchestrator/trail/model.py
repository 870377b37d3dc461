"""The trail as phases: events grouped into phase sections, rollbacks and decisions pulled out, the live phase."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from orchestrator.arns import short_name
from orchestrator.state.base import RunRecord, TrailEvent
from orchestrator.trail.kinds import EventKind as K

ROLLBACK_KINDS = frozenset({K.DECISION, K.DIAGNOSIS, K.ROLLBACK_STARTED, K.ROLLBACK_VERIFIED, K.ROLLBACK_FAILED})
GATE_KINDS = frozenset({K.GATE_PASSED, K.GATE_FAILED})
# Events that say which revision the service runs afterwards, and whose phase that is.
LIVE_KINDS = frozenset({K.PHASE_PASSED, K.ROLLBACK_VERIFIED})


@dataclass(frozen=True)
class TrailHeader:
    """Where the trail comes from: the service, its cluster and region."""

    service: str
    cluster: str = ""
    region: str = ""


@dataclass
class PhaseSection:
    """One phase's attempt within one run (or a rollback onto that phase's revision)."""

    run_id: str
    phase: str
    events: list[TrailEvent] = field(default_factory=list)

    @property
    def start(self) -> str:
        """When the phase started."""
        return self.events[0].at

    @property
    def end(self) -> str:
        """When its last event happened."""
        return self.events[-1].at

    @property
    def seconds(self) -> float:
        """End minus start in seconds."""
        return (parse(self.end) - parse(self.start)).total_seconds()

    @property
    def duration(self) -> str:
        """End minus start, as 1h 2m 3s."""
        return human_duration(self.seconds)

    @property
    def kinds(self) -> set[str]:
        """The kinds of event in this section."""
        return {e.kind for e in self.events}

    @property
    def is_rollback(self) -> bool:
        """A section that restores a good revision rather than delivering the phase."""
        return bool(self.kinds & {K.ROLLBACK_STARTED, K.ROLLBACK_VERIFIED, K.ROLLBACK_FAILED}) and not (
            self.kinds & {K.PHASE_STARTED}
        )

    @property
    def is_manual(self) -> bool:
        """A rollback a person asked for (`snail rollback`), not one a failed gate caused."""
        return any(e.kind == K.DECISION and is_manual_decision(e) for e in self.events)

    @property
    def status(self) -> str:
        """complete | failed | blocked | skipped | paused | rollback | rollback failed | interrupted | in progress."""
        kinds = self.kinds
        if self.is_rollback:
            if K.ROLLBACK_VERIFIED in kinds:
                return "rollback"
            if K.ROLLBACK_FAILED in kinds:
                return "rollback failed"
            return "in progress"
        if K.PHASE_PASSED in kinds:
            return "complete"
        if kinds & {K.GATE_FAILED, K.ROLLBACK_IMPOSSIBLE, K.PHASE_FAILED, K.DECISION}:
            return "failed"
        if K.INTERRUPTED in kinds:
            return "interrupted"
        if K.BLOCKED in kinds:
            return "blocked"
        if K.PHASE_SKIPPED in kinds:
            return "skipped"
        if K.PAUSED in kinds:
            return "paused"
        return "in progress"

    @property
    def title(self) -> str:
        """What the section is, in words: the phase, or a rollback onto it."""
        if self.is_rollback:
            return f"{'manual ' if self.is_manual else ''}rollback to {self.phase}"
        return self.phase

    @property
    def gates(self) -> list[TrailEvent]:
        """Gate verdicts in order."""
        return [e for e in self.events if e.kind in GATE_KINDS]

    @property
    def failing(self) -> list[TrailEvent]:
        """The failing steps: failed gates, a failure before the deploy, an impossible or failed rollback."""
        return [
            e
            for e in self.events
            if e.kind in (K.GATE_FAILED, K.PHASE_FAILED, K.ROLLBACK_IMPOSSIBLE, K.ROLLBACK_FAILED)
        ]


@dataclass
class RunView:
    """One run with its record, its events and its sections."""

    run: RunRecord | None
    run_id: str
    events: list[TrailEvent]
    sections: list[PhaseSection]

    @property
    def start(self) -> str:
        """When the run started (its record, else its first event)."""
        return self.run.started_at if self.run else self.events[0].at

    @property
    def end(self) -> str:
        """When it finished (its record, else its last event)."""
        if self.run and self.run.finished_at:
            return self.run.finished_at
        return self.events[-1].at if self.events else self.start

    @property
    def traffic(self) -> list[tuple[str, dict[str, float]]]:
        """(time, {target group colour: percent}) for every event that carries traffic data, in order."""
        out: list[tuple[str, dict[str, float]]] = []
        for e in self.events:
            t = e.data.get("traffic") if isinstance(e.data, dict) else None
            if isinstance(t, dict) and t:
                try:
                    out.append((e.at, {str(k): float(v) for k, v in t.items()}))
                except (TypeError, ValueError):
                    continue
        return out


def parse(at: str) -> datetime:
    """ISO text -> an aware datetime (naive text is taken as UTC)."""
    t = datetime.fromisoformat(at)
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def zone_name(t: datetime) -> str:
    """UTC, or the zone's abbreviation/offset."""
    name = t.strftime("%Z")
    return "UTC" if name in ("UTC", "UTC+00:00", "") else name


def full_time(at: str) -> str:
    """'2026-11-29T07:08:49+00:00' -> '2026-11-29 07:08:49 UTC' (date, seconds and zone)."""
    t = parse(at)
    return f"{t.strftime('%Y-%m-%d %H:%M:%S')} {zone_name(t)}"


def human_duration(seconds: float) -> str:
    """Seconds as 1h 2m 3s."""
    secs = int(round(max(0.0, seconds)))
    h, rem = divmod(secs, 3600)
    m, s = divmod(rem, 60)
    return " ".join(p for p in (f"{h}h" if h else "", f"{m}m" if m or h else "", f"{s}s") if p)


def attempts_of(e: TrailEvent) -> int:
    """How many attempts a gate verdict took (1 when the journal does not say, or says something odd)."""
    try:
        return max(1, int(e.data.get("attempts") or 1))
    except (TypeError, ValueError):
        return 1


def is_manual_decision(e: TrailEvent) -> bool:
    """A `decision` written by `snail rollback` (marked manual, or carrying no failure reason)."""
    return e.kind == K.DECISION and (e.data.get("manual") is True or "reason" not in e.data)


def diagnosis_of(events: list[TrailEvent], run_id: str) -> str:
    """The diagnosis recorded in a run: its `diagnosis` event, else the one carried by its decision (older
    journals) or by an impossible rollback."""
    for kind in (K.DIAGNOSIS, K.DECISION, K.ROLLBACK_IMPOSSIBLE):
        for e in events:
            if e.run_id == run_id and e.kind == kind and e.data.get("diagnosis"):
                return str(e.data["diagnosis"])
    return ""


def sections(events: list[TrailEvent]) -> list[PhaseSection]:
    """Consecutive events of the same run and phase form a section; a manual rollback's decision (written before
    the target phase is known to the journal) opens the section of the rollback it decides."""
    out: list[PhaseSection] = []
    pending: list[TrailEvent] = []
    for e in events:
        if e.phase is None:
            if is_manual_decision(e):
                pending.append(e)
            continue
        if pending and pending[0].run_id != e.run_id:
            pending = []
        if pending or not out or out[-1].phase != e.phase or out[-1].run_id != e.run_id:
            out.append(PhaseSection(e.run_id, e.phase, list(pending)))
            pending = []
        elif e.kind == K.ROLLBACK_STARTED and not out[-1].is_rollback and out[-1].phase == e.phase:
            # rolled back onto the same phase's older revision: a section of its own
            out.append(PhaseSection(e.run_id, e.phase))
        out[-1].events.append(e)
    return out


def runs_view(events: list[TrailEvent], runs: list[RunRecord]) -> list[RunView]:
    """Events grouped by run, newest run first (runs without a record still appear)."""
    by_run: dict[str, list[TrailEvent]] = {}
    for e in events:
        by_run.setdefault(e.run_id, []).append(e)
    records = {r.run_id: r for r in runs}
    views = [RunView(records.get(rid), rid, evs, sections(evs)) for rid, evs in by_run.items()]
    views += [RunView(r, r.run_id, [], []) for r in runs if r.run_id not in by_run]
    views.sort(key=lambda v: parse(v.start), reverse=True)
    return views


def live_phase(events: list[TrailEvent]) -> str | None:
    """The phase whose good revision the service last ran, as far as the trail knows."""
    for e in reversed(events):
        if e.kind in LIVE_KINDS and e.phase:
            return e.phase
    return None


def unproven_change(events: list[TrailEvent]) -> TrailEvent | None:
    """The last change of the service that nothing verified afterwards (an interrupted run, a failed rollback),
    or None when the last change was verified by gates."""
    for e in reversed(events):
        if e.kind in LIVE_KINDS:
            return None
        if e.kind in (K.SERVICE_UPDATED, K.ROLLBACK_STARTED, K.SERVICE_CREATED, K.ROLLBACK_FAILED):
            later = [x for x in events if x.run_id == e.run_id and x.kind in (K.DECISION, K.ROLLBACK_STARTED)]
            if e.kind == K.SERVICE_UPDATED and later and parse(later[-1].at) >= parse(e.at):
                continue  # this run decided to roll back: what counts is how that rollback ended
            return e
    return None


def diagnosis_logs(events: list[TrailEvent], run_id: str) -> list[str]:
    """The last log lines a run's diagnosis recorded (its `diagnosis` event's data), if any."""
    for e in events:
        if e.run_id == run_id and e.kind == K.DIAGNOSIS and isinstance(e.data.get("log_lines"), list):
            return [str(x) for x in e.data["log_lines"]]
    return []


def rollbacks(events: list[TrailEvent]) -> list[dict[str, Any]]:
    """Each rollback: the decision, what was done, how it ended (manual ones say so, with their phases)."""
    out: list[dict[str, Any]] = []
    for i, e in enumerate(events):
        if e.kind in (K.DECISION, K.ROLLBACK_IMPOSSIBLE):
            manual = is_manual_decision(e)
            target_phase = next(
                (x.phase for x in events[i + 1 :] if x.run_id == e.run_id and x.kind == K.ROLLBACK_STARTED), None
            )
            target = short_name(str(e.data.get("target", "")))
            out.append(
                {
                    "at": e.at,
                    "run_id": e.run_id,
                    "phase": e.phase,
                    "manual": manual,
                    "target_phase": target_phase,
                    "title": (
                        f"Manual rollback to {target}" + (f" (phase {target_phase})" if target_phase else "")
                        if manual
                        else f"Phase {e.phase or '-'} failed"
                    ),
                    "reason": e.data.get("reason")
                    or ("requested by a person (`snail rollback`)" if manual else e.message),
                    "decision": e.message,
                    "diagnosis": "" if manual else diagnosis_of(events, e.run_id),
                    "log_lines": [] if manual else diagnosis_logs(events, e.run_id),
                    "resolution": "IMPOSSIBLE - a human is needed" if e.kind == K.ROLLBACK_IMPOSSIBLE else None,
                    "action": None
                    if e.kind == K.ROLLBACK_IMPOSSIBLE
                    else f"rolled back to {target}"
                    if target
                    else "all traffic returned to blue at the paused stage (no task started)"
                    if "stage" in e.data
                    else "rolled back",
                }
            )
        elif e.kind in (K.ROLLBACK_VERIFIED, K.ROLLBACK_FAILED) and out and out[-1]["run_id"] == e.run_id:
            out[-1]["resolution"] = e.message
    return out


def run_events(events: list[TrailEvent], runs: list[RunRecord]) -> list[TrailEvent]:
    """Only the events of these runs (for `--last N`)."""
    keep = {r.run_id for r in runs}
    return [e for e in events if e.run_id in keep]
