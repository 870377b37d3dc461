"""The target-health gate in a rolling phase, on moto + the sandbox agent + the sandbox's load balancer data plane
(real health checks behind DescribeTargetHealth): pipeline.yaml may name the target group (`shine-blue`), and after
a blue-green release production may be on the other group, which is the one the gate must check."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from orchestrator.aws.ecs import EcsClient
from orchestrator.aws.session import AwsContext
from orchestrator.config import load_pipeline
from orchestrator.config.gates import TargetHealthGate
from orchestrator.engine.executor import RunOptions
from orchestrator.gates import target_health
from orchestrator.gates.context import GateContext
from tests.conftest import Behaviour
from tests.functional.test_strategies_engine import CLUSTER, SERVICE, World
from tests.functional.world import REGION

ROLLING_TH = "inherit_gates: false\nstrategy: rolling\ngates:\n  - {type: ecs-rollout, timeout: 2m, poll: 1s}\n"
TH = "  - {type: target-health, retries: {attempts: 5, wait: 1s}}\n"


@pytest.fixture
def moto_aws():
    """In-process moto for every AWS call of the test."""
    from ecsbox import extension

    with mock_aws():
        yield
    extension.uninstall()


def named(world: World, phases: dict[str, str], extra: dict[str, str]) -> Any:
    """The world's pipeline with service.load_balancer.target_group_arn written as a NAME (`shine-blue`)."""
    world.pipeline(phases, extra)
    path: Path = world.tmp / "pipeline.yaml"
    # the base pipeline writes the load_balancer block in flow style (JSON)
    text = path.read_text()
    path.write_text(text.replace(f'"target_group_arn": "{world.blue_tg}"', '"target_group_arn": "shine-blue"'))
    p = load_pipeline(path)
    assert '"target_group_arn": "shine-blue"' in path.read_text()
    return p


def verdicts(world: World, run_id: str | None, kind: str) -> list[Any]:
    """A run's target-health events of one kind (gate_passed | gate_failed)."""
    return [e for e in world.events(kind) if e.run_id == run_id and e.data.get("gate") == "target-health"]


def test_rolling_phase_with_a_named_target_group_passes_on_healthy_targets(moto_aws, tmp_path, http_server) -> None:
    """service.load_balancer names its group `shine-blue`: the gate checks that group's ARN (DescribeTargetHealth
    takes no name) and passes once ELB measured the new tasks healthy."""
    world = World(tmp_path, http_server, strategy="rolling")
    try:
        world.serve("a")
        p = named(world, {"one": "a"}, {"one": ROLLING_TH + TH})
        [gate] = [g for g in p.phase("one").gates if isinstance(g, TargetHealthGate)]
        assert gate.target_group_arn == "shine-blue" and gate.from_service
        out = world.engine(p).run(RunOptions())
        assert (out.exit_code, out.status) == (0, "succeeded"), out.message
        [passed] = verdicts(world, out.run_id, "gate_passed")
        assert passed.data["evidence"]["target_group"] == world.blue_tg
        assert "2 target(s) healthy in shine-blue" in passed.message
        states = [v["state"] for v in passed.data["evidence"].values() if isinstance(v, dict) and "state" in v]
        assert states == ["healthy", "healthy"]
    finally:
        world.close()


def test_rolling_phase_fails_with_elbs_reason_on_unhealthy_targets(moto_aws, tmp_path, http_server) -> None:
    """The new release's health check starts failing once its rollout completed (ECS would only replace the tasks
    after the grace period): ELB marks its targets unhealthy (Target.ResponseCodeMismatch), the gate fails with
    that reason, and the phase is rolled back."""
    world = World(tmp_path, http_server, strategy="rolling", grace=3600)
    try:
        world.serve("a")
        broken = world.serve("b")
        p = named(world, {"one": "a", "two": "b"}, {"one": ROLLING_TH + TH, "two": ROLLING_TH + TH})
        assert world.engine(p).run(RunOptions(to_phase="one")).status == "succeeded"
        one = world.store.last_good(SERVICE, "one")
        assert one is not None
        elbv2 = boto3.client("elbv2", region_name=REGION)

        def break_once_rolled_out() -> None:
            svc = world.ecs.describe_services(cluster=CLUSTER, services=[SERVICE])["services"][0]
            [primary, *others] = svc["deployments"]
            if (
                broken.status == 500
                or others
                or primary["rolloutState"] != "COMPLETED"
                or primary["taskDefinition"] == one.revision_arn
            ):
                return
            broken.status, broken.body = 500, {"status": "broken"}
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:  # the data plane's real health checks see it
                health = elbv2.describe_target_health(TargetGroupArn=world.blue_tg)["TargetHealthDescriptions"]
                if health and all(h["TargetHealth"]["State"] == "unhealthy" for h in health):
                    return
                time.sleep(0.05)

        world.clock.on_sleep.append(break_once_rolled_out)
        out = world.engine(p).run(RunOptions(from_phase="two"))
        assert broken.status == 500
        assert (out.exit_code, out.status) == (1, "rolled_back"), out.message
        [failed] = verdicts(world, out.run_id, "gate_failed")
        assert "unhealthy: Target.ResponseCodeMismatch" in failed.message and "in shine-blue" in failed.message
        assert failed.data["evidence"]["target_group"] == world.blue_tg
        assert "Target.ResponseCodeMismatch" in out.message
        assert world.live() == one.revision_arn
    finally:
        world.close()


