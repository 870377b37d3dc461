"""snail doctor: preflight checks with evidence and the exact fix."""

from __future__ import annotations

import click

from orchestrator.cli.app import App, pass_app
from orchestrator.errors import ExitCode


@click.command("doctor")
@click.option("--strict", is_flag=True, help="warnings fail too")
@pass_app
def command(app: App, strict: bool) -> int:
    """Check the cluster, service, ports, security groups, public reachability, image pull path and deployment settings."""
    from orchestrator.doctor import render_text
    from orchestrator.doctor.preflight import doctor_and_record

    report = doctor_and_record(app.pipeline, app.aws())  # also refreshes (or drops) run's cached preflight
    app.emit(report.to_dict(), render_text(report))
    return ExitCode.OK if report.ok(strict=strict) else ExitCode.PREFLIGHT
