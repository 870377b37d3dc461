"""The traffic deployer: blue-green, canary and linear, judged at ECS's PAUSE hooks.

ECS shifts the traffic (deploymentConfiguration.strategy); snail judges. The service is updated with the
phase's strategy and PAUSE lifecycle hooks where judgment belongs:
- POST_TEST_TRAFFIC_SHIFT: green is scaled up and has the test listener only; production is all blue. The
  phase's gates run here: http gates through the test listener, target-health on green's own target group,
  ecs-rollout as "green scaled up", command gates as written.
- PRODUCTION_TRAFFIC_SHIFT (canary, linear: after each partial shift) or POST_PRODUCTION_TRAFFIC_SHIFT
  (blue-green: blue still kept): the gates that need production traffic (metrics, alarm, target-health).
- BAKE_TIME (ECS's bake after the full shift, blue still up): the phase's alarm and metrics gates, once per poll;
  a failure stops the deployment with ROLLBACK, still a traffic switch. ECS watches the alarm gates' alarms itself
  too (deploymentConfiguration.alarms with rollback), at every stage, so an alarm rolls back even without snail.
Each hook times out with ROLLBACK, so a dead snail never leaves a paused deployment forever. A failing gate
answers the hook with ROLLBACK: ECS returns production traffic to blue without starting a task, and the engine's
rollback only verifies blue (FailedAfterDeploy.traffic_returned). A restarted snail finds the deployment still in
flight for its revision and resumes judging the hook that awaits action.

The hook driver, step by step (`_Deployment._drive`): poll DescribeServiceDeployments until a hook we have not
answered awaits action, ECS finishes, or (during ECS's bake) a bake gate fails; at a hook, judge the stage's gates
and answer CONTINUE or ROLLBACK; at the finish, the ecs-rollout gates and the phase's own bake (`ctx.judged`).
Anything raised after the update stops the deployment (StopServiceDeployment ROLLBACK) unless the lock was taken
by another run, then returns a rollback decision."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import structlog

from orchestrator.aws.deployments import ServiceDeploymentView
from orchestrator.aws.ecs import ServiceView, short_name
from orchestrator.config.gates import EcsRolloutGate, GateSpec, Retries, TargetHealthGate
from orchestrator.config.strategy import is_bake_gate, is_production_gate, is_test_gate, pause_stages
from orchestrator.engine.deployer import TRAFFIC, DeployContext
from orchestrator.engine.results import FailedAfterDeploy, FailedBeforeDeploy, PhasePassed, PhaseResult
from orchestrator.engine.rolling import RollingDeployer
from orchestrator.engine.strategies import deployment_configuration
from orchestrator.errors import AccessDenied, PreflightFailed, UsageError
from orchestrator.gates import run_gate
from orchestrator.gates.context import GateContext
from orchestrator.gates.target_health import group_name
from orchestrator.gates.verdict import FAILED, PASSED, Action, Verdict, Where, action
from orchestrator.trail.kinds import EventKind as K

log = structlog.get_logger(__name__)

POLL = 2.0  # seconds between DescribeServiceDeployments while ECS scales, shifts and bakes
SCALE_UP_ALLOWANCE = 900.0  # how long green may take to reach the first hook (then ECS's breaker has spoken)
TEST_STAGE = "POST_TEST_TRAFFIC_SHIFT"
BAKE_STAGE = "BAKE_TIME"


def bake_gates(gates: tuple[GateSpec, ...]) -> tuple[GateSpec, ...]:
    """The gates judged during ECS's bake (blue still up): alarm and metrics, each tried once per look."""
    return tuple(dataclasses.replace(g, retries=Retries()) for g in gates if is_bake_gate(g))


@dataclass(frozen=True)
class Wiring:
    """The load balancer ECS shifts between, as the service's advancedConfiguration names it."""

    production_rule: str
    test_rule: str | None
    blue_group: str  # carries production before this deployment
    green_group: str
    test_url: str | None


@dataclass(frozen=True)
class Waited:
    """Where a wait on ECS ended: the deployment, the last lifecycle stage seen IN_PROGRESS, and the bake gate
    that failed during ECS's bake (when that ended it)."""

    view: ServiceDeploymentView
    stage: str = ""
    bake_failed: Verdict | None = None


