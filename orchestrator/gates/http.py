"""The http gate: status, JSON fields, body text and latency, N consecutive successes on every endpoint.

Retried (the answer can change by waiting): no endpoint yet; a refused, reset or timed-out connection; any 5xx
or wrong answer that does not say the task failed (a proxy's 502, a task still loading). Not retried past the
gate's `consecutive` threshold (a verdict): a task that is up and says it failed, i.e. a well-formed JSON body
whose checked field (`expect.json`'s, else `status`) is failed/failure/error/unhealthy/down (503 with
`{"status": "failed"}`), and a 4xx other than 408/425/429 (the route or the contract is wrong)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

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
        elif got not in options:
            out.append(f"JSON {key}={got!r}, expected {' or '.join(map(repr, options))}")
    return out


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


def probe(url: str, method: str, timeout: float, clock: Clock) -> tuple[int | None, bytes, float, str]:
    """One request: (status or None, body, seconds, error)."""
    start = clock.monotonic()
    req = urllib.request.Request(url, method=method, headers={"User-Agent": "snail-trail-gate"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - http(s) only, checked by validate
            body = resp.read(65536)
            return resp.status, body, clock.monotonic() - start, ""
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(65536) if exc.fp else b"", clock.monotonic() - start, ""
    except (TimeoutError, urllib.error.URLError, ConnectionError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return None, b"", clock.monotonic() - start, f"{type(reason).__name__}: {reason}"


def _excerpt(body: bytes) -> str:
    """Masked first, then cut: a secret straddling the cut is never half-shown."""
    return excerpt(body.decode("utf-8", "replace"), EXCERPT)


def evaluate(spec: HttpGate, ctx: GateContext) -> Verdict:
    """One attempt: every endpoint must answer as expected `consecutive` times in a row."""
    label = spec.label
    bases = resolve(ctx, spec.url, spec.port)
    if not bases:
        short = short_name(ctx.revision_arn)
        return Verdict(label, INCONCLUSIVE, f"no running task of {short} has an endpoint yet")
    path = spec.path or ""
    results: list[dict[str, Any]] = []
    for base in bases:
        url = base.rstrip("/") + path if path else base
        for i in range(spec.consecutive):
            status, body, latency, error = probe(url, spec.method, spec.request_timeout, ctx.clock)
            problems = [error] if status is None else check_response(status, body, latency, spec)
            results.append(
                {
                    "url": mask_text(url),
                    "status": status,
                    "latency_ms": round(latency * 1000, 1),
                    "body": _excerpt(body),
                    "problems": problems,
                }
            )
            if problems:
                return Verdict(
                    label,
                    FAILED,
                    mask_text(f"{url}: {'; '.join(problems)}"),
                    {"responses": results[-5:]},
                    definitive=is_definitive(status, body, spec),
                )
            if i + 1 < spec.consecutive:
                ctx.clock.sleep(spec.interval)
    return Verdict(
        label, PASSED, f"{len(bases)} endpoint(s) answered {spec.consecutive}x as expected", {"responses": results[-5:]}
    )
