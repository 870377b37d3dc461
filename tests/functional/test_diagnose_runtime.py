"""The runtime diagnosis after a deploy, against moto: only our revision's failures count (never the old tasks
being drained, nor ours drained by the rollback), the gate's answers (500, refused) and the last log lines speak,
and a refused endpoint says which port to check. The sandbox's look inside a real container is in tests/e2e."""

from __future__ import annotations

import time

import pytest

from orchestrator.doctor import diagnose
from orchestrator.gates.verdict import Verdict
from tests.doctor_env import LOG_GROUP, aws_context, good_env
from tests.functional.test_doctor_diagnose import run_tasks, stop_like_aws
from tests.harness.moto import plain_moto

SCALE_IN = "Scaling activity initiated by (deployment ecs-svc/1234567890)"


@pytest.fixture
def env(tmp_path):
    """The known-good environment on in-process moto, task states pinned."""
    with plain_moto(pinned_tasks=True):
        yield good_env(aws_context(), tmp_path)


def http_verdict(status: int | None, problem: str, body: str = "") -> Verdict:
    """An http gate's failing verdict in the shape the gate records."""
    url = "http://127.0.0.1:32768/health"
    return Verdict(
        "http /health",
        "failed",
        f"{url}: {problem}",
        {"responses": [{"url": url, "status": status, "latency_ms": 3.0, "body": body, "problems": [problem]}]},
    )


def write_logs(env, task_arn: str, lines: list[str]) -> None:  # noqa: ANN001
    """What the awslogs driver would have written for the task's `api` container."""
    logs = env.client("logs")
    stream = f"api/api/{task_arn.rsplit('/', 1)[-1]}"
    try:
        logs.create_log_group(logGroupName=LOG_GROUP)
    except logs.exceptions.ResourceAlreadyExistsException:
        pass
    logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=stream)
    now = int(time.time() * 1000)
    logs.put_log_events(
        logGroupName=LOG_GROUP,
        logStreamName=stream,
        logEvents=[{"timestamp": now - 1000 + i, "message": m} for i, m in enumerate(lines)],
    )


def test_a_500_is_the_diagnosis_not_the_drained_old_task(env) -> None:
    """The field log's mis-diagnosis: an old task drained with exit 137 ('Scaling activity initiated') and our
    own task drained by the rollback are not the cause; the 500 and the app's last log line are."""
    old = env.register(environment=[{"name": "PORT", "value": "5000"}, {"name": "V", "value": "old"}])
    old_tasks = run_tasks(env, count=1, revision=old)
    ours = run_tasks(env, count=2)
    stop_like_aws(env, old_tasks + ours[:1], SCALE_IN, exit_code=137, stop_code="ServiceSchedulerInitiated")
    write_logs(env, ours[1], ["loading model", "ERROR model file /models/m.bin missing (token AKIAABCDEFGHIJKLMNOP)"])
    cause = http_verdict(500, "status 500, expected 200", '{"error": "model failed"}')
    d = diagnose(env.pipeline, env.aws, None, env.taskdef_arn, cause=cause)
    summary = d.summary()
    assert "137" not in summary and "Scaling activity" not in summary
    assert summary.startswith('the application answers HTTP 500 on /health: {"error": "model failed"}')
    assert "last log line: ERROR model file /models/m.bin missing (token ****)" in summary
    assert d.drained_tasks == 1 and d.running_tasks == 1
    assert d.log_lines[-1].endswith("(token ****)")


def test_an_exit_names_the_code_and_the_last_log_line(env) -> None:
    """Our container exits 3: the exit code, ECS's reason and the last line it wrote."""
    ours = run_tasks(env, count=1)
    stop_like_aws(env, ours, "Essential container in task exited", exit_code=3)
    write_logs(env, ours[0], ["starting", "KeyError: 'DATABASE_URL'"])
    d = diagnose(env.pipeline, env.aws, None, env.taskdef_arn, cause=http_verdict(None, "URLError: timed out"))
    assert d.summary() == (
        "container api exited with code 3: Essential container in task exited; last log line: KeyError: 'DATABASE_URL'"
    )


def test_a_refused_endpoint_says_what_to_check(env) -> None:
    """Connection refused (the diagnosis reads AWS only, in the sandbox as on AWS): the summary names the port to
    check, the logs and ECS Exec, instead of 'the application's answers failed the gate'."""
    run_tasks(env, count=1)
    cause = http_verdict(None, "ConnectionRefusedError: [Errno 111] Connection refused")
    d = diagnose(env.pipeline, env.aws, None, env.taskdef_arn, cause=cause)
    s = d.summary()
    assert s.startswith("the endpoint refuses connections on port 5000 (ConnectionRefusedError: [Errno 111]")
    assert "`snail logs`" in s and "aws ecs execute-command" in s and "--container api" in s
    assert "the application's answers failed the gate" not in s


def test_a_reset_counts_as_refused_and_a_pass_through_cause_is_harmless(env) -> None:
    """Docker's proxy resets connections to a port nothing listens on; a cause without evidence is fine."""
    run_tasks(env, count=1)
    d = diagnose(env.pipeline, env.aws, None, env.taskdef_arn, cause=http_verdict(None, "ConnectionResetError: 104"))
    assert d.refused.startswith("ConnectionResetError")
    plain = diagnose(env.pipeline, env.aws, None, env.taskdef_arn, cause=RuntimeError("boom"))
    assert plain.refused == "" and plain.failing_answers == ()


def test_revision_log_lines_for_a_gate_evidence(env) -> None:
    """The failed tasks' last lines (masked) for a gate's evidence, not a healthy task's."""
    from orchestrator.doctor.diagnose import revision_log_lines

    crashed, healthy = run_tasks(env, count=2)
    stop_like_aws(env, [crashed], "Essential container in task exited", exit_code=1)
    write_logs(env, crashed, ["boot", "Traceback: password=hunter2 AKIAABCDEFGHIJKLMNOP"])
    write_logs(env, healthy, ["fine"])
    lines = revision_log_lines(env.aws, "shine", "shine-api-gateway", env.taskdef_arn, n=5)
    assert lines[0] == "boot" and lines[1].startswith("Traceback: ") and "AKIA" not in lines[1]
    assert len(lines) == 2  # the healthy task's "fine" is not the failure's evidence
    assert revision_log_lines(env.aws, "shine", "shine-api-gateway", "arn:nope:task-definition/x:9") == []
