"""Issue 12 §1: every failure after the service update rolls back, is recorded, releases the lock and ends with the
documented exit code; faults before any change say that nothing changed (exit 1, never 3).

The engine runs against moto (in-process, the sandbox agent moving deployments on a fake clock) with real HTTP
health gates on 127.0.0.1; faults are injected where they really arise (a gate's code, the state store's file,
the Docker SDK's socket, the terminal's pipe). SIGKILL/SIGTERM are tests/functional/test_crash_safety.py's."""

from __future__ import annotations

import contextlib
import errno
import socket
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from ecsbox import extension
from ecsbox.agent import EcsAgent
from ecsbox.launchers import InstantLauncher
from orchestrator.aws.session import AwsContext
from orchestrator.config import load_pipeline
from orchestrator.engine import judging
from orchestrator.engine.executor import Engine, RunOptions
from orchestrator.engine.outcome import Outcome
from orchestrator.state.sqlite import SqliteStore
from tests.conftest import Behaviour
from tests.functional.world import ACCOUNT, REGION, AgentClock, boto, live, seed_service
from tests.harness.cli import snail, start_snail
from tests.harness.pipeline import INJECTED_CLOCK, image, write_pipeline

SERVICE = "shine-api-gateway"


@dataclass
class Rig:
    """One service on moto, two phases (health-only on image a, hybrid-ml on image b), an engine and its store."""

    engine: Engine
    store: SqliteStore
    clock: AgentClock
    ecs: Any
    root: Path
    bootstrap: str
    servers: dict[str, Behaviour]

    def live(self) -> str:
        """The revision the service runs, read back from ECS."""
        return self.ecs.describe_services(cluster="shine", services=[SERVICE])["services"][0]["taskDefinition"]

    def good(self, phase: str) -> str | None:
        """The revision last marked good for a phase."""
        g = self.store.last_good(SERVICE, phase)
        return g.revision_arn if g else None

    def kinds(self, run_id: str | None) -> list[str]:
        """The trail's event kinds for one run, in order."""
        return [e.kind for e in self.store.events(SERVICE, run_id)]


@pytest.fixture
def rig(tmp_path: Path, http_server) -> Iterator[Rig]:  # noqa: ANN001
    """A seeded service whose health-only phase already passed (the run under test delivers hybrid-ml)."""
    with mock_aws():
        ports: dict[str, int] = {}
        servers: dict[str, Behaviour] = {}
        for tag in "ab":
            url, behaviour = http_server(Behaviour())
            ports[image(tag)] = int(url.rsplit(":", 1)[1])
            servers[tag] = behaviour
        clock = AgentClock()
        clock.agent = EcsAgent(
            InstantLauncher(host_port_for=ports.get), account_id=ACCOUNT, region=REGION, monotonic=clock.monotonic
        )
        ecs = boto("ecs")
        bootstrap = seed_service(ecs)
        for _ in range(5):
            clock.agent.reconcile_once()
        path = write_pipeline(tmp_path, {"health-only": "a", "hybrid-ml": "b"}, timing=INJECTED_CLOCK)
        store = SqliteStore(tmp_path / ".snail" / "state.db", busy_timeout=0.3)
        pipeline = load_pipeline(path)
        first = Engine(pipeline, AwsContext(region=REGION), store, clock=clock).run(RunOptions(to_phase="health-only"))
        assert first.exit_code == 0, first.message
        engine = Engine(pipeline, AwsContext(region=REGION), store, clock=clock)
        try:
            yield Rig(engine, store, clock, ecs, tmp_path, bootstrap, servers)
        finally:
            extension.uninstall()


