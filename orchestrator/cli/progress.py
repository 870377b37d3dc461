"""The progress display: what is happening now, separate from decisions, never silent while waiting.

On a terminal (stderr is a TTY, NO_COLOR unset, TERM not dumb) it is live, drawn with `rich`: each recorded
event is printed once above a status area that shows what is being waited for — gate attempt n/N with the
next check's countdown, the rollout's running/pending/failed counts, build steps and push bytes as bars — and
refreshes four times a second. Anything else written to stderr meanwhile (a structlog warning) is printed above
the status area, never through it. Elsewhere (CI logs, pipes, NO_COLOR) it prints plain lines: every event, each
new waiting state, and a repeated one again at most every HEARTBEAT seconds. Lines are never cut; untrusted text
(ECS messages, gate output) goes through `trail.escape.neutralise`. `rich` is imported only for the live display,
so `snail --help` stays fast.
"""

from __future__ import annotations

import atexit
import os
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, TextIO

from orchestrator.trail.escape import neutralise, one_line

ICONS = {
    "run_started": "🚀",
    "phase_started": "🐌",
    "image_ready": "📦",
    "revision_registered": "📝",
    "revision_reused": "♻️ ",
    "service_updated": "🔄",
    "service_created": "🆕",
    "service_unchanged": "=",
    "gate_passed": "✅",
    "gate_failed": "❌",
    "bake_done": "🍞",
    "phase_passed": "🎉",
    "phase_failed": "❌",
    "phase_skipped": "⏭️ ",
    "decision": "🚨",
    "diagnosis": "🔍",
    "rollback_started": "⏪",
    "rollback_verified": "✅",
    "rollback_failed": "🆘",
    "rollback_impossible": "🆘",
    "paused": "✋",
    "noop": "💤",
    "run_finished": "🏁",
    "reconciled": "🩹",
    "lock_taken_over": "🔓",
    "interrupted": "⛔",
    "traffic_shifted": "🔀",
    "blocked": "⛔",
    "marked": "🏷️ ",
    "warning": "⚠️ ",
    "released": "🔓",
    "unlocked": "🔓",
    "notified": "📣",
    "notify_failed": "📵",
    "gate_retry": "↻",
    "gate_waiting": "…",
    "build_step": "🔨",
    "build_done": "📦",
    "build_skipped": "📦",
    "push_done": "⬆️ ",
    "probe_passed": "🔌",
    "probe_failed": "🔌",
    "probe_waiting": "🔌",
    "baking": "🍞",
    "lock_wait": "⏳",
    "sandbox_starting": "📦",
    "sandbox_ready": "📦",
    "stage": "⏸️ ",
}
STAGE_KIND = "stage"
# Waiting states: shown in the status area (live) or as throttled lines (plain), never recorded.
WAITING = {"gate_attempt", "gate_waiting", "gate_retry", "probe_waiting", "baking", "lock_wait", "sandbox_starting"}
# Noise for a person: per-line build output and per-layer push statuses (bars show them live).
SILENT_PLAIN = {"build_output", "push_layer", "push_progress", "gate_attempt", "run_finished"}
# Colours of the live display (a TTY only; NO_COLOR gets the plain lines): good news green, bad news red.
STYLES = {
    "gate_passed": "green",
    "phase_passed": "bold green",
    "bake_done": "green",
    "rollback_verified": "green",
    "gate_failed": "bold red",
    "phase_failed": "bold red",
    "decision": "bold red",
    "rollback_failed": "bold red",
    "rollback_impossible": "bold red",
    "diagnosis": "red",
    "rollback_started": "yellow",
    "warning": "yellow",
    "blocked": "yellow",
    "paused": "yellow",
    "interrupted": "yellow",
    "stage": "bold",
}
HEARTBEAT = 10.0  # plain mode: a waiting state that does not change is repeated this often


def live_terminal(stream: TextIO) -> bool:
    """True when progress can be drawn live: a TTY, colours allowed (NO_COLOR unset), not a dumb terminal."""
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        tty = False
    return tty and "NO_COLOR" not in os.environ and os.environ.get("TERM", "") != "dumb"


