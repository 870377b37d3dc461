"""The engine end to end on moto (with the sandbox agent moving deployments): phases, gates, rollback, trail."""

from __future__ import annotations

from pathlib import Path

import pytest
from moto import mock_aws

from ecsbox.agent import EcsAgent
from ecsbox.launchers import InstantLauncher
from orchestrator.aws.session import AwsContext
from orchestrator.config import load_pipeline
from orchestrator.engine.executor import Engine, RunOptions
from orchestrator.errors import PreflightFailed, UsageError
from orchestrator.state.sqlite import SqliteStore
from orchestrator.trail import render
from tests.conftest import Behaviour
from tests.functional.world import ACCOUNT, REGION, AgentClock, boto, seed_service
from tests.harness.pipeline import INJECTED_CLOCK, image, write_pipeline


class World:
    """moto + agent + per-image HTTP servers + a pipeline folder."""

    def __init__(self, tmp_path: Path, http_server, phases: dict[str, str], extra=None, fail=None, desired=1) -> None:  # noqa: ANN001
        self.servers: dict[str, tuple[str, Behaviour]] = {}
        self.http_server = http_server
        self.fail = fail or {}
        self.clock = AgentClock()
        self.launcher = InstantLauncher(host_port_for=self.port_for, fail_reason_for=lambda img: self.fail.get(img))
        self.agent = EcsAgent(self.launcher, account_id=ACCOUNT, region=REGION, monotonic=self.clock.monotonic)
        self.clock.agent = self.agent
        self.ecs = boto("ecs")
        self.bootstrap = seed_service(self.ecs, desired=desired)
        for _ in range(5):
            self.agent.reconcile_once()
        self.path = write_pipeline(tmp_path, phases, extra, timing=INJECTED_CLOCK)
        self.pipeline = load_pipeline(self.path)
        self.store = SqliteStore(tmp_path / ".snail" / "state.db")

    def server(self, tag: str, behaviour: Behaviour | None = None) -> Behaviour:
        """The HTTP server the tasks of image(tag) answer from."""
        if tag not in self.servers or behaviour is not None:
            self.servers[tag] = self.http_server(behaviour or Behaviour())
        return self.servers[tag][1]

    def port_for(self, img: str) -> int | None:
        for tag in list(self.servers):
            if image(tag) == img:
                return int(self.servers[tag][0].rsplit(":", 1)[1])
        return None

    def engine(self) -> Engine:
        return Engine(self.pipeline, AwsContext(region=REGION), self.store, clock=self.clock)

    def live(self) -> str:
        return self.ecs.describe_services(cluster="shine", services=["shine-api-gateway"])["services"][0][
            "taskDefinition"
        ]

    def primary(self) -> dict:
        svc = self.ecs.describe_services(cluster="shine", services=["shine-api-gateway"])["services"][0]
        return next(d for d in svc["deployments"] if d["status"] == "PRIMARY")

    def revisions(self) -> list[str]:
        return self.ecs.list_task_definitions(familyPrefix="shine-api-gateway")["taskDefinitionArns"]

    def trail(self) -> str:
        return render(
            "md",
            "shine-api-gateway",
            self.store.events("shine-api-gateway"),
            self.store.runs("shine-api-gateway"),
            self.pipeline.phase_names(),
        )


@pytest.fixture
def aws():
    """In-process moto for every AWS call of the test."""
    from ecsbox import extension

    with mock_aws():
        yield
    extension.uninstall()  # the agent patched moto's ECS; later tests may want plain moto


