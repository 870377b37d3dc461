"""snail release REVISION|PHASE: lift the hold a manual rollback put on a release (recorded; the tag is updated)."""

from __future__ import annotations

import getpass
import secrets
import socket

import click

from orchestrator.cli.app import App, pass_app
from orchestrator.errors import ExitCode, UsageError


@click.command("release")
@click.argument("target")
@click.option("--reason", default="", help="why the hold is lifted (recorded in the trail and on the revision)")
@pass_app
def command(app: App, target: str, reason: str) -> int:
    """Lift the hold on REVISION (7, family:7 or an ARN) or on every held revision of PHASE."""
    from orchestrator.aws.ecs import EcsClient
    from orchestrator.clock import SystemClock
    from orchestrator.marks import MarkWriter, ensure_synced, family_for
    from orchestrator.release_memory import held_marks, release
    from orchestrator.state.base import RunRecord, TrailEvent, current_marks

    p, store = app.pipeline, app.store
    svc_name = p.service.name
    aws = app.aws()
    ecs = aws.client("ecs")
    svc = EcsClient(aws).service(p.service.cluster, svc_name)
    live = svc.task_definition if svc else None
    # Another checkout may have written the hold: read the revisions' tags first.
    report = ensure_synced(
        store,
        ecs,
        svc_name,
        family_for(p, live),
        force=True,
        tagging=aws.client("resourcegroupstaggingapi"),
        container=p.service.container,
    )
    for problem in report.ignored:
        click.echo(f"warning: {problem}", err=True)
    marks = store.marks(svc_name)
    found = held_marks(marks, target, p.phase_names(), live)
    if not found:
        held = [m.short + (f" ({m.phase})" if m.phase else "") for m in current_marks(marks) if m.verdict == "held"]
        raise UsageError(f"nothing held matches {target!r}; held: {', '.join(held) or 'nothing'}")
    clock = SystemClock()
    now = clock.now()
    at = now.isoformat(timespec="seconds")
    by = f"{getpass.getuser()}@{socket.gethostname()}"
    run_id = now.strftime("r-%Y%m%d-%H%M%S-") + secrets.token_hex(2)
    store.start_run(
        RunRecord(run_id, svc_name, "release", "running", at, user=getpass.getuser(), host=socket.gethostname())
    )
    writer = MarkWriter(ecs, store)
    lines, data = [], []
    for held_mark in found:
        lifted = release(held_mark, by=by, at=at, run_id=run_id, reason=reason)
        warning = writer.write(lifted)
        if warning:
            click.echo(f"warning: {warning}", err=True)
        msg = (
            f"hold on {held_mark.short} ({held_mark.phase or 'no phase'}) lifted by {by}"
            + (f": {reason}" if reason else "")
            + f"; held since {held_mark.at} by {held_mark.by or '?'}; now {lifted.verdict}"
        )
        store.append_event(
            TrailEvent(
                run_id=run_id,
                service=svc_name,
                at=at,
                kind="released",
                message=msg,
                phase=held_mark.phase or None,
                data={"revision": held_mark.revision_arn, "verdict": lifted.verdict, "by": by, "reason": reason},
            )
        )
        lines.append(msg)
        data.append(lifted.to_dict())
    summary = "; ".join(lines)
    store.finish_run(run_id, "succeeded", ExitCode.OK, summary, at)
    app.emit({"released": data, "run_id": run_id, "warnings": writer.warnings}, "\n".join(lines))
    return ExitCode.OK
