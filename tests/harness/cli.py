"""`snail` as a user runs it, through its real boundary: `snail(where, *args)` calls the CLI's `main()` in this
process (argv, the environment, the cwd, stdout and stderr as a pipe sees them, the exit code); `process=True`
and `start_snail` run `python -m orchestrator` as a separate process, for a test whose point is the process
(signals, kill -9, locks across processes, a fresh interpreter), marked `@pytest.mark.process`."""

from __future__ import annotations

import contextvars
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

CHECKOUT = str(Path(__file__).resolve().parents[2])

# A world: a mapping with its folder ("root", holding pipeline.yaml) and its moto server ("url"); a folder alone
# means no endpoint and no SNAIL_FILE (pipeline.yaml is looked up from the cwd, as for a user).
Where = Mapping[str, Any] | Path


def snail_env(where: Where, env: Mapping[str, str] | None = None, hermetic: bool = False) -> dict[str, str]:
    """This process's environment (with `hermetic`, none of its SNAIL_* or AWS_* settings), test credentials, the
    world's endpoint and pipeline.yaml, then `env`."""
    out = {
        k: v for k, v in os.environ.items() if k != "SNAIL_FILE" and not (hermetic and k.startswith(("SNAIL_", "AWS_")))
    }
    out.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    out["PYTHONPATH"] = os.pathsep.join(p for p in (CHECKOUT, os.environ.get("PYTHONPATH")) if p)
    if not isinstance(where, Path):
        out.update(SNAIL_ENDPOINT_URL=where["url"], SNAIL_FILE=str(where["root"] / "pipeline.yaml"))
    return {**out, **(env or {})}


def _cwd(where: Where) -> Path:
    return where if isinstance(where, Path) else where["root"]


def snail(
    where: Where,
    *args: str,
    timeout: float = 120,
    env: Mapping[str, str] | None = None,
    hermetic: bool = False,
    process: bool = False,
) -> subprocess.CompletedProcess:
    """Run `snail ARGS` in the world's folder and wait for it (stdout and stderr captured as text): in this
    process, or with `process` as `python -m orchestrator` (then `timeout` bounds it; in process nothing can
    stop a hung call, and `timeout` is accepted only so that both paths take the same arguments)."""
    environ = snail_env(where, env, hermetic)
    if process:
        return subprocess.run(
            [sys.executable, "-m", "orchestrator", *args],
            env=environ,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=_cwd(where),
        )
    if environ.get("SNAIL_FAILPOINTS"):
        raise ValueError("a failpoint SIGKILLs its process: run this snail with process=True")
    if threading.current_thread() is not threading.main_thread() or not _ONE_CALL.acquire(blocking=False):
        # the environment, the cwd and the std streams are the process's: one call at a time, from the main thread
        raise RuntimeError("snails at the same time are processes: use start_snail or process=True")
    try:
        return _in_process(list(args), environ, _cwd(where))
    finally:
        _ONE_CALL.release()


def start_snail(where: Where, *args: str, env: Mapping[str, str] | None = None, **popen: Any) -> subprocess.Popen:
    """Start `snail ARGS` in the world's folder as a background process (stdout and stderr piped, text, unless
    `popen` says otherwise), for a test whose point is the process: signals, kill -9, locks across processes."""
    options: dict[str, Any] = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True, **popen}
    return subprocess.Popen(
        [sys.executable, "-m", "orchestrator", *args], env=snail_env(where, env), cwd=_cwd(where), **options
    )


# ---- in process ------------------------------------------------------------------------------------------------

_ONE_CALL = threading.Lock()


