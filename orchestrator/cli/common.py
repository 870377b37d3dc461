"""Pieces several commands share: the preflight, printing an outcome."""

from __future__ import annotations

import click

from orchestrator.cli.app import App
from orchestrator.errors import PreflightFailed


def preflight(app: App, allow_missing_service: bool = False) -> None:
    """Run doctor's checks; a failed check stops the run with exit 5 before anything changes."""
    from orchestrator.doctor import render_text, run_doctor

    report = run_doctor(app.pipeline, app.aws())
    failed = [
        c for c in report.checks if c.status == "failed" and not (allow_missing_service and c.id.startswith("service"))
    ]
    if failed:
        click.echo(render_text(report), err=True)
        raise PreflightFailed(
            f"preflight failed: {', '.join(c.id for c in failed)} (nothing was changed; "
            "fix them, or run with --skip-preflight)"
        )


def finish(app: App, outcome) -> int:  # type: ignore[no-untyped-def]
    """Print how a command ended and return its exit code."""
    app.emit(
        {
            "exit_code": outcome.exit_code,
            "status": outcome.status,
            "message": outcome.message,
            "run_id": outcome.run_id,
        },
        outcome.message + (f"\ntrail: snail trail --run {outcome.run_id}" if outcome.run_id else ""),
    )
    return outcome.exit_code
