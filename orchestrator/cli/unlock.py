"""snail unlock --force: remove a stuck lock, never a live run's; the removal is recorded in the trail."""

from __future__ import annotations

import getpass
import socket

import click

from orchestrator.cli.app import App, pass_app
from orchestrator.errors import ExitCode, Locked, UsageError


@click.command("unlock")
@click.option("--force", is_flag=True, help="required: you are sure the holder is dead")
@pass_app
def command(app: App, force: bool) -> int:
    """Remove the service's lock when its holder is dead (refused while its process is alive on this host)."""
    from orchestrator.clock import SystemClock
    from orchestrator.engine.lock import holder_alive_here
    from orchestrator.state.base import TrailEvent

    if not force:
        raise UsageError("unlock removes another run's lock: add --force if you are sure its holder is dead")
    svc = app.pipeline.service.name
    row = app.store.lock_state(svc)
    if row is None:
        app.emit({"removed": None}, "no lock was held")
        return ExitCode.OK
    h = row.holder
    if holder_alive_here(h):
        err = Locked(h)
        err.message += (
            f"; its process {h.get('pid')} is alive on this host, so the lock is not stuck: stop that run with "
            f"`kill {h.get('pid')}` (it rolls back what it deployed, records it and releases the lock; "
            f"`kill -9 {h.get('pid')}` only if it does not exit), or wait for it"
        )
        raise err
    # One conditional delete on the token we read: a holder that renewed its lease meanwhile is alive and keeps it.
    removed = app.store.force_unlock(svc, row.token)
    if removed is None:
        now = app.store.lock_state(svc)
        if now is None:
            app.emit({"removed": None}, "no lock was held (it was released meanwhile)")
            return ExitCode.OK
        err = Locked(now.holder)
        err.message += "; it renewed its lease while unlock looked at it, so it is alive: nothing was removed"
        raise err
    msg = (
        f"lock of run {h.get('run_id')} ({h.get('user')}@{h.get('host')}, pid {h.get('pid')}, "
        f"heartbeat {row.beats}) removed by {getpass.getuser()}@{socket.gethostname()} with unlock --force"
    )
    app.store.append_event(
        TrailEvent(
            run_id=str(h.get("run_id", "?")),
            service=svc,
            at=SystemClock().now().isoformat(timespec="seconds"),
            kind="unlocked",
            message=msg,
            data={"holder": h, "beats": row.beats, "by": f"{getpass.getuser()}@{socket.gethostname()}"},
        )
    )
    app.emit({"removed": h}, msg)
    return ExitCode.OK
