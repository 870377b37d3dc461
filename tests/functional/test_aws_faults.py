"""AWS faults: throttling and 5xx injected into each operation the engine uses (botocore before-send hook,
server mode, so a refused attempt has no side effect). The run completes or rolls back, never crashes, never
double-registers; access denied is not retried and names the permission."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from ecsbox.agent import EcsAgent
from ecsbox.launchers import InstantLauncher
from orchestrator.aws.session import AwsContext
from orchestrator.config import load_pipeline
from orchestrator.engine.executor import Engine, RunOptions
from orchestrator.state.sqlite import SqliteStore
from tests.conftest import Behaviour
from tests.functional.world import ACCOUNT, REGION, AgentClock, seed_service
from tests.harness.pipeline import INJECTED_CLOCK, image, write_pipeline

OPERATIONS = [
    "DescribeServices",
    "DescribeTaskDefinition",
    "ListTaskDefinitions",
    "RegisterTaskDefinition",
    "UpdateService",
    "ListTasks",
    "DescribeTasks",
]


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: object):  # noqa: ANN201
        yield self._body


def error_response(url: str, status: int, code: str, message: str):  # noqa: ANN201
    """An AWS JSON-protocol error as botocore would receive it."""
    from botocore.awsrequest import AWSResponse

    body = json.dumps({"__type": code, "message": message}).encode()
    return AWSResponse(
        url, status, {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": "fault"}, _Raw(body)
    )


@pytest.fixture(scope="module")
def moto_url(moto_server: str):
    """The session's moto server (the engine talks HTTP to it; the agent steps on our fake clock)."""
    yield moto_server
    from ecsbox import extension

    extension.uninstall()


@pytest.fixture
def setup(moto_url, tmp_path, http_server):
    """A seeded service, healthy servers for both images, an engine wired to the server, a fault injector."""
    import boto3
    import requests

    requests.post(f"{moto_url}/moto-api/reset", timeout=10)
    url_a, _ = http_server(Behaviour())
    url_b, _ = http_server(Behaviour())
    ports = {image("a"): int(url_a.rsplit(":", 1)[1]), image("b"): int(url_b.rsplit(":", 1)[1])}
    clock = AgentClock()
    clock.agent = EcsAgent(
        InstantLauncher(host_port_for=ports.get), account_id=ACCOUNT, region=REGION, monotonic=clock.monotonic
    )
    ecs = boto3.client("ecs", region_name=REGION, endpoint_url=moto_url)
    seed_service(ecs)
    for _ in range(5):
        clock.agent.reconcile_once()
    path = write_pipeline(tmp_path, {"health-only": "a", "hybrid-ml": "b"}, timing=INJECTED_CLOCK)
    aws = AwsContext(region=REGION, endpoint_url=moto_url)
    engine = Engine(load_pipeline(path), aws, SqliteStore(tmp_path / "state.db"), clock=clock)
    injected: Counter = Counter()

    def inject(operation: str, status: int, code: str, when=lambda n, body: n % 2 == 1) -> None:  # noqa: ANN001
        seen: Counter = Counter()

        def handler(request, **_: object):  # noqa: ANN001, ANN202
            seen[operation] += 1
            body = request.body.decode() if isinstance(request.body, bytes) else str(request.body or "")
            if when(seen[operation], body):
                injected[operation] += 1
                return error_response(request.url, status, code, f"injected {code}")
            return None

        aws.client("ecs").meta.events.register_first(f"before-send.ecs.{operation}", handler)

    return {"engine": engine, "ecs": ecs, "inject": inject, "injected": injected, "store": engine.store}


def revisions(ecs) -> list[str]:  # noqa: ANN001
    """Every revision of the family."""
    return ecs.list_task_definitions(familyPrefix="shine-api-gateway")["taskDefinitionArns"]


