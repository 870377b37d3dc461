"""The fleet.yaml contract as frozen values: targets, waves, what a failure does, windows and freezes.

As in config/model.py, each field read from fleet.yaml names its checker and states its default, once."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, time
from pathlib import Path
from typing import Any

from orchestrator.config import schema as s
from orchestrator.config.section import key
from orchestrator.fleet import schema as fs

FLEET_FILE = "fleet.yaml"


@dataclass(frozen=True)
class Target:
    """One ECS service somewhere: its pipeline, and the keys that override that pipeline's service/registry."""

    name: str  # its key under `targets:`
    pipeline: Path  # absolute path of the pipeline.yaml this target runs (the loader resolves it)
    region: str | None = key(s.string, None)
    cluster: str | None = key(s.string, None)
    service: str | None = key(s.string, None)  # the ECS service name, when it differs from the pipeline's
    profile: str | None = key(s.string, None)
    role_arn: str | None = key(s.string, None)
    registry: dict[str, Any] | None = key(fs.registry, None)  # {"ecr": NAME} or {"url": URL}: its own registry

    @staticmethod
    def problems(d: dict[str, Any]) -> list[tuple[str, str]]:
        """A profile or a role, not both."""
        return (
            [("role_arn", "give `profile` or `role_arn`, not both")] if d.get("profile") and d.get("role_arn") else []
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain data (fleet plan, status, Step Functions input)."""
        return {
            "name": self.name,
            "pipeline": str(self.pipeline),
            "region": self.region,
            "cluster": self.cluster,
            "service": self.service,
            "profile": self.profile,
            "role_arn": self.role_arn,
            "registry": self.registry,
        }


@dataclass(frozen=True)
class Wave:
    """Targets released together; the next wave starts only when this one passed and its bake held."""

    name: str = key(fs.name("wave"))
    targets: tuple[str, ...] = key(s.list_of(s.string, 1))
    bake: float = key(s.duration, 0.0)
    # auto | manual: a manual wave waits for `snail fleet approve WAVE`
    approval: str = key(s.one_of("auto", "manual"), "auto")
    max_parallel: int = key(s.integer(1, 100), 1)
    barrier: str = key(s.one_of("none", "test-traffic"), "none")

    def to_dict(self) -> dict[str, Any]:
        """Plain data."""
        return {
            "name": self.name,
            "targets": list(self.targets),
            "bake_seconds": self.bake,
            "approval": self.approval,
            "max_parallel": self.max_parallel,
            "barrier": self.barrier,
        }


@dataclass(frozen=True)
class OnFailure:
    """What stopping the line does: to the failing wave's other targets, and to the waves already through."""

    this_wave: str = key(s.one_of("rollback", "finish"), "rollback")
    earlier_waves: str = key(s.one_of("keep", "rollback"), "keep")


@dataclass(frozen=True, kw_only=True)
class Window:
    """When a wave may START (a running wave is never interrupted by a window closing)."""

    days: frozenset[int] = key(fs.days, frozenset(range(7)))  # 0 = Monday
    start: time = key(fs.clock, name="from")
    end: time = key(fs.clock, name="to")
    zone: str = key(fs.zone, "UTC")

    @staticmethod
    def problems(d: dict[str, Any]) -> list[tuple[str, str]]:
        """`to` after `from`, on one day."""
        if isinstance(d.get("from"), time) and isinstance(d.get("to"), time) and d["to"] <= d["from"]:
            return [("to", "must be later than `from` (a window does not span midnight: write two)")]
        return []

    def label(self) -> str:
        """'mon-thu 09:00-16:00 America/New_York'."""
        names = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        days = ",".join(names[d] for d in sorted(self.days))
        return f"{days} {self.start:%H:%M}-{self.end:%H:%M} {self.zone}"


@dataclass(frozen=True)
class Freeze:
    """Days on which no forward move starts (rollbacks and `fleet stop` are never blocked)."""

    start: date = key(fs.day, name="from")
    end: date = key(fs.day, name="to")  # inclusive
    reason: str = key(s.string, "")

    @staticmethod
    def problems(d: dict[str, Any]) -> list[tuple[str, str]]:
        """`to` not before `from`."""
        if isinstance(d.get("from"), date) and isinstance(d.get("to"), date) and d["to"] < d["from"]:
            return [("to", "is before `from`")]
        return []


@dataclass(frozen=True)
class FleetState:
    """Where the fleet journal and the fleet lock live."""

    backend: str = key(s.one_of("local", "dynamodb"), "local")
    path: str = key(s.file_path, ".snail")
    table: str | None = key(s.string, None)
    region: str | None = key(s.string, None)
    # the fleet's key in a shared table (several fleets may share one table)
    name: str = key(fs.name("fleet"), "default")

    problems = staticmethod(s.dynamodb_needs_table)


@dataclass(frozen=True)
class Fleet:
    """A whole fleet.yaml, checked."""

    path: Path
    pipeline: Path
    targets: tuple[Target, ...]
    waves: tuple[Wave, ...]
    on_failure: OnFailure = field(default_factory=OnFailure)
    windows: tuple[Window, ...] = ()
    freezes: tuple[Freeze, ...] = ()
    state: FleetState = field(default_factory=FleetState)

    @property
    def root(self) -> Path:
        """The folder fleet.yaml is in; relative paths resolve against it."""
        return self.path.parent

    def target(self, name: str) -> Target:
        """The target called `name`; KeyError if there is none."""
        for t in self.targets:
            if t.name == name:
                return t
        raise KeyError(name)

    def wave_of(self, target: str) -> Wave:
        """The wave a target is released in."""
        for w in self.waves:
            if target in w.targets:
                return w
        raise KeyError(target)

    def state_dir(self) -> Path:
        """The local folder of the fleet journal (absolute)."""
        p = Path(self.state.path)
        return p if p.is_absolute() else self.root / p

    def to_dict(self) -> dict[str, Any]:
        """Plain data: what `fleet plan --output json` and a Step Functions input carry."""
        return {
            "path": str(self.path),
            "targets": [t.to_dict() for t in self.targets],
            "waves": [w.to_dict() for w in self.waves],
            "on_failure": {"this_wave": self.on_failure.this_wave, "earlier_waves": self.on_failure.earlier_waves},
            "windows": [w.label() for w in self.windows],
            "freezes": [{"from": str(f.start), "to": str(f.end), "reason": f.reason} for f in self.freezes],
        }
