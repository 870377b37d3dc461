"""Pieces several commands share: the preflight, printing an outcome, --wait-lock, shell completion."""

from __future__ import annotations

from typing import Any

import click

from orchestrator.cli.app import App
from orchestrator.errors import PreflightFailed


def preflight(app: App, allow_missing_service: bool = False, described: dict[str, Any] | None = None) -> None:
    """Doctor's checks (or their cached pass, see orchestrator.doctor.preflight); a failed check stops the run
    with exit 5 before anything changes. `described`: the service as the plan just described it (saves a call)."""
    from orchestrator.doctor import render_text
    from orchestrator.doctor.preflight import preflight as checked

    report = checked(app.pipeline, app.aws(), described).report
    if report is None:  # passed before, and nothing it read has changed
        return
    failed = [
        c for c in report.checks if c.status == "failed" and not (allow_missing_service and c.id.startswith("service"))
    ]
    if failed:
        if app.log_format == "json":  # every stderr line stays JSON
            app.note("preflight failed", checks=[c.to_dict() for c in failed])
        else:
            click.echo(render_text(report), err=True)
        raise PreflightFailed(
            f"preflight failed: {', '.join(c.id for c in failed)} (nothing was changed; "
            "fix them, or run with --skip-preflight)"
        )


def finish(app: App, outcome: Any, plan: Any = None) -> int:
    """Print how a command ended, send the notifications its outcome calls for, and return its exit code.
    `plan`: what the run executed (it knows the revision that was live before)."""
    app.outcome = outcome
    text = outcome.message + (f"\ntrail: snail trail --run {outcome.run_id}" if outcome.run_id else "")
    diagnosis = getattr(outcome, "diagnosis", None)
    if diagnosis and diagnosis not in outcome.message:
        text += f"\ndiagnosis: {diagnosis}"
    data: dict[str, Any] = {"status": outcome.status}
    plan = plan if plan is not None else getattr(outcome, "plan", None)
    if plan is not None and outcome.status == "dry_run":
        data["plan"] = plan.to_dict()
    elif outcome.status != "dry_run":
        data.update(delivered(app, outcome, plan))
    # A no-op is routine (silent with -q) unless a changed phase was left undeployed behind the live one.
    routine = outcome.status == "noop" and not (plan is not None and plan.behind)
    app.emit(data, text, routine=routine)
    notify_outcome(app, outcome.status, outcome.exit_code, outcome.message, diagnosis, outcome.run_id)
    return int(outcome.exit_code)


def delivered(app: App, outcome: Any, plan: Any = None) -> dict[str, Any]:
    """For `--output json`: what the service runs after this command, by this run's own trail, and the phases
    it delivered, so CI needs no `status` call: `revision`, `phase`, `image`, `digest` (null when the run
    cannot vouch for them, e.g. a rollback that failed) and `deployed` (phases that passed, in order)."""
    service = app.pipeline.service.name
    try:
        events = app.store.events(service, outcome.run_id) if outcome.run_id else []
    except Exception:  # noqa: BLE001 - the result is still printed without them
        events = []
    deployed: list[str] = []
    revision = phase = image = None
    changed = False
    for e in events:
        if e.kind == "service_updated":
            changed = True
        if e.kind == "phase_passed" and e.phase:
            deployed.append(e.phase)
            revision, phase, image = e.data.get("revision"), e.phase, e.data.get("image")
        elif e.kind == "rollback_verified":
            revision, phase, image = e.data.get("revision"), e.phase, None
    if revision is None and not changed and plan is not None and plan.service is not None:
        revision = plan.service.task_definition  # nothing was deployed: what was live still is
    good = None
    if revision:
        try:
            good = next((g for g in app.store.good_history(service) if g.revision_arn == revision), None)
        except Exception:  # noqa: BLE001
            good = None
    if good is not None:
        phase, image = phase or good.phase, image or good.image
    digest = (good.digest if good is not None else None) or (
        image.rsplit("@", 1)[1] if image and "@" in image else None
    )
    return {"revision": revision, "phase": phase, "image": image, "digest": digest, "deployed": deployed}


