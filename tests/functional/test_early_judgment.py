"""Early judgment on a rolling phase (issue 24), on the ECS stand-in with the injected clock: the phase's task gates
are judged on our new tasks while the rollout is in progress, a failure rolls back before ECS drains the old tasks
(which keep serving, never stopped), and a pass still waits for the rollout and judges the gates again."""

from __future__ import annotations

import json
from typing import Any

from orchestrator.aws.session import AwsContext
from orchestrator.config import load_pipeline
from orchestrator.engine.executor import Engine, RunOptions
from tests.conftest import Behaviour
from tests.functional.test_engine import World
from tests.functional.world import REGION
from tests.harness.cli import snail
from tests.harness.pipeline import INJECTED_CLOCK, write_pipeline

SERVICE = "shine-api-gateway"


def _running(w: World) -> list[dict[str, Any]]:
    arns = w.ecs.list_tasks(cluster="shine", serviceName=SERVICE, desiredStatus="RUNNING")["taskArns"]
    return w.ecs.describe_tasks(cluster="shine", tasks=arns)["tasks"] if arns else []


def _watch_rollouts(w: World) -> list[tuple[str, str]]:
    """Every (revision, rolloutState) the service's deployments showed at each step of the injected clock."""
    seen: list[tuple[str, str]] = []

    def look() -> None:
        svc = w.ecs.describe_services(cluster="shine", services=[SERVICE])["services"][0]
        seen.extend((d["taskDefinition"], d.get("rolloutState", "")) for d in svc["deployments"])

    w.clock.on_sleep.append(look)
    return seen


def _verdict_tag(w: World, arn: str) -> str | None:
    tags = w.ecs.describe_task_definition(taskDefinition=arn, include=["TAGS"]).get("tags", [])
    return {t["key"]: t["value"] for t in tags}.get("snail:verdict")


def test_a_new_task_failing_its_gate_is_rolled_back_while_the_old_task_still_serves(aws, tmp_path, http_server) -> None:
    """The new task answers 503 "failed" while the old one runs: the phase fails before the rollout completes,
    the service goes back to the old revision keeping its task (never stopped, no task started for it), the
    release is quarantined, and the trail says the good tasks never stopped. (Before early judgment the gate
    waited for COMPLETED: ECS had drained the old task first.)"""
    w = World(tmp_path, http_server, {"health-only": "a", "hybrid-ml": "b"})
    w.server("a"), w.server("b", Behaviour(503, {"status": "failed"}))  # the field log's ML failure: definitive
    assert w.engine().run(RunOptions(to_phase="health-only")).exit_code == 0
    good = w.live()
    (old,) = _running(w)
    seen = _watch_rollouts(w)

    out = w.engine().run(RunOptions())

    assert (out.exit_code, out.status) == (1, "rolled_back"), out.message
    assert w.live() == good
    bad = next(rev for rev, _ in seen if rev != good)
    assert (bad, "COMPLETED") not in seen, seen  # rolled back before ECS completed the bad rollout
    (still,) = [t for t in _running(w) if t["taskArn"] == old["taskArn"]]
    assert still["lastStatus"] == "RUNNING" and "stoppedAt" not in still  # the old task was never stopped
    assert [t["taskArn"] for t in _running(w)] == [old["taskArn"]]  # no task started for the rollback
    assert _verdict_tag(w, bad) == "failed"  # quarantined
    events = w.store.events(SERVICE)
    failed = next(e for e in events if e.kind == "gate_failed" and e.data["gate"] == "http /health")
    assert failed.data.get("early") is True and "while the rollout was in progress" in failed.message
    rollout = next(e for e in events if e.kind == "gate_failed" and e.data["gate"] == "ecs-rollout")
    # the rollout's wait ended by it gathers nothing more before the rollback (no task stopped; logs said once)
    assert not {"stopped_tasks", "log_lines"} & set(rollout.data["evidence"]), rollout.data["evidence"]
    decision = next(e for e in events if e.kind == "decision")
    assert "failed early, on our new tasks while the rollout was in progress" in decision.message
    stop = next(s for s in w.store.steps(w.store.runs(SERVICE)[0].run_id) if s.kind == "stop_new_tasks")
    assert stop.outcome == "ok" and stop.intent["tasks"] != [old["taskArn"]]
    assert "caught before the rollout completed: the good tasks never stopped" in w.trail()
    assert "the good tasks never stopped" in out.message


