"""Container logs in CloudWatch Logs: the adapter on moto, `last_log_lines`, the sandbox's log shipper, and
`snail logs` as a separate process against moto's server."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone
from typing import Any

import boto3
from moto import mock_aws

from ecsbox.launchers import LogShipper, MotoLogsSink
from orchestrator.aws.logs import LogsClient, awslogs_targets, last_log_lines
from orchestrator.aws.session import AwsContext
from tests.functional.world import REGION
from tests.harness.cli import snail
from tests.harness.pipeline import image, write_pipeline

GROUP = "/ecs/shine-api-gateway"


def taskdef(prefix: str | None = "ecs", region: str = REGION) -> dict[str, Any]:
    """A task definition whose `api` container logs with awslogs (and a sidecar that does not)."""
    opts = {"awslogs-group": GROUP, "awslogs-region": region}
    if prefix:
        opts["awslogs-stream-prefix"] = prefix
    return {
        "family": "shine-api-gateway",
        "containerDefinitions": [
            {"name": "api", "image": image("a"), "logConfiguration": {"logDriver": "awslogs", "options": opts}},
            {"name": "sidecar", "image": image("b")},
        ],
    }


def write_stream(group: str, stream: str, events: list[tuple[int, str]]) -> None:
    """Container output as the awslogs driver writes it (ECS's agent does that on AWS: snail only reads)."""
    logs = boto3.client("logs", region_name=REGION)
    if not logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]:
        logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    logs.put_log_events(
        logGroupName=group, logStreamName=stream, logEvents=[{"timestamp": t, "message": m} for t, m in events]
    )


def test_awslogs_targets_and_stream_names() -> None:
    """Group, region and `prefix/container/task-id` streams come from the task definition; no prefix, no name."""
    (t,) = awslogs_targets(taskdef())
    assert (t.container, t.group, t.region) == ("api", GROUP, REGION)
    assert t.stream("0123abcd") == "ecs/api/0123abcd" and t.stream_family_prefix == "ecs/api/"
    (bare,) = awslogs_targets(taskdef(prefix=None))
    assert bare.stream("0123abcd") is None
    assert awslogs_targets({"containerDefinitions": [{"name": "x"}]}) == []


@mock_aws
def test_logs_client_round_trip_and_last_log_lines_masked() -> None:
    """Lines written to two tasks' streams come back in order; last_log_lines keeps the last n, masked."""
    aws = AwsContext(region=REGION)
    client = LogsClient(aws)
    t0 = int(time.time() * 1000) - 10_000
    write_stream(GROUP, "ecs/api/task1", [(t0 + i * 10, f"task1 line {i}") for i in range(30)])
    write_stream(GROUP, "ecs/api/task2", [(t0 + 5, "task2 boom AKIAABCDEFGHIJKLMNOP")])
    assert [x.message for x in client.tail(REGION, GROUP, "ecs/api/task1", 3)] == [
        "task1 line 27",
        "task1 line 28",
        "task1 line 29",
    ]
    assert client.tail(REGION, GROUP, "ecs/api/nope", 3) == []
    lines = client.filter(REGION, GROUP, stream_prefix="ecs/api/", start_ms=t0)
    assert len(lines) == 31 and lines[1].message == "task2 boom AKIAABCDEFGHIJKLMNOP" and lines[1].task_id == "task2"
    one = last_log_lines(aws, taskdef(), ["arn:aws:ecs:us-east-1:123456789012:task/shine/task2"], n=5)
    assert one == ["task2 boom ****"]
    both = last_log_lines(aws, taskdef(), ["task1", "task2"], n=31)
    assert len(both) == 31 and both[0] == "api/task1: task1 line 0" and both[1] == "api/task2: task2 boom ****"
    assert last_log_lines(aws, taskdef(), ["task1", "task2"], n=2) == ["task1 line 28", "task1 line 29"]
    assert last_log_lines(aws, taskdef(prefix=None), ["task1"]) == []
    assert last_log_lines(aws, {"containerDefinitions": []}, ["task1"]) == []


class _FakeDocker:
    """docker.APIClient.logs(stream=True, follow=True, timestamps=True): chunks that split lines anywhere."""

    def __init__(self, chunks: list[bytes], gate: threading.Event) -> None:
        self.api = self
        self.chunks = chunks
        self.gate = gate

    def logs(self, container_id: str, **kwargs: Any) -> Any:
        assert kwargs == {"stream": True, "follow": True, "timestamps": True}
        yield self.chunks[0]
        self.gate.wait(5)  # the container keeps running for a while
        yield from self.chunks[1:]


