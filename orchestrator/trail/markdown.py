"""The trail as Markdown in the field log's shape: phases with start/end/duration, a timestamped progress log,
gates as check boxes, challenges with their resolution, rollback events, victories and key decisions.

Every event is listed once in the summary sections (a rollback under EMERGENCY ROLLBACK EVENTS only, never as a
victory); untrusted text (ECS messages, gate output) goes through `trail.escape` before it is written."""

from __future__ import annotations

from orchestrator.state.base import RunRecord, TrailEvent
from orchestrator.trail.escape import md_block, md_inline, one_line
from orchestrator.trail.kinds import EventKind as K
from orchestrator.trail.model import (
    PhaseSection,
    TrailHeader,
    attempts_of,
    full_time,
    live_phase,
    parse,
    rollbacks,
    sections,
    unproven_change,
    zone_name,
)

ICON: dict[str, str] = {
    K.RUN_STARTED: "🚀",
    K.PHASE_STARTED: "🚀",
    K.IMAGE_READY: "✅",
    K.REVISION_REGISTERED: "✅",
    K.REVISION_REUSED: "♻️",
    K.SERVICE_UPDATED: "✅",
    K.SERVICE_CREATED: "✅",
    K.SERVICE_UNCHANGED: "🔁",
    K.GATE_PASSED: "✅",
    K.GATE_FAILED: "❌",
    K.BAKE_DONE: "✅",
    K.PHASE_PASSED: "🎉",
    K.PHASE_FAILED: "❌",
    K.PHASE_SKIPPED: "⏭️",
    K.DECISION: "🚨",
    K.DIAGNOSIS: "🔍",
    K.BLOCKED: "⛔",
    K.MARKED: "🏷️",
    K.WARNING: "⚠️",
    K.NOTIFIED: "📣",
    K.NOTIFY_FAILED: "📵",
    K.ROLLBACK_STARTED: "⏪",
    K.ROLLBACK_VERIFIED: "✅",
    K.ROLLBACK_FAILED: "🆘",
    K.ROLLBACK_IMPOSSIBLE: "🆘",
    K.PAUSED: "✋",
    K.NOOP: "💤",
    K.RUN_FINISHED: "🏁",
    K.RECONCILED: "🩹",
    K.LOCK_TAKEN_OVER: "🔓",
    K.INTERRUPTED: "⛔",
    K.UNLOCKED: "🔓",
    K.RELEASED: "🔓",
    K.TRAFFIC_SHIFTED: "🔀",
    K.SUPERSEDED: "👥",
}
STATUS = {
    "complete": "[X] Complete",
    "failed": "[ ] Complete | [X] Failed",
    "skipped": "[X] Skipped (already good)",
    "paused": "[ ] Waiting for approval",
    "in progress": "[ ] Complete | [X] In Progress",
    "interrupted": "[ ] Complete | [X] Interrupted",
    "blocked": "[ ] Complete | [X] Not deployed (quarantined or held: see the decision)",
    "rollback": "[X] Rolled back to this phase's last good revision (verified)",
    "rollback failed": "[ ] Rolled back | [X] Rollback failed: a human is needed",
}
# Summary sections are disjoint: each of these events appears in exactly one of them.
VICTORIES = (K.PHASE_PASSED,)  # a no-op is no victory (a cron tick would add one every minute)
DECISIONS = (
    K.PAUSED,
    K.RECONCILED,
    K.LOCK_TAKEN_OVER,
    K.UNLOCKED,
    K.SERVICE_CREATED,
    K.INTERRUPTED,
    K.RELEASED,
    K.BLOCKED,
    K.WARNING,
    K.NOTIFIED,
    K.NOTIFY_FAILED,
)


def stamp(at: str) -> str:
    """'2026-11-29T07:08:49+00:00' -> '[NOV 29 2026] - [07:08:49 UTC]': the field log's shape, with seconds,
    year and zone."""
    t = parse(at)
    return f"[{t.strftime('%b').upper()} {t.day:02d} {t.year}] - [{t.strftime('%H:%M:%S')} {zone_name(t)}]"


def long_date(at: str) -> str:
    """'November 29, 2026 - 07:08:49 UTC' as the field log's Start Date lines."""
    t = parse(at)
    return f"{t.strftime('%B %d, %Y - %H:%M:%S')} {zone_name(t)}"


