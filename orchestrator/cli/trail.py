"""snail trail: the journal as the field log (Markdown), JSON, or an HTML page."""

from __future__ import annotations

import json
from pathlib import Path

import click

from orchestrator.cli.app import App, pass_app
from orchestrator.cli.common import complete_run_id
from orchestrator.errors import ExitCode, UsageError


@click.command("trail")
@click.option("--run", "run_id", help="one run only (id or unique prefix)", shell_complete=complete_run_id)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["md", "json", "html"]),
    default=None,
    help="default md (json with --output json)",
)
@click.option("--last", "last", type=click.IntRange(min=1), default=20, show_default=True, help="the last N runs")
@click.option("-o", "--out", "out_file", type=click.Path(dir_okay=False), help="write to a file instead of stdout")
@pass_app
def command(app: App, run_id: str | None, fmt: str | None, last: int, out_file: str | None) -> int:
    """Render the trail of the service (its last N runs), or of one run."""
    from orchestrator.trail import TrailHeader, render
    from orchestrator.trail.model import run_events

    svc = app.pipeline.service
    fmt = fmt or ("json" if app.output == "json" else "md")
    if run_id:
        run = app.store.get_run(run_id)
        if run is None:
            raise UsageError(f"no run {run_id!r} (see `snail history`)")
        events, runs = app.store.events(svc.name, run.run_id), [run]
    else:
        runs = app.store.runs(svc.name, last)
        events = run_events(app.store.events(svc.name), runs)
    header = TrailHeader(svc.name, svc.cluster, app.region or svc.region)
    text = render(fmt, svc.name, events, runs, app.pipeline.phase_names(), header)
    if out_file:
        from orchestrator.redact import mask_text

        Path(out_file).write_text(mask_text(text))  # a file is an output path too: the redaction layer applies
        if app.output == "json":
            app.emit({"written": out_file, "format": fmt, "runs": len(runs)}, f"trail written to {out_file}")
        else:
            click.echo(f"trail written to {out_file}", err=True)
    elif app.output == "json":
        # one JSON document on stdout: the CLI boundary prints it, merged with the exit code
        app.emit(json.loads(text) if fmt == "json" else {"format": fmt, "trail": text}, text)
    else:
        click.echo(text)
    return ExitCode.OK
