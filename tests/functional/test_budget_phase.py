"""The API-call budget of a good phase, counted on the engine world (calls are deterministic; time is not).

Budget: <= 15 calls per good phase including its gates. Rollout polls depend on how long ECS takes (2 s apart),
so the assertion is on everything else: <= 12 calls besides the polls leaves room for the 2-3 polls a
deployment takes in the sandbox."""

from __future__ import annotations

from collections import Counter

from orchestrator.config import load_pipeline
from orchestrator.engine.executor import RunOptions
from tests.functional.test_engine import World
from tests.functional.world import image


def test_a_good_phase_stays_within_its_call_budget(aws, tmp_path, http_server) -> None:
    """A changed phase delivered by a scheduled run (marks cache current): at most 12 calls besides rollout polls."""
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
    assert others <= 12, (others, polls, dict(calls))
    assert calls["UpdateService"] == 1 and calls["RegisterTaskDefinition"] == 1
