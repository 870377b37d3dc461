"""The test harness's in-process `snail()`: a call sees what a new process would, and leaves this one as it was."""

from __future__ import annotations

import io
import os
import signal
import sys
import threading
from pathlib import Path

import pytest
import structlog

from orchestrator import redact
from orchestrator.cli.app import App
from tests.harness.cli import _Ours, _Routed, snail
from tests.harness.pipeline import write_pipeline

SECRET = "s3cr3t-registry-pass"


def _process_state() -> tuple:
    """What a call in process may change in this one: environment, cwd, std streams, SIGTERM handler, structlog's
    configuration, the learnt secrets."""
    return (
        dict(os.environ),
        os.getcwd(),
        (sys.stdin, sys.stdout, sys.stderr),
        signal.getsignal(signal.SIGTERM),
        structlog.get_config() if structlog.is_configured() else None,
        redact.known(),
    )


def test_a_call_in_process_puts_back_everything_it_changed(tmp_path: Path) -> None:
    """Environment, cwd, std streams, SIGTERM handler, structlog's configuration, the current App and the secrets
    the call learnt are this process's again after the call; the call itself ran in the world's folder with its
    environment and exit code."""
    write_pipeline(tmp_path, {"health-only": "a"})
    before = _process_state()
    r = snail(tmp_path, "--log-format", "json", "-q", "validate", env={"SNAIL_REGISTRY_PASSWORD": SECRET})
    assert r.returncode == 0 and "are valid" in r.stdout, r.stdout + r.stderr
    after = _process_state()
    assert after == before
    assert SECRET not in redact.known() and App.current is None


def test_a_secret_learnt_by_one_call_is_unknown_to_the_next(tmp_path: Path) -> None:
    """Each call starts knowing no secret, as a new process does: one learnt from the environment of an earlier
    call does not mask the next call's output (a leak test must not pass on what another call taught)."""
    write_pipeline(tmp_path, {"health-only": "a"})
    first = snail(tmp_path, "validate", env={"SNAIL_REGISTRY_PASSWORD": SECRET})
    assert first.returncode == 0, first.stderr
    missing = snail(tmp_path, "-f", str(tmp_path / SECRET / "pipeline.yaml"), "validate")
    said = missing.stdout + missing.stderr
    assert missing.returncode == 2 and SECRET in said, said


def test_a_failpoint_is_refused_in_process(tmp_path: Path) -> None:
    """A failpoint SIGKILLs its process: in process it would kill the test run, so the harness refuses it."""
    with pytest.raises(ValueError, match="process=True"):
        snail(tmp_path, "run", env={"SNAIL_FAILPOINTS": "update_service:acted"})


def test_snails_at_the_same_time_are_refused_in_process(tmp_path: Path) -> None:
    """The environment, cwd and std streams belong to the process: a call from another thread (while the main
    thread may be in one) is refused, naming the way to run snails side by side."""
    refused: list[BaseException] = []

    def call() -> None:
        try:
            snail(tmp_path, "validate")
        except RuntimeError as exc:
            refused.append(exc)

    other = threading.Thread(target=call)
    other.start()
    other.join()
    assert refused and "start_snail or process=True" in str(refused[0])


def test_only_the_calls_threads_write_to_its_output() -> None:
    """During a call, the caller and the threads it starts write to the call's capture; a thread the test had
    already started (the world's agent, moto's server) writes where it did before."""
    capture, before = io.StringIO(), io.StringIO()
    ours = _Ours()
    routed = _Routed(ours, capture, before)
    go, done = threading.Event(), threading.Event()

    def outsider() -> None:
        go.wait(10)
        routed.write("agent log\n")
        done.set()

    background = threading.Thread(target=outsider)
    background.start()
    with ours.calling():
        routed.write("result\n")
        child = threading.Thread(target=lambda: routed.write("heartbeat\n"))
        child.start()
        child.join()
        go.set()
        assert done.wait(10)
    background.join()
    routed.write("after\n")
    assert capture.getvalue() == "result\nheartbeat\n"
    assert before.getvalue() == "agent log\nafter\n"
