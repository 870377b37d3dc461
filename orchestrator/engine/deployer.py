"""The deployer interface: what a phase does between "revision registered" and "judged", in one of two styles.

`make_plan` chooses a phase's deployer once (`PhasePlan.deployer`) and `Engine._phase` dispatches to it:
- `rolling` (engine/rolling.py): ECS's rolling update, then the engine's gates and bake;
- `traffic` (engine/traffic.py): ECS's blue-green, canary or linear, judged at PAUSE hooks.
A deployer gets a `DeployContext` (exactly what it may use) and returns a `PhaseResult`; it never raises, and it
never sees the engine."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from orchestrator.aws.deployments import DeploymentsClient
from orchestrator.aws.ecs import EcsClient, ServiceView
from orchestrator.aws.session import AwsContext
from orchestrator.clock import Clock
from orchestrator.config.gates import GateSpec
from orchestrator.config.model import Phase, ServiceSpec
from orchestrator.engine import bake
from orchestrator.engine.journal import Journal
from orchestrator.engine.judging import Judge
from orchestrator.engine.results import FailedAfterDeploy, FailedBeforeDeploy, PhaseResult
from orchestrator.errors import LockLost, SnailError
from orchestrator.plan import ROLLING, TRAFFIC, PhasePlan
from orchestrator.state.base import StateStore

__all__ = ["ROLLING", "TRAFFIC", "DeployContext", "Deployer", "failed_after"]


def failed_after(phase: str, revision_arn: str, deployed_at: datetime | None, exc: BaseException) -> FailedAfterDeploy:
    """Whatever raised after the update (a bug, an AWS fault, a lost lock, Ctrl-C) as a rollback decision."""
    interrupted = isinstance(exc, KeyboardInterrupt)
    lost = isinstance(exc, LockLost)
    reason = "interrupted" if interrupted else (str(exc) or type(exc).__name__)
    if not isinstance(exc, (SnailError, KeyboardInterrupt)):
        reason = f"unexpected {type(exc).__name__}: {reason}"
    return FailedAfterDeploy(
        phase, revision_arn, reason, deployed_at, cause=exc, interrupted=interrupted, lock_lost=lost
    )


@dataclass(frozen=True)
class DeployContext:
    """Exactly what a deployer may use for one phase: the plan, the revision, the service before the update, the
    judge (gates and bake), the lease's safe point, the journal, the clock and the AWS adapters."""

    plan: PhasePlan
    revision_arn: str
    service: ServiceView | None  # the service before the update (None: created just now on the revision)
    deployed_at: datetime
    image: str  # the image reference the revision runs
    spec: ServiceSpec
    journal: Journal
    clock: Clock
    judge: Judge
    checkpoint: Callable[[], None]  # a safe point: raises LockLost when our lease was lost
    ecs: EcsClient
    deployments: DeploymentsClient
    aws: AwsContext  # the load balancer adapters are made from it (the traffic deployer's wiring)
    store: StateStore  # read only: an earlier run's journal says which deployment it left in flight
    owned_alarms: frozenset[str] = frozenset()  # the deployment alarms snail manages (the pipeline's alarm gates)
    on_interrupt: str = "rollback"
    # A fleet's `barrier: test-traffic`: called at the test-traffic hook once green passed its gates, before
    # CONTINUE; returns when the whole wave passed, or raises (the fleet's GoBack, an interrupt: back to blue).
    test_traffic_hold: Callable[[], None] | None = None

    @property
    def phase(self) -> Phase:
        """The phase being deployed."""
        return self.plan.phase

    def failed_after(self, exc: BaseException) -> FailedAfterDeploy:
        """Anything at all raised after the update: a rollback decision."""
        return failed_after(self.phase.name, self.revision_arn, self.deployed_at, exc)

    def after_update(self, exc: BaseException) -> FailedBeforeDeploy | FailedAfterDeploy:
        """An update that raised (or whose answer never came): did it take effect? ECS says. If the service now runs
        our revision, a rollback decision; if not, nothing changed."""
        before = self.service.task_definition if self.service is not None else None
        if before != self.revision_arn and self.runs_revision():
            return self.failed_after(exc)
        return FailedBeforeDeploy(self.phase.name, exc, interrupted=isinstance(exc, KeyboardInterrupt))

    def runs_revision(self) -> bool:
        """True when the service's PRIMARY deployment is our revision (an update whose answer we never saw may
        have happened)."""
        try:
            service = self.ecs.service(self.spec.cluster, self.spec.name)
        except Exception:  # cannot tell: assume it happened, so a rollback decision is made
            return True
        return service is not None and service.task_definition == self.revision_arn

    def judged(
        self, gates: tuple[GateSpec, ...], seen: list[ServiceView] | None = None, early: bool = False
    ) -> FailedAfterDeploy | None:
        """`gates`, then the bake (the phase's gates again): the failure as a result, or None when it passed.
        `early`: a rolling update's new tasks are judged while its rollout is in progress (gates/early.py)."""
        try:
            failed = self.judge.and_bake(
                self.journal,
                self.phase,
                gates,
                self.plan.gates,
                self.revision_arn,
                self.deployed_at,
                seen=seen,
                early=early,
            )
        except BaseException as exc:  # noqa: BLE001 - after the update, anything at all ends in a rollback
            return self.failed_after(exc)
        if failed is None:
            return None
        return FailedAfterDeploy(self.phase.name, self.revision_arn, bake.reason(failed), self.deployed_at, failed)


class Deployer(Protocol):
    """One deployment style: update the service to the phase's revision and judge it."""

    name: str

    def deploy(self, ctx: DeployContext) -> PhaseResult:
        """The phase's result (PhasePassed: not yet marked good; the engine marks it). Never raises."""
        ...
