"""When a wave may start: deployment windows and freezes, as pure functions of an instant (no clock read here)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from orchestrator.fleet.model import Freeze, Window


def _aware(now: datetime) -> datetime:
    return now if now.tzinfo is not None else now.replace(tzinfo=timezone.utc)


def in_window(window: Window, now: datetime) -> bool:
    """True when `now` is inside `window` (its days and hours, in its own zone)."""
    local = _aware(now).astimezone(ZoneInfo(window.zone))
    return local.weekday() in window.days and window.start <= local.time() < window.end


def window_open(windows: Sequence[Window], now: datetime) -> bool:
    """No windows means always open; otherwise open when any window holds `now`."""
    return not windows or any(in_window(w, now) for w in windows)


def next_opening(windows: Sequence[Window], now: datetime) -> datetime | None:
    """The next instant (UTC) at which some window opens, within the next 8 days; None when there are none."""
    now = _aware(now)
    best: datetime | None = None
    for w in windows:
        zone = ZoneInfo(w.zone)
        local = now.astimezone(zone)
        for ahead in range(0, 8):
            day = (local + timedelta(days=ahead)).date()
            if day.weekday() not in w.days:
                continue
            opening = datetime.combine(day, w.start, tzinfo=zone)
            if opening > now:
                opening_utc = opening.astimezone(timezone.utc)
                best = opening_utc if best is None or opening_utc < best else best
                break
    return best


def freeze_at(freezes: Sequence[Freeze], now: datetime, zone: str = "UTC") -> Freeze | None:
    """The freeze in force on `now`'s date (in `zone`), if any: forward moves do not start then."""
    day = _aware(now).astimezone(ZoneInfo(zone)).date()
    for f in freezes:
        if f.start <= day <= f.end:
            return f
    return None
