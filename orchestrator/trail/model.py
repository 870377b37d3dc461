"""The trail as phases: events grouped into phase sections, rollbacks and decisions pulled out."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from orchestrator.state.base import TrailEvent


@dataclass
class PhaseSection:
    """One phase's attempt within one run."""

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
    def duration(self) -> str:
        """End minus start, as 1h 2m 3s."""
        secs = int((parse(self.end) - parse(self.start)).total_seconds())
        h, rem = divmod(secs, 3600)
        m, s = divmod(rem, 60)
        return " ".join(p for p in (f"{h}h" if h else "", f"{m}m" if m or h else "", f"{s}s") if p)

    @property
    def status(self) -> str:
        """complete | failed | skipped | paused | in progress."""
        kinds = {e.kind for e in self.events}
        if "phase_passed" in kinds:
            return "complete"
        if kinds & {"gate_failed", "rollback_impossible", "phase_failed"}:
            return "failed"
        if "phase_skipped" in kinds:
            return "skipped"
        if "paused" in kinds:
            return "paused"
        if kinds & {"rollback_started", "rollback_verified", "rollback_failed"}:
            return "rollback"
        return "in progress"

    @property
    def gates(self) -> list[TrailEvent]:
        """Gate verdicts in order."""
        return [e for e in self.events if e.kind in ("gate_passed", "gate_failed")]


def parse(at: str) -> datetime:
    """ISO text -> datetime."""
    return datetime.fromisoformat(at)


def sections(events: list[TrailEvent]) -> list[PhaseSection]:
    """Consecutive events of the same run and phase form a section."""
    out: list[PhaseSection] = []
    for e in events:
        if e.phase is None:
            continue
        if not out or out[-1].phase != e.phase or out[-1].run_id != e.run_id:
            out.append(PhaseSection(e.run_id, e.phase))
        out[-1].events.append(e)
    return out


def rollbacks(events: list[TrailEvent]) -> list[dict[str, Any]]:
    """Each rollback: the decision, what was done, how it ended."""
    out: list[dict[str, Any]] = []
    for e in events:
        if e.kind in ("decision", "rollback_impossible"):
            out.append(
                {
                    "at": e.at,
                    "run_id": e.run_id,
                    "phase": e.phase,
                    "reason": e.data.get("reason", e.message),
                    "decision": e.message,
                    "diagnosis": e.data.get("diagnosis", ""),
                    "resolution": None,
                    "action": None
                    if e.kind == "rollback_impossible"
                    else f"rolled back to {str(e.data.get('target', '')).rsplit('/', 1)[-1]}",
                }
            )
            if e.kind == "rollback_impossible":
                out[-1]["resolution"] = "IMPOSSIBLE - a human is needed"
        elif e.kind in ("rollback_verified", "rollback_failed") and out and out[-1]["run_id"] == e.run_id:
            out[-1]["resolution"] = e.message
    return out
