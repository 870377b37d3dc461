"""The local port probe: start the image, publish its port on 127.0.0.1, and expect the health path to answer.

The field log's container listened on 8080 while the service expected 5000; this catches that before ECS
does, and says which port the process does listen on (read from /proc/net/tcp*: base images have no ss).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping, NoReturn

import structlog

from orchestrator.build.image import ProbeResult
from orchestrator.clock import Clock
from orchestrator.errors import PortProbeFailed

log = structlog.get_logger()

TCP_LISTEN = "0A"
POLL_INTERVAL = 0.25


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
) -> ProbeResult:
    """Run image_ref, poll http://127.0.0.1:<host port><path> until 2xx; PortProbeFailed with the reason otherwise."""
    import requests
    from docker.errors import APIError, ImageNotFound

    from orchestrator.clock import SystemClock

    clock = clock or SystemClock()
    path = path if path.startswith("/") else f"/{path}"
    log.info("port_probe_started", image=image_ref, port=port, path=path, timeout=timeout)
    try:
        container = client.containers.run(
            image_ref,
            detach=True,
            environment=dict(env or {}),
            ports={f"{port}/tcp": ("127.0.0.1", None)},
            labels={"snail-trail.role": "port-probe"},
        )
    except (ImageNotFound, APIError) as e:
        raise PortProbeFailed(f"cannot start {image_ref} for the port probe: {_api_message(e)}", image=image_ref) from None
    start = clock.monotonic()
    last_status, last_body, host_port = None, "", None
    try:
        while True:
            container.reload()
            host_port = host_port or _host_port(container.attrs, port)
            if container.status in ("exited", "dead"):
                break
            if host_port:
                try:
                    resp = requests.get(f"http://127.0.0.1:{host_port}{path}", timeout=2)
                    last_status, last_body = resp.status_code, resp.text[:500]
                    if 200 <= resp.status_code < 300:
                        result = ProbeResult(image_ref, port, path, True, resp.status_code, last_body,
                                             clock.monotonic() - start, host_port)
                        log.info("port_probe_passed", image=image_ref, port=port, path=path,
                                 status=resp.status_code, elapsed=round(result.elapsed, 2))
                        if progress:
                            progress({"event": "probe_passed", "image": image_ref, "port": port, "path": path,
                                      "status": resp.status_code})
                        return result
                except requests.RequestException:
                    pass  # not listening yet (or never: decided at the deadline)
            if clock.monotonic() - start >= timeout:
                break
            clock.sleep(POLL_INTERVAL)
        _fail(container, image_ref, port, path, timeout, last_status, last_body, host_port,
                     clock.monotonic() - start, progress)
    finally:
        try:
            container.remove(force=True)
        except Exception as e:  # a probe must never leave a container behind silently
            log.warning("port_probe_cleanup_failed", container=container.id[:12], error=str(e))


def _fail(container, image_ref, port, path, timeout, status, body, host_port, elapsed, progress) -> NoReturn:
    container.reload()
    exit_code = container.attrs.get("State", {}).get("ExitCode") if container.status in ("exited", "dead") else None
    logs = container.logs(tail=20).decode(errors="replace") if exit_code is not None else ""
    ports = None if exit_code is not None else _ports_in_container(container)
    result = ProbeResult(image_ref, port, path, False, status, body, elapsed, host_port, ports, exit_code, logs)
    if exit_code is not None:
        why = f"the container exited with code {exit_code} before answering; last log lines:\n{logs.strip()}"
    elif status is not None:
        why = f"it answers on port {port} but with HTTP {status}: {body[:200]}"
    elif ports is None:
        why = "nothing answered, and the ports it listens on could not be read"
    elif not ports:
        why = "it listens on no TCP port at all"
    elif port in ports:
        why = f"it listens on {port} but did not answer within {timeout:g}s"
    else:
        listed = ", ".join(str(p) for p in ports)
        why = (f"it listens on {listed} — the app's port differs from service.port ({port}): make the app listen "
               f"on {port} (e.g. honour the PORT environment variable) or change service.port")
    message = f"image {image_ref} does not answer {path} on port {port}; {why}"
    log.warning("port_probe_failed", image=image_ref, port=port, path=path, listening_ports=ports,
                status=status, exit_code=exit_code)
    if progress:
        progress({"event": "probe_failed", "image": image_ref, "port": port, "path": path, "message": message})
    raise PortProbeFailed(message, result=result)


def _host_port(attrs: dict, port: int) -> int | None:
    bindings = (attrs.get("NetworkSettings", {}).get("Ports") or {}).get(f"{port}/tcp") or []
    for b in bindings:
        if b.get("HostIp") in ("127.0.0.1", "") and b.get("HostPort"):
            return int(b["HostPort"])
    return None


def _ports_in_container(container) -> tuple[int, ...] | None:
    """Listening ports seen from inside the container (exec cat), else through the host's /proc/<pid>/net."""
    try:
        code, out = container.exec_run(["cat", "/proc/net/tcp", "/proc/net/tcp6"], demux=False)
        if code == 0 and out:
            return listening_ports(out.decode(errors="replace"))
    except Exception as e:
        log.debug("port_probe_exec_failed", error=str(e))
    # Images without `cat` (distroless): the engine is local, read the process's network namespace directly.
    pid = container.attrs.get("State", {}).get("Pid")
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
