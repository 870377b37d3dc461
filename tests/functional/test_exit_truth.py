"""The exit code tells the truth under faults, and nothing blocks a rollback (issue 25): a state store that
answers 500 from the forward update on, credentials that expire, a throttling storm, a rollback whose answers
were lost. moto's server, a seeded service whose first phase already passed, faults injected with botocore
before-send hooks (server mode: a refused request has no side effect)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ecsbox.agent import EcsAgent
from ecsbox.launchers import InstantLauncher
from orchestrator.aws import session
from orchestrator.aws.session import AwsContext
from orchestrator.config import load_pipeline
from orchestrator.engine.executor import Engine, RunOptions
from orchestrator.state.dynamodb import DynamoStore, create_table
from orchestrator.state.sqlite import SqliteStore
from tests.conftest import Behaviour
from tests.functional.world import ACCOUNT, REGION, AgentClock, seed_service
from tests.harness.pipeline import image, write_pipeline

SERVICE = "shine-api-gateway"
TABLE = "snail-state"


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


class Faults:
    """Switchable faults on the engine's clients: `rule(service, operation, body) -> (status, code) | None`."""

    def __init__(self, aws: AwsContext) -> None:
        self.aws = aws
        self.rules: list[Callable[[str, str, str], tuple[int, str] | None]] = []
        self.injected: list[str] = []
        self.sent: list[str] = []

    def hook(self, service: str) -> None:
        """Route every request of `service`'s client through the rules."""

        def handler(request: Any, event_name: str = "", **_: object) -> Any:
            operation = event_name.rsplit(".", 1)[-1]
            body = request.body.decode() if isinstance(request.body, bytes) else str(request.body or "")
            self.sent.append(f"{service}:{operation}")
            for rule in list(self.rules):
                hit = rule(service, operation, body)
                if hit is not None:
                    self.injected.append(f"{service}:{operation}")
                    return error_response(request.url, hit[0], hit[1], f"injected {hit[1]}")
            return None

        self.aws.client(service).meta.events.register_first(f"before-send.{service}", handler)


@pytest.fixture
def rig(moto_server: str, tmp_path: Path, http_server, monkeypatch: pytest.MonkeyPatch, request):  # noqa: ANN001
    """Phase one (image a) live and good; phase two (image b) answers 500 on /health: a bad release.

    botocore makes one request per call (its retries would really sleep); what the engine does once a call
    has failed is what is under test."""
    import boto3
    import requests

    from ecsbox import extension

    monkeypatch.setitem(session.RETRY_CONFIG, "total_max_attempts", 1)
    requests.post(f"{moto_server}/moto-api/reset", timeout=10)
    url_a, _ = http_server(Behaviour())
    url_b, bad = http_server(Behaviour())
    ports = {image("a"): int(url_a.rsplit(":", 1)[1]), image("b"): int(url_b.rsplit(":", 1)[1])}
    clock = AgentClock()
    clock.agent = EcsAgent(
        InstantLauncher(host_port_for=ports.get), account_id=ACCOUNT, region=REGION, monotonic=clock.monotonic
    )
    ecs = boto3.client("ecs", region_name=REGION, endpoint_url=moto_server)
    seed_service(ecs)
    for _ in range(5):
        clock.agent.reconcile_once()
    path = write_pipeline(tmp_path, {"health-only": "a", "hybrid-ml": "b"})
    pipeline = load_pipeline(path)
    aws = AwsContext(region=REGION, endpoint_url=moto_server)
    backend = getattr(request, "param", "dynamodb")
    if backend == "dynamodb":
        create_table(boto3.client("dynamodb", region_name=REGION, endpoint_url=moto_server), TABLE)
        store: Any = DynamoStore(aws.client("dynamodb"), TABLE)
    else:
        store = SqliteStore(tmp_path / ".snail" / "state.db")
    first = Engine(pipeline, aws, store, clock=clock).run(RunOptions(to_phase="health-only"))
    assert first.exit_code == 0, first.message
    bad.status = 500
    faults = Faults(aws)
    faults.hook("ecs")
    faults.hook("dynamodb")
    engine = Engine(pipeline, aws, store, clock=clock)
    try:
        yield {"engine": engine, "store": store, "ecs": ecs, "faults": faults, "clock": clock, "path": path}
    finally:
        extension.uninstall()


