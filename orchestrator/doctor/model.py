"""Doctor's results as data: one Check per question, a DoctorReport of them all."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

Status = Literal["passed", "warning", "failed", "skipped"]
PASSED: Status = "passed"
WARNING: Status = "warning"
FAILED: Status = "failed"
SKIPPED: Status = "skipped"


@dataclass(frozen=True)
class Check:
    """One preflight question answered: its status, what was seen, and the exact fix."""

    id: str
    title: str
    status: Status
    evidence: str
    fix: str | None = None

    @property
    def cause(self) -> str:
        """The evidence's first line: the conclusion in one sentence."""
        return self.evidence.splitlines()[0] if self.evidence else ""

    def to_dict(self) -> dict[str, Any]:
        """Plain data for `--output json` and the trail."""
        return asdict(self)


@dataclass(frozen=True)
class DoctorReport:
    """Every check of one doctor run, in the order they were made."""

    checks: tuple[Check, ...]

    @property
    def failed(self) -> tuple[Check, ...]:
        """The checks that failed."""
        return tuple(c for c in self.checks if c.status == FAILED)

    @property
    def warnings(self) -> tuple[Check, ...]:
        """The checks that passed with a warning."""
        return tuple(c for c in self.checks if c.status == WARNING)

    def get(self, check_id: str) -> Check:
        """The check with this id; KeyError if doctor made none."""
        for c in self.checks:
            if c.id == check_id:
                return c
        raise KeyError(check_id)

    def ok(self, strict: bool = False) -> bool:
        """No check failed (and, when strict, none warned)."""
        return not self.failed and not (strict and self.warnings)

    def counts(self) -> dict[str, int]:
        """How many checks ended in each status."""
        out: dict[str, int] = {PASSED: 0, WARNING: 0, FAILED: 0, SKIPPED: 0}
        for c in self.checks:
            out[c.status] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain data for `--output json`."""
        return {"ok": self.ok(), "counts": self.counts(), "checks": [c.to_dict() for c in self.checks]}
