"""Gates that cannot be fooled or hung (issue 25): JSON types, redirects, URL credentials, a server that drips its
answer, a gate's timeout over `consecutive`, and command gates' process groups — real servers on 127.0.0.1 and real
subprocesses."""

from __future__ import annotations

import base64
import dataclasses
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from orchestrator.config.gate_schema import gate
from orchestrator.config.gates import CommandGate, HttpGate, Retries, gate_from_data
from orchestrator.config.schema import Errors
from orchestrator.gates import GateContext, run_gate
from orchestrator.gates.http import check_response

Answer = Callable[[BaseHTTPRequestHandler], None]


@pytest.fixture
def serve() -> Iterator[Callable[[Answer], str]]:
    """Start a real HTTP server on 127.0.0.1 whose every GET is answered by the given function; returns its base."""
    servers: list[ThreadingHTTPServer] = []

    def start(answer: Answer) -> str:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                answer(self)

            def log_message(self, *args: object) -> None:
                pass

        srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        srv.daemon_threads = True
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return f"http://127.0.0.1:{srv.server_address[1]}"

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


def _json(handler: BaseHTTPRequestHandler, doc: object, status: int = 200, **headers: str) -> None:
    data = json.dumps(doc).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    for k, v in headers.items():
        handler.send_header(k, v)
    handler.end_headers()
    handler.wfile.write(data)


def ctx_for(clock, url: str | None = None) -> GateContext:  # noqa: ANN001
    """A gate context with a fixed endpoint and no AWS."""
    return GateContext("c", "s", "arn:aws:ecs:us-east-1:1:task-definition/s:2", 5000, endpoint=url, clock=clock)


# ---- JSON expectations compare types ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expect", "body"),
    [
        ({"ready": (True,)}, {"ready": 1}),
        ({"errors": (0,)}, {"errors": False}),
        ({"ok": (False,)}, {"ok": 0}),
        ({"count": (1,)}, {"count": True}),
        ({"deps.db.up": (True,)}, {"deps": {"db": {"up": 1}}}),
        ({"status": ("1",)}, {"status": 1}),
        ({"value": (None,)}, {"value": 0}),
    ],
    ids=["true-vs-1", "0-vs-false", "false-vs-0", "1-vs-true", "nested-true-vs-1", "str-vs-int", "null-vs-0"],
)
def test_json_expectation_needs_the_same_type_not_python_equality(expect: dict, body: dict) -> None:
    """`ready: true` does not pass on 1, nor `errors: 0` on false (Python's 1 == True), nested fields too."""
    problems = check_response(200, json.dumps(body).encode(), 0.0, HttpGate(path="/", expect_json=expect))
    assert problems and "JSON" in problems[0], problems


@pytest.mark.parametrize(
    ("expect", "body"),
    [
        ({"ready": (True,)}, {"ready": True}),
        ({"errors": (0,)}, {"errors": 0}),
        ({"ratio": (1,)}, {"ratio": 1.0}),
        ({"deps.db.up": (True, "yes")}, {"deps": {"db": {"up": "yes"}}}),
        ({"value": (None,)}, {"value": None}),
    ],
)
def test_json_expectation_of_the_same_type_passes(expect: dict, body: dict) -> None:
    """A boolean matches a boolean, a number any equal number (1 and 1.0), a string the same string, null null."""
    assert check_response(200, json.dumps(body).encode(), 0.0, HttpGate(path="/", expect_json=expect)) == []


def test_json_gate_against_a_server_answering_1_for_true_fails(serve, clock) -> None:  # noqa: ANN001
    """Through a real server: `expect: {json: {ready: true}}` fails on `{"ready": 1}`."""
    base = serve(lambda h: _json(h, {"ready": 1}))
    v = run_gate(HttpGate(path="/health", expect_json={"ready": (True,)}), ctx_for(clock, base))
    assert v.status == "failed" and "JSON ready=1, expected True" in v.summary


# ---- redirects ---------------------------------------------------------------------------------------------------


