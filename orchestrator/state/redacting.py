"""A StateStore wrapper that masks secrets before anything is written: trail events, step intents and results,
run messages and recorded gate specs. Reads and the lock pass straight through."""

from __future__ import annotations

import dataclasses
from typing import Any

from orchestrator.redact import mask_data, mask_text
from orchestrator.state.base import GoodRecord, RunRecord, StateStore, TrailEvent

# Record fields that hold free text or data written by the engine (everything else is ids, ARNs, times).
_TEXT_FIELDS = ("message", "reason", "command", "cause", "summary")
_DATA_FIELDS = ("data", "gates", "intent", "result", "evidence")


def _masked_record(record: Any) -> Any:
    """A copy of a dataclass record with its text and data fields masked (unknown record types included)."""
    if not dataclasses.is_dataclass(record) or isinstance(record, type):
        return record
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(record):
        value = getattr(record, f.name)
        if f.name in _TEXT_FIELDS and isinstance(value, str):
            changes[f.name] = mask_text(value)
        elif f.name in _DATA_FIELDS and value:
            changes[f.name] = mask_data(value)
    return dataclasses.replace(record, **changes) if changes else record


class RedactingStore:
    """Wraps any StateStore; every write that can carry text or evidence is masked first."""

    def __init__(self, inner: StateStore | Any) -> None:
        self.inner = inner

    # runs
    def start_run(self, run: RunRecord) -> None:
        """Record a new run (message and command masked)."""
        self.inner.start_run(_masked_record(run))

    def finish_run(self, run_id: str, status: str, exit_code: int, message: str, at: str) -> None:
        """Finish a run; the message is masked."""
        self.inner.finish_run(run_id, status, exit_code, mask_text(message), at)

    # steps
    def begin_step(self, run_id: str, phase: str | None, kind: str, intent: dict[str, Any], at: str) -> int:
        """Write a step's intent, masked."""
        return int(self.inner.begin_step(run_id, phase, kind, mask_data(intent), at))

    def end_step(self, step_id: int, outcome: str, result: dict[str, Any], at: str) -> None:
        """Write a step's result, masked."""
        self.inner.end_step(step_id, outcome, mask_data(result), at)

    # trail
    def append_event(self, event: TrailEvent) -> None:
        """Append a trail event with its message and data masked."""
        self.inner.append_event(_masked_record(event))

    # good revisions and marks
    def mark_good(self, record: GoodRecord) -> None:
        """Record a good revision; recorded gate specs are masked (see redact.restore to verify with them)."""
        self.inner.mark_good(_masked_record(record))

    def put_mark(self, record: Any, *args: Any, **kwargs: Any) -> Any:
        """Record a verdict mark (the marks helper's record type), masked like every other record."""
        return self.inner.put_mark(_masked_record(record), *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        # Reads, the lock and any method added later pass straight through.
        return getattr(self.inner, name)


def redacting(store: Any) -> Any:
    """`store` wrapped once (idempotent)."""
    return store if isinstance(store, RedactingStore) else RedactingStore(store)
