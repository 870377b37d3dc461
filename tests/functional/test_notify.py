"""notify: Slack, webhook and SNS notifications, sent for real (a local HTTP receiver, moto's SNS), masked,
bounded in time, recorded in the trail, and never able to change how a rollout ends."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from orchestrator.config.notify import NotifySpec
from orchestrator.notify.message import Notice
from orchestrator.notify.send import SIGNATURE_HEADER, send_all
from tests.conftest import Behaviour
from tests.functional.world import live
from tests.harness.cli import snail
from tests.harness.http import serve_in_thread
from tests.harness.pipeline import write_pipeline

PLANTED = "AKIAIOSFODNN7EXAMPLE"  # an AWS access key id shape: must never leave in a message


class Receiver:
    """A real HTTP server on 127.0.0.1 that records every POST and answers with scripted status codes."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.requests: list[dict[str, Any]] = []
        self.statuses = list(statuses or [])
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                status = outer.statuses.pop(0) if outer.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        serve_in_thread(self.srv)
        self.url = f"http://127.0.0.1:{self.srv.server_address[1]}"

    def json(self, i: int = -1) -> Any:
        """The i-th request's body as JSON."""
        return json.loads(self.requests[i]["body"])

    def close(self) -> None:
        """Stop serving."""
        self.srv.shutdown()
        self.srv.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A started Receiver, stopped after the test."""
    r = Receiver()
    yield r
    r.close()


class FakePipeline:
    """Just what Notice.build reads."""

    class service:  # noqa: N801
        name, cluster, region = "shine-api-gateway", "shine", "us-east-1"


def notice(status: str = "rolled_back", run_id: str | None = "r-20261129-070849-a118", **env: str) -> Notice:
    """A notice as a failed run would send it, with a planted credential in its message."""
    return Notice.build(
        FakePipeline(),
        command="run",
        status=status,
        exit_code=1,
        message=f"phase hybrid-ml failed: gate http /ml/status: status 500 (key {PLANTED}); rolled back to svc:2",
        diagnosis="task exited 1: ModuleNotFoundError: numpy",
        run_id=run_id,
        env=env,
    )


def test_webhook_body_is_signed_masked_and_links_the_trail(receiver: Receiver) -> None:
    """The webhook gets one JSON body with the outcome, diagnosis and trail; the HMAC header verifies it."""
    spec = NotifySpec("webhook", receiver.url + "/hook", secret="s3cr3t-signing-key", on=("rolled_back",))
    results = send_all([spec], notice(GITHUB_RUN_ID="42", GITHUB_REPOSITORY="acme/shine"))
    assert results[0]["ok"], results
    req = receiver.requests[0]
    body = req["body"]
    expected = "sha256=" + hmac.new(b"s3cr3t-signing-key", body, hashlib.sha256).hexdigest()
    assert req["headers"][SIGNATURE_HEADER] == expected
    assert req["headers"]["X-Snail-Event"] == "rolled_back"
    data = json.loads(body)
    assert data["event"] == "rolled_back" and data["exit_code"] == 1 and data["service"] == "shine-api-gateway"
    assert data["diagnosis"] == "task exited 1: ModuleNotFoundError: numpy"
    assert data["trail"] == "snail trail --run r-20261129-070849-a118"
    assert data["link"] == "https://github.com/acme/shine/actions/runs/42"
    assert PLANTED not in body.decode() and "s3cr3t-signing-key" not in body.decode()


def test_slack_text_names_the_diagnosis_and_trail(receiver: Receiver) -> None:
    """Slack's incoming webhook gets {"text": …}: title, message, diagnosis, trail command; secrets masked."""
    send_all([NotifySpec("slack", receiver.url + "/services/T0/B0/XYZ")], notice())
    text = receiver.json()["text"]
    assert text.startswith("🐌 shine-api-gateway: ROLLED BACK (snail run, exit 1)")
    assert "diagnosis: task exited 1: ModuleNotFoundError: numpy" in text
    assert "snail trail --run r-20261129-070849-a118" in text
    assert PLANTED not in text


def test_defaults_stay_silent_for_noops_and_successes(receiver: Receiver) -> None:
    """Default `on:` sends failures and approvals only: a no-op, a dry run and a success send nothing."""
    spec = NotifySpec("webhook", receiver.url)
    for status in ("noop", "dry_run", "succeeded", "ok"):
        assert send_all([spec], notice(status)) == []
    assert receiver.requests == []
    send_all([spec], notice("paused"))
    assert receiver.json()["event"] == "needs_approval"
    send_all([NotifySpec("webhook", receiver.url, on=("succeeded",))], notice("succeeded"))
    assert receiver.json()["event"] == "succeeded"


