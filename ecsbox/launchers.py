"""What runs a sandbox task: real Docker containers, or nothing at all (InstantLauncher, for engine tests).

A launcher knows nothing about ECS deployments. The agent asks it to `start` a task's containers, polls
`status`, and `stop`s them; the agent turns what it reports into ECS task states and stopped reasons.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

import structlog

log = structlog.get_logger(__name__)

SANDBOX_LABEL = "snail-sandbox"
TASK_LABEL = "snail-task"

# <account>.dkr.ecr.<region>.amazonaws.com/<repo>[:tag|@digest]: moto's ECR has no data plane, so images
# named by their ECR URI are pulled from the local registry that stands in for it.
ECR_HOST = re.compile(r"^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/")


class LaunchStatus(NamedTuple):
    """What a launcher saw of a task: PENDING | RUNNING | STOPPED, plus exit code, reason, ports, health.

    `reason` is the container-level reason (`CannotPullContainerError: …`, `OutOfMemoryError: …`), None
    for a plain exit. `health` is HEALTHY | UNHEALTHY | UNKNOWN (UNKNOWN when no healthCheck is defined).
    """

    state: str
    exit_code: int | None = None
    reason: str | None = None
    bindings: list[dict[str, Any]] = []
    health: str = "UNKNOWN"
    log_tail: str = ""


class Launcher(Protocol):
    """Starts, watches and stops the containers of one ECS task."""

    def start(self, task_id: str, container_defs: list[dict[str, Any]], task_def: dict[str, Any]) -> Any:
        """Start the task's containers; never raises for an image or start problem (status reports it)."""
        ...

    def status(self, handle: Any) -> LaunchStatus:
        """What the task's essential containers are doing now."""
        ...

    def stop(self, handle: Any) -> None:
        """Stop and remove the task's containers (may finish in the background; status says when)."""
        ...


# ------------------------------------------------------------------------------------------ no containers


@dataclass
class _InstantTask:
    task_id: str
    image: str
    ports: list[int]
    state: str = "RUNNING"
    exit_code: int | None = None
    reason: str | None = None
    health: str = "UNKNOWN"
    polls: int = 0
    stopped: bool = False


class InstantLauncher:
    """Tasks without containers: RUNNING at once with `host_port_for(image)` as the host port, or failing.

    `fail_reason_for(image)` -> a container reason (e.g. "CannotPullContainerError: …") makes the task stop
    before it runs; `exit_code_for(image)` -> an int makes it run and then exit with that code on the next
    poll ("Essential container in task exited"); `health_for(image)` -> HEALTHY | UNHEALTHY sets the health
    of a task whose definition has a healthCheck. `exit(task_id, code)` makes a running task exit later.
    """

    def __init__(
        self,
        host_port_for: Callable[[str], int | None] | None = None,
        fail_reason_for: Callable[[str], str | None] | None = None,
        exit_code_for: Callable[[str], int | None] | None = None,
        health_for: Callable[[str], str | None] | None = None,
        pending_polls: int = 0,
    ) -> None:
        self.host_port_for = host_port_for or (lambda image: None)
        self.fail_reason_for = fail_reason_for or (lambda image: None)
        self.exit_code_for = exit_code_for or (lambda image: None)
        self.health_for = health_for or (lambda image: None)
        self.pending_polls = pending_polls
        self.tasks: dict[str, _InstantTask] = {}
        self.started: list[str] = []
        self.stopped: list[str] = []

    def start(self, task_id: str, container_defs: list[dict[str, Any]], task_def: dict[str, Any]) -> str:
        """Record the task; it is RUNNING (or failed) from the next status call on."""
        essential = _essential(container_defs)
        image = essential.get("image", "")
        ports = [int(p["containerPort"]) for p in essential.get("portMappings", []) if p.get("containerPort")]
        task = _InstantTask(task_id, image, ports)
        reason = self.fail_reason_for(image)
        if reason:
            task.state, task.reason = "STOPPED", reason
        if essential.get("healthCheck"):
            task.health = self.health_for(image) or "HEALTHY"
        self.tasks[task_id] = task
        self.started.append(task_id)
        return task_id

    def status(self, handle: str) -> LaunchStatus:
        """RUNNING with bindings, or STOPPED with the configured reason or exit code."""
        task = self.tasks[handle]
        task.polls += 1
        if task.state == "RUNNING" and task.polls <= self.pending_polls:
            return LaunchStatus("PENDING")
        if task.state == "RUNNING" and task.exit_code is None and not task.stopped:
            code = self.exit_code_for(task.image)
            if code is not None and task.polls > self.pending_polls + 1:
                task.state, task.exit_code = "STOPPED", code
        bindings = []
        if task.state == "RUNNING":
            host_port = self.host_port_for(task.image)
            bindings = [
                {"bindIP": "127.0.0.1", "containerPort": p, "hostPort": host_port or p, "protocol": "tcp"}
                for p in task.ports
            ]
        return LaunchStatus(task.state, task.exit_code, task.reason, bindings, task.health)

    def stop(self, handle: str) -> None:
        """Mark the task stopped (exit code 143 if it was running, like SIGTERM)."""
        task = self.tasks[handle]
        if task.state != "STOPPED":
            task.state, task.exit_code = "STOPPED", 143
        task.stopped = True
        self.stopped.append(handle)

    def exit(self, task_id: str, exit_code: int = 1, reason: str | None = None) -> None:
        """Make a running task's essential container exit (for tests)."""
        task = self.tasks[task_id]
        task.state, task.exit_code, task.reason = "STOPPED", exit_code, reason

    def set_health(self, task_id: str, health: str) -> None:
        """Change a task's health (for tests)."""
        self.tasks[task_id].health = health