def assert_rolled_back(rig: Rig, out: Outcome, because: str) -> None:
    """Back on health-only's good revision, verified; the run recorded as rolled back; no open step; lock free."""
    assert (out.exit_code, out.status) == (1, "rolled_back"), out.message
    assert because in out.message, out.message
    assert rig.live() == rig.good("health-only")
    run = rig.store.get_run(out.run_id)
    assert run is not None and (run.status, run.exit_code) == ("rolled_back", 1)
    kinds = rig.kinds(out.run_id)
    assert kinds.index("service_updated") < kinds.index("decision") < kinds.index("rollback_verified"), kinds
    assert kinds[-1] == "run_finished"
    assert rig.store.open_steps(SERVICE) == []
    assert rig.store.lock_state(SERVICE) is None
    assert rig.good("hybrid-ml") is None


# ---------------------------------------------------------------- 1. exceptions inside a gate, after the update


def _in_hybrid_ml(ctx: Any) -> bool:
    return getattr(ctx, "phase", None) == "hybrid-ml"


def test_type_error_inside_a_gate_check_rolls_back(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    """A TypeError raised by the HTTP gate's own code (e.g. an int in a command's argv) is an error verdict."""
    from orchestrator.gates import http

    real = http.evaluate

    def broken(spec: Any, ctx: Any) -> Any:
        if _in_hybrid_ml(ctx):
            raise TypeError("expected str, bytes or os.PathLike object, not int")
        return real(spec, ctx)

    monkeypatch.setattr(http, "evaluate", broken)
    out = rig.engine.run(RunOptions())
    # the phase is rolling, so the error verdict is reached early, on the new task (gates/early.py)
    because = "error early, on our new tasks while the rollout was in progress: TypeError: expected str, bytes or"
    assert_rolled_back(rig, out, because + " os.PathLike object, not int")


def test_overflow_error_in_a_gates_retry_wait_rolls_back(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    """An OverflowError from the sleep before the gate's next attempt (a huge `retries.wait`), outside the check."""
    import time

    import tenacity

    from orchestrator.gates import retry

    real_wait, real_sleep = retry.wait_for, rig.clock.sleep

    def wait_for(retries: Any) -> Any:
        if retries.attempts == 3:  # the http gate's policy (write_pipeline); the ecs-rollout gate polls otherwise
            return tenacity.wait_fixed(1e300)
        return real_wait(retries)

    def sleep(seconds: float) -> None:
        if seconds > 1e12:
            time.sleep(seconds)  # what SystemClock does: OverflowError, timestamp too large
        real_sleep(seconds)

    rig.servers["b"].status = 503  # the first attempt fails, so the gate waits before the second
    monkeypatch.setattr(retry, "wait_for", wait_for)
    monkeypatch.setattr(rig.clock, "sleep", sleep)
    out = rig.engine.run(RunOptions())
    assert_rolled_back(rig, out, "unexpected OverflowError")


def test_value_error_nan_around_a_gate_rolls_back(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    """ValueError('cannot convert float NaN to integer') from the gate machinery (a `timeout: .nan`)."""
    real = judging.run_gate

    def run_gate(spec: Any, ctx: Any) -> Any:
        if _in_hybrid_ml(ctx) and spec.type == "http":
            raise ValueError("cannot convert float NaN to integer")
        return real(spec, ctx)

    monkeypatch.setattr(judging, "run_gate", run_gate)
    out = rig.engine.run(RunOptions())
    assert_rolled_back(rig, out, "unexpected ValueError: cannot convert float NaN to integer")


def test_unexpected_error_during_the_bake_rolls_back(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    """After the gates passed, an exception in the bake's re-check still rolls back (the revision never passed)."""
    from orchestrator.gates import ecs_rollout

    real = ecs_rollout.judge

    def judge(svc: Any, arn: str, gate: str, **kw: Any) -> Any:
        if gate == "bake" and arn != rig.good("health-only"):
            raise KeyError("deployments")
        return real(svc, arn, gate, **kw)

    monkeypatch.setattr(ecs_rollout, "judge", judge)
    out = rig.engine.run(RunOptions())
    assert_rolled_back(rig, out, "unexpected KeyError")


# ---------------------------------------------------------------- 1. the state store fails mid-rollout


class DiskFull:
    """append_event raises ENOSPC from the moment phase hybrid-ml's service update is recorded, `for_events`
    events long (None: until the run ends)."""

    def __init__(self, store: SqliteStore, for_events: int | None) -> None:
        self.real = store.append_event
        self.left = for_events
        self.on = False
        self.refused = 0

    def __call__(self, event: Any) -> None:
        if event.kind == "service_updated" and event.phase == "hybrid-ml":
            self.on = True
        if self.on and (self.left is None or self.left > 0):
            self.refused += 1
            if self.left is not None:
                self.left -= 1
            raise OSError(errno.ENOSPC, "No space left on device")
        self.real(event)


@pytest.mark.parametrize("gate", ["passes", "fails"])
def test_disk_full_for_a_while_never_stops_the_rollout(rig: Rig, monkeypatch: pytest.MonkeyPatch, gate: str) -> None:
    """ENOSPC on the trail for several events: the rollout (or the rollback) goes on, and every event is written
    once the disk has room again, in order."""
    full = DiskFull(rig.store, for_events=4)
    monkeypatch.setattr(rig.store, "append_event", full)
    if gate == "fails":
        rig.servers["b"].status = 500
    out = rig.engine.run(RunOptions())
    assert full.refused == 4
    if gate == "passes":
        assert (out.exit_code, out.status) == (0, "succeeded"), out.message
        assert rig.live() == rig.good("hybrid-ml")
        kinds = rig.kinds(out.run_id)
        assert kinds.index("service_updated") < kinds.index("phase_passed") < kinds.index("run_finished")
        assert rig.store.lock_state(SERVICE) is None
    else:
        assert_rolled_back(rig, out, "gate http")


def test_disk_full_until_the_end_still_rolls_back_and_releases_the_lock(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOSPC on the trail until the run ends: the rollback still happens, the run's record says how it ended
    (and that its trail could not be written), the exit code is the rollback's, the lock is released."""
    full = DiskFull(rig.store, for_events=None)
    monkeypatch.setattr(rig.store, "append_event", full)
    rig.servers["b"].status = 500
    out = rig.engine.run(RunOptions())
    assert (out.exit_code, out.status) == (1, "rolled_back"), out.message
    assert rig.live() == rig.good("health-only")
    run = rig.store.get_run(out.run_id)
    assert run is not None and (run.status, run.exit_code) == ("rolled_back", 1)
    assert "not recorded: its trail (see the log): OSError: [Errno 28] No space left on device" in run.message
    assert rig.store.lock_state(SERVICE) is None
    assert rig.store.open_steps(SERVICE) == []


class BusyFile:
    """Another process holds a write transaction on state.db (as a sqlite3 shell with BEGIN IMMEDIATE would)
    from the first wait after phase hybrid-ml's update until `until(rig)` is true."""

    def __init__(self, rig: Rig, until: Any) -> None:
        self.rig = rig
        self.until = until
        self.other = sqlite3.connect(str(rig.store.path), timeout=0, isolation_level=None)
        self.held = False
        self.was_held = False
        self.hybrid = ""

    def __call__(self) -> None:
        now = self.rig.live()
        if not self.was_held and now != self.rig.good("health-only"):
            self.other.execute("BEGIN IMMEDIATE")
            self.held = self.was_held = True
            self.hybrid = now
        elif self.held and self.until(self.rig):
            self.other.execute("ROLLBACK")
            self.held = False


@pytest.mark.parametrize("released", ["while the gates retry", "after the rollback's update"])
def test_database_locked_past_the_busy_timeout_still_rolls_back(rig: Rig, released: str) -> None:
    """'database is locked' for longer than the busy timeout while the failing phase is gated (and, in the
    second case, while the rollback is decided and started, so its intent cannot be written first): the service
    is rolled back and verified, the trail (and the rollback step) are written once the file is free, exit 1."""
    rig.servers["b"].status = 500
    if released == "while the gates retry":
        busy = BusyFile(rig, until=lambda r: r.servers["b"].hits >= 2)  # before the gate's third attempt
    else:
        busy = BusyFile(rig, until=lambda r: r.live() == r.good("health-only"))
    rig.clock.on_sleep.append(busy)
    try:
        out = rig.engine.run(RunOptions())
    finally:
        if busy.held:
            busy.other.execute("ROLLBACK")
        busy.other.close()
    assert busy.was_held
    assert_rolled_back(rig, out, "gate http")
    (step,) = [s for s in rig.store.steps(out.run_id) if s.kind == "rollback"]
    assert (step.outcome, step.intent["to"]) == ("ok", rig.good("health-only"))


# ---------------------------------------------------------------- 1. the Docker daemon dies mid-build (before the update)


class DyingDocker:
    """A unix-socket proxy in front of the real Docker Engine that relays everything, except that it cuts the
    connection of a build after `cut_after` bytes of the engine's answer: what the SDK sees when dockerd dies."""

    def __init__(self, path: Path, cut_after: int = 400) -> None:
        self.path = path
        self.cut_after = cut_after
        self.cuts = 0
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(path))
        self.listener.listen(16)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        engine = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        engine.connect("/var/run/docker.sock")
        first = client.recv(65536)
        engine.sendall(first)
        building = first.startswith(b"POST ") and b"/build?" in first.split(b"\r\n", 1)[0]
        threading.Thread(target=self._pipe, args=(client, engine), daemon=True).start()
        sent = 0
        try:
            while data := engine.recv(65536):
                if building and sent + len(data) > self.cut_after:
                    client.sendall(data[: self.cut_after - sent])
                    self.cuts += 1
                    break
                client.sendall(data)
                sent += len(data)
        except OSError:
            pass
        for s in (client, engine):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)

    def close(self) -> None:
        """Stop accepting connections."""
        self.listener.close()


def test_docker_dying_mid_build_changes_nothing_and_exits_1(
    rig: Rig, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The engine's connection breaks mid-build (urllib3 ProtocolError inside the SDK's stream): the phase failed
    before the update, nothing was deployed, exit 1 (not 3), recorded, lock released."""
    if not Path("/var/run/docker.sock").exists():
        pytest.skip("needs the Docker Engine (scripts/docker-up.sh)")
    context = rig.root / "images" / "b"
    context.mkdir(parents=True)
    (context / "Dockerfile").write_text(
        f'FROM snail-base/python:3.11\nRUN echo {rig.root.name} > /built\nCMD ["python3", "-m", "http.server"]\n'
    )
    (rig.root / "phases" / "hybrid-ml.yaml").write_text("name: hybrid-ml\nimage: {context: images/b, probe: false}\n")
    sock = tmp_path_factory.mktemp("docker") / "docker.sock"
    proxy = DyingDocker(sock)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{sock}")
    try:
        engine = Engine(
            load_pipeline(rig.root / "pipeline.yaml"), AwsContext(region=REGION), rig.store, clock=rig.clock
        )
        out = engine.run(RunOptions())
    finally:
        proxy.close()
    assert proxy.cuts == 1
    assert (out.exit_code, out.status) == (1, "failed"), out.message
    assert "phase hybrid-ml failed before it changed the service" in out.message, out.message
    assert "went away during the build (ProtocolError: ('Connection broken" in out.message, out.message
    assert "nothing was deployed" in out.message, out.message
    assert rig.live() == rig.good("health-only")
    run = rig.store.get_run(out.run_id)
    assert run is not None and (run.status, run.exit_code) == ("failed", 1)
    assert [s.kind for s in rig.store.steps(out.run_id)] == ["image"]
    assert rig.store.lock_state(SERVICE) is None
    assert rig.store.open_steps(SERVICE) == []


# ---------------------------------------------------------------- 1. the terminal goes away: `snail run 2>&1 | head -3`


@pytest.mark.process
@pytest.mark.parametrize("second_phase", ["passes", "fails"])
def test_a_closed_output_pipe_never_stops_the_rollout(world: dict[str, Any], second_phase: str) -> None:
    """stdout and stderr are one pipe whose reader leaves after 3 lines: the run still delivers (or rolls back),
    records how it ended, releases the lock and exits with the documented code."""
    write_pipeline(world["root"], {"health-only": "a", "hybrid-ml": "b"})
    world["serve"]("a")
    world["serve"]("b", Behaviour(status=500 if second_phase == "fails" else 200))
    proc = start_snail(world, "run", "--skip-preflight", stderr=subprocess.STDOUT, text=False)
    assert proc.stdout is not None
    head = [proc.stdout.readline() for _ in range(3)]
    proc.stdout.close()  # `head -3` exits
    code = proc.wait(timeout=180)
    assert all(head), head
    store = SqliteStore(world["root"] / ".snail" / "state.db")
    (run,) = store.runs(SERVICE)
    assert store.lock_state(SERVICE) is None
    assert store.open_steps(SERVICE) == []
    kinds = [e.kind for e in store.events(SERVICE, run.run_id)]
    assert kinds[-1] == "run_finished"
    if second_phase == "passes":
        assert (code, run.status, run.exit_code) == (0, "succeeded", 0)
        assert live(world) == store.last_good(SERVICE, "hybrid-ml").revision_arn
    else:
        assert (code, run.status, run.exit_code) == (1, "rolled_back", 1)
        assert live(world) == store.last_good(SERVICE, "health-only").revision_arn
        assert "rollback_verified" in kinds


# ---------------------------------------------------------------- 2. faults before any change are not exit 3


def _refuse(monkeypatch: pytest.MonkeyPatch, method: str, code: str, times: int | None) -> list[int]:
    """moto's ECS backend (in this process: the session's server) answers `method` with the AWS error `code`,
    the first `times` calls (None: always); returns the list the refused calls are counted in."""
    from moto.core.exceptions import JsonRESTError
    from moto.ecs.models import EC2ContainerServiceBackend

    real = getattr(EC2ContainerServiceBackend, method)
    refused: list[int] = []

    def refusing(self: Any, *args: Any, **kwargs: Any) -> Any:
        if times is None or len(refused) < times:
            refused.append(1)
            raise JsonRESTError(code, f"injected {code}")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(EC2ContainerServiceBackend, method, refusing)
    return refused


def test_access_denied_on_the_first_update_changed_nothing_exit_1(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """AccessDenied on the run's very first UpdateService: exit 1 (not 3), says nothing was deployed and where
    the service stays, names the permission, one attempt only, recorded as failed, lock released."""
    write_pipeline(world["root"], {"health-only": "a", "hybrid-ml": "b"})
    world["serve"]("a"), world["serve"]("b")
    bootstrap = live(world)
    refused = _refuse(monkeypatch, "update_service", "AccessDeniedException", None)
    r = snail(world, "run", "--skip-preflight")
    assert r.returncode == 1, r.stdout + r.stderr
    said = r.stdout + r.stderr
    assert "phase health-only failed before it changed the service" in said, said
    assert "the caller needs permission for ecs:UpdateService" in said, said
    assert "nothing was deployed, the service stays on shine-api-gateway:1" in said, said
    assert "Traceback" not in said and "human" not in said
    assert len(refused) == 1  # never retried
    assert live(world) == bootstrap
    store = SqliteStore(world["root"] / ".snail" / "state.db")
    (run,) = store.runs(SERVICE)
    assert (run.status, run.exit_code) == ("failed", 1)
    assert store.lock_state(SERVICE) is None and store.open_steps(SERVICE) == []


def test_throttling_while_planning_is_retried(world: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """ThrottlingException on the plan's first DescribeServices calls: botocore's retry mode (session.py) absorbs
    it and the run delivers."""
    write_pipeline(world["root"], {"health-only": "a"})
    world["serve"]("a")
    refused = _refuse(monkeypatch, "describe_services", "ThrottlingException", 3)
    r = snail(world, "run", "--skip-preflight")
    assert r.returncode == 0, r.stdout + r.stderr
    assert len(refused) == 3


def test_throttling_that_persists_while_planning_exits_saying_nothing_changed(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """DescribeServices throttled on every attempt: after botocore's attempts (6) the run stops before it changed
    anything and says so; exit 1 (not 3), no traceback, no lock left."""
    from orchestrator.aws.session import RETRY_CONFIG

    write_pipeline(world["root"], {"health-only": "a"})
    world["serve"]("a")
    bootstrap = live(world)
    refused = _refuse(monkeypatch, "describe_services", "ThrottlingException", None)
    r = snail(world, "run", "--skip-preflight", timeout=180)
    said = r.stdout + r.stderr
    assert r.returncode == 1, said
    assert "ThrottlingException" in said and "nothing was changed" in said, said
    assert "Traceback" not in said and "human" not in said
    assert len(refused) == RETRY_CONFIG["total_max_attempts"]
    monkeypatch.undo()
    assert live(world) == bootstrap
    store = SqliteStore(world["root"] / ".snail" / "state.db")
    assert store.lock_state(SERVICE) is None


# ---------------------------------------------------------------- the lock lost before the update: exit 4


@pytest.mark.parametrize("how", ["removed", "taken over"])
def test_lock_lost_before_the_update_stops_with_exit_4_and_changes_nothing(rig: Rig, how: str) -> None:
    """The lock is lost while phase hybrid-ml's image is resolved: the run stops at the next safe point before
    the update, deploys nothing, and exits 4 like any other lost lock (not 1, "rolled back")."""
    real = rig.engine.images.resolve
    other = {"run_id": "r-other", "user": "ci", "host": "elsewhere", "pid": 1, "command": "run", "since": "-"}

    def resolve(phase: Any) -> Any:
        row = rig.store.lock_state(SERVICE)
        assert row is not None and rig.engine._heartbeat is not None
        if how == "removed":
            rig.store.force_unlock(SERVICE, row.token)
        else:
            assert rig.store.take_over(SERVICE, row.token, other, 300.0)
        rig.engine._heartbeat.beat()
        return real(phase)

    rig.engine.images.resolve = resolve  # type: ignore[method-assign]
    out = rig.engine.run(RunOptions())
    assert (out.exit_code, out.status) == (4, "lock_lost"), out.message
    assert "nothing was deployed" in out.message, out.message
    assert rig.live() == rig.good("health-only")
    assert "update_service" not in [s.kind for s in rig.store.steps(out.run_id)]  # the safe point is before it
    run = rig.store.get_run(out.run_id)
    assert run is not None and (run.status, run.exit_code) == ("lock_lost", 4)
    row = rig.store.lock_state(SERVICE)
    assert row is None if how == "removed" else (row is not None and row.run_id == "r-other")


def test_lock_taken_during_a_gate_is_a_lost_lock_not_a_gate_failure(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another run takes the lock while phase hybrid-ml's ecs-rollout gate polls: the gate's LockLost is not a
    failed gate (no rollback undoing the other run's work, no failed mark on the revision); exit 4."""
    real = judging.run_gate
    other = {"run_id": "r-other", "user": "ci", "host": "elsewhere", "pid": 1, "command": "run", "since": "-"}

    def run_gate(spec: Any, ctx: Any) -> Any:
        if _in_hybrid_ml(ctx) and spec.type == "ecs-rollout":
            row = rig.store.lock_state(SERVICE)
            assert row is not None and rig.engine._heartbeat is not None
            assert rig.store.take_over(SERVICE, row.token, other, 300.0)
            rig.engine._heartbeat.beat()
        return real(spec, ctx)

    monkeypatch.setattr(judging, "run_gate", run_gate)
    out = rig.engine.run(RunOptions())
    assert (out.exit_code, out.status) == (4, "lock_lost"), out.message
    kinds = rig.kinds(out.run_id)
    assert "decision" not in kinds and "rollback_started" not in kinds, kinds
    assert rig.live() not in (rig.good("health-only"), rig.bootstrap)  # left to the run that holds the lock
    assert not [m for m in rig.store.marks(SERVICE) if m.verdict == "failed"]
    row = rig.store.lock_state(SERVICE)
    assert row is not None and row.run_id == "r-other"
