"""The trail as one self-contained HTML page: a timeline per phase, colour by outcome."""

from __future__ import annotations

import html

from orchestrator.state.base import RunRecord, TrailEvent
from orchestrator.trail.model import rollbacks, sections

CSS = """body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;color:#222}
h1{font-size:1.6em}.phase{border-left:6px solid #999;padding:.2em 1em;margin:1.2em 0;background:#fafafa}
.complete{border-color:#2a9d2a}.failed{border-color:#d33}.skipped{border-color:#aaa}.paused{border-color:#e9a400}
.ev{font-family:ui-monospace,monospace;font-size:.9em;margin:.15em 0}.gate_failed,.decision,.rollback_failed{color:#b00}
.gate_passed,.phase_passed,.rollback_verified{color:#176b17}.when{color:#777;margin-right:.6em}"""


def render(service: str, events: list[TrailEvent], runs: list[RunRecord], phase_order: list[str]) -> str:
    """A page a person can open in a browser."""
    e = html.escape
    parts = [
        f"<!doctype html><meta charset=utf-8><title>snail trail: {e(service)}</title><style>{CSS}</style>",
        f"<h1>🐌 snail trail: {e(service)}</h1>",
    ]
    if runs:
        r = runs[0]
        parts.append(
            f"<p>Latest run <code>{e(r.run_id)}</code> ({e(r.command)}): <b>{e(r.status)}</b> — {e(r.message.splitlines()[0] if r.message else '')}</p>"
        )
    for s in sections(events):
        parts.append(
            f"<div class='phase {e(s.status.replace(' ', '-'))}'><h2>{e(s.phase)} <small>({e(s.status)}, {e(s.duration)}, run {e(s.run_id)})</small></h2>"
        )
        for ev in s.events:
            parts.append(f"<div class='ev {e(ev.kind)}'><span class=when>{e(ev.at[11:19])}</span>{e(ev.message)}</div>")
        parts.append("</div>")
    rbs = rollbacks(events)
    if rbs:
        parts.append("<h2>🚨 Rollbacks</h2><ul>")
        for rb in rbs:
            parts.append(
                f"<li><b>{e(rb['phase'] or '')}</b> {e(rb['at'])}: {e(rb['reason'])} → {e(rb['action'] or 'none')} — {e(rb['resolution'] or 'pending')}</li>"
            )
        parts.append("</ul>")
    return "\n".join(parts) + "\n"