class Progress:
    """The display the engine and the image builder report to: `progress(kind, data)`."""

    def __init__(
        self,
        stream: TextIO | None = None,
        enabled: bool = True,
        live: bool | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        *,
        said_by_result: frozenset[str] = frozenset(),
        rewrite: Callable[[str], str] | None = None,
        width: int | None = None,
        color: bool | None = None,
    ) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.live = live_terminal(self.stream) if live is None else live
        self._monotonic = monotonic
        self._plain_last: dict[str, tuple[str, float]] = {}
        self._view: _LiveView | None = None
        self._said_by_result = said_by_result  # kinds whose message the command's result prints next: not twice
        self._rewrite = rewrite or (lambda text: text)  # e.g. hints made to paste into the sandbox (`--sandbox`)
        self._width = width  # tests: a console this wide (otherwise the terminal's)
        self._color = color  # tests: force colour on or off (otherwise: a TTY, NO_COLOR unset)
        self._stage: dict[str, str] = {}  # phase -> the lifecycle stage its gate lines were last judged at

    def __call__(self, kind: str, data: dict[str, Any]) -> None:
        if not self.enabled:
            return
        kind = str(kind)
        if kind in self._said_by_result:
            return
        data = self._said_once(kind, data)
        if "message" in data:
            data = {**data, "message": self._rewrite(str(data["message"]))}
        if self.live:
            if self._view is None:
                self._view = _LiveView(self.stream, self._monotonic, width=self._width, color=self._color)
            self._view.update(kind, data)
            if kind == "run_finished":
                self.close()  # the result goes to stdout next: no status area may be drawn under it
        else:
            self._plain(kind, data)

    def _said_once(self, kind: str, data: dict[str, Any]) -> dict[str, Any]:
        """A gate judged at a lifecycle stage (blue-green's hooks, ECS's bake): the stage is said once, on a line
        of its own, not at the end of every gate line."""
        stage = data.get("stage")
        if kind not in ("gate_passed", "gate_failed") or not stage:
            return data
        phase = str(data.get("phase") or "")
        if self._stage.get(phase) != stage:
            self._stage[phase] = str(stage)
            self(STAGE_KIND, {"phase": data.get("phase"), "message": f"gates at {neutralise(str(stage))}:"})
        message = str(data.get("message") or "")
        suffix = f" (at {stage})"
        return {**data, "message": message[: -len(suffix)]} if message.endswith(suffix) else data

    def close(self) -> None:
        """Stop the live display (leaves the printed lines)."""
        if self._view is not None:
            self._view.stop()
            self._view = None

    # -------------------------------------------------------------------------------------------- plain

    def _plain(self, kind: str, data: dict[str, Any]) -> None:
        if kind in SILENT_PLAIN:
            return
        text = describe(kind, data, self._monotonic())
        if text is None:
            return
        if kind in WAITING:
            key = f"{data.get('phase')}:{data.get('gate') or data.get('image') or kind}"
            core = waiting_core(kind, data)
            now = self._monotonic()
            last = self._plain_last.get(key)
            if last is not None and last[0] == core and now - last[1] < HEARTBEAT:
                return
            self._plain_last[key] = (core, now)
        self._print(kind, data, text)

    def _print(self, kind: str, data: dict[str, Any], text: str) -> None:
        stamp = datetime.now(timezone.utc).strftime("%H:%M:%S")
        phase = data.get("phase")
        where = f"[{neutralise(phase)}] " if phase else ""
        print(f"{ICONS.get(kind, '·')} {stamp} {where}{text}", file=self.stream, flush=True)


def waiting_core(kind: str, data: dict[str, Any]) -> str:
    """What a waiting state is about, without its counters (two polls of the same state compare equal); each
    retry of a gate is news (its attempt number is part of it)."""
    if kind == "gate_retry":
        return f"{data.get('attempt')}:{data.get('summary')}"
    if kind == "probe_waiting":
        return f"{data.get('status')}:{data.get('listening')}"
    core = str(data.get("waiting_for") or data.get("summary") or data.get("status") or kind)
    return f"{core} ({rollout_counts(data)})"  # new counts are news: a task that failed, one more running