def render(
    service: str,
    events: list[TrailEvent],
    runs: list[RunRecord],
    phase_order: list[str],
    header: TrailHeader | None = None,
) -> str:
    """The whole trail of a service (or of one run, given only its events), oldest first like the field log."""
    header = header or TrailHeader(service)
    out: list[str] = [
        f"# 🐌 **SNAIL TRAIL LOG: {md_inline(service)}**",
        "",
        "> *Every step forward, every challenge overcome — recorded by snail-trail, not by hand.* 🛤️",
        "",
    ]
    secs = sections(events)
    out += _mission(header, runs)
    out += _tracker(secs, events, phase_order)
    out += ["---", ""]
    for s in secs:
        out += _section(s, events)
    out += _rollback_log(events)
    out += ["## 🎉 **VICTORY MILESTONES**", "", "```"]
    wins = [e for e in events if e.kind in VICTORIES]
    out += [f"{stamp(e.at)}: 🎯 {md_block(e.message)}" for e in wins] or ["[PENDING]"]
    out += ["```", "", "## 📚 **KEY DECISIONS LOG**", "", "```"]
    decisions = [e for e in events if e.kind in DECISIONS]
    for e in decisions:
        out += [
            f"{stamp(e.at)}: [Decision made]: {md_block(e.message)}",
            f"[Context]: run {e.run_id}, phase {e.phase or '-'}",
            "",
        ]
    if not decisions:
        out.append("(none)")
    out += ["```", "", "---", "", "*Rendered by snail-trail from the run journal.* 🛤️", ""]
    return "\n".join(out)


def _mission(header: TrailHeader, runs: list[RunRecord]) -> list[str]:
    out = ["## 🎯 **MISSION STATUS**", ""]
    where = ", ".join(p for p in (header.cluster and f"cluster {header.cluster}", header.region) if p)
    if where:
        out.append(f"**Service**: {md_inline(header.service)} ({md_inline(where)})")
    if runs:
        r = runs[0]
        out.append(
            f"**Latest run**: `{r.run_id}` ({md_inline(r.command)}) — **{md_inline(r.status)}**"
            + (f", exit {r.exit_code}" if r.exit_code is not None else "")
        )
        who = f"{r.user}@{r.host}" if r.user or r.host else "unknown"
        out.append(f"**Run by**: {md_inline(who)}, started {full_time(r.started_at)}")
        if r.message:
            out.append(f"**Outcome**: {md_inline(r.message.splitlines()[0])}")
        out.append(f"**Runs recorded**: {len(runs)}")
    out.append("")
    return out


def _tracker(secs: list[PhaseSection], events: list[TrailEvent], phase_order: list[str]) -> list[str]:
    """Progress as the service stands now: a phase rolled back from is not complete, whatever it once was."""
    out = ["## 📊 **OVERALL PROGRESS TRACKER**", ""]
    last: dict[str, PhaseSection] = {}
    ever_passed: set[str] = set()
    for s in secs:
        if not s.is_rollback:
            last[s.phase] = s
        if s.status in ("complete", "skipped"):
            ever_passed.add(s.phase)
    live = live_phase(events)
    live_at = phase_order.index(live) if live in phase_order else -1
    last_live = next((e for e in reversed(events) if e.kind in (K.PHASE_PASSED, K.ROLLBACK_VERIFIED)), None)
    rolled_back = last_live is not None and last_live.kind == K.ROLLBACK_VERIFIED
    unproven = unproven_change(events)
    for i, name in enumerate(phase_order):
        sec = last.get(name)
        st = sec.status if sec else "not started"
        done = i <= live_at
        if done and (st in ("complete", "skipped") or sec is None):
            note = "complete"
        elif done:
            note = f"complete (latest attempt {st}; its last good revision is live)"
        elif name in ever_passed:
            note = "passed before, then rolled back: not live"
        else:
            note = st
        out.append(f"- {'[X]' if done else '[ ]'} **{md_inline(name)}**: {note}")
    if phase_order:
        pct = 100 * (live_at + 1) // len(phase_order)
        line = f"🐌 Overall Progress: {pct}% Complete"
        if unproven is not None:
            line += (
                f" (last verified: phase {live or '-'}; since then the service was changed and not verified: "
                f"{one_line(unproven.message, 160)}, run {unproven.run_id})"
            )
        elif live is None:
            line += " (no phase has passed its gates yet)"
        elif rolled_back:
            line += f" (rolled back: the service runs phase {live}'s last good revision)"
        else:
            line += f" (live: phase {live})"
        out += ["", "```", line, "```"]
    out.append("")
    return out


