"""The checkers of fleet.yaml's own values (names, days, clock times, zones, dates), with file:line errors."""

from __future__ import annotations

import re
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from orchestrator.config import schema as s

_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}", re.ASCII)  # target and wave names become journal keys and tags
_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_CLOCK = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])", re.ASCII)


def days(node: yaml.Node, key: str, errors: s.Errors) -> Any:
    """'mon-thu', 'mon,wed,fri', 'sat-sun', 'mon-fri,sun' -> a set of weekday numbers (Monday 0)."""
    v = s.string(node, key, errors)
    if v is s._MISSING:
        return v
    out: set[int] = set()
    for part in str(v).lower().replace(" ", "").split(","):
        lo, _, hi = part.partition("-")
        if lo not in _DAYS or (hi and hi not in _DAYS):
            errors.add(node, key, f"{part!r} is not a day or a range of days (mon..sun, e.g. mon-thu or mon,wed)")
            return s._MISSING
        a, b = _DAYS.index(lo), _DAYS.index(hi or lo)
        out.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])  # fri-mon wraps the week
    return frozenset(out)


def clock(node: yaml.Node, key: str, errors: s.Errors) -> Any:
    """'09:00' -> time(9, 0) (24-hour clock; quote it in YAML, or 09:00 may read as a number)."""
    v = s.string(node, key, errors)
    if v is s._MISSING:
        return v
    m = _CLOCK.fullmatch(str(v).strip())
    if not m:
        errors.add(node, key, f'expected a 24-hour time like "09:00", got {v!r}')
        return s._MISSING
    return time(int(m.group(1)), int(m.group(2)))


def zone(node: yaml.Node, key: str, errors: s.Errors) -> Any:
    """An IANA time zone name (America/New_York, Europe/Dublin, UTC)."""
    v = s.string(node, key, errors)
    if v is s._MISSING:
        return v
    try:
        ZoneInfo(str(v))
    except (ZoneInfoNotFoundError, ValueError):
        errors.add(node, key, f"unknown time zone {v!r} (use an IANA name such as America/New_York or UTC)")
        return s._MISSING
    return str(v)


def day(node: yaml.Node, key: str, errors: s.Errors) -> Any:
    """A calendar date, 2026-12-20 (YAML reads it as a date; a quoted one is parsed)."""
    if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:timestamp":
        value = yaml.safe_load(node.value)
        return value if isinstance(value, date) and not isinstance(value, datetime) else value.date()
    v = s.string(node, key, errors)
    if v is s._MISSING:
        return v
    try:
        return date.fromisoformat(str(v).strip())
    except ValueError:
        errors.add(node, key, f"expected a date like 2026-12-20, got {v!r}")
        return s._MISSING


def name(what: str) -> s.Checker:
    """A target, wave or fleet name: a-z, 0-9, - and _, at most 63 characters."""

    def check(node: yaml.Node, key: str, errors: s.Errors) -> Any:
        v = s.string(node, key, errors)
        if v is not s._MISSING and not _NAME.fullmatch(str(v)):
            errors.add(node, key, f"bad {what} name {v!r} (a-z, 0-9, - and _, at most 63 characters)")
            return s._MISSING
        return v

    return check


registry = s.Mapping(  # a target's own registry: checked by its pipeline's rules only when it runs
    {"ecr": s.Field(s.string), "url": s.Field(s.string), "create": s.Field(s.boolean, default=False)},
    extra=lambda d: (
        [("registry", "give exactly one of `ecr` or `url`")] if bool(d.get("ecr")) == bool(d.get("url")) else []
    ),
)