def test_a_redirect_is_not_followed_by_default_and_3xx_does_not_pass(serve, clock) -> None:  # noqa: ANN001
    """A 302 to another (healthy) host is the answer: the gate fails and the other host is never asked."""
    asked: list[str] = []
    healthy = serve(lambda h: (asked.append(h.path), _json(h, {"status": "ok"})))
    base = serve(lambda h: _json(h, {}, 302, Location=f"{healthy}/health"))
    assert not any(300 <= s < 400 for s in HttpGate().expect_status)
    v = run_gate(HttpGate(path="/health"), ctx_for(clock, base))
    assert v.status == "failed" and "status 302" in v.summary
    assert f"redirect to {healthy}/health not followed" in v.summary
    assert asked == []


def test_follow_redirects_follows_and_says_another_host_in_the_evidence(serve, clock) -> None:  # noqa: ANN001
    """With follow_redirects the hop to another host is followed, said in the summary and evidence, and the
    URL's credentials are not sent there."""
    seen: list[str | None] = []
    healthy = serve(lambda h: (seen.append(h.headers.get("Authorization")), _json(h, {"status": "ok"})))
    base = serve(lambda h: _json(h, {}, 302, Location=f"{healthy}/health"))
    creds = base.replace("http://", "http://probe:redirect-pass-1234@")
    v = run_gate(HttpGate(url=f"{creds}/health", follow_redirects=True), ctx_for(clock))
    assert v.passed, v.summary
    assert f"redirected to another host: {healthy}/health" in v.summary
    assert v.evidence["redirected_to_other_host"] == [f"{healthy}/health"]
    hop = v.evidence["responses"][0]["redirects"][0]
    assert hop == {"status": 302, "to": f"{healthy}/health", "other_host": True}
    assert seen == [None]


def test_follow_redirects_on_the_same_host_is_not_flagged(serve, clock) -> None:  # noqa: ANN001
    """A redirect to another path of the same host is followed quietly."""

    def answer(h: BaseHTTPRequestHandler) -> None:
        if h.path == "/old":
            _json(h, {}, 301, Location="/health")
        else:
            _json(h, {"status": "ok"})

    base = serve(answer)
    v = run_gate(HttpGate(path="/old", follow_redirects=True), ctx_for(clock, base))
    assert v.passed and "another host" not in v.summary
    assert v.evidence["responses"][0]["redirects"][0]["other_host"] is False


def test_follow_redirects_is_a_typed_field_read_from_yaml_and_recorded() -> None:
    """`follow_redirects: true` loads into the spec, defaults to false, is refused when not a boolean, and survives
    the good mark's round trip."""
    errors = Errors("phases/p.yaml")
    spec = gate(yaml.compose("{type: http, path: /h, follow_redirects: true}"), "gates[0]", errors)
    assert not errors.items and isinstance(spec, HttpGate) and spec.follow_redirects is True
    assert gate_from_data(spec.to_dict()) == spec
    plain = gate(yaml.compose("{type: http, path: /h}"), "gates[0]", errors)
    assert plain.follow_redirects is False
    bad = gate(yaml.compose("{type: http, path: /h, follow_redirects: sometimes}"), "gates[0]", errors)
    assert bad is not spec and any("follow_redirects" in str(e) for e in errors.items)


# ---- URLs with credentials ---------------------------------------------------------------------------------------


def test_a_url_with_credentials_is_requested_with_them_and_shown_masked(serve, clock) -> None:  # noqa: ANN001
    """`user:password@` is sent (as basic auth) to the real host; only the evidence is masked (today: gaierror
    for the host `****@127.0.0.1`)."""
    seen: list[str | None] = []
    base = serve(lambda h: (seen.append(h.headers.get("Authorization")), _json(h, {"status": "ok"})))
    url = base.replace("http://", "http://probe:p%40ss-Word-42@") + "/health"
    v = run_gate(HttpGate(url=url), ctx_for(clock))
    assert v.passed, v.summary
    assert seen == ["Basic " + base64.b64encode(b"probe:p@ss-Word-42").decode()]
    shown = json.dumps(v.evidence)
    assert "p%40ss-Word-42" not in shown and "****@127.0.0.1" in shown


# ---- time limits that hold ---------------------------------------------------------------------------------------


