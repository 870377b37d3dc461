"""Release memory as CI, cron and on-call meet it: the CLI as a separate process against moto's server and the
sandbox agent. Verdicts live on the revisions (tags), failed releases are quarantined, holds stick, and a plain
rollback never goes forward."""

from __future__ import annotations

import json
import shutil

from orchestrator.state.sqlite import SqliteStore
from tests.conftest import Behaviour
from tests.functional.world import live
from tests.harness.cli import snail
from tests.harness.pipeline import image, write_pipeline


def _store(world) -> SqliteStore:  # noqa: ANN001
    return SqliteStore(world["root"] / ".snail" / "state.db")


def test_a_fresh_checkout_knows_what_passed(world) -> None:
    """Run, delete .snail/, then status, plan and rollback behave as before: the marks come back from AWS."""
    write_pipeline(world["root"], {"health-only": "a", "hybrid-ml": "b"})
    world["serve"]("a"), world["serve"]("b")
    assert snail(world, "run", "--skip-preflight").returncode == 0
    before = json.loads(snail(world, "--output", "json", "status").stdout)
    shutil.rmtree(world["root"] / ".snail")
    after = json.loads(snail(world, "--output", "json", "status").stdout)
    assert after["phase"] == before["phase"] == "hybrid-ml"
    assert {k: bool(v) for k, v in after["good"].items()} == {"health-only": True, "hybrid-ml": True}
    plan = snail(world, "plan")
    assert plan.returncode == 0 and "nothing to do" in plan.stdout, plan.stdout + plan.stderr
    r = snail(world, "rollback")
    assert r.returncode == 0, r.stdout + r.stderr
    assert live(world).endswith("shine-api-gateway:2") and "verified" in r.stdout + r.stderr


def test_a_failed_release_is_quarantined_across_scheduled_runs(world) -> None:
    """The release fails and is rolled back once; the next two scheduled runs deploy nothing, say which run failed
    it, exit 1, and the streak is recorded once."""
    write_pipeline(world["root"], {"health-only": "a", "hybrid-ml": "b"})
    world["serve"]("a"), world["serve"]("b", Behaviour(503, {"status": "failed"}))
    first = snail(world, "run", "--skip-preflight")
    assert first.returncode == 1, first.stdout + first.stderr
    failed_run = _store(world).runs("shine-api-gateway")[0].run_id
    for _ in range(2):
        again = snail(world, "run", "--skip-preflight")
        assert again.returncode == 1, again.stdout + again.stderr
        assert "quarantined" in again.stdout + again.stderr and failed_run in again.stdout + again.stderr
    assert live(world).endswith("shine-api-gateway:2")
    runs = _store(world).runs("shine-api-gateway")
    assert [r.status for r in runs[:2]] == ["quarantined", "rolled_back"]  # two ticks, one record
    assert not [s for s in _store(world).steps(runs[0].run_id) if s.kind == "update_service"]
    retry = snail(world, "run", "--skip-preflight", "--retry-failed")
    assert retry.returncode == 1 and "--retry-failed" in snail(world, "trail").stdout


def test_a_manual_rollback_sticks_until_released(world) -> None:
    """After `rollback --reason`, a scheduled run does not redeploy the release it left; `release` lifts the hold."""
    write_pipeline(world["root"], {"health-only": "a", "hybrid-ml": "b"})
    world["serve"]("a"), world["serve"]("b")
    assert snail(world, "run", "--skip-preflight").returncode == 0
    r = snail(world, "rollback", "--reason", "customer reports slow answers")
    assert r.returncode == 0 and live(world).endswith(":2"), r.stdout + r.stderr
    plan = snail(world, "plan")
    assert "held" in plan.stdout and "customer reports slow answers" in plan.stdout, plan.stdout
    tick = snail(world, "run", "--skip-preflight")
    assert tick.returncode == 1 and "held" in tick.stdout + tick.stderr
    assert live(world).endswith(":2")
    status = json.loads(snail(world, "--output", "json", "status").stdout)
    assert [b["kind"] for b in status["blocked"]] == ["held"]
    assert snail(world, "release", "hybrid-ml").returncode == 0
    assert snail(world, "run", "--skip-preflight").returncode == 0
    assert live(world).endswith(":3")


def test_plain_rollback_never_goes_forward(world) -> None:
    """Three good revisions: rollback goes 4 -> 3 -> 2, then refuses; it never ping-pongs to a newer one."""
    write_pipeline(world["root"], {"health-only": "a", "hybrid-ml": "b", "optimized": "c"})
    for tag in "abc":
        world["serve"](tag)
    assert snail(world, "run", "--skip-preflight").returncode == 0
    assert live(world).endswith(":4")
    for expected in (":3", ":2"):
        r = snail(world, "rollback")
        assert r.returncode == 0, r.stdout + r.stderr
        assert live(world).endswith(expected)
    last = snail(world, "rollback")
    assert last.returncode == 3 and "nothing to roll back to" in last.stdout + last.stderr
    assert live(world).endswith(":2")
    assert image("a")  # the images stayed registered: nothing was deregistered on the way
