"""The http gate: status, JSON fields, body text and latency, N consecutive successes on every endpoint."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from orchestrator.config.model import GateSpec
from orchestrator.gates.context import GateContext
from orchestrator.gates.endpoints import resolve
from orchestrator.gates.verdict import FAILED, INCONCLUSIVE, PASSED, Verdict
from orchestrator.redact import mask_text

EXCERPT = 300


def _field(body: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(body, dict) or part not in body:
            return _MISSING
        body = body[part]
    return body


_MISSING = object()


def check_response(status: int, body: bytes, latency: float, expect: dict[str, Any]) -> list[str]:
    """Every way a response misses the expectation (empty list: it passes)."""
    problems: list[str] = []
    want = expect.get("status", 200)
    wanted = want if isinstance(want, list) else [want]
    if status not in wanted:
        problems.append(f"status {status}, expected {' or '.join(map(str, wanted))}")
    if expect.get("max_latency") is not None:
        from orchestrator.config.schema import parse_duration

        limit = (
            parse_duration(expect["max_latency"])
            if not isinstance(expect["max_latency"], float)
            else expect["max_latency"]
        )
        if latency > limit:
            problems.append(f"latency {latency * 1000:.0f}ms > {limit * 1000:.0f}ms")
    if expect.get("body_contains") and expect["body_contains"].encode() not in body:
        problems.append(f"body does not contain {expect['body_contains']!r}")
    if expect.get("json"):
        try:
            doc = json.loads(body.decode("utf-8", "replace"))
        except ValueError:
            problems.append("body is not JSON")
        else:
            for key, allowed in expect["json"].items():
                got = _field(doc, key)
                options = allowed if isinstance(allowed, list) else [allowed]
                if got is _MISSING:
                    problems.append(f"JSON field {key!r} missing")
                elif got not in options:
                    problems.append(f"JSON {key}={got!r}, expected {' or '.join(map(repr, options))}")
    return problems


def probe(url: str, method: str, timeout: float, clock: Any) -> tuple[int | None, bytes, float, str]:
    """One request: (status or None, body, seconds, error)."""
    start = clock.monotonic()
    req = urllib.request.Request(url, method=method, headers={"User-Agent": "snail-trail-gate"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - URLs come from the pipeline
            body = resp.read(65536)
            return resp.status, body, clock.monotonic() - start, ""
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(65536) if exc.fp else b"", clock.monotonic() - start, ""
    except (TimeoutError, urllib.error.URLError, ConnectionError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return None, b"", clock.monotonic() - start, f"{type(reason).__name__}: {reason}"


def evaluate(spec: GateSpec, ctx: GateContext) -> Verdict:
    """One attempt: every endpoint must answer as expected `consecutive` times in a row."""
    p = spec.params
    label = spec.label
    bases = resolve(ctx, p.get("url"), p.get("port"))
    if not bases:
        return Verdict(
            label, INCONCLUSIVE, f"no running task of {ctx.revision_arn.rsplit('/', 1)[-1]} has an endpoint yet"
        )
    path = p.get("path", "") if not p.get("url") else ""
    need = int(p.get("consecutive", 1))
    timeout = float(p.get("request_timeout") or 5.0)
    expect = p.get("expect") or {}
    results = []
    for base in bases:
        url = base.rstrip("/") + path if path else base
        for i in range(need):
            status, body, latency, error = probe(url, p.get("method", "GET"), timeout, ctx.clock)
            excerpt = mask_text(body[:EXCERPT].decode("utf-8", "replace"))
            problems = [error] if status is None else check_response(status, body, latency, expect)
            results.append(
                {
                    "url": url,
                    "status": status,
                    "latency_ms": round(latency * 1000, 1),
                    "body": excerpt,
                    "problems": problems,
                }
            )
            if problems:
                return Verdict(label, FAILED, f"{url}: {'; '.join(problems)}", {"responses": results[-5:]})
            if i + 1 < need:
                ctx.clock.sleep(float(p.get("interval", 0.5)))
    return Verdict(label, PASSED, f"{len(bases)} endpoint(s) answered {need}x as expected", {"responses": results[-5:]})