def wiring(ctx: DeployContext, service: ServiceView) -> Wiring:
    """Read the service's load balancer wiring (PreflightFailed naming what is missing)."""
    from orchestrator.aws.elbv2 import Elbv2Client

    lbs = [lb for lb in service.load_balancers if lb.get("advancedConfiguration")]
    if not lbs:
        raise PreflightFailed(
            f"service {service.name} has no load balancer with an advancedConfiguration (alternate target group, "
            "production and test listener rules, infrastructure role): ECS cannot shift traffic for it; "
            "`snail doctor` says what to create"
        )
    lb = lbs[0]
    adv = lb["advancedConfiguration"]
    elbv2 = Elbv2Client(ctx.aws)
    production = elbv2.rule(adv["productionListenerRule"])
    groups = (lb["targetGroupArn"], adv["alternateTargetGroupArn"])
    blue = max(groups, key=production.share)
    green = groups[1] if blue == groups[0] else groups[0]
    test_rule = adv.get("testListenerRule")
    url = None
    if test_rule:
        rule = elbv2.rule(test_rule)
        port = elbv2.listener_port(rule.listener_arn)
        url = _listener_url(ctx, rule.listener_arn, port)
    return Wiring(adv["productionListenerRule"], test_rule, blue, green, url)


def _listener_url(ctx: DeployContext, listener_arn: str, port: int | None) -> str | None:
    """The test listener's base URL: service.load_balancer.test_url, else the one the endpoint hands out (the
    sandbox's endpoint info, in AwsContext.test_url), else the load balancer's DNS name."""
    configured = ctx.spec.load_balancer.test_url if ctx.spec.load_balancer else None
    if configured:
        return configured.rstrip("/")
    if ctx.aws.test_url:
        return ctx.aws.test_url.rstrip("/")
    from orchestrator.aws.elbv2 import Elbv2Client

    elbv2 = Elbv2Client(ctx.aws)
    lb_arn = listener_arn.replace(":listener/", ":loadbalancer/").rsplit("/", 1)[0]
    found = elbv2.load_balancers([lb_arn])
    listener = elbv2.listener(listener_arn)
    if not found or not listener:
        return None
    scheme = "https" if listener.get("Protocol") == "HTTPS" else "http"
    return f"{scheme}://{found[0]['DNSName']}:{port}"


class TrafficDeployer:
    """Update the service with the phase's strategy, judge at each PAUSE hook, CONTINUE or ROLLBACK."""

    name = TRAFFIC

    def deploy(self, ctx: DeployContext) -> PhaseResult:
        """The phase's result (PhasePassed when the revision passed everything); never raises."""
        if ctx.service is None:  # created just now on the revision: nothing to shift traffic from
            return RollingDeployer().deploy(ctx)
        try:
            failure = _Deployment(ctx).run(ctx.service)
        except BaseException as exc:  # noqa: BLE001 - a bug here must still end in the engine's rollback decision
            return ctx.after_update(exc)
        return failure if failure is not None else PhasePassed(ctx.phase.name, ctx.revision_arn, ctx.image)