def test_an_early_failure_rolls_back_before_reading_the_containers_logs(aws, tmp_path, http_server) -> None:
    """A verdict reached early reads no log lines before the decision (the broken task serves beside the good one
    meanwhile): the rollback is the first thing done, and the diagnosis after it reads the containers' lines."""
    w = World(tmp_path, http_server, {"health-only": "a", "hybrid-ml": "b"})
    w.server("a"), w.server("b", Behaviour(503, {"status": "failed"}))
    assert w.engine().run(RunOptions(to_phase="health-only")).exit_code == 0
    good = w.live()
    read: list[tuple[str, str]] = []  # (what read, the revision live then)

    def log_lines(arn: str) -> list[str]:
        read.append(("gate", w.live()))
        return ["model failed to load"]

    def diagnose(arn: str, cause: Any, since: Any) -> str:
        read.append(("diagnosis", w.live()))
        return "last log line: model failed to load"

    engine = Engine(
        w.pipeline, AwsContext(region=REGION), w.store, clock=w.clock, log_lines=log_lines, diagnose=diagnose
    )
    out = engine.run(RunOptions())

    assert (out.exit_code, out.status) == (1, "rolled_back"), out.message
    assert read == [("diagnosis", good)], read  # after the service was pointed back, and only there
    failed = next(e for e in w.store.events(SERVICE) if e.kind == "gate_failed" and e.data.get("early"))
    assert "log_lines" not in failed.data["evidence"]
    assert "model failed to load" in w.trail()


def test_an_early_look_asks_first_the_gate_that_concludes_in_one_answer(aws, tmp_path, http_server) -> None:
    """`/ml/status` says "failed" on its first answer, behind a `/ready` gate that needs three in a row: the early
    look asks `/ml/status` before `/ready`, so the new task is asked twice (/health, /ml/status), not five times,
    before the rollback, and the verdict names `/ml/status`."""
    gates = (
        "gates:\n"
        "  - {type: http, path: /ready, expect: {status: 200}, consecutive: 3}\n"
        "  - {type: http, path: /ml/status, expect: {status: 200, json: {status: [ready, degraded]}}}\n"
    )
    w = World(tmp_path, http_server, {"health-only": "a", "hybrid-ml": "b"}, {"hybrid-ml": gates})
    w.server("a")
    broken = Behaviour(200, {"status": "failed"})
    broken.paths["/ml/status"] = 503
    w.server("b", broken)
    assert w.engine().run(RunOptions(to_phase="health-only")).exit_code == 0
    good = w.live()

    out = w.engine().run(RunOptions())

    assert (out.exit_code, out.status) == (1, "rolled_back"), out.message
    assert w.live() == good
    failed = next(e for e in w.store.events(SERVICE) if e.kind == "gate_failed" and e.data.get("early"))
    assert failed.data["gate"] == "http /ml/status", failed.data["gate"]
    assert broken.hits == 2, broken.hits