def test_two_phase_run_passes(aws, tmp_path, http_server) -> None:
    """Both phases register, deploy, pass their gates and are marked good; the service runs phase two's revision."""
    w = World(tmp_path, http_server, {"health-only": "a", "hybrid-ml": "b"})
    w.server("a"), w.server("b")
    out = w.engine().run(RunOptions())
    assert out.exit_code == 0 and out.status == "succeeded"
    good = {g.phase: g for g in w.store.good_history("shine-api-gateway")}
    assert set(good) == {"health-only", "hybrid-ml"}
    assert w.live() == good["hybrid-ml"].revision_arn
    assert w.primary()["rolloutState"] == "COMPLETED"
    td = w.ecs.describe_task_definition(taskDefinition=w.live(), include=["TAGS"])
    tags = {t["key"]: t["value"] for t in td["tags"]}
    assert tags["snail:phase"] == "hybrid-ml" and tags["snail:image-digest"] == image("b").split("@")[1]
    assert td["taskDefinition"]["containerDefinitions"][0]["image"] == image("b")
    env = {e["name"]: e["value"] for e in td["taskDefinition"]["containerDefinitions"][0]["environment"]}
    assert env["SNAIL_PHASE"] == "hybrid-ml"
    trail = w.trail()
    assert "## 🐌 **PHASE: health-only**" in trail and "## 🐌 **PHASE: hybrid-ml**" in trail
    assert "- [X] ecs-rollout: shine-api-gateway:3 COMPLETED" in trail
    assert "- [X] http /health: 1 endpoint(s) answered 1x as expected" in trail
    # the bake really waited on our clock
    assert w.clock.monotonic() >= 10


def test_failing_gate_rolls_back_to_last_good(aws, tmp_path, http_server) -> None:
    """Phase two answers 500: the decision is recorded, the service returns to phase one's revision, verified, exit 1."""
    w = World(tmp_path, http_server, {"health-only": "a", "hybrid-ml": "b"})
    w.server("a"), w.server("b", Behaviour(500, {"error": "model failed"}))
    out = w.engine().run(RunOptions())
    assert (out.exit_code, out.status) == (1, "rolled_back")
    one = w.store.last_good("shine-api-gateway", "health-only")
    assert w.live() == one.revision_arn
    assert w.primary()["taskDefinition"] == one.revision_arn and w.primary()["rolloutState"] == "COMPLETED"
    assert w.store.last_good("shine-api-gateway", "hybrid-ml") is None
    assert "rolled back to shine-api-gateway:2 (phase health-only), verified" in out.message
    kinds = [e.kind for e in w.store.events("shine-api-gateway")]
    assert (
        kinds.index("gate_failed")
        < kinds.index("decision")
        < kinds.index("rollback_started")
        < kinds.index("rollback_verified")
    )
    run = w.store.runs("shine-api-gateway")[0]
    assert (run.status, run.exit_code) == ("rolled_back", 1)
    (step,) = [s for s in w.store.steps(run.run_id) if s.kind == "rollback"]
    assert step.outcome == "ok" and step.intent["to"] == one.revision_arn
    trail = w.trail()
    assert "status 500, expected 200" in trail and "[Action]: rolled back to shine-api-gateway:2" in trail


def test_first_phase_failing_has_nothing_to_roll_back_to(aws, tmp_path, http_server) -> None:
    """With no good revision yet, exit 3 and say exactly what the service runs."""
    w = World(tmp_path, http_server, {"health-only": "a"})
    w.server("a", Behaviour(503))
    out = w.engine().run(RunOptions())
    assert (out.exit_code, out.status) == (3, "rollback_failed")
    assert "no revision has passed its gates yet" in out.message
    # judged early (issue 24): the new task failed its gate while the rollout was still in progress
    assert "the service runs shine-api-gateway:2; primary deployment IN_PROGRESS, 1/1 running" in out.message


def test_tasks_that_cannot_start_fail_the_rollout_gate(aws, tmp_path, http_server) -> None:
    """A task stopping with CannotPullContainerError fails the rollout gate at once (no waiting for the breaker)."""
    w = World(
        tmp_path,
        http_server,
        {"health-only": "a", "hybrid-ml": "b"},
        fail={image("b"): "CannotPullContainerError: pull access denied"},
    )
    w.server("a")
    assert w.engine().run(RunOptions()).exit_code == 1
    failed = [e for e in w.store.events("shine-api-gateway") if e.kind == "gate_failed"][0]
    assert failed.data["gate"] == "ecs-rollout"
    assert "CannotPullContainerError" in failed.message and failed.data["attempts"] <= 3
    reasons = [t["stopped_reason"] for t in failed.data["evidence"]["stopped_tasks"]]
    assert any("CannotPullContainerError" in r for r in reasons)
    assert w.live() == w.store.last_good("shine-api-gateway", "health-only").revision_arn


