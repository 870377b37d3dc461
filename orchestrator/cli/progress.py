"""The progress display: what is happening now, separate from decisions, printing only what is new."""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from typing import Any, TextIO

_ICONS = {
    "run_started": "🚀",
    "phase_started": "🐌",
    "image_ready": "📦",
    "revision_registered": "📝",
    "revision_reused": "♻️ ",
    "service_updated": "🔄",
    "service_created": "🆕",
    "gate_passed": "✅",
    "gate_failed": "❌",
    "bake_done": "🍞",
    "phase_passed": "🎉",
    "phase_skipped": "⏭️ ",
    "decision": "🚨",
    "rollback_started": "⏪",
    "rollback_verified": "✅",
    "rollback_failed": "🆘",
    "rollback_impossible": "🆘",
    "paused": "✋",
    "noop": "💤",
    "run_finished": "🏁",
    "reconciled": "🩹",
    "lock_taken_over": "🔓",
    "service_unchanged": "=",
    "gate_retry": "↻",
    "gate_waiting": "…",
    "build_step": "🔨",
}


_QUIET = {"gate_attempt", "run_finished", "build_output", "push_layer"}


class Progress:
    """Prints one line per recorded event and per *new* waiting state (repeated polls are not reprinted)."""

    def __init__(self, stream: TextIO | None = None, enabled: bool = True) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self._last: dict[str, str] = {}

    def __call__(self, kind: str, data: dict[str, Any]) -> None:
        if not self.enabled or kind in ("gate_attempt", "run_finished"):
            return
        if kind in _QUIET:
            return
        phase = data.get("phase")
        if kind in ("gate_waiting", "gate_retry"):
            text = f"{data.get('gate')} attempt {data.get('attempt')}: {data.get('waiting_for') or data.get('summary')}"
            key = f"{phase}:{data.get('gate')}"
            core = data.get("waiting_for") or data.get("summary") or ""
            if self._last.get(key) == core:
                return
            self._last[key] = core
        elif kind == "build_step":
            text = (
                f"{data.get('phase') or ''} build step {data.get('step', '?')}{' (cached)' if data.get('cached') else ''}: "
                f"{str(data.get('line', '')).strip()[:100]}"
            )
        elif kind == "build_skipped":
            text = f"{data.get('tag')} is already in the registry ({str(data.get('digest'))[:19]}…): nothing to build"
        elif kind == "build_done":
            text = f"built {data.get('tag')} in {data.get('steps', '?')} steps"
        elif kind == "push_done":
            text = f"pushed {data.get('tag')} ({str(data.get('digest'))[:19]}…)"
        elif kind in ("probe_passed", "probe_failed"):
            text = str(
                data.get("message")
                or " ".join(f"{k}={v}" for k, v in data.items() if k not in ("event", "phase") and v is not None)
            )[:200]
        elif kind == "baking":
            text = f"baking {data.get('seconds'):g}s"
        else:
            text = str(data.get("message", kind))
        stamp = datetime.now(timezone.utc).strftime("%H:%M:%S")
        where = f"[{phase}] " if phase else ""
        print(f"{_ICONS.get(kind, '·')} {stamp} {where}{text}", file=self.stream, flush=True)