def _in_process(args: list[str], environ: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    """`main(args)` as a fresh `snail` process would run it, and everything it changed in this one put back."""
    from orchestrator.cli.main import main

    code: Any = 0
    with _pipe() as out, _pipe() as err:
        with _fresh_process_state(environ, cwd, out, err):
            try:
                # A fresh context: no structlog contextvars (run_id, phase…) bound by an earlier call or the test.
                contextvars.Context().run(main, args)
            except SystemExit as exc:
                code = exc.code
        stdout, stderr = _read(out), _read(err)
    if code is None:
        returncode = 0
    elif isinstance(code, int):
        returncode = code
    else:  # sys.exit("message"): Python prints it and exits 1
        stderr += f"{code}\n"
        returncode = 1
    return subprocess.CompletedProcess(["snail", *args], returncode, stdout, stderr)


@contextmanager
def _pipe() -> Iterator[IO[str]]:
    """A text stream the CLI sees as a pipe does: a real file descriptor, not a terminal."""
    with tempfile.TemporaryFile("w+", encoding="utf-8", errors="backslashreplace") as f:
        yield f


def _read(stream: IO[str]) -> str:
    stream.flush()
    stream.seek(0)
    # subprocess.run(text=True) reads with universal newlines: the same text whichever way snail ran.
    return stream.read().replace("\r\n", "\n").replace("\r", "\n")


class _Ours:
    """Which threads are this snail call's: the caller and every thread started from one of them (the lease's
    heartbeat, a command gate's reader, rich's refresh). The test's own threads (the world's agent, moto's
    server, HTTP servers) write where they wrote before: their logs are not snail's output."""

    _start = threading.Thread.start

    def __init__(self) -> None:
        self.running = False

    def mine(self) -> bool:
        return self.running and getattr(threading.current_thread(), "_snail_call", None) is self

    @contextmanager
    def calling(self) -> Iterator[None]:
        ours = self

        def start(thread: threading.Thread) -> None:
            if ours.mine():
                thread._snail_call = ours  # type: ignore[attr-defined]
            _Ours._start(thread)

        caller = threading.current_thread()
        caller._snail_call = self  # type: ignore[attr-defined]
        threading.Thread.start = start  # type: ignore[method-assign]
        self.running = True
        try:
            yield
        finally:
            self.running = False
            threading.Thread.start = _Ours._start  # type: ignore[method-assign]
            del caller._snail_call  # type: ignore[attr-defined]


class _Routed:
    """sys.stdout or sys.stderr during a call: the call's threads write to its capture, any other thread (and
    a thread of the call that outlives it) to the stream the test had."""

    def __init__(self, ours: _Ours, capture: IO[str], before: Any) -> None:
        self._ours, self._capture, self._before = ours, capture, before

    def _target(self) -> Any:
        return self._capture if self._ours.mine() else self._before

    def write(self, text: str) -> int:
        return self._target().write(text)

    def flush(self) -> None:
        self._target().flush()

    def __getattr__(self, attr: str) -> Any:
        # isatty, fileno, encoding…: the capture's for snail (a pipe, never a terminal)
        if attr == "buffer":  # as MaskingStream: no byte path around the text one
            raise AttributeError(attr)
        return getattr(self._target(), attr)


@contextmanager
def _fresh_process_state(environ: dict[str, str], cwd: Path, out: IO[str], err: IO[str]) -> Iterator[None]:
    """The process-wide state main() reads or sets, as a new process would have it, restored afterwards: the
    environment, the cwd, stdin, sys.stdout/sys.stderr (main() wraps them in the redaction layer), the redaction
    layer's learnt secrets, structlog's configuration, the CLI's current App and the SIGTERM handler."""
    import structlog

    from orchestrator import redact
    from orchestrator.cli import progress
    from orchestrator.cli.app import App

    saved_env = dict(os.environ)
    saved_cwd = os.getcwd()
    saved_streams = sys.stdin, sys.stdout, sys.stderr
    saved_redactor = redact._REDACTOR  # a new process starts knowing no secret
    saved_structlog = structlog.get_config() if structlog.is_configured() else None
    saved_term = signal.getsignal(signal.SIGTERM)
    ours = _Ours()
    os.environ.clear()
    os.environ.update(environ)
    os.chdir(cwd)
    # stdin as a test's subprocess has it in CI: nothing to read (pytest's own stdin raises on a read)
    sys.stdin = open(os.devnull)  # noqa: SIM115 - closed below
    sys.stdout, sys.stderr = _Routed(ours, out, saved_streams[1]), _Routed(ours, err, saved_streams[2])
    redact._REDACTOR = redact.Redactor()
    try:
        with ours.calling():
            yield
            progress.close_live()
    finally:
        sys.stdin.close()
        sys.stdin, sys.stdout, sys.stderr = saved_streams
        redact._REDACTOR = saved_redactor
        if saved_structlog is None:
            structlog.reset_defaults()
        else:
            structlog.configure(**saved_structlog)
        App.current = None
        if saved_term is not None:
            signal.signal(signal.SIGTERM, saved_term)
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