def test_rerun_is_a_noop_and_registers_nothing(aws, tmp_path, http_server) -> None:
    """A scheduled re-run with nothing changed does nothing, says so, and makes no new revision."""
    w = World(tmp_path, http_server, {"health-only": "a", "hybrid-ml": "b"})
    w.server("a"), w.server("b")
    w.engine().run(RunOptions())
    before = w.revisions()
    out = w.engine().run(RunOptions())
    assert out.status == "noop" and out.exit_code == 0
    assert "nothing to do: phase hybrid-ml is already live and good" in out.message
    assert w.revisions() == before


def test_identical_revision_is_reused(aws, tmp_path, http_server) -> None:
    """Re-running a phase explicitly reuses its identical revision instead of registering another."""
    w = World(tmp_path, http_server, {"health-only": "a"})
    w.server("a")
    w.engine().run(RunOptions())
    before = w.revisions()
    out = w.engine().run(RunOptions(from_phase="health-only"))
    assert out.exit_code == 0
    assert w.revisions() == before
    assert any(e.kind == "revision_reused" for e in w.store.events("shine-api-gateway"))


def test_a_changed_phase_behind_the_live_one_is_reported_not_deployed(aws, tmp_path, http_server) -> None:
    """Changing phase one's image while phase two is live deploys nothing and says why (the ladder is climbed
    once); `run --from health-only` re-climbs: phase one, then phase two."""
    w = World(tmp_path, http_server, {"health-only": "a", "hybrid-ml": "b"})
    w.server("a"), w.server("b"), w.server("c")
    w.engine().run(RunOptions())
    live, before = w.live(), w.revisions()
    (tmp_path / "phases" / "health-only.yaml").write_text(f'name: health-only\nimage: {{ref: "{image("c")}"}}\n')
    w.pipeline = load_pipeline(w.path)
    plan = w.engine().plan(RunOptions())
    assert plan.todo == []
    assert [p.case for p in plan.phases] == ["changed-behind", "live"]
    out = w.engine().run(RunOptions())
    assert (out.status, out.exit_code) == ("noop", 0)
    assert "health-only changed; it is behind the live phase hybrid-ml: not deployed" in out.message
    assert "`snail run --from health-only` re-climbs" in out.message
    assert (w.live(), w.revisions()) == (live, before)
    again = w.engine().plan(RunOptions(from_phase="health-only"))
    assert [p.phase.name for p in again.todo] == ["health-only", "hybrid-ml"]


def test_manual_approval_pauses_then_promote(aws, tmp_path, http_server) -> None:
    """A manual phase stops `run` with exit 0 and a message; promoting it continues."""
    w = World(tmp_path, http_server, {"health-only": "a", "hybrid-ml": "b"}, extra={"hybrid-ml": "approval: manual\n"})
    w.server("a"), w.server("b")
    out = w.engine().run(RunOptions())
    assert out.status == "paused" and out.exit_code == 0
    assert "snail promote hybrid-ml" in out.message
    assert w.live() == w.store.last_good("shine-api-gateway", "health-only").revision_arn
    out = w.engine().run(RunOptions(only="hybrid-ml", approved={"hybrid-ml"}, command="promote hybrid-ml"))
    assert out.exit_code == 0
    assert w.live() == w.store.last_good("shine-api-gateway", "hybrid-ml").revision_arn


def test_manual_rollback_to_phase(aws, tmp_path, http_server) -> None:
    """`rollback --to-phase` returns to that phase's good revision, verified by its gates, and records it."""
    w = World(tmp_path, http_server, {"health-only": "a", "hybrid-ml": "b"})
    w.server("a"), w.server("b")
    w.engine().run(RunOptions())
    out = w.engine().rollback(to_phase="health-only")
    assert out.exit_code == 0
    assert w.live() == w.store.last_good("shine-api-gateway", "health-only").revision_arn
    assert w.store.runs("shine-api-gateway")[0].command == "rollback"
    with pytest.raises(UsageError):
        w.engine().rollback(to_revision="99")


