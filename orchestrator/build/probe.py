"""The local port probe: start the image, publish its port on 127.0.0.1, and expect the health path to answer.

The field log's container listened on 8080 while the service expected 5000; this catches that before ECS
does, and says which port the process does listen on (read from /proc/net/tcp*: base images have no ss).

It fails fast: as soon as the container exits, answers with a failing status (three times in a row, so one
blip while starting is forgiven), or is seen listening only on other ports (twice, a second apart), it stops
waiting and says so; only an app that stays silent waits for the timeout. It reports progress
every second so a display never goes quiet.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

import structlog

from orchestrator.build.image import ProbeResult
from orchestrator.clock import Clock
from orchestrator.errors import PortProbeFailed

log = structlog.get_logger()

TCP_LISTEN = "0A"
POLL_INTERVAL = 0.25
FAILING_ANSWERS = 3  # consecutive non-2xx answers that fail the probe at once
PORT_LOOK_EVERY = 1.0  # seconds between looks at the container's listening ports while nothing answers
WRONG_PORT_LOOKS = 2  # consecutive looks that saw only other ports
REPORT_EVERY = 1.0  # seconds between progress reports while waiting


def listening_ports(proc_net_tcp: str) -> tuple[int, ...]:
    """Local ports in LISTEN state from the text of /proc/net/tcp and/or /proc/net/tcp6, sorted."""
    ports = set()
    for line in proc_net_tcp.splitlines():
        fields = line.split()
        # sl local_address rem_address st ...; local_address is HEXIP:HEXPORT
        if len(fields) > 3 and ":" in fields[1] and fields[3] == TCP_LISTEN:
            try:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
            except ValueError:
                continue
    return tuple(sorted(ports))


def run_probe(
    client: Any,
    image_ref: str,
    port: int,
    path: str = "/health",
    timeout: float = 30.0,
    env: Mapping[str, str] | None = None,
    clock: Clock | None = None,
    progress: Callable[[dict], None] | None = None,
    *,
    command: Sequence[str] | None = None,
    entrypoint: Sequence[str] | None = None,
    phase: str | None = None,
) -> ProbeResult:
    """Run image_ref, poll http://127.0.0.1:<host port><path> until 2xx; PortProbeFailed with the reason otherwise.

    `command`/`entrypoint`: what the task definition runs instead of the image's CMD/ENTRYPOINT (ECS passes them to
    the container the same way): a phase whose command exits fails here, not in ECS."""
    from docker.errors import APIError, ImageNotFound

    from orchestrator.clock import SystemClock

    clock = clock or SystemClock()
    path = path if path.startswith("/") else f"/{path}"
    log.info("port_probe_started", image=image_ref, port=port, path=path, timeout=timeout, command=list(command or []))
    if progress is not None and phase:
        report = progress

        def progress(event: dict) -> None:
            report({"phase": phase, **event})

    try:
        container = client.containers.run(
            image_ref,
            command=list(command) if command else None,
            entrypoint=list(entrypoint) if entrypoint else None,
            detach=True,
            environment=dict(env or {}),
            ports={f"{port}/tcp": ("127.0.0.1", None)},
            labels={"snail-trail.role": "port-probe"},
        )
    except (ImageNotFound, APIError) as e:
        raise PortProbeFailed(
            f"cannot start {image_ref} for the port probe: {_api_message(e)}", image=image_ref
        ) from None
    try:
        return _watch(container, image_ref, port, path, timeout, clock, progress)
    finally:
        try:
            container.remove(force=True)
        except Exception as e:  # noqa: BLE001 - a probe must never leave a container behind silently
            log.warning("port_probe_cleanup_failed", container=container.id[:12], error=str(e))


def _watch(
    container: Any,
    image_ref: str,
    port: int,
    path: str,
    timeout: float,
    clock: Clock,
    progress: Callable[[dict], None] | None,
) -> ProbeResult:
    import requests

    start = clock.monotonic()
    last_status: int | None = None
    last_body, host_port = "", None
    failing = 0  # consecutive non-2xx answers
    wrong_port = 0  # consecutive looks that saw the app listening only elsewhere
    seen_ports: tuple[int, ...] | None = None
    next_look = start + PORT_LOOK_EVERY
    next_report = start
    polls = 0
    while True:
        polls += 1
        container.reload()
        host_port = host_port or _host_port(container.attrs, port)
        if container.status in ("exited", "dead"):
            _fail(container, image_ref, port, path, timeout, last_status, last_body, host_port, clock, start, progress)
        answered = False
        if host_port:
            try:
                resp = requests.get(f"http://127.0.0.1:{host_port}{path}", timeout=2)
                answered = True
                last_status, last_body = resp.status_code, resp.text[:500]
                if 200 <= resp.status_code < 300:
                    result = ProbeResult(
                        image_ref, port, path, True, resp.status_code, last_body, clock.monotonic() - start, host_port
                    )
                    log.info(
                        "port_probe_passed",
                        image=image_ref,
                        port=port,
                        path=path,
                        status=resp.status_code,
                        elapsed=round(result.elapsed, 2),
                    )
                    if progress:
                        progress(
                            {
                                "event": "probe_passed",
                                "image": image_ref,
                                "port": port,
                                "path": path,
                                "status": resp.status_code,
                                "elapsed": round(result.elapsed, 2),
                            }
                        )
                    return result
                failing += 1
                if failing >= FAILING_ANSWERS:
                    _fail(
                        container,
                        image_ref,
                        port,
                        path,
                        timeout,
                        last_status,
                        last_body,
                        host_port,
                        clock,
                        start,
                        progress,
                    )
            except requests.RequestException:
                failing = 0  # not listening yet, or on another port: the look below tells
        now = clock.monotonic()
        if not answered and now >= next_look:
            next_look = now + PORT_LOOK_EVERY
            seen_ports = container_listening_ports(container)
            if seen_ports and port not in seen_ports:
                wrong_port += 1
                if wrong_port >= WRONG_PORT_LOOKS:
                    _fail(
                        container,
                        image_ref,
                        port,
                        path,
                        timeout,
                        None,
                        "",
                        host_port,
                        clock,
                        start,
                        progress,
                        ports=seen_ports,
                    )
            else:
                wrong_port = 0
        elapsed = now - start
        if progress and now >= next_report:  # once a second: a live display moves, a JSON log is not flooded
            next_report = now + REPORT_EVERY
            progress(
                {
                    "event": "probe_waiting",
                    "image": image_ref,
                    "port": port,
                    "path": path,
                    "elapsed": round(elapsed, 1),
                    "timeout": timeout,
                    "status": last_status,
                    "listening": list(seen_ports) if seen_ports is not None else None,
                }
            )
        if elapsed >= timeout:
            _fail(container, image_ref, port, path, timeout, last_status, last_body, host_port, clock, start, progress)
        clock.sleep(POLL_INTERVAL)


def _fail(
    container: Any,
    image_ref: str,
    port: int,
    path: str,
    timeout: float,
    status: int | None,
    body: str,
    host_port: int | None,
    clock: Clock,
    start: float,
    progress: Callable[[dict], None] | None,
    ports: tuple[int, ...] | None = None,
) -> NoReturn:
    elapsed = clock.monotonic() - start
    container.reload()
    exited = container.status in ("exited", "dead")
    exit_code = container.attrs.get("State", {}).get("ExitCode") if exited else None
    logs = container.logs(tail=20).decode(errors="replace")
    if ports is None and not exited:
        ports = container_listening_ports(container)
    result = ProbeResult(image_ref, port, path, False, status, body, elapsed, host_port, ports, exit_code, logs)
    if exit_code is not None:
        why = f"the container exited with code {exit_code} before answering; last log lines:\n{logs.strip()}"
    elif status is not None:
        why = f"it answers on port {port} but with HTTP {status}: {body[:200]}"
    elif ports is None:
        why = "nothing answered, and the ports it listens on could not be read"
    elif not ports:
        why = f"it listens on no TCP port at all after {elapsed:.0f}s"
    elif port in ports:
        why = f"it listens on {port} but did not answer within {timeout:g}s"
    else:
        listed = ", ".join(str(p) for p in ports)
        why = (
            f"it listens on {listed} — the app's port differs from service.port ({port}): make the app listen "
            f"on {port} (e.g. honour the PORT environment variable) or change service.port"
        )
    message = f"image {image_ref} does not answer {path} on port {port}; {why}"
    # info, not warning: the failure is the command's result (PortProbeFailed), shown once by the CLI
    log.info(
        "port_probe_failed",
        image=image_ref,
        port=port,
        path=path,
        listening_ports=ports,
        status=status,
        exit_code=exit_code,
        elapsed=round(elapsed, 2),
    )
    if progress:
        progress({"event": "probe_failed", "image": image_ref, "port": port, "path": path, "message": message})
    raise PortProbeFailed(message, result=result)


def _host_port(attrs: dict, port: int) -> int | None:
    bindings = (attrs.get("NetworkSettings", {}).get("Ports") or {}).get(f"{port}/tcp") or []
    for b in bindings:
        if b.get("HostIp") in ("127.0.0.1", "") and b.get("HostPort"):
            return int(b["HostPort"])
    return None


def container_listening_ports(container: Any) -> tuple[int, ...] | None:
    """TCP ports a running container listens on, seen from inside it (exec cat /proc/net/tcp*), else through the
    host's /proc/<pid>/net (the engine is local); None when neither can be read."""
    try:
        code, out = container.exec_run(["cat", "/proc/net/tcp", "/proc/net/tcp6"], demux=False)
        if code == 0 and out:
            return listening_ports(out.decode(errors="replace"))
    except Exception as e:  # noqa: BLE001 - images without `cat` (distroless): try the host's view
        log.debug("port_probe_exec_failed", error=str(e))
    pid = (container.attrs.get("State") or {}).get("Pid")
    if pid:
        text = ""
        for name in ("tcp", "tcp6"):
            try:
                text += Path(f"/proc/{pid}/net/{name}").read_text()
            except OSError:
                pass
        if text:
            return listening_ports(text)
    return None


def _api_message(e: Exception) -> str:
    return getattr(e, "explanation", None) or str(e)
