"""The progress display: plain lines for logs and pipes, a live status area on a terminal (drawn with rich) that
counts down to the next check and never goes quiet, and `snail --help` without rich imported."""

from __future__ import annotations

import io
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator.cli.progress import HEARTBEAT, Progress, describe, live_terminal, rollout_counts

ROOT = Path(__file__).resolve().parents[2]


class Tick:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_plain_lines_say_n_of_n_and_the_next_check_and_are_never_cut() -> None:
    """Every retry is a line with check n/N and the countdown's start; a 300-character summary stays whole;
    terminal escapes from the gate's text are removed; build output and push statuses stay out of a log."""
    out, tick = io.StringIO(), Tick()
    p = Progress(out, live=False, monotonic=tick)
    long = "status 500: " + "x" * 300 + " \x1b[31mred\x1b[0m"
    for n in (1, 2):
        p(
            "gate_retry",
            {
                "phase": "one",
                "gate": "http /health",
                "attempt": n,
                "of": 10,
                "status": "failed",
                "summary": long,
                "next_in": 3,
            },
        )
    p("build_output", {"phase": "one", "line": "Collecting numpy"})
    p("push_layer", {"phase": "one", "layer": "abc", "status": "Pushed"})
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert "[one] http /health: check 1/10 failed: status 500: " + "x" * 300 + " red — next check in 3s" in lines[0]
    assert "check 2/10" in lines[1] and "\x1b" not in out.getvalue()


def test_plain_waiting_states_repeat_only_when_changed_or_after_the_heartbeat() -> None:
    """A rollout poll that says the same thing is not reprinted until HEARTBEAT seconds passed; a change is."""
    out, tick = io.StringIO(), Tick()
    p = Progress(out, live=False, monotonic=tick)
    wait = {
        "phase": "one",
        "gate": "ecs-rollout",
        "attempt": 1,
        "waiting_for": "IN_PROGRESS, 0/1 running",
        "next_in": 1.0,
        "counts": {"running": 0, "desired": 1, "pending": 1, "failed": 0},
    }
    p("gate_waiting", wait)
    tick.t += 1
    p("gate_waiting", {**wait, "attempt": 2})
    tick.t += HEARTBEAT
    p("gate_waiting", {**wait, "attempt": 3})
    p("gate_waiting", {**wait, "attempt": 4, "waiting_for": "IN_PROGRESS, 1/1 running"})
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert lines[0].endswith("ecs-rollout: IN_PROGRESS, 0/1 running (0/1 running, 1 pending, 0 failed)")
    assert rollout_counts({"running": 2, "pending": 0, "failed": 1}) == "2 running, 0 pending, 1 failed"


def test_describe_probe_waiting_and_push_and_unknown_kinds() -> None:
    """The probe's wait says what it sees; an event without a known shape shows its message."""
    assert describe(
        "probe_waiting",
        {"path": "/health", "port": 5000, "elapsed": 2.2, "timeout": 30, "status": None, "listening": [8080]},
    ) == ("port probe: /health on port 5000: listens on 8080 (2s of 30s)")
    assert describe("phase_started", {"message": "phase one started"}) == "phase one started"
    assert describe("push_progress", {"current": 1, "total": 2}) is None


def test_live_status_counts_down_and_shows_bars() -> None:
    """The status area (what a terminal redraws 4x a second) counts down to the next check by the clock alone,
    and shows build steps and pushed bytes as bars."""
    from rich.console import Console, Group

    tick = Tick()
    p = Progress(io.StringIO(), live=True, monotonic=tick)
    try:
        p(
            "gate_retry",
            {
                "phase": "two",
                "gate": "http /health",
                "attempt": 3,
                "of": 10,
                "status": "failed",
                "summary": "status 500",
                "next_in": 5,
            },
        )
        p("build_step", {"phase": "two", "step": "3/6", "line": "RUN apt-get install"})
        p("push_progress", {"phase": "two", "layer": "l1", "current": 2_000_000, "total": 8_000_000})
        tick.t += 2

        def screen() -> str:
            rec = Console(file=io.StringIO(), width=160, record=True)
            rec.print(Group(*p._view.status_lines()))  # type: ignore[union-attr]
            return rec.export_text()

        text = screen()
        assert "[two] http /health: check 3/10 failed: status 500 — next check in 3s" in text
        assert "build step 3/6" in text and "RUN apt-get install" in text
        assert "push 0/1 layers" in text and "2.0 MB / 8.0 MB" in text
        p("push_layer", {"phase": "two", "layer": "l2", "status": "Layer already exists"})
        assert "push 1/2 layers" in screen()
        p("gate_passed", {"phase": "two", "gate": "http /health", "message": "[x] http /health: ok"})
        assert "http /health" not in screen()
        p("run_finished", {"message": "done"})
        assert p._view is None
    finally:
        p.close()