# --------------------------------------------------------------------------------------- real containers


@dataclass
class DockerHandle:
    """The containers of one task; `final` is set once they stopped and were removed."""

    task_id: str
    container_ids: list[str] = field(default_factory=list)
    essential_ids: list[str] = field(default_factory=list)
    has_health_check: bool = False
    final: LaunchStatus | None = None
    stopping: bool = False


class DockerLauncher:
    """Runs each task's containers with the Docker SDK, ports published on 127.0.0.1.

    Like awsvpc, all containers of a task share one network namespace (the first container's), so they
    reach each other on localhost and the first container publishes every port mapping. Images named by an
    ECR URI are pulled from `registry` (the local registry standing in for ECR's data plane). A container
    without a task-definition healthCheck runs with Docker's HEALTHCHECK disabled, as ECS ignores it.
    """

    def __init__(
        self,
        client: Any = None,
        registry: str | None = "127.0.0.1:5055",
        stop_timeout: int = 2,
        extra_labels: dict[str, str] | None = None,
        log_sink: Any = "moto",
    ) -> None:
        self._client = client
        self.registry = registry
        self.stop_timeout = stop_timeout
        self.extra_labels = extra_labels or {}
        # Plays the awslogs driver: each container's output goes to CloudWatch Logs under the task definition's
        # group and `prefix/container/task-id` stream. "moto": the in-process moto backend (the sandbox daemon's,
        # or a test's mock_aws); None: no shipping; or any object with ensure_stream() and put().
        self.log_shipper: LogShipper | None = (
            None if log_sink is None else LogShipper(MotoLogsSink() if log_sink == "moto" else log_sink)
        )
        self._lock = threading.Lock()
        self._stopper = ThreadPoolExecutor(max_workers=4, thread_name_prefix="snail-sandbox-stop")

    @property
    def client(self) -> Any:
        """The Docker client, created on first use (the docker SDK is imported lazily)."""
        if self._client is None:
            import docker

            self._client = docker.from_env()
        return self._client

    def resolve_image(self, image: str) -> str:
        """The reference Docker should run: ECR URIs are rewritten to the local registry."""
        if self.registry and ECR_HOST.match(image):
            return ECR_HOST.sub(f"{self.registry}/", image)
        return image

    def _ensure_image(self, image: str) -> str | None:
        """Make `image` present locally; return a CannotPullContainerError reason when it cannot be."""
        import docker.errors

        try:
            self.client.images.get(image)
            return None
        except docker.errors.ImageNotFound:
            pass
        except docker.errors.APIError as exc:
            return f"CannotPullContainerError: {exc.explanation or exc}"
        try:
            repo, tag = _split_ref(image)
            self.client.images.pull(repo, tag=tag)
            return None
        except docker.errors.APIError as exc:
            detail = exc.explanation or str(exc)
            return (
                "CannotPullContainerError: pull image manifest has been retried 1 time(s): "
                f"failed to resolve ref {image}: {detail}"
            )

    def start(self, task_id: str, container_defs: list[dict[str, Any]], task_def: dict[str, Any]) -> DockerHandle:
        """Pull if needed and start the task's containers; failures come back through `status`."""
        import docker.errors

        handle = DockerHandle(task_id)
        ordered = sorted(container_defs, key=lambda c: not c.get("essential", True))
        all_ports = [p for c in ordered for p in c.get("portMappings", []) if p.get("containerPort")]
        family = task_def.get("family", "")
        first_id: str | None = None
        for index, cdef in enumerate(ordered):
            image = self.resolve_image(cdef.get("image", ""))
            reason = self._ensure_image(image)
            if reason:
                self._cleanup(handle)
                handle.final = LaunchStatus("STOPPED", None, reason)
                log.info("sandbox_image_pull_failed", task=task_id, image=image, reason=reason)
                return handle
            kwargs: dict[str, Any] = {
                "image": image,
                "detach": True,
                "name": f"snail-{family}-{task_id[:12]}-{cdef.get('name', index)}"[:120],
                "environment": {e["name"]: e.get("value", "") for e in cdef.get("environment", [])},
                "labels": {
                    SANDBOX_LABEL: "1",
                    TASK_LABEL: task_id,
                    "snail-container": str(cdef.get("name", "")),
                    "snail-family": family,
                    **self.extra_labels,
                },
                "healthcheck": _docker_healthcheck(cdef.get("healthCheck")),
            }
            if cdef.get("command"):
                kwargs["command"] = cdef["command"]
            if cdef.get("entryPoint"):
                kwargs["entrypoint"] = cdef["entryPoint"]
            memory = cdef.get("memory") or (task_def.get("memory") if len(ordered) == 1 else None)
            if memory:
                kwargs["mem_limit"] = f"{int(memory)}m"
            if index == 0:
                kwargs["ports"] = {
                    f"{int(p['containerPort'])}/{p.get('protocol', 'tcp')}": ("127.0.0.1", None) for p in all_ports
                }
            else:
                kwargs["network_mode"] = f"container:{first_id}"
            try:
                container = self.client.containers.run(**kwargs)
            except docker.errors.APIError as exc:
                self._cleanup(handle)
                handle.final = LaunchStatus("STOPPED", None, f"CannotStartContainerError: {exc.explanation or exc}")
                log.info("sandbox_container_start_failed", task=task_id, image=image, error=str(exc))
                return handle
            if index == 0:
                first_id = container.id
            if self.log_shipper is not None:
                self.log_shipper.follow(self.client, container.id, task_id, cdef)
            handle.container_ids.append(container.id)
            if cdef.get("essential", True):
                handle.essential_ids.append(container.id)
            handle.has_health_check = handle.has_health_check or bool(cdef.get("healthCheck"))
        log.info("sandbox_containers_started", task=task_id, containers=[c[:12] for c in handle.container_ids])
        return handle

    def status(self, handle: DockerHandle) -> LaunchStatus:
        """Aggregate the essential containers: any exited -> STOPPED; all running -> RUNNING (+ health)."""
        import docker.errors

        if handle.final is not None:
            return handle.final
        bindings: list[dict[str, Any]] = []
        healths: list[str] = []
        for cid in handle.container_ids:
            try:
                attrs = self.client.api.inspect_container(cid)
            except docker.errors.NotFound:
                return LaunchStatus("STOPPED", None, "ResourceInitializationError: container removed")
            state = attrs.get("State", {})
            essential = cid in handle.essential_ids
            if state.get("Status") in ("exited", "dead") and essential:
                reason = "OutOfMemoryError: Container killed due to memory usage" if state.get("OOMKilled") else None
                return LaunchStatus("STOPPED", state.get("ExitCode"), reason, [], "UNKNOWN", self._tail(cid))
            if state.get("Status") in ("created", "restarting"):
                return LaunchStatus("PENDING")
            ports = (attrs.get("NetworkSettings") or {}).get("Ports") or {}
            for key, hosts in ports.items():
                port, _, proto = key.partition("/")
                for host in hosts or []:
                    bindings.append(
                        {
                            "bindIP": host.get("HostIp") or "127.0.0.1",
                            "containerPort": int(port),
                            "hostPort": int(host["HostPort"]),
                            "protocol": proto or "tcp",
                        }
                    )
            health = (state.get("Health") or {}).get("Status")
            if health:
                healths.append(health)
        overall = "UNKNOWN"
        if handle.has_health_check:
            if "unhealthy" in healths:
                overall = "UNHEALTHY"
            elif healths and all(h == "healthy" for h in healths):
                overall = "HEALTHY"
        return LaunchStatus("RUNNING", None, None, bindings, overall)

    def stop(self, handle: DockerHandle) -> None:
        """Stop (SIGTERM, then SIGKILL after stop_timeout) and remove the containers in the background."""
        with self._lock:
            if handle.stopping or (handle.final is not None and not handle.container_ids):
                return
            handle.stopping = True
        self._stopper.submit(self._stop_now, handle)

    def _stop_now(self, handle: DockerHandle) -> None:
        import docker.errors

        final = handle.final
        for cid in reversed(handle.container_ids):
            try:
                container = self.client.containers.get(cid)
                if container.status == "running":
                    container.stop(timeout=self.stop_timeout)
                container.reload()
                if final is None and cid in handle.essential_ids:
                    state = container.attrs.get("State", {})
                    final = LaunchStatus("STOPPED", state.get("ExitCode"), None, [], "UNKNOWN", self._tail(cid))
                container.remove(force=True)
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as exc:
                log.warning("sandbox_container_stop_failed", task=handle.task_id, container=cid[:12], error=str(exc))
        handle.container_ids = []
        handle.final = final or LaunchStatus("STOPPED", None, None)
        log.info("sandbox_containers_stopped", task=handle.task_id, exit_code=handle.final.exit_code)

    def _cleanup(self, handle: DockerHandle) -> None:
        for cid in handle.container_ids:
            try:
                self.client.containers.get(cid).remove(force=True)
            except Exception:  # noqa: BLE001 - best effort
                pass
        handle.container_ids = []

    def _tail(self, cid: str, lines: int = 20) -> str:
        try:
            return self.client.api.logs(cid, tail=lines).decode("utf-8", "replace")
        except Exception:  # noqa: BLE001 - logs are evidence, not essential
            return ""

    def close(self) -> None:
        """Wait for background stops to finish, then ship what is left of the containers' output."""
        self._stopper.shutdown(wait=True)
        if self.log_shipper is not None:
            self.log_shipper.close()


