"""snail history: runs, newest first."""

from __future__ import annotations

import click

from orchestrator.cli.app import App, pass_app
from orchestrator.errors import ExitCode


@click.command("history")
@click.option("-n", "--limit", default=20, show_default=True, help="how many runs")
@pass_app
def command(app: App, limit: int) -> int:
    """List runs with when (date, seconds, zone), who from where, the outcome and the exit code."""
    from orchestrator.trail.escape import one_line
    from orchestrator.trail.model import full_time

    runs = app.store.runs(app.pipeline.service.name, limit)
    lines = [
        f"{r.run_id}  {full_time(r.started_at)}  {one_line(f'{r.user}@{r.host}'):<24} {one_line(r.command):<18} "
        f"{r.status:<15} exit {r.exit_code if r.exit_code is not None else '-':<3}  "
        f"{one_line(r.message.splitlines()[0]) if r.message else ''}"
        for r in runs
    ] or ["no runs yet"]
    if runs:
        lines.append(
            f"(newest first; the trail of one: snail trail --run {runs[0].run_id} --format html -o trail.html)"
        )
    app.emit([r.to_dict() for r in runs], "\n".join(lines), key="runs")
    return ExitCode.OK