def test_live_only_on_a_terminal_without_no_color(monkeypatch) -> None:  # noqa: ANN001
    """Pipes and NO_COLOR get plain lines."""

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert live_terminal(Tty()) and not live_terminal(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not live_terminal(Tty())


SCRIPT = """
import time, structlog
from orchestrator.log import configure
configure("console", 0)
from orchestrator.cli.progress import Progress
p = Progress()
p("phase_started", {"phase": "one", "message": "phase one started"})
p("gate_retry", {"phase": "one", "gate": "http /health", "attempt": 1, "of": 10, "status": "failed",
                 "summary": "status 500", "next_in": 3})
time.sleep(1.5)
structlog.get_logger().warning("something_odd", detail="mid-wait")
time.sleep(1.5)
p("gate_passed", {"phase": "one", "gate": "http /health", "message": "[x] http /health: ok"})
p("run_finished", {"message": "done"})
print("RESULT")
"""


@pytest.mark.process
def test_on_a_real_terminal_the_display_never_goes_quiet() -> None:
    """In a pseudo-terminal, a 3 s wait redraws at least every half second with a moving countdown; a structlog
    warning in the middle is printed whole above the status area; the result comes after the area is gone."""
    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"} | {"TERM": "xterm-256color", "COLUMNS": "120"}
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT], stdin=slave, stdout=slave, stderr=slave, env=env, cwd=ROOT, close_fds=True
    )
    os.close(slave)
    out, writes = b"", []
    while True:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:
                break
            if not data:
                break
            out += data
            writes.append(time.monotonic())
        elif proc.poll() is not None:
            break
    proc.wait(timeout=10)
    text = out.decode(errors="replace")
    gaps = [b - a for a, b in zip(writes, writes[1:], strict=False)]
    assert gaps and max(gaps) < 0.6, gaps
    for left in ("next check in 3s", "next check in 2s", "next check in 1s"):
        assert left in text, left
    warning = next(part for part in text.split("\r") if "something_odd" in part)  # each redraw starts with \r
    assert "mid-wait" in warning and "next check" not in warning
    assert text.rstrip().endswith("RESULT") and text.index("[x] http /health: ok") < text.index("RESULT")


@pytest.mark.process
def test_snail_help_does_not_import_rich() -> None:
    """`snail --help` stays fast: neither rich nor the progress display is imported."""
    r = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "orchestrator", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert r.returncode == 0 and "logs" in r.stdout
    assert "rich" not in r.stderr and "orchestrator.cli.progress" not in r.stderr


# ------------------------------------------------------------------ issue 19 item 7: 80 columns, colour, noise

GATE_AT_HOOK = {
    "phase": "enhanced",
    "gate": "http /ml/status",
    "stage": "POST_TEST_TRAFFIC_SHIFT",
    "message": "[x] http /ml/status: 1 endpoint(s) answered 1x as expected with status ready, model loaded from "
    "the cache in 120 ms, latency 35 ms (at POST_TEST_TRAFFIC_SHIFT)",
}


def _live(width: int = 80, color: bool = False, **kw) -> tuple[Progress, io.StringIO, Tick]:  # noqa: ANN003
    out, tick = io.StringIO(), Tick()
    return Progress(out, live=True, monotonic=tick, width=width, color=color, **kw), out, tick


def test_live_lines_at_80_columns_wrap_at_words_and_say_the_stage_once() -> None:
    """At 80 columns a long event line is wrapped by rich at a space (no word cut in two, no row wider than 80);
    gates judged at a hook say the stage once, on its own line, not at the end of each gate line."""
    p, out, _ = _live()
    try:
        p("gate_passed", GATE_AT_HOOK)
        p(
            "gate_passed",
            {
                **GATE_AT_HOOK,
                "gate": "ecs-rollout",
                "message": "[x] ecs-rollout: 2/2 running (at POST_TEST_TRAFFIC_SHIFT)",
            },
        )
    finally:
        p.close()
    rows = [r for r in out.getvalue().splitlines() if r.strip()]
    assert rows and max(len(r) for r in rows) <= 80, rows
    text = " ".join(r.strip() for r in rows)
    for word in GATE_AT_HOOK["message"].replace(" (at POST_TEST_TRAFFIC_SHIFT)", "").split():
        assert f" {word} " in f" {text} ", word  # every word whole: wrapped between words, never inside one
    assert text.count("POST_TEST_TRAFFIC_SHIFT") == 1 and "gates at POST_TEST_TRAFFIC_SHIFT:" in text


