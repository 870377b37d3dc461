"""The bake watches: the phase's gates are judged again during it, the service and our tasks are looked at, and a
deployment someone else started is theirs (issue 19 item 2, issue 25 "Verdicts that cannot be fooled"). The engine
on moto with the sandbox agent, on a fake clock: every sleep of the bake is one agent round."""

from __future__ import annotations

from collections.abc import Callable

from orchestrator.engine.executor import RunOptions
from tests.conftest import Behaviour
from tests.functional.test_engine import World
from tests.harness.pipeline import image

SERVICE = "shine-api-gateway"


def _after_the_gates(w: World, behaviour: Behaviour, act: Callable[[], None], answered: bool = False) -> None:
    """`act` once, at the first sleep after phase two's http gate passed on the completed rollout (the bake's first
    sleep). Its first answer is not that point: the gate is judged early too, on the new task during the rollout.
    `answered`: at the first sleep after its first answer, whatever it was."""
    done = {"acted": False}

    def passed() -> bool:
        return any(
            e.kind == "gate_passed" and e.phase == "hybrid-ml" and e.data.get("gate") == "http /health"
            for e in w.store.events(SERVICE)
        )

    def hook() -> None:
        if behaviour.hits and not done["acted"] and (answered or passed()):
            done["acted"] = True
            act()

    w.clock.on_sleep.append(hook)


def _two_phases(tmp_path, http_server) -> tuple[World, Behaviour]:  # noqa: ANN001
    w = World(tmp_path, http_server, {"health-only": "a", "hybrid-ml": "b"})
    w.server("a")
    return w, w.server("b")


def _marks(w: World, revision: str) -> list[str]:
    return [m.verdict for m in w.store.marks(SERVICE) if m.revision_arn == revision]


def _phase_two_revision(w: World) -> str:
    return next(
        e.data["revision"]
        for e in w.store.events(SERVICE)
        if e.kind == "service_updated" and e.phase == "hybrid-ml" and "revision" in e.data
    )


def test_an_http_gate_that_starts_failing_during_the_bake_fails_the_phase(aws, tmp_path, http_server) -> None:
    """Phase two passes its gates, then answers 500 during its bake: exit 1, rolled back to phase one (verified),
    phase two's spec quarantined, and the trail says it failed during the bake (it used to be "baked 5s: still
    ours and healthy ... marked good")."""
    w, two = _two_phases(tmp_path, http_server)
    _after_the_gates(w, two, lambda: setattr(two, "status", 500))
    out = w.engine().run(RunOptions())
    assert (out.exit_code, out.status) == (1, "rolled_back"), out.message
    assert "failed during the bake" in out.message
    one = w.store.last_good(SERVICE, "health-only")
    assert w.live() == one.revision_arn
    assert w.store.last_good(SERVICE, "hybrid-ml") is None
    assert _marks(w, _phase_two_revision(w)) == ["failed"]  # quarantined
    trail = w.trail()
    assert "failed during the bake" in trail and "status 500, expected 200" in trail
    assert "(during the bake, look" in trail
    assert not [e for e in w.store.events(SERVICE) if e.kind == "bake_done" and e.phase == "hybrid-ml"]


def test_a_good_bake_says_what_it_checked(aws, tmp_path, http_server) -> None:
    """A bake that passes says what it looked at, and only that: the service and the tasks that answered, and how
    many times each gate was judged again (never "healthy" unless a gate checked it)."""
    w, _two = _two_phases(tmp_path, http_server)
    out = w.engine().run(RunOptions())
    assert out.exit_code == 0, out.message
    baked = [e for e in w.store.events(SERVICE) if e.kind == "bake_done" and e.phase == "hybrid-ml"]
    assert len(baked) == 1 and "healthy" not in baked[0].message
    assert "still ours: 1/1 running (the tasks that answered the gates)" in baked[0].message
    assert "http /health passed" in baked[0].message and baked[0].data["judged"]["http /health"] >= 3


def test_a_task_that_crashes_during_the_bake_fails_the_phase(aws, tmp_path, http_server) -> None:
    """Phase two's task exits during its bake and ECS replaces it (the replacement answers like the old one):
    the bake's look at our tasks sees the task that answered the gates gone and a new task ARN, so the phase fails
    (rolled back, quarantined) instead of being marked good."""
    w, two = _two_phases(tmp_path, http_server)

    def crash() -> None:
        running = [t for t in w.launcher.tasks.values() if t.image == image("b") and t.state == "RUNNING"]
        assert len(running) == 1
        w.launcher.exit(running[0].task_id, 1)

    _after_the_gates(w, two, crash)
    out = w.engine().run(RunOptions())
    assert (out.exit_code, out.status) == (1, "rolled_back"), out.message
    assert "failed during the bake" in out.message and "that answered the gates stopped" in out.message
    assert w.live() == w.store.last_good(SERVICE, "health-only").revision_arn
    assert _marks(w, _phase_two_revision(w)) == ["failed"]
    failed = next(e for e in w.store.events(SERVICE) if e.kind == "gate_failed" and e.data["gate"] == "bake")
    assert failed.data["evidence"]["gone"] and failed.data["evidence"]["stopped_tasks"]
    assert "Essential container in task exited" in str(failed.data["evidence"]["stopped_tasks"])


