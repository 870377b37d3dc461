"""The figures of `make bench-strategies`, computed from what the harness recorded (pure functions, unit-tested).

A production response is a `Response`: when it was answered (wall-clock seconds), its HTTP status (None: no
answer) and the version that answered (the app's `Server: snail-PHASE/APP_VERSION` header; None when the load
balancer answered by itself, e.g. a 502/503 with no target). The harness names every release's APP_VERSION
`good-N` or `broken-N`, so "served by the broken revision" is a fact read from each response.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

# Journal events that mark snail's decision to roll back, in the order snail writes them.
DECISION_KINDS = ("gate_failed", "decision", "rollback_started")


@dataclass(frozen=True)
class Response:
    """One production request as the load generator saw it."""

    at: float  # wall-clock seconds when the answer (or the failure) came
    status: int | None  # None: no answer (refused, reset, timed out)
    version: str | None  # APP_VERSION of the task that answered, None when no task answered

    @property
    def failed(self) -> bool:
        """What a user of production calls a failure: no answer, or a status of 500 or more."""
        return self.status is None or self.status >= 500


def version_of(server_header: str | None) -> str | None:
    """The APP_VERSION in the app's `Server: snail-PHASE/VERSION BaseHTTP/… Python/…` header (None if absent)."""
    if not server_header:
        return None
    first = server_header.split()[0]
    if not first.startswith("snail-") or "/" not in first:
        return None
    return first.split("/", 1)[1] or None


def is_broken(version: str | None) -> bool:
    """True when the broken release answered (the harness names broken releases `broken-N`)."""
    return bool(version and version.startswith("broken"))


def is_good(r: Response) -> bool:
    """A response from a good revision, not failed."""
    return not r.failed and bool(r.version and r.version.startswith("good"))


def counts(responses: Sequence[Response]) -> tuple[int, int]:
    """(sent, failed) production requests."""
    return len(responses), sum(1 for r in responses if r.failed)


def broken_served(responses: Sequence[Response]) -> tuple[int, float | None, float | None]:
    """(responses served by the broken revision, first, last answer time); (0, None, None) when it served none."""
    times = [r.at for r in responses if is_broken(r.version)]
    if not times:
        return 0, None, None
    return len(times), min(times), max(times)


def seconds_broken(responses: Sequence[Response]) -> float:
    """Seconds a broken version served production: its first to its last production response (0 if none)."""
    n, first, last = broken_served(responses)
    return 0.0 if not n or first is None or last is None else last - first


def back_to_good(responses: Sequence[Response], decision_at: float | None) -> float | None:
    """Seconds from the decision until production answers only from a good revision (to the end of the watch).

    The moment is the first good response after the last response at or after the decision that was not good
    (broken, failed or from no task). 0.0 when every response after the decision was good (production never
    left the good revision, or was back before the decision was recorded). None when there is no decision, or
    production was still not all good at the end of the watch."""
    if decision_at is None:
        return None
    after = sorted((r for r in responses if r.at >= decision_at), key=lambda r: r.at)
    bad = [i for i, r in enumerate(after) if not is_good(r)]
    if not bad:
        return 0.0
    rest = after[bad[-1] + 1 :]
    if not rest:
        return None
    return rest[0].at - decision_at


def _epoch(value: Any) -> float:
    """An event time (ISO 8601 string, datetime or epoch seconds) as epoch seconds."""
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, datetime):
        return value.timestamp()
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def decision_time(events: Iterable[dict[str, Any]], since: float | None = None) -> float | None:
    """When snail decided to roll back: the earliest gate_failed / decision / rollback_started event (epoch s).

    Events are the trail's (`kind` and `at`); only those at or after `since` count (the measured run's)."""
    times = []
    for e in events:
        if e.get("kind") not in DECISION_KINDS or e.get("at") is None:
            continue
        at = _epoch(e["at"])
        if since is None or at >= since:
            times.append(at)
    return min(times) if times else None


ROLLBACK_CALLS = ("ContinueServiceDeployment", "UpdateService")


def decision_call(calls: Sequence[tuple[str, float]], journal_decision: float | None) -> float | None:
    """When the decision reached AWS: the first ContinueServiceDeployment or UpdateService (not the release's own,
    first, UpdateService) at or after the journal's decision event, whose time has whole-second resolution.

    `calls` are (operation, epoch seconds) as the request-counting proxy saw them. None without a decision."""
    if journal_decision is None:
        return None
    ordered = sorted(calls, key=lambda c: c[1])
    release = next((at for op, at in ordered if op == "UpdateService"), None)
    for op, at in ordered:
        if op in ROLLBACK_CALLS and at >= journal_decision and not (op == "UpdateService" and at == release):
            return at
    return None


def tasks_started(before: Iterable[str], seen: Iterable[str]) -> int:
    """Distinct task ARNs seen during the run that were not there when it began."""
    return len(set(seen) - set(before))


def median_of(rows: Sequence[dict[str, Any]], key: str) -> float | None:
    """The median of a figure over the runs that have it (None when none has it)."""
    values = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(values) if values else None


def targets(rows_by_tool: dict[str, list[dict[str, Any]]], gate_window_s: float) -> dict[str, tuple[bool, str]]:
    """The issue's targets, each (met, why), judged on every run (not only the median).

    - blue-green: 0 failed production requests;
    - canary (every tool named canary…): failed production requests <= 10 % of what the load sends during one
      gate window;
    - every snail strategy: production back on the good revision <= 2 s after the decision."""
    out: dict[str, tuple[bool, str]] = {}
    bg = rows_by_tool.get("blue-green") or []
    if bg:
        worst = max(r["failed"] for r in bg)
        out["blue-green: 0 failed production requests"] = (worst == 0, f"most failed in a run: {worst}")
    for tool, canary in rows_by_tool.items():
        if not tool.startswith("canary") or not canary:
            continue
        allowed = max(
            0.10 * r["sent"] / max(r["load_seconds"], 1e-9) * gate_window_s for r in canary
        )  # 10 % of one gate window's requests at the measured rate
        worst = max(r["failed"] for r in canary)
        out[f"{tool}: failed <= its 10 % share of one gate window"] = (
            worst <= allowed,
            f"most failed in a run: {worst}, allowed {allowed:.0f} ({gate_window_s:g} s window)",
        )
    for tool, rows in rows_by_tool.items():
        if tool == "ecs-deploy" or not rows:
            continue
        values = [r.get("decision_to_good_s") for r in rows]
        never = any(v is None for v in values)
        worst_v = max((v for v in values if v is not None), default=None)
        ok = not never and worst_v is not None and worst_v <= 2.0
        why = "no decision or not back in some run" if never else f"worst run {worst_v:.2f} s"
        out[f"{tool}: back on good <= 2 s after the decision"] = (ok, why)
    return out


def fmt_s(v: float | None, never: str = "never") -> str:
    """Seconds with one decimal, or `never`."""
    return never if v is None else f"{v:.1f} s"


def summarize(rows: Sequence[dict[str, Any]], key: Callable[[dict[str, Any]], Any]) -> str:
    """All runs' values of one figure, in order, as `a / b / c`."""
    return " / ".join(str(key(r)) for r in rows)
