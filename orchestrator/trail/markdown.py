"""The trail as Markdown in the field log's shape: phases with start/end/duration, a timestamped progress log,
gates as check boxes, challenges with their resolution, rollback events and key decisions."""

from __future__ import annotations

from orchestrator.state.base import RunRecord, TrailEvent
from orchestrator.trail.model import parse, rollbacks, sections

ICON = {
    "phase_started": "🚀",
    "image_ready": "✅",
    "revision_registered": "✅",
    "revision_reused": "♻️",
    "service_updated": "✅",
    "service_created": "✅",
    "service_unchanged": "🔁",
    "gate_passed": "✅",
    "gate_failed": "❌",
    "bake_done": "✅",
    "phase_passed": "🎉",
    "phase_skipped": "⏭️",
    "decision": "🚨",
    "rollback_started": "⏪",
    "rollback_verified": "✅",
    "rollback_failed": "🆘",
    "rollback_impossible": "🆘",
    "paused": "✋",
    "noop": "💤",
    "phase_failed": "❌",
    "reconciled": "🩹",
    "lock_taken_over": "🔓",
    "unlocked": "🔓",
}
STATUS = {
    "complete": "[X] Complete",
    "failed": "[ ] Complete | [X] Failed",
    "skipped": "[X] Skipped (already good)",
    "paused": "[ ] Waiting for approval",
    "in progress": "[ ] Complete | [X] In Progress",
    "rollback": "[X] Rollback target",
}


def stamp(at: str) -> str:
    """'2025-08-11T18:19:00+00:00' -> '[AUG 11] - [18:19]' as in the field log."""
    t = parse(at)
    return f"[{t.strftime('%b').upper()} {t.day:02d}] - [{t.strftime('%H:%M')}]"


def render(service: str, events: list[TrailEvent], runs: list[RunRecord], phase_order: list[str]) -> str:
    """The whole trail of a service (or of one run, given only its events)."""
    out: list[str] = [
        f"# 🐌 **SNAIL TRAIL LOG: {service}**",
        "",
        "> *Every step forward, every challenge overcome — recorded by snail-trail, not by hand.* 🛤️",
        "",
    ]
    secs = sections(events)
    last: dict[str, object] = {}
    passed: set[str] = set()
    for s in secs:
        last[s.phase] = s
        if s.status in ("complete", "skipped"):
            passed.add(s.phase)
    out += ["## 🎯 **MISSION STATUS**", ""]
    if runs:
        r = runs[0]
        out.append(
            f"**Latest run**: `{r.run_id}` ({r.command}) — **{r.status}**"
            + (f", exit {r.exit_code}" if r.exit_code is not None else "")
        )
        if r.message:
            out.append(f"**Outcome**: {r.message.splitlines()[0]}")
        out.append(f"**Runs recorded**: {len(runs)}")
    out += ["", "## 📊 **OVERALL PROGRESS TRACKER**", ""]
    done = 0
    for name in phase_order:
        s = last.get(name)
        st = s.status if s else "not started"  # type: ignore[attr-defined]
        ok = name in passed
        done += ok
        note = (
            st
            if not ok or st in ("complete", "skipped")
            else f"complete (latest attempt {st}, rolled back to the last good revision)"
        )
        out.append(f"- {'[X]' if ok else '[ ]'} **{name}**: {note}")
    if phase_order:
        out += ["", "```", f"🐌 Overall Progress: {100 * done // len(phase_order)}% Complete", "```"]
    out += ["", "---", ""]
    for i, s in enumerate(secs, 1):
        out += [
            f"## 🐌 **PHASE: {s.phase}** (run `{s.run_id}`)",
            "",
            f"**Status**: {STATUS.get(s.status, s.status)}",
            f"**Start Date**: {parse(s.start).strftime('%B %d, %Y - %H:%M:%S %Z')}",
            f"**Completion Date**: {parse(s.end).strftime('%B %d, %Y - %H:%M:%S %Z') if s.status != 'in progress' else '[IN PROGRESS]'}",
            f"**Duration**: {s.duration}",
            "",
            "### **Progress Log:**",
            "```",
        ]
        for e in s.events:
            out.append(f"🐌 {stamp(e.at)}: {ICON.get(e.kind, '•')} {e.message}")
        out += ["```", ""]
        if s.gates:
            out += ["### **Success Metrics (gates):**"]
            for g in s.gates:
                box = "[X]" if g.kind == "gate_passed" else "[ ]"
                text = g.message[4:] if g.message.startswith(("[x] ", "[ ] ")) else g.message
                out.append(f"- {box} {text}")
            out.append("")
        # ecs-rollout "attempts" are polls of a rollout in progress, not retries: only other gates' retries are challenges
        challenges = [
            g
            for g in s.gates
            if g.kind == "gate_failed" or ((g.data.get("attempts") or 1) > 1 and g.data.get("gate") != "ecs-rollout")
        ]
        if challenges:
            out += ["### **Challenges Encountered:**", "```"]
            for g in challenges:
                if g.kind == "gate_passed":
                    out += [
                        f"{stamp(g.at)}: {g.data.get('gate')} needed {g.data.get('attempts')} attempts",
                        f"[Resolution]: passed on attempt {g.data.get('attempts')}",
                        "[Lessons Learned]: the service needed time to become healthy; the retries absorbed it",
                        "",
                    ]
                else:
                    res = next(
                        (
                            e.message
                            for e in events
                            if e.run_id == g.run_id
                            and e.kind in ("rollback_verified", "rollback_failed", "rollback_impossible")
                        ),
                        "[PENDING]",
                    )
                    out += [
                        f"{stamp(g.at)}: {g.message[4:] if g.message.startswith('[ ] ') else g.message}",
                        f"[Resolution]: {res}",
                        "",
                    ]
                    for t in (g.data.get("evidence") or {}).get("stopped_tasks", [])[:3]:
                        out.insert(-1, f"[Evidence]: task {t.get('task')} stopped: {t.get('stopped_reason')}")
            out += ["```", ""]
        out += ["---", ""]
    rbs = rollbacks(events)
    out += ["## 🚨 **EMERGENCY ROLLBACK EVENTS**", "", "### **Rollback Log:**", "```"]
    if not rbs:
        out.append("(none)")
    for rb in rbs:
        out += [f"{stamp(rb['at'])}: Phase {rb['phase']} failed (run {rb['run_id']})", f"[Reason]: {rb['reason']}"]
        if rb["diagnosis"]:
            out.append(f"[Diagnosis]: {rb['diagnosis']}")
        out += [f"[Action]: {rb['action'] or 'none possible'}", f"[Resolution]: {rb['resolution'] or '[PENDING]'}", ""]
    out += ["```", "", "## 🎉 **VICTORY MILESTONES**", "", "```"]
    wins = [e for e in events if e.kind in ("phase_passed", "rollback_verified", "noop")]
    out += [f"{stamp(e.at)}: 🎯 {e.message}" for e in wins] or ["[PENDING]"]
    out += ["```", "", "## 📚 **KEY DECISIONS LOG**", "", "```"]
    decisions = [
        e
        for e in events
        if e.kind
        in ("decision", "rollback_impossible", "paused", "reconciled", "lock_taken_over", "unlocked", "service_created")
    ]
    for e in decisions:
        out += [
            f"{stamp(e.at)}: [Decision made]: {e.message}",
            f"[Context]: run {e.run_id}, phase {e.phase or '-'}",
            "",
        ]
    if not decisions:
        out.append("(none)")
    out += ["```", "", "---", "", "*Rendered by snail-trail from the run journal.* 🛤️", ""]
    return "\n".join(out)