def test_live_status_rows_are_cut_to_one_row_of_the_terminal() -> None:
    """A waiting state longer than the terminal is one row, ended with an ellipsis (the area never grows)."""
    from rich.console import Console, Group

    p, _, _ = _live()
    try:
        p(
            "gate_waiting",
            {
                "phase": "v2",
                "gate": "blue-green",
                "waiting_for": "ECS IN_PROGRESS at SCALE_UP " + "x" * 90,
                "counts": {"running": 0, "desired": 2, "failed": 3},
                "next_in": 2,
            },
        )
        rec = Console(file=io.StringIO(), width=80, record=True)
        rec.print(Group(*p._view.status_lines()))  # type: ignore[union-attr]
        rows = [r for r in rec.export_text().splitlines() if r.strip()]
    finally:
        p.close()
    assert len(rows) == 1 and len(rows[0]) <= 80 and rows[0].rstrip().endswith("…"), rows


def test_colour_on_a_terminal_and_none_without() -> None:
    """On a colour terminal a passed gate is green and a failed one red; forced off (NO_COLOR, a pipe) no escape."""
    p, out, _ = _live(color=True)
    try:
        p("gate_passed", {"phase": "v1", "message": "[x] http /health: ok"})
        p("gate_failed", {"phase": "v1", "message": "[ ] http /health: failed: 500"})
    finally:
        p.close()
    coloured = out.getvalue()
    assert "\x1b[32m" in coloured and "\x1b[1;31m" in coloured, repr(coloured)
    p, out, _ = _live(color=False)
    try:
        p("gate_passed", {"phase": "v1", "message": "[x] http /health: ok"})
    finally:
        p.close()
    assert "\x1b[" not in out.getvalue()


def test_what_the_result_says_is_not_said_first_by_the_display() -> None:
    """The no-op (and paused, blocked) message is the result on stdout: the display does not print it too; the
    commands a line suggests are rewritten for where it ran (the sandbox)."""
    from orchestrator.cli.app import RESULT_KINDS, sandbox_hints

    out, tick = io.StringIO(), Tick()
    p = Progress(out, live=False, monotonic=tick, said_by_result=RESULT_KINDS, rewrite=sandbox_hints)
    p("noop", {"message": "nothing to do: phase v1 is already live and good"})
    p("blocked", {"phase": "v2", "message": "not deployed: … lifted by `snail release v2`"})
    p("decision", {"phase": "v2", "message": "rolling back; `snail run --retry-failed` deploys it again"})
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and "`snail --sandbox run --retry-failed`" in lines[0], lines


def test_sandbox_hints_put_the_global_option_before_the_command() -> None:
    """Suggested commands get --sandbox; `snail sandbox …`, prose and commands that have it are left alone."""
    from orchestrator.cli.app import sandbox_hints

    assert sandbox_hints("`snail release demo:3` (or `snail release v2`)") == (
        "`snail --sandbox release demo:3` (or `snail --sandbox release v2`)"
    )
    assert sandbox_hints("trail: snail trail --run r-1") == "trail: snail --sandbox trail --run r-1"
    for same in ("`snail sandbox up`", "snail --sandbox run", "snail-trail run", "snail never deploys it"):
        assert sandbox_hints(same) == same


def test_plain_waiting_line_again_when_the_counts_change() -> None:
    """Blue-green: ECS stays at SCALE_UP while green's tasks fail one by one: each new count is a line (the
    stage alone did not change, and that used to be all a log showed for half a minute)."""
    out, tick = io.StringIO(), Tick()
    p = Progress(out, live=False, monotonic=tick)
    wait = {"phase": "v2", "gate": "blue-green", "waiting_for": "ECS IN_PROGRESS at SCALE_UP", "next_in": 2}
    for failed in (0, 1, 1, 2):
        p("gate_waiting", {**wait, "counts": {"running": 0, "desired": 1, "failed": failed}})
        tick.t += 2
    lines = out.getvalue().splitlines()
    assert [line.rsplit("(", 1)[1] for line in lines] == [
        "0/1 running, 0 failed)",
        "0/1 running, 1 failed)",
        "0/1 running, 2 failed)",
    ]


def test_a_result_wraps_at_spaces_on_a_terminal_and_stays_whole_in_a_pipe(monkeypatch) -> None:  # noqa: ANN001
    """At 80 columns a long result line is wrapped between words (a terminal would cut a word in two); piped,
    the line is left whole for grep and CI logs."""
    from orchestrator.cli.app import fit_terminal

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setenv("COLUMNS", "80")
    line = "phase v2 failed: ECS ROLLBACK_SUCCESSFUL: the circuit breaker triggered (3 tasks failed): " * 2
    wrapped = fit_terminal(line.strip(), Tty()).splitlines()
    assert len(wrapped) > 1 and max(len(row) for row in wrapped) <= 80
    assert " ".join(row.strip() for row in wrapped) == line.strip()
    assert fit_terminal(line, io.StringIO()) == line