# ------------------------------------------------------------------------------------------- log shipping


class MotoLogsSink:
    """CloudWatch Logs in moto's in-process backend: what the sandbox daemon serves (and a test's mock_aws)."""

    def __init__(self, account_id: str = "123456789012", default_region: str = "us-east-1") -> None:
        self.account_id = account_id
        self.default_region = default_region

    def _backend(self, region: str | None) -> Any:
        from moto.logs.models import logs_backends

        return logs_backends[self.account_id][region or self.default_region]

    def ensure_stream(self, region: str | None, group: str, stream: str) -> None:
        """Create the group (as awslogs-create-group would) and the stream, if missing."""
        backend = self._backend(region)
        if group not in backend.groups:
            try:
                backend.create_log_group(group, {})
            except Exception:  # noqa: BLE001 - created meanwhile
                pass
        if stream not in backend.groups[group].streams:
            try:
                backend.create_log_stream(group, stream)
            except Exception:  # noqa: BLE001 - created meanwhile
                pass

    def put(self, region: str | None, group: str, stream: str, events: list[tuple[int, str]]) -> int:
        """Append (timestamp ms, message) events."""
        # CloudWatch wants a batch in time order; stdout and stderr lines can interleave slightly out of it
        ordered = sorted(events, key=lambda e: e[0])
        self._backend(region).put_log_events(group, stream, [{"timestamp": t, "message": m} for t, m in ordered])
        return len(events)


