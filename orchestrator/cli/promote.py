"""snail promote: run exactly the next phase after the current one (or the one named)."""

from __future__ import annotations

import click

from orchestrator.cli.app import App, pass_app
from orchestrator.cli.common import complete_phase, wait_lock_option
from orchestrator.errors import UsageError


@click.command("promote")
@click.argument("phase", required=False, shell_complete=complete_phase)
@click.option("--skip-preflight", is_flag=True, help="do not run `doctor` first")
@wait_lock_option
@pass_app
def command(app: App, phase: str | None, skip_preflight: bool) -> int:
    """Promote one phase (approving it if it is manual)."""
    from orchestrator.cli.common import finish, preflight, waiting_phase
    from orchestrator.engine.executor import RunOptions

    engine = app.engine(start_sandbox=app.sandbox)
    names = app.pipeline.phase_names()
    if phase is None:
        phase = waiting_phase(app)  # a run paused before a manual phase: that is the one to promote
    if phase is None:
        svc = engine.ecs.service(app.pipeline.service.cluster, app.pipeline.service.name)
        live = svc.task_definition if svc else None
        current = next((g for g in app.store.good_history(app.pipeline.service.name) if g.revision_arn == live), None)
        idx = names.index(current.phase) + 1 if current and current.phase in names else 0
        if idx >= len(names):
            raise UsageError(f"the service is on the last phase ({names[-1]}): nothing to promote")
        phase = names[idx]
    if not skip_preflight:
        preflight(app)
    return finish(app, engine.run(RunOptions(only=phase, approved={phase}, command=f"promote {phase}")))
