"""Everyday releases on a schedule (issue 19 items 1, 3, 4, 5): the CLI as a separate process against moto's server
and the sandbox agent, with a pipeline WITHOUT service.task_definition whose phases add environment variables.

Specs never depend on what is live, the ladder is climbed once, "skip" means live and good, and a hold is lifted
for exactly one revision."""

from __future__ import annotations

import json
from pathlib import Path

from orchestrator.state.sqlite import SqliteStore
from tests.functional.world import live
from tests.harness.cli import snail
from tests.harness.pipeline import image, write_pipeline

SERVICE = "shine-api-gateway"
FAST = "bake: 1s\n"


def _store(world) -> SqliteStore:  # noqa: ANN001
    return SqliteStore(world["root"] / ".snail" / "state.db")


def _phase(root: Path, name: str, tag: str, env: dict[str, str]) -> None:
    """(Re)write phases/NAME.yaml: a pinned image and its environment."""
    lines = "".join(f'    {k}: "{v}"\n' for k, v in env.items())
    (root / "phases" / f"{name}.yaml").write_text(
        f'name: {name}\nimage: {{ref: "{image(tag)}"}}\ntask:\n  environment:\n{lines}{FAST}'
    )


def _revisions(world) -> list[str]:  # noqa: ANN001
    return world["ecs"].list_task_definitions(familyPrefix=SERVICE)["taskDefinitionArns"]


def _updates(world, since: int = 0) -> list[dict]:  # noqa: ANN001
    """Every UpdateService snail made (its journal's update_service steps), oldest run first, after `since` runs."""
    runs = list(reversed(_store(world).runs(SERVICE, 100)))[since:]
    return [s.intent for r in runs for s in _store(world).steps(r.run_id) if s.kind == "update_service"]


def _run_count(world) -> int:  # noqa: ANN001
    return len(_store(world).runs(SERVICE, 100))


def _env(world, arn: str) -> dict[str, str]:  # noqa: ANN001
    td = world["ecs"].describe_task_definition(taskDefinition=arn)["taskDefinition"]
    return {e["name"]: e["value"] for e in td["containerDefinitions"][0].get("environment", [])}


def _three_phases(world) -> None:  # noqa: ANN001
    root = world["root"]
    write_pipeline(root, {"v1": "a", "v2": "b", "v3": "c"})
    _phase(root, "v1", "a", {"FEATURE_ONE": "on"})
    _phase(root, "v2", "b", {"FEATURE_TWO": "on"})
    _phase(root, "v3", "c", {"FEATURE_THREE": "on"})
    for tag in "abc":
        world["serve"](tag)


def test_scheduled_runs_with_nothing_changed_register_nothing_deploy_nothing_print_nothing(world) -> None:
    """After v3 is live, repeated `snail -q run` register no revision, make no UpdateService and print nothing: each
    phase is composed over the service's pre-snail revision (recorded as snail:base), not over v3's revision, so
    v3's environment never leaks into v1's spec."""
    _three_phases(world)
    first = snail(world, "run", "--skip-preflight")
    assert first.returncode == 0, first.stdout + first.stderr
    assert live(world).endswith(f"{SERVICE}:4")
    revisions, runs = _revisions(world), _run_count(world)
    for _ in range(2):
        tick = snail(world, "-q", "run", "--skip-preflight")
        assert (tick.returncode, tick.stdout, tick.stderr) == (0, "", "")
    assert _revisions(world) == revisions
    assert _updates(world, since=runs) == []
    seed = f"{SERVICE}:1"
    tags = {
        t["key"]: t["value"]
        for t in world["ecs"].describe_task_definition(taskDefinition=live(world), include=["TAGS"])["tags"]
    }
    assert tags["snail:base"].endswith(seed)
    assert "FEATURE_ONE" not in _env(world, live(world))  # each phase over the base, not over the phase before
    plan = snail(world, "plan")
    assert plan.returncode == 0, plan.stderr
    assert f"composed over the revision {seed}" in plan.stdout, plan.stdout
    assert f"- phase v3: skip (live and good on {SERVICE}:4)" in plan.stdout
    for behind in ("v1", "v2"):
        assert f"- phase {behind}: behind the live phase v3" in plan.stdout
        assert f"- phase {behind}: skip" not in plan.stdout


