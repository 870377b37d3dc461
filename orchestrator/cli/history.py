"""snail history: runs, newest first."""

from __future__ import annotations

import click

from orchestrator.cli.app import App, pass_app
from orchestrator.errors import ExitCode


@click.command("history")
@click.option("-n", "--limit", default=20, show_default=True, help="how many runs")
@pass_app
def command(app: App, limit: int) -> int:
    """List runs with their outcome and exit code."""
    runs = app.store.runs(app.pipeline.service.name, limit)
    lines = [
        f"{r.run_id}  {r.started_at}  {r.command:<18} {r.status:<12} exit {r.exit_code if r.exit_code is not None else '-'}  {r.message.splitlines()[0] if r.message else ''}"
        for r in runs
    ] or ["no runs yet"]
    app.emit([r.to_dict() for r in runs], "\n".join(lines), key="runs")
    return ExitCode.OK
