"""The state store protocol: runs, steps (intent then result), trail events, good revisions, the lock."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol


@dataclass
class RunRecord:
    """One invocation of run/promote/rollback."""

    run_id: str
    service: str
    command: str
    status: str  # running | succeeded | rolled_back | failed | interrupted | paused | noop
    started_at: str
    user: str = ""
    host: str = ""
    finished_at: str | None = None
    exit_code: int | None = None
    message: str = ""
    phases: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON output."""
        return asdict(self)


@dataclass
class StepRecord:
    """One mutation: written as intent before acting, completed with its result after."""

    step_id: int
    run_id: str
    phase: str | None
    kind: str
    intent: dict[str, Any]
    started_at: str
    outcome: str | None = None  # None while in flight; ok | failed
    result: dict[str, Any] = field(default_factory=dict)
    finished_at: str | None = None


@dataclass
class GoodRecord:
    """A revision that passed our gates for a phase."""

    service: str
    phase: str
    revision_arn: str
    image: str
    digest: str | None
    run_id: str
    at: str
    spec_hash: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON output."""
        return asdict(self)


@dataclass
class TrailEvent:
    """One line of the journal; the trail is rendered from these."""

    run_id: str
    service: str
    at: str
    kind: str
    message: str
    phase: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON output."""
        return asdict(self)


class StateStore(Protocol):
    """What the engine needs from a state backend (SQLite locally, DynamoDB for many runners)."""

    def start_run(self, run: RunRecord) -> None: ...
    def finish_run(self, run_id: str, status: str, exit_code: int, message: str, at: str) -> None: ...
    def get_run(self, run_id: str) -> RunRecord | None: ...
    def runs(self, service: str, limit: int = 20) -> list[RunRecord]: ...

    def begin_step(self, run_id: str, phase: str | None, kind: str, intent: dict[str, Any], at: str) -> int: ...
    def end_step(self, step_id: int, outcome: str, result: dict[str, Any], at: str) -> None: ...
    def steps(self, run_id: str) -> list[StepRecord]: ...
    def open_steps(self, service: str) -> list[StepRecord]: ...

    def append_event(self, event: TrailEvent) -> None: ...
    def events(self, service: str, run_id: str | None = None) -> list[TrailEvent]: ...

    def mark_good(self, record: GoodRecord) -> None: ...
    def last_good(self, service: str, phase: str | None = None) -> GoodRecord | None: ...
    def good_history(self, service: str) -> list[GoodRecord]: ...

    def acquire_lock(self, service: str, holder: dict[str, Any], lease: float, now: float) -> dict[str, Any] | None: ...
    def heartbeat(self, service: str, run_id: str, lease: float, now: float) -> bool: ...
    def release_lock(self, service: str, run_id: str) -> None: ...
    def lock_holder(self, service: str, now: float) -> dict[str, Any] | None: ...
    def force_unlock(self, service: str) -> dict[str, Any] | None: ...
