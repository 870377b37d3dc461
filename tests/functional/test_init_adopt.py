"""After `snail init --from-service`, the first run adopts the live revision (issue 22): snail never registered it,
but it already runs the written phase's spec, so the run gates it where it runs and marks it good, with no new
revision and no UpdateService; from then on the phase is live and good. The CLI as a separate process against
moto's server and the sandbox agent (tests/functional/world.py)."""

from __future__ import annotations

from orchestrator.state.sqlite import SqliteStore
from tests.functional.world import live
from tests.harness.cli import snail

SERVICE = "shine-api-gateway"


def _revisions(world) -> list[str]:  # noqa: ANN001
    return world["ecs"].list_task_definitions(familyPrefix=SERVICE)["taskDefinitionArns"]


def test_first_run_after_init_from_service_marks_the_live_revision_good_without_deploying(world) -> None:  # noqa: ANN001
    """init, run (exit 0: the live revision gated and marked good, nothing registered or updated), then a quiet run
    prints nothing and plan says the phase is live and good."""
    world["serve"]("0")  # the live image answers
    init = snail(world, "init", "--from-service", f"shine/{SERVICE}")
    assert init.returncode == 0, init.stdout + init.stderr
    before, revisions = live(world), _revisions(world)

    run = snail(world, "run")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "adopted, not registered again" in run.stderr
    assert (live(world), _revisions(world)) == (before, revisions)
    store = SqliteStore(world["root"] / ".snail" / "state.db")
    [good] = [g for g in store.good_history(SERVICE) if g.phase == "live"]
    assert good.revision_arn == before
    [last] = store.runs(SERVICE, 1)
    assert [s.kind for s in store.steps(last.run_id) if s.kind in ("register", "update_service")] == []

    quiet = snail(world, "-q", "run")
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")
    plan = snail(world, "plan")
    assert plan.returncode == 0 and f"- phase live: skip (live and good on {SERVICE}:1)" in plan.stdout, plan.stdout