def notify_outcome(
    app: App, status: str, exit_code: int, message: str, diagnosis: str | None, run_id: str | None
) -> None:
    """Send pipeline.yaml's `notify:` messages for a run/promote/rollback that ended this way. Never raises."""
    if app.command not in ("run", "promote", "rollback"):
        return
    try:
        pipeline = app.pipeline
    except Exception:  # noqa: BLE001 - no pipeline, no notify list
        return
    targets = tuple(getattr(pipeline, "notify", ()))
    if not targets:
        return
    from orchestrator.notify.message import Notice
    from orchestrator.notify.send import send_all

    notice = Notice.build(
        pipeline,
        command=app.command,
        status=status,
        exit_code=exit_code,
        message=message,
        diagnosis=diagnosis,
        run_id=run_id,
    )
    try:
        aws = app.aws() if any(t.kind == "sns" for t in targets) else None
    except Exception:  # noqa: BLE001 - an SNS target without AWS access fails below, recorded
        aws = None
    try:
        store = app.store
    except Exception:  # noqa: BLE001 - a broken store must not hide the notification
        store = None
    send_all(targets, notice, aws=aws, store=store)


def waiting_phase(app: App) -> str | None:
    """The manual phase the newest run paused before (it is waiting for `snail promote`), if that is so."""
    svc = app.pipeline.service.name
    from orchestrator.engine.outcome import UNEVENTFUL

    runs = [r for r in app.store.runs(svc, 10) if r.status not in UNEVENTFUL]
    if not runs or runs[0].status != "paused":
        return None
    paused = [e.phase for e in app.store.events(svc, runs[0].run_id) if e.kind == "paused" and e.phase]
    return paused[-1] if paused and paused[-1] in app.pipeline.phase_names() else None


def _set_wait_lock(ctx: click.Context, param: click.Parameter, value: float | None) -> None:
    if value is not None:
        ctx.ensure_object(App).wait_lock = value


def parse_wait(ctx: click.Context | None, param: click.Parameter | None, value: str | None) -> float | None:
    """`--wait-lock 10m` -> 600.0 seconds (same duration syntax as pipeline.yaml)."""
    if value is None:
        return None
    from orchestrator.config.schema import parse_duration

    try:
        return parse_duration(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a duration (e.g. 30s, 10m)") from None


def wait_lock_option(f: Any) -> Any:
    """--wait-lock DURATION: wait for another run's lock (with a countdown) instead of exiting 4."""

    def callback(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
        _set_wait_lock(ctx, param, parse_wait(ctx, param, value))

    return click.option(
        "--wait-lock",
        metavar="DURATION",
        expose_value=False,
        callback=callback,
        envvar="SNAIL_WAIT_LOCK",
        help="if another run holds the lock, wait up to DURATION (e.g. 10m) instead of exiting 4 [SNAIL_WAIT_LOCK]",
    )(f)


def _root_params(ctx: click.Context) -> dict[str, Any]:
    return ctx.find_root().params


def complete_phase(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    """Shell completion: the phase names of pipeline.yaml (nothing if it does not load)."""
    from click.shell_completion import CompletionItem

    try:
        from orchestrator.config import load_pipeline

        names = load_pipeline(_root_params(ctx).get("file")).phase_names()  # no -f: found upward
    except Exception:  # noqa: BLE001 - completion never prints an error into the user's shell
        return []
    return [CompletionItem(n) for n in names if n.startswith(incomplete)]


def complete_run_id(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    """Shell completion: run ids from the state store, newest first, with their command and status."""
    from click.shell_completion import CompletionItem

    try:
        from orchestrator.config import load_pipeline
        from orchestrator.state.sqlite import SqliteStore

        params = _root_params(ctx)
        p = load_pipeline(params.get("file"))
        if p.state.backend != "local":
            return []  # no AWS calls from a key press
        from orchestrator.cli.app import sandbox_store_path

        path = sandbox_store_path(p) if params.get("sandbox") else p.state_dir() / "state.db"
        if not path.exists():
            return []
        runs = SqliteStore(path).runs(p.service.name, 50)
    except Exception:  # noqa: BLE001
        return []
    return [CompletionItem(r.run_id, help=f"{r.command} {r.status}") for r in runs if r.run_id.startswith(incomplete)]