class LogShipper:
    """Follows containers' output (one thread each) and ships it every `interval` seconds, and at once when a
    container stops, so a diagnosis reading the logs right after a crash finds its last lines."""

    def __init__(self, sink: Any, interval: float = 0.5) -> None:
        self.sink = sink
        self.interval = interval
        self._pending: dict[tuple[str | None, str, str], list[tuple[int, str]]] = {}
        self._lock = threading.Lock()
        self._ship_lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._flusher = threading.Thread(target=self._flush_loop, name="snail-sandbox-logs", daemon=True)
        self._flusher.start()
        self.shipped = 0

    def follow(self, client: Any, container_id: str, task_id: str, cdef: dict[str, Any]) -> bool:
        """Start shipping one container's output if its definition uses awslogs with a stream prefix."""
        from ecsbox._util import awslogs_targets

        targets = awslogs_targets({"containerDefinitions": [cdef]})
        stream = targets[0].stream(task_id) if targets else None
        if not targets or stream is None:
            return False
        key = (targets[0].region, targets[0].group, stream)
        thread = threading.Thread(
            target=self._follow, args=(client, container_id, key), name=f"snail-logs-{task_id[:8]}", daemon=True
        )
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()
        return True

    def _follow(self, client: Any, container_id: str, key: tuple[str | None, str, str]) -> None:
        region, group, stream = key
        try:
            self.sink.ensure_stream(region, group, stream)
            buffer = b""
            for chunk in client.api.logs(container_id, stream=True, follow=True, timestamps=True):
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                self._add(key, lines)
            if buffer:
                self._add(key, [buffer])
        except Exception as exc:  # noqa: BLE001 - a container removed mid-read ends its log, nothing more
            log.debug("sandbox_log_follow_ended", container=container_id[:12], error=str(exc))
        self.flush(key)

    def _add(self, key: tuple[str | None, str, str], lines: list[bytes]) -> None:
        events = [_log_event(line) for line in lines]
        with self._lock:
            self._pending.setdefault(key, []).extend(events)

    def flush(self, only: tuple[str | None, str, str] | None = None) -> None:
        """Ship what is pending (of one stream, or of all)."""
        with self._ship_lock:
            with self._lock:
                keys = [only] if only is not None else list(self._pending)
                work = [(k, self._pending.pop(k)) for k in keys if self._pending.get(k)]
            for (region, group, stream), events in work:
                try:
                    self.shipped += self.sink.put(region, group, stream, events)
                except Exception as exc:  # noqa: BLE001 - logs are evidence, never a reason to stop the agent
                    log.warning("sandbox_log_ship_failed", group=group, stream=stream, error=str(exc))

    def _flush_loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()

    def close(self, timeout: float = 5.0) -> None:
        """Wait for the follow threads (their containers are gone by now) and ship the rest."""
        for thread in self._threads:
            thread.join(timeout=timeout)
        self._stop.set()
        self.flush()