def test_default_manual_rollback_goes_to_previous_good(aws, tmp_path, http_server) -> None:
    """Plain `rollback` goes to the newest good revision that is not live."""
    w = World(tmp_path, http_server, {"health-only": "a", "hybrid-ml": "b"})
    w.server("a"), w.server("b")
    w.engine().run(RunOptions())
    w.engine().rollback()
    assert w.live() == w.store.last_good("shine-api-gateway", "health-only").revision_arn


def test_interrupt_during_gates_rolls_back_and_exits_130(aws, tmp_path, http_server) -> None:
    """Ctrl-C / SIGTERM while phase two is being gated rolls back to phase one and raises Interrupted."""
    w = World(tmp_path, http_server, {"health-only": "a", "hybrid-ml": "b"})
    w.server("a"), w.server("b")
    w.engine().run(RunOptions(to_phase="health-only"))
    state = {"armed": False}

    def interrupt() -> None:
        if state["armed"]:
            state["armed"] = False
            raise KeyboardInterrupt

    w.clock.on_sleep.append(interrupt)
    state["armed"] = True
    out = w.engine().run(RunOptions())
    assert (out.exit_code, out.status) == (130, "interrupted")
    assert w.live() == w.store.last_good("shine-api-gateway", "health-only").revision_arn
    assert w.store.runs("shine-api-gateway")[0].status == "interrupted"


def test_missing_service_is_preflight_failure(aws, tmp_path, http_server) -> None:
    """The field log's missing service: run refuses with exit 5 and names --create-service; nothing registered."""
    w = World(tmp_path, http_server, {"health-only": "a"})
    w.ecs.delete_service(cluster="shine", service="shine-api-gateway", force=True)
    before = w.revisions()
    with pytest.raises(PreflightFailed) as exc:
        w.engine().run(RunOptions())
    assert exc.value.exit_code == 5 and "--create-service" in str(exc.value)
    assert w.revisions() == before


def test_crashed_step_is_reconciled_by_next_run(aws, tmp_path, http_server) -> None:
    """An update whose result was never written (a crash) is closed by the next run with what ECS shows."""
    w = World(tmp_path, http_server, {"health-only": "a"})
    w.server("a")
    from orchestrator.state.base import RunRecord

    w.store.start_run(RunRecord("r-dead", "shine-api-gateway", "run", "running", "2025-08-11T18:00:00+00:00"))
    w.store.begin_step(
        "r-dead", "health-only", "update_service", {"from": w.bootstrap, "to": "x:9"}, "2025-08-11T18:01:00+00:00"
    )
    w.engine().run(RunOptions())
    assert w.store.open_steps("shine-api-gateway") == []
    assert w.store.get_run("r-dead").status == "interrupted"
    rec = [e for e in w.store.events("shine-api-gateway") if e.kind == "reconciled"]
    assert rec and "run r-dead was interrupted during update_service" in rec[0].message


def test_interrupt_with_record_policy_leaves_revision_and_resume_finishes(aws, tmp_path, http_server) -> None:
    """rollback.on_interrupt: record leaves the unproven revision in place, says so, and --resume completes it."""
    w = World(tmp_path, http_server, {"health-only": "a", "hybrid-ml": "b"})
    w.path.write_text(w.path.read_text() + "rollback: {on_interrupt: record}\n")
    w.pipeline = load_pipeline(w.path)
    w.server("a"), w.server("b")
    w.engine().run(RunOptions(to_phase="health-only"))
    state = {"armed": True}

    def interrupt() -> None:
        if state["armed"]:
            state["armed"] = False
            raise KeyboardInterrupt

    w.clock.on_sleep.append(interrupt)
    out = w.engine().run(RunOptions())
    assert out.exit_code == 130
    assert "has NOT passed its gates (rollback.on_interrupt: record)" in out.message
    assert w.live() != w.store.last_good("shine-api-gateway", "health-only").revision_arn
    assert w.store.runs("shine-api-gateway")[0].status == "interrupted"
    engine = w.engine()
    out = engine.run(RunOptions(from_phase=engine.resume_point()))
    assert out.exit_code == 0
    assert w.live() == w.store.last_good("shine-api-gateway", "hybrid-ml").revision_arn
