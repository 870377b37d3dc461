"""snail rollback: back to a revision that passed our gates, verified by them again, recorded."""

from __future__ import annotations

import click

from orchestrator.cli.app import App, pass_app
from orchestrator.cli.common import complete_phase, wait_lock_option
from orchestrator.errors import UsageError


@click.command("rollback")
@click.option("--to-revision", help="revision number (or family:N) that passed snail's gates")
@click.option("--to-phase", help="the last good revision of this phase", shell_complete=complete_phase)
@click.option("--reason", default="", help="why, recorded in the trail and on the hold")
@wait_lock_option
@pass_app
def command(app: App, to_revision: str | None, to_phase: str | None, reason: str) -> int:
    """Roll back (default: the good revision that was live before the live one; never forward)."""
    from orchestrator.cli.common import finish

    if to_revision and to_phase:
        raise UsageError("give --to-revision or --to-phase, not both")
    if to_phase and to_phase not in app.pipeline.phase_names():
        raise UsageError(f"unknown phase {to_phase!r} (phases: {', '.join(app.pipeline.phase_names())})")
    return finish(app, app.engine().rollback(to_revision=to_revision, to_phase=to_phase, reason=reason))
