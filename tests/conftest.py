"""Shared fixtures: a fake clock, a pipeline folder builder, real HTTP servers on 127.0.0.1, and the one moto
server of the session (tests share fixtures through conftest.py files, never by importing them)."""

from __future__ import annotations

import json
import os
import signal
import textwrap
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

# CI runs the property tests on a fixed set of examples (the same ones every run: a red CI is reproducible);
# locally they explore new ones each time.
from hypothesis import settings as _hypothesis_settings  # noqa: E402

from orchestrator.clock import FakeClock  # noqa: E402
from tests.harness.http import serve_in_thread

_hypothesis_settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    _hypothesis_settings.load_profile("ci")

# A suite started as a background job of a script (`make test &`, nohup, a CI step's `cmd &`) inherits SIGINT
# ignored (POSIX), and Python keeps it so: Ctrl-C and `_thread.interrupt_main()` then do nothing, in the tests and
# in the processes they start. Every test process takes Python's own handler, as an interactive run has (the
# processes it starts then get the default disposition back when they exec).
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def _signal_handlers_restored() -> Iterator[None]:
    """The next test on this process finds the SIGINT and SIGTERM handlers this one found: snail's main() run in
    process installs its SIGTERM handler (Ctrl-C semantics), and a test may install its own."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in saved.items():
        if handler is not None and signal.getsignal(sig) is not handler:  # None: set outside Python, left alone
            signal.signal(sig, handler)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """moto's server on 127.0.0.1 (a free port), one for the whole session; each user resets it with
    POST /moto-api/reset and installs what it patches (the sandbox extension, DynamoDB write locks) itself."""
    from moto.server import ThreadedMotoServer

    srv = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    srv.start()
    host, port = srv.get_host_and_port()
    yield f"http://{host}:{port}"
    srv.stop()


@pytest.fixture
def clock() -> FakeClock:
    """A clock that never really sleeps."""
    return FakeClock()


PIPELINE = """\
version: 1
service:
  cluster: shine
  name: shine-api-gateway
  region: us-east-1
  container: api
  port: 5000
registry:
  url: 127.0.0.1:5055/shine-api-gateway
defaults:
  gates:
    - {type: http, path: /health, expect: {status: 200}}
  bake: 0s
phases: [one, two]
"""

PHASE = """\
name: {name}
image: {{ref: "127.0.0.1:5055/shine-api-gateway@sha256:{digest}"}}
"""


@pytest.fixture
def make_pipeline(tmp_path: Path) -> Callable[..., Path]:
    """Write pipeline.yaml and phase files into a temp folder; returns pipeline.yaml's path."""

    def make(pipeline: str = PIPELINE, phases: dict[str, str] | None = None) -> Path:
        (tmp_path / "phases").mkdir(exist_ok=True)
        (tmp_path / "pipeline.yaml").write_text(textwrap.dedent(pipeline))
        if phases is None:
            phases = {n: PHASE.format(name=n, digest=(c * 64)) for n, c in (("one", "a"), ("two", "b"))}
        for name, text in phases.items():
            (tmp_path / "phases" / f"{name}.yaml").write_text(textwrap.dedent(text))
        return tmp_path / "pipeline.yaml"

    return make


class Behaviour:
    """What a test HTTP server answers; tests change it while the server runs."""

    def __init__(self, status: int = 200, body: dict | str = None, delay: float = 0.0) -> None:
        self.status = status
        self.paths: dict[str, int] = {}  # a status for one path only (the load balancer's /health stays as it is)
        self.body = body if body is not None else {"status": "ok"}
        self.delay = delay
        self.hits = 0


@pytest.fixture
def http_server() -> Callable[[Behaviour], tuple[str, Behaviour]]:
    """Start real HTTP servers on 127.0.0.1 with a given behaviour; returns (base_url, behaviour)."""
    servers = []

    def start(behaviour: Behaviour | None = None) -> tuple[str, Behaviour]:
        b = behaviour or Behaviour()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                b.hits += 1
                if b.delay:
                    time.sleep(b.delay)
                payload = b.body if isinstance(b.body, str) else json.dumps({**b.body, "path": self.path})
                data = payload.encode()
                try:
                    self.send_response(b.paths.get(self.path.split("?", 1)[0], b.status))
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up first (a gate's request timeout against `delay`): nothing to answer

            def log_message(self, *args: object) -> None:
                pass

        srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        serve_in_thread(srv)
        servers.append(srv)
        return f"http://127.0.0.1:{srv.server_address[1]}", b

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()
