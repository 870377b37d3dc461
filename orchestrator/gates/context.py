"""What a gate may look at: the service, the revision we deployed, endpoints, the clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from orchestrator.clock import Clock, SystemClock

if TYPE_CHECKING:
    from orchestrator.aws.ecs import EcsClient, ServiceView
    from orchestrator.aws.session import AwsContext
    from orchestrator.gates.verdict import Verdict


def _quiet(event: str, data: dict[str, Any]) -> None:
    """No progress display."""


class EarlyJudgment(Protocol):
    """A rolling phase's early judgment (gates/early.py), called by the ecs-rollout gate's polls."""

    def look(self, ctx: GateContext, svc: ServiceView) -> Verdict | None:
        """A poll saw our rollout IN_PROGRESS: judge our new tasks; the failing verdict, or None."""
        ...

    def completed(self, ctx: GateContext, svc: ServiceView) -> str:
        """The rollout completed: hand on what the early looks found; what passed early (for the trail)."""
        ...


@dataclass
class Findings:
    """What the gates of one judgment found and hand on to the next gate (and to the bake): the one part of a gate
    context that changes while it is judged."""

    # Task endpoints found by the last passing gate, by port: the next gate of the same judgment asks the same
    # tasks without listing them again. Any answer that is not a pass forgets them (tasks may have changed).
    endpoints: dict[int, list[str]] = field(default_factory=dict)
    # The task ARNs behind those endpoints (our revision's RUNNING tasks when they were last listed): the bake
    # knows which tasks answered the gates, and a task of ours gone since is a crash (or a replacement).
    task_arns: tuple[str, ...] = ()
    # The service as this judgment's ecs-rollout gate last saw it (its load balancer entries do not change during
    # a judgment): a later gate that needs them reads them here instead of describing the service again.
    service_view: ServiceView | None = None


@dataclass(frozen=True)
class GateContext:
    """Everything a gate evaluates against; built by the engine for each phase (or rollback). Frozen: a variant is a
    new context (dataclasses.replace); what the gates find goes to `found`, shared by the variants."""

    cluster: str
    service: str
    revision_arn: str
    port: int
    ecs: EcsClient | None = None
    aws: AwsContext | None = None
    endpoint: str | None = None  # a load balancer or fixed base URL, if configured
    deployed_at: datetime | None = None
    clock: Clock = field(default_factory=SystemClock)
    progress: Callable[[str, dict[str, Any]], None] = _quiet
    phase: str = ""
    workdir: str = "."
    # Between retries of any gate, given this context: a terminal verdict when ECS failed or replaced our deployment
    # (None: carry on).
    watch: Callable[[GateContext], Verdict | None] | None = None
    # Between retries: raises when the run must stop (the lock was lost).
    checkpoint: Callable[[], None] | None = None
    found: Findings = field(default_factory=Findings)
    # While our rolling update is IN_PROGRESS, each ecs-rollout poll hands it the service it saw: the phase's gates
    # judged early on our new tasks (gates/early.py). None: no early judgment here.
    early: EarlyJudgment | None = None
    # When the gate being judged must be done (monotonic seconds on `clock`; None: no timeout). run_gate hands each
    # gate a context with it, from the gate's `timeout`, so its requests and commands are bounded by what is left.
    deadline: float | None = None

    @property
    def endpoints(self) -> dict[int, list[str]]:
        """Task endpoints the last passing gate found, by port (Findings.endpoints)."""
        return self.found.endpoints

    @property
    def task_arns(self) -> tuple[str, ...]:
        """The task ARNs behind those endpoints (Findings.task_arns)."""
        return self.found.task_arns

    @property
    def service_view(self) -> ServiceView | None:
        """The service as this judgment's ecs-rollout gate last saw it (Findings.service_view)."""
        return self.found.service_view

    def left(self) -> float | None:
        """Seconds left before the current gate's deadline (None: no deadline)."""
        return None if self.deadline is None else self.deadline - self.clock.monotonic()
