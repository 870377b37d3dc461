"""The doctor report as a checklist a person reads in ten seconds."""

from __future__ import annotations

from orchestrator.doctor.model import DoctorReport

MARK = {"passed": "✔", "warning": "!", "failed": "✘", "skipped": "-"}


def render_text(report: DoctorReport, header: str | None = None) -> str:
    """One line per check (✔ ! ✘ -); evidence indented under warnings and failures, then `fix: …`."""
    c = report.counts()
    out = [header] if header else []
    out.append(f"doctor: {c['passed']} passed, {c['warning']} warning(s), {c['failed']} failed, {c['skipped']} skipped")
    for chk in report.checks:
        mark = MARK[chk.status]
        if chk.status in ("passed", "skipped"):
            out.append(f"{mark} {chk.title} [{chk.id}] — {chk.cause}")
            continue
        out.append(f"{mark} {chk.title} [{chk.id}]")
        out.extend(f"    {line}" for line in chk.evidence.splitlines())
        if chk.fix:
            out.append(f"    fix: {chk.fix}")
    return "\n".join(out)
