"""A slow call inside a gate (issue 25): AWS calls made in a gate are bounded by what is left of the gate's timeout.
One DescribeServices that takes 25 s inside an ecs-rollout gate with `timeout: 2s` used to answer, and pass the
gate, after 25 s. moto's server and the sandbox agent (tests/functional/world.py) behind a delaying proxy."""

from __future__ import annotations

import time
from typing import Any

from orchestrator.aws.ecs import EcsClient
from orchestrator.aws.session import AwsContext
from orchestrator.clock import SystemClock
from orchestrator.config.gates import EcsRolloutGate
from orchestrator.gates import GateContext, run_gate
from tests.functional.slow_proxy import SlowProxy
from tests.functional.world import REGION, live

SERVICE = "shine-api-gateway"


def rollout_gate(world: dict[str, Any], url: str, timeout: float) -> tuple[Any, float]:
    """The ecs-rollout gate on the live (completed) revision, its AWS calls sent to `url`: (verdict, seconds)."""
    aws = AwsContext(region=REGION, endpoint_url=url)
    ctx = GateContext(
        cluster="shine",
        service=SERVICE,
        revision_arn=live(world),
        port=5000,
        ecs=EcsClient(aws),
        aws=aws,
        clock=SystemClock(),
    )
    started = time.monotonic()
    v = run_gate(EcsRolloutGate(timeout=timeout, poll=0.5), ctx)
    return v, time.monotonic() - started


def steady(world: dict[str, Any]) -> None:
    """Wait until the agent has completed the seeded service's deployment (the gate passes when asked directly)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        svc = world["ecs"].describe_services(cluster="shine", services=[SERVICE])["services"][0]
        (primary,) = [d for d in svc["deployments"] if d["status"] == "PRIMARY"]
        if primary.get("rolloutState") == "COMPLETED" and svc["runningCount"] == svc["desiredCount"] >= 1:
            return
        time.sleep(0.2)
    raise AssertionError("the seeded service never settled")


def test_a_slow_describe_inside_a_gate_is_cut_at_the_gates_timeout(world) -> None:
    """Every DescribeServices held 25 s: the 2 s gate ends at its timeout, not passed, its held calls hung up (the
    per-call read timeout fitted in what was left); with the same world answering at once, the same gate passes."""
    steady(world)
    with SlowProxy(world["url"]) as quick:
        v, _ = rollout_gate(world, quick.url, 2.0)
    assert v.passed, v.summary
    with SlowProxy(world["url"], delay=lambda op: 25.0 if op == "DescribeServices" else 0.0) as slow:
        v, took = rollout_gate(world, slow.url, 2.0)
        assert not v.passed, f"passed after {took:.1f}s: {v.summary}"
        assert took < 12, f"a 2s gate took {took:.1f}s"
        assert "timed out" in v.summary, v.summary
        assert "DescribeServices" not in slow.forwarded, "a held call was answered"
        deadline = time.monotonic() + 10
        while slow.held and len(slow.dropped) < len(slow.held) and time.monotonic() < deadline:
            time.sleep(0.05)  # the proxy notices a hang-up within 50 ms
        assert slow.dropped and len(slow.dropped) == len(slow.held), (slow.held, slow.dropped)