def _section(s: PhaseSection, events: list[TrailEvent]) -> list[str]:
    title = f"ROLLBACK TO: {s.phase}" if s.is_rollback else f"PHASE: {s.phase}"
    if s.is_rollback and s.is_manual:
        title = f"MANUAL ROLLBACK TO: {s.phase}"
    out = [
        f"## 🐌 **{md_inline(title)}** (run `{s.run_id}`)",
        "",
        f"**Status**: {STATUS.get(s.status, s.status)}",
        f"**Start Date**: {long_date(s.start)}",
        f"**Completion Date**: {long_date(s.end) if s.status != 'in progress' else '[IN PROGRESS]'}",
        f"**Duration**: {s.duration}",
        "",
        "### **Progress Log:**",
        "```",
    ]
    for e in s.events:
        out.append(f"🐌 {stamp(e.at)}: {ICON.get(e.kind, '•')} {md_block(e.message)}")
    out += ["```", ""]
    if s.gates:
        out += ["### **Success Metrics (gates):**" if not s.is_rollback else "### **Verification (gates):**"]
        for g in s.gates:
            box = "[X]" if g.kind == K.GATE_PASSED else "[ ]"
            text = g.message[4:] if g.message.startswith(("[x] ", "[ ] ")) else g.message
            out.append(f"- {box} {md_inline(text)}")
        out.append("")
    # ecs-rollout "attempts" are polls of a rollout in progress, not retries: only other gates' retries are challenges
    challenges = [
        g for g in s.gates if g.kind == K.GATE_FAILED or (attempts_of(g) > 1 and g.data.get("gate") != "ecs-rollout")
    ] + [e for e in s.events if e.kind == K.PHASE_FAILED]
    if challenges:
        out += ["### **Challenges Encountered:**", "```"]
        for g in challenges:
            out += _challenge(g, events)
        out += ["```", ""]
    out += ["---", ""]
    return out


def _challenge(g: TrailEvent, events: list[TrailEvent]) -> list[str]:
    if g.kind == K.GATE_PASSED:
        return [
            f"{stamp(g.at)}: {md_block(g.data.get('gate'))} needed {attempts_of(g)} attempts",
            f"[Resolution]: passed on attempt {attempts_of(g)}",
            "[Lessons Learned]: the service needed time to become healthy; the retries absorbed it",
            "",
        ]
    res = next(
        (
            e.message
            for e in events
            if e.run_id == g.run_id
            and e.kind in (K.ROLLBACK_VERIFIED, K.ROLLBACK_FAILED, K.ROLLBACK_IMPOSSIBLE)
            and parse(e.at) >= parse(g.at)
        ),
        "nothing was deployed; the service stays where it was" if g.kind == K.PHASE_FAILED else "[PENDING]",
    )
    text = g.message[4:] if g.message.startswith("[ ] ") else g.message
    out = [f"{stamp(g.at)}: {md_block(text)}"]
    evidence = g.data.get("evidence") or {}
    for t in (evidence.get("stopped_tasks") or [])[:3] if isinstance(evidence, dict) else []:
        if isinstance(t, dict):
            out.append(f"[Evidence]: task {md_block(t.get('task'))} stopped: {md_block(t.get('stopped_reason'))}")
    for line in (evidence.get("log_lines") or [])[-5:] if isinstance(evidence, dict) else []:
        out.append(f"[Log]: {md_block(line)}")
    out += [f"[Resolution]: {md_block(res)}", ""]
    return out


def _rollback_log(events: list[TrailEvent]) -> list[str]:
    out = ["## 🚨 **EMERGENCY ROLLBACK EVENTS**", "", "### **Rollback Log:**", "```"]
    rbs = rollbacks(events)
    if not rbs:
        out.append("(none)")
    for rb in rbs:
        out += [
            f"{stamp(rb['at'])}: {md_block(rb['title'])} (run {rb['run_id']})",
            f"[Reason]: {md_block(rb['reason'])}",
        ]
        if rb["diagnosis"]:
            out.append(f"[Diagnosis]: {md_block(rb['diagnosis'])}")
        out += [f"[Log]: {md_block(line)}" for line in rb["log_lines"][-5:]]
        out += [
            f"[Action]: {md_block(rb['action'] or 'none possible')}",
            f"[Resolution]: {md_block(rb['resolution'] or '[PENDING]')}",
            "",
        ]
    out += ["```", ""]
    return out
