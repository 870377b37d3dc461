"""Gates: verdict-to-action mapping, retry policies on a fake clock, and the http gate against real servers."""

from __future__ import annotations

import dataclasses

import pytest

from orchestrator.config.gates import CommandGate, HttpGate, Retries
from orchestrator.gates import GateContext, run_gate
from orchestrator.gates.http import check_response
from orchestrator.gates.retry import poll_until
from orchestrator.gates.verdict import Action, Verdict, decide
from tests.conftest import Behaviour


def ctx_for(clock, url: str | None = None) -> GateContext:
    """A gate context with a fixed endpoint and no AWS."""
    return GateContext(
        cluster="c",
        service="s",
        revision_arn="arn:aws:ecs:us-east-1:1:task-definition/s:2",
        port=5000,
        endpoint=url,
        clock=clock,
    )


@pytest.mark.parametrize(
    "status, terminal, left, action",
    [
        ("passed", False, True, Action.CONTINUE),
        ("passed", False, False, Action.CONTINUE),
        ("failed", True, True, Action.ROLLBACK),
        ("failed", False, True, Action.RETRY),
        ("failed", False, False, Action.ROLLBACK),
        ("inconclusive", False, True, Action.RETRY),
        ("inconclusive", False, False, Action.ROLLBACK),
        ("error", False, True, Action.RETRY),
        ("error", False, False, Action.ROLLBACK),
    ],
)
def test_verdict_to_action(status: str, terminal: bool, left: bool, action: Action) -> None:
    """One mapping decides: pass continues, terminal failure rolls back, the rest retry then roll back."""
    assert decide(Verdict("g", status, "x", terminal=terminal), attempts_left=left) is action


def test_http_gate_healthy_server_passes(http_server, clock) -> None:
    """A server answering 200 passes on the first attempt."""
    url, b = http_server(Behaviour(200, {"status": "ok"}))
    spec = HttpGate(path="/health", expect_status=(200,))
    v = run_gate(spec, ctx_for(clock, url))
    assert v.passed and v.attempts == 1
    assert v.evidence["responses"][0]["url"] == f"{url}/health"
    assert b.hits == 1


def test_http_gate_500_retries_then_fails(http_server, clock) -> None:
    """A server answering 500 is retried `attempts` times with the configured wait, then fails with evidence."""
    url, b = http_server(Behaviour(500, {"error": "boom"}))
    spec = HttpGate(path="/health", expect_status=(200,), retries=Retries(attempts=4, wait=3.0))
    v = run_gate(spec, ctx_for(clock, url))
    assert v.status == "failed" and v.attempts == 4
    assert "status 500, expected 200" in v.summary
    assert '"error": "boom"' in v.evidence["responses"][-1]["body"]
    assert clock.sleeps == [3.0, 3.0, 3.0]
    assert b.hits == 4


def test_http_gate_recovers_after_retries(http_server, clock) -> None:
    """A server that becomes healthy during the retries passes, and the verdict counts the attempts."""
    url, b = http_server(Behaviour(503))
    calls = {"n": 0}
    orig = clock.sleep

    def sleep(s: float) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            b.status = 200
        orig(s)

    clock.sleep = sleep  # type: ignore[method-assign]
    spec = HttpGate(path="/health", retries=Retries(attempts=5, wait=1.0))
    v = run_gate(spec, ctx_for(clock, url))
    assert v.passed and v.attempts == 3


def test_http_gate_wrong_json_fails(http_server, clock) -> None:
    """The field log's ML status: `failed` is not among the allowed values."""
    url, _ = http_server(Behaviour(200, {"status": "failed"}))
    spec = HttpGate(path="/ml/status", expect_json={"status": ("ready", "degraded")})
    v = run_gate(spec, ctx_for(clock, url))
    assert v.status == "failed"
    assert "JSON status='failed', expected 'ready' or 'degraded'" in v.summary


def test_http_gate_slow_server_fails_latency(http_server) -> None:
    """A response slower than max_latency fails (real time: the server really sleeps 0.3s)."""
    from orchestrator.clock import SystemClock

    url, _ = http_server(Behaviour(200, delay=0.3))
    spec = HttpGate(path="/health", max_latency=0.1)
    v = run_gate(spec, ctx_for(SystemClock(), url))
    assert v.status == "failed" and "latency" in v.summary


def test_http_gate_connection_refused(clock) -> None:
    """Nothing listening is a failure that names the connection error."""
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    v = run_gate(HttpGate(path="/health"), ctx_for(clock, f"http://127.0.0.1:{port}"))
    assert v.status == "failed" and "Connection" in v.summary


def test_http_gate_consecutive_successes(http_server, clock) -> None:
    """`consecutive: 3` sends three requests per endpoint and passes only if all three pass."""
    url, b = http_server(Behaviour(200))
    v = run_gate(HttpGate(path="/health", consecutive=3), ctx_for(clock, url))
    assert v.passed and b.hits == 3


def test_http_gate_no_endpoint_is_inconclusive(clock) -> None:
    """With no task endpoints yet the verdict is inconclusive (so it is retried), never passed."""

    class NoTasks:
        def tasks(self, *a, **k):  # noqa: ANN001, ANN002, ANN003
            return []

    ctx = dataclasses.replace(ctx_for(clock), ecs=NoTasks())
    v = run_gate(HttpGate(path="/health", retries=Retries(attempts=3, wait=2)), ctx)
    assert v.status == "inconclusive" and v.attempts == 3


