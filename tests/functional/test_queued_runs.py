"""Queued runs that succeed (issue 25): `snail run --wait-lock` started several times at once on one service, as a
CI queue does. A run that waited for the lock plans again once it holds it: what it was asked for may be live and
good already (a no-op, exit 0), or something else may be live (it delivers on the fresh plan). Real `snail`
processes against moto's server and the sandbox agent (tests/functional/world.py)."""

from __future__ import annotations

import re
import time

import pytest

from orchestrator.engine.lease import Heartbeat
from orchestrator.engine.lock import holder_record
from orchestrator.state.sqlite import SqliteStore
from tests.functional.world import live
from tests.harness.cli import start_snail
from tests.harness.pipeline import image, write_pipeline

SERVICE = "shine-api-gateway"
QUICK = {"health-only": "bake: 0s\n"}


def run_id_of(text: str) -> str:
    """The run id a finished command names ("trail: snail trail --run ID")."""
    found = re.search(r"snail trail --run (\S+)", text)
    assert found, text
    return found.group(1)


@pytest.mark.process
def test_concurrent_wait_lock_runs_on_one_service_all_succeed(world: dict) -> None:
    """Four `snail run --wait-lock 2m` at once: one delivers, each that waited plans again and finds the release
    live and good (exit 0, "planned again after waiting for the lock"); none exits 4; every run is in the history."""
    write_pipeline(world["root"], {"health-only": "a"}, QUICK)
    world["serve"]("a")
    procs = [start_snail(world, "run", "--skip-preflight", "--wait-lock", "2m") for _ in range(4)]
    results = [(p.wait(timeout=240), p.stdout.read(), p.stderr.read()) for p in procs]
    assert [code for code, _, _ in results] == [0, 0, 0, 0], results
    store = SqliteStore(world["root"] / ".snail" / "state.db")
    (good,) = store.good_history(SERVICE)
    assert live(world) == good.revision_arn
    history = {r.run_id: r for r in store.runs(SERVICE)}
    ids = [run_id_of(out + err) for _, out, err in results]
    assert set(ids) <= set(history), (ids, list(history))
    updated = {e.run_id for e in store.events(SERVICE) if e.kind == "service_updated"}
    assert len(updated) == 1, "exactly one run moved the service"
    waited = {e.run_id for e in store.events(SERVICE) if e.kind == "run_started" and "after waiting" in e.message}
    assert waited, "no run queued behind another (the test did not test the queue)"
    for rid in waited - updated:  # a queued run: its own row, saying what it did
        assert history[rid].status == "noop" and "planned again after waiting for the lock" in history[rid].message
    assert all(r.status in ("succeeded", "noop") for r in history.values()), history


@pytest.mark.process
def test_a_queued_run_delivers_on_its_fresh_plan_when_something_else_went_live(world: dict) -> None:
    """While a run waits for the lock, another actor moves the service (the lock holder's release went live):
    the queued run plans again from what is live now and delivers its own release (exit 0), where it used to exit 4
    "the service changed since this plan was made"."""
    write_pipeline(world["root"], {"health-only": "b"}, QUICK)
    world["serve"]("b")
    store = SqliteStore(world["root"] / ".snail" / "state.db")
    holder = holder_record("r-holder", "run", "2026-12-07T08:00:00+00:00")
    store.acquire_lock(SERVICE, holder, 10.0)
    with Heartbeat(store, SERVICE, "r-holder", 10.0):  # a live holder (its counter moves): never taken over
        proc = start_snail(world, "run", "--skip-preflight", "--wait-lock", "2m")
        observed = world["root"] / ".snail" / "lock-observed.json"
        deadline = time.monotonic() + 60
        while not observed.exists():  # the queued run has planned and found the lock held
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.1)
        td = world["ecs"].describe_task_definition(taskDefinition=live(world))["taskDefinition"]
        other = world["ecs"].register_task_definition(
            family=td["family"],
            networkMode=td["networkMode"],
            containerDefinitions=[{**td["containerDefinitions"][0], "image": image("c")}],
        )["taskDefinition"]["taskDefinitionArn"]
        world["ecs"].update_service(cluster="shine", service=SERVICE, taskDefinition=other)
        store.release_lock(SERVICE, "r-holder")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, out + err
    (good,) = store.good_history(SERVICE)
    assert live(world) == good.revision_arn and good.phase == "health-only"
    rid = run_id_of(out + err)
    (update,) = [e for e in store.events(SERVICE, rid) if e.kind == "service_updated"]
    assert update.data["previous"] == other, "the fresh plan started from what was live, not from the stale plan"
