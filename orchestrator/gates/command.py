"""The command gate: a smoke-test script's exit status decides. It runs with an explicit environment (an
allowlist of the runner's, the gate's own `env:`, and the SNAIL_* variables), never the runner's credentials."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import threading
from typing import IO

from orchestrator.config.gates import CommandGate
from orchestrator.gates.command_env import at_run_time, command_argv
from orchestrator.gates.context import GateContext
from orchestrator.gates.endpoints import resolve
from orchestrator.gates.verdict import FAILED, PASSED, Verdict
from orchestrator.redact import excerpt, mask_text

# After the command exits, its output is read for this long more: a background child that still holds stdout
# (`server &`) must not turn an exit 0 into a timeout. Then the command's whole process group is ended.
OUTPUT_GRACE = 1.0
# Between SIGTERM to the group and SIGKILL.
KILL_GRACE = 2.0
OUTPUT_KEPT = 65536


class _Output:
    """The command's merged stdout/stderr, read on a thread until EOF (its tail kept)."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._chunks: list[bytes] = []
        self._size = 0
        self.done = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            while chunk := os.read(self._stream.fileno(), 4096):
                self._chunks.append(chunk)
                self._size += len(chunk)
                while self._size > OUTPUT_KEPT and len(self._chunks) > 1:
                    self._size -= len(self._chunks.pop(0))
        except (OSError, ValueError):
            pass
        finally:
            # The reader closes the pipe itself: closing it from another thread while this one may still read would
            # let a later os.read hit whatever file reuses the descriptor (a daemon that left our group keeps the
            # pipe open: this thread then ends when that daemon does).
            self.done.set()
            self._stream.close()

    def text(self) -> str:
        """What was read so far."""
        return b"".join(self._chunks).decode("utf-8", "replace")


def _end_group(pgid: int, sig: int) -> None:
    """Signal the command's whole process group (its children too); a group already gone is fine."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _run(argv: list[str], env: dict[str, str], cwd: str, timeout: float) -> tuple[int | None, str]:
    """Run the command in its own process group: (exit status, or None on timeout; its output). On timeout the
    whole group gets SIGTERM, then SIGKILL; after the exit, once the output grace is over, whatever the command
    left running in its group is ended too."""
    proc = subprocess.Popen(  # noqa: S603 - the user's own smoke test, with an explicit environment
        argv,
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    assert proc.stdout is not None
    output = _Output(proc.stdout)
    try:
        code: int | None = proc.wait(timeout=timeout)
        output.done.wait(OUTPUT_GRACE)
    except subprocess.TimeoutExpired:
        code = None
        _end_group(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=KILL_GRACE)
        except subprocess.TimeoutExpired:
            pass
    finally:
        _end_group(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=KILL_GRACE)
        output.done.wait(OUTPUT_GRACE)
    return code, output.text()


def _environment(spec: CommandGate, snail_vars: dict[str, str]) -> dict[str, str]:
    from orchestrator.gates.command_env import command_environment

    return command_environment(spec.env, snail_vars)


def evaluate(spec: CommandGate, ctx: GateContext) -> Verdict:
    """Run the command with SNAIL_* variables (service, revision, endpoints); exit 0 passes."""
    try:
        endpoints = resolve(ctx, None, None) if ctx.ecs is not None or ctx.endpoint else []
    except Exception:  # endpoints are a convenience for the script, not a precondition
        endpoints = []
    env = _environment(
        spec,
        {
            "SNAIL_CLUSTER": ctx.cluster,
            "SNAIL_SERVICE": ctx.service,
            "SNAIL_REVISION": ctx.revision_arn,
            "SNAIL_PHASE": ctx.phase,
            "SNAIL_ENDPOINTS": " ".join(endpoints),
            "SNAIL_ENDPOINT": endpoints[0] if endpoints else "",
        },
    )
    argv = command_argv(spec.run, env)  # ${SNAIL_ENDPOINT} and the rest are expanded now, when they are known
    timeout = spec.timeout or CommandGate.timeout or 300.0
    left = ctx.left()
    if left is not None:  # the gate's timeout bounds the whole gate, retries included
        timeout = max(0.001, min(timeout, left))
    shown = mask_text(" ".join(shlex.quote(a) for a in argv))
    try:
        code, output = _run(argv, env, at_run_time(spec.cwd, env) if spec.cwd else ctx.workdir, timeout)
    except (OSError, ValueError) as exc:
        return Verdict(spec.label, FAILED, f"command could not start: {exc}", {"command": shown}, definitive=True)
    if code is None:
        out = excerpt(output, 1000, tail=True)
        return Verdict(spec.label, FAILED, f"command timed out after {timeout:.3g}s", {"command": shown, "output": out})
    out = excerpt(output, 1000, tail=True)
    if code == 0:
        return Verdict(spec.label, PASSED, "exit 0", {"command": shown, "output": out})
    last = out.strip().splitlines()[-1] if out.strip() else ""
    return Verdict(
        spec.label,
        FAILED,
        f"exit {code}: {last}",
        {"command": shown, "exit_code": code, "output": out},
        definitive=True,
    )
