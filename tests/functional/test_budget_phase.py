"""The API-call budget of a good phase, counted on the engine world (calls are deterministic; time is not).

Budget: <= 15 calls per good phase including its gates. Rollout polls depend on how long ECS takes (2 s apart),
so the assertion is on everything else: <= 12 calls besides the polls leaves room for the 2-3 polls a
deployment takes in the sandbox."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from orchestrator.config import load_pipeline
from orchestrator.engine.executor import RunOptions
from tests.conftest import Behaviour
from tests.functional.test_engine import World
from tests.harness.pipeline import image


def test_a_good_phase_stays_within_its_call_budget(aws, tmp_path, http_server) -> None:
    """A changed phase delivered by a scheduled run (marks cache current): at most 13 calls besides rollout polls.

    13, was 12: without a template the plan reads the revision recorded as the spec's base (`snail:base`) once, so
    that a phase's spec never depends on what is live (one DescribeTaskDefinition of an immutable revision)."""
    w = World(tmp_path, http_server, {"health-only": "a"})
    w.server("a"), w.server("c")
    assert w.engine().run(RunOptions()).exit_code == 0
    (tmp_path / "phases" / "health-only.yaml").write_text(f'name: health-only\nimage: {{ref: "{image("c")}"}}\n')
    w.pipeline = load_pipeline(w.path)
    engine = w.engine()
    calls: Counter[str] = Counter()
    for service in ("ecs", "resourcegroupstaggingapi", "ec2", "logs", "cloudwatch", "elbv2"):
        engine.aws.client(service).meta.events.register(
            "before-call", lambda model, **_: calls.__setitem__(model.name, calls[model.name] + 1)
        )
    out = engine.run(RunOptions())
    assert out.exit_code == 0, out.message
    rollout = next(
        e
        for e in reversed(w.store.events("shine-api-gateway"))
        if e.kind == "gate_passed" and e.data["gate"] == "ecs-rollout"
    )
    polls = rollout.data["attempts"]
    others = sum(calls.values()) - polls
    assert others <= 13, (others, polls, dict(calls))
    assert calls["UpdateService"] == 1 and calls["RegisterTaskDefinition"] == 1
    assert calls["DescribeTaskDefinition"] <= 3, dict(calls)


def _count_calls(engine) -> Counter[str]:  # noqa: ANN001
    """Every AWS call the engine's clients make from now on, by operation."""
    calls: Counter[str] = Counter()
    for service in ("ecs", "resourcegroupstaggingapi", "ec2", "logs", "cloudwatch", "elbv2"):
        engine.aws.client(service).meta.events.register(
            "before-call", lambda model, **_: calls.__setitem__(model.name, calls[model.name] + 1)
        )
    return calls


def test_gates_of_one_judgment_ask_the_tasks_they_found_without_listing_them_again(aws, tmp_path, http_server) -> None:
    """Two http gates after the rollout, and the bake's http looks: the tasks are described once (a passing gate
    hands its endpoints on, to the next gate and to the bake)."""
    extra = {"health-only": "gates:\n  - {type: http, path: /ready, expect: {status: 200}}\n"}
    w = World(tmp_path, http_server, {"health-only": "a"}, extra=extra)
    w.server("a")
    engine = w.engine()
    calls = _count_calls(engine)
    out = engine.run(RunOptions())
    assert out.exit_code == 0, out.message
    passed = [e.data["gate"] for e in w.store.events("shine-api-gateway") if e.kind == "gate_passed"]
    assert [g for g in passed if g.startswith("http")] == ["http /health", "http /ready"], passed
    # the gates list and describe the tasks once; the bake's look at the end lists their ARNs once more (a task
    # that answered the gates and is gone is a crash), without describing them
    assert calls["ListTasks"] == 2 and calls["DescribeTasks"] == 1, dict(calls)


def test_a_gate_that_does_not_pass_lists_the_tasks_again_on_its_next_attempt(aws, tmp_path, http_server) -> None:
    """A refused or failing answer may mean the tasks changed: the retry looks them up again."""
    w = World(tmp_path, http_server, {"health-only": "a"})
    behaviour = w.server("a", Behaviour(status=503, body=""))  # a proxy's bare 503: retried, not a verdict
    w.clock.on_sleep.append(lambda: setattr(behaviour, "status", 200) if behaviour.hits else None)
    engine = w.engine()
    calls = _count_calls(engine)
    out = engine.run(RunOptions())
    assert out.exit_code == 0, out.message
    assert calls["DescribeTasks"] == 2, dict(calls)  # listed and described again (the bake's ARN list is extra)
    assert calls["ListTasks"] == 3, dict(calls)


def test_the_bake_counts_from_the_rollouts_completion(aws, tmp_path, http_server) -> None:
    """Gates that run after the rollout completed spend bake time: bake 5 s, 3 s of http checks, 2 s more."""
    extra = {
        "health-only": "gates:\n  - {type: http, path: /ready, expect: {status: 200}, consecutive: 4, interval: 1s}\n"
    }
    w = World(tmp_path, http_server, {"health-only": "a"}, extra=extra)
    w.server("a")
    engine = w.engine()
    out = engine.run(RunOptions())
    assert out.exit_code == 0, out.message
    events = w.store.events("shine-api-gateway")
    rollout = next(e for e in events if e.kind == "gate_passed" and e.data["gate"] == "ecs-rollout")
    completed = datetime.fromisoformat(rollout.data["evidence"]["completed_at"])
    baked = next(e for e in events if e.kind == "bake_done")
    assert "since the rollout completed" in baked.message
    held = (datetime.fromisoformat(baked.at) - completed).total_seconds()
    assert 5.0 <= held < 6.0, held  # the revision held all traffic for the bake, and not much longer


def test_the_next_phase_starts_from_the_bakes_look_at_the_service(aws, tmp_path, http_server) -> None:
    """Two phases in one run: no DescribeServices between the first phase's bake and the second's register."""
    w = World(tmp_path, http_server, {"health-only": "a", "hybrid-ml": "b"})
    w.server("a"), w.server("b")
    engine = w.engine()
    order: list[str] = []
    engine.aws.client("ecs").meta.events.register("before-call", lambda model, **_: order.append(model.name))
    out = engine.run(RunOptions())
    assert out.exit_code == 0, out.message
    tagged = order.index("TagResource")  # the first phase's good mark, right after its bake
    assert "DescribeServices" not in order[tagged : order.index("RegisterTaskDefinition", tagged)], order
