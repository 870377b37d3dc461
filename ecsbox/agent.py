"""The ECS scheduler and agent, played against moto's in-process backend.

For every ACTIVE service the agent starts the PRIMARY deployment's tasks through a launcher, reports what
they do as moto task records (PENDING -> RUNNING -> STOPPED, stopped reasons, network bindings), counts
running/pending/failed tasks on each deployment, drains the old deployments once the new one is healthy,
marks the rollout COMPLETED or FAILED (deployment circuit breaker, optionally rolling back) and writes
ECS-style service events.

Rules, and where they simplify ECS:
- Launches are bounded by `maximumPercent` of desiredCount over all deployments; old tasks are stopped
  while at least `minimumHealthyPercent` of desiredCount stays healthy. "Healthy" is RUNNING, and
  HEALTHY as well when the task definition has a container healthCheck.
- A task that stops without the agent asking is replaced, counts as a failed task of its deployment, and
  delays the next launch for that deployment (exponential backoff, `restart_backoff`).
- Circuit breaker threshold: max(3, min(200, ceil(desired * 0.5))) failed tasks, as ECS documents it;
  `circuit_breaker_min` lowers the floor for tests. Only an IN_PROGRESS deployment can trip it. With
  `rollback`, a new PRIMARY on the last COMPLETED deployment's task definition replaces it; without
  rollback the FAILED deployment keeps retrying with backoff, as ECS does.
- Stopped tasks stay describable; the oldest are forgotten beyond `keep_stopped` per service.
- A service pointed back (UpdateService, nothing else changed) to the revision an older deployment still runs keeps
  that deployment's tasks: they become the new PRIMARY's, no task is started. ECS itself starts new tasks of that
  revision and drains the old ones once those are healthy (its minimum healthy count keeps them answering until
  then); the sandbox simplifies that to keeping them, the end state of a rollback caught during the rollout.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from moto.core.utils import utcnow

from ecsbox import alarms, strategies, traffic
from ecsbox import deployments as sd
from ecsbox import extension as ext
from ecsbox.launchers import Launcher, LaunchStatus

log = structlog.get_logger(__name__)

SCALE_IN_REASON = "Scaling activity initiated by (deployment {deployment})"
EXIT_REASON = "Essential container in task exited"
HEALTH_REASON = "Task failed container health checks"
ELB_HEALTH_REASON = "Task failed ELB health checks in (target-group {target_group})"
# Container reasons ECS reports as the task's stoppedReason too (others, like OutOfMemoryError, stay on the
# container while the task says "Essential container in task exited").
TASK_LEVEL_REASONS = (
    "CannotPullContainerError",
    "CannotStartContainerError",
    "CannotCreateContainerError",
    "ResourceInitializationError",
)


@dataclass
class TaskRecord:
    """The agent's side of one task: where it belongs and what runs it."""

    task: ext.SandboxTask
    service_key: str
    deployment_id: str
    has_health_check: bool
    handle: Any = None
    stop_requested: str | None = None  # the stoppedReason when the agent (or StopTask) asked it to stop
    stop_code: str | None = None
    failed: bool = False
    done: bool = False
    running_since: float | None = None  # agent clock when it was first seen RUNNING
    last: LaunchStatus | None = None
    target_group: str | None = None  # where ECS registers it once RUNNING (services behind a load balancer)
    target: tuple[str, int] | None = None  # (private IP, container port) while registered


@dataclass
class DeploymentProgress:
    """Counters of one deployment, computed each round."""

    live: list[TaskRecord] = field(default_factory=list)  # not stopped and not asked to stop
    running: int = 0
    pending: int = 0
    healthy: int = 0


