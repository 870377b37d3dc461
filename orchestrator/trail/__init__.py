"""The trail: append-only events rendered as the field log (Markdown), JSON or an HTML timeline."""

from __future__ import annotations

import json
from typing import Any

from orchestrator.state.base import RunRecord, TrailEvent
from orchestrator.trail.model import TrailHeader


def render(
    fmt: str,
    service: str,
    events: list[TrailEvent],
    runs: list[RunRecord],
    phase_order: list[str],
    header: TrailHeader | None = None,
) -> str:
    """Render events in one of md | json | html (header: the service's cluster and region, when known)."""
    header = header or TrailHeader(service)
    if fmt == "json":
        data: dict[str, Any] = {
            "service": service,
            "cluster": header.cluster,
            "region": header.region,
            "runs": [r.to_dict() for r in runs],
            "events": [e.to_dict() for e in events],
        }
        return json.dumps(data, indent=2, default=str)
    if fmt == "html":
        from orchestrator.trail.html import render as html

        return html(service, events, runs, phase_order, header)
    from orchestrator.trail.markdown import render as md

    return md(service, events, runs, phase_order, header)


__all__ = ["render", "TrailHeader"]
