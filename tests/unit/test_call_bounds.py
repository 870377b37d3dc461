"""Per-call bounds (orchestrator/aws/bounds.py): inside a gate, a request's timeouts fit in what is left of it."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.httpsession import URLLib3Session

from orchestrator.aws.bounds import BoundedSession, CallTimeout, bounded


class Request:
    """The little of botocore's AWSPreparedRequest a bound looks at."""

    def __init__(self, attempt: int = 1) -> None:
        self.headers = {"amz-sdk-request": f"ttl=20261207T080000Z; attempt={attempt}; max=6".encode()}


class Recorder(BoundedSession):
    """A BoundedSession that records which session would send, instead of sending."""

    def __init__(self) -> None:
        super().__init__(URLLib3Session(timeout=(5, 30)), 5.0, 30.0)
        self.sent: list[Any] = []

    def _session(self, seconds: float) -> Any:
        made = super()._session(seconds)
        self.sent.append(made._timeout)
        return type("Sink", (), {"send": lambda _s, _r: "bounded"})()


def test_outside_a_bound_the_clients_own_session_sends() -> None:
    """No bound, or more left than one whole attempt: the client's session and timeouts, untouched."""
    s = Recorder()
    s.inner = type("Inner", (), {"send": lambda _s, _r: "own"})()
    assert s.send(Request()) == "own"
    with bounded(lambda: 120.0):
        assert s.send(Request()) == "own"
    assert s.sent == []


def test_inside_a_bound_the_timeouts_fit_in_what_is_left() -> None:
    """2.5 s left: connect 1 s + read 1 s; 9 s left: 4 + 4; nested bounds: the tighter wins."""
    s = Recorder()
    with bounded(lambda: 2.5):
        assert s.send(Request()) == "bounded"
    with bounded(lambda: 9.0), bounded(lambda: 60.0):
        s.send(Request())
    assert [(t.connect_timeout, t.read_timeout) for t in s.sent] == [(1.0, 1.0), (4.0, 4.0)]


def test_no_time_left_gets_one_short_attempt_and_no_retry() -> None:
    """At the deadline a call's first attempt still gets 1 s (the gate's last look); its retries are not sent."""
    s = Recorder()
    with bounded(lambda: 0.0):
        assert s.send(Request(attempt=1)) == "bounded"
        with pytest.raises(CallTimeout, match="not sent"):
            s.send(Request(attempt=2))
    assert [(t.connect_timeout, t.read_timeout) for t in s.sent] == [(0.5, 0.5)]
