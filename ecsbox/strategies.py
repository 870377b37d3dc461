"""ECS's BLUE_GREEN, CANARY and LINEAR deployments, played by the sandbox agent one round at a time.

The green revision is the service's PRIMARY deployment, the blue one the deployment production traffic goes
to. A deployment walks ECS's lifecycle stages in order (RECONCILE_SERVICE when more than one old revision is
still ACTIVE, PRE_SCALE_UP, SCALE_UP, POST_SCALE_UP, TEST_TRAFFIC_SHIFT, POST_TEST_TRAFFIC_SHIFT,
PRODUCTION_TRAFFIC_SHIFT, POST_PRODUCTION_TRAFFIC_SHIFT, BAKE_TIME, CLEAN_UP). At each stage that has hooks it
runs them: a PAUSE hook waits in AWAITING_ACTION until ContinueServiceDeployment or its timeout, whose action
(CONTINUE or ROLLBACK) then applies. Green scales to the full desired count next to blue (maximumPercent does
not bound a blue/green scale-up); the deployment circuit breaker watches green's failed tasks during SCALE_UP.

A rollback points the production and test listener rules back at blue, makes blue the PRIMARY again and stops
green. It never starts a task: blue has been running all along.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog
from moto.core.utils import utcnow

from ecsbox import deployments as sd
from ecsbox import extension as ext
from ecsbox import traffic

if TYPE_CHECKING:
    from ecsbox.agent import EcsAgent, TaskRecord

log = structlog.get_logger(__name__)

Stops = list[tuple["TaskRecord", str, str]]
CLEAN_UP_REASON = "Scaling activity initiated by (deployment {deployment})"
ROLLBACK_REASON = "Service deployment rolled back: stopping the green service revision"


class TrafficRound:
    """One scheduler round of one service whose current deployment shifts traffic."""

    def __init__(self, agent: EcsAgent, backend: Any, key: str, service: Any, run: sd.ServiceDeploymentRun) -> None:
        self.agent = agent
        self.backend = backend
        self.key = key
        self.service = service
        self.run = run
        self.region = key.partition("/")[0]
        self.now = agent.now()
        self.launches: list[TaskRecord] = []
        self.stops: Stops = []

    # ------------------------------------------------------------------------------------------ helpers

    def event(self, message: str) -> None:
        """An ECS service event about this deployment."""
        ext.add_event(self.service, f"{ext.service_label(self.service)} {message}")

    def enter(self, stage: str) -> None:
        """Move the deployment to `stage`."""
        run = self.run
        run.stage = stage
        run.stage_entered = self.now
        run.stages_seen.append(stage)
        run.touch()
        log.info(
            "sandbox_lifecycle_stage", service=self.service.name, deployment=run.arn.rsplit("/", 1)[-1], stage=stage
        )

    def minutes_passed(self, since: float | None, minutes: float) -> bool:
        """Whether `minutes` of the sandbox's minutes have passed since `since` on the agent clock."""
        return since is not None and self.now - since >= minutes * self.agent.minute

    def shift(self, rule: str | None, green_percent: float) -> None:
        """Point a listener rule `green_percent` at green, the rest at blue."""
        run = self.run
        if rule and run.blue_target_group and run.green_target_group:
            traffic.shift(
                self.backend.account_id, self.region, rule, run.blue_target_group, run.green_target_group, green_percent
            )

    def hooks(self, stage: str, step: int | None = None) -> str:
        """Run the stage's hooks: 'continue' when all resolved, 'wait' while one awaits, 'rollback' if one says so."""
        run = self.run
        round_key = stage if step is None else f"{stage}#{step}"
        if run.hooks_done_for == round_key:
            return "continue"
        mine = [h for h in run.hooks if h.round_key == round_key]
        if not mine:
            for index, spec in enumerate(run.config.get("lifecycleHooks") or []):
                if stage not in (spec.get("lifecycleStages") or []):
                    continue
                timeout = spec.get("timeoutConfiguration") or {}
                minutes = float(timeout.get("timeoutInMinutes") or sd.DEFAULT_HOOK_TIMEOUT_MINUTES)
                expires_at, expires_mono = sd.hook_expiry(minutes, self.now, self.agent.minute)
                kind = spec.get("targetType") or "AWS_LAMBDA"
                hook = sd.Hook(
                    hook_id=f"{run.arn.rsplit('/', 1)[-1]}-{round_key.lower()}-{index}",
                    stage=stage,
                    target_type=kind,
                    target_arn=spec.get("hookTargetArn"),
                    status="AWAITING_ACTION" if kind == "PAUSE" else "SUCCEEDED",
                    expires_at=expires_at,
                    expires_mono=expires_mono,
                    timeout_action=str(timeout.get("action") or "ROLLBACK"),
                    round_key=round_key,
                )
                run.hooks.append(hook)
                mine.append(hook)
                if kind != "PAUSE":
                    self.event(f"lifecycle hook {hook.hook_id} ({kind}) at {stage}: not invoked in the sandbox.")
                else:
                    log.info("sandbox_hook_awaiting", service=self.service.name, hook=hook.hook_id, stage=stage)
            run.touch()
        for hook in mine:
            if hook.status == "AWAITING_ACTION" and self.now >= hook.expires_mono:
                hook.status = "TIMED_OUT"
                run.touch()
                self.event(f"lifecycle hook {hook.hook_id} at {stage} timed out: {hook.timeout_action}.")
                if hook.timeout_action == "ROLLBACK":
                    run.requested = "ROLLBACK"
                    run.requested_reason = f"Lifecycle hook {hook.hook_id} at {stage} timed out (action ROLLBACK)."
                    return "rollback"
        if run.requested == "ROLLBACK" or any(h.status == "FAILED" for h in mine):
            return "rollback"
        if any(h.status == "AWAITING_ACTION" for h in mine):
            return "wait"
        run.hooks_done_for = round_key
        return "continue"

    # ------------------------------------------------------------------------------------------ the round

    def decide(self) -> tuple[list[TaskRecord], Stops]:
        """Advance the deployment as far as this round allows; return tasks to launch and to stop."""
        run, service = self.run, self.service
        if run.status == "PENDING":
            run.blue_target_group = traffic.production_target_group(service)
            run.green_target_group = traffic.other_target_group(service)
            run.set_status("IN_PROGRESS")
            blue = self.blue_id()
            for source in run.sources:
                source.production_weight = source.test_weight = 100.0 if source.deployment_id == blue else 0.0
            # Production and test traffic start on blue, whatever a deployment this one replaced had shifted.
            wiring = traffic.wiring(service)
            if wiring:
                self.shift(wiring.production_rule, 0.0)
                self.shift(wiring.test_rule, 0.0)
            desired = int(service.desired_count or 0)
            run.breaker_threshold = self.agent.failure_threshold(desired)
            run.breaker_status = "MONITORING" if self.agent.breaker(service)["enable"] else "DISABLED"
            self.enter("RECONCILE_SERVICE" if len(run.sources) > 1 else "PRE_SCALE_UP")
        if run.requested == "ROLLBACK" or run.status in ("ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS"):
            self.roll_back()
        else:
            self.advance()
        self.count()
        return self.launches, self.stops

    def blue_id(self) -> str:
        """The deployment production traffic goes to: the last one that completed, else the newest source."""
        ids = [s.deployment_id for s in self.run.sources]
        known = getattr(self.service, "sandbox_production_deployment", None)
        return known if known in ids else ids[0]

    def green(self) -> Any:
        """The green deployment record."""
        return next((d for d in self.service.deployments if d["id"] == self.run.target.deployment_id), None)

    def advance(self) -> None:
        """Walk the stages in order, as far as hooks, health and bake times allow this round."""
        run = self.run
        for _ in range(len(sd.STAGES) + 20):  # every stage that is ready this round, never forever
            stage = run.stage
            if stage == "RECONCILE_SERVICE":
                self.reconcile()
                verdict = self.hooks(stage)
                if verdict != "continue":
                    return self.after(verdict)
                self.enter("PRE_SCALE_UP")
            elif stage == "PRE_SCALE_UP":
                verdict = self.hooks(stage)
                if verdict != "continue":
                    return self.after(verdict)
                self.enter("SCALE_UP")
            elif stage == "SCALE_UP":
                self.scale_green()
                if run.requested == "ROLLBACK":
                    return self.roll_back()
                if not self.green_ready():
                    return None
                if run.breaker_status == "MONITORING":
                    run.breaker_status = "MONITORING_COMPLETE"
                self.enter("POST_SCALE_UP")
            elif stage == "POST_SCALE_UP":
                self.scale_green()
                verdict = self.hooks(stage)
                if verdict != "continue":
                    return self.after(verdict)
                self.enter("TEST_TRAFFIC_SHIFT")
            elif stage == "TEST_TRAFFIC_SHIFT":
                self.scale_green()
                if run.hooks_done_for != stage and not any(h.round_key == stage for h in run.hooks):
                    traffic_rule = traffic.wiring(self.service)
                    self.shift(traffic_rule.test_rule if traffic_rule else None, 100.0)
                    run.target.test_weight = 100.0
                    for source in run.sources:
                        source.test_weight = 0.0
                verdict = self.hooks(stage)
                if verdict != "continue":
                    return self.after(verdict)
                self.enter("POST_TEST_TRAFFIC_SHIFT")
            elif stage == "POST_TEST_TRAFFIC_SHIFT":
                self.scale_green()
                verdict = self.hooks(stage)
                if verdict != "continue":
                    return self.after(verdict)
                self.enter("PRODUCTION_TRAFFIC_SHIFT")
            elif stage == "PRODUCTION_TRAFFIC_SHIFT":
                self.scale_green()
                if not self.production_shift():
                    return None
                self.enter("POST_PRODUCTION_TRAFFIC_SHIFT")
            elif stage == "POST_PRODUCTION_TRAFFIC_SHIFT":
                self.scale_green()
                verdict = self.hooks(stage)
                if verdict != "continue":
                    return self.after(verdict)
                self.enter("BAKE_TIME")
            elif stage == "BAKE_TIME":
                self.scale_green()
                if not self.minutes_passed(run.stage_entered, float(run.config.get("bakeTimeInMinutes") or 0)):
                    return None
                self.enter("CLEAN_UP")
            elif stage == "CLEAN_UP":
                return self.clean_up()
            else:
                return None
        return None

    def after(self, verdict: str) -> None:
        """What a hook verdict other than 'continue' means this round."""
        if verdict == "rollback":
            self.roll_back()

    # ------------------------------------------------------------------------------------------ stages

    def reconcile(self) -> None:
        """Stop the tasks of old revisions that are neither blue nor green."""
        blue = self.blue_id()
        for source in self.run.sources:
            if source.deployment_id == blue:
                continue
            for record in self.agent.progress(self.key, source.deployment_id).live:
                self.stops.append(
                    (
                        record,
                        CLEAN_UP_REASON.format(deployment=self.run.target.deployment_id),
                        "ServiceSchedulerInitiated",
                    )
                )

    def scale_green(self) -> None:
        """Launch green tasks up to desiredCount (next to blue), unless backing off; trip the breaker in SCALE_UP."""
        run, service = self.run, self.service
        green = self.green()
        if green is None:
            return
        desired = int(service.desired_count or 0)
        if run.stage == "SCALE_UP" and self.agent.breaker(service)["enable"]:
            run.breaker_failures = int(green.get("failedTasks", 0))
            if run.breaker_failures >= run.breaker_threshold and run.breaker_status != "TRIGGERED":
                run.breaker_status = "TRIGGERED"
                self.event(f"(deployment {green['id']}) deployment failed: tasks failed to start.")
                if self.agent.breaker(service)["rollback"]:
                    run.requested = "ROLLBACK"
                    run.requested_reason = "ECS deployment circuit breaker: tasks failed to start."
                    return
                # Without rollback ECS marks the deployment FAILED and keeps trying (with backoff); blue serves.
                service.deployments = [
                    {
                        **d,
                        "rolloutState": "FAILED",
                        "rolloutStateReason": "ECS deployment circuit breaker: tasks failed to start.",
                        "updatedAt": utcnow(),
                    }
                    if d["id"] == green["id"]
                    else d
                    for d in service.deployments
                ]
        live = self.agent.progress(self.key, green["id"]).live
        need = desired - len(live)
        if need > 0 and self.agent.may_launch(green["id"]):
            self.launches += self.agent.new_tasks(self.backend, self.key, service, green, need, run.green_target_group)

    def green_ready(self) -> bool:
        """Every desired green task is healthy (its target too, when the load balancer measures it)."""
        green = self.green()
        desired = int(self.service.desired_count or 0)
        progress = self.agent.progress(self.key, green["id"]) if green else None
        return progress is not None and progress.healthy >= desired and len(progress.live) >= desired

    def production_shift(self) -> bool:
        """Apply the production traffic steps with their hooks and bake times; True once at 100 %."""
        run = self.run
        steps = sd.production_steps(run.config)
        wiring = traffic.wiring(self.service)
        while run.step < len(steps):
            percent, bake = steps[run.step]
            if run.shifted_step < run.step:
                self.shift(wiring.production_rule if wiring else None, percent)
                run.shifted_step = run.step
                run.target.production_weight = percent
                blue = self.blue_id()
                for source in run.sources:
                    source.production_weight = 100.0 - percent if source.deployment_id == blue else 0.0
                run.step_baked_from = None
                run.touch()
                self.event(f"(deployment {run.target.deployment_id}) shifted {percent:g}% of production traffic.")
            judged = percent < 100 or run.strategy == "BLUE_GREEN"
            if judged:
                verdict = self.hooks("PRODUCTION_TRAFFIC_SHIFT", run.step)
                if verdict != "continue":
                    self.after(verdict)
                    return False
            if run.step_baked_from is None:
                run.step_baked_from = self.now
            if not self.minutes_passed(run.step_baked_from, bake):
                return False
            run.step += 1
        return True

    def clean_up(self) -> None:
        """Drain blue; once it is gone, green is production and the deployment SUCCESSFUL."""
        run, service = self.run, self.service
        leftover = []
        for source in run.sources:
            for record in self.agent.progress(self.key, source.deployment_id).live:
                leftover.append(record)
                self.stops.append(
                    (record, CLEAN_UP_REASON.format(deployment=run.target.deployment_id), "ServiceSchedulerInitiated")
                )
        for source in run.sources:
            source.production_weight = source.test_weight = 0.0
        if leftover:
            self.event(f"has begun draining {len(leftover)} tasks of the blue service revision.")
            return
        green = self.green()
        now = utcnow()
        completed = {
            **green,
            "status": "PRIMARY",
            "rolloutState": "COMPLETED",
            "rolloutStateReason": f"ECS deployment {green['id']} completed.",
            "updatedAt": now,
        }
        service.deployments = [completed]
        service.sandbox_last_completed = {"id": green["id"], "taskDefinition": green["taskDefinition"]}
        service.sandbox_production_deployment = green["id"]
        if run.green_target_group:
            service.sandbox_production_tg = run.green_target_group
        run.set_status("SUCCESSFUL", "Service deployment succeeded.")
        self.event(f"(deployment {green['id']}) deployment completed.")
        log.info("sandbox_deployment_completed", service=service.name, deployment=green["id"], strategy=run.strategy)

    # ------------------------------------------------------------------------------------------ rollback

    def roll_back(self) -> None:
        """Production and test traffic back to blue, blue PRIMARY again, green stopped; no task started."""
        run, service = self.run, self.service
        blue_id = self.blue_id()
        blue = next((d for d in service.deployments if d["id"] == blue_id), None)
        green = self.green()
        if run.status != "ROLLBACK_IN_PROGRESS":
            reason = run.requested_reason or "Service deployment rolled back."
            blue_revision = next((s for s in run.sources if s.deployment_id == blue_id), run.sources[0])
            run.rollback = {"reason": reason, "startedAt": utcnow(), "serviceRevisionArn": blue_revision.arn}
            run.set_status("ROLLBACK_IN_PROGRESS", reason)
            wiring = traffic.wiring(service)
            if wiring:
                self.shift(wiring.production_rule, 0.0)
                self.shift(wiring.test_rule, 0.0)
            run.target.production_weight = run.target.test_weight = 0.0
            blue_revision.production_weight = blue_revision.test_weight = 100.0
            now = utcnow()
            rebuilt = []
            for dep in service.deployments:
                if green is not None and dep["id"] == green["id"]:
                    dep = {
                        **dep,
                        "status": "ACTIVE",
                        "rolloutState": "FAILED",
                        "rolloutStateReason": f"ECS deployment {dep['id']} rolled back: {reason}",
                        "updatedAt": now,
                    }
                elif blue is not None and dep["id"] == blue["id"]:
                    dep = {**dep, "status": "PRIMARY", "rolloutState": "COMPLETED", "updatedAt": now}
                rebuilt.append(dep)
            service.deployments = sorted(rebuilt, key=lambda d: d["status"] != "PRIMARY")
            if blue is not None:
                service.task_definition = blue["taskDefinition"]
            self.event(f"(deployment {run.target.deployment_id}) rolling back to deployment {blue_id}: {reason}")
            log.info("sandbox_deployment_rolling_back", service=service.name, reason=reason, stage=run.stage)
        if green is not None and self.stop_green(ROLLBACK_REASON):
            return
        service.deployments = [d for d in service.deployments if green is None or d["id"] != green["id"]]
        service.sandbox_production_deployment = blue_id
        run.set_status("ROLLBACK_SUCCESSFUL", run.status_reason)
        self.event(f"(deployment {run.target.deployment_id}) rollback completed.")

    def stop_green(self, reason: str) -> bool:
        """Stop every green task; True while some are still live."""
        live = self.agent.progress(self.key, self.run.target.deployment_id).live
        for record in live:
            self.stops.append((record, reason, "ServiceSchedulerInitiated"))
        return bool(live)

    # ------------------------------------------------------------------------------------------ counters

    def count(self) -> None:
        """Running/pending counts on each revision of the deployment."""
        launched = {r.deployment_id for r in self.launches}
        for revision in [self.run.target, *self.run.sources]:
            progress = self.agent.progress(self.key, revision.deployment_id)
            running = sum(1 for r in progress.live if r.task.last_status == "RUNNING")
            revision.running = running
            revision.pending = (
                len(progress.live)
                - running
                + sum(
                    1
                    for r in self.launches
                    if r.deployment_id == revision.deployment_id and revision.deployment_id in launched
                )
            )
        self.run.target.requested = int(self.service.desired_count or 0)


def decide_traffic(
    agent: EcsAgent, backend: Any, key: str, service: Any, run: sd.ServiceDeploymentRun
) -> tuple[list[TaskRecord], Stops]:
    """One round of a BLUE_GREEN, CANARY or LINEAR deployment."""
    return TrafficRound(agent, backend, key, service, run).decide()


Clock = Callable[[], float]
