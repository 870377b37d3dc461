"""The sandbox refuses a taken port (exit 2, naming the process holding it) instead of saying "sandbox up" while
its daemon failed to bind, and never seeds another project's moto. No Docker needed: nothing starts."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ecsbox.control import port_holder
from tests.harness.cli import snail


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port this test process listens on (as another program would)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def test_port_holder_names_the_listening_process(taken_port: int) -> None:
    """/proc/net/tcp + /proc/*/fd find this very process as the holder; a free port has none."""
    holder = port_holder(taken_port)
    assert holder is not None and holder.pid == os.getpid()
    assert "pytest" in holder.cmdline or "python" in holder.cmdline
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    assert port_holder(free) is None


def test_sandbox_up_on_a_taken_port_exits_2_naming_the_holder(make_pipeline, taken_port: int) -> None:  # noqa: ANN001
    """`snail sandbox up --port P`: exit 2 in about a second, `pid N (…)` in the message, nothing recorded."""
    path = make_pipeline()
    started = time.monotonic()
    r = snail(path.parent, "-f", str(path), "sandbox", "up", "--port", str(taken_port), timeout=60)
    assert r.returncode == 2, r.stderr
    assert f"port {taken_port} on 127.0.0.1 is taken by pid {os.getpid()}" in r.stderr
    assert "sandbox up:" not in r.stdout
    assert time.monotonic() - started < 10
    assert not (Path(path).parent / ".snail" / "sandbox.json").exists()


@pytest.mark.process
def test_the_daemon_exits_when_it_cannot_bind(tmp_path: Path, taken_port: int) -> None:
    """The daemon itself gives up with exit 2 (it used to wait forever for moto's thread to bind)."""
    started = time.monotonic()
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "ecsbox.daemon",
            "--state-dir",
            str(tmp_path),
            "--port",
            str(taken_port),
            "--registry",
            "",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert r.returncode == 2, r.stdout + r.stderr
    assert "sandbox_daemon_bind_failed" in r.stdout + r.stderr
    assert time.monotonic() - started < 20


def test_the_default_port_is_not_localstacks() -> None:
    """4566 is LocalStack's port: a sandbox started without --port must not take it (issue 19 item 6)."""
    from ecsbox.control import DEFAULT_PORT

    assert DEFAULT_PORT != 4566 and DEFAULT_PORT < 32768  # below Linux's ephemeral range


def test_sandbox_run_honours_snail_sandbox_port(make_pipeline, taken_port: int) -> None:  # noqa: ANN001
    """`snail --sandbox run` starts the sandbox on SNAIL_SANDBOX_PORT, as `sandbox up` does: a taken one is refused
    with exit 2 naming its holder (it used to be ignored, and the run took 4566)."""
    path = make_pipeline()
    r = snail(path.parent, "-f", str(path), "--sandbox", "run", env={"SNAIL_SANDBOX_PORT": str(taken_port)}, timeout=60)
    assert r.returncode == 2, r.stderr
    assert f"port {taken_port} on 127.0.0.1 is taken by pid {os.getpid()}" in r.stderr
    assert not (Path(path).parent / ".snail" / "sandbox.json").exists()


BLOCK_MOTO = """
import sys
class Blocked:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "moto":
            raise ModuleNotFoundError(name)
sys.meta_path.insert(0, Blocked())
from orchestrator.cli.main import main
sys.exit(main())
"""


@pytest.mark.process
def test_without_the_sandbox_extra_sandbox_up_says_what_to_install(make_pipeline) -> None:  # noqa: ANN001
    """moto missing (pip install snail-trail without [sandbox]): `sandbox up` exits 2 naming the extra, while
    `validate` still works."""
    path = make_pipeline()
    r = subprocess.run(
        [sys.executable, "-c", BLOCK_MOTO, "-f", str(path), "sandbox", "up"], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 2, r.stderr
    assert "moto[server]" in r.stderr and "pip install 'snail-trail[sandbox]'" in r.stderr
    ok = subprocess.run(
        [sys.executable, "-c", BLOCK_MOTO, "-f", str(path), "validate"], capture_output=True, text=True, timeout=60
    )
    assert ok.returncode == 0, ok.stderr
