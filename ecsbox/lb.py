"""The sandbox's Application Load Balancer data plane: real HTTP on 127.0.0.1, driven by moto's ELBv2 state.

Every HTTP listener of every load balancer in moto gets a server on 127.0.0.1 at the listener's port. A request
is matched against the listener's rules in priority order (path-pattern and host-header conditions, then the
default rule) and its action applies: `forward` to one target group or, with a ForwardConfig, to several by
weight (smooth weighted round robin, so a 90/10 split is exact, not a coin toss), or `fixed-response`. Within a
target group requests go round robin to the healthy targets (to all of them when none is healthy, as an ALB
fails open); a group without targets answers 503, a target that refuses 502, one that times out 504.

Targets are what ECS registered: a task's private IP and container port. The sandbox resolves them to the
task's published port on 127.0.0.1 (its networkBindings). Health checks are real HTTP requests made with the
target group's path, matcher, interval, timeout and thresholds; what they find is what DescribeTargetHealth
returns (`extension.TARGET_HEALTH`). Per target group and period the plane publishes the ALB metrics
RequestCount, HTTPCode_Target_2XX/4XX/5XX_Count and TargetResponseTime (namespace AWS/ApplicationELB,
dimensions TargetGroup + LoadBalancer), and per load balancer RequestCount and HTTPCode_ELB_5XX_Count, into
moto's CloudWatch (`lb_metrics.py`). It routes by a `Snapshot` of moto's state (`lb_view.py`).

Why asyncio and not HAProxy: see bench/lb/README.md (both measured on the same 2-core machine).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from http import HTTPStatus
from typing import Any

import structlog

from ecsbox import extension as ext
from ecsbox import traffic
from ecsbox.lb_metrics import NAMESPACE, Metrics, cloudwatch_publisher
from ecsbox.lb_view import (
    Listener,
    Rule,
    SmoothWeighted,
    Snapshot,
    Target,
    TargetGroup,
    lb_dimension,
    matcher_accepts,
    rule_matches,
    snapshot_from_moto,
    tg_dimension,
)

log = structlog.get_logger(__name__)

MAX_HEAD = 64 * 1024
UPSTREAM_TIMEOUT = 30.0
HOP_HEADERS = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade"}


# ------------------------------------------------------------------------------------------------ health


@dataclass
class TargetHealth:
    """What the health checks found for one target."""

    state: str = "initial"
    reason: str | None = "Elb.RegistrationInProgress"
    description: str | None = "Target registration is in progress"
    successes: int = 0
    failures: int = 0
    checked: bool = False


# ------------------------------------------------------------------------------------------------ the plane


class DataPlane:
    """Listeners on 127.0.0.1, routing, health checks and metrics for every load balancer moto knows."""

    def __init__(
        self,
        account_id: str = "123456789012",
        host: str = "127.0.0.1",
        refresh: float = 0.5,
        metrics_period: float = 60.0,
        publish: Callable[[list[dict[str, Any]]], None] | None = None,
        snapshot: Callable[[], Snapshot] | None = None,
        min_health_interval: float | None = None,
    ) -> None:
        self.account_id = account_id
        self.host = host
        self.refresh_every = refresh
        self.metrics_period = metrics_period
        self.publish = publish
        self._snapshot_source = snapshot or (lambda: snapshot_from_moto(account_id))
        self.min_health_interval = min_health_interval
        self.snapshot = Snapshot()
        self.metrics = Metrics()
        self.health: dict[tuple[str, str, int], TargetHealth] = {}
        self.bind_errors: dict[int, str] = {}
        self._servers: dict[int, asyncio.AbstractServer] = {}
        self._pickers: dict[str, SmoothWeighted] = {}
        self._picker_weights: dict[str, tuple[tuple[str, int], ...]] = {}
        self._rr: dict[str, int] = defaultdict(int)
        self._pool: dict[tuple[str, int], list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]] = defaultdict(list)
        self._checks: dict[tuple[str, str, int], asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()  # every task the plane started and has not seen end
        self._connections: set[asyncio.Task[Any]] = set()  # the client connections being served
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopping: asyncio.Event | None = None
        self._poked: asyncio.Event | None = None

    # ------------------------------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Run the plane in a daemon thread; install its health lookup for DescribeTargetHealth."""
        self._thread = threading.Thread(target=self._run, name="snail-sandbox-lb", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        ext.TARGET_HEALTH["lookup"] = self.lookup
        traffic.CHANGE_LISTENERS.append(self.poke)
        log.info("sandbox_lb_started", host=self.host)

    def stop(self) -> None:
        """Close every listener, end every task the plane started (health checks, connections), stop the thread."""
        if ext.TARGET_HEALTH["lookup"] == self.lookup:
            ext.TARGET_HEALTH["lookup"] = None
        if self.poke in traffic.CHANGE_LISTENERS:
            traffic.CHANGE_LISTENERS.remove(self.poke)
        if self._loop and self._stopping:
            self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread:
            self._thread.join(10)
        self.flush_metrics()
        log.info("sandbox_lb_stopped")

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._main())
        finally:
            try:
                loop.run_until_complete(self._end_all(asyncio.all_tasks(loop)))  # anything _main did not end
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                asyncio.set_event_loop(None)
                loop.close()

    def poke(self) -> None:
        """Refresh from moto now (thread-safe): the agent just shifted traffic or changed targets."""
        loop, poked = self._loop, self._poked
        if loop is not None and poked is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(poked.set)

    async def _main(self) -> None:
        self._stopping = asyncio.Event()
        self._poked = asyncio.Event()
        try:
            await self._refresh()
            self._ready.set()
            last_publish = time.monotonic()
            while not self._stopping.is_set():
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._poked.wait(), self.refresh_every)
                self._poked.clear()
                await self._refresh()
                if time.monotonic() - last_publish >= self.metrics_period:
                    last_publish = time.monotonic()
                    await asyncio.get_running_loop().run_in_executor(None, self.flush_metrics)
        finally:
            await self._shutdown()

    async def _shutdown(self) -> None:
        """Stop accepting, cancel and await every check and connection, close the servers and pooled upstreams."""
        servers = list(self._servers.values())
        self._servers.clear()
        for server in servers:
            server.close()
        await asyncio.sleep(0)  # a connection accepted just now starts its handler, so it ends like the others
        await self._end_all(self._tasks | self._connections | set(self._checks.values()))
        self._checks.clear()
        for server in servers:
            await server.wait_closed()
        writers = [writer for conns in self._pool.values() for _, writer in conns]
        self._pool.clear()
        for writer in writers:
            writer.close()
        for writer in writers:
            with contextlib.suppress(Exception):  # the target may have reset it already
                await writer.wait_closed()

    @staticmethod
    async def _end_all(tasks: set[asyncio.Task[Any]]) -> None:
        """Cancel `tasks` (but the running one) and wait until each has really ended."""
        tasks = {t for t in tasks if t is not asyncio.current_task() and not t.done()}
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        """Start a task the plane keeps until it ends (so stop() can cancel and await it)."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def flush_metrics(self) -> int:
        """Publish the current period's metrics now; return how many data points."""
        data = self.metrics.drain(datetime.now(timezone.utc))
        if data and self.publish is not None:
            try:
                self.publish(data)
            except Exception as exc:  # noqa: BLE001 - metrics are best effort, like CloudWatch delivery
                log.warning("sandbox_lb_metrics_not_published", error=str(exc))
        return len(data)

    async def _refresh(self) -> None:
        """Rebuild the snapshot; open servers for new listeners, close removed ones; (re)start health checks."""
        try:
            snap = self._snapshot_source()
        except Exception as exc:  # noqa: BLE001 - moto mid-change: keep the previous snapshot this time
            log.debug("sandbox_lb_refresh_failed", error=str(exc))
            return
        self.snapshot = snap
        for port in list(self._servers):
            if port not in snap.listeners:
                self._servers.pop(port).close()
                log.info("sandbox_lb_listener_closed", port=port)
        for port in snap.listeners:
            if port in self._servers or port in self.bind_errors:
                continue
            try:
                self._servers[port] = await asyncio.start_server(
                    functools.partial(self._serve, port=port), self.host, port, reuse_address=True
                )
                log.info("sandbox_lb_listener_open", url=f"http://{self.host}:{port}")
            except OSError as exc:
                self.bind_errors[port] = str(exc)
                log.warning("sandbox_lb_listener_bind_failed", port=port, error=str(exc))
        wanted = set()
        for group in snap.groups.values():
            for target in group.targets:
                key = (group.arn, target.id, target.port)
                wanted.add(key)
                if key not in self._checks:
                    self.health.setdefault(key, TargetHealth())
                    self._checks[key] = self._spawn(self._check_loop(group.arn, target.id, target.port))
        for key in list(self._checks):
            if key not in wanted:
                self._checks.pop(key).cancel()
                self.health.pop(key, None)

    def lookup(self, group_arn: str, target_id: str, port: int) -> tuple[str, str | None, str | None]:
        """(State, Reason, Description) for DescribeTargetHealth, as this plane measured it."""
        group = self.snapshot.groups.get(group_arn)
        if group is not None and not group.in_use:
            return (
                "unused",
                "Target.NotInUse",
                "Target group is not configured to receive traffic from the load balancer",
            )
        if group is not None and not group.health_enabled:
            return "unavailable", "Target.HealthCheckDisabled", "Health checks are disabled"
        found = self.health.get((group_arn, target_id, port))
        if found is None:
            return "initial", "Elb.RegistrationInProgress", "Target registration is in progress"
        return found.state, found.reason, found.description

    # ------------------------------------------------------------------------------------------ health

    async def _check_loop(self, group_arn: str, target_id: str, port: int) -> None:
        key = (group_arn, target_id, port)
        while True:
            group = self.snapshot.groups.get(group_arn)
            target = next((t for t in group.targets if (t.id, t.port) == (target_id, port)), None) if group else None
            if group is None or target is None:
                return
            interval = group.interval
            if self.min_health_interval is not None:
                interval = min(interval, self.min_health_interval)
            if group.health_enabled:
                await self._check_once(group, target, self.health.setdefault(key, TargetHealth()))
            await asyncio.sleep(interval)

    async def _check_once(self, group: TargetGroup, target: Target, health: TargetHealth) -> None:
        ok, reason, description = False, "Target.FailedHealthChecks", "Health checks failed"
        if target.address is None:
            description = "Health checks failed: the target does not answer (no running task has this address)"
        else:
            host, real_port = target.address
            if group.health_port not in ("traffic-port", str(target.port)):
                real_port = int(group.health_port)  # a separate health port is taken literally
            try:
                status = await asyncio.wait_for(self._probe(host, real_port, group.health_path), group.timeout)
                if matcher_accepts(group.matcher, status):
                    ok = True
                else:
                    reason = "Target.ResponseCodeMismatch"
                    description = f"Health checks failed with these codes: [{status}]"
            except asyncio.TimeoutError:
                reason, description = "Target.Timeout", "Request timed out"
            except (OSError, ValueError, asyncio.IncompleteReadError):
                pass
        health.checked = True
        if ok:
            health.successes, health.failures = health.successes + 1, 0
            if health.state != "healthy" and health.successes >= group.healthy_threshold:
                health.state, health.reason, health.description = "healthy", None, None
        else:
            health.failures, health.successes = health.failures + 1, 0
            if health.failures >= group.unhealthy_threshold:
                health.state, health.reason, health.description = "unhealthy", reason, description
        if health.state == "initial":
            health.reason, health.description = "Elb.InitialHealthChecking", "Initial health checks in progress"

    async def _probe(self, host: str, port: int, path: str) -> int:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(
                f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: ELB-HealthChecker/2.0\r\n"
                "Connection: close\r\n\r\n".encode()
            )
            await writer.drain()
            line = await reader.readline()
            return int(line.split()[1])
        finally:
            writer.close()

    # ------------------------------------------------------------------------------------------ proxy

    def _route(self, listener: Listener, path: str, host: str) -> Rule | None:
        for rule in listener.rules:
            if rule_matches(rule, path, host):
                return rule
        return None

    def _pick_group(self, rule: Rule) -> str | None:
        action = rule.action
        config = action.get("ForwardConfig") or {}
        groups = config.get("TargetGroups") or []
        if not groups:
            return action.get("TargetGroupArn")
        weights = tuple((g["TargetGroupArn"], int(g.get("Weight", 1))) for g in groups)
        if self._picker_weights.get(rule.arn) != weights:
            self._pickers[rule.arn] = SmoothWeighted(list(weights))
            self._picker_weights[rule.arn] = weights
        return self._pickers[rule.arn].pick()

    def _pick_target(self, group: TargetGroup) -> Target | None:
        reachable = [t for t in group.targets if t.address is not None]
        healthy = [
            t for t in reachable if self.health.get((group.arn, t.id, t.port), TargetHealth()).state == "healthy"
        ]
        pool = healthy or reachable  # all unhealthy: an ALB fails open
        if not pool:
            return None
        self._rr[group.arn] += 1
        return pool[self._rr[group.arn] % len(pool)]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: int) -> None:
        peer = writer.get_extra_info("peername") or ("127.0.0.1", 0)
        me = asyncio.current_task()
        if me is not None:
            self._connections.add(me)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return
                keep = await self._one_request(head, reader, writer, port, peer[0])
                if not keep:
                    return
        except asyncio.CancelledError:
            # stop(): the connection ends here. Ending the task normally matters on Python 3.11, whose
            # start_server callback asks a cancelled handler task for its exception and logs the error.
            return
        finally:
            if me is not None:
                self._connections.discard(me)
            with contextlib.suppress(Exception):
                writer.close()

    async def _one_request(
        self, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: int, client_ip: str
    ) -> bool:
        lines = head[:-4].split(b"\r\n")
        try:
            method, target, version = lines[0].decode("latin-1").split(" ", 2)
        except ValueError:
            await _reply(writer, 400, "Bad Request", keep=False)
            return False
        headers: list[tuple[str, str]] = []
        length = 0
        host = ""
        client_close = version == "HTTP/1.0"
        for raw in lines[1:]:
            name, _, value = raw.decode("latin-1").partition(":")
            value = value.strip()
            lname = name.strip().lower()
            if lname == "content-length":
                length = int(value or 0)
            elif lname == "transfer-encoding":
                await _reply(writer, 501, "Not Implemented", keep=False)
                return False
            elif lname == "host":
                host = value
            elif lname == "connection":
                client_close = value.lower() == "close" or (version == "HTTP/1.0" and value.lower() != "keep-alive")
            if lname not in HOP_HEADERS:
                headers.append((name.strip(), value))
        body = await reader.readexactly(length) if length else b""
        listener = self.snapshot.listeners.get(port)
        keep = not client_close
        if listener is None:
            await _reply(writer, 503, "Service Unavailable", keep=False)
            return False
        rule = self._route(listener, target.split("?", 1)[0], host.split(":", 1)[0])
        if rule is None:
            await _reply(writer, 404, "Not Found", keep=keep)
            self.metrics.record(listener.load_balancer, None, 404, None, False)
            return keep
        if rule.action.get("Type") == "fixed-response":
            fixed = rule.action.get("FixedResponseConfig") or {}
            status = int(fixed.get("StatusCode", 200))
            await _reply(writer, status, fixed.get("MessageBody", ""), keep=keep, content_type=fixed.get("ContentType"))
            self.metrics.record(listener.load_balancer, None, status, None, False)
            return keep
        group_arn = self._pick_group(rule) if rule.action.get("Type") == "forward" else None
        group = self.snapshot.groups.get(group_arn or "")
        if group is None:
            await _reply(writer, 503, "Service Unavailable", keep=keep)
            self.metrics.record(listener.load_balancer, None, 503, None, False)
            return keep
        chosen = self._pick_target(group)
        if chosen is None or chosen.address is None:
            await _reply(writer, 503, "Service Unavailable", keep=keep)
            self.metrics.record(listener.load_balancer, group.dimension, 503, None, False)
            return keep
        headers += [
            ("X-Forwarded-For", client_ip),
            ("X-Forwarded-Proto", "http"),
            ("X-Forwarded-Port", str(port)),
        ]
        request = (
            f"{method} {target} HTTP/1.1\r\n".encode("latin-1")
            + "".join(f"{k}: {v}\r\n" for k, v in headers).encode("latin-1")
            + b"Connection: keep-alive\r\n\r\n"
            + body
        )
        try:
            status, elapsed, upstream_keep = await asyncio.wait_for(
                self._forward(chosen.address, request, method, writer, keep), UPSTREAM_TIMEOUT
            )
        except asyncio.TimeoutError:
            await _reply(writer, 504, "Gateway Timeout", keep=False)
            self.metrics.record(listener.load_balancer, group.dimension, 504, None, False)
            return False
        except _UpstreamFailed:
            await _reply(writer, 502, "Bad Gateway", keep=keep)
            self.metrics.record(listener.load_balancer, group.dimension, 502, None, False)
            return keep
        self.metrics.record(listener.load_balancer, group.dimension, status, elapsed, True)
        return keep and upstream_keep

    async def _forward(
        self, address: tuple[str, int], request: bytes, method: str, client: asyncio.StreamWriter, keep: bool
    ) -> tuple[int, float, bool]:
        """Send the request to the target (a pooled connection if one is idle); relay the response."""
        for attempt in range(2):
            pooled = self._pool[address]
            fresh = not pooled
            try:
                if pooled:
                    up_reader, up_writer = pooled.pop()
                else:
                    up_reader, up_writer = await asyncio.open_connection(*address)
            except OSError as exc:
                raise _UpstreamFailed(str(exc)) from exc
            started = time.perf_counter()
            try:
                up_writer.write(request)
                head = await up_reader.readuntil(b"\r\n\r\n")
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
                up_writer.close()
                if fresh or attempt:
                    raise _UpstreamFailed(str(exc)) from exc
                continue  # an idle pooled connection the target had closed: once more on a new one
            except BaseException:
                up_writer.close()  # cancelled (stop(), the upstream timeout): not left open, never pooled
                raise
            elapsed = time.perf_counter() - started
            try:
                return await self._relay(address, head, up_reader, up_writer, method, client, keep, elapsed)
            except BaseException:
                up_writer.close()  # cut mid-response or cancelled: _relay pools a connection only on success
                raise
        raise _UpstreamFailed("no connection")

    async def _relay(
        self,
        address: tuple[str, int],
        head: bytes,
        up_reader: asyncio.StreamReader,
        up_writer: asyncio.StreamWriter,
        method: str,
        client: asyncio.StreamWriter,
        keep: bool,
        elapsed: float,
    ) -> tuple[int, float, bool]:
        lines = head[:-4].split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        version, status = parts[0], int(parts[1])
        length: int | None = None
        chunked = False
        upstream_keep = version == b"HTTP/1.1"
        out = [b"HTTP/1.1 " + b" ".join(parts[1:])]
        for raw in lines[1:]:
            name, _, value = raw.partition(b":")
            lname = name.strip().lower()
            v = value.strip().lower()
            if lname == b"content-length":
                length = int(v)
            elif lname == b"transfer-encoding" and b"chunked" in v:
                chunked = True
            elif lname == b"connection":
                upstream_keep = v == b"keep-alive" or (v != b"close" and version == b"HTTP/1.1")
                continue
            elif lname == b"keep-alive":
                continue
            out.append(raw)
        no_body = method == "HEAD" or status in (204, 304) or 100 <= status < 200
        close_delimited = not no_body and not chunked and length is None
        out.append(b"Connection: keep-alive" if keep and not close_delimited else b"Connection: close")
        client.write(b"\r\n".join(out) + b"\r\n\r\n")
        if no_body:
            pass
        elif chunked:
            while True:
                size_line = await up_reader.readuntil(b"\r\n")
                client.write(size_line)
                size = int(size_line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    while True:  # trailers, then the empty line
                        trailer = await up_reader.readuntil(b"\r\n")
                        client.write(trailer)
                        if trailer == b"\r\n":
                            break
                    break
                client.write(await up_reader.readexactly(size + 2))
        elif length is not None:
            remaining = length
            while remaining:
                chunk = await up_reader.read(min(remaining, 65536))
                if not chunk:
                    raise _UpstreamFailed("short body")
                client.write(chunk)
                remaining -= len(chunk)
        else:
            while chunk := await up_reader.read(65536):
                client.write(chunk)
            upstream_keep = False
        await client.drain()
        if upstream_keep and not close_delimited:
            self._pool[address].append((up_reader, up_writer))
        else:
            up_writer.close()
        return status, elapsed, not close_delimited


class _UpstreamFailed(Exception):
    """The target refused, reset or cut the connection (the load balancer answers 502)."""


async def _reply(
    writer: asyncio.StreamWriter, status: int, message: str, keep: bool, content_type: str | None = None
) -> None:
    """A response made by the load balancer itself (ALB's own 404/502/503/504 pages, fixed responses)."""
    body = message.encode()
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Status"
    writer.write(
        f"HTTP/1.1 {status} {reason}\r\nServer: awselb/2.0\r\nContent-Type: {content_type or 'text/plain'}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: {'keep-alive' if keep else 'close'}\r\n\r\n".encode()
        + body
    )
    with contextlib.suppress(ConnectionError):
        await writer.drain()


__all__ = [
    "NAMESPACE",
    "DataPlane",
    "Listener",
    "Metrics",
    "Rule",
    "SmoothWeighted",
    "Snapshot",
    "Target",
    "TargetGroup",
    "cloudwatch_publisher",
    "lb_dimension",
    "matcher_accepts",
    "rule_matches",
    "snapshot_from_moto",
    "tg_dimension",
]
