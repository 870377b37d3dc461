"""The recorded trail the renderer tests use: nine runs in the engine's own words, every event kind."""

from __future__ import annotations

import json
from pathlib import Path

from orchestrator.state.base import RunRecord, TrailEvent
from orchestrator.trail.model import TrailHeader

DATA = Path(__file__).parent / "data" / "trail_recorded.json"
PHASES = ["health-only", "hybrid-ml", "optimized", "enhanced"]


def recorded() -> tuple[list[TrailEvent], list[RunRecord], TrailHeader]:
    """Events (oldest first), runs (newest first, as the store returns them) and the header."""
    data = json.loads(DATA.read_text())
    events = [TrailEvent(**e) for e in data["events"]]
    runs = sorted((RunRecord(**r) for r in data["runs"]), key=lambda r: r.started_at, reverse=True)
    return events, runs, TrailHeader(data["service"], data["cluster"], data["region"])