@pytest.mark.parametrize("operation", OPERATIONS)
def test_throttling_on_each_operation_is_absorbed(setup, operation: str) -> None:
    """Every first attempt of `operation` is throttled; botocore's retry policy absorbs it and the run passes."""
    setup["inject"](operation, 400, "ThrottlingException")
    out = setup["engine"].run(RunOptions())
    assert out.exit_code == 0
    assert setup["injected"][operation] >= 1
    assert len(revisions(setup["ecs"])) == 3  # bootstrap + one per phase: never registered twice
    live = setup["ecs"].describe_services(cluster="shine", services=["shine-api-gateway"])["services"][0][
        "taskDefinition"
    ]
    assert live == setup["store"].last_good("shine-api-gateway", "hybrid-ml").revision_arn


def test_5xx_on_every_operation_is_absorbed(setup) -> None:
    """A 503 on every first attempt of every operation: the run still passes, with no duplicate revision."""
    for op in OPERATIONS:
        setup["inject"](op, 503, "ServiceUnavailableException")
    out = setup["engine"].run(RunOptions())
    assert out.exit_code == 0
    assert set(setup["injected"]) == set(OPERATIONS)
    assert len(revisions(setup["ecs"])) == 3


def test_persistent_failure_mid_rollout_rolls_back(setup, monkeypatch) -> None:
    """UpdateService to phase two's revision keeps failing: after the retries the run stops, says nothing was deployed
    (the service never left phase one's good revision, so there is nothing to roll back), exit 1, no traceback."""
    monkeypatch.setitem(__import__("orchestrator.aws.session", fromlist=["x"]).RETRY_CONFIG, "total_max_attempts", 2)
    from orchestrator.aws.ecs import EcsClient

    setup["engine"].aws._clients.clear()  # new clients pick up the smaller retry budget
    setup["engine"].ecs = EcsClient(setup["engine"].aws)
    setup["inject"]("UpdateService", 500, "ServerException", when=lambda n, body: "shine-api-gateway:3" in body)
    out = setup["engine"].run(RunOptions())
    assert (out.exit_code, out.status) == (1, "failed")
    assert "ecs:UpdateService failed: ServerException" in out.message and "nothing was deployed" in out.message
    assert setup["injected"]["UpdateService"] == 2  # both attempts of the one call, then no more
    live = setup["ecs"].describe_services(cluster="shine", services=["shine-api-gateway"])["services"][0][
        "taskDefinition"
    ]
    assert live == setup["store"].last_good("shine-api-gateway", "health-only").revision_arn
    kinds = [
        s.outcome
        for s in setup["store"].steps(setup["store"].runs("shine-api-gateway")[0].run_id)
        if s.kind == "update_service"
    ]
    assert kinds == ["ok", "failed"]  # the state store says exactly which update did not happen


def test_access_denied_is_not_retried_and_names_the_permission(setup) -> None:
    """AccessDeniedException on phase two's update: one attempt, names ecs:UpdateService, says it changed nothing."""
    setup["inject"]("UpdateService", 400, "AccessDeniedException", when=lambda n, body: "shine-api-gateway:3" in body)
    out = setup["engine"].run(RunOptions())
    assert setup["injected"]["UpdateService"] == 1
    assert out.exit_code == 1 and "the caller needs permission for ecs:UpdateService" in out.message
    assert "nothing was deployed, the service stays on shine-api-gateway:2" in out.message


def test_failure_before_the_update_changes_nothing_and_says_so(setup) -> None:
    """RegisterTaskDefinition denied for phase two: exit 1 (not 3: nothing changed), nothing was deployed, recorded."""

    setup["inject"](
        "RegisterTaskDefinition", 400, "AccessDeniedException", when=lambda n, body: image("b").split("@")[1] in body
    )
    out = setup["engine"].run(RunOptions())
    assert out.exit_code == 1 and "ecs:RegisterTaskDefinition" in out.message
    assert "phase hybrid-ml failed before it changed the service" in out.message
    assert "nothing was deployed, the service stays on shine-api-gateway:2" in out.message
    live = setup["ecs"].describe_services(cluster="shine", services=["shine-api-gateway"])["services"][0][
        "taskDefinition"
    ]
    assert live == setup["store"].last_good("shine-api-gateway", "health-only").revision_arn
    run = setup["store"].runs("shine-api-gateway")[0]
    assert (run.status, run.exit_code) == ("failed", 1)
    assert any(e.kind == "phase_failed" for e in setup["store"].events("shine-api-gateway", run.run_id))