def describe(kind: str, data: dict[str, Any], now: float | None = None) -> str | None:
    """One line of text for a progress report (None: nothing to say)."""
    gate = neutralise(data.get("gate") or "")
    if kind == "gate_attempt":
        return f"{gate}: check {data.get('attempt')}/{data.get('of') or '?'}"
    if kind == "gate_retry":
        nxt = data.get("next_in")
        return (
            f"{gate}: check {data.get('attempt')}/{data.get('of') or '?'} {data.get('status')}: "
            f"{one_line(data.get('summary') or '')}" + (f" — next check in {float(nxt):.0f}s" if nxt else "")
        )
    if kind == "gate_waiting":
        counts = rollout_counts(data)
        return f"{gate}: {one_line(data.get('waiting_for') or '')}" + (f" ({counts})" if counts else "")
    if kind == "build_step":
        return (
            f"build step {data.get('step', '?')}{' (cached)' if data.get('cached') else ''}: "
            f"{one_line(data.get('line', ''))}"
        )
    if kind == "build_skipped":
        return f"{data.get('tag')} is already in the registry ({str(data.get('digest'))[:19]}…): nothing to build"
    if kind == "build_done":
        return f"built {data.get('tag')} in {data.get('steps', '?')} steps"
    if kind == "push_done":
        return f"pushed {data.get('tag')} ({str(data.get('digest'))[:19]}…)"
    if kind == "probe_waiting":
        seen = data.get("listening")
        state = (
            f"answers HTTP {data.get('status')}"
            if data.get("status")
            else (f"listens on {', '.join(map(str, seen))}" if seen else "no answer yet")
        )
        return (
            f"port probe: {data.get('path')} on port {data.get('port')}: {state} "
            f"({float(data.get('elapsed') or 0):.0f}s of {float(data.get('timeout') or 0):g}s)"
        )
    if kind in ("probe_passed", "probe_failed"):
        if data.get("message"):
            return neutralise(data["message"])
        return f"port probe: {data.get('path')} answered {data.get('status')} on port {data.get('port')}"
    if kind == "baking":
        left = data.get("left")
        rest = f" ({float(left):g}s left: it counts from the rollout's completion)" if left is not None else ""
        return f"baking {float(data.get('seconds') or 0):g}s{rest}"
    if kind == "lock_wait":
        return f"lock: {one_line(data.get('message') or 'held by another run')}"
    if kind in ("build_output", "push_layer", "push_progress"):
        return None
    return neutralise(data.get("message", kind))


def rollout_counts(data: dict[str, Any]) -> str:
    """'1 running, 1 pending, 0 failed' when the report carries the rollout's counts."""
    counts = data.get("counts")
    c: dict[str, Any] = counts if isinstance(counts, dict) else data
    keys = [k for k in ("running", "pending", "failed") if isinstance(c.get(k), int)]
    if not keys:
        return ""
    desired = c.get("desired")
    out = [f"{c['running']}/{desired} running" if "running" in keys and isinstance(desired, int) else ""]
    out += [f"{c[k]} {k}" for k in keys if not (k == "running" and out[0])]
    return ", ".join(p for p in out if p)