def live(rig: dict[str, Any]) -> str:
    """The revision the service runs, read back from ECS."""
    return rig["ecs"].describe_services(cluster="shine", services=[SERVICE])["services"][0]["taskDefinition"]


def good(rig: dict[str, Any], phase: str) -> str:
    """The revision last marked good for a phase (read while the store answers)."""
    g = rig["store"].last_good(SERVICE, phase)
    assert g is not None
    return g.revision_arn


def after_forward_update(faults: Faults, fault: tuple[int, str], services: tuple[str, ...]) -> None:
    """From phase two's UpdateService on (that request passes), every call to `services` answers `fault`."""
    state = {"on": False}

    def rule(service: str, operation: str, body: str) -> tuple[int, str] | None:
        if state["on"] and service in services:
            return fault
        if service == "ecs" and operation == "UpdateService" and "shine-api-gateway:3" in body:
            state["on"] = True
        return None

    faults.rules.append(rule)


def test_state_store_outage_from_the_forward_update_still_rolls_back(rig: dict[str, Any]) -> None:
    """Every DynamoDB call answers 500 from the forward update on: the bad release is rolled back anyway (the
    target was chosen before the update), exit 1 is true, and the records land on the next run (local spool)."""
    phase_one = good(rig, "health-only")
    after_forward_update(rig["faults"], (500, "InternalServerError"), ("dynamodb",))
    out = rig["engine"].run(RunOptions())
    assert live(rig) == phase_one, out.message
    assert (out.exit_code, out.status) == (1, "rolled_back"), out.message
    assert "not recorded" in out.message
    assert "dynamodb:" in " ".join(rig["faults"].injected)
    rig["faults"].rules.clear()  # the store answers again: the next run replays what this one could not write
    again = Engine(load_pipeline(rig["path"]), rig["engine"].aws, rig["store"], clock=rig["clock"])
    second = again.run(RunOptions())
    assert (second.exit_code, second.status) == (1, "quarantined"), second.message  # the spooled failed mark
    assert live(rig) == phase_one
    replayed = rig["store"].get_run(out.run_id)
    assert replayed is not None and (replayed.status, replayed.exit_code) == ("rolled_back", 1)
    kinds = [e.kind for e in rig["store"].events(SERVICE, out.run_id)]
    assert "decision" in kinds and "rollback_verified" in kinds and kinds[-1] == "run_finished", kinds
    assert rig["store"].lock_state(SERVICE) is None


def during(rig: dict[str, Any], fault: tuple[int, str], start: str, seconds: float, operations: set[str]) -> None:
    """`operations` answer `fault` for `seconds` of the run's clock, from `start` on ("update": phase two's
    forward UpdateService; "rollback": the first UpdateService back to phase one's revision, itself refused)."""
    clock = rig["clock"]
    state: dict[str, float] = {}

    def rule(service: str, operation: str, body: str) -> tuple[int, str] | None:
        wanted = "shine-api-gateway:3" if start == "update" else "shine-api-gateway:2"
        if "from" not in state and operation == "UpdateService" and wanted in body:
            state["from"] = clock.monotonic()
            if start == "update":
                return None
        if "from" in state and operation in operations and clock.monotonic() - state["from"] < seconds:
            return fault
        return None

    rig["faults"].rules.append(rule)


def kinds_and_gates(rig: dict[str, Any], run_id: str) -> list[str]:
    """The trail of one run as `kind` or `kind:gate`."""
    out = []
    for e in rig["store"].events(SERVICE, run_id):
        gate = e.data.get("gate")
        out.append(f"{e.kind}:{gate}" if gate else e.kind)
    return out


THROTTLED = (400, "ThrottlingException")


@pytest.mark.parametrize("rig", ["local"], indirect=True)
def test_a_throttling_storm_inside_the_rollout_gate_is_ridden_out(rig: dict[str, Any]) -> None:
    """30 s of DescribeServices throttling inside a 2-minute ecs-rollout gate: the gate polls on and passes, the
    bad release's http gate fails, the rollback goes through: exit 1, not 3 "could not be started"."""
    phase_one = good(rig, "health-only")
    during(rig, THROTTLED, "update", 30, {"DescribeServices"})
    out = rig["engine"].run(RunOptions())
    assert (out.exit_code, out.status) == (1, "rolled_back"), out.message
    assert live(rig) == phase_one
    trail = kinds_and_gates(rig, out.run_id)
    assert "gate_passed:ecs-rollout" in trail and "gate_failed:http /health" in trail, trail
    assert rig["faults"].injected.count("ecs:DescribeServices") >= 10  # the storm really lasted


