"""snail release PHASE|REVISION: lift the hold a manual rollback put on one revision (recorded; the tag is updated).

PHASE means the hold on the phase's current spec (as its files compose it now); any other held revision of the
phase is lifted only by its own name, so a revision a human rolled back from never becomes a target by accident."""

from __future__ import annotations

import getpass
import socket

import click

from orchestrator.cli.app import App, pass_app
from orchestrator.errors import ExitCode, UsageError


@click.command("release")
@click.argument("target")
@click.option("--reason", default="", help="why the hold is lifted (recorded in the trail and on the revision)")
@pass_app
def command(app: App, target: str, reason: str) -> int:
    """Lift the hold on PHASE's current spec, or on REVISION (7, family:7 or an ARN): one revision, named."""
    from orchestrator.aws.ecs import EcsClient
    from orchestrator.aws.tagging import RevisionTags
    from orchestrator.clock import SystemClock
    from orchestrator.engine.executor import new_run_id
    from orchestrator.marks import MarkWriter, ensure_synced, family_for
    from orchestrator.release_memory import Refusal, release, release_target
    from orchestrator.state.base import RunRecord, TrailEvent

    p, store = app.pipeline, app.store
    svc_name = p.service.name
    aws = app.aws()
    revisions = RevisionTags.of(aws)
    svc = EcsClient(aws).service(p.service.cluster, svc_name)
    live = svc.task_definition if svc else None
    # Another checkout may have written the hold: read the revisions' tags first.
    report = ensure_synced(
        store,
        revisions,
        svc_name,
        family_for(p, live),
        force=True,
        container=p.service.container,
    )
    for problem in report.ignored:
        click.echo(f"warning: {problem}", err=True)
    marks = store.marks(svc_name)
    specs: dict[str, str] = {}
    if target in p.phase_names():  # the phase's spec as its files compose it now (the planner, read-only)
        from orchestrator.engine.executor import RunOptions

        plan = app.engine().plan(RunOptions(), with_diff=False)
        specs = {pp.phase.name: pp.spec_hash for pp in plan.phases}
    found = release_target(marks, target, specs, live)
    if isinstance(found, Refusal):
        raise UsageError(found.message)
    clock = SystemClock()
    now = clock.now()
    at = now.isoformat(timespec="seconds")
    by = f"{getpass.getuser()}@{socket.gethostname()}"
    run_id = new_run_id(clock)
    store.start_run(
        RunRecord(run_id, svc_name, "release", "running", at, user=getpass.getuser(), host=socket.gethostname())
    )
    writer = MarkWriter(revisions, store)
    lifted = release(found, by=by, at=at, run_id=run_id, reason=reason)
    warning = writer.write(lifted)
    if warning:
        click.echo(f"warning: {warning}", err=True)
    msg = (
        f"hold on {found.short} ({found.phase or 'no phase'}) lifted by {by}"
        + (f": {reason}" if reason else "")
        + f"; held since {found.at} by {found.by or '?'}; now {lifted.verdict}"
        + (f" (spec {found.spec_hash})" if found.spec_hash else "")
    )
    store.append_event(
        TrailEvent(
            run_id=run_id,
            service=svc_name,
            at=at,
            kind="released",
            message=msg,
            phase=found.phase or None,
            data={"revision": found.revision_arn, "verdict": lifted.verdict, "by": by, "reason": reason},
        )
    )
    summary = msg
    store.finish_run(run_id, "succeeded", ExitCode.OK, summary, at)
    app.emit({"released": [lifted.to_dict()], "run_id": run_id, "warnings": writer.warnings}, msg)
    return ExitCode.OK
