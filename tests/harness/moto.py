"""In-process moto for one test, as plain as moto ships it.

moto keeps process-wide state that `mock_aws()` does not reset: the sandbox's ECS extension (installed by any
EcsAgent, so by every world with an agent) and the state manager's transitions. Under pytest-xdist a worker runs
files in whatever order it is handed them, so a test that wants moto's own ECS (doctor, diagnosis) must not
depend on the file before it having cleaned up: `plain_moto()` puts both back on entry and on exit."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from moto import mock_aws
from moto.moto_api import state_manager

ECS_TASK = "ecs::task"


def plain() -> None:
    """moto's own ECS (the sandbox extension off) and moto's default task transitions."""
    from ecsbox import extension

    extension.uninstall()
    state_manager.unset_transition(ECS_TASK)


def pin_tasks() -> None:
    """Tasks keep the status a test gives them (moto otherwise advances them on every describe)."""
    state_manager.set_transition(model_name=ECS_TASK, transition={"progression": "manual", "times": 10**9})


@contextlib.contextmanager
def plain_moto(pinned_tasks: bool = False) -> Iterator[None]:
    """mock_aws() on plain moto; with `pinned_tasks`, task states pinned. Everything put back afterwards."""
    plain()
    try:
        with mock_aws():
            if pinned_tasks:
                pin_tasks()
            yield
    finally:
        plain()