@pytest.mark.parametrize("rig", ["local"], indirect=True)
def test_a_throttling_storm_on_the_rollback_is_ridden_out_within_its_budget(rig: dict[str, Any]) -> None:
    """The rollback's UpdateService and DescribeServices throttled for 90 s: the rollback backs off on its own
    budget (its ecs-rollout gate's 2 minutes) and is verified: exit 1."""
    phase_one = good(rig, "health-only")
    during(rig, THROTTLED, "rollback", 90, {"DescribeServices", "UpdateService"})
    out = rig["engine"].run(RunOptions())
    assert (out.exit_code, out.status) == (1, "rolled_back"), out.message
    assert live(rig) == phase_one
    assert rig["faults"].injected.count("ecs:UpdateService") >= 1


@pytest.mark.parametrize("rig", ["local"], indirect=True)
def test_a_rollback_is_abandoned_only_when_its_budget_is_spent(rig: dict[str, Any]) -> None:
    """Throttling that outlasts the rollback's budget: exit 3, saying it was throttled and what is live."""
    during(rig, THROTTLED, "rollback", 10_000, {"DescribeServices", "UpdateService"})
    start = rig["clock"].monotonic()
    out = rig["engine"].run(RunOptions())
    assert (out.exit_code, out.status) == (3, "rollback_failed"), out.message
    assert "could not be started" in out.message and "ThrottlingException" in out.message
    assert "last seen on shine-api-gateway:3, which failed phase hybrid-ml" in out.message
    assert rig["clock"].monotonic() - start >= 120  # the whole budget was spent first
    assert live(rig).endswith("shine-api-gateway:3")


@pytest.mark.parametrize("rig", ["local"], indirect=True)
def test_a_rollback_whose_answers_were_lost_is_read_back_and_verified(rig: dict[str, Any]) -> None:
    """The rollback's UpdateService takes effect but every answer is lost (500): snail reads the service back,
    finds it on the target, verifies it and exits 1 (not 3)."""
    phase_one = good(rig, "health-only")

    def lost(service: str, operation: str, body: str) -> tuple[int, str] | None:
        if operation == "UpdateService" and "shine-api-gateway:2" in body:
            rig["ecs"].update_service(cluster="shine", service=SERVICE, taskDefinition=phase_one)  # it happened
            return (500, "ServerException")
        return None

    rig["faults"].rules.append(lost)
    out = rig["engine"].run(RunOptions())
    assert (out.exit_code, out.status) == (1, "rolled_back"), out.message
    assert live(rig) == phase_one
    assert "rollback_verified" in kinds_and_gates(rig, out.run_id)


EXPIRED = (400, "ExpiredTokenException")


def test_credentials_expiring_after_the_forward_update_exit_3_naming_them(rig: dict[str, Any]) -> None:
    """Every ECS and DynamoDB call answers ExpiredTokenException from the forward update on: the rollback cannot
    happen, so exit 3 names the expired credentials and what is live (never exit 1 with the bad release live)."""
    after_forward_update(rig["faults"], EXPIRED, ("ecs", "dynamodb"))
    out = rig["engine"].run(RunOptions())
    assert live(rig).endswith("shine-api-gateway:3")
    assert (out.exit_code, out.status) == (3, "rollback_failed"), out.message
    assert "credentials expired" in out.message
    assert "last seen on shine-api-gateway:3, which failed phase hybrid-ml" in out.message


def test_credentials_expired_at_the_start_exit_2_nothing_changed(rig: dict[str, Any]) -> None:
    """Credentials already expired when the run starts: exit 2 (the class for "fix your input"), nothing changed."""
    from orchestrator.errors import CredentialsExpired

    before = live(rig)
    rig["faults"].rules.append(lambda service, operation, body: EXPIRED)
    with pytest.raises(CredentialsExpired) as caught:
        rig["engine"].run(RunOptions())
    assert caught.value.exit_code == 2
    assert "credentials expired" in str(caught.value) and "nothing was changed" in str(caught.value)
    assert live(rig) == before
