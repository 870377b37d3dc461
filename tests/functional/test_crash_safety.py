"""Crash safety: `snail run` killed with SIGKILL at every step boundary of a two-phase run, then run again.
Each time the service ends on the new good revision (or the last good one), the state store agrees with ECS,
and the trail records the interruption."""
from __future__ import annotations

import signal

import pytest

from orchestrator.state.sqlite import SqliteStore
from tests.functional.world import image, live, server, snail, world, write_pipeline  # noqa: F401 - fixtures

FAILPOINTS = [
    "image:intent",
    "register:intent",
    "register:acted",
    "update_service:intent",
    "update_service:acted",
    "register:acted#2",
    "update_service:intent#2",
    "update_service:acted#2",
]


@pytest.mark.parametrize("failpoint", FAILPOINTS)
def test_kill_at_step_boundary_then_rerun(world, failpoint: str) -> None:
    """SIGKILL at a step boundary; the next run reconciles, finishes, and the store agrees with ECS."""
    write_pipeline(world["root"], {"health-only": "a", "hybrid-ml": "b"})
    world["serve"]("a"), world["serve"]("b")
    crashed = snail(world, "run", "--skip-preflight", env={"SNAIL_FAILPOINTS": failpoint})
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr

    store = SqliteStore(world["root"] / ".snail" / "state.db")
    (dead,) = store.runs("shine-api-gateway")
    assert dead.status == "running"  # the process died before it could say anything else
    assert store.open_steps("shine-api-gateway"), "the intent of the interrupted step must be on record"

    status = snail(world, "status")
    assert "unfinished step" in status.stdout and "held by run" in status.stdout

    again = snail(world, "run", "--skip-preflight")
    assert again.returncode == 0, again.stdout + again.stderr
    good = store.last_good("shine-api-gateway", "hybrid-ml")
    assert good is not None and live(world) == good.revision_arn
    assert store.open_steps("shine-api-gateway") == []
    assert store.get_run(dead.run_id).status == "interrupted"
    kinds = [e.kind for e in store.events("shine-api-gateway")]
    assert "reconciled" in kinds and "lock_taken_over" in kinds
    # never registered twice: one revision per phase plus the bootstrap
    revisions = world["ecs"].list_task_definitions(familyPrefix="shine-api-gateway")["taskDefinitionArns"]
    assert len(revisions) == 3, revisions
    trail = snail(world, "trail").stdout
    assert f"run {dead.run_id} was interrupted during" in trail


def test_resume_continues_the_interrupted_run(world) -> None:
    """`run --resume` after a kill in phase two starts at phase two and finishes the pipeline."""
    write_pipeline(world["root"], {"health-only": "a", "hybrid-ml": "b"})
    world["serve"]("a"), world["serve"]("b")
    crashed = snail(world, "run", "--skip-preflight", env={"SNAIL_FAILPOINTS": "update_service:acted#2"})
    assert crashed.returncode == -signal.SIGKILL
    r = snail(world, "run", "--resume", "--skip-preflight")
    assert r.returncode == 0, r.stderr
    store = SqliteStore(world["root"] / ".snail" / "state.db")
    events = store.events("shine-api-gateway", store.runs("shine-api-gateway")[0].run_id)
    started = [e.phase for e in events if e.kind == "phase_started"]
    assert started == ["hybrid-ml"]
    assert live(world) == store.last_good("shine-api-gateway", "hybrid-ml").revision_arn