@mock_aws
def test_log_shipper_ships_while_running_and_everything_at_exit() -> None:
    """The shipper plays the awslogs driver: lines reach moto's Logs within a flush interval while the container
    runs, a line split across chunks arrives whole, and the rest is shipped when the container's log ends."""
    gate = threading.Event()
    docker = _FakeDocker(
        [
            b"2026-11-29T07:08:49.100000000Z starting on port 5000\n2026-11-29T07:08:49.2",
            b"00000000Z Traceback (most recent call last):\n2026-11-29T07:08:49.300000000Z RuntimeError: boom",
        ],
        gate,
    )
    shipper = LogShipper(MotoLogsSink(), interval=0.05)
    assert shipper.follow(docker, "c0ffee", "task-abc", taskdef()["containerDefinitions"][0])
    assert not shipper.follow(docker, "c0ffee", "task-abc", taskdef()["containerDefinitions"][1])  # no awslogs
    logs = boto3.client("logs", region_name=REGION)

    def messages() -> list[str]:
        try:
            out = logs.get_log_events(logGroupName=GROUP, logStreamName="ecs/api/task-abc", startFromHead=True)
        except logs.exceptions.ResourceNotFoundException:
            return []
        return [e["message"] for e in out["events"]]

    deadline = time.monotonic() + 5
    while messages() != ["starting on port 5000"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert messages() == ["starting on port 5000"]
    gate.set()
    shipper.close()
    assert messages() == ["starting on port 5000", "Traceback (most recent call last):", "RuntimeError: boom"]
    first = logs.get_log_events(logGroupName=GROUP, logStreamName="ecs/api/task-abc", startFromHead=True)["events"]
    when = datetime(2026, 11, 29, 7, 8, 49, 100000, tzinfo=timezone.utc)
    assert first[0]["timestamp"] == int(when.timestamp() * 1000)  # Docker's timestamp, not the shipping time


def test_snail_logs_reads_the_live_revisions_task_streams(world) -> None:  # noqa: ANN001
    """`snail logs` finds the live revision's tasks, reads their `prefix/api/task-id` streams and prints them;
    a revision without awslogs says so; --follow is interruptible (covered by the sandbox e2e)."""
    write_pipeline(world["root"], {"health-only": "a"})
    ecs = world["ecs"]
    td = taskdef()
    td["containerDefinitions"] = [
        {**td["containerDefinitions"][0], "memory": 256, "essential": True, "image": image("0")}
    ]
    arn = ecs.register_task_definition(networkMode="bridge", **td)["taskDefinition"]["taskDefinitionArn"]
    ecs.update_service(cluster="shine", service="shine-api-gateway", taskDefinition=arn)
    deadline = time.monotonic() + 20
    tasks: list[str] = []
    while not tasks and time.monotonic() < deadline:
        arns = ecs.list_tasks(cluster="shine", serviceName="shine-api-gateway")["taskArns"]
        described = ecs.describe_tasks(cluster="shine", tasks=arns).get("tasks", []) if arns else []
        tasks = [
            t["taskArn"].rsplit("/", 1)[-1]
            for t in described
            if t["taskDefinitionArn"] == arn and t["lastStatus"] == "RUNNING"
        ]
        time.sleep(0.2)
    assert tasks, "the agent started no task on the awslogs revision"
    logs = boto3.client("logs", region_name=REGION, endpoint_url=world["url"])
    logs.create_log_group(logGroupName=GROUP)
    stream = f"ecs/api/{tasks[0]}"
    logs.create_log_stream(logGroupName=GROUP, logStreamName=stream)
    now = int(time.time() * 1000)
    logs.put_log_events(
        logGroupName=GROUP,
        logStreamName=stream,
        logEvents=[
            {"timestamp": now - 2000, "message": "listening on 0.0.0.0:5000"},
            {"timestamp": now - 1000, "message": "GET /health 500 \x1b[31mred\x1b[0m"},
        ],
    )
    r = snail(world, "logs")
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert out[0].startswith("# live revision shine-api-gateway:2: 2 line(s)")
    assert out[1].endswith(f"api/{tasks[0][:8]}: listening on 0.0.0.0:5000")
    assert out[2].endswith("GET /health 500 red") and "\x1b" not in r.stdout
    r = snail(world, "--output", "json", "logs", "--revision", "1")
    assert r.returncode == 0, r.stderr
    assert '"lines": []' in r.stdout and "no awslogs logConfiguration" in r.stdout
    r = snail(world, "logs", "--phase", "health-only", "--revision", "2")
    assert r.returncode == 2 and "choose one of" in r.stderr
    # --run: the revisions the run deployed, within the run's time window
    from datetime import datetime, timedelta, timezone

    from orchestrator.state.base import RunRecord, TrailEvent
    from orchestrator.state.sqlite import SqliteStore

    store = SqliteStore(world["root"] / ".snail" / "state.db")
    began = datetime.now(timezone.utc) - timedelta(minutes=1)
    store.start_run(RunRecord("r-logs-1", "shine-api-gateway", "run", "running", began.isoformat(timespec="seconds")))
    store.append_event(
        TrailEvent(
            "r-logs-1",
            "shine-api-gateway",
            began.isoformat(timespec="seconds"),
            "service_updated",
            "service shine-api-gateway -> shine-api-gateway:2",
            "health-only",
            {"revision": arn},
        )
    )
    r = snail(world, "logs", "--run", "r-logs-1")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("# run r-logs-1 (shine-api-gateway:2): 2 line(s)") and "listening on" in r.stdout
    r = snail(world, "logs", "--run", "r-nope")
    assert r.returncode == 2 and "no run 'r-nope'" in r.stderr
