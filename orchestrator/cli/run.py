"""snail run: the pipeline, phase by phase, with automatic rollback on any failure."""

from __future__ import annotations

import click

from orchestrator.cli.app import App, pass_app
from orchestrator.cli.common import complete_phase, wait_lock_option
from orchestrator.errors import UsageError


@click.command("run")
@click.option(
    "--from", "from_phase", help="start at this phase (even if it already passed)", shell_complete=complete_phase
)
@click.option("--to", "to_phase", help="stop after this phase", shell_complete=complete_phase)
@click.option("--dry-run", is_flag=True, help="print the plan and change nothing")
@click.option("--resume", is_flag=True, help="continue an interrupted run from the phase it was in")
@click.option("--create-service", is_flag=True, help="create the ECS service from pipeline.yaml if it is missing")
@click.option("--skip-preflight", is_flag=True, help="do not run `doctor` first")
@click.option("--retry-failed", is_flag=True, help="deploy a quarantined spec (one that failed its gates) on purpose")
@click.option(
    "--approve", multiple=True, help="approve a manual phase in advance (repeatable)", shell_complete=complete_phase
)
@wait_lock_option
@pass_app
def command(
    app: App,
    from_phase: str | None,
    to_phase: str | None,
    dry_run: bool,
    resume: bool,
    create_service: bool,
    skip_preflight: bool,
    retry_failed: bool,
    approve: tuple[str, ...],
) -> int:
    """Run the pipeline (all phases, or --from/--to); exit 0 done, 1 rolled back, 3 human needed."""
    from orchestrator.cli.common import finish, preflight
    from orchestrator.engine.executor import RunOptions
    from orchestrator.plan import render_plan

    engine = app.engine(start_sandbox=app.sandbox)
    if resume:
        if from_phase:
            raise UsageError("give --resume or --from, not both")
        from_phase = engine.resume_point()
    opts = RunOptions(
        from_phase=from_phase,
        to_phase=to_phase,
        dry_run=dry_run,
        create_service=create_service,
        approved=set(approve),
        command="run",
        retry_failed=retry_failed,
    )
    if not dry_run:  # what an earlier run could not write to the store (an outage) is written before planning
        engine.replay_spool()
    # The plan is the contract: made here, rendered for a dry run, executed exactly as made otherwise.
    plan = engine.plan(opts, with_diff=dry_run)
    if dry_run:
        app.emit(plan.to_dict(), render_plan(plan, app.pipeline) + "\n(dry run: nothing was changed)")
        return 0
    if not skip_preflight:
        described = plan.service.raw if plan.service is not None else None  # the plan's describe, reused
        preflight(app, allow_missing_service=create_service, described=described or None)
    outcome = engine.execute(plan, opts)
    return finish(app, outcome, outcome.plan or plan)  # a run that waited for the lock planned again
