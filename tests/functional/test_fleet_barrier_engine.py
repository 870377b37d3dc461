"""The engine's side of a fleet's `barrier: test-traffic`, on moto + the sandbox agent + the real load balancer
data plane: green is held at POST_TEST_TRAFFIC_SHIFT after its gates passed (production still on blue), then
CONTINUEs when the barrier opens, or is stopped back to blue when the wave goes back (no task started)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from orchestrator.aws.session import AwsContext
from orchestrator.engine.executor import Engine, RunOptions
from orchestrator.fleet.goback import GoBackClock
from tests.functional.test_strategies_engine import REGION, SERVICE, World, answers, hooks_awaiting, production_serves


@pytest.fixture
def world(aws, tmp_path, http_server):
    """test_strategies_engine's world: a service behind a load balancer with production and test listener rules."""
    w = World(tmp_path, http_server)
    yield w
    w.close()


def test_green_is_held_at_the_test_traffic_hook_until_the_barrier_opens(world: Any) -> None:
    """While held: production on blue, green on the test listener, the hook awaiting action; then CONTINUE."""
    world.serve("a")
    world.serve("b")
    p = world.pipeline({"one": "a", "two": "b"})
    assert world.engine(p).run(RunOptions(to_phase="one")).status == "succeeded"
    production_before = world.forward("production")
    seen: dict[str, Any] = {}
    engine = world.engine(p)

    def hold() -> None:
        seen["production"] = world.forward("production")
        seen["test"] = world.forward("test")
        seen["awaiting"] = len(hooks_awaiting(world, in_flight_only=True))

    engine.test_traffic_hold = hold
    out = engine.run(RunOptions(from_phase="two"))
    assert (out.exit_code, out.status) == (0, "succeeded"), out.message
    assert seen["production"] == production_before  # held: production still on phase one
    assert seen["test"] != production_before and seen["awaiting"] == 1  # green on the test listener, hook paused
    assert world.forward("production") != production_before  # after CONTINUE: production on green
    assert answers(world, out.run_id) == [("POST_TEST_TRAFFIC_SHIFT", "CONTINUE")]
    barrier = [e for e in world.events("gate_passed") if e.data.get("gate") == "fleet barrier"]
    assert len(barrier) == 1 and barrier[0].data["stage"] == "POST_TEST_TRAFFIC_SHIFT"


def test_a_wave_that_goes_back_while_green_is_held_returns_traffic_without_a_task(world: Any) -> None:
    """Told to go back while held (a sibling failed on test traffic): StopServiceDeployment (ROLLBACK), production
    never reached green, no task started for the rollback, phase one verified, and the revision is not quarantined."""
    world.serve("a")
    world.serve("b")
    p = world.pipeline({"one": "a", "two": "b"})
    assert world.engine(p).run(RunOptions(to_phase="one")).status == "succeeded"
    one = world.store.last_good(SERVICE, "one")
    production_before = world.forward("production")
    told = threading.Event()
    clock = GoBackClock(told, world.clock)
    engine = Engine(p, AwsContext(region=REGION), world.store, clock=clock)  # the fleet's interruptible clock
    launched: dict[str, int] = {}

    def hold() -> None:
        launched["before"] = len(world.launcher.started)
        told.set()  # the fleet: "euw1 failed on test traffic: everyone back"
        clock.sleep(0)  # raises GoBack, as the barrier's hold does

    engine.test_traffic_hold = hold
    out = engine.run(RunOptions(from_phase="two"))
    assert (out.exit_code, out.status) == (130, "interrupted"), out.message
    assert clock.raised
    assert world.live() == one.revision_arn and world.forward("production") == production_before
    assert production_serves(world, "a")
    assert answers(world, out.run_id) == []  # never CONTINUEd: the deployment was stopped back to blue
    assert [s.kind for s in world.store.steps(out.run_id or "")].count("stop_deployment") == 1
    assert not hooks_awaiting(world) and launched["before"] == len(world.launcher.started)
    assert "rollback_verified" in [e.kind for e in world.store.events(SERVICE, out.run_id)]
    assert world.engine(p).run(RunOptions(from_phase="two")).status != "quarantined"


def test_a_cli_target_with_a_traffic_strategy_is_held_by_the_fleet_and_continues(world: Any, tmp_path: Any) -> None:
    """`snail fleet run`'s target adapter: a blue-green pipeline is a barrier member, its engine calls the wave's
    hold at the test-traffic hook (production still on phase one), then CONTINUEs: the target passed."""
    from orchestrator.cli.app import App
    from orchestrator.cli.fleet import CliTargets
    from orchestrator.fleet import decide as d
    from orchestrator.fleet.goback import Recall
    from orchestrator.fleet.loader import load_fleet

    world.serve("a")
    world.serve("b")
    p = world.pipeline({"one": "a", "two": "b"})
    assert world.engine(p).run(RunOptions(to_phase="one")).status == "succeeded"
    production_before = world.forward("production")
    (world.tmp / "fleet.yaml").write_text(
        "version: 1\ntargets:\n  use1: {}\nwaves:\n  - {name: rest, targets: [use1], barrier: test-traffic}\n"
    )
    fleet = load_fleet(world.tmp / "fleet.yaml")
    targets = CliTargets(App(file=str(world.tmp / "pipeline.yaml")), fleet, {"use1": p}, True, clock=world.clock)
    assert targets.holds_at_test_traffic(fleet.target("use1"), None)
    targets._app(fleet.target("use1"))._aws = AwsContext(region=REGION)  # the world's AWS: moto, in process
    held: list[dict[str, int]] = []
    res = targets.deliver(
        fleet.target("use1"), None, False, Recall(hold=lambda clock: held.append(world.forward("production")))
    )
    assert res.status == d.PASSED, res.message
    assert held == [production_before]  # held once, at the test-traffic hook, production untouched
    assert world.forward("production") != production_before and res.revision == world.live()
