"""What a gate may look at: the service, the revision we deployed, endpoints, the clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from orchestrator.clock import Clock, SystemClock

if TYPE_CHECKING:
    from orchestrator.aws.ecs import EcsClient, ServiceView
    from orchestrator.aws.session import AwsContext
    from orchestrator.gates.verdict import Verdict


def _quiet(event: str, data: dict[str, Any]) -> None:
    """No progress display."""


@dataclass
class GateContext:
    """Everything a gate evaluates against; built by the engine for each phase (or rollback)."""

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
    # Between retries of any gate: a terminal verdict when ECS failed or replaced our deployment (None: carry on).
    watch: Callable[[], Verdict | None] | None = None
    # Between retries: raises when the run must stop (the lock was lost).
    checkpoint: Callable[[], None] | None = None
    # Task endpoints found by the last passing gate, by port: the next gate of the same judgment asks the same
    # tasks without listing them again. Any answer that is not a pass forgets them (tasks may have changed).
    endpoints: dict[int, list[str]] = field(default_factory=dict)
    # The task ARNs behind those endpoints (our revision's RUNNING tasks when they were last listed): the bake
    # knows which tasks answered the gates, and a task of ours gone since is a crash (or a replacement).
    task_arns: tuple[str, ...] = ()
    # The service as this judgment's ecs-rollout gate last saw it (its load balancer entries do not change during
    # a judgment): a later gate that needs them reads them here instead of describing the service again.
    service_view: ServiceView | None = None
    # When the gate being judged must be done (monotonic seconds on `clock`; None: no timeout). run_gate sets it
    # from the gate's `timeout`, so a gate's requests and commands are bounded by what is left, not only its retries.
    deadline: float | None = None

    def left(self) -> float | None:
        """Seconds left before the current gate's deadline (None: no deadline)."""
        return None if self.deadline is None else self.deadline - self.clock.monotonic()