def _dripping(finished: threading.Event, where: str) -> Answer:
    """A server that drips 200 bytes of its answer (headers or body) one every 50 ms: 10 s in all."""

    def answer(h: BaseHTTPRequestHandler) -> None:
        body = b"x" * 200
        try:
            if where == "headers":
                h.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                for _ in range(200):
                    h.wfile.write(b"y")
                    h.wfile.flush()
                    time.sleep(0.05)
                h.wfile.write(b"\r\nContent-Length: 200\r\n\r\n" + body)
            else:
                h.send_response(200)
                h.send_header("Content-Length", str(len(body)))
                h.end_headers()
                for i in range(len(body)):
                    h.wfile.write(body[i : i + 1])
                    h.wfile.flush()
                    time.sleep(0.05)
            finished.set()
        except OSError:  # the gate hung up: what the test wants
            pass

    return answer


@pytest.mark.parametrize("where", ["body", "headers"])
def test_request_timeout_bounds_the_whole_request_not_each_read(serve, clock, where: str) -> None:  # noqa: ANN001
    """A server dripping its answer (each read well inside the timeout) fails the request at request_timeout,
    long before it has sent everything."""
    finished = threading.Event()
    base = serve(_dripping(finished, where))
    v = run_gate(HttpGate(path="/health", request_timeout=0.5), ctx_for(clock, base))
    assert v.status == "failed" and "TimeoutError" in v.summary, v.summary
    assert not finished.is_set()


def test_gate_timeout_bounds_consecutive_requests(serve, clock) -> None:  # noqa: ANN001
    """`timeout: 5s` with `consecutive: 40` (0.5 s apart) stops at 5 s on the gate's clock, not after 40 requests."""
    hits: list[int] = []
    base = serve(lambda h: (hits.append(1), _json(h, {"status": "ok"})))
    spec = HttpGate(path="/health", timeout=5.0, consecutive=40, interval=0.5, retries=Retries(attempts=3, wait=1))
    v = run_gate(spec, ctx_for(clock, base))
    assert v.status == "failed" and "timeout (5s) ran out after 10 of 40" in v.summary, v.summary
    assert len(hits) == 10 and clock.monotonic() <= 5.0


# ---- command gates -----------------------------------------------------------------------------------------------


def _alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def _gone(pid: int, within: float = 10.0) -> bool:
    """Wait for the process to end (SIGKILL is asynchronous); True once it has."""
    end = time.monotonic() + within
    while _alive(pid) and time.monotonic() < end:
        time.sleep(0.02)
    return not _alive(pid)


def _kill(pid: int) -> None:
    import os
    import signal

    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def test_command_timeout_ends_the_whole_process_group(tmp_path, clock) -> None:  # noqa: ANN001
    """On timeout the script's children go too: no `sleep 397` left behind."""
    pidfile = tmp_path / "child.pid"
    script = f"sleep 397 >/dev/null 2>&1 & echo $! > {pidfile}; sleep 397"
    v = run_gate(CommandGate(run=script, timeout=1.0), ctx_for(clock, "http://127.0.0.1:1"))
    child = int(pidfile.read_text())
    try:
        assert v.status == "failed" and "timed out" in v.summary
        assert _gone(child), "the script's background child outlived the gate"
    finally:
        _kill(child)


def test_command_that_exits_0_leaving_a_child_on_stdout_passes_by_its_exit(tmp_path, clock) -> None:  # noqa: ANN001
    """A script that exits 0 at once while a background child holds stdout is judged by its exit status (and the
    child is ended after the output grace), not reported as a timeout."""
    pidfile = tmp_path / "child.pid"
    script = f"sleep 397 & echo $! > {pidfile}; echo smoke ok; exit 0"
    v = run_gate(CommandGate(run=script, timeout=20.0), ctx_for(clock, "http://127.0.0.1:1"))
    child = int(pidfile.read_text())
    try:
        assert v.passed, v.summary
        assert "smoke ok" in v.evidence["output"]
        assert _gone(child)
    finally:
        _kill(child)


def test_command_gate_timeout_is_bounded_by_the_gate_deadline(clock) -> None:  # noqa: ANN001
    """A command's own time limit never exceeds what is left of the gate's timeout."""
    ctx = dataclasses.replace(ctx_for(clock, "http://127.0.0.1:1"), deadline=clock.monotonic() + 0.5)
    from orchestrator.gates.command import evaluate

    v = evaluate(CommandGate(run="sleep 30", timeout=300.0), ctx)
    assert v.status == "failed" and "timed out after 0.5s" in v.summary