def _log_event(line: bytes) -> tuple[int, str]:
    """Docker's `2026-11-29T07:08:49.123456789Z message` -> (ms since the epoch, message)."""
    from datetime import datetime

    text = line.decode("utf-8", "replace").rstrip("\r")
    stamp, _, message = text.partition(" ")
    try:
        ms = int(datetime.fromisoformat(stamp[:26].rstrip("Z") + "+00:00").timestamp() * 1000)
    except ValueError:
        import time

        ms, message = int(time.time() * 1000), text
    return ms, message


def remove_sandbox_containers(client: Any, sandbox_id: str | None = None) -> int:
    """Force-remove one sandbox's containers (every snail-sandbox one when `sandbox_id` is None); return how many
    there were. The one place that removes sandbox containers: `down`, the daemon's start and stop."""
    label = f"snail-sandbox-id={sandbox_id}" if sandbox_id else f"{SANDBOX_LABEL}=1"
    containers = client.containers.list(all=True, filters={"label": label})
    for container in containers:
        try:
            container.remove(force=True)
        except Exception as exc:  # noqa: BLE001 - report, keep going
            log.warning("sandbox_container_remove_failed", container=container.short_id, error=str(exc))
    return len(containers)


def _essential(container_defs: list[dict[str, Any]]) -> dict[str, Any]:
    return next((c for c in container_defs if c.get("essential", True)), container_defs[0] if container_defs else {})


def _split_ref(image: str) -> tuple[str, str | None]:
    """`repo[:tag]` or `repo@digest` -> (repo, tag-or-digest) for `images.pull`."""
    if "@" in image:
        repo, digest = image.split("@", 1)
        return repo, digest
    last = image.rsplit("/", 1)[-1]
    if ":" in last:
        repo, tag = image.rsplit(":", 1)
        return repo, tag
    return image, "latest"


def _docker_healthcheck(check: dict[str, Any] | None) -> dict[str, Any]:
    """ECS container healthCheck -> Docker's; none -> disabled (ECS ignores an image's HEALTHCHECK)."""
    if not check or not check.get("command"):
        return {"test": ["NONE"]}
    seconds = 1_000_000_000
    return {
        "test": list(check["command"]),
        "interval": int(check.get("interval", 30)) * seconds,
        "timeout": int(check.get("timeout", 5)) * seconds,
        "retries": int(check.get("retries", 3)),
        "start_period": int(check.get("startPeriod", 0)) * seconds,
    }
