"""A StateStore wrapper that masks secrets before anything is written: trail events, step intents and results,
run messages and recorded gate specs. Reads and the lock pass straight through."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
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


def _restored(value: Any, by_mask: list[tuple[Any, dict[str, Any]]]) -> Any:
    """Records read back with their masked `gates` matched to today's specs (real credentials), recursively
    through lists; anything else unchanged. `by_mask` pairs each of today's specs with its masked form."""
    if isinstance(value, list):
        return [_restored(v, by_mask) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        gates = getattr(value, "gates", None)
        if isinstance(gates, list) and gates:
            real = [next((spec for masked, spec in by_mask if masked == g), g) for g in gates]
            return dataclasses.replace(value, gates=real)
    return value


class RedactingStore:
    """Wraps any StateStore; every write that can carry text or evidence is masked first.

    Recorded gate specs are stored masked (a gate URL's api_key, a command gate's env token). A rollback is
    verified with those specs, so when `gate_specs` is given (today's specs as dicts), every record read back
    gets each masked spec replaced by the spec of today's pipeline that masks to the same thing: the real
    credentials, never written down. A spec with no match stays masked."""

    def __init__(self, inner: StateStore | Any, gate_specs: Callable[[], list[dict[str, Any]]] | None = None) -> None:
        self.inner = inner
        self._gate_specs = gate_specs

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
        # Reads, the lock and any method added later pass straight through; records that carry recorded gate
        # specs (good records, marks) come back with their credentials restored from today's pipeline.
        attr = getattr(self.inner, name)
        if self._gate_specs is None or not callable(attr) or not _READS_RECORDS.match(name):
            return attr
        gate_specs = self._gate_specs

        def read(*args: Any, **kwargs: Any) -> Any:
            return _restored(attr(*args, **kwargs), [(mask_data(spec), spec) for spec in gate_specs()])

        return read


_READS_RECORDS = re.compile(r"^(last_good|good_history|marks?|mark_for|last_mark|.*_marks?)$")


def redacting(store: Any, gate_specs: Callable[[], list[dict[str, Any]]] | None = None) -> Any:
    """`store` wrapped once (idempotent), restoring recorded gate specs from `gate_specs` when given."""
    return store if isinstance(store, RedactingStore) else RedactingStore(store, gate_specs)


def pipeline_gate_specs(pipeline: Any) -> Callable[[], list[dict[str, Any]]]:
    """Today's gate specs of a pipeline (defaults and every phase's) as dicts, computed once on first use."""
    cache: list[list[dict[str, Any]]] = []

    def specs() -> list[dict[str, Any]]:
        if not cache:
            gates = [*getattr(pipeline, "defaults_gates", ())]
            for phase in getattr(pipeline, "phases", ()):
                gates.extend(getattr(phase, "gates", ()))
            cache.append([g.to_dict() for g in gates if hasattr(g, "to_dict")])
        return cache[0]

    return specs
