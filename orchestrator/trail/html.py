"""The trail as one self-contained HTML page: a header per run, a drawn SVG timeline, the steps with the diagnosis
and evidence next to the failing one.

Self-contained means it works from a file or a CI artifact with no network: inline CSS and SVG only, no script,
and a Content-Security-Policy that forbids fetching anything. Every untrusted string goes through
`trail.escape.html_text`."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

from orchestrator.redact import mask_text
from orchestrator.state.base import RunRecord, TrailEvent
from orchestrator.trail.escape import html_text as h
from orchestrator.trail.escape import neutralise, one_line
from orchestrator.trail.kinds import EventKind as K
from orchestrator.trail.model import (
    GATE_KINDS,
    PhaseSection,
    RunView,
    TrailHeader,
    attempts_of,
    diagnosis_of,
    full_time,
    human_duration,
    is_manual_decision,
    parse,
    runs_view,
    short_name,
    zone_name,
)

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"
COLOUR = {
    "complete": "#2a9d2a",
    "failed": "#d33",
    "rollback": "#7b4fc9",
    "rollback failed": "#8b0000",
    "skipped": "#b5b5b5",
    "paused": "#e9a400",
    "interrupted": "#555",
    "blocked": "#8a6d3b",
    "in progress": "#3b82f6",
}
CSS = """body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1040px;margin:1.5em auto;color:#222;
padding:0 1em}h1{font-size:1.6em;margin:.2em 0}h2{font-size:1.25em;margin:.2em 0}h3{font-size:1.05em;margin:.3em 0}
.sub{color:#555;margin:.2em 0 1em}table.runs{border-collapse:collapse;width:100%;font-size:.9em}
table.runs td,table.runs th{border-bottom:1px solid #e3e3e3;padding:.25em .5em;text-align:left;white-space:nowrap}
table.runs td.msg{white-space:normal}section.run{border:1px solid #ddd;border-radius:8px;margin:1.4em 0;
padding:.8em 1em;background:#fff}dl.head{display:grid;grid-template-columns:max-content minmax(0,1fr) max-content minmax(0,1fr);gap:.15em 1em;
margin:.6em 0;font-size:.92em}dl.head dt{color:#666}dl.head dd{margin:0}.badge{display:inline-block;
padding:.05em .5em;border-radius:1em;color:#fff;font-size:.85em;vertical-align:middle}
.st-succeeded,.st-noop,.st-dry_run{background:#2a9d2a}.st-rolled_back{background:#7b4fc9}
.st-failed,.st-rollback_failed,.st-quarantined,.st-held{background:#d33}.st-paused{background:#e9a400}
.st-interrupted,.st-running{background:#555}svg.timeline{width:100%;height:auto;background:#fcfcfc;
border:1px solid #eee;border-radius:6px;margin:.4em 0}.step{display:grid;grid-template-columns:minmax(0,1fr);
gap:1em;border-left:6px solid #999;padding:.3em .8em;margin:.8em 0;background:#fafafa}
.step.has-diag{grid-template-columns:minmax(0,3fr) minmax(0,2fr)}.ev{font-family:ui-monospace,Menlo,monospace;
font-size:.84em;margin:.12em 0;overflow-wrap:anywhere}.when{color:#777;margin-right:.6em}
.gate_failed,.decision,.rollback_failed,.rollback_impossible,.phase_failed{color:#b00}
.gate_passed,.phase_passed,.rollback_verified{color:#176b17}aside.diagnosis{background:#fff4f4;
border:1px solid #f0c0c0;border-radius:6px;padding:.5em .8em;font-size:.88em}aside.diagnosis pre{
white-space:pre-wrap;overflow-wrap:anywhere;max-height:22em;overflow:auto;background:#fff;padding:.4em;
border:1px solid #eee;font-size:.92em}.legend{font-size:.8em;color:#555}.legend span{margin-right:1em}
.sw{display:inline-block;width:.8em;height:.8em;border-radius:2px;margin-right:.3em;vertical-align:-.05em}"""

# SVG geometry
WIDTH, LABEL_W, RIGHT_PAD, ROW_H, AXIS_H = 1000, 190, 44, 28, 34
TRAFFIC_H = 70


def render(
    service: str,
    events: list[TrailEvent],
    runs: list[RunRecord],
    phase_order: list[str],
    header: TrailHeader | None = None,
) -> str:
    """A page a person can open in a browser: the runs newest first, each with its header and timeline."""
    header = header or TrailHeader(service)
    views = [v for v in runs_view(events, runs) if v.events or v.run]
    where = " · ".join(
        p for p in (header.cluster and f"cluster {h(header.cluster)}", header.region and h(header.region)) if p
    )
    parts = [
        "<!doctype html>",
        "<html lang=en><head><meta charset=utf-8>",
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>snail trail: {h(service)}</title><style>{CSS}</style></head><body>",
        f"<h1>snail trail: {h(service)}</h1>",
        f"<p class=sub>{where + ' · ' if where else ''}{len(views)} run(s), newest first · "
        f"rendered {h(full_time(datetime.now(timezone.utc).isoformat(timespec='seconds')))}</p>",
    ]
    if len(views) > 1:
        parts.append(_run_index(views))
    for i, v in enumerate(views):
        parts.append(_run_section(v, header, phase_order, first=i == 0))
    if not views:
        parts.append("<p>No runs recorded yet.</p>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def anchor(run_id: str) -> str:
    """The id of a run's section on the page (links go to #run-<id>)."""
    return "run-" + "".join(c if c.isalnum() or c in "-_" else "-" for c in run_id)


def _run_index(views: list[RunView]) -> str:
    rows = [
        "<nav><h2>Runs</h2><table class=runs><tr><th>run</th><th>started</th><th>command</th><th>status</th>"
        "<th>exit</th><th>by</th><th class=msg>outcome</th></tr>"
    ]
    for v in views:
        r = v.run
        status = r.status if r else "unknown"
        rows.append(
            f"<tr><td><a href='#{anchor(v.run_id)}'>{h(v.run_id)}</a></td><td>{h(full_time(v.start))}</td>"
            f"<td>{h(r.command if r else '')}</td><td><span class='badge st-{h(status)}'>{h(status)}</span></td>"
            f"<td>{'' if not r or r.exit_code is None else r.exit_code}</td>"
            f"<td>{h(f'{r.user}@{r.host}' if r else '')}</td>"
            f"<td class=msg>{h(one_line(r.message.splitlines()[0], 140) if r and r.message else '')}</td></tr>"
        )
    rows.append("</table></nav>")
    return "\n".join(rows)


def _run_section(v: RunView, header: TrailHeader, phase_order: list[str], first: bool) -> str:
    r = v.run
    status = r.status if r else "unknown"
    exit_code = "-" if not r or r.exit_code is None else str(r.exit_code)
    secs = (parse(v.end) - parse(v.start)).total_seconds()
    head = [
        ("service", header.service),
        ("cluster", header.cluster or "-"),
        ("region", header.region or "-"),
        ("command", r.command if r else "-"),
        ("run by", f"{r.user}@{r.host}" if r and (r.user or r.host) else "-"),
        ("started", full_time(v.start)),
        ("finished", full_time(r.finished_at) if r and r.finished_at else "not finished"),
        ("duration", human_duration(secs)),
        ("exit code", exit_code),
        ("outcome", r.message.splitlines()[0] if r and r.message else "-"),
    ]
    out = [
        f"<section class=run id='{anchor(v.run_id)}' data-run='{h(v.run_id)}' data-status='{h(status)}'>",
        f"<h2>Run <code>{h(v.run_id)}</code> <span class='badge st-{h(status)}'>{h(status)}</span> "
        f"<span class=exit>exit {h(exit_code)}</span></h2>",
        "<dl class=head>"
        + "".join(f"<dt>{h(k)}</dt><dd class='h-{k.replace(' ', '-')}'>{h(val)}</dd>" for k, val in head)
        + "</dl>",
    ]
    if v.sections:
        out.append(timeline_svg(v))
        out.append(_legend())
    out.append(f"<details{' open' if first else ''}><summary>steps ({len(v.events)} events)</summary>")
    loose = [e for e in v.events if e.phase is None and not is_manual_decision(e)]
    first_at = parse(v.sections[0].start) if v.sections else None
    before = [e for e in loose if first_at is None or parse(e.at) <= first_at]
    after = [e for e in loose if e not in before]
    for group, sections_ in ((before, []), ([], v.sections), (after, [])):
        if group:
            out.append("<div class='step run-events'><div>" + "".join(_event_line(e) for e in group) + "</div></div>")
        out += [_step(s, v) for s in sections_]
    out.append("</details></section>")
    return "\n".join(out)


def _legend() -> str:
    items = [(COLOUR[k], k) for k in ("complete", "failed", "rollback", "skipped", "paused", "in progress")]
    items += [("#2a9d2a", "gate passed (tick)"), ("#d33", "gate failed (tick)"), ("#b00", "decision ◆")]
    return (
        "<p class=legend>"
        + "".join(f"<span><i class=sw style='background:{c}'></i>{h(label)}</span>" for c, label in items)
        + "</p>"
    )


def _event_line(e: TrailEvent) -> str:
    t = parse(e.at)
    return (
        f"<div class='ev {h(e.kind)}' data-kind='{h(e.kind)}'><span class=when title='{h(full_time(e.at))}'>"
        f"{t.strftime('%H:%M:%S')}</span>{h(e.message)}</div>"
    )


def _step(s: PhaseSection, v: RunView) -> str:
    colour = COLOUR.get(s.status, "#999")
    diag = _diagnosis(s, v)
    out = [
        f"<div class='step{' has-diag' if diag else ''}' style='border-left-color:{colour}' "
        f"data-phase='{h(s.phase)}' data-status='{h(s.status)}'><div>",
        f"<h3>{h(s.title)} <small>({h(s.status)}, {h(s.duration)})</small></h3>",
    ]
    out += [_event_line(e) for e in s.events]
    out.append("</div>")
    if diag:
        out.append(diag)
    out.append("</div>")
    return "\n".join(out)


def _diagnosis(s: PhaseSection, v: RunView) -> str:
    """The diagnosis and the evidence, shown next to the failing step."""
    failing = s.failing
    if not failing:
        return ""
    decision = next(
        (e for e in v.events if e.kind in (K.DECISION, K.ROLLBACK_IMPOSSIBLE) and not is_manual_decision(e)), None
    )
    diagnosis = diagnosis_of(v.events, v.run_id)
    parts = ["<aside class=diagnosis>", "<h3>Diagnosis</h3>"]
    parts.append(f"<p class=diag-text>{h(diagnosis) if diagnosis else 'no diagnosis was recorded'}</p>")
    if decision is not None:
        parts.append(f"<p class=decision-text><b>Decision:</b> {h(decision.message)}</p>")
    diag_logs = next(
        (e.data.get("log_lines") for e in v.events if e.kind == K.DIAGNOSIS and e.data.get("log_lines")), None
    )
    if isinstance(diag_logs, list) and diag_logs:
        parts.append("<p><b>last log lines</b></p><pre class=logs>" + h("\n".join(map(str, diag_logs))) + "</pre>")
    for e in failing:
        evidence = _clean(e.data.get("evidence") or ({k: e.data[k] for k in ("error",) if k in e.data}))
        parts.append(f"<p><b>{h(e.data.get('gate') or e.kind)}</b>: {h(one_line(e.message, 300))}</p>")
        logs = evidence.get("log_lines") if isinstance(evidence, dict) else None
        if logs:
            parts.append("<p><b>last log lines</b></p><pre class=logs>" + h("\n".join(map(str, logs))) + "</pre>")
        if evidence:
            text = mask_text(json.dumps(evidence, indent=1, default=str, ensure_ascii=False))
            if len(text) > 4000:
                text = text[:3999] + "…"
            parts.append(f"<details class=evidence open><summary>evidence</summary><pre>{h(text)}</pre></details>")
    parts.append("</aside>")
    return "\n".join(parts)


def _clean(value: Any) -> Any:
    """Evidence with every string neutralised (terminal escapes in ECS text would show as \\u001b otherwise)."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return neutralise(value) if isinstance(value, str) else value


# ------------------------------------------------------------------------------------------------------ SVG


def timeline_svg(v: RunView) -> str:
    """The run drawn on a time axis: a bar per phase (or rollback), gate verdicts as ticks, the decision and the
    rollback marked, and the traffic share over time when events carry it."""
    t0 = parse(v.start)
    t_end = max([parse(v.end)] + [parse(e.at) for e in v.events])
    span = max((t_end - t0).total_seconds(), 1.0)
    plot_w = WIDTH - LABEL_W - RIGHT_PAD
    traffic = v.traffic
    rows = v.sections or []
    height = AXIS_H + max(1, len(rows)) * ROW_H + (16 + TRAFFIC_H + 18 if traffic else 0) + 10

    def x(at: str | datetime) -> float:
        t = parse(at) if isinstance(at, str) else at
        return LABEL_W + plot_w * max(0.0, min(1.0, (t - t0).total_seconds() / span))

    out = [
        f"<svg class=timeline xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {WIDTH} {height}' "
        f"width='{WIDTH}' height='{height}' role='img' aria-label='timeline of run {h(v.run_id)}' "
        "font-family='system-ui,sans-serif' font-size='11'>"
    ]
    out += _axis(t0, span, plot_w, height)
    for i, s in enumerate(rows):
        y = AXIS_H + i * ROW_H
        out += _row(s, y, x)
    # the decision and the rollback, across every row
    body_bottom = AXIS_H + max(1, len(rows)) * ROW_H
    for e in v.events:
        if e.kind == K.DECISION:
            xd = x(e.at)
            out.append(
                f"<g class='decision-mark' data-at='{h(e.at)}'><title>{h(full_time(e.at))}: {h(e.message)}</title>"
                f"<line x1='{xd:.1f}' y1='{AXIS_H - 4}' x2='{xd:.1f}' y2='{body_bottom}' stroke='#b00' "
                "stroke-dasharray='4 3' stroke-width='1.2'/>"
                f"<text x='{xd + 3:.1f}' y='{AXIS_H - 6}' fill='#b00' font-weight='bold'>"
                f"{'manual rollback' if is_manual_decision(e) else 'decision: roll back'}</text></g>"
            )
    if traffic:
        out += _traffic(traffic, body_bottom + 16, x, t_end)
    out.append("</svg>")
    return "\n".join(out)


def _nice_step(span: float) -> float:
    for step in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400):
        if span / step <= 8:
            return float(step)
    return span / 8


def _axis(t0: datetime, span: float, plot_w: float, height: int) -> list[str]:
    step = _nice_step(span)
    out = [f"<g class='axis'><text x='4' y='14' fill='#555'>{h(t0.strftime('%Y-%m-%d'))} ({h(zone_name(t0))})</text>"]
    # ticks on round times (multiples of the step since midnight), not on the run's odd start second
    midnight = t0.replace(hour=0, minute=0, second=0, microsecond=0)
    first = -((t0 - midnight).total_seconds() % step) % step
    k = 0
    while first + k * step <= span + 1e-6:
        secs = first + k * step
        xx = LABEL_W + plot_w * secs / span
        label = (t0 + timedelta(seconds=secs)).strftime("%H:%M:%S")
        out.append(
            f"<line x1='{xx:.1f}' y1='18' x2='{xx:.1f}' y2='{height - 4}' stroke='#e6e6e6'/>"
            f"<text x='{xx:.1f}' y='14' text-anchor='middle' fill='#555'>{label}</text>"
        )
        k += 1
    out.append("</g>")
    return out


def _row(s: PhaseSection, y: int, x: Any) -> list[str]:
    colour = COLOUR.get(s.status, "#999")
    x0, x1 = x(s.start), x(s.end)
    w = max(x1 - x0, 4.0)
    label = one_line(s.title, 34)
    size = "11" if len(label) <= 26 else "9.5"  # "manual rollback to health-only" fits the label column
    out = [
        f"<g class='phase-bar' data-phase='{h(s.phase)}' data-status='{h(s.status)}' data-run='{h(s.run_id)}'>",
        f"<title>{h(s.title)}: {h(s.status)}, {h(s.duration)} ({h(full_time(s.start))} → {h(full_time(s.end))})"
        "</title>",
        f"<text x='{LABEL_W - 8}' y='{y + 17}' text-anchor='end' fill='#222' font-size='{size}'>{h(label)}</text>",
        f"<rect x='{x0:.1f}' y='{y + 5}' width='{w:.1f}' height='{ROW_H - 10}' rx='3' fill='{colour}' "
        "fill-opacity='0.85'/>",
    ]
    text_x = x0 + w + 4
    if text_x < WIDTH - 60:
        out.append(f"<text x='{text_x:.1f}' y='{y + 17}' fill='#666' font-size='10'>{h(s.duration)}</text>")
    out.append("</g>")
    for e in s.events:
        xe = x(e.at)
        if e.kind in GATE_KINDS:
            ok = e.kind == K.GATE_PASSED
            attempts = attempts_of(e)
            tick = "#1b7d1b" if ok else "#d00"
            raw = e.data.get("evidence")
            evidence: dict[str, Any] = raw if isinstance(raw, dict) else {}
            times = e.data.get("attempts_at") or evidence.get("attempts_at") or []  # each attempt's time, if recorded
            for at in times if isinstance(times, list) else []:
                try:
                    xa = x(str(at))
                except ValueError:
                    continue
                out.append(
                    f"<line class='attempt-tick' x1='{xa:.1f}' y1='{y + 7}' x2='{xa:.1f}' y2='{y + ROW_H - 7}' "
                    "stroke='#333' stroke-opacity='0.5'/>"
                )
            out.append(
                f"<g class='gate-tick' data-gate='{h(e.data.get('gate') or '')}' data-verdict='{'passed' if ok else 'failed'}'"
                f" data-attempts='{attempts}'><title>{h(full_time(e.at))}: {h(e.message)}"
                f"{f' ({attempts} attempts)' if attempts > 1 else ''}</title>"
                f"<line x1='{xe:.1f}' y1='{y + 1}' x2='{xe:.1f}' y2='{y + ROW_H - 1}' stroke='#fff' "
                "stroke-width='5'/>"
                f"<line x1='{xe:.1f}' y1='{y + 1}' x2='{xe:.1f}' y2='{y + ROW_H - 1}' stroke='{tick}' "
                "stroke-width='2.5'/>"
                + (
                    f"<text x='{xe + 2:.1f}' y='{y + 4}' font-size='9' fill='{tick}'>×{attempts}</text>"
                    if attempts > 1
                    else ""
                )
                + "</g>"
            )
        elif e.kind == K.DECISION:
            out.append(
                f"<g class='decision-diamond'><title>{h(e.message)}</title><path d='M{xe:.1f} {y + 6} l6 8 l-6 8 "
                f"l-6 -8 z' fill='#b00'/></g>"
            )
        elif e.kind in (K.ROLLBACK_STARTED, K.ROLLBACK_VERIFIED, K.ROLLBACK_FAILED, K.ROLLBACK_IMPOSSIBLE):
            cy = y + ROW_H / 2
            if e.kind == K.ROLLBACK_STARTED:  # a left-pointing double triangle: going back
                shape = (
                    f"<path d='M{xe:.1f} {cy - 7:.1f} l-8 7 l8 7 z M{xe + 8:.1f} {cy - 7:.1f} l-8 7 l8 7 z' "
                    "fill='#5b2fa9' stroke='#fff' stroke-width='0.8'/>"
                )
            elif e.kind == K.ROLLBACK_VERIFIED:  # a check mark
                shape = (
                    f"<circle cx='{xe:.1f}' cy='{cy:.1f}' r='7' fill='#fff' stroke='#1b7d1b' stroke-width='1.5'/>"
                    f"<path d='M{xe - 4:.1f} {cy:.1f} l3 3 l5 -6' fill='none' stroke='#1b7d1b' stroke-width='2'/>"
                )
            else:  # a cross: the rollback failed or was impossible
                shape = (
                    f"<circle cx='{xe:.1f}' cy='{cy:.1f}' r='7' fill='#fff' stroke='#8b0000' stroke-width='1.5'/>"
                    f"<path d='M{xe - 4:.1f} {cy - 4:.1f} l8 8 M{xe + 4:.1f} {cy - 4:.1f} l-8 8' stroke='#8b0000' "
                    "stroke-width='2'/>"
                )
            out.append(
                f"<g class='rollback-mark' data-kind='{h(e.kind)}'><title>{h(full_time(e.at))}: {h(e.message)}"
                f"</title>{shape}</g>"
            )
        elif e.kind in (K.PHASE_FAILED, K.INTERRUPTED, K.PAUSED):
            out.append(
                f"<g class='event-mark' data-kind='{h(e.kind)}'><title>{h(e.message)}</title>"
                f"<circle cx='{xe:.1f}' cy='{y + ROW_H / 2}' r='4' fill='#fff' stroke='#b00' stroke-width='2'/></g>"
            )
    return out


def _traffic(points: list[tuple[str, dict[str, float]]], top: int, x: Any, t_end: datetime) -> list[str]:
    """Traffic share as a step chart: each colour's percentage, stacked, held until the next change."""
    names = sorted({k for _, share in points for k in share}, key=lambda k: (k != "blue", k))
    palette = {"blue": "#3b6fd8", "green": "#2fa35a"}
    spare = ["#e08a1e", "#8e44ad", "#16a2a2"]
    colours = {n: palette.get(n) or spare[i % len(spare)] for i, n in enumerate(names)}
    out = [
        f"<g class='traffic'><text x='{LABEL_W - 8}' y='{top + TRAFFIC_H / 2 + 4}' text-anchor='end' "
        "fill='#222'>traffic share</text>",
        f"<rect x='{LABEL_W}' y='{top}' width='{WIDTH - LABEL_W - RIGHT_PAD}' height='{TRAFFIC_H}' fill='#f3f3f3'/>",
    ]
    for i, (at, share) in enumerate(points):
        xa = x(at)
        xb = x(points[i + 1][0]) if i + 1 < len(points) else x(t_end)
        w = max(xb - xa, 2.0)
        total = sum(max(0.0, share.get(n, 0.0)) for n in names) or 100.0
        y = float(top + TRAFFIC_H)
        label = ", ".join(f"{n} {share.get(n, 0):g}%" for n in names)
        out.append(
            f"<g class='traffic-step' data-at='{h(at)}' data-share='{h(label)}'><title>{h(full_time(at))}: {h(label)}</title>"
        )
        for n in names:
            hh = TRAFFIC_H * max(0.0, share.get(n, 0.0)) / total
            y -= hh
            out.append(
                f"<rect x='{xa:.1f}' y='{y:.1f}' width='{w:.1f}' height='{hh:.1f}' fill='{colours[n]}' fill-opacity='0.8'/>"
            )
        if w > 46:
            out.append(
                f"<text x='{xa + 3:.1f}' y='{top + 12}' font-size='10' fill='#fff'>"
                f"{h(' / '.join(f'{share.get(n, 0):g}%' for n in names))}</text>"
            )
        out.append("</g>")
    legend_x = LABEL_W
    for n in names:
        out.append(
            f"<rect x='{legend_x}' y='{top + TRAFFIC_H + 4}' width='9' height='9' fill='{colours[n]}'/>"
            f"<text x='{legend_x + 12}' y='{top + TRAFFIC_H + 12}' font-size='10' fill='#444'>{h(n)}</text>"
        )
        legend_x += 70
    out.append("</g>")
    return out


__all__ = ["render", "timeline_svg", "anchor", "short_name"]
