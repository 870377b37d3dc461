"""Retry policies as data: the YAML `retries:` block becomes a tenacity policy on our injected clock."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog
import tenacity

from orchestrator.clock import Clock
from orchestrator.config.model import Retries

log = structlog.get_logger()


def stop_at_deadline(
    clock: Clock, deadline: float | None, wait: tenacity.wait.wait_base | None = None
) -> tenacity.stop.stop_base:
    """Stop once our clock passes the deadline (monotonic seconds), or never if there is none. With `wait`, stop
    as well when the next try would start at or past it: no attempt begins after a gate's timeout."""

    class _Stop(tenacity.stop.stop_base):
        def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
            if deadline is None:
                return False
            upcoming = wait(retry_state) if wait is not None else 0.0
            return clock.monotonic() + upcoming >= deadline

    return _Stop()


def wait_for(retries: Retries) -> tenacity.wait.wait_base:
    """Fixed wait, or exponential backoff capped at max_wait when backoff > 1."""
    if retries.backoff > 1.0 and retries.wait > 0:
        return tenacity.wait_exponential(
            multiplier=retries.wait, exp_base=retries.backoff, min=retries.wait, max=retries.max_wait
        )
    return tenacity.wait_fixed(retries.wait)


def retrying(
    retries: Retries,
    clock: Clock,
    *,
    retry_if: Callable[[Any], bool],
    deadline: float | None = None,
    on_retry: Callable[[tenacity.RetryCallState], None] | None = None,
) -> tenacity.Retrying:
    """A tenacity policy: stop after `attempts` or at the deadline; wait on our clock; retry while `retry_if(result)`."""
    wait = wait_for(retries)
    return tenacity.Retrying(
        stop=tenacity.stop_after_attempt(retries.attempts) | stop_at_deadline(clock, deadline, wait),
        wait=wait,
        sleep=clock.sleep,
        retry=tenacity.retry_if_result(retry_if),
        before_sleep=on_retry,
        retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
        reraise=True,
    )


def poll_until(
    check: Callable[[], Any],
    done: Callable[[Any], bool],
    clock: Clock,
    *,
    timeout: float,
    first_wait: float = 2.0,
    max_wait: float = 15.0,
    on_poll: Callable[[Any], None] | None = None,
) -> Any:
    """Call `check` with exponential backoff until `done(result)` or the timeout; returns the last result."""
    deadline = clock.monotonic() + timeout
    backoff = tenacity.wait_exponential(multiplier=first_wait, exp_base=1.5, min=first_wait, max=max_wait)

    def wait(state: tenacity.RetryCallState) -> float:
        # never sleep past the deadline: the last look happens at the timeout, not up to max_wait after it
        return max(0.0, min(backoff(state), deadline - clock.monotonic()))

    policy = tenacity.Retrying(
        stop=stop_at_deadline(clock, deadline),
        wait=wait,
        sleep=clock.sleep,
        retry=tenacity.retry_if_result(lambda r: not done(r)),
        before_sleep=(lambda st: on_poll(st.outcome.result()) if st.outcome else None) if on_poll else None,
        retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
    )
    return policy(check)
