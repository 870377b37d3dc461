"""The wave decisions as a functional core: (fleet, journal, now) -> the one next action. No AWS, no store.

The local executor (`fleet.run`) loops: decide, act, record, decide again. A durable engine (AWS Step Functions)
runs the same decisions between its states, so every input is in the journal and every output is a value."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from orchestrator.fleet.calendar import freeze_at, next_opening, window_open
from orchestrator.fleet.model import Fleet, Freeze, Wave

# A target's state in one fleet run.
PENDING, RUNNING, PASSED, FAILED, NEEDS_HUMAN, RETURNED, CANCELLED = (
    "pending",
    "running",
    "passed",  # passed its gates for this release (or was already live and good)
    "failed",  # its release failed and it was rolled back: on a good revision
    "needs_human",  # its rollback could not be verified, or it was interrupted: a person must look
    "returned",  # had passed, and went back to its previous good revision when the line stopped
    "cancelled",  # never started: the line stopped first
)
DONE_TARGET = frozenset({PASSED, FAILED, NEEDS_HUMAN, RETURNED, CANCELLED})


@dataclass(frozen=True)
class TargetRecord:
    """One target's part in a fleet run."""

    status: str = PENDING
    revision: str | None = None  # what it is on after its run (the live revision)
    message: str = ""
    exit_code: int | None = None
    run_id: str | None = None  # the per-target engine's run id (its own journal and trail)
    started_at: float | None = None
    ended_at: float | None = None
    delivered: bool = False  # False: it was already live and good (nothing changed on it)

    def to_dict(self) -> dict[str, Any]:
        """Plain data."""
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TargetRecord:
        """Back from plain data."""
        fields: dict[str, Any] = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**fields)


@dataclass(frozen=True)
class WaveRecord:
    """One wave's part in a fleet run."""

    status: str = PENDING  # pending | running | baking | passed | stopped | cancelled
    started_at: float | None = None
    bake_from: float | None = None  # when the last target passed: the wave's bake counts from here
    ended_at: float | None = None
    approved_by: str | None = None
    override: str | None = None  # `--ignore-window --reason TEXT`, recorded

    def to_dict(self) -> dict[str, Any]:
        """Plain data."""
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WaveRecord:
        """Back from plain data."""
        fields: dict[str, Any] = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**fields)