def test_the_rollback_returns_to_the_good_revision_that_was_live_keeping_its_task(aws, tmp_path, http_server) -> None:
    """The service runs good revision A although a newer good B exists (someone pointed it back to A outside
    snail): a release C that fails early goes back to A, whose task still runs and is kept, not forward to B,
    which would need a new task started."""
    w = World(tmp_path, http_server, {"health-only": "a", "hybrid-ml": "b"})
    w.server("a"), w.server("b"), w.server("c", Behaviour(503, {"status": "failed"}))
    assert w.engine().run(RunOptions(to_phase="health-only")).exit_code == 0
    a = w.live()
    assert w.engine().run(RunOptions()).exit_code == 0
    w.ecs.update_service(cluster="shine", service=SERVICE, taskDefinition=a)  # back to A, not through snail
    while w.primary().get("rolloutState") != "COMPLETED":
        w.clock.sleep(1)
    (old,) = _running(w)
    write_pipeline(tmp_path, {"health-only": "a", "hybrid-ml": "c"}, timing=INJECTED_CLOCK)
    w.pipeline = load_pipeline(w.path)

    out = w.engine().run(RunOptions())

    assert (out.exit_code, out.status) == (1, "rolled_back"), out.message
    assert w.live() == a
    assert [t["taskArn"] for t in _running(w)] == [old["taskArn"]]  # A's task kept, no task started
    assert "the good tasks never stopped" in out.message


def test_a_new_task_that_passes_early_but_fails_after_the_rollout_still_rolls_back(aws, tmp_path, http_server) -> None:
    """A pass while the rollout is in progress ends nothing: the gate runs again once the rollout completed, and
    its failure there rolls back as before (and the trail does not claim the old tasks never stopped)."""
    w = World(tmp_path, http_server, {"health-only": "a", "hybrid-ml": "b"})
    w.server("a")
    behaviour = w.server("b")
    assert w.engine().run(RunOptions(to_phase="health-only")).exit_code == 0
    good = w.live()

    def turn_bad() -> None:  # the first answer (the early look) is good, every later one is not
        if behaviour.hits:
            behaviour.status, behaviour.body = 500, {"status": "model failed to load"}

    w.clock.on_sleep.append(turn_bad)
    out = w.engine().run(RunOptions())

    assert (out.exit_code, out.status) == (1, "rolled_back"), out.message
    assert w.live() == good
    events = [e for e in w.store.events(SERVICE) if e.phase == "hybrid-ml"]
    rollout = next(e for e in events if e.kind == "gate_passed" and e.data["gate"] == "ecs-rollout")
    assert "judged early: http /health passed on new task(s)" in rollout.message
    failed = next(e for e in events if e.kind == "gate_failed")
    assert failed.data["gate"] == "http /health" and "early" not in failed.data
    assert "status 500" in failed.message
    assert "the good tasks never stopped" not in w.trail()


def test_plan_says_which_gates_are_judged_early(world) -> None:
    """`snail plan` names, per rolling phase, the gates judged on the new tasks during the rollout and why the
    others wait for it (a fixed URL, a command that does not name the task), in text and JSON."""
    extra = {
        "health-only": (
            "gates:\n"
            "  - {type: http, url: 'http://127.0.0.1:9/ready', expect: {status: 200}}\n"
            "  - {type: command, run: 'test -n \"$SNAIL_ENDPOINT\"'}\n"
            "  - {type: command, run: 'true'}\n"
        )
    }
    write_pipeline(world["root"], {"health-only": "a"}, extra)
    r = snail(world, "plan")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    early = next(line for line in lines if line.strip().startswith("early:"))
    assert "http /health" in early and "SNAIL_ENDPOINT" in early and "ready" not in early, early
    late = next(line for line in lines if line.strip().startswith("not early:"))
    assert "http://127.0.0.1:9/ready (probes a fixed URL, which the old tasks answer too)" in late, late
    assert "command true (does not name the task" in late, late
    shown = json.loads(snail(world, "--output", "json", "plan").stdout)
    judged = {d["gate"]: d["early"] for d in shown["phases"][0]["early"]}
    assert judged["http /health"] is True and judged["ecs-rollout"] is False
    assert [g for g, on in judged.items() if not on] == ["ecs-rollout", "http http://127.0.0.1:9/ready", "command true"]
