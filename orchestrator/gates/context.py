"""What a gate may look at: the service, the revision we deployed, endpoints, the clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from orchestrator.clock import Clock, SystemClock


@dataclass
class GateContext:
    """Everything a gate evaluates against; built by the engine for each phase (or rollback)."""

    cluster: str
    service: str
    revision_arn: str
    port: int
    ecs: Any = None  # orchestrator.aws.ecs.EcsClient
    aws: Any = None  # orchestrator.aws.session.AwsContext
    endpoint: str | None = None  # a load balancer or fixed base URL, if configured
    deployed_at: datetime | None = None
    clock: Clock = field(default_factory=SystemClock)
    progress: Callable[[str, dict[str, Any]], None] = lambda event, data: None
    phase: str = ""
    workdir: str = "."