def test_a_change_of_the_live_phase_delivers_it_alone_and_one_behind_deploys_nothing(world) -> None:
    """Changing v3's environment delivers v3 only (one UpdateService, one new revision); changing v1's deploys
    nothing and says why, even with -q; `run --from v1` re-climbs on purpose."""
    _three_phases(world)
    assert snail(world, "run", "--skip-preflight").returncode == 0
    revisions, runs = _revisions(world), _run_count(world)
    _phase(world["root"], "v3", "c", {"FEATURE_THREE": "on", "THREE_LEVEL": "2"})
    three = snail(world, "run", "--skip-preflight")
    assert three.returncode == 0, three.stdout + three.stderr
    (update,) = _updates(world, since=runs)
    assert update["to"] == live(world) == _revisions(world)[-1]
    assert len(_revisions(world)) == len(revisions) + 1
    assert _env(world, live(world))["THREE_LEVEL"] == "2"
    assert "done: v3 passed" in three.stdout
    live_now, revisions, runs = live(world), _revisions(world), _run_count(world)

    _phase(world["root"], "v1", "a", {"FEATURE_ONE": "off"})
    one = snail(world, "-q", "run", "--skip-preflight")
    assert one.returncode == 0, one.stdout + one.stderr
    assert "v1 changed; it is behind the live phase v3: not deployed" in one.stdout, one.stdout
    assert "`snail run --from v1` re-climbs" in one.stdout
    assert (live(world), _revisions(world), _updates(world, since=runs)) == (live_now, revisions, [])
    plan = snail(world, "--output", "json", "plan")
    cases = {p["phase"]: p["case"] for p in json.loads(plan.stdout)["phases"]}
    assert cases == {"v1": "changed-behind", "v2": "behind", "v3": "live"}

    again = snail(world, "run", "--skip-preflight", "--from", "v1")
    assert again.returncode == 0, again.stdout + again.stderr
    climbed = _updates(world, since=runs)
    assert len(climbed) == 3 and climbed[0]["to"] == _revisions(world)[-1]  # v1's new revision, then v2, v3
    assert live(world) == climbed[-1]["to"] == live_now  # v3 unchanged: its identical revision is reused


def test_a_hold_is_lifted_for_one_revision_and_a_released_phase_is_delivered(world) -> None:
    """v4 rolled back from with a reason (held); v4 fixed and live again; `rollback --to-phase v1` holds v2, v3 and
    the fixed v4. `release v4` lifts the hold on v4's current spec only, and says which revision: the deliberately
    held revision stays held and is never a rollback target. `release v2` then `run` puts v2 live (and stops below
    the still-held v3)."""
    root = world["root"]
    write_pipeline(
        root, {"v1": "a", "v2": "b", "v3": "c", "v4": "d"}, extra=dict.fromkeys(("v1", "v2", "v3", "v4"), FAST)
    )
    for tag in "abcde":
        world["serve"](tag)
    assert snail(world, "run", "--skip-preflight").returncode == 0
    broken = live(world)
    assert broken.endswith(":5")
    r = snail(world, "rollback", "--reason", "v4 /health 500 after bake")
    assert r.returncode == 0 and live(world).endswith(":4"), r.stdout + r.stderr
    (root / "phases" / "v4.yaml").write_text(f'name: v4\nimage: {{ref: "{image("e")}"}}\n{FAST}')
    fixed = snail(world, "run", "--skip-preflight")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert live(world).endswith(":6")
    down = snail(world, "rollback", "--to-phase", "v1", "--reason", "incident 42")
    assert down.returncode == 0 and live(world).endswith(":2"), down.stdout + down.stderr

    four = snail(world, "release", "v4")
    assert four.returncode == 0, four.stdout + four.stderr
    assert "hold on shine-api-gateway:6 (v4" in four.stdout and "gateway:5" not in four.stdout
    status = json.loads(snail(world, "--output", "json", "status").stdout)
    held = {b["revision"].rsplit("/", 1)[1] for b in status["blocked"] if b["kind"] == "held"}
    assert f"{SERVICE}:5" in held and f"{SERVICE}:6" not in held
    again = snail(world, "release", "v4")
    assert again.returncode == 2 and "is lifted only by name" in again.stdout + again.stderr
    refused = snail(world, "rollback", "--to-revision", "5")
    assert refused.returncode == 2 and "held" in refused.stdout + refused.stderr
    assert live(world).endswith(":2")

    two = snail(world, "release", "v2")
    assert two.returncode == 0 and "hold on shine-api-gateway:3 (v2" in two.stdout, two.stdout + two.stderr
    plan = snail(world, "plan")
    assert "- phase v2 (above the live phase v1: the climb continues" in plan.stdout, plan.stdout
    climb = snail(world, "run", "--skip-preflight")
    assert climb.returncode == 0, climb.stdout + climb.stderr
    assert live(world).endswith(":3")
    assert "the climb stops: not deployed: phase v3" in climb.stdout and "held" in climb.stdout
    target = snail(world, "--output", "json", "rollback", "--to-phase", "v4", "--reason", "check")
    assert target.returncode == 0, target.stdout + target.stderr
    assert live(world).endswith(":6") and broken.endswith(":5")
