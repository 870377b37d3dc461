"""The fleet.yaml contract as frozen values: targets, waves, what a failure does, windows and freezes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, time
from pathlib import Path
from typing import Any

FLEET_FILE = "fleet.yaml"


@dataclass(frozen=True)
class Target:
    """One ECS service somewhere: its pipeline, and the keys that override that pipeline's service/registry."""

    name: str
    pipeline: Path  # absolute path of the pipeline.yaml this target runs
    region: str | None = None
    cluster: str | None = None
    service: str | None = None  # the ECS service name, when it differs from the pipeline's
    profile: str | None = None
    role_arn: str | None = None
    registry: dict[str, Any] | None = None  # {"ecr": NAME} or {"url": URL}: this target's own registry

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

    name: str
    targets: tuple[str, ...]
    bake: float = 0.0
    approval: str = "auto"  # auto | manual: a manual wave waits for `snail fleet approve WAVE`
    max_parallel: int = 1
    barrier: str = "none"  # none | test-traffic

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

    this_wave: str = "rollback"  # rollback | finish
    earlier_waves: str = "keep"  # keep | rollback


@dataclass(frozen=True)
class Window:
    """When a wave may START (a running wave is never interrupted by a window closing)."""

    days: frozenset[int]  # 0 = Monday
    start: time
    end: time
    zone: str = "UTC"

    def label(self) -> str:
        """'mon-thu 09:00-16:00 America/New_York'."""
        names = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        days = ",".join(names[d] for d in sorted(self.days))
        return f"{days} {self.start:%H:%M}-{self.end:%H:%M} {self.zone}"


@dataclass(frozen=True)
class Freeze:
    """Days on which no forward move starts (rollbacks and `fleet stop` are never blocked)."""

    start: date
    end: date  # inclusive
    reason: str = ""


@dataclass(frozen=True)
class FleetState:
    """Where the fleet journal and the fleet lock live."""

    backend: str = "local"  # local | dynamodb
    path: str = ".snail"
    table: str | None = None
    region: str | None = None
    name: str = "default"  # the fleet's key in a shared table (several fleets may share one table)


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
