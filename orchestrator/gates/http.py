"""The http gate: status, JSON fields, body text and latency, N consecutive successes on every endpoint.

Retried (the answer can change by waiting): no endpoint yet; a refused, reset or timed-out connection; any 5xx
or wrong answer that does not say the task failed (a proxy's 502, a task still loading). Not retried past the
gate's `consecutive` threshold (a verdict): a task that is up and says it failed, i.e. a well-formed JSON body
whose checked field (`expect.json`'s, else `status`) is failed/failure/error/unhealthy/down (503 with
`{"status": "failed"}`), and a 4xx other than 408/425/429 (the route or the contract is wrong)."""

from __future__ import annotations

import base64
import http.client
import io
import json
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

from orchestrator.arns import short_name
from orchestrator.clock import Clock
from orchestrator.config.gates import HttpGate
from orchestrator.gates.context import GateContext
from orchestrator.gates.endpoints import resolve
from orchestrator.gates.verdict import FAILED, INCONCLUSIVE, PASSED, Verdict
from orchestrator.redact import excerpt, mask_text

EXCERPT = 300
_MISSING = object()


def _field(body: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(body, dict) or part not in body:
            return _MISSING
        body = body[part]
    return body


def check_response(status: int, body: bytes, latency: float, spec: HttpGate) -> list[str]:
    """Every way a response misses the gate's expectation (empty list: it passes)."""
    problems: list[str] = []
    if status not in spec.expect_status:
        problems.append(f"status {status}, expected {' or '.join(map(str, spec.expect_status))}")
    if spec.max_latency is not None and latency > spec.max_latency:
        problems.append(f"latency {latency * 1000:.0f}ms > {spec.max_latency * 1000:.0f}ms")
    if spec.body_contains and spec.body_contains.encode() not in body:
        problems.append(f"body does not contain {spec.body_contains!r}")
    if spec.expect_json:
        doc = _json(body)
        if doc is _MISSING:
            problems.append("body is not JSON")
        else:
            problems.extend(_json_problems(doc, spec.expect_json))
    return problems


def _json(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8", "replace"))
    except ValueError:
        return _MISSING


def _json_problems(doc: Any, expect: Mapping[str, tuple[Any, ...]]) -> list[str]:
    out = []
    for key, options in expect.items():
        got = _field(doc, key)
        if got is _MISSING:
            out.append(f"JSON field {key!r} missing")
        elif not any(same_json(got, want) for want in options):
            out.append(f"JSON {key}={got!r}, expected {' or '.join(map(repr, options))}")
    return out


def same_json(got: Any, want: Any) -> bool:
    """Equal as JSON values, types included: Python's `1 == True` and `0 == False` must not pass a gate, so a
    boolean matches only a boolean, a number only a number, null only null; lists and objects element by element."""
    if isinstance(want, bool) or isinstance(got, bool):
        return isinstance(want, bool) and isinstance(got, bool) and want is got
    if isinstance(want, (int, float)) or isinstance(got, (int, float)):
        return isinstance(want, (int, float)) and isinstance(got, (int, float)) and got == want
    if isinstance(want, Mapping) or isinstance(got, Mapping):
        return (
            isinstance(want, Mapping)
            and isinstance(got, Mapping)
            and set(want) == set(got)
            and all(same_json(got[k], want[k]) for k in want)
        )
    if isinstance(want, (list, tuple)) or isinstance(got, (list, tuple)):
        return (
            isinstance(want, (list, tuple))
            and isinstance(got, (list, tuple))
            and len(want) == len(got)
            and all(same_json(g, w) for g, w in zip(got, want, strict=True))
        )
    return type(got) is type(want) and bool(got == want)


FAILURE_WORDS = frozenset({"failed", "failure", "error", "unhealthy", "down", "dead"})
_RETRYABLE_4XX = (408, 425, 429)


def is_definitive(status: int | None, body: bytes, spec: HttpGate) -> bool:
    """True when the answer is a verdict retrying will not change: the task says it failed, or a hard 4xx."""
    if status is None:
        return False
    if 400 <= status < 500 and status not in _RETRYABLE_4XX:
        return True
    doc = _json(body)
    if not isinstance(doc, dict):
        return False
    for key in tuple(spec.expect_json) or ("status",):
        got = _field(doc, key)
        if isinstance(got, str) and got.lower() in FAILURE_WORDS:
            return True
    return False


MAX_BODY = 65536
MAX_REDIRECTS = 5
_REDIRECTS = (301, 302, 303, 307, 308)


@dataclass(frozen=True)
class Answer:
    """What one request (and the redirects it followed) came to; `status` None: no answer, `error` says why."""

    status: int | None
    body: bytes
    latency: float
    error: str = ""
    location: str | None = None  # a redirect that was not followed
    redirects: tuple[dict[str, Any], ...] = ()  # each hop followed: status, where to (masked), other host

    @property
    def other_hosts(self) -> list[str]:
        """The hosts other than the gate's own that a followed redirect went to (said in the evidence)."""
        return [h["to"] for h in self.redirects if h["other_host"]]


def _without_credentials(url: str) -> tuple[str, dict[str, str]]:
    """The URL to connect to and the Authorization header its `user:password@` stands for. urllib would put the
    userinfo into the host name (gaierror); the credentials are sent as HTTP basic auth, the URL's own way."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, {}
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    token = base64.b64encode(f"{unquote(parts.username or '')}:{unquote(parts.password or '')}".encode()).decode()
    return urlunsplit(parts._replace(netloc=netloc)), {"Authorization": f"Basic {token}"}


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or (443 if parts.scheme == "https" else 80)


class _ReadsBefore(io.RawIOBase):
    """A socket's reads that all end by one deadline: each read may wait only for what is left of the request, so
    a server that drips its answer a byte at a time cannot stretch it (a socket timeout alone bounds each read)."""

    def __init__(self, sock: socket.socket, ends: float) -> None:
        self._sock = sock
        self._ends = ends

    def readable(self) -> bool:
        """A reader."""
        return True

    def readinto(self, buffer: Any) -> int:
        """Read what has come, waiting no later than the deadline."""
        left = self._ends - time.monotonic()
        if left <= 0:
            raise TimeoutError
        self._sock.settimeout(left)
        return self._sock.recv_into(buffer)


class _DeadlineSocket:
    """What http.client's response reads from: the connection's socket behind a deadline."""

    def __init__(self, sock: socket.socket, ends: float) -> None:
        self._raw = _ReadsBefore(sock, ends)

    def makefile(self, mode: str) -> io.BufferedReader:
        """The buffered reader http.client parses the status line, headers and body from."""
        return io.BufferedReader(self._raw)


def _request(url: str, method: str, headers: dict[str, str], ends: float) -> tuple[int, str | None, bytes]:
    """One HTTP exchange (connect, headers, body) that ends by `ends` (time.monotonic) in all."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {mask_text(url)}")
    left = ends - time.monotonic()
    if left <= 0:
        raise TimeoutError
    conn_cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = conn_cls(parts.hostname, parts.port, timeout=left)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        conn.request(method, target, headers={"User-Agent": "snail-trail-gate", **headers})
        assert conn.sock is not None
        resp = http.client.HTTPResponse(_DeadlineSocket(conn.sock, ends), method=method)  # type: ignore[arg-type]
        resp.begin()
        return resp.status, resp.getheader("Location"), resp.read(MAX_BODY)
    finally:
        conn.close()


def probe(url: str, method: str, timeout: float, clock: Clock, follow_redirects: bool = False) -> Answer:
    """One request bounded by `timeout` in all (redirects followed included). Credentials in the URL are sent;
    only what is shown is masked. A redirect is followed only when asked, and the hops are kept as evidence."""
    start = clock.monotonic()
    ends = time.monotonic() + timeout  # sockets wait in real time, whatever clock the gate is judged on
    target, auth = _without_credentials(url)
    home = _origin(target)
    hops: list[dict[str, Any]] = []
    try:
        for _ in range(MAX_REDIRECTS + 1):
            status, location, body = _request(target, method, auth, ends)
            if status not in _REDIRECTS or not location:
                return Answer(status, body, clock.monotonic() - start, redirects=tuple(hops))
            nxt = urljoin(target, location)
            if not follow_redirects:
                return Answer(status, body, clock.monotonic() - start, location=nxt, redirects=tuple(hops))
            target, given = _without_credentials(nxt)
            other = _origin(target) != home
            hops.append({"status": status, "to": mask_text(target), "other_host": other})
            auth = given or ({} if other else auth)  # credentials never travel to another host
            if status == 303 and method != "HEAD":
                method = "GET"
        return Answer(
            None, b"", clock.monotonic() - start, f"more than {MAX_REDIRECTS} redirects", redirects=tuple(hops)
        )
    except (TimeoutError, ConnectionError, OSError, ValueError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        # connect, headers and body share the one limit: a timeout anywhere is the request's
        text = f"no complete answer within {timeout:.3g}s" if isinstance(reason, TimeoutError) else str(reason)
        return Answer(None, b"", clock.monotonic() - start, f"{type(reason).__name__}: {text}", redirects=tuple(hops))


def _excerpt(body: bytes) -> str:
    """Masked first, then cut: a secret straddling the cut is never half-shown."""
    return excerpt(body.decode("utf-8", "replace"), EXCERPT)


def evaluate(spec: HttpGate, ctx: GateContext) -> Verdict:
    """One attempt: every endpoint must answer as expected `consecutive` times in a row, all within what is left
    of the gate's timeout (ctx.deadline): each request gets at most that much, and none starts after it."""
    label = spec.label
    bases = resolve(ctx, spec.url, spec.port)
    if not bases:
        short = short_name(ctx.revision_arn)
        return Verdict(label, INCONCLUSIVE, f"no running task of {short} has an endpoint yet")
    path = spec.path or ""
    results: list[dict[str, Any]] = []
    elsewhere: list[str] = []
    for base in bases:
        url = base.rstrip("/") + path if path else base
        for i in range(spec.consecutive):
            left = ctx.left()
            if left is not None and left <= 0:
                return Verdict(
                    label,
                    FAILED,
                    mask_text(
                        f"{url}: the gate's timeout ({spec.timeout:g}s) ran out after {i} of "
                        f"{spec.consecutive} consecutive answers"
                    ),
                    {"responses": results[-5:]},
                )
            seconds = spec.request_timeout if left is None else min(spec.request_timeout, left)
            answer = probe(url, spec.method, seconds, ctx.clock, spec.follow_redirects)
            if answer.status is None:
                problems = [answer.error]
            else:
                problems = check_response(answer.status, answer.body, answer.latency, spec)
                if problems and answer.location:
                    problems.append(f"redirect to {answer.location} not followed (follow_redirects: false)")
            result: dict[str, Any] = {
                "url": mask_text(url),
                "status": answer.status,
                "latency_ms": round(answer.latency * 1000, 1),
                "body": _excerpt(answer.body),
                "problems": [mask_text(p) for p in problems],
            }
            if answer.redirects:
                result["redirects"] = list(answer.redirects)
            if answer.other_hosts:
                result["other_host"] = answer.other_hosts
                elsewhere += [h for h in answer.other_hosts if h not in elsewhere]
            results.append(result)
            if problems:
                return Verdict(
                    label,
                    FAILED,
                    mask_text(f"{url}: {'; '.join(problems)}"),
                    {"responses": results[-5:]},
                    definitive=is_definitive(answer.status, answer.body, spec),
                )
            if i + 1 < spec.consecutive:
                left = ctx.left()
                ctx.clock.sleep(spec.interval if left is None else max(0.0, min(spec.interval, left)))
    summary = f"{len(bases)} endpoint(s) answered {spec.consecutive}x as expected"
    evidence: dict[str, Any] = {"responses": results[-5:]}
    if elsewhere:  # a pass that another host gave is said so, in the summary and the evidence
        summary += f", redirected to another host: {', '.join(elsewhere)}"
        evidence["redirected_to_other_host"] = elsewhere
    return Verdict(label, PASSED, mask_text(summary), evidence)
