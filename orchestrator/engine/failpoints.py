"""Failpoints: named places where a test can make the process die, to prove crash safety.

SNAIL_FAILPOINTS="update_service:acted" kills the process with SIGKILL right after the service update and
before its result is written. Names are `<step kind>:<intent|acted>` (a `#N` suffix picks the Nth time,
e.g. `update_service:acted#2`). Unset in production: checking costs one dict lookup."""

from __future__ import annotations

import os
import signal

_counts: dict[str, int] = {}


def hit(name: str) -> None:
    """Die here if this failpoint is armed."""
    armed = os.environ.get("SNAIL_FAILPOINTS")
    if not armed:
        return
    _counts[name] = _counts.get(name, 0) + 1
    for spec in armed.split(","):
        point, _, nth = spec.strip().partition("#")
        if point == name and (not nth or int(nth) == _counts[name]):
            os.kill(os.getpid(), signal.SIGKILL)
