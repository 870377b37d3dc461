"""Time bounds on each AWS call made inside a gate: what is left of the gate's timeout bounds each request.

botocore fixes a client's connect and read timeouts when the client is made (ours: 5 s + 30 s, and botocore's
retries multiply that). One slow DescribeServices inside a `timeout: 10s` gate could therefore answer after 31 s
and pass the gate. Every client we make sends through a `BoundedSession`: outside any bound it is the client's own
HTTP session; inside `bounded(left)` a request is sent with connect + read timeouts that fit in `left()` seconds,
and a retry is not sent once less than MIN_CALL is left (CallTimeout, which our error translation sees as a timeout:
a gate polls on, or ends at its own timeout). A call may overrun its bound by one short attempt (MIN_CALL) or one of
botocore's backoff pauses between retries, never by a whole read timeout."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from botocore.exceptions import BotoCoreError

MIN_CALL = 1.0  # seconds: the shortest attempt (a look at a gate's deadline gets one; its retries none)
# Timeouts a bounded request gets: the largest that fits in what is left (a few sessions per client, each reused).
BUCKETS = (1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 21.0)

_LEFT: ContextVar[Callable[[], float | None] | None] = ContextVar("snail_call_bound", default=None)


class CallTimeout(BotoCoreError):
    """A retry was not sent: the gate it was made in has less than MIN_CALL seconds left."""

    fmt = "not sent: {left:.1f}s left of the gate's timeout"


@contextmanager
def bounded(left: Callable[[], float | None]) -> Iterator[None]:
    """Inside: every AWS request of this thread fits in `left()` seconds (None: unbounded). Bounds nest: the
    tighter one wins."""
    outer = _LEFT.get()

    def tighter() -> float | None:
        known = [x for x in (left(), outer() if outer is not None else None) if x is not None]
        return min(known) if known else None

    token = _LEFT.set(tighter)
    try:
        yield
    finally:
        _LEFT.reset(token)


def left_now() -> float | None:
    """Seconds left for a call made now on this thread (None: unbounded)."""
    fn = _LEFT.get()
    return fn() if fn is not None else None


def _attempt(request: Any) -> int:
    """Which attempt of its call a request is (botocore's standard retry mode says so in amz-sdk-request)."""
    raw = (getattr(request, "headers", None) or {}).get("amz-sdk-request", b"")
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    for part in text.split(";"):
        key, _, value = part.strip().partition("=")
        if key == "attempt" and value.isdigit():
            return int(value)
    return 1


def _timeouts(seconds: float, connect: float) -> tuple[float, float]:
    """Connect and read timeouts whose sum is `seconds` (connect at most the client's own)."""
    c = min(connect, seconds / 2)
    return c, seconds - c


class BoundedSession:
    """Stands in for a client's botocore HTTP session (Endpoint.http_session): sends with the client's own timeouts,
    or, inside a bound, with timeouts that fit in what is left."""

    def __init__(self, inner: Any, connect: float, read: float) -> None:
        self.inner = inner
        self.connect = connect
        self.read = read
        self._sessions: dict[float, Any] = {}

    def send(self, request: Any) -> Any:
        """One HTTP request of a call (botocore calls this once per attempt)."""
        left = left_now()
        if left is None or left >= self.connect + self.read:
            return self.inner.send(request)
        if left < MIN_CALL:
            if _attempt(request) > 1:  # botocore's retry of a call that has no time left: not sent
                raise CallTimeout(left=max(0.0, left))
            left = MIN_CALL  # a gate's last look, at its deadline: one short attempt
        return self._session(max(b for b in BUCKETS if b <= left)).send(request)

    def _session(self, seconds: float) -> Any:
        """A copy of the client's HTTP session (same TLS, proxies, pool size) with these timeouts."""
        made = self._sessions.get(seconds)
        if made is None:
            from urllib3 import PoolManager, Timeout

            made = copy.copy(self.inner)
            c, r = _timeouts(seconds, self.connect)
            # botocore keeps these on URLLib3Session (httpsession.py): a new pool manager reads the new timeout
            made._timeout = Timeout(connect=c, read=r)
            made._proxy_managers = {}
            made._manager = PoolManager(**made._get_pool_manager_kwargs())
            made._manager.pool_classes_by_scheme = made._pool_classes_by_scheme
            self._sessions[seconds] = made
        return made

    def close(self) -> None:
        """Close the client's session and every bounded copy."""
        self.inner.close()
        for s in self._sessions.values():
            s.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def install(client: Any, connect: float, read: float) -> Any:
    """Send `client`'s requests through a BoundedSession (botocore keeps the endpoint on `client._endpoint`)."""
    endpoint = getattr(client, "_endpoint", None)
    session = getattr(endpoint, "http_session", None)
    if endpoint is not None and session is not None and not isinstance(session, BoundedSession):
        endpoint.http_session = BoundedSession(session, connect, read)
    return client