class EcsAgent:
    """Plays the ECS service scheduler and container agent for every service in one moto account/region."""

    def __init__(
        self,
        launcher: Launcher,
        account_id: str = "123456789012",
        region: str | None = None,
        interval: float = 0.5,
        restart_backoff: tuple[float, float] = (1.0, 10.0),
        circuit_breaker_min: int = 3,
        steady_after: float = 3.0,
        keep_stopped: int = 100,
        monotonic: Callable[[], float] = time.monotonic,
        minute: float = 60.0,
    ) -> None:
        ext.install()
        self.launcher = launcher
        self.account_id = account_id
        self.region = region
        self.interval = interval
        self.restart_backoff = restart_backoff
        self.circuit_breaker_min = circuit_breaker_min
        self.steady_after = steady_after
        self.keep_stopped = keep_stopped
        self._monotonic = monotonic
        self.minute = minute  # agent-clock seconds per ECS minute (bake times, hook timeouts); tests shrink it
        self._records: dict[str, TaskRecord] = {}  # by task ARN
        self._failures: dict[str, int] = {}  # consecutive failures per deployment id
        self._next_launch: dict[str, float] = {}  # earliest next launch per deployment id
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._round_lock = threading.Lock()
        self.rounds = 0
        self.errors = 0

    # ------------------------------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Reconcile every `interval` seconds in a daemon thread until `stop()`."""
        if self._thread and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="snail-sandbox-agent", daemon=True)
        self._thread.start()
        log.info("sandbox_agent_started", account_id=self.account_id, region=self.region, interval=self.interval)

    def stop(self, stop_tasks: bool = False) -> None:
        """Stop the loop; with `stop_tasks`, stop every task the agent started."""
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=30)
        if stop_tasks:
            self.stop_all_tasks()
        log.info("sandbox_agent_stopped", rounds=self.rounds, errors=self.errors)

    def stop_all_tasks(self, reason: str = "Task stopped by the sandbox shutting down") -> None:
        """Ask the launcher to stop every live task and mark the records STOPPED."""
        with ext.BACKEND_LOCK:
            records = [r for r in self._records.values() if not r.done]
        for record in records:
            if record.handle is not None:
                try:
                    self.launcher.stop(record.handle)
                except Exception as exc:  # noqa: BLE001 - keep stopping the others
                    log.warning("sandbox_task_stop_failed", task=record.task.id, error=str(exc))
            with ext.BACKEND_LOCK:
                self._mark_stopped(record, reason, "ServiceSchedulerInitiated", None)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.reconcile_once()
            except Exception:  # noqa: BLE001 - the agent must survive one bad round
                self.errors += 1
                log.exception("sandbox_agent_round_failed")
            self._stop.wait(self.interval)

    def regions(self) -> list[str]:
        """The regions to schedule: the one given, or every region moto has an ECS backend for."""
        if self.region:
            return [self.region]
        from moto.backends import get_backend

        return list(get_backend("ecs")[self.account_id].keys())

    def _backend(self, region: str) -> Any:
        return ext.ecs_backend(self.account_id, region)

    # ------------------------------------------------------------------------------------------ one round

    def reconcile_once(self) -> None:
        """One scheduler round: observe tasks, update records, then launch and stop what the rules say."""
        with self._round_lock:
            self.rounds += 1
            self._observe()
            launches, stops = self._decide()
            for record, reason, code in stops:
                self._request_stop(record, reason, code)
            for record in launches:
                self._launch(record)

    def _observe(self) -> None:
        """Poll the launcher for every live task (outside the lock: Docker calls are slow) and apply."""
        with ext.BACKEND_LOCK:
            records = [r for r in self._records.values() if not r.done and r.handle is not None]
            # StopTask through the API: moto already set desiredStatus STOPPED; the container must follow.
            for r in records:
                if r.task.desired_status == "STOPPED" and r.stop_requested is None:
                    r.stop_requested = r.task.stopped_reason or "Task stopped by user"
                    r.stop_code = "UserInitiated"
                    r.task.last_status = "DEACTIVATING"
                    r.task.stopping_at = utcnow()
                    self._stop_launcher(r)
        seen = []
        for record in records:
            try:
                seen.append((record, self.launcher.status(record.handle)))
            except Exception as exc:  # noqa: BLE001 - a lost task is reported as stopped
                seen.append((record, LaunchStatus("STOPPED", None, f"ResourceInitializationError: {exc}")))
        with ext.BACKEND_LOCK:
            for record, status in seen:
                self._apply(record, status)

    def _apply(self, record: TaskRecord, status: LaunchStatus) -> None:
        """Turn one launcher observation into the moto task record (caller holds BACKEND_LOCK)."""
        task = record.task
        record.last = status
        if status.state == "STOPPED":
            if record.stop_requested is not None:
                self._mark_stopped(record, record.stop_requested, record.stop_code, status)
                return
            # It stopped on its own: a failed task, to be replaced.
            reason = status.reason if status.reason and status.reason.split(":")[0] in TASK_LEVEL_REASONS else None
            # A container that ran (it has an exit code) exited; one that never ran failed to start.
            stop_code = (
                "EssentialContainerExited" if status.exit_code is not None and not reason else "TaskFailedToStart"
            )
            record.failed = True
            self._mark_stopped(record, reason or EXIT_REASON, stop_code, status)
            self._stop_launcher(record)  # remove what is left of the containers
            self._count_failure(record, status)
            return
        if record.stop_requested is not None:
            return  # stopping: keep DEACTIVATING/STOPPING until the launcher says STOPPED
        for container in task.containers:
            if status.state == "RUNNING":
                container.last_status = "RUNNING"
                container.network_bindings = [b for b in status.bindings]
                container.health_status = status.health if record.has_health_check else "UNKNOWN"
        task.health_status = status.health if record.has_health_check else "UNKNOWN"
        if status.state == "PENDING" and task.last_status == "PROVISIONING":
            task.last_status = "PENDING"
        if status.state == "RUNNING" and task.last_status != "RUNNING":
            now = utcnow()
            task.pull_stopped_at = task.pull_stopped_at or now
            task.started_at = now
            task.last_status = "RUNNING"
            record.running_since = self._monotonic()
            self._failures.pop(record.deployment_id, None)
            log.info("sandbox_task_running", task=task.id, deployment=record.deployment_id, bindings=status.bindings)
            self._register(record)
        if record.target is not None and record.target_group and self._elb_unhealthy(record):
            reason = ELB_HEALTH_REASON.format(target_group=record.target_group)
            record.failed = True
            record.stop_requested, record.stop_code = reason, "ServiceSchedulerInitiated"
            task.stopped_reason, task.stop_code = reason, "ServiceSchedulerInitiated"
            task.desired_status = "STOPPED"
            task.last_status = "DEACTIVATING"
            task.stopping_at = utcnow()
            self._deregister(record)
            self._stop_launcher(record)
            self._count_failure(record, status)
            return
        if record.has_health_check and status.health == "UNHEALTHY":
            record.failed = True
            record.stop_requested, record.stop_code = HEALTH_REASON, "ServiceSchedulerInitiated"
            task.stopped_reason, task.stop_code = HEALTH_REASON, "ServiceSchedulerInitiated"
            task.desired_status = "STOPPED"
            task.last_status = "DEACTIVATING"
            task.stopping_at = utcnow()
            for container in task.containers:
                container.health_status = "UNHEALTHY"
            self._stop_launcher(record)
            self._count_failure(record, status)

    def _count_failure(self, record: TaskRecord, status: LaunchStatus) -> None:
        """failedTasks += 1 on the task's deployment and back off its next launch (holds BACKEND_LOCK)."""
        service = self._service(record.service_key)
        log.info(
            "sandbox_task_failed",
            task=record.task.id,
            deployment=record.deployment_id,
            reason=record.task.stopped_reason or record.stop_requested,
            exit_code=status.exit_code,
            log_tail=status.log_tail[-2000:] if status.log_tail else None,
        )
        n = self._failures.get(record.deployment_id, 0) + 1
        self._failures[record.deployment_id] = n
        base, cap = self.restart_backoff
        self._next_launch[record.deployment_id] = self._monotonic() + min(cap, base * 2 ** (n - 1)) if base else 0
        if service is None:
            return
        service.deployments = [
            {**d, "failedTasks": d.get("failedTasks", 0) + 1, "updatedAt": utcnow()}
            if d["id"] == record.deployment_id
            else d
            for d in service.deployments
        ]
        dep = next((d for d in service.deployments if d["id"] == record.deployment_id), None)
        if dep and dep["failedTasks"] == 3 and not self.breaker(service)["enable"]:
            ext.add_event(
                service,
                f"{ext.service_label(service)} is unable to consistently start tasks successfully. For more "
                "information, see the Troubleshooting section of the Amazon ECS Developer Guide.",
            )

    def _mark_stopped(
        self, record: TaskRecord, reason: str, stop_code: str | None, status: LaunchStatus | None
    ) -> None:
        """Record a task as STOPPED with its reason and exit codes (caller holds BACKEND_LOCK)."""
        if record.done:
            return
        task = record.task
        now = utcnow()
        task.desired_status = "STOPPED"
        task.last_status = "STOPPED"
        task.stopped_reason = reason
        task.stop_code = stop_code
        task.stopping_at = task.stopping_at or now
        task.stopped_at = now
        task.execution_stopped_at = now
        task.health_status = "UNKNOWN" if task.health_status != "UNHEALTHY" else "UNHEALTHY"
        for container in task.containers:
            container.last_status = "STOPPED"
            container.network_bindings = []
            if status is not None:
                container.exit_code = status.exit_code
                if status.reason:
                    container.reason = status.reason
        self._deregister(record)
        task.release_eni()
        record.done = True
        log.info("sandbox_task_stopped", task=task.id, deployment=record.deployment_id, reason=reason)

    # ------------------------------------------------------------------------------------------ decisions

    def _decide(self) -> tuple[list[TaskRecord], list[tuple[TaskRecord, str, str]]]:
        """Per service: update deployment counters and states; return tasks to launch and to stop."""
        launches: list[TaskRecord] = []
        stops: list[tuple[TaskRecord, str, str]] = []
        with ext.BACKEND_LOCK:
            services: dict[str, tuple[Any, Any]] = {}
            for region in self.regions():
                backend = self._backend(region)
                for name, service in list(backend.services.items()):
                    services[f"{region}/{name}"] = (backend, service)
            for record in list(self._records.values()):
                service = services.get(record.service_key, (None, None))[1]
                if (
                    not record.done
                    and record.stop_requested is None
                    and (service is None or service.status != "ACTIVE")
                ):
                    stops.append((record, "Service deleted", "ServiceSchedulerInitiated"))
            for key, (backend, service) in services.items():
                if service.status != "ACTIVE" or service.deployment_controller.get("type", "ECS") != "ECS":
                    continue
                service_launches, service_stops = self._decide_service(backend, key, service)
                launches += service_launches
                stops += service_stops
            self._forget_old_stopped()
        return launches, stops

    def _progress(self, key: str, deployment_id: str) -> DeploymentProgress:
        progress = DeploymentProgress()
        for record in self._records.values():
            if record.service_key != key or record.deployment_id != deployment_id:
                continue
            if record.done or record.stop_requested is not None:
                continue
            progress.live.append(record)
            status = record.task.last_status
            if status == "RUNNING":
                progress.running += 1
                if self._is_healthy(record):
                    progress.healthy += 1
            else:
                progress.pending += 1
        return progress

    def _is_healthy(self, record: TaskRecord) -> bool:
        """RUNNING (HEALTHY too when it has a healthCheck) for at least `steady_after` seconds.

        ECS does not call a crash-looping deployment COMPLETED; without the wait, a container that exits a
        moment after starting would count as running and complete the rollout.
        """
        if record.task.last_status != "RUNNING" or record.running_since is None:
            return False
        if record.has_health_check and record.task.health_status != "HEALTHY":
            return False
        if record.target is not None and record.target_group:
            measured = traffic.health(record.target_group, record.target)
            if measured not in (None, "healthy"):
                return False  # behind a load balancer ECS waits for the target to pass its health checks
        return self._monotonic() - record.running_since >= self.steady_after

    def breaker(self, service: Any) -> dict[str, Any]:
        config = getattr(service, "deployment_configuration", None) or ext.DEFAULT_DEPLOYMENT_CONFIGURATION
        breaker = config.get("deploymentCircuitBreaker") or {}
        return {"enable": bool(breaker.get("enable")), "rollback": bool(breaker.get("rollback"))}

    def failure_threshold(self, desired: int) -> int:
        """The circuit breaker's failed-task threshold for a service of `desired` tasks."""
        return max(self.circuit_breaker_min, min(200, math.ceil(desired * 0.5)))

    def _decide_service(
        self, backend: Any, key: str, service: Any
    ) -> tuple[list[TaskRecord], list[tuple[TaskRecord, str, str]]]:
        launches: list[TaskRecord] = []
        stops: list[tuple[TaskRecord, str, str]] = []
        primary = ext.primary_deployment(service)
        if primary is None or not primary.get("taskDefinition"):
            return launches, stops
        self._adopt_targets(key, service)
        run = sd.current_run(backend, service)
        if run is not None:
            self._watch_alarms(key, run)
        if run is not None and run.uses_traffic:
            launches, stops = strategies.decide_traffic(self, backend, key, service, run)
            self._update_counters(service, key, launches, stops)
            service.sandbox_steady = False
            self._announce(service, key, launches, stops)
            return launches, stops
        if run is not None:
            primary = self._rolling_requests(service, run, primary)
        self._keep_old_tasks(key, service, primary)
        desired = int(service.desired_count or 0)
        config = getattr(service, "deployment_configuration", None) or ext.DEFAULT_DEPLOYMENT_CONFIGURATION
        max_total = max(desired, math.floor(desired * int(config.get("maximumPercent", 200)) / 100))
        min_healthy = math.ceil(desired * int(config.get("minimumHealthyPercent", 100)) / 100)
        breaker = self.breaker(service)

        # Circuit breaker first: it may replace the PRIMARY.
        if (
            breaker["enable"]
            and primary["rolloutState"] == "IN_PROGRESS"
            and primary.get("failedTasks", 0) >= self.failure_threshold(desired)
        ):
            primary = self._trip_breaker(service, primary, breaker["rollback"])
            if run is not None and run.target.deployment_id != primary["id"] and not run.status.startswith("ROLLBACK"):
                self._rolling_rollback_started(run, primary, "ECS deployment circuit breaker: tasks failed to start.")
            elif run is not None and not breaker["rollback"]:
                run.breaker_status = "TRIGGERED"
                run.set_status("STOPPED", "ECS deployment circuit breaker: tasks failed to start.")

        progress = {d["id"]: self._progress(key, d["id"]) for d in service.deployments}
        p = progress[primary["id"]]
        old = [d for d in service.deployments if d["id"] != primary["id"]]
        old_live = [r for d in old for r in progress[d["id"]].live]
        old_healthy = sum(progress[d["id"]].healthy for d in old)

        # Too many PRIMARY tasks (desiredCount went down): stop the newest.
        if len(p.live) > desired:
            extra = sorted(p.live, key=lambda r: r.task.created_at, reverse=True)[: len(p.live) - desired]
            for r in extra:
                stops.append((r, SCALE_IN_REASON.format(deployment=primary["id"]), "ServiceSchedulerInitiated"))
            p.live = [r for r in p.live if r not in extra]

        # Drain old tasks: unhealthy ones at once, healthy ones while min healthy holds.
        stoppable = p.healthy + old_healthy - min_healthy
        for r in sorted(old_live, key=lambda r: (r.task.last_status == "RUNNING", r.task.created_at)):
            if self._is_healthy(r):
                if stoppable <= 0:
                    continue
                stoppable -= 1
            stops.append((r, SCALE_IN_REASON.format(deployment=primary["id"]), "ServiceSchedulerInitiated"))
        stopped_old = {id(r) for r, _, _ in stops}
        remaining_old = [r for r in old_live if id(r) not in stopped_old]

        # Launch PRIMARY tasks within maximumPercent, unless backing off after failures.
        room = max_total - (len(p.live) + len(remaining_old))
        need = desired - len(p.live)
        can_launch = self._monotonic() >= self._next_launch.get(primary["id"], 0)
        if need > 0 and room > 0 and can_launch:
            launches += self.new_tasks(
                backend, key, service, primary, min(need, room), traffic.production_target_group(service)
            )
        self._announce(service, key, launches, stops)
        self._update_counters(service, key, launches, stops)
        now = utcnow()

        # Completion: PRIMARY fully healthy and nothing left of the others.
        primary = ext.primary_deployment(service) or primary
        steady = p.healthy == desired and len(p.live) == desired and not old_live and not launches
        if steady:
            if len(service.deployments) > 1:
                service.deployments = [primary]
            if primary["rolloutState"] == "IN_PROGRESS":
                primary = {
                    **primary,
                    "rolloutState": "COMPLETED",
                    "rolloutStateReason": f"ECS deployment {primary['id']} completed.",
                    "updatedAt": now,
                }
                service.deployments = [primary]
                service.sandbox_last_completed = {"id": primary["id"], "taskDefinition": primary["taskDefinition"]}
                service.sandbox_production_deployment = primary["id"]
                if run is not None:
                    self._rolling_completed(run, primary)
                ext.add_event(
                    service, f"{ext.service_label(service)} (deployment {primary['id']}) deployment completed."
                )
                log.info(
                    "sandbox_deployment_completed",
                    service=service.name,
                    deployment=primary["id"],
                    task_definition=primary["taskDefinition"],
                )
            if not getattr(service, "sandbox_steady", False):
                service.sandbox_steady = True
                ext.add_event(service, f"{ext.service_label(service)} has reached a steady state.")
        else:
            service.sandbox_steady = False
        return launches, stops

    def _keep_old_tasks(self, key: str, service: Any, primary: dict[str, Any]) -> None:
        """The service was pointed back (UpdateService) to the revision an older deployment still runs: that
        deployment's live tasks become the PRIMARY's, so no task is started and the old ones are never stopped."""
        keep = getattr(service, "sandbox_keep", None) or {}
        older = keep.pop(primary["id"], None)
        if not older:
            return
        for record in self._records.values():
            if record.service_key != key or record.deployment_id not in older:
                continue
            if record.done or record.stop_requested is not None:
                continue
            record.deployment_id = primary["id"]
            record.task.started_by = primary["id"]
            log.info("sandbox_task_kept", task=record.task.id, deployment=primary["id"])

    # ------------------------------------------------------------------------------------------ helpers

    def now(self) -> float:
        """The agent's clock (monotonic seconds)."""
        return self._monotonic()

    def progress(self, key: str, deployment_id: str) -> DeploymentProgress:
        """Live, running, pending and healthy tasks of one deployment of a service."""
        return self._progress(key, deployment_id)

    def may_launch(self, deployment_id: str) -> bool:
        """False while a deployment backs off after failed tasks."""
        return self._monotonic() >= self._next_launch.get(deployment_id, 0)

    def new_tasks(
        self, backend: Any, key: str, service: Any, deployment: dict[str, Any], count: int, target_group: str | None
    ) -> list[TaskRecord]:
        """Create `count` PROVISIONING tasks of `deployment` (launched after the round), bound for `target_group`."""
        task_def = backend.describe_task_definition(deployment["taskDefinition"])
        cluster = backend._get_cluster(service.cluster_name)
        created = []
        for _ in range(count):
            task = ext.SandboxTask(backend, cluster, service, task_def, deployment["id"])
            backend.tasks.setdefault(cluster.name, {})[task.task_arn] = task
            record = TaskRecord(
                task, key, deployment["id"], any(c.get("healthCheck") for c in task_def.container_definitions)
            )
            record.target_group = target_group
            self._records[task.task_arn] = record
            created.append(record)
        return created

    def _announce(
        self, service: Any, key: str, launches: list[TaskRecord], stops: list[tuple[TaskRecord, str, str]]
    ) -> None:
        """ECS's 'has started N tasks' and 'has stopped N running tasks' events."""
        started = [r.task.id for r in launches if r.service_key == key]
        if started:
            ext.add_event(
                service,
                f"{ext.service_label(service)} has started {len(started)} tasks: "
                + " ".join(f"(task {t})" for t in started)
                + ".",
            )
        drained = [r.task.id for r, _, _ in stops if r.service_key == key]
        if drained:
            ext.add_event(
                service,
                f"{ext.service_label(service)} has stopped {len(drained)} running tasks: "
                + " ".join(f"(task {t})" for t in drained)
                + ".",
            )

    def _update_counters(
        self, service: Any, key: str, launches: list[TaskRecord], stops: list[tuple[TaskRecord, str, str]]
    ) -> None:
        """Running/pending counts on every deployment (copy-on-write: a response may be serialising them)."""
        now = utcnow()
        stopping = {id(r) for r, _, _ in stops}
        new_deployments = []
        for d in service.deployments:
            live = [r for r in self._progress(key, d["id"]).live if id(r) not in stopping]
            running = sum(1 for r in live if r.task.last_status == "RUNNING")
            launched_here = sum(1 for r in launches if r.deployment_id == d["id"] and r not in live)
            counts = {"runningCount": running, "pendingCount": len(live) - running + launched_here}
            if any(d.get(k) != v for k, v in counts.items()):
                d = {**d, **counts, "updatedAt": now}
            new_deployments.append(d)
        service.deployments = new_deployments
        service.running_count = sum(d["runningCount"] for d in new_deployments)
        service.pending_count = sum(d["pendingCount"] for d in new_deployments)

    # ------------------------------------------------------------------------------------------ rolling runs

    def _rolling_requests(self, service: Any, run: sd.ServiceDeploymentRun, primary: dict[str, Any]) -> dict[str, Any]:
        """A ROLLING service deployment: IN_PROGRESS once seen; StopServiceDeployment ROLLBACK acted on."""
        if run.status == "PENDING":
            run.set_status("IN_PROGRESS")
            run.breaker_threshold = self.failure_threshold(int(service.desired_count or 0))
            run.breaker_status = "MONITORING" if self.breaker(service)["enable"] else "DISABLED"
        run.breaker_failures = int(primary.get("failedTasks", 0)) if primary["id"] == run.target.deployment_id else 0
        if run.status == "ROLLBACK_REQUESTED" and run.sources:
            source = run.sources[0]
            now = utcnow()
            service.deployments = [
                {**d, "rolloutState": "FAILED", "rolloutStateReason": run.requested_reason, "updatedAt": now}
                if d["id"] == primary["id"]
                else d
                for d in service.deployments
            ]
            primary = ext.start_deployment(service, source.task_definition, reason="rollback")
            self._rolling_rollback_started(run, primary, run.requested_reason or "Service deployment rolled back.")
        return primary

    def _rolling_rollback_started(self, run: sd.ServiceDeploymentRun, new_primary: dict[str, Any], reason: str) -> None:
        """The deployment that restores the source revision has started."""
        source = run.sources[0] if run.sources else run.target
        run.rollback = {"reason": reason, "startedAt": utcnow(), "serviceRevisionArn": source.arn}
        run.rollback_deployment_id = new_primary["id"]
        if reason.startswith("ECS deployment circuit breaker"):
            run.breaker_status = "TRIGGERED"
        run.set_status("ROLLBACK_IN_PROGRESS", reason)

    def _rolling_completed(self, run: sd.ServiceDeploymentRun, primary: dict[str, Any]) -> None:
        """A rolling deployment (or its rollback) completed."""
        if primary["id"] == run.target.deployment_id and run.status == "IN_PROGRESS":
            if run.breaker_status == "MONITORING":
                run.breaker_status = "MONITORING_COMPLETE"
            run.target.running = int(primary.get("runningCount", 0))
            run.set_status("SUCCESSFUL", "Service deployment succeeded.")
        elif run.status == "ROLLBACK_IN_PROGRESS" and primary["id"] == run.rollback_deployment_id:
            run.set_status("ROLLBACK_SUCCESSFUL", run.status_reason)

    def _watch_alarms(self, key: str, run: sd.ServiceDeploymentRun) -> None:
        """ECS's deployment alarms: one in ALARM while the deployment runs triggers it (and its rollback)."""
        config = run.config.get("alarms") or {}
        if not config.get("enable") or run.status not in ("PENDING", "IN_PROGRESS"):
            return
        if run.alarm_status == "DISABLED":
            run.alarm_status = "MONITORING"
        triggered = alarms.in_alarm(self.account_id, key.partition("/")[0], list(config.get("alarmNames") or []))
        if not triggered or run.alarm_status == "TRIGGERED":
            return
        run.alarm_status = "TRIGGERED"
        run.triggered_alarms = triggered
        run.touch()
        log.info("sandbox_deployment_alarm", deployment=run.arn.rsplit("/", 1)[-1], alarms=triggered)
        if config.get("rollback") and run.sources:
            run.requested = "ROLLBACK"
            run.requested_reason = f"ECS deployment alarms: {', '.join(triggered)} in ALARM."
            run.set_status("ROLLBACK_REQUESTED")

    # ------------------------------------------------------------------------------------------ load balancer

    def _adopt_targets(self, key: str, service: Any) -> None:
        """Tasks started before the service had a load balancer join its production target group, as ECS does."""
        group = traffic.production_target_group(service)
        if group is None:
            return
        for record in self._records.values():
            if record.service_key == key and record.target_group is None and not record.done:
                record.target_group = group
                if record.task.last_status == "RUNNING" and record.stop_requested is None:
                    self._register(record)

    def _register(self, record: TaskRecord) -> None:
        """Register a task that just became RUNNING in its target group, as ECS does (holds BACKEND_LOCK)."""
        if not record.target_group or record.target is not None:
            return
        service = self._service(record.service_key)
        target = traffic.task_target(record.task, service) if service is not None else None
        if target is None:
            return
        region = record.service_key.partition("/")[0]
        if traffic.register(self.account_id, region, record.target_group, target):
            record.target = target

    def _deregister(self, record: TaskRecord) -> None:
        """Deregister a stopping task from its target group (holds BACKEND_LOCK)."""
        if record.target is None or not record.target_group:
            return
        traffic.deregister(self.account_id, record.service_key.partition("/")[0], record.target_group, record.target)
        record.target = None

    def _elb_unhealthy(self, record: TaskRecord) -> bool:
        """The load balancer measured the task's target unhealthy after the grace period (ECS then replaces it)."""
        if record.target is None or traffic.health(record.target_group or "", record.target) != "unhealthy":
            return False
        service = self._service(record.service_key)
        grace = float(getattr(service, "health_check_grace_period_seconds", None) or 0)
        return record.running_since is None or self._monotonic() - record.running_since >= grace

    def _trip_breaker(self, service: Any, primary: dict[str, Any], rollback: bool) -> dict[str, Any]:
        """Mark the PRIMARY FAILED; with rollback start a new PRIMARY on the last COMPLETED revision."""
        now = utcnow()
        failed = {
            **primary,
            "rolloutState": "FAILED",
            "rolloutStateReason": "ECS deployment circuit breaker: tasks failed to start.",
            "updatedAt": now,
        }
        service.deployments = [failed if d is primary else d for d in service.deployments]
        ext.add_event(
            service,
            f"{ext.service_label(service)} (deployment {primary['id']}) deployment failed: tasks failed to start.",
        )
        log.info(
            "sandbox_circuit_breaker_tripped",
            service=service.name,
            deployment=primary["id"],
            failed_tasks=primary.get("failedTasks"),
            rollback=rollback,
        )
        target = getattr(service, "sandbox_last_completed", None)
        if not rollback or not target or target["taskDefinition"] == primary["taskDefinition"]:
            return failed
        new = ext.start_deployment(service, target["taskDefinition"], reason="circuit_breaker_rollback")
        ext.add_event(service, f"{ext.service_label(service)} rolling back to deployment {target['id']}.")
        return new

    def _forget_old_stopped(self) -> None:
        """Keep at most `keep_stopped` stopped tasks per service, like ECS forgetting them after a while."""
        by_service: dict[str, list[TaskRecord]] = {}
        for record in self._records.values():
            if record.done:
                by_service.setdefault(record.service_key, []).append(record)
        for records in by_service.values():
            records.sort(key=lambda r: r.task.stopped_at or r.task.created_at)
            for record in records[: max(0, len(records) - self.keep_stopped)]:
                arn = record.task.task_arn
                self._records.pop(arn, None)
                record.task._backend.tasks.get(record.task.cluster_name, {}).pop(arn, None)

    # ------------------------------------------------------------------------------------------ actions

    def _request_stop(self, record: TaskRecord, reason: str, code: str) -> None:
        with ext.BACKEND_LOCK:
            if record.done or record.stop_requested is not None:
                return
            record.stop_requested, record.stop_code = reason, code
            # ECS sets the reason when it decides to stop, not when the container is gone.
            record.task.stopped_reason, record.task.stop_code = reason, code
            record.task.desired_status = "STOPPED"
            record.task.last_status = "DEACTIVATING"
            record.task.stopping_at = utcnow()
            self._deregister(record)
            if record.handle is None:
                self._mark_stopped(record, reason, code, None)
                return
        self._stop_launcher(record)

    def _stop_launcher(self, record: TaskRecord) -> None:
        try:
            self.launcher.stop(record.handle)
        except Exception as exc:  # noqa: BLE001 - the next round sees what is left
            log.warning("sandbox_task_stop_failed", task=record.task.id, error=str(exc))

    def _launch(self, record: TaskRecord) -> None:
        """Start the containers for a PROVISIONING task (outside the lock: pulls take time)."""
        with ext.BACKEND_LOCK:
            task_def = record.task._backend.describe_task_definition(record.task.task_definition_arn)
            container_defs = [dict(c) for c in task_def.container_definitions]
            td = {
                "family": task_def.family,
                "revision": task_def.revision,
                "cpu": task_def.cpu,
                "memory": task_def.memory,
                "networkMode": task_def.network_mode,
            }
            record.task.last_status = "PENDING"
            record.task.pull_started_at = utcnow()
        try:
            handle = self.launcher.start(record.task.id, container_defs, td)
        except Exception as exc:  # noqa: BLE001 - report like ECS would, then replace
            log.warning("sandbox_task_launch_failed", task=record.task.id, error=str(exc))
            handle = None
            with ext.BACKEND_LOCK:
                record.failed = True
                status = LaunchStatus("STOPPED", None, f"CannotStartContainerError: {exc}")
                self._mark_stopped(record, status.reason or EXIT_REASON, "TaskFailedToStart", status)
                self._count_failure(record, status)
            return
        with ext.BACKEND_LOCK:
            record.handle = handle
        log.info("sandbox_task_launched", task=record.task.id, deployment=record.deployment_id, family=td["family"])

    def _service(self, key: str) -> Any:
        region, _, name = key.partition("/")
        return self._backend(region).services.get(name)

    # ------------------------------------------------------------------------------------------ views

    def task_records(self) -> list[TaskRecord]:
        """Every task the agent knows (for status displays and tests)."""
        with ext.BACKEND_LOCK:
            return list(self._records.values())
