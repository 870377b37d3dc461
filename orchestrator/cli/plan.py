"""snail plan: what run would do — read-only (Describe/List/Get only)."""

from __future__ import annotations

import click

from orchestrator.cli.app import App, pass_app
from orchestrator.cli.common import complete_phase
from orchestrator.errors import ExitCode


@click.command("plan")
@click.option("--from", "from_phase", help="start at this phase", shell_complete=complete_phase)
@click.option("--to", "to_phase", help="stop after this phase", shell_complete=complete_phase)
@pass_app
def command(app: App, from_phase: str | None, to_phase: str | None) -> int:
    """Print the images, task-definition diff, service update and gates of each phase."""
    from orchestrator.engine.executor import RunOptions
    from orchestrator.plan import render_plan

    plan = app.engine().plan(RunOptions(from_phase=from_phase, to_phase=to_phase))
    app.emit(plan.to_dict(), render_plan(plan, app.pipeline))
    return ExitCode.OK