class _Deployment:
    """One phase's strategy deployment: update, wait for each hook, judge, answer, until ECS is done."""

    def __init__(self, ctx: DeployContext) -> None:
        self.ctx = ctx
        self.journal = ctx.journal
        self.phase_plan = ctx.plan
        self.phase = ctx.phase
        self.arn = ctx.revision_arn
        self.deployed_at = ctx.deployed_at
        self.deployments = ctx.deployments
        self.spec = ctx.spec
        self.green_production = 0.0
        self.answered: set[str] = set()
        self.deployment: str | None = None
        self.wiring: Wiring | None = None
        self.polls = 0  # DescribeServiceDeployments polls while waiting (the progress display numbers them)
        self.bake_ctx: GateContext | None = None  # gates during ECS's bake: one context for every look
        self.bake_looks = 0
        self.bake_seen: dict[str, Verdict] = {}  # each bake gate's last verdict

    # ------------------------------------------------------------------ the phase
    def run(self, service: ServiceView) -> FailedBeforeDeploy | FailedAfterDeploy | None:
        strategy = self.phase.strategy
        controller = (service.raw.get("deploymentController") or {}).get("type", "ECS")
        if controller != "ECS":
            return FailedBeforeDeploy(
                self.phase.name,
                UsageError(
                    f"phase {self.phase.name} uses strategy {strategy.kind}, but service {service.name} has the "
                    f"{controller} deployment controller: ECS-native strategies need the ECS controller "
                    "(use strategy: rolling, or recreate the service with deploymentController ECS)"
                ),
            )
        try:
            self.wiring = wiring(self.ctx, service)
            resumed, found_by = self._find_in_flight() if service.task_definition == self.arn else (None, "")
        except Exception as exc:  # noqa: BLE001 - nothing changed yet
            return FailedBeforeDeploy(self.phase.name, exc)
        if resumed is None and service.task_definition == self.arn:
            self.journal.event(K.SERVICE_UNCHANGED, f"service already runs {short_name(self.arn)}; gating it again")
            return self.ctx.judged(self.phase_plan.gates)
        if resumed is None:
            self._note_unjudged()
            started = self._update(service)
            if started is not None:
                return started
        else:
            self.deployment = resumed
            self.journal.event(
                K.SERVICE_UNCHANGED,
                f"resuming service deployment {short_name(resumed)} of {short_name(self.arn)} left in flight "
                "by an earlier run: judging the hook it waits at",
                deployment=resumed,
                revision=self.arn,
                resumed=True,
                found_by=found_by,
            )
        try:
            return self._drive()
        except BaseException as exc:  # noqa: BLE001 - after the update anything at all ends in a rollback
            return self._abort(exc)

    def _from_journal(self) -> str | None:
        """The service deployment an earlier run of ours started for this revision, as its journal recorded it
        (the update_service step's result), when ECS still has it in flight."""
        store = self.ctx.store
        for run in store.runs(self.spec.name, 10):
            if run.run_id == self.journal.run_id:
                continue
            for st in reversed(store.steps(run.run_id)):
                dep = st.result.get("service_deployment")
                if st.kind == "update_service" and st.intent.get("to") == self.arn and dep:
                    view = self.deployments.describe(dep)
                    return dep if view is not None and not view.finished else None
        return None

    def _find_in_flight(self) -> tuple[str | None, str]:
        """The service deployment still in flight for our revision (a restarted snail's hook) and where it was
        found: from our journal first, else from ECS (ListServiceDeployments), which also finds one whose result
        was never written."""
        recorded = self._from_journal()
        if recorded is not None:
            return recorded, "journal"
        for dep_arn in self.deployments.in_flight(self.spec.cluster, self.spec.name):
            view = self.deployments.describe(dep_arn)
            if view is None or view.finished or not view.target_revision:
                continue
            if self.deployments.task_definition_of(view.target_revision) == self.arn:
                return dep_arn, "ecs"
        return None, "ecs"

    def _note_unjudged(self) -> None:
        """The trail says when ECS rolled back a deployment of this revision that no snail answered (its PAUSE
        hook timed out: the snail that set it died)."""
        try:
            for brief in self.deployments.recent(self.spec.cluster, self.spec.name, limit=3):
                if brief.get("status") != "ROLLBACK_SUCCESSFUL":
                    continue
                view = self.deployments.describe(brief["serviceDeploymentArn"])
                if view is None or "timed out" not in (view.rollback_reason or ""):
                    continue
                if view.target_revision and self.deployments.task_definition_of(view.target_revision) == self.arn:
                    self.journal.event(
                        K.RECONCILED,
                        f"service deployment {short_name(view.arn)} of {short_name(self.arn)} was rolled back by "
                        f"ECS, not by snail: {view.rollback_reason} (no snail answered it); deploying it again",
                        deployment=view.arn,
                        by="hook_timeout",
                    )
                    return
        except Exception as exc:  # noqa: BLE001 - a note for the trail must never stop a deployment
            log.debug("strategy_history_unreadable", error=str(exc))

    def _update(self, service: ServiceView) -> FailedBeforeDeploy | FailedAfterDeploy | None:
        strategy = self.phase.strategy
        cfg = deployment_configuration(
            strategy, self.phase_plan.gates, self.spec.circuit_breaker, service, self.ctx.owned_alarms
        )
        stages = pause_stages(strategy, self.phase_plan.gates)
        try:
            with self.journal.step(
                "update_service", **{"from": service.task_definition, "to": self.arn, "strategy": strategy.kind}
            ) as r:
                _after, dep = self.deployments.update_service(self.spec.cluster, self.spec.name, self.arn, cfg)
                r["service_deployment"] = dep
                self.deployment = dep
        except BaseException as exc:  # noqa: BLE001 - did the update take effect? ECS says
            return self.ctx.after_update(exc)
        self.journal.event(
            K.SERVICE_UPDATED,
            f"service {self.spec.name} -> {short_name(self.arn)} ({strategy.describe()}; snail pauses at "
            f"{', '.join(stages)})",
            previous=service.task_definition,
            revision=self.arn,
            strategy=strategy.to_dict(),
            pauses=stages,
            deployment=self.deployment,
        )
        if self.deployment is None:
            return self.ctx.failed_after(RuntimeError("ECS started no service deployment"))
        return None

    # ------------------------------------------------------------------ the deployment
    def _drive(self) -> FailedAfterDeploy | None:
        assert self.deployment is not None
        stage = ""  # the last lifecycle stage seen while the deployment was IN_PROGRESS
        while True:
            waited = self._wait(stage, judge_bake=True)
            view, stage = waited.view, waited.stage
            self._traffic(view)
            if waited.bake_failed is not None:
                return self._stop_in_bake(view, waited.bake_failed)
            if view.finished:
                return self._finished(view, stage)
            hook = view.awaiting
            assert hook is not None
            failed = self._judge_hook(view)
            if failed is not None:
                return self._roll_back(view, hook.hook_id, failed)
            if view.stage == TEST_STAGE and self.ctx.test_traffic_hold is not None:
                self._held_at_barrier(view)  # a fleet's barrier: the whole wave passes on test traffic first
            try:
                self._answer(view, hook.hook_id, "CONTINUE")
            except AccessDenied as exc:
                returned = self._wait_for_timeout(view, exc)
                reason = f"green passed its gates at {view.stage} but could not be continued: {exc}"
                return FailedAfterDeploy(
                    self.phase.name, self.arn, reason, self.deployed_at, cause=exc, traffic_returned=returned
                )
            except Exception as exc:
                late = self._too_late(view, hook.hook_id, exc)
                if late is None and self._went_back_meanwhile(view) is not None:
                    done = self._wait(stage)  # ECS rolled back on its own (its deployment alarm) while the gates ran
                    self._traffic(done.view)
                    return self._finished(done.view, done.stage)
                if late is None:
                    raise
                return late

    def _held_at_barrier(self, view: ServiceDeploymentView) -> None:
        """Green passed on test traffic; the fleet holds it here (the hook's timeout still guards it) until every
        target of the wave has. A wave that goes back raises GoBack (an interrupt): back to blue."""
        assert self.ctx.test_traffic_hold is not None
        wait = {"gate": "fleet barrier", "attempt": 1, "waiting_for": "the wave's other targets", "next_in": 0}
        self.journal.progress("gate_waiting", wait)
        self.ctx.test_traffic_hold()
        self.journal.event(
            K.GATE_PASSED,
            f"[x] fleet barrier: every target of the wave passed at {view.stage}",
            gate="fleet barrier",
            status="passed",
            stage=view.stage,
        )

    def _wait(self, stage: str = "", judge_bake: bool = False) -> Waited:
        """Poll until a hook we have not answered awaits action, or ECS is done with the deployment; the answer
        also says the last lifecycle stage seen IN_PROGRESS (`stage`: the one seen before this wait). With
        `judge_bake`, each poll during ECS's bake also looks at the bake gates once; a FAILED one ends the wait."""
        assert self.deployment is not None
        limit = SCALE_UP_ALLOWANCE + self.phase.strategy.hook_timeout + self.phase.strategy.bake
        limit += self.phase.strategy.step_bake * len(self.phase.strategy.production_steps())
        deadline = self.ctx.clock.monotonic() + limit
        while True:
            view = self.deployments.describe(self.deployment)
            if view is None:
                raise RuntimeError(f"ECS no longer knows service deployment {self.deployment}")
            if view.finished:
                return Waited(view, stage)
            hook = view.awaiting
            if hook is not None and hook.hook_id not in self.answered:
                return Waited(view, stage)
            if view.status == "IN_PROGRESS" and view.stage:
                stage = view.stage
            if judge_bake and view.status == "IN_PROGRESS" and view.stage == BAKE_STAGE:
                failed = self._judge_bake(view)
                if failed is not None:
                    return Waited(view, stage, failed)
            if self.ctx.clock.monotonic() >= deadline:
                raise TimeoutError(
                    f"service deployment {short_name(self.deployment)} still {view.status} at {view.stage} "
                    f"after {limit:.0f}s"
                )
            self._report_wait(view)
            self.ctx.checkpoint()
            self.ctx.clock.sleep(POLL)
            self._traffic(view)

    def _report_wait(self, view: ServiceDeploymentView) -> None:
        """Every poll says where ECS is and green's task counts (the display never goes quiet while green's tasks
        fail and restart); the display prints what changed, the status area redraws each poll."""
        self.polls += 1
        failed = view.breaker.get("failureCount")
        counts: dict[str, int] = {"running": view.running, "desired": view.requested}
        if isinstance(failed, int):
            counts["failed"] = failed
        self.journal.progress(
            "gate_waiting",
            {
                "gate": self.phase.strategy.kind,
                "attempt": self.polls,
                # "blue-green: SCALE_UP (0/2 running, 1 failed)": the stage while in progress, else the status
                "waiting_for": view.stage if view.status == "IN_PROGRESS" and view.stage else view.status,
                "counts": counts,
                "next_in": POLL,
            },
        )

    def _traffic(self, view: ServiceDeploymentView) -> None:
        """A trail event each time green's share of production changes (the timeline draws it)."""
        green = 0.0 if view.rolled_back else view.green_production
        if view.succeeded:
            green = 100.0
        if math.isclose(green, self.green_production):
            return
        self.green_production = green
        self.journal.event(
            K.TRAFFIC_SHIFTED,
            f"production traffic: blue {100 - green:g}%, green {green:g}% ({view.stage or view.status})",
            traffic={"blue": round(100 - green, 1), "green": round(green, 1)},
            stage=view.stage,
            deployment=view.arn,
        )

    def _judge_hook(self, view: ServiceDeploymentView) -> Verdict | None:
        """The gates that belong to the stage the hook waits at; the first failing verdict, or None."""
        assert self.wiring is not None
        at_test = view.stage == TEST_STAGE
        if at_test:
            self.journal.event(
                K.TRAFFIC_SHIFTED,
                f"green {short_name(self.arn)} on the test listener only ({self.wiring.test_url or 'no URL'}); "
                f"production stays on blue",
                traffic={"blue": round(100 - self.green_production, 1), "green": round(self.green_production, 1)},
                test_traffic={"blue": 0, "green": 100},
                stage=view.stage,
                deployment=view.arn,
            )
        gates = tuple(g for g in self.phase_plan.gates if (is_test_gate(g) if at_test else is_production_gate(g)))
        ctx = dataclasses.replace(
            self.ctx.judge.context(self.journal, self.arn, self.phase.name, self.deployed_at),
            endpoint=self.wiring.test_url,
            watch=None,  # ECS's own status is watched between hooks; a paused deployment is not a failure
        )
        for g in gates:
            if isinstance(g, EcsRolloutGate):
                v = _scaled(g, view)
            else:
                v = run_gate(self._aim(g), ctx)
            data = {"gate": g.label, "status": v.status, "attempts": v.attempts, "evidence": v.evidence}
            data["stage"] = view.stage
            if action(Where.PAUSE_HOOK, v) is Action.CONTINUE:
                self.journal.event(K.GATE_PASSED, f"[x] {g.label}: {v.summary} (at {view.stage})", **data)
                continue
            self.journal.event(K.GATE_FAILED, f"[ ] {g.label}: {v.status}: {v.summary} (at {view.stage})", **data)
            return v
        return None

    def _judge_bake(self, view: ServiceDeploymentView) -> Verdict | None:
        """One look at the phase's alarm and metrics gates while ECS bakes green with blue still up: the first
        FAILED verdict, or None. No traffic (inconclusive) or an error is no verdict: the next poll looks again."""
        gates = bake_gates(self.phase_plan.gates)
        if not gates:
            return None
        if self.bake_ctx is None:
            self.bake_ctx = dataclasses.replace(
                self.ctx.judge.context(self.journal, self.arn, self.phase.name, self.deployed_at),
                watch=None,  # ECS's own status is what _wait polls
                progress=_quiet,  # one look per poll: the progress display says it once, here
            )
            judged = ", ".join(g.label for g in gates)
            self.journal.progress(
                "strategy_wait", {"message": f"ECS bakes green with blue still up: {judged} judged each poll"}
            )
        self.bake_looks += 1
        for g in gates:
            v = run_gate(self._aim(g), self.bake_ctx)
            self.bake_seen[g.label] = v
            if action(Where.ECS_BAKE, v) is not Action.ROLLBACK:  # no verdict yet: the next poll looks again
                continue
            self.journal.event(
                K.GATE_FAILED,
                f"[ ] {g.label}: failed: {v.summary} (during ECS's bake, look {self.bake_looks}, blue still up)",
                gate=g.label,
                status=v.status,
                attempts=v.attempts,
                evidence=v.evidence,
                stage=view.stage,
                during="ecs_bake",
            )
            return v
        return None

    def _bake_judged(self) -> None:
        """ECS finished its bake: the trail says what the bake gates saw (a pass, or no verdict at all)."""
        for label, v in self.bake_seen.items():
            data = {"gate": label, "status": v.status, "evidence": v.evidence, "stage": BAKE_STAGE}
            if action(Where.ECS_BAKE, v) is Action.CONTINUE:
                self.journal.event(
                    K.GATE_PASSED,
                    f"[x] {label}: {v.summary} (judged {self.bake_looks} time(s) during ECS's bake)",
                    during="ecs_bake",
                    **data,
                )
            else:
                self.journal.event(
                    K.WARNING,
                    f"{label} gave no verdict during ECS's bake ({v.status}: {v.summary}); it judges again in the "
                    "phase's own bake, where a failure is a new deployment rather than a traffic switch",
                    **data,
                )

    def _stop_in_bake(self, view: ServiceDeploymentView, failed: Verdict) -> FailedAfterDeploy:
        """A bake gate failed while ECS bakes: decision first, then StopServiceDeployment ROLLBACK (blue is still
        up: a traffic switch, no task started), then wait until production is back on blue."""
        reason = f"gate {failed.gate} failed during ECS's bake: {failed.summary}"
        self.journal.event(
            K.DECISION,
            f"returning all traffic to blue (StopServiceDeployment ROLLBACK) because {reason}: caught during ECS's "
            f"bake at {view.stage} with blue still up, so production goes back to blue without a new task "
            f"(production had {self.green_production:g}% on green)",
            reason=reason,
            evidence=failed.evidence,
            stage=view.stage,
            during="ecs_bake",
            production_on_green=self.green_production,
        )
        try:
            with self.journal.step("stop_deployment", deployment=view.arn, stage=view.stage):
                self.deployments.stop(view.arn)
        except Exception as exc:  # noqa: BLE001 - ECS may have rolled back on its own alarm meanwhile
            now = self._describe_quietly(view.arn)
            if now is None or not now.status.startswith("ROLLBACK"):
                self._stop_failed(exc)  # the engine's rollback (UpdateService) follows
                return FailedAfterDeploy(self.phase.name, self.arn, reason, self.deployed_at, failed)
        done = self._wait().view
        self._traffic(done)
        return FailedAfterDeploy(
            self.phase.name, self.arn, reason, self.deployed_at, failed, traffic_returned=done.rolled_back
        )

    def _went_back_meanwhile(self, view: ServiceDeploymentView) -> ServiceDeploymentView | None:
        """The deployment now, when ECS itself is taking it back to blue (or has) while snail judged at a hook: its
        deployment alarm fired. An answer to the hook is then refused, and that refusal is not what happened."""
        now = self._describe_quietly(view.arn)
        return now if now is not None and now.status.startswith("ROLLBACK") else None

    def _describe_quietly(self, arn: str) -> ServiceDeploymentView | None:
        try:
            return self.deployments.describe(arn)
        except Exception:  # noqa: BLE001 - cannot tell: the caller assumes the worst
            return None

    def _aim(self, g: GateSpec) -> GateSpec:
        """A gate pointed at green: target-health at green's target group, metrics at green (and blue)."""
        assert self.wiring is not None
        w = self.wiring
        if isinstance(g, TargetHealthGate):
            # service.load_balancer's group (filled in by default) or either of the service's two groups, by ARN or
            # name, means "green's"; a gate naming another group keeps it
            named = g.target_group_arn
            ours = {w.blue_group, w.green_group, group_name(w.blue_group), group_name(w.green_group)}
            if g.from_service or named is None or named in ours:
                return dataclasses.replace(g, target_group_arn=w.green_group, from_service=False)
            return g
        if g.type == "metrics":
            aim = getattr(g, "aimed", None)
            if callable(aim):
                return aim(w.green_group, w.blue_group)
        return g

    def _answer(self, view: ServiceDeploymentView, hook_id: str, action: str) -> None:
        """ContinueServiceDeployment; a denied call leaves the hook to its ROLLBACK timeout, and says so."""
        self.answered.add(hook_id)
        with self.journal.step(
            "continue_deployment", deployment=view.arn, hook=hook_id, action=action, stage=view.stage
        ):
            self.deployments.answer(view.arn, hook_id, action)
        log.info("strategy_hook_answered", deployment=view.arn, stage=view.stage, action=action)

    def _roll_back(self, view: ServiceDeploymentView, hook_id: str, failed: Verdict) -> FailedAfterDeploy:
        """Decision first, then ROLLBACK at the hook, then wait until production is back on blue."""
        reason = f"gate {failed.gate} {failed.status}: {failed.summary}"
        where = "on test traffic" if view.stage == TEST_STAGE else f"at {view.stage}"
        self.journal.event(
            K.DECISION,
            f"returning all traffic to blue (ROLLBACK at {view.stage}) because {reason}: green failed {where}, "
            f"production had {self.green_production:g}% on it",
            reason=reason,
            evidence=failed.evidence,
            stage=view.stage,
            production_on_green=self.green_production,
        )
        returned = False
        try:
            self._answer(view, hook_id, "ROLLBACK")
            returned = self._wait().view.rolled_back
        except AccessDenied as exc:
            returned = self._wait_for_timeout(view, exc)
        except Exception:
            if self._went_back_meanwhile(view) is None:
                raise
            returned = self._wait().view.rolled_back  # ECS was already on its way back (its own alarm): same end
        if returned:
            self._traffic(self.deployments.describe(view.arn) or view)
        return FailedAfterDeploy(self.phase.name, self.arn, reason, self.deployed_at, failed, traffic_returned=returned)

    def _too_late(self, view: ServiceDeploymentView, hook_id: str, exc: Exception) -> FailedAfterDeploy | None:
        """A refused CONTINUE because the hook timed out while the gates ran (they took longer than hook_timeout):
        ECS applied the timeout's ROLLBACK. Not a verdict on green (it passed, late): the run ends rolled back, the
        trail says to raise hook_timeout. None when the hook did not time out (the caller's failure stands)."""
        now = self.deployments.describe(view.arn)
        hook = next((h for h in now.hooks if h.hook_id == hook_id), None) if now is not None else None
        if hook is None or hook.status != "TIMED_OUT":
            return None
        minutes = f"{self.phase.strategy.hook_timeout / 60:g}m"
        reason = (
            f"green passed its gates at {view.stage}, but only after its PAUSE hook's {minutes} timeout: ECS had "
            f"already rolled back (the timeout's action {hook.timeout_action or 'ROLLBACK'}); raise the strategy's "
            f"hook_timeout above how long the gates at {view.stage} take"
        )
        self.journal.event(K.WARNING, reason, stage=view.stage, hook=hook_id, error=f"{type(exc).__name__}: {exc}")
        done = self._wait().view
        self._traffic(done)
        return FailedAfterDeploy(
            self.phase.name, self.arn, reason, self.deployed_at, cause=exc, traffic_returned=done.rolled_back
        )

    def _wait_for_timeout(self, view: ServiceDeploymentView, exc: AccessDenied) -> bool:
        """ContinueServiceDeployment denied: the hook's ROLLBACK timeout protects production; wait for it."""
        self.journal.event(
            K.WARNING,
            f"{exc}: the PAUSE hook at {view.stage} cannot be answered; its timeout "
            f"({self.phase.strategy.hook_timeout / 60:g}m, action ROLLBACK) returns traffic to blue. Grant "
            "ecs:ContinueServiceDeployment to snail's role (see `snail iam-policy`)",
            permission="ecs:ContinueServiceDeployment",
        )
        done = self._wait().view
        self._traffic(done)
        return done.rolled_back

    def _finished(self, view: ServiceDeploymentView, last_stage: str = "") -> FailedAfterDeploy | None:
        """ECS is done: on success the ecs-rollout gates and the bake; otherwise ECS already returned traffic."""
        if view.succeeded:
            self._bake_judged()
            rollout = tuple(g for g in self.phase_plan.gates if isinstance(g, EcsRolloutGate))
            return self.ctx.judged(rollout)
        why = view.rollback_reason or view.status_reason or view.status
        fired = list((view.raw.get("alarms") or {}).get("triggeredAlarmNames") or [])
        if fired:  # ECS rolled back on its deployment alarms: name them, and where it happened
            if not all(a in why for a in fired):
                why = f"{why} (deployment alarm(s) in ALARM: {', '.join(fired)})"
            stage = view.stage or last_stage  # where ECS says the deployment was, else where we last saw it
            if stage == BAKE_STAGE:
                why = f"{why}; ECS caught it during its bake, blue still up: traffic went back to blue, no new task"
            elif stage:
                why = f"{why}; ECS caught it at {stage}"
        if view.breaker.get("status") == "TRIGGERED":
            why = f"the circuit breaker triggered ({view.breaker.get('failureCount')} tasks failed): {why}"
        verdict = Verdict("ecs-rollout", FAILED, f"ECS {view.status}: {why}", {"deployment": view.raw}, terminal=True)
        self.journal.event(
            K.GATE_FAILED,
            f"[ ] ecs-rollout: failed: ECS {view.status}: {why}",
            gate="ecs-rollout",
            status=FAILED,
            evidence={"deployment": view.arn, "stage": view.stage, "reason": why},
        )
        return FailedAfterDeploy(
            self.phase.name,
            self.arn,
            f"ECS {view.status}: {why}",
            self.deployed_at,
            verdict,
            traffic_returned=view.rolled_back,
        )

    def _abort(self, exc: BaseException) -> FailedAfterDeploy:
        """Interrupted or broken mid-deployment: ROLLBACK through ECS (unless on_interrupt says record)."""
        failure = self.ctx.failed_after(exc)
        if failure.interrupted and self.ctx.on_interrupt == "record":
            return failure
        if failure.lock_lost and getattr(failure.cause, "taken_by", None):
            # another run holds the lock: stopping the deployment would undo its work (it finds the deployment in
            # flight from our journal and judges it); our hook's ROLLBACK timeout still guards production
            return failure
        if self.deployment is None:
            return failure
        try:
            view = self.deployments.describe(self.deployment)
            if view is None or view.finished:
                return dataclasses.replace(failure, traffic_returned=bool(view and view.rolled_back))
            self.journal.event(
                K.DECISION,
                f"returning all traffic to blue (StopServiceDeployment ROLLBACK) because {failure.reason}",
                reason=failure.reason,
                stage=view.stage,
            )
            with self.journal.step("stop_deployment", deployment=view.arn):
                self.deployments.stop(view.arn)
            done = self._wait().view
            self._traffic(done)
            return dataclasses.replace(failure, traffic_returned=done.rolled_back)
        except BaseException as exc:  # noqa: BLE001 - the engine's rollback takes over
            self._stop_failed(exc)
            return failure

    def _stop_failed(self, exc: BaseException) -> None:
        """The trail says the StopServiceDeployment decision did not take effect (the engine's rollback, an
        UpdateService to the last good revision, follows; the hook's own ROLLBACK timeout still guards production)."""
        try:
            self.journal.event(
                K.WARNING,
                f"service deployment {short_name(self.deployment or '')} could not be stopped "
                f"({type(exc).__name__}: {exc}): rolling back by updating the service instead",
                deployment=self.deployment,
            )
        except Exception:  # noqa: BLE001 - the rollback matters more than the note
            log.warning("strategy_stop_failed", deployment=self.deployment, error=str(exc))


def _quiet(kind: str, data: dict[str, Any]) -> None:
    """A progress sink that shows nothing."""


def _scaled(g: EcsRolloutGate, view: ServiceDeploymentView) -> Verdict:
    """ecs-rollout at a hook: green has all its tasks running (the rest is judged when ECS finishes)."""
    evidence = {"running": view.running, "requested": view.requested, "stage": view.stage, "deployment": view.arn}
    if view.requested and view.running >= view.requested:
        return Verdict(g.label, PASSED, f"green scaled up: {view.running}/{view.requested} running", evidence)
    return Verdict(g.label, FAILED, f"green not scaled up: {view.running}/{view.requested} running", evidence)