class _LiveView:
    """The live display: printed event lines above a status area redrawn by rich four times a second."""

    def __init__(
        self, stream: TextIO, monotonic: Callable[[], float], width: int | None = None, color: bool | None = None
    ) -> None:
        from rich.console import Console
        from rich.live import Live

        # soft_wrap off: rich wraps a long event line at word boundaries to the terminal's width (a terminal
        # breaks it mid-word); status lines are cut to one row each (see status_lines)
        self.console = Console(
            file=stream,
            stderr=stream is sys.stderr,
            highlight=False,
            soft_wrap=False,
            width=width,
            force_terminal=color,
            no_color=None if color is None else not color,
        )
        self._monotonic = monotonic
        self.states: dict[str, tuple[str, dict[str, Any], float]] = {}  # key -> (kind, data, received at)
        self.build: dict[str, Any] = {}  # phase -> {"step": (n, N), "line": str}
        self.push: dict[str, dict[str, tuple[int, int]]] = {}  # phase -> layer -> (current, total)
        self.pushed: dict[str, set[str]] = {}  # phase -> layers pushed or already in the registry
        self.live = Live(
            _Renderable(self),
            console=self.console,
            refresh_per_second=4,
            transient=True,
            redirect_stderr=True,
            redirect_stdout=False,
        )
        self.live.start()
        _VIEWS.append(self)

    def stop(self) -> None:
        """Stop redrawing; the status area disappears, the printed lines stay."""
        if self in _VIEWS:
            _VIEWS.remove(self)
        try:
            self.live.stop()
        except Exception:  # noqa: BLE001 - stopping twice, or at interpreter exit
            pass

    def update(self, kind: str, data: dict[str, Any]) -> None:
        phase = str(data.get("phase") or "")
        now = self._monotonic()
        if kind in WAITING:
            key = f"{phase}:{data.get('gate') or data.get('image') or kind}"
            self.states[key] = (kind, dict(data), now)
            return
        if kind == "build_step":
            step = str(data.get("step", ""))
            n, _, total = step.partition("/")
            if n.isdigit() and total.isdigit():
                self.build[phase] = {"step": (int(n), int(total)), "line": one_line(data.get("line", ""), 80)}
            return
        if kind == "build_output":
            return
        if kind == "push_progress":
            layer = str(data.get("layer", ""))
            self.push.setdefault(phase, {})[layer] = (int(data.get("current") or 0), int(data.get("total") or 0))
            return
        if kind == "push_layer":
            layer = str(data.get("layer", ""))
            cur, size = self.push.setdefault(phase, {}).get(layer, (0, 0))
            self.push[phase][layer] = (size or cur, size or cur)
            self.pushed.setdefault(phase, set()).add(layer)
            return
        # a recorded event (or a build/push/probe milestone): print it once, and drop what it ends
        if kind in ("gate_passed", "gate_failed"):
            self.states.pop(f"{phase}:{data.get('gate')}", None)
        if kind in ("build_done", "build_skipped", "image_ready", "phase_failed"):
            self.build.pop(phase, None)
        if kind in ("push_done", "image_ready", "phase_failed"):
            self.push.pop(phase, None)
            self.pushed.pop(phase, None)
        if kind in ("probe_passed", "probe_failed"):
            for key in [k for k, (kd, _, _) in self.states.items() if kd == "probe_waiting"]:
                self.states.pop(key, None)
        if kind in ("bake_done", "gate_failed", "phase_passed", "phase_failed", "decision", "run_finished"):
            for key in [k for k, (kd, _, _) in self.states.items() if kd in ("baking", "gate_attempt")]:
                self.states.pop(key, None)
        if kind in ("phase_passed", "phase_failed", "decision"):  # nothing of the phase is awaited any more
            for key in [k for k in self.states if k.startswith(f"{phase}:")]:
                self.states.pop(key, None)
        if kind == "sandbox_ready":
            self.states.pop(":sandbox_starting", None)
        if kind in ("run_finished",):
            self.states.clear()
            self.build.clear()
            self.push.clear()
            self.pushed.clear()
        text = describe(kind, data)
        if text is None or kind == "run_finished":
            return
        from rich.text import Text

        stamp = datetime.now(timezone.utc).strftime("%H:%M:%S")
        line = Text.assemble(
            f"{ICONS.get(kind, '·')} ",
            (stamp, "dim"),
            " ",
            (f"[{neutralise(phase)}] " if phase else "", "bold"),
            (text, STYLES.get(kind, "")),
        )
        self.console.print(line, overflow="fold")

    def status_lines(self) -> list[Any]:
        """The status area: one line per waiting state (with its countdown), build and push bars."""
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        now = self._monotonic()
        rows: list[Any] = []
        for kind, data, at in self.states.values():
            text = describe(kind, data) or ""
            nxt = data.get("next_in")
            if kind == "gate_retry" and nxt:
                left = max(0.0, float(nxt) - (now - at))
                text = text.rsplit(" — next check in", 1)[0] + f" — next check in {left:.0f}s"
            elif kind == "gate_waiting" and nxt:
                left = max(0.0, float(nxt) - (now - at))
                text += f" — next look in {left:.0f}s"
            elif kind == "baking":
                remaining = data.get("left", data.get("seconds")) or 0  # part of the bake may be behind us
                left = max(0.0, float(remaining) - (now - at))
                text = f"baking: {left:.0f}s left of {float(data.get('seconds') or 0):g}s"
            elif kind in ("probe_waiting", "gate_attempt", "lock_wait"):
                text += f" ({now - at:.0f}s)" if kind != "probe_waiting" else ""
            elif kind == "sandbox_starting":
                text += f" ({now - at:.0f}s)"
            phase = data.get("phase")
            row = Text(f"  ⠿ {'[' + neutralise(phase) + '] ' if phase else ''}{text}", style="cyan")
            row.no_wrap, row.overflow = True, "ellipsis"  # one row per state: the area's height stays put
            rows.append(row)
        for phase, b in self.build.items():
            n, total = b["step"]
            grid = Table.grid(padding=(0, 1))
            grid.add_row(
                Text(f"  🔨 [{phase}] build step {n}/{total}"),
                ProgressBar(total=total, completed=n, width=24),
                Text(b["line"], style="dim"),
            )
            rows.append(grid)
        for phase, layers in self.push.items():
            done = sum(c for c, _ in layers.values())
            total = sum(t for _, t in layers.values()) or 1
            finished = len(self.pushed.get(phase, set()) | {k for k, (c, t) in layers.items() if t and c >= t})
            grid = Table.grid(padding=(0, 1))
            grid.add_row(
                Text(f"  ⬆️  [{phase}] push {finished}/{len(layers)} layers"),
                ProgressBar(total=total, completed=done, width=24),
                Text(f"{_size(done)} / {_size(total)}", style="dim"),
            )
            rows.append(grid)
        return rows


_VIEWS: list[_LiveView] = []


def close_live() -> None:
    """Stop every live display (the CLI boundary calls it before it prints a result or an error)."""
    for view in list(_VIEWS):
        view.stop()


atexit.register(close_live)


class _Renderable:
    """Asks the view for its status lines at every refresh (so countdowns move without new events)."""

    def __init__(self, view: _LiveView) -> None:
        self.view = view

    def __rich__(self) -> Any:
        from rich.console import Group

        return Group(*self.view.status_lines())


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"
