"""Rollback: a recorded decision first, then the act, then the diagnosis, then the verification.

The target is the newest revision that passed snail's own gates for the service (never "N-1", never a revision
ECS merely called COMPLETED); it is known before anything is changed. A rollback is verified with the gates the
target passed (recorded with its good mark), not with whatever the files say today."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import tenacity

from orchestrator.aws.deployments import DeploymentsClient
from orchestrator.aws.ecs import EcsClient, short_name
from orchestrator.clock import Clock, SystemClock
from orchestrator.config.gates import EcsRolloutGate, GateSpec, gates_from_data, with_rollout
from orchestrator.config.model import ServiceSpec
from orchestrator.engine import strategies
from orchestrator.engine.journal import Journal
from orchestrator.engine.results import FailedAfterDeploy
from orchestrator.errors import AwsError, CredentialsExpired
from orchestrator.gates import early
from orchestrator.gates.retry import stop_at_deadline
from orchestrator.gates.verdict import Verdict
from orchestrator.state.base import GoodRecord, StateStore
from orchestrator.trail.kinds import EventKind as K

# judge(journal, gates, revision_arn, phase) -> the failing verdict, or None when every gate passed
Judge = Callable[[Journal, tuple[GateSpec, ...], str, str], "Verdict | None"]
Diagnose = Callable[[str, Any, Any], str]
DEFAULT_BUDGET = 600.0  # seconds a rollback's act rides out throttling when its gates name no ecs-rollout timeout


@dataclass(frozen=True)
class RollbackOutcome:
    """What a rollback came to: verified | failed | impossible | recorded (left in place for --resume)."""

    status: str
    message: str
    target: GoodRecord | None = None
    diagnosis: str = ""

    @property
    def verified(self) -> bool:
        """True when the service is back on a good revision and its recorded gates passed again."""
        return self.status == "verified"


class Rollback:
    """Decides, records, acts and verifies rollbacks for one service."""

    def __init__(
        self,
        ecs: EcsClient,
        store: StateStore,
        spec: ServiceSpec,
        judge: Judge,
        *,
        fallback_gates: Callable[[str], tuple[GateSpec, ...]],
        on_interrupt: str = "rollback",
        diagnose: Diagnose | None = None,
        owned_alarms: frozenset[str] = frozenset(),
        clock: Clock | None = None,
        deployments: DeploymentsClient,
    ) -> None:
        self.clock = clock or SystemClock()
        self.deployments = deployments  # a service carrying snail's PAUSE hooks is restored through it
        self.owned_alarms = owned_alarms  # deployment alarms snail set (a rollback switches them off)
        self.ecs = ecs
        self.store = store
        self.spec = spec
        self.judge = judge
        self.fallback_gates = fallback_gates
        self.on_interrupt = on_interrupt
        self.diagnose = diagnose
        self._chosen: dict[str, GoodRecord | None] = {}  # deployed revision -> its rollback target, chosen before

    def target_after(self, failed_arn: str, live: str | None = None) -> GoodRecord | None:
        """The revision to go back to when `failed_arn` fails (as chosen before its update): the one `live` before
        the update when it is good, else the newest good revision that is not the one that failed."""
        if failed_arn in self._chosen:
            return self._chosen[failed_arn]
        good = [g for g in self.store.good_history(self.spec.name) if g.revision_arn != failed_arn]
        return next((g for g in good if g.revision_arn == live), None) or next(iter(good), None)

    def choose(self, deploying_arn: str, live: str | None = None) -> GoodRecord | None:
        """Choose the target before `deploying_arn` goes live, and keep it: the store may be out by the time a
        rollback is due, and a rollback must not depend on it. The revision `live` before the update comes first
        when it is good: going back to it restores what served before the run, and its tasks, still running while
        a rolling update is in progress, are kept (a newer good revision would need new tasks started)."""
        self._chosen.pop(deploying_arn, None)
        self._chosen[deploying_arn] = self.target_after(deploying_arn, live)
        return self._chosen[deploying_arn]

    def after_failure(self, j: Journal, failure: FailedAfterDeploy) -> RollbackOutcome:
        """The automatic rollback after a phase failed on a deployed revision."""
        if failure.interrupted and self.on_interrupt == "record":
            msg = (
                f"interrupted during phase {failure.phase}; the service was left on {short_name(failure.revision_arn)},"
                " which has NOT passed its gates (rollback.on_interrupt: record): `snail run --resume` continues, "
                "`snail rollback` goes back"
            )
            j.event(K.INTERRUPTED, msg, revision=failure.revision_arn)
            return RollbackOutcome("recorded", msg)
        evidence = failure.verdict.evidence if failure.verdict is not None else {}
        target = self.target_after(failure.revision_arn)
        if target is None:
            diagnosis = self._diagnose(failure)
            msg = (
                f"phase {failure.phase} failed ({failure.reason}) and no revision has passed its gates yet, so there "
                f"is nothing to roll back to: {self._state()}. A human is needed."
            )
            j.event(K.ROLLBACK_IMPOSSIBLE, msg, reason=failure.reason, evidence=evidence, diagnosis=diagnosis)
            return RollbackOutcome("impossible", msg, diagnosis=diagnosis)
        if failure.traffic_returned and self._runs(target.revision_arn):  # ECS already switched back
            return self._restore(j, target, failure, act=False)
        j.event(
            K.DECISION,
            f"rolling back to {short_name(target.revision_arn)} (phase {target.phase}, last good) because "
            f"{failure.reason}",
            reason=failure.reason,
            target=target.revision_arn,
            evidence=evidence,
        )
        return self._restore(j, target, failure)

    def restore(self, j: Journal, target: GoodRecord) -> RollbackOutcome:
        """A manual rollback's act and verification (its decision is recorded by the caller)."""
        return self._restore(j, target, None)

    def _runs(self, arn: str) -> bool:
        try:
            service = self.ecs.service(self.spec.cluster, self.spec.name)
        except Exception:  # cannot tell: act as if it did not
            return False
        return service is not None and service.task_definition == arn

    def _restore(
        self, j: Journal, target: GoodRecord, failure: FailedAfterDeploy | None, act: bool = True
    ) -> RollbackOutcome:
        short = short_name(target.revision_arn)
        j = j.at(target.phase)  # the rollback is the target phase's section of the trail
        if not act:  # a strategy's ROLLBACK returned traffic to blue: no second deployment, only the verification
            j.event(
                K.ROLLBACK_STARTED,
                f"ECS returned all traffic to {short} without starting a task (strategy ROLLBACK); verifying it",
                revision=target.revision_arn,
                traffic_returned=True,
            )
        gates = self.verification_gates(target)
        caught = early.new_tasks(failure.verdict) if failure is not None and act else []
        try:
            if act:
                self._act(j, target, gates)
                j.event(K.ROLLBACK_STARTED, f"service {self.spec.name} -> {short}", revision=target.revision_arn)
                if caught:
                    self._stop_new(j, caught, failure)
        except BaseException as exc:  # noqa: BLE001 - whatever stopped the act: did it happen? ECS says
            if not isinstance(exc, KeyboardInterrupt) and self._runs(target.revision_arn):
                j.event(
                    K.ROLLBACK_STARTED,
                    f"service {self.spec.name} -> {short}: the update's answers were lost ({_why(exc)}), but the "
                    "service reads back on the target; verifying it",
                    revision=target.revision_arn,
                    answers_lost=True,
                )
            else:
                msg = f"rollback to {short} could not be started: {_why(exc)}; {self._live_now(failure)}. " + (
                    "Renew the credentials, then `snail rollback`. A human is needed."
                    if isinstance(exc, CredentialsExpired)
                    else "A human is needed."
                )
                j.event(K.ROLLBACK_FAILED, msg, revision=target.revision_arn)
                return RollbackOutcome("failed", msg, target, self._diagnose(failure) if failure else "")
        diagnosis = self._diagnose(failure) if failure is not None else ""
        if diagnosis:
            j.event(K.DIAGNOSIS, f"diagnosis: {diagnosis}", diagnosis=diagnosis)
        try:
            failed = self.judge(j, gates, target.revision_arn, target.phase)
        except BaseException as exc:  # noqa: BLE001 - the act happened; the verification did not finish
            failed = Verdict("verification", "error", _why(exc))
        if failed is not None:
            msg = (
                f"rollback to {short} could not be verified: {failed.gate} {failed.status}: {failed.summary}. "
                "A human is needed."
            )
            j.event(K.ROLLBACK_FAILED, msg, revision=target.revision_arn, evidence=failed.evidence)
            return RollbackOutcome("failed", msg, target, diagnosis)
        kept = self._kept(failure) if act else ""
        j.event(
            K.ROLLBACK_VERIFIED,
            f"rolled back to {short} (phase {target.phase}): the gates it passed, passed again{kept}",
            revision=target.revision_arn,
            gates=[g.label for g in gates],
            **({"old_tasks_kept": early.old_tasks(failure.verdict)} if kept and failure is not None else {}),
        )
        return RollbackOutcome(
            "verified",
            f"rolled back to {short} (phase {target.phase}), verified by its gates{kept}",
            target,
            diagnosis,
        )

    def _stop_new(self, j: Journal, arns: list[str], failure: FailedAfterDeploy | None) -> None:
        """A failure caught during the rollout: the service points back already, so stopping our new tasks starts no
        task of theirs again, and ECS's minimum healthy count is kept by the old tasks alone (never drained for a
        replacement while a bad task still counts as healthy). Best effort: a task already gone is fine."""
        phase = failure.phase if failure is not None else ""
        reason = f"snail: rolled back, phase {phase} failed its gates on this task during the rollout"
        try:
            with j.step("stop_new_tasks", tasks=arns) as r:
                stopped = []
                for arn in arns:
                    try:
                        self.ecs.stop_task(self.spec.cluster, arn, reason)
                        stopped.append(arn)
                    except AwsError as exc:
                        if exc.code != "InvalidParameterException":  # already stopped: nothing to stop
                            raise
                r["stopped"] = stopped
        except Exception as exc:  # noqa: BLE001 - ECS drains them anyway: the rollback goes on without it
            j.event(K.WARNING, f"could not stop the failed revision's new tasks ({_why(exc)}); ECS drains them")

    def _kept(self, failure: FailedAfterDeploy | None) -> str:
        """The trail's words when the failure was caught during the rollout and the old tasks that ran then still
        run now (one DescribeTasks): "" when it was not, or when they do not (ECS replaced them)."""
        old = early.old_tasks(failure.verdict) if failure is not None else []
        if not old:
            return ""
        try:
            tasks = self.ecs.describe_tasks(self.spec.cluster, old)
        except Exception:  # noqa: BLE001 - cannot tell: say nothing rather than something untrue
            return ""
        if len(tasks) != len(old) or any(t.last_status != "RUNNING" for t in tasks):
            return ""
        return "; caught before the rollout completed: the good tasks never stopped"

    def budget(self, gates: tuple[GateSpec, ...]) -> float:
        """How long the rollback's act may ride out throttling and 5xx: its own ecs-rollout gate's timeout."""
        return next((g.timeout for g in gates if isinstance(g, EcsRolloutGate) and g.timeout), DEFAULT_BUDGET)

    def _act(self, j: Journal, target: GoodRecord, gates: tuple[GateSpec, ...]) -> None:
        """Describe, then update the service to the target; a transient fault (throttling, 5xx, a lost connection)
        is retried with backoff on our clock until the rollback's budget is spent. Before each new try the service
        is read back: an update whose answer was lost may have happened."""
        deadline = self.clock.monotonic() + self.budget(gates)
        tries = {"n": 0}

        def attempt() -> None:
            tries["n"] += 1
            service = self.ecs.service(self.spec.cluster, self.spec.name)
            if tries["n"] > 1 and service is not None and service.task_definition == target.revision_arn:
                return  # an earlier try took effect; its answer was lost
            with j.step(
                "rollback", **{"from": service.task_definition if service else None, "to": target.revision_arn}
            ):
                strategies.restore(
                    self.ecs,
                    self.deployments,
                    self.spec.cluster,
                    self.spec.name,
                    target.revision_arn,
                    service,
                    self.owned_alarms,
                )

        def retry_transient(state: tenacity.RetryCallState) -> bool:
            exc = state.outcome.exception() if state.outcome else None
            return isinstance(exc, AwsError) and exc.transient

        def show(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            j.progress(
                "rollback_retry", {"attempt": state.attempt_number, "error": str(exc), "next_in": state.upcoming_sleep}
            )

        tenacity.Retrying(
            stop=stop_at_deadline(self.clock, deadline),
            wait=tenacity.wait_exponential(multiplier=1, min=1, max=20),
            sleep=self.clock.sleep,
            retry=retry_transient,
            before_sleep=show,
            reraise=True,
        )(attempt)

    def _live_now(self, failure: FailedAfterDeploy | None) -> str:
        """What is live, as far as we can tell (the service may not be describable: the same fault)."""
        try:
            service = self.ecs.service(self.spec.cluster, self.spec.name)
        except Exception:  # noqa: BLE001 - say what we last saw
            if failure is None:
                return "the service could not be described"
            return (
                f"the service could not be described; it was last seen on {short_name(failure.revision_arn)}, "
                f"which failed phase {failure.phase}"
            )
        if service is None:
            return "the service is missing"
        bad = failure is not None and service.task_definition == failure.revision_arn
        return f"the service runs {short_name(service.task_definition)}" + (
            f", which failed phase {failure.phase}" if bad and failure is not None else ""
        )

    def verification_gates(self, target: GoodRecord) -> tuple[GateSpec, ...]:
        """The gates the target passed (recorded with its mark), ecs-rollout first; older marks without a record
        use the phase's gates from the files."""
        recorded = gates_from_data(target.gates) if target.gates else self.fallback_gates(target.phase)
        return with_rollout(recorded)

    def _diagnose(self, failure: FailedAfterDeploy | None) -> str:
        if self.diagnose is None or failure is None or failure.interrupted:
            return ""
        try:
            return self.diagnose(failure.revision_arn, failure.cause or failure.verdict, failure.deployed_at)
        except Exception as exc:  # the diagnosis explains; it must never block or fail the rollback
            return f"(diagnosis failed: {exc})"

    def _state(self) -> str:
        try:
            service = self.ecs.service(self.spec.cluster, self.spec.name)
        except Exception as exc:  # the message must still be written
            return f"the service could not be described ({exc})"
        if service is None:
            return "the service is missing"
        primary = service.primary
        dep = (
            f"primary deployment {primary.rollout_state}, {primary.running}/{primary.desired} running"
            if primary
            else "no primary deployment"
        )
        return f"the service runs {short_name(service.task_definition)}; {dep}"


def _why(exc: BaseException) -> str:
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    return str(exc) or type(exc).__name__
