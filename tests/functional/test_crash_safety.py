"""Crash safety: `snail run` killed with SIGKILL at every step boundary of a two-phase run, then run again.
Each time the service ends on the new good revision (or the last good one), the state store agrees with ECS,
and the trail records the interruption."""

from __future__ import annotations

import random
import signal
import time

import pytest

from orchestrator.state.sqlite import SqliteStore
from tests.functional.world import live
from tests.harness.cli import snail, start_snail
from tests.harness.pipeline import image, write_pipeline

pytestmark = pytest.mark.process  # real processes killed at random moments: the process is the point

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
    crashed = snail(world, "run", "--skip-preflight", env={"SNAIL_FAILPOINTS": failpoint}, process=True)
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
    crashed = snail(world, "run", "--skip-preflight", env={"SNAIL_FAILPOINTS": "update_service:acted#2"}, process=True)
    assert crashed.returncode == -signal.SIGKILL
    r = snail(world, "run", "--resume", "--skip-preflight")
    assert r.returncode == 0, r.stderr
    store = SqliteStore(world["root"] / ".snail" / "state.db")
    events = store.events("shine-api-gateway", store.runs("shine-api-gateway")[0].run_id)
    started = [e.phase for e in events if e.kind == "phase_started"]
    assert started == ["hybrid-ml"]
    assert live(world) == store.last_good("shine-api-gateway", "hybrid-ml").revision_arn


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_kill_at_a_random_moment_then_rerun(world, seed: int) -> None:
    """SIGKILL after a random delay (seeded); the next run ends with the store and ECS agreeing."""
    rnd = random.Random(seed)
    # the base pipeline does not bake; here each phase bakes 2 s, so the run outlasts the kill window (0.8-5 s)
    # and the kill lands inside it, at a step, a gate or a bake
    bakes = {"health-only": "bake: 2s\n", "hybrid-ml": "bake: 2s\n"}
    write_pipeline(world["root"], {"health-only": "a", "hybrid-ml": "b"}, extra=bakes)
    world["serve"]("a"), world["serve"]("b")
    proc = start_snail(world, "run", "--skip-preflight")
    time.sleep(rnd.uniform(0.8, 5.0))
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    again = snail(world, "run", "--skip-preflight")
    assert again.returncode == 0, again.stdout + again.stderr
    store = SqliteStore(world["root"] / ".snail" / "state.db")
    assert live(world) == store.last_good("shine-api-gateway", "hybrid-ml").revision_arn
    assert store.open_steps("shine-api-gateway") == []
    assert all(r.status != "running" for r in store.runs("shine-api-gateway"))


def test_sigterm_during_a_rollout_rolls_back_and_exits_130(world) -> None:
    """SIGTERM while phase two is being gated: the service goes back to phase one's revision, exit 130."""
    write_pipeline(world["root"], {"health-only": "a", "hybrid-ml": "b"})
    (world["root"] / "phases" / "hybrid-ml.yaml").write_text(
        f'name: hybrid-ml\nimage: {{ref: "{image("b")}"}}\nbake: 30s\n'
    )
    world["serve"]("a"), world["serve"]("b")
    proc = start_snail(world, "run", "--skip-preflight")
    store = SqliteStore(world["root"] / ".snail" / "state.db")
    deadline = time.time() + 90
    while time.time() < deadline:
        if any(e.kind == "gate_passed" and e.phase == "hybrid-ml" for e in store.events("shine-api-gateway")):
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, out + err
    assert "interrupted during phase hybrid-ml; rolled back to shine-api-gateway:2" in out + err
    assert live(world) == store.last_good("shine-api-gateway", "health-only").revision_arn
    assert store.runs("shine-api-gateway")[0].status == "interrupted"
