"""The wrong verdicts of the first round, as a user sees them: the CLI against moto's server with the sandbox agent,
and the engine on a fake clock where the number of polls matters."""

from __future__ import annotations

import json

from orchestrator.engine.executor import RunOptions
from tests.conftest import Behaviour
from tests.functional.test_engine import World
from tests.functional.world import live
from tests.harness.cli import snail
from tests.harness.pipeline import image, write_pipeline


def _http_only(root, endpoint: str) -> None:  # noqa: ANN001
    """A pipeline whose only gates probe a load balancer URL (no ecs-rollout listed)."""
    timing = {"bake": "0s", "wait": "1s"}
    write_pipeline(
        root, {"health-only": "a", "hybrid-ml": "b"}, timing=timing, service={"endpoint": endpoint}, gates=["http"]
    )


def test_changed_gate_fails_the_release_but_the_rollback_is_verified_with_the_gates_it_passed(world) -> None:
    """A release that also tightens its gate fails and rolls back; the old revision is verified with the gate it
    passed (exit 1), not judged by the new one ("rollback failed, a human is needed", exit 3)."""
    write_pipeline(world["root"], {"health-only": "a", "hybrid-ml": "b"})
    world["serve"]("a"), world["serve"]("b"), world["serve"]("c", Behaviour(200, {"version": "v1"}))
    assert snail(world, "run", "--skip-preflight").returncode == 0
    good = live(world)
    path = world["root"] / "pipeline.yaml"
    path.write_text(path.read_text().replace("expect: {status: 200}", 'expect: {status: 200, body_contains: "v2"}'))
    (world["root"] / "phases" / "hybrid-ml.yaml").write_text(f'name: hybrid-ml\nimage: {{ref: "{image("c")}"}}\n')
    r = snail(world, "run", "--skip-preflight")
    assert r.returncode == 1, r.stdout + r.stderr
    said = r.stdout + r.stderr
    assert "body does not contain 'v2'" in said and "verified by its gates" in said
    assert live(world) == good


def test_json_expectation_alone_passes_through_the_cli(world) -> None:
    """`expect: {json: {status: ok}}` without `status:` passes a matching answer end to end (it used to expect None)."""
    write_pipeline(world["root"], {"health-only": "a"})
    path = world["root"] / "pipeline.yaml"
    path.write_text(path.read_text().replace("expect: {status: 200}", "expect: {json: {status: ok}}"))
    world["serve"]("a", Behaviour(200, {"status": "ok"}))
    r = snail(world, "run", "--skip-preflight")
    assert r.returncode == 0, r.stdout + r.stderr


def test_http_only_gates_never_mark_a_deployment_ecs_failed_good(world, http_server) -> None:
    """Only http gates on a load-balancer URL that the old tasks keep answering 200: the release whose tasks
    cannot start is rolled back (exit 1) with ECS's reason, never "marked good"."""
    lb, _ = http_server(Behaviour(200, {"status": "ok"}))
    _http_only(world["root"], lb)
    world["serve"]("a"), world["fail"]("b", 'CannotStartContainerError: exec: "python3": not found')
    r = snail(world, "run", "--skip-preflight")
    assert r.returncode == 1, r.stdout + r.stderr
    said = r.stdout + r.stderr
    assert "CannotStartContainerError" in said and "rolled back to shine-api-gateway:2" in said
    status = json.loads(snail(world, "--output", "json", "status").stdout)
    assert status["good"]["hybrid-ml"] is None and status["phase"] == "health-only"


def test_http_only_pipeline_is_judged_by_ecs_rollout_first(aws, tmp_path, http_server) -> None:
    """Whatever gates the user lists, each phase's plan is judged by ecs-rollout first: success includes "ECS
    completed our deployment" (the gate itself never passes IN_PROGRESS: tests/unit/test_ecs_rollout_gate.py)."""
    lb, _ = http_server(Behaviour(200))
    w = World(tmp_path, http_server, {"health-only": "a"})
    _http_only(tmp_path, lb)
    from orchestrator.config import load_pipeline

    w.pipeline = load_pipeline(w.path)
    plan = w.engine().plan(RunOptions())
    assert [g.type for g in plan.phases[0].gates] == ["ecs-rollout", "http"]
    assert [g.type for g in w.pipeline.phase("health-only").gates] == ["http"]


def test_breaker_failed_is_recognised_within_one_poll(aws, tmp_path, http_server) -> None:
    """The rollout gate's verdict comes on the first look at the service that shows our tasks failing past the
    threshold: exactly one such look happens before the rollback acts."""
    w = World(
        tmp_path, http_server, {"health-only": "a", "hybrid-ml": "b"}, fail={image("b"): "Essential container exited"}
    )
    w.server("a")
    engine = w.engine()
    looks: list[bool] = []
    state = {"acting": False}
    describe, update = engine.ecs.service, engine.ecs.update_service

    def spy_describe(cluster: str, name: str):  # noqa: ANN202
        svc = describe(cluster, name)
        p = svc.primary if svc else None
        if not state["acting"] and p is not None and p.task_definition.endswith(":3"):
            looks.append(p.failed >= 3 or p.has_failed)
        return svc

    def spy_update(cluster: str, name: str, arn: str):  # noqa: ANN202
        state["acting"] = arn.endswith(":2") and bool(looks)
        return update(cluster, name, arn)

    engine.ecs.service, engine.ecs.update_service = spy_describe, spy_update  # type: ignore[method-assign]
    out = engine.run(RunOptions())
    assert out.status == "rolled_back"
    assert looks.count(True) <= 2 and looks[-1] is True  # the verdict's poll (+ the rollback's own describe)
    assert looks.index(True) >= len(looks) - 2