def test_server_errors_are_retried_then_succeed() -> None:
    """A 503 then a 500 are retried (tenacity); the third attempt's 200 counts as sent."""
    r = Receiver(statuses=[503, 500, 200])
    try:
        sleeps: list[float] = []
        results = send_all([NotifySpec("webhook", r.url)], notice(), sleep=sleeps.append)
        assert results[0]["ok"] and len(r.requests) == 3 and len(sleeps) == 2
    finally:
        r.close()


def test_a_client_error_is_not_retried() -> None:
    """A 404 (wrong URL) fails at once: retrying cannot help."""
    r = Receiver(statuses=[404])
    try:
        results = send_all([NotifySpec("webhook", r.url)], notice(), sleep=lambda s: None)
        assert not results[0]["ok"] and "HTTP 404" in results[0]["error"] and len(r.requests) == 1
    finally:
        r.close()


def test_a_dead_receiver_fails_in_bounded_time_and_is_recorded(tmp_path: Path) -> None:
    """Nothing listens: send_all returns (never raises) within the budget and the trail gets notify_failed."""
    import socket

    from orchestrator.state.sqlite import SqliteStore

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: connections are refused
    store = SqliteStore(tmp_path / "state.db")
    started = time.monotonic()
    results = send_all([NotifySpec("webhook", f"http://127.0.0.1:{port}/", timeout=1.0)], notice(), store=store)
    assert time.monotonic() - started < 5
    assert not results[0]["ok"] and "cannot reach 127.0.0.1" in results[0]["error"]
    events = store.events("shine-api-gateway", "r-20261129-070849-a118")
    assert [e.kind for e in events] == ["notify_failed"]
    assert "notification to webhook 127.0.0.1 failed" in events[0].message


@mock_aws
def test_sns_topic_receives_the_message() -> None:
    """SNS (moto): the topic's SQS subscriber gets the masked text with an ASCII subject."""
    from orchestrator.aws.session import AwsContext

    sns, sqs = boto3.client("sns", region_name="us-east-1"), boto3.client("sqs", region_name="us-east-1")
    topic = sns.create_topic(Name="deploys")["TopicArn"]
    queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    qarn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=qarn)
    results = send_all([NotifySpec("sns", topic)], notice(), aws=AwsContext(region="us-east-1"))
    assert results[0]["ok"], results
    msg = json.loads(sqs.receive_message(QueueUrl=queue)["Messages"][0]["Body"])
    assert msg["Subject"] == "snail: shine-api-gateway rolled_back (exit 1)"
    assert "diagnosis: task exited 1: ModuleNotFoundError: numpy" in msg["Message"]
    assert PLANTED not in msg["Message"]


NOTIFY = """
notify:
  - webhook: {url}/hook
    secret: "${{HOOK_KEY:-k}}"
    on: [rolled_back, failed, succeeded]
  - webhook: http://127.0.0.1:{dead}/never
    timeout: 1s
"""


def _dead_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_cli_rollback_notifies_and_a_dead_target_changes_nothing(world, receiver: Receiver) -> None:
    """`snail run` whose phase rolls back: exit 1 as before, the webhook gets rolled_back with the trail, the
    dead second target is recorded as notify_failed in the trail; the no-op re-run sends nothing."""
    path = write_pipeline(world["root"], {"health-only": "a", "hybrid-ml": "b"})
    path.write_text(path.read_text() + NOTIFY.format(url=receiver.url, dead=_dead_port()))
    world["serve"]("a"), world["serve"]("b", Behaviour(500, {"error": "ML dependencies failed"}))
    r = snail(world, "--output", "json", "run", "--skip-preflight")
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout)
    assert doc["outcome"] == "rolled_back" and doc["run_id"]
    sent = [json.loads(q["body"]) for q in receiver.requests]
    assert [s["event"] for s in sent] == ["rolled_back"]
    assert sent[0]["run_id"] == doc["run_id"] and sent[0]["trail"] == f"snail trail --run {doc['run_id']}"
    assert "rolled back to shine-api-gateway:2" in sent[0]["message"]
    assert live(world).endswith("shine-api-gateway:2")
    trail = json.loads(snail(world, "--output", "json", "trail", "--run", doc["run_id"]).stdout)
    kinds = [e["kind"] for e in trail["events"]]
    assert "notified" in kinds and "notify_failed" in kinds
    again = snail(world, "run", "--skip-preflight", "--to", "health-only")
    assert again.returncode == 0, again.stderr
    assert len(receiver.requests) == 1  # a no-op is never announced