@pytest.mark.parametrize("by_name", [True, False], ids=["name", "arn"])
def test_after_blue_green_left_production_on_green_a_rolling_phase_checks_green(
    moto_aws, tmp_path, http_server, by_name: bool
) -> None:
    """Phase one (blue-green) leaves production on shine-green; phase two is rolling with a target-health gate
    and pipeline.yaml still says shine-blue (by name or ARN): the gate checks shine-green, where production and the
    new tasks are (shine-blue has no targets left: checking it could never pass)."""
    world = World(tmp_path, http_server, strategy="blue-green")
    try:
        world.serve("a")
        world.serve("b")
        phases, extra = {"one": "a", "two": "b"}, {"two": ROLLING_TH + TH}
        p = named(world, phases, extra) if by_name else world.pipeline(phases, extra)
        out = world.engine(p).run(RunOptions())
        assert (out.exit_code, out.status) == (0, "succeeded"), out.message
        assert world.forward("production") == {"shine-blue": 0, "shine-green": 1}
        [passed] = verdicts(world, out.run_id, "gate_passed")
        assert passed.data["evidence"]["target_group"] == world.green_tg
        assert "production listener rule" in passed.data["evidence"]["chosen_by"]
        assert "healthy in shine-green" in passed.message
        blue = boto3.client("elbv2", region_name=REGION).describe_target_health(TargetGroupArn=world.blue_tg)
        assert not blue["TargetHealthDescriptions"]  # the configured default would have had nothing to check
        assert world.live() == world.store.last_good(SERVICE, "two").revision_arn  # type: ignore[union-attr]
    finally:
        world.close()


def test_a_group_named_in_the_gate_is_checked_as_named(moto_aws, tmp_path, http_server) -> None:
    """A gate that names its own group (here by name) is not redirected to the service's production group."""
    world = World(tmp_path, http_server, strategy="rolling")
    try:
        world.serve("a")
        aws = AwsContext(region=REGION)
        ctx = GateContext(CLUSTER, SERVICE, world.live(), 5000, aws=aws)
        gate = TargetHealthGate(target_group_arn="shine-green")
        assert target_health.target_group(gate, ctx) == (world.green_tg, "the name shine-green")
        v = target_health.evaluate(gate, ctx)
        assert v.status == "inconclusive" and "no targets registered in shine-green" in v.summary
        missing = target_health.evaluate(TargetHealthGate(target_group_arn="no-such-group"), ctx)
        assert missing.status == "failed" and missing.terminal and "no-such-group not found" in missing.summary
    finally:
        world.close()


def test_the_production_group_costs_one_describe_services_and_one_describe_rules_at_most(
    moto_aws, tmp_path, http_server
) -> None:
    """What the gate asks AWS to find the group: DescribeServices, DescribeRules (the service alternates between two
    groups), then DescribeTargetHealth; a service entry without an alternate group needs no DescribeRules."""
    world = World(tmp_path, http_server, strategy="rolling")
    try:
        world.serve("a")
        for _ in range(5):
            world.agent.reconcile_once()
        aws = AwsContext(region=REGION)
        calls: list[str] = []
        aws.record_calls(calls)
        ctx = GateContext(CLUSTER, SERVICE, world.live(), 5000, aws=aws)
        gate = TargetHealthGate(target_group_arn="shine-blue", from_service=True)
        v = target_health.evaluate(gate, ctx)
        assert v.evidence["target_group"] == world.blue_tg, v
        assert calls == ["ecs:DescribeServices", "elbv2:DescribeRules", "elbv2:DescribeTargetHealth"]
        plain = {"targetGroupArn": world.blue_tg, "containerName": "api", "containerPort": 5000}
        world.ecs.update_service(cluster=CLUSTER, service=SERVICE, loadBalancers=[plain])
        calls.clear()
        v = target_health.evaluate(gate, ctx)
        assert (
            v.evidence["target_group"] == world.blue_tg
            and v.evidence["chosen_by"] == "the service's load balancer entry"
        )
        assert calls == ["ecs:DescribeServices", "elbv2:DescribeTargetHealth"]
        calls.clear()  # a context carrying the service as ecs-rollout last saw it saves the DescribeServices
        ctx.found.service_view = EcsClient(AwsContext(region=REGION)).service(CLUSTER, SERVICE)
        assert target_health.evaluate(gate, ctx).evidence["target_group"] == world.blue_tg
        assert calls == ["elbv2:DescribeTargetHealth"]
    finally:
        world.close()


def test_a_rollback_is_verified_on_the_group_production_returned_to(moto_aws, tmp_path, http_server) -> None:
    """Phase one (blue-green, with a target-health gate) ends on shine-green; phase two's green (shine-blue) fails on
    the test listener and ECS returns traffic to phase one. The rollback is verified with the gates phase one passed,
    target-health included: it checks shine-green, where phase one serves, not pipeline.yaml's shine-blue (emptied by
    the ROLLBACK), so the rollback is verified (exit 1) instead of "rollback failed" (exit 3)."""
    world = World(tmp_path, http_server, strategy="blue-green")
    try:
        world.serve("a")
        world.serve("b", Behaviour(200, {"status": "degraded"}))
        p = world.pipeline({"one": "a", "two": "b"}, {"one": TH.replace("  - ", "gates:\n  - ", 1)})
        first = world.engine(p).run(RunOptions(to_phase="one"))
        assert first.status == "succeeded", first.message
        one = world.store.last_good(SERVICE, "one")
        assert one is not None and any(g.get("from_service") for g in one.gates)
        out = world.engine(p).run(RunOptions(from_phase="two"))
        assert (out.exit_code, out.status) == (1, "rolled_back"), out.message
        [verified] = verdicts(world, out.run_id, "gate_passed")
        assert (
            verified.data["evidence"]["target_group"] == world.green_tg and "healthy in shine-green" in verified.message
        )
        assert world.live() == one.revision_arn
    finally:
        world.close()
