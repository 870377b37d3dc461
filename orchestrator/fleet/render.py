"""What people read of a fleet run: the status table, the Markdown trail and one self-contained HTML page."""

from __future__ import annotations

from datetime import datetime, timezone

from orchestrator.fleet import decide as d
from orchestrator.fleet.model import Fleet
from orchestrator.trail.escape import html_text

_MARK = {
    d.PENDING: "·",
    d.RUNNING: "…",
    d.PASSED: "✔",
    d.FAILED: "✘",
    d.NEEDS_HUMAN: "!",
    d.RETURNED: "↩",
    d.CANCELLED: "-",
}


def _short(rev: str | None) -> str:
    return rev.rsplit("/", 1)[-1] if rev else "-"


def _when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC") if ts else "-"


def status_table(fleet: Fleet, run: d.FleetRun | None, live: dict[str, str | None], width: int = 100) -> str:
    """Waves x targets: one line per target, fitted to `width` columns."""
    if run is None:
        return "no fleet run recorded yet: `snail fleet plan` shows what `snail fleet run` would do"
    lines = [f"fleet run {run.run_id}: {run.status} (release {run.release})"]
    if run.stopped:
        lines.append(f"stopped: {run.stopped}")
    for w in fleet.waves:
        rec = run.waves[w.name]
        lines.append(f"wave {w.name}: {rec.status}" + (f" (approved by {rec.approved_by})" if rec.approved_by else ""))
        for t in w.targets:
            r = run.targets[t]
            rev = _short(live.get(t) if t in live else r.revision)
            line = f"  {_MARK.get(r.status, '?')} {t:<14} {r.status:<11} {rev:<28} {r.message}"
            lines.append(line if len(line) <= width else line[: width - 1] + "…")
    return "\n".join(lines)


def markdown(fleet: Fleet, run: d.FleetRun) -> str:
    """The fleet run as the field log would have written it: per wave, what each target did and when."""
    out = [f"# Fleet run {run.run_id}", "", f"- release: `{run.release}`", f"- status: **{run.status}**"]
    out.append(f"- started: {_when(run.started_at)}")
    if run.stopped:
        out.append(f"- the line stopped: {run.stopped}")
    for w in fleet.waves:
        rec = run.waves[w.name]
        out += ["", f"## Wave {w.name}: {rec.status}", ""]
        if rec.started_at:
            out.append(f"- started {_when(rec.started_at)}" + (f"; override: {rec.override}" if rec.override else ""))
        if rec.bake_from:
            out.append(f"- bake ({w.bake:g}s) from {_when(rec.bake_from)}")
        for t in w.targets:
            r = run.targets[t]
            out.append(f"- **{t}**: {r.status}, on `{_short(r.revision)}`" + (f": {r.message}" if r.message else ""))
    out += ["", "## Events", ""]
    for e in run.events:
        rest = ", ".join(f"{k}={v}" for k, v in e.items() if k not in ("at", "kind") and v not in (None, "", []))
        out.append(f"- {_when(e.get('at'))} {e.get('kind')}" + (f": {rest}" if rest else ""))
    return "\n".join(out) + "\n"


_COLOUR = {
    d.PASSED: "#2e7d32",
    d.FAILED: "#c62828",
    d.NEEDS_HUMAN: "#ef6c00",
    d.RETURNED: "#6a1b9a",
    d.RUNNING: "#1565c0",
    d.CANCELLED: "#9e9e9e",
    d.PENDING: "#bdbdbd",
}


def html_page(fleet: Fleet, run: d.FleetRun) -> str:
    """One self-contained page (no script, no network): a timeline with a bar per target and wave bakes."""
    rows = [t for w in fleet.waves for t in w.targets]
    times = [x for r in run.targets.values() for x in (r.started_at, r.ended_at) if x]
    times += [x for w in run.waves.values() for x in (w.started_at, w.ended_at, w.bake_from) if x]
    times += [e["at"] for e in run.events if e.get("at")]
    t0, t1 = (min(times), max(times)) if times else (run.started_at, run.started_at + 1)
    span = max(t1 - t0, 1.0)
    left, width, row_h = 170, 640, 26
    height = row_h * (len(rows) + 2) + 20

    def x(ts: float) -> float:
        return left + (ts - t0) / span * width

    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 20}" height="{height}" role="img">']
    y = 20
    for w in fleet.waves:
        rec = run.waves[w.name]
        if rec.bake_from:
            end = rec.ended_at or t1
            svg.append(
                f'<rect x="{x(rec.bake_from):.1f}" y="{y - 4}" width="{max(2.0, x(end) - x(rec.bake_from)):.1f}" '
                f'height="{row_h * len(w.targets)}" fill="#fff8e1" stroke="#ffca28"><title>wave {html_text(w.name)} '
                f"bake</title></rect>"
            )
        for t in w.targets:
            r = run.targets[t]
            svg.append(f'<text x="4" y="{y + 14}" font-size="12">{html_text(w.name)} · {html_text(t)}</text>')
            if r.started_at:
                end = r.ended_at or t1
                svg.append(
                    f'<rect class="bar" data-target="{html_text(t)}" data-status="{r.status}" x="{x(r.started_at):.1f}" '
                    f'y="{y}" width="{max(3.0, x(end) - x(r.started_at)):.1f}" height="{row_h - 8}" '
                    f'fill="{_COLOUR.get(r.status, "#777")}"><title>{html_text(t)}: {html_text(r.status)} '
                    f"{html_text(r.message)}</title></rect>"
                )
            else:
                svg.append(f'<text x="{left}" y="{y + 14}" font-size="11" fill="#777">{html_text(r.status)}</text>')
            y += row_h
    for e in run.events:
        if e.get("kind") == "line_stopped":
            svg.append(
                f'<line class="stop" x1="{x(e["at"]):.1f}" x2="{x(e["at"]):.1f}" y1="10" y2="{y}" stroke="#c62828" '
                f'stroke-width="2" stroke-dasharray="4 2"><title>line stopped: {html_text(str(e.get("reason", "")))}'
                "</title></line>"
            )
    svg.append("</svg>")
    table = "".join(
        f"<tr><td>{html_text(w.name)}</td><td>{html_text(t)}</td><td>{html_text(run.targets[t].status)}</td>"
        f"<td><code>{html_text(_short(run.targets[t].revision))}</code></td><td>{html_text(run.targets[t].message)}</td></tr>"
        for w in fleet.waves
        for t in w.targets
    )
    stopped = f"<p class=stopped>The line stopped: {html_text(run.stopped)}</p>" if run.stopped else ""
    return (
        "<!doctype html><html><head><meta charset=utf-8><title>snail fleet run "
        f"{html_text(run.run_id)}</title><style>body{{font:14px system-ui,sans-serif;margin:24px;color:#222}}"
        "table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:4px 8px;text-align:left}"
        ".stopped{color:#c62828;font-weight:600}</style></head><body>"
        f"<h1>Fleet run {html_text(run.run_id)}: {html_text(run.status)}</h1>"
        f"<p>release <code>{html_text(run.release)}</code>, started {_when(run.started_at)}</p>{stopped}"
        + "".join(svg)
        + "<table><tr><th>wave</th><th>target</th><th>status</th><th>revision</th><th>what happened</th></tr>"
        + table
        + "</table></body></html>\n"
    )