def test_check_response_rules() -> None:
    """Status lists, nested JSON fields, body text and latency are all checked."""
    body = b'{"status": "ready", "model": {"source": "s3"}}'
    spec = HttpGate(path="/", expect_status=(200, 204), expect_json={"model.source": ("s3",)})
    assert check_response(200, body, 0.01, spec) == []
    assert check_response(404, body, 0.01, HttpGate(path="/")) == ["status 404, expected 200"]
    missing = HttpGate(path="/", expect_json={"model.version": (1,)})
    assert check_response(200, body, 0.01, missing) == ["JSON field 'model.version' missing"]
    assert check_response(200, b"not json", 0.01, HttpGate(path="/", expect_json={"a": (1,)})) == ["body is not JSON"]
    assert check_response(200, body, 0.01, HttpGate(path="/", body_contains="nope")) == ["body does not contain 'nope'"]


def test_json_expectation_alone_passes_a_matching_answer(http_server, clock) -> None:
    """`expect: {json: {status: ready}}` without `status:` expects 200 and passes a matching answer (was: None)."""
    import yaml

    from orchestrator.config.gate_schema import gate
    from orchestrator.config.schema import Errors

    errors = Errors("phases/x.yaml")
    spec = gate(yaml.compose("{type: http, path: /ml/status, expect: {json: {status: ready}}}"), "gates[0]", errors)
    assert not errors.items and spec.expect_status == (200,)
    url, _ = http_server(Behaviour(200, {"status": "ready"}))
    assert run_gate(spec, ctx_for(clock, url)).passed


def test_a_task_that_says_it_failed_is_a_verdict_not_retried(http_server, clock) -> None:
    """503 with {"status": "failed"} from a task that is up is final after `consecutive` answers, not 10 retries."""
    url, b = http_server(Behaviour(503, {"status": "failed"}))
    spec = HttpGate(
        path="/ml/status",
        expect_json={"status": ("ready", "degraded")},
        consecutive=2,
        retries=Retries(attempts=10, wait=1.0),
    )
    v = run_gate(spec, ctx_for(clock, url))
    assert v.status == "failed" and v.attempts == 2 and b.hits == 2
    assert clock.sleeps.count(1.0) == 1  # one wait between the two definitive answers, not nine


def test_a_task_still_loading_is_retried(http_server, clock) -> None:
    """503 with {"status": "loading"} can change by waiting: it is retried until attempts run out."""
    url, b = http_server(Behaviour(503, {"status": "loading"}))
    spec = HttpGate(path="/ml/status", expect_json={"status": ("ready",)}, retries=Retries(attempts=4, wait=1.0))
    v = run_gate(spec, ctx_for(clock, url))
    assert v.status == "failed" and v.attempts == 4 and b.hits == 4


def test_watch_ends_a_gate_wait_when_ecs_fails_the_deployment(clock) -> None:
    """While a gate retries, ECS failing our deployment ends the wait at the next attempt with ECS's verdict."""

    class NoTasks:
        def tasks(self, *a, **k):  # noqa: ANN002, ANN003
            return []

    ctx = dataclasses.replace(ctx_for(clock), ecs=NoTasks())
    looks = {"n": 0}

    def watch(_: object) -> Verdict | None:
        looks["n"] += 1
        return (
            Verdict("ecs-rollout", "failed", "deployment FAILED: circuit breaker", terminal=True)
            if looks["n"] >= 2
            else None
        )

    ctx = dataclasses.replace(ctx, watch=watch)
    v = run_gate(HttpGate(path="/health", retries=Retries(attempts=10, wait=2)), ctx)
    assert v.status == "failed" and "circuit breaker" in v.summary and v.attempts == 3


def test_command_gate_exit_status(tmp_path, clock) -> None:
    """A smoke-test command passes on exit 0 and fails with its output otherwise; it sees SNAIL_* variables."""
    ok = run_gate(CommandGate(run='test "$SNAIL_SERVICE" = s'), ctx_for(clock, "http://127.0.0.1:1"))
    assert ok.passed
    bad = run_gate(CommandGate(run="echo smoke test broke >&2; exit 3"), ctx_for(clock, "http://127.0.0.1:1"))
    assert bad.status == "failed" and "exit 3" in bad.summary and "smoke test broke" in bad.summary


def test_gate_timeout_stops_retries(http_server, clock) -> None:
    """A gate's timeout bounds its retries on our clock even when attempts are left: no try starts past it."""
    url, b = http_server(Behaviour(500))
    spec = HttpGate(path="/health", timeout=10.0, retries=Retries(attempts=100, wait=3.0))
    v = run_gate(spec, ctx_for(clock, url))
    assert v.status == "failed" and v.attempts == 4  # t=0,3,6,9; the next would start at 12, past the 10s
    assert b.hits == 4 and clock.monotonic() <= 10.0


def test_exponential_backoff_policy(clock) -> None:
    """backoff > 1 grows the wait up to max_wait."""
    from orchestrator.gates.retry import retrying

    policy = retrying(Retries(attempts=6, wait=1.0, backoff=2.0, max_wait=5.0), clock, retry_if=lambda r: True)
    policy(lambda: "never good")
    assert clock.sleeps == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_poll_until_backs_off_and_times_out(clock) -> None:
    """poll_until polls with growing waits and returns the last result at the timeout."""
    seen = []
    result = poll_until(
        lambda: seen.append(clock.monotonic()) or "waiting",
        lambda r: r == "done",
        clock,
        timeout=60,
        first_wait=2.0,
        max_wait=15.0,
    )
    assert result == "waiting"
    assert clock.sleeps[:3] == [2.0, 3.0, 4.5] and max(clock.sleeps) == 15.0
    assert clock.monotonic() >= 60
