"""snail unlock --force: remove a stuck lock; the removal is recorded in the trail."""

from __future__ import annotations

import getpass
import socket

import click

from orchestrator.cli.app import App, pass_app
from orchestrator.errors import ExitCode, UsageError


@click.command("unlock")
@click.option("--force", is_flag=True, help="required: you are sure no run is alive")
@pass_app
def command(app: App, force: bool) -> int:
    """Remove the service's lock whoever holds it."""
    from orchestrator.clock import SystemClock
    from orchestrator.state.base import TrailEvent

    if not force:
        raise UsageError("unlock removes another run's lock: add --force if you are sure it is dead")
    svc = app.pipeline.service.name
    holder = app.store.force_unlock(svc)
    msg = (
        (
            f"lock of run {holder.get('run_id')} ({holder.get('user')}@{holder.get('host')}) removed by "
            f"{getpass.getuser()}@{socket.gethostname()}"
        )
        if holder
        else "no lock was held"
    )
    if holder:
        app.store.append_event(
            TrailEvent(
                run_id=holder.get("run_id", "?"),
                service=svc,
                at=SystemClock().now().isoformat(timespec="seconds"),
                kind="unlocked",
                message=msg,
            )
        )
    app.emit({"removed": holder}, msg)
    return ExitCode.OK