@dataclass(frozen=True)
class FleetRun:
    """The fleet journal's current value: everything the next decision needs."""

    run_id: str
    release: str  # what is being released (phase -> image identity), the same for every target
    to_phase: str | None
    started_at: float
    waves: dict[str, WaveRecord]
    targets: dict[str, TargetRecord]
    status: str = "running"  # running | waiting_approval | waiting_window | frozen | succeeded | stopped | needs_human
    stopped: str | None = None  # why the line was stopped
    events: tuple[dict[str, Any], ...] = ()

    @classmethod
    def new(cls, fleet: Fleet, run_id: str, release: str, to_phase: str | None, now: float) -> FleetRun:
        """A fresh run: every wave and target pending."""
        return cls(
            run_id=run_id,
            release=release,
            to_phase=to_phase,
            started_at=now,
            waves={w.name: WaveRecord() for w in fleet.waves},
            targets={t.name: TargetRecord() for t in fleet.targets},
        )

    @property
    def finished(self) -> bool:
        """True when nothing more will happen in this run."""
        return self.status in ("succeeded", "stopped", "needs_human")

    def with_target(self, name: str, **changes: Any) -> FleetRun:
        """A new value with one target's record changed."""
        return replace(self, targets={**self.targets, name: replace(self.targets[name], **changes)})

    def with_wave(self, name: str, **changes: Any) -> FleetRun:
        """A new value with one wave's record changed."""
        return replace(self, waves={**self.waves, name: replace(self.waves[name], **changes)})

    def with_event(self, at: float, kind: str, **data: Any) -> FleetRun:
        """A new value with one more event in its trail."""
        return replace(self, events=(*self.events, {"at": at, "kind": kind, **data}))

    def to_dict(self) -> dict[str, Any]:
        """Plain data: the journal as stored, and the document `fleet status --output json` prints."""
        return {
            "run_id": self.run_id,
            "release": self.release,
            "to_phase": self.to_phase,
            "started_at": self.started_at,
            "status": self.status,
            "stopped": self.stopped,
            "waves": {k: v.to_dict() for k, v in self.waves.items()},
            "targets": {k: v.to_dict() for k, v in self.targets.items()},
            "events": list(self.events),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FleetRun:
        """Back from plain data."""
        return cls(
            run_id=data["run_id"],
            release=data["release"],
            to_phase=data.get("to_phase"),
            started_at=data["started_at"],
            status=data.get("status", "running"),
            stopped=data.get("stopped"),
            waves={k: WaveRecord.from_dict(v) for k, v in data["waves"].items()},
            targets={k: TargetRecord.from_dict(v) for k, v in data["targets"].items()},
            events=tuple(data.get("events") or ()),
        )


# ------------------------------------------------------------------------------------------------ actions
@dataclass(frozen=True)
class Deliver:
    """Run the per-target engine on these targets (at most the wave's max_parallel at once)."""

    wave: str
    targets: tuple[str, ...]


@dataclass(frozen=True)
class Bake:
    """Every target of the wave passed: watch them until `until` (the wave's bake)."""

    wave: str
    until: float


@dataclass(frozen=True)
class CloseWave:
    """The wave's bake held: it passed, and the next wave may start."""

    wave: str


@dataclass(frozen=True)
class WaitApproval:
    """A manual wave: stop here (exit 0) until a person approves it."""

    wave: str


@dataclass(frozen=True)
class WaitWindow:
    """Outside every deployment window: stop here (exit 0) until one opens."""

    wave: str
    opens_at: datetime | None


@dataclass(frozen=True)
class Frozen:
    """A freeze is in force: no forward move starts."""

    wave: str
    freeze: Freeze


@dataclass(frozen=True)
class StopLine:
    """A target failed: return what must go back, cancel what has not started; later waves never start."""

    wave: str
    failed: tuple[str, ...]
    give_back: tuple[str, ...]  # targets that passed this release and now go back (this wave, maybe earlier ones)
    cancel: tuple[str, ...]  # targets that never started
    reason: str


@dataclass(frozen=True)
class Finish:
    """Nothing more to do: the run ended with `status`."""

    status: str  # succeeded | stopped | needs_human


Action = Deliver | Bake | CloseWave | WaitApproval | WaitWindow | Frozen | StopLine | Finish


@dataclass(frozen=True)
class Permissions:
    """What the person running the command allowed for this invocation."""

    approved: frozenset[str] = field(default_factory=frozenset)  # waves approved (`--approve WAVE`, `fleet approve`)
    ignore_window: bool = False  # `--ignore-window --reason TEXT`


def decide(fleet: Fleet, run: FleetRun, now: float, wall: datetime, allow: Permissions | None = None) -> Action:
    """The one next action for this fleet run, from the journal and the time alone."""
    allow = allow or Permissions()
    if run.stopped is not None:
        return _after_stop(run)
    for wave in fleet.waves:
        rec = run.waves[wave.name]
        if rec.status == "passed":
            continue
        failed = tuple(t for t in wave.targets if run.targets[t].status in (FAILED, NEEDS_HUMAN))
        if failed:
            return _stop(fleet, run, wave, failed)
        if rec.status == PENDING:
            freeze = freeze_at(fleet.freezes, wall)
            if freeze is not None:
                return Frozen(wave.name, freeze)
            if not allow.ignore_window and not window_open(fleet.windows, wall):
                return WaitWindow(wave.name, next_opening(fleet.windows, wall))
            if wave.approval == "manual" and rec.approved_by is None and wave.name not in allow.approved:
                return WaitApproval(wave.name)
        waiting = tuple(t for t in wave.targets if run.targets[t].status in (PENDING, RUNNING))
        if waiting:
            # a test-traffic barrier holds the wave's targets at their hooks together: they all start at once
            together = len(waiting) if wave.barrier == "test-traffic" else wave.max_parallel
            return Deliver(wave.name, waiting[:together])
        start = rec.bake_from if rec.bake_from is not None else now
        if now < start + wave.bake:
            return Bake(wave.name, start + wave.bake)
        return CloseWave(wave.name)
    return Finish("succeeded")


def _stop(fleet: Fleet, run: FleetRun, wave: Wave, failed: tuple[str, ...]) -> StopLine:
    """Stop the line at `wave`: per on_failure, who goes back and who never starts."""
    order = [w.name for w in fleet.waves]
    here = order.index(wave.name)
    give_back: list[str] = []
    if fleet.on_failure.this_wave == "rollback":
        give_back += [t for t in wave.targets if run.targets[t].status == PASSED]
    if fleet.on_failure.earlier_waves == "rollback":
        for w in fleet.waves[:here]:
            give_back += [t for t in w.targets if run.targets[t].status == PASSED]
    # Targets not started yet never start. With this_wave: finish, the ones already through stay where they are.
    cancel = [t for w in fleet.waves[here:] for t in w.targets if run.targets[t].status == PENDING]
    return StopLine(wave.name, failed, tuple(give_back), tuple(cancel), _reason(run, failed))


def _reason(run: FleetRun, failed: tuple[str, ...]) -> str:
    parts = [f"{t}: {run.targets[t].message}" if run.targets[t].message else t for t in failed]
    return "failed in " + "; ".join(parts)


def _after_stop(run: FleetRun) -> Finish:
    human = any(r.status == NEEDS_HUMAN for r in run.targets.values())
    return Finish("needs_human" if human else "stopped")
