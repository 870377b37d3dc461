"""Property: whatever happens to each phase (passes, HTTP gate fails, tasks cannot start, Ctrl-C mid-gate),
over several runs, the service never ends on a revision that is neither recorded good nor recorded by the run
that left it there (which then exited 3, "a human is needed"), and no step is left open."""

from __future__ import annotations

import _thread
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from orchestrator.aws.session import AwsContext
from orchestrator.config import load_pipeline
from orchestrator.engine.executor import Engine, RunOptions
from orchestrator.errors import SnailError
from orchestrator.sandbox import extension
from orchestrator.sandbox.agent import EcsAgent
from orchestrator.sandbox.launchers import InstantLauncher
from orchestrator.state.sqlite import SqliteStore
from tests.functional.world import ACCOUNT, REGION, AgentClock, boto, image, seed_service, write_pipeline

PHASES = ["health-only", "hybrid-ml", "optimized"]
OUTCOMES = ["pass", "pass", "http_fail", "tasks_fail", "interrupt"]


class Scripted:
    """One HTTP server whose answer depends on the image tag in its port map, scripted per test run."""

    def __init__(self) -> None:
        self.behaviour: dict[int, str] = {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                what = outer.behaviour.get(self.server.server_address[1], "pass")
                if what == "interrupt":
                    outer.behaviour[self.server.server_address[1]] = "pass"
                    _thread.interrupt_main()  # Ctrl-C arrives while the engine gates this phase
                code = 500 if what == "http_fail" else 200
                body = json.dumps({"status": "ok"}).encode()
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a: object) -> None:
                pass

        self.Handler = Handler
        self.servers: list[ThreadingHTTPServer] = []

    def port(self, what: str) -> int:
        """A new server on 127.0.0.1 that behaves as `what`."""
        srv = ThreadingHTTPServer(("127.0.0.1", 0), self.Handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        self.servers.append(srv)
        self.behaviour[srv.server_address[1]] = what
        return srv.server_address[1]

    def close(self) -> None:
        for s in self.servers:
            s.shutdown()
            s.server_close()


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(runs=st.lists(st.fixed_dictionaries({p: st.sampled_from(OUTCOMES) for p in PHASES}), min_size=1, max_size=3))
def test_service_is_always_on_a_recorded_revision(tmp_path_factory, runs) -> None:
    """No sequence of phase outcomes leaves the service on an unrecorded revision or a step open."""
    root = tmp_path_factory.mktemp("prop")
    scripted = Scripted()
    ports: dict[str, int] = {}
    fails: dict[str, str] = {}
    try:
        with mock_aws():
            clock = AgentClock()
            clock.agent = EcsAgent(
                InstantLauncher(host_port_for=ports.get, fail_reason_for=fails.get),
                account_id=ACCOUNT,
                region=REGION,
                monotonic=clock.monotonic,
            )
            ecs = boto("ecs")
            bootstrap = seed_service(ecs)
            for _ in range(5):
                clock.agent.reconcile_once()
            store = SqliteStore(root / "state.db")
            for n, outcomes in enumerate(runs):
                tags = {p: f"{n}{i}" for i, p in enumerate(PHASES)}  # new images each run: every phase redeploys
                for p, what in outcomes.items():
                    img = image(tags[p])
                    ports[img] = scripted.port("pass" if what == "tasks_fail" else what)
                    if what == "tasks_fail":
                        fails[img] = "CannotPullContainerError: pull access denied"
                engine = Engine(
                    load_pipeline(write_pipeline(root, tags)), AwsContext(region=REGION), store, clock=clock
                )
                try:
                    engine.run(RunOptions())
                except SnailError:
                    pass
                except KeyboardInterrupt:  # an interrupt that landed outside the engine's handlers
                    pass
                check_invariant(ecs, store, bootstrap)
    finally:
        scripted.close()
        extension.uninstall()


def check_invariant(ecs, store: SqliteStore, bootstrap: str) -> None:  # noqa: ANN001
    """The service runs a good revision, the bootstrap, or the revision the last run recorded leaving it on."""
    live = ecs.describe_services(cluster="shine", services=["shine-api-gateway"])["services"][0]["taskDefinition"]
    good = {g.revision_arn for g in store.good_history("shine-api-gateway")}
    assert store.open_steps("shine-api-gateway") == []
    last = store.runs("shine-api-gateway")[0]
    assert last.status != "running"
    if live in good or live == bootstrap:
        if last.exit_code == 0 and last.status == "succeeded":
            assert live == store.last_good("shine-api-gateway").revision_arn
        return
    assert last.exit_code == 3, (live, last)
    updates = [s.intent.get("to") for s in store.steps(last.run_id) if s.kind in ("update_service", "rollback")]
    assert live in updates
    assert "A human is needed" in last.message or "human" in last.message
