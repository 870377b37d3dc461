"""CloudWatch metric alarms evaluated in the sandbox, as CloudWatch evaluates them (moto never does).

Every `interval` seconds each metric alarm (not metric-math, not composite) is evaluated over its last
`EvaluationPeriods` periods of `Period` seconds, ending now: the statistic (or extended statistic such as p99)
of each period is compared with the threshold, and `DatapointsToAlarm` breaching periods (default: all of them)
put it in ALARM. Periods without data follow `TreatMissingData` (missing, notBreaching, breaching, ignore).
A change of state goes through moto's SetAlarmState with a reason shaped like CloudWatch's, so `alarm` gates and
ECS's deployment alarms (`deploymentConfiguration.alarms`, watched by the agent) see what AWS would show.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone
from typing import Any

import structlog

log = structlog.get_logger(__name__)

OPERATORS = {
    "GreaterThanOrEqualToThreshold": (lambda v, t: v >= t, "greater than or equal to"),
    "GreaterThanThreshold": (lambda v, t: v > t, "greater than"),
    "LessThanThreshold": (lambda v, t: v < t, "less than"),
    "LessThanOrEqualToThreshold": (lambda v, t: v <= t, "less than or equal to"),
}


def period_values(backend: Any, alarm: Any, now: datetime) -> list[float | None]:
    """The alarm's statistic for each of its last EvaluationPeriods periods, newest first (None: no data)."""
    from moto.cloudwatch.models import Statistics

    stat = alarm.extended_statistic or alarm.statistic
    period = timedelta(seconds=int(alarm.period))
    wanted = sorted((d.name, d.value) for d in alarm.dimensions)
    data = [
        md
        for md in list(backend.get_all_metrics())
        if md.namespace == alarm.namespace
        and md.name == alarm.metric_name
        and sorted((d.name, d.value) for d in md.dimensions) == wanted
        and (not alarm.unit or md.unit == alarm.unit)
    ]
    out: list[float | None] = []
    for i in range(int(alarm.evaluation_periods)):
        end = now - i * period
        start = end - period
        in_period = [md for md in data if start <= _aware(md.timestamp) < end]
        if not in_period:
            out.append(None)
            continue
        stats = Statistics([stat], start)
        stats.metric_data = in_period
        value = stats.get_statistics_for_type(stat)
        out.append(float(value) if value is not None else None)
    return out


def decide(alarm: Any, values: list[float | None]) -> tuple[str | None, str]:
    """(new state or None to keep the current one, CloudWatch-style reason) for the alarm's period values."""
    compare, words = OPERATORS.get(alarm.comparison_operator, (lambda v, t: False, alarm.comparison_operator))
    needed = int(alarm.datapoints_to_alarm or alarm.evaluation_periods)
    treat = alarm.treat_missing_data or "missing"
    threshold = float(alarm.threshold)
    present = [v for v in values if v is not None]
    if not present:
        if treat == "breaching":
            return (
                "ALARM",
                f"Threshold Crossed: no datapoints were received for {len(values)} periods (treated as breaching).",
            )
        if treat == "notBreaching":
            return (
                "OK",
                f"Threshold Crossed: no datapoints were received for {len(values)} periods (treated as not breaching).",
            )
        if treat == "ignore":
            return None, ""
        return "INSUFFICIENT_DATA", f"Insufficient Data: {len(values)} datapoints were unknown."
    breaching = sum(1 for v in present if compare(v, threshold))
    if treat == "breaching":
        breaching += len(values) - len(present)
    shown = ", ".join(f"{v:g}" for v in present[:5])
    if breaching >= needed:
        return "ALARM", (
            f"Threshold Crossed: {breaching} out of the last {len(values)} datapoints [{shown}] "
            f"{'was' if breaching == 1 else 'were'} {words} the threshold ({threshold:g}) "
            f"(minimum {needed} datapoint{'s' if needed > 1 else ''} for OK -> ALARM transition)."
        )
    return "OK", (
        f"Threshold Crossed: {len(present) - breaching} out of the last {len(values)} datapoints [{shown}] "
        f"{'was' if len(present) - breaching == 1 else 'were'} not {words} the threshold ({threshold:g}) "
        f"(minimum 1 datapoint for ALARM -> OK transition)."
    )


def evaluate_once(account_id: str, now: datetime | None = None) -> list[tuple[str, str, str]]:
    """Evaluate every metric alarm of every region once; return (alarm, old state, new state) for changes."""
    from moto.cloudwatch.models import cloudwatch_backends

    now = now or datetime.now(timezone.utc)
    changes = []
    for backend in list(cloudwatch_backends[account_id].values()):
        for alarm in list(backend.alarms.values()):
            if not alarm.metric_name or alarm.metric_data_queries or getattr(alarm, "rule", None):
                continue  # metric math and composite alarms are not evaluated in the sandbox
            state, reason = decide(alarm, period_values(backend, alarm, now))
            if state is None or state == alarm.state_value:
                continue
            old = alarm.state_value
            data = {
                "version": "1.0",
                "queryDate": now.isoformat(),
                "statistic": alarm.extended_statistic or alarm.statistic,
            }
            backend.set_alarm_state(alarm.name, reason, json.dumps(data), state)
            changes.append((alarm.name, old, state))
            log.info("sandbox_alarm_state", alarm=alarm.name, old=old, new=state, reason=reason)
    return changes


def in_alarm(account_id: str, region: str, names: list[str]) -> list[str]:
    """Which of the named alarms are in ALARM now."""
    from moto.cloudwatch.models import cloudwatch_backends

    alarms = cloudwatch_backends[account_id][region].alarms
    return [n for n in names if n in alarms and alarms[n].state_value == "ALARM"]


class AlarmEvaluator:
    """Evaluates the alarms every `interval` seconds in a daemon thread."""

    def __init__(self, account_id: str, interval: float = 10.0) -> None:
        self.account_id = account_id
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start evaluating."""
        self._thread = threading.Thread(target=self._loop, name="snail-sandbox-alarms", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop evaluating."""
        self._stop.set()
        if self._thread:
            self._thread.join(10)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                evaluate_once(self.account_id)
            except Exception:  # noqa: BLE001 - one bad round must not stop the evaluator
                log.exception("sandbox_alarm_evaluation_failed")


def _aware(ts: datetime) -> datetime:
    return ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)