def test_a_service_with_desired_count_zero_is_refused_before_anything_changes(aws, tmp_path, http_server) -> None:
    """desiredCount 0: no task of the release would ever answer a gate, so the run refuses (exit 5, as doctor's
    check does) before it registers or deploys anything (it used to be "COMPLETED: 0/0 running ... marked good")."""
    w = World(tmp_path, http_server, {"health-only": "a"}, desired=0)
    w.server("a")
    before = w.revisions()
    out = w.engine().run(RunOptions())
    assert out.exit_code == 5, out.message
    assert "desiredCount 0" in out.message and "--desired-count 1" in out.message
    assert w.live() == w.bootstrap and w.revisions() == before
    assert w.store.last_good(SERVICE, "health-only") is None


def test_a_service_scaled_to_zero_during_the_bake_is_not_marked_good(aws, tmp_path, http_server) -> None:
    """Someone scales the service to 0 during phase two's bake: no task of ours runs, so the release is not
    marked good; it is their act, not our failure: exit 4, nothing rolled back, nothing marked."""
    w, two = _two_phases(tmp_path, http_server)
    _after_the_gates(w, two, lambda: w.ecs.update_service(cluster="shine", service=SERVICE, desiredCount=0))
    out = w.engine().run(RunOptions())
    assert (out.exit_code, out.status) == (4, "superseded"), out.message
    assert "scaled to 0" in out.message
    ours = _phase_two_revision(w)
    assert w.live() == ours and _marks(w, ours) == []
    assert "superseded by another actor" in w.trail()


def test_another_actors_deployment_during_the_bake_is_theirs(aws, tmp_path, http_server) -> None:
    """Someone else's UpdateService lands during phase two's bake: snail stops judging, rolls nothing back (their
    release stays live), marks nothing (the next run judges our revision again), exits 4 naming what replaced ours
    and what is live; the trail says "superseded by another actor". It used to roll back over them and quarantine
    our spec as failed."""
    w, two = _two_phases(tmp_path, http_server)
    w.server("c")
    theirs: dict[str, str] = {}

    def deploy_theirs() -> None:
        td = w.ecs.describe_task_definition(taskDefinition=w.live())["taskDefinition"]
        containers = [{**c, "image": image("c")} for c in td["containerDefinitions"]]
        arn = w.ecs.register_task_definition(
            family=td["family"], networkMode=td["networkMode"], containerDefinitions=containers
        )["taskDefinition"]["taskDefinitionArn"]
        theirs["arn"] = arn
        w.ecs.update_service(cluster="shine", service=SERVICE, taskDefinition=arn)

    _after_the_gates(w, two, deploy_theirs, answered=True)
    engine = w.engine()
    out = engine.run(RunOptions())
    assert (out.exit_code, out.status) == (4, "superseded"), out.message
    short = theirs["arn"].rsplit("/", 1)[1]
    assert "superseded by another actor: deployment ecs-svc/" in out.message and f"of {short}" in out.message
    assert f"live: {short}" in out.message and "Not rolled back" in out.message
    assert w.live() == theirs["arn"]  # their release was not undone
    ours = _phase_two_revision(w)
    assert _marks(w, ours) == []  # neither good nor failed
    assert not [e for e in w.store.events(SERVICE) if e.kind in ("decision", "rollback_started")]
    trail = w.trail()
    assert "superseded by another actor" in trail
    plan = w.engine().plan(RunOptions())
    assert "hybrid-ml" in [pp.phase.name for pp in plan.todo]  # judged again by the next run
    assert plan.todo[-1].block is None


def test_another_actors_deployment_while_our_gates_retry_is_theirs(aws, tmp_path, http_server) -> None:
    """Phase two's http gate is still retrying (503) when someone else's deployment replaces ours: exit 4, not
    rolled back, not quarantined."""
    w = World(tmp_path, http_server, {"health-only": "a", "hybrid-ml": "b"})
    w.server("a"), w.server("c")
    two = w.server("b", Behaviour(503, body=""))
    theirs: dict[str, str] = {}

    def deploy_theirs() -> None:
        td = w.ecs.describe_task_definition(taskDefinition=w.live())["taskDefinition"]
        containers = [{**c, "image": image("c")} for c in td["containerDefinitions"]]
        arn = w.ecs.register_task_definition(
            family=td["family"], networkMode=td["networkMode"], containerDefinitions=containers
        )["taskDefinition"]["taskDefinitionArn"]
        theirs["arn"] = arn
        w.ecs.update_service(cluster="shine", service=SERVICE, taskDefinition=arn)

    _after_the_gates(w, two, deploy_theirs, answered=True)
    out = w.engine().run(RunOptions())
    assert (out.exit_code, out.status) == (4, "superseded"), out.message
    assert "while its gates were judged" in out.message
    assert w.live() == theirs["arn"]
    assert _marks(w, _phase_two_revision(w)) == []
    assert "superseded by another actor" in w.trail()
