"""What a phase returns: it passed, it failed before it changed the service, or it failed after."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Union

from orchestrator.aws.ecs import ServiceView
from orchestrator.gates.verdict import Verdict


@dataclass(frozen=True)
class PhasePassed:
    """The phase's revision passed its gates and the bake, and is marked good."""

    phase: str
    revision_arn: str
    image: str
    service: ServiceView | None = None  # the service as the bake last saw it (the next phase starts from it)


@dataclass(frozen=True)
class FailedBeforeDeploy:
    """The phase failed before the service was pointed at anything new: nothing to roll back."""

    phase: str
    cause: BaseException
    interrupted: bool = False

    @property
    def reason(self) -> str:
        """The cause in one line."""
        return str(self.cause) or type(self.cause).__name__


@dataclass(frozen=True)
class FailedAfterDeploy:
    """The service runs (or may run) `revision_arn`, which did not pass: a rollback decision is due."""

    phase: str
    revision_arn: str
    reason: str
    deployed_at: datetime | None = None
    verdict: Verdict | None = None  # the failing gate's verdict, when a gate decided
    cause: BaseException | None = None  # the exception, when something else ended the phase
    interrupted: bool = False  # Ctrl-C / SIGTERM
    lock_lost: bool = False  # our lease was taken or could not be renewed
    traffic_returned: bool = False  # ECS already put all traffic back on blue (a strategy's ROLLBACK): verify only


PhaseResult = Union[PhasePassed, FailedBeforeDeploy, FailedAfterDeploy]  # noqa: UP007
