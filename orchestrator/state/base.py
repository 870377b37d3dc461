"""The state store protocol: runs, steps (intent then result), trail events, good revisions, the lock."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Protocol

from orchestrator.arns import short_name


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
    gates: list[dict[str, Any]] = field(default_factory=list)  # the gate specs (to_dict) it passed

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON output."""
        return asdict(self)


GOOD, FAILED, HELD, RELEASED = "good", "failed", "held", "released"
VERDICTS = (GOOD, FAILED, HELD, RELEASED)


@dataclass
class Mark:
    """A verdict on one task-definition revision; written to AWS as its tags, cached and journaled here.

    good: it passed its phase's gates; failed: it failed them (its spec is quarantined); held: a human rolled
    back from it (its spec is skipped until `snail release` or a spec change); released: a hold was lifted
    from a revision that had no verdict before."""

    service: str
    revision_arn: str
    phase: str
    verdict: str
    spec_hash: str = ""  # the plan's spec hash (what quarantine and holds match on)
    content_hash: str = ""  # marks.content_hash of the described revision (what verification recomputes)
    gates_hash: str = ""
    gates: list[dict[str, Any]] = field(default_factory=list)  # local only: too big for a tag
    at: str = ""
    run_id: str = ""
    reason: str = ""
    live_since: str = ""  # when a forward deploy made it live (a rollback to it does not change this)
    by: str = ""  # user@host, for holds and releases
    prior: str = ""  # the verdict a hold replaced (what `snail release` restores)
    image: str = ""
    digest: str | None = None
    source: str = "local"  # local | aws (read back from the revision's tags by a sync)
    active: bool = True  # False once the revision is deregistered (filled in from the revision cache)

    @property
    def short(self) -> str:
        """'family:N' as the console shows it."""
        return short_name(self.revision_arn)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON output."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], **overrides: Any) -> Mark:
        """A mark from stored JSON; keys this version does not know (a newer writer's) are left out."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in {**data, **overrides}.items() if k in known})

    @classmethod
    def from_good(cls, record: GoodRecord) -> Mark:
        """A GoodRecord as a good mark (it went live when it was marked, as far as the record knows)."""
        return cls(
            service=record.service,
            revision_arn=record.revision_arn,
            phase=record.phase,
            verdict=GOOD,
            spec_hash=record.spec_hash,
            gates=list(record.gates),
            at=record.at,
            run_id=record.run_id,
            live_since=record.at,
            image=record.image,
            digest=record.digest,
        )

    def to_good(self) -> GoodRecord:
        """The GoodRecord view the engine used before marks (good_history)."""
        return GoodRecord(
            self.service,
            self.phase,
            self.revision_arn,
            self.image,
            self.digest,
            self.run_id,
            self.at,
            self.spec_hash,
            list(self.gates),
        )


def current_marks(marks: list[Mark]) -> list[Mark]:
    """The newest mark of each revision (marks come newest first), in the same order."""
    seen: set[str] = set()
    out = []
    for m in marks:
        if m.revision_arn not in seen:
            seen.add(m.revision_arn)
            out.append(m)
    return out


def good_from_marks(marks: list[Mark], active_only: bool = False) -> list[GoodRecord]:
    """good_history from marks: revisions whose newest mark is good, newest first."""
    return [m.to_good() for m in current_marks(marks) if m.verdict == GOOD and (m.active or not active_only)]


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


@dataclass(frozen=True)
class LockRow:
    """The lock as stored: who holds it and its heartbeat counter, which moves on every renewal.

    Nobody judges expiry from `expires_at` (the holder's own wall clock): an observer takes a lease over only
    when `token` has not changed for the lease duration on its own monotonic clock (orchestrator.engine.lock)."""

    service: str
    run_id: str
    holder: dict[str, Any]
    beats: int
    lease: float
    expires_at: float = 0.0

    @property
    def token(self) -> str:
        """Names this holder at this heartbeat: a conditional takeover or unlock succeeds only if it is unchanged."""
        return f"{self.run_id}#{self.beats}"

    def holder_view(self) -> dict[str, Any]:
        """The holder record with the counter and lease, as `lock_holder` shows it."""
        return {**self.holder, "beats": self.beats, "lease": self.lease, "expires_at": self.expires_at}


def parse_token(token: str) -> tuple[str, int]:
    """(run_id, beats) of a LockRow token."""
    run_id, _, beats = token.rpartition("#")
    return run_id, int(beats)


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

    def put_mark(self, mark: Mark) -> None: ...
    def marks(self, service: str) -> list[Mark]: ...
    def cached_revisions(self, service: str) -> dict[str, str]: ...
    def cache_revisions(self, service: str, statuses: dict[str, str]) -> None: ...

    # The lock: a lease row with a heartbeat counter. acquire_lock only takes a free lock (or ours again);
    # taking over a dead or expired holder is take_over, one conditional write on the token observed.
    # `now` (the caller's wall clock) only feeds the informational expires_at.
    def acquire_lock(
        self, service: str, holder: dict[str, Any], lease: float, now: float = 0.0
    ) -> dict[str, Any] | None: ...
    def heartbeat(self, service: str, run_id: str, lease: float, now: float = 0.0) -> bool: ...
    def release_lock(self, service: str, run_id: str) -> None: ...
    def lock_holder(self, service: str, now: float = 0.0) -> dict[str, Any] | None: ...
    def lock_state(self, service: str) -> LockRow | None: ...
    def take_over(
        self, service: str, expected_holder_token: str, new_holder: dict[str, Any], lease: float, now: float = 0.0
    ) -> bool: ...
    def force_unlock(self, service: str, expected_holder_token: str | None = None) -> dict[str, Any] | None: ...
