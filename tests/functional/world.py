"""A moto world for engine tests: moto's ECS (with the sandbox extension) driven by the sandbox agent with an
InstantLauncher, on a fake clock whose every sleep lets the agent take one step. No real waiting, no Docker."""

from __future__ import annotations

from collections.abc import Callable

import boto3
import pytest

from orchestrator.clock import FakeClock
from tests.harness.pipeline import image

ACCOUNT = "123456789012"
REGION = "us-east-1"


class AgentClock(FakeClock):
    """Fake time; each sleep advances it and lets the agent reconcile once (the world moves while we wait)."""

    def __init__(self) -> None:
        super().__init__()
        self.agent = None
        self.on_sleep: list[Callable[[], None]] = []

    def sleep(self, seconds: float) -> None:
        """Advance time, then let the agent and any test hook act."""
        super().sleep(seconds)
        if self.agent is not None:
            self.agent.reconcile_once()
        for hook in list(self.on_sleep):
            hook()


def seed_service(ecs, desired: int = 1, circuit_breaker: bool = True) -> str:  # noqa: ANN001
    """Cluster + a bootstrap revision + the service on it; returns the bootstrap revision ARN."""
    ecs.create_cluster(clusterName="shine")
    td = ecs.register_task_definition(
        family="shine-api-gateway",
        networkMode="bridge",
        containerDefinitions=[
            {
                "name": "api",
                "image": image("0"),
                "memory": 256,
                "essential": True,
                "portMappings": [{"containerPort": 5000, "protocol": "tcp"}],
            }
        ],
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(
        cluster="shine",
        serviceName="shine-api-gateway",
        taskDefinition=td,
        desiredCount=desired,
        deploymentConfiguration={
            "deploymentCircuitBreaker": {"enable": circuit_breaker, "rollback": False},
            "maximumPercent": 200,
            "minimumHealthyPercent": 100,
        },
    )
    return td


def boto(service: str):  # noqa: ANN201
    """A boto3 client in the test's moto account."""
    return boto3.client(service, region_name=REGION)


@pytest.fixture(scope="module")
def agent_server(moto_server):
    """The session's moto server and an agent for it (real time: 0.05 s rounds, a task is steady 0.1 s after it
    runs, so a rollout completes well within a second). Made once per module, started only by `server`."""
    from ecsbox.agent import EcsAgent
    from ecsbox.launchers import InstantLauncher

    ports: dict[str, int] = {}
    fail: dict[str, str] = {}
    agent = EcsAgent(
        InstantLauncher(host_port_for=lambda img: ports.get(img), fail_reason_for=lambda img: fail.get(img)),
        account_id=ACCOUNT,
        region=REGION,
        interval=0.05,
        steady_after=0.1,
    )
    yield {"url": moto_server, "ports": ports, "fail": fail, "agent": agent}
    from ecsbox import extension

    extension.uninstall()  # the agent patched moto's ECS; later tests may want plain moto


@pytest.fixture
def server(agent_server):
    """The moto server with the agent moving deployments, for this test only.

    The server runs in this process, so its backends are the ones in-process `mock_aws()` uses: an agent left
    running after its test would also move the deployments of the next test's injected-clock world, with its own
    launcher (the old test's ports, closed by then). Files mix both kinds (test_verdicts: 1 run in 2 under load,
    "Connection refused" in the rollback's verification), so the agent runs only while a test that asked for it
    does."""
    agent = agent_server["agent"]
    agent.start()
    try:
        yield agent_server
    finally:
        agent.stop(stop_tasks=True)


@pytest.fixture
def world(server, tmp_path, http_server):
    """A fresh moto state, a seeded service, HTTP servers per image and a pipeline folder."""
    import requests

    from tests.conftest import Behaviour

    requests.post(f"{server['url']}/moto-api/reset", timeout=10)
    server["fail"].clear()
    ecs = boto3.client("ecs", region_name=REGION, endpoint_url=server["url"])
    seed_service(ecs)

    def serve(tag: str, behaviour: Behaviour | None = None) -> None:
        url, _ = http_server(behaviour or Behaviour())
        server["ports"][image(tag)] = int(url.rsplit(":", 1)[1])

    def fail(tag: str, reason: str) -> None:
        server["fail"][image(tag)] = reason

    return {"ecs": ecs, "url": server["url"], "root": tmp_path, "serve": serve, "fail": fail}


def live(world) -> str:
    """The service's task definition, read through boto3."""
    return world["ecs"].describe_services(cluster="shine", services=["shine-api-gateway"])["services"][0][
        "taskDefinition"
    ]
