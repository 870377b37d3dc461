"""A small schema checker over PyYAML nodes, so every mistake names its file, line and key."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import yaml

from orchestrator.config import interpolation, names
from orchestrator.config.yamlio import neutralise, to_data
from orchestrator.errors import ConfigError

# ASCII digits only: `\d` would take "٥٠٠٠" or "²" (str.isdigit() is True for both, and int("²") raises).
_DURATION = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h)?\s*$", re.ASCII)
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_DIGITS = re.compile(r"[+-]?[0-9]+", re.ASCII)
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_PHASE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*", re.ASCII)

MAX_DURATION = 7 * 24 * 3600.0  # a week: any duration longer than that is a typo (or an overflow), not a policy
MIN_LEASE = 10.0  # a shorter lock lease expires between two heartbeats of a healthy holder
MAX_STRING = 64 * 1024  # characters in one value (a `run:` script fits; a 5 MB blob does not)
MAX_PHASE_NAME = 63  # phase names become ECS tags and file names


def parse_duration(text: Any) -> float:
    """'10m' -> 600.0, '3s' -> 3.0, '250ms' -> 0.25, 5 -> 5.0; ValueError for anything else, NaN, inf, or > a week."""
    if isinstance(text, bool):
        raise ValueError(text)
    if isinstance(text, (int, float)):
        value = float(text) if not isinstance(text, int) or abs(text) < 10**18 else math.inf
    else:
        m = _DURATION.match(str(text))
        if not m:
            raise ValueError(text)
        value = float(m.group(1)) * _UNITS[m.group(2)]
    if not math.isfinite(value) or value < 0 or value > MAX_DURATION:
        raise ValueError(text)
    return value


def interpolate(text: str, env: dict[str, str] | os._Environ = os.environ) -> str:
    """Expand ${VAR}, ${VAR:-default} (nested defaults too) and $${ from the environment (an unset ${VAR} becomes
    ""; see undefined()); InterpolationError for a malformed reference."""
    return interpolation.expand(text, env)[0]


def undefined(text: str, env: dict[str, str] | os._Environ = os.environ) -> list[str]:
    """The ${VAR} references in `text` that are needed, not set, and have no :-default."""
    return interpolation.expand(text, env)[1]


def phase_name_problem(name: str) -> str | None:
    """Why `name` cannot be a phase name (None if it can): a-z, 0-9, - and _, at most 63 characters."""
    if len(name) > MAX_PHASE_NAME:
        return f"phase name of {len(name)} characters is too long (at most {MAX_PHASE_NAME})"
    if not _PHASE_NAME.fullmatch(name):
        return f"bad phase name {name!r} (use a-z, 0-9, - and _; start with a letter or digit)"
    return None


class Errors:
    """Collects every mistake in a file instead of stopping at the first."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.items: list[ConfigError] = []

    def add(self, node: yaml.Node | None, key: str, message: str) -> None:
        """Record a mistake at `node`'s line (key and message neutralised: they may echo hostile text)."""
        line = node.start_mark.line + 1 if node is not None else None
        shown = neutralise(key if len(key) <= 200 else key[:199] + "…") if key else None
        self.items.append(ConfigError(self.path, line, neutralise(message), key=shown))


@dataclass
class Field:
    """One key of a mapping: its checker, whether it is required, its default."""

    check: Checker
    required: bool = False
    default: Any = None


Checker = Callable[[yaml.Node, str, Errors], Any]
_MISSING = object()


def _scalar(node: yaml.Node, key: str, errors: Errors, kind: str) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        errors.add(node, key, f"expected {kind}, got a {_kind(node)}")
        return _MISSING
    return to_data(node) if node.tag != "tag:yaml.org,2002:str" else node.value


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "mapping"
    if isinstance(node, yaml.SequenceNode):
        return "list"
    return f"value {node.value!r}"


def expand(text: str, node: yaml.Node, key: str, errors: Errors, run_time: bool = False, shell: bool = False) -> Any:
    """${VAR} and ${VAR:-default} expanded; an unset ${VAR} without a default, a malformed reference, or a result
    over the length cap or with control characters in it, is a mistake.

    With `run_time` (a command gate's run/env/cwd), references to the variables snail sets when the gate runs are
    kept for then, and so is `$${` (snail's second pass reads it); with `shell` too, the shell is that second pass
    (it reads `${`, so `$${` becomes `${` now)."""
    keep = interpolation.RUN_TIME_VARIABLES if run_time else frozenset()
    try:
        out, missing = interpolation.expand(text, os.environ, keep=keep, keep_escapes=run_time and not shell)
    except interpolation.InterpolationError as exc:
        errors.add(node, key, str(exc))
        return _MISSING
    if missing:
        errors.add(node, key, _not_set(missing))
        return _MISSING
    if len(out) > MAX_STRING:
        errors.add(node, key, f"value of {len(out)} characters is longer than the limit ({MAX_STRING})")
        return _MISSING
    bad = _CONTROL.search(out)
    if bad:
        errors.add(node, key, f"control character {bad.group()!r} in the value (from the environment)")
        return _MISSING
    return out


def _not_set(missing: list[str]) -> str:
    """What to say about unset variables: set them or give a default, except for the ones snail sets for a command
    gate when it runs (a default there would freeze a stand-in value into the file)."""
    shown = ", ".join(f"${{{n}}}" for n in missing)
    run_time = [n for n in missing if n in interpolation.RUN_TIME_VARIABLES]
    if run_time:
        return (
            f"{shown} is not set: snail sets ${{{run_time[0]}}} only for a command gate, when it runs (use it in "
            "the gate's run:, env: or cwd:, where it is expanded then)"
        )
    return f"{shown} is not set (set it, or give a default: ${{{missing[0]}:-value}})"


def string(node: yaml.Node, key: str, errors: Errors, run_time: bool = False, shell: bool = False) -> Any:
    """A string (numbers are accepted and turned into text; ${VAR} expanded)."""
    v = _scalar(node, key, errors, "a string")
    if v is _MISSING:
        return v
    if v is None or isinstance(v, (bool, list, dict)):
        errors.add(node, key, f"expected a string, got {_short(node.value)}")
        return _MISSING
    if isinstance(v, float) and not math.isfinite(v):
        errors.add(node, key, f"expected a string, got {node.value!r} (quote it)")
        return _MISSING
    return expand(str(v), node, key, errors, run_time, shell)


def run_time_string(node: yaml.Node, key: str, errors: Errors) -> Any:
    """A string of a command gate: the variables snail sets when the gate runs are expanded then, not now."""
    return string(node, key, errors, run_time=True)


def shell_line(node: yaml.Node, key: str, errors: Errors) -> Any:
    """A command gate's shell line: the variables snail sets when the gate runs are left to the shell."""
    return string(node, key, errors, run_time=True, shell=True)


def _named(check: Callable[[str], str | None]) -> Checker:
    """A string that must also pass `check` (which says why not, or None)."""

    def checker(node: yaml.Node, key: str, errors: Errors) -> Any:
        v = string(node, key, errors)
        if v is _MISSING:
            return v
        problem = check(v)
        if problem:
            errors.add(node, key, problem + _from_env(node))
            return _MISSING
        return v

    return checker


def _from_env(node: yaml.Node) -> str:
    """' (after ${X} was expanded)' when the node's text has a reference, so the mistake is traced to its source."""
    raw = str(node.value) if isinstance(node, yaml.ScalarNode) else ""
    return f" (after {neutralise(raw[:80])} was expanded)" if "${" in raw else ""


def ecs_name(what: str) -> Checker:
    """An ECS cluster, service, family or container name (see names.py for AWS's rule)."""
    return _named(lambda v: names.ecs_name_problem(v, what))


region = _named(names.region_problem)
ecr_repository = _named(names.ecr_repository_problem)
image_ref = _named(names.image_ref_problem)
dynamodb_table = _named(names.dynamodb_table_problem)


def registry_url(node: yaml.Node, key: str, errors: Errors) -> Any:
    """HOST[:PORT]/NAME of an OCI registry, read by the same rule a push uses (so validate refuses what it would)."""
    from orchestrator.build.target import RegistryTarget
    from orchestrator.errors import UsageError

    v = string(node, key, errors)
    if v is _MISSING:
        return v
    try:
        RegistryTarget.from_url(v, env={})
    except UsageError as exc:
        errors.add(node, key, str(exc) + _from_env(node))
        return _MISSING
    return v


def file_path(node: yaml.Node, key: str, errors: Errors) -> Any:
    """A file or folder path the OS can take: no NUL, no name over 255 bytes, at most 4096 bytes in all."""
    v = string(node, key, errors)
    if v is _MISSING:
        return v
    if not v.strip():
        errors.add(node, key, "empty path")
        return _MISSING
    raw = os.fsencode(v)
    if len(raw) > 4096 or any(len(part) > 255 for part in raw.split(b"/")):
        errors.add(node, key, "path too long (a name is at most 255 bytes, a path 4096)")
        return _MISSING
    return v


def http_url(node: yaml.Node, key: str, errors: Errors) -> Any:
    """An absolute http:// or https:// URL with a host (javascript:, file: and the like are refused)."""
    v = string(node, key, errors)
    if v is _MISSING:
        return v
    parts = urlsplit(v)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        scheme = f"{parts.scheme}:" if parts.scheme else "no scheme"
        errors.add(node, key, f"expected an http:// or https:// URL with a host, got {scheme}")
        return _MISSING
    return v


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def integer(lo: int | None = None, hi: int | None = None, what: str = "a whole number") -> Checker:
    """A whole number within [lo, hi]."""

    def check(node: yaml.Node, key: str, errors: Errors) -> Any:
        v = _scalar(node, key, errors, what)
        if v is _MISSING:
            return v
        if isinstance(v, str):
            v = expand(v, node, key, errors)
            if v is _MISSING:
                return v
            if _DIGITS.fullmatch(v.strip()):
                v = int(v.strip())
        if isinstance(v, bool) or not isinstance(v, int):
            errors.add(node, key, f"expected {what}, got {_short(node.value)}")
            return _MISSING
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            errors.add(node, key, f"{v} is out of range ({lo}..{hi})")
            return _MISSING
        return v

    return check


port = integer(1, 65535, "a port number")


def number(lo: float = 0.0, hi: float = 1e6) -> Checker:
    """A finite number within [lo, hi]."""

    def check(node: yaml.Node, key: str, errors: Errors) -> Any:
        v = _scalar(node, key, errors, "a number")
        if v is _MISSING:
            return v
        if isinstance(v, int) and not isinstance(v, bool) and abs(v) > 10**18:
            v = math.inf
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not lo <= v <= hi:
            errors.add(node, key, f"expected a number from {lo:g} to {hi:g}, got {_short(node.value)}")
            return _MISSING
        return float(v)

    return check


def boolean(node: yaml.Node, key: str, errors: Errors) -> Any:
    """true or false."""
    v = _scalar(node, key, errors, "true or false")
    if v is not _MISSING and not isinstance(v, bool):
        errors.add(node, key, f"expected true or false, got {node.value!r}")
        return _MISSING
    return v


def duration(node: yaml.Node, key: str, errors: Errors) -> Any:
    """A duration: 500ms, 3s, 10m, 1h, or plain seconds; finite, not negative, at most a week."""
    v = _scalar(node, key, errors, "a duration")
    if v is _MISSING:
        return v
    if isinstance(v, str):
        v = expand(v, node, key, errors)
        if v is _MISSING:
            return v
    try:
        return parse_duration(v)
    except ValueError:
        pass
    try:
        too_long = _magnitude(v) > MAX_DURATION
    except ValueError:
        too_long = False
    if too_long:
        errors.add(node, key, f"duration {_short(node.value)} is longer than the limit (a week, 168h)")
    else:
        errors.add(node, key, f"bad duration {_short(node.value)} (use e.g. 500ms, 3s, 10m, 1h)")
    return _MISSING


def _magnitude(v: Any) -> float:
    """A duration's size in seconds before the bounds check (ValueError if it is not a duration at all)."""
    if isinstance(v, bool):
        raise ValueError(v)
    if isinstance(v, (int, float)):
        if isinstance(v, float) and math.isnan(v):
            raise ValueError(v)
        return float(v) if isinstance(v, float) or abs(v) < 10**18 else math.inf
    m = _DURATION.match(str(v))
    if not m:
        raise ValueError(v)
    return float(m.group(1)) * _UNITS[m.group(2)]


def duration_at_least(lo: float, why: str) -> Checker:
    """A duration of at least `lo` seconds (e.g. the lock lease)."""

    def check(node: yaml.Node, key: str, errors: Errors) -> Any:
        v = duration(node, key, errors)
        if v is not _MISSING and v < lo:
            errors.add(node, key, f"{_short(node.value)} is too short: at least {lo:g}s ({why})")
            return _MISSING
        return v

    return check


lease = duration_at_least(MIN_LEASE, "a shorter lease expires between heartbeats of a live run")


def one_of(*choices: str) -> Checker:
    """A string among `choices`."""

    def check(node: yaml.Node, key: str, errors: Errors) -> Any:
        v = string(node, key, errors)
        if v is not _MISSING and v not in choices:
            errors.add(node, key, f"{v!r} is not one of: {', '.join(choices)}")
            return _MISSING
        return v

    return check


def anything(node: yaml.Node, key: str, errors: Errors) -> Any:
    """Any YAML value, as Python data; ${VAR} expanded in its strings, which stay strings whatever they expand to."""
    if isinstance(node, yaml.ScalarNode):
        if node.tag != "tag:yaml.org,2002:str":
            return to_data(node)
        return expand(node.value, node, key, errors)
    if isinstance(node, yaml.SequenceNode):
        return [anything(n, f"{key}[{i}]", errors) for i, n in enumerate(node.value)]
    out: dict[Any, Any] = {}
    for k, v in node.value:
        name = to_data(k) if isinstance(k, yaml.ScalarNode) else None
        if isinstance(name, str) and "${" in name:
            errors.add(k, f"{key}.{name}", KEY_REFERENCE)
            continue
        if name is None and not isinstance(k, yaml.ScalarNode):
            errors.add(k, key, f"a key must be a plain name, not a {_kind(k)}")
            continue
        out[name] = anything(v, f"{key}.{name}", errors)
    return out


def list_of(item: Checker, min_items: int = 0) -> Checker:
    """A list whose items each pass `item`."""

    def check(node: yaml.Node, key: str, errors: Errors) -> Any:
        if not isinstance(node, yaml.SequenceNode):
            errors.add(node, key, f"expected a list, got a {_kind(node)}")
            return _MISSING
        if len(node.value) < min_items:
            errors.add(node, key, f"needs at least {min_items} item(s)")
        out = [item(n, f"{key}[{i}]", errors) for i, n in enumerate(node.value)]
        return [v for v in out if v is not _MISSING]

    return check


KEY_REFERENCE = "a name is read as written: ${…} is expanded in values, never in names (keys)"


def _map_of_strings(
    node: yaml.Node, key: str, errors: Errors, what: str, empty_ok: bool, run_time: bool = False
) -> Any:
    if not isinstance(node, yaml.MappingNode):
        errors.add(node, key, f"expected a mapping, got a {_kind(node)}")
        return _MISSING
    out: dict[str, str] = {}
    for k, v in node.value:
        if not isinstance(k, yaml.ScalarNode):
            errors.add(k, key, f"a name must be plain text, not a {_kind(k)}")
            continue
        name = str(k.value)
        path = f"{key}.{name}"
        if not name.strip():
            errors.add(k, path, "empty name")
            continue
        if "${" in name:
            errors.add(k, path, KEY_REFERENCE)
            continue
        if "=" in name or any(c.isspace() for c in name):
            errors.add(k, path, f"bad name {name!r} (no '=' or spaces)")
            continue
        if name in out:
            errors.add(k, path, "duplicate name (each may appear once)")
            continue
        val = string(v, path, errors, run_time)
        if val is _MISSING:
            out[name] = ""  # keep the name so a later duplicate is still caught
            continue
        if not empty_ok and not val.strip():
            errors.add(v, path, f"empty {what}")
        out[name] = val
    return out


def str_map(node: yaml.Node, key: str, errors: Errors) -> Any:
    """A mapping of names to strings (environment variables, build args): names unique and non-empty."""
    return _map_of_strings(node, key, errors, "value", empty_ok=True)


def run_time_str_map(node: yaml.Node, key: str, errors: Errors) -> Any:
    """A command gate's `env:`: like str_map, with the variables snail sets when the gate runs expanded then."""
    return _map_of_strings(node, key, errors, "value", empty_ok=True, run_time=True)


def secret_map(node: yaml.Node, key: str, errors: Errors) -> Any:
    """A mapping of names to secret references (valueFrom): names unique, references non-empty."""
    return _map_of_strings(node, key, errors, "valueFrom (an SSM parameter or Secrets Manager ARN)", empty_ok=False)


@dataclass
class Mapping:
    """A mapping with known keys; unknown keys are mistakes (with a did-you-mean)."""

    fields: dict[str, Field]
    extra: Callable[[dict[str, Any]], list[tuple[str, str]]] | None = None
    allow_unknown: bool = False
    nodes: dict[str, yaml.Node] = field(default_factory=dict)
    section: type | None = None  # the dataclass these keys are the fields of (config/section.py builds it)

    def __call__(self, node: yaml.Node, key: str, errors: Errors) -> Any:
        if not isinstance(node, yaml.MappingNode):
            errors.add(node, key, f"expected a mapping, got a {_kind(node)}")
            return _MISSING
        out: dict[str, Any] = {}
        seen: dict[str, yaml.Node] = {}
        refused: set[str] = set()
        for knode, vnode in node.value:
            if not isinstance(knode, yaml.ScalarNode):
                errors.add(knode, key, f"a key must be a plain name, not a {_kind(knode)}")
                continue
            name = str(knode.value)
            path = f"{key}.{name}" if key else name
            if "${" in name:
                errors.add(knode, path, KEY_REFERENCE)
                continue
            if name in seen:
                errors.add(knode, path, "duplicate key")
                continue
            seen[name] = knode
            spec = self.fields.get(name)
            if spec is None:
                if self.allow_unknown:
                    out[name] = anything(vnode, path, errors)
                    continue
                hint = _did_you_mean(name, self.fields)
                errors.add(knode, path, f"unknown key{hint}; known keys: {', '.join(sorted(self.fields))}")
                continue
            v = spec.check(vnode, path, errors)
            if spec.required and isinstance(v, str) and not v.strip():
                errors.add(vnode, path, "is required and is empty" + _from_env(vnode))
                v = _MISSING
            if v is not _MISSING:
                out[name] = v
            else:
                refused.add(name)
        for name, spec in self.fields.items():
            if name not in seen:
                if spec.required:
                    errors.add(node, f"{key}.{name}" if key else name, "is required")
                else:
                    out.setdefault(name, spec.default)
        if self.extra:
            # a key given but refused counts as given: its own error is the one to read, not a follow-on
            for k, msg in self.extra({**out, **{n: _MISSING for n in refused}}):
                errors.add(seen.get(k.split(".")[-1], node), f"{key}.{k}" if key else k, msg)
        return out


def _did_you_mean(name: str, known: dict[str, Any]) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def dynamodb_needs_table(d: dict[str, Any]) -> list[tuple[str, str]]:
    """A `state:` section's cross-key rule (pipeline.yaml and fleet.yaml alike): the dynamodb backend needs a
    table."""
    return (
        [("table", "the dynamodb backend needs `table`")]
        if d.get("backend") == "dynamodb" and not d.get("table")
        else []
    )
