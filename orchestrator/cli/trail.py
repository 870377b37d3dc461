"""snail trail: the journal as the field log (Markdown), JSON, or an HTML page."""

from __future__ import annotations

from pathlib import Path

import click

from orchestrator.cli.app import App, pass_app
from orchestrator.errors import ExitCode, UsageError


@click.command("trail")
@click.option("--run", "run_id", help="one run only (id or unique prefix)")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["md", "json", "html"]),
    default=None,
    help="default md (json with --output json)",
)
@click.option("-o", "--out", "out_file", type=click.Path(dir_okay=False), help="write to a file instead of stdout")
@pass_app
def command(app: App, run_id: str | None, fmt: str | None, out_file: str | None) -> int:
    """Render the trail of the service (or of one run)."""
    from orchestrator.trail import render

    svc = app.pipeline.service.name
    fmt = fmt or ("json" if app.output == "json" else "md")
    if run_id:
        run = app.store.get_run(run_id)
        if run is None:
            raise UsageError(f"no run {run_id!r} (see `snail history`)")
        events, runs = app.store.events(svc, run.run_id), [run]
    else:
        events, runs = app.store.events(svc), app.store.runs(svc, 1000)
    text = render(fmt, svc, events, runs, app.pipeline.phase_names())
    if out_file:
        Path(out_file).write_text(text)
        click.echo(f"trail written to {out_file}", err=True)
    else:
        click.echo(text)
    return ExitCode.OK
