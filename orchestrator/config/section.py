"""A config section is its frozen dataclass: each field carries its YAML checker, the class states the default.

    region: str = key(s.region, "us-east-1")

`checker(cls)` derives the node-by-node check (file:line errors, unknown keys with a did-you-mean) from the
fields, and `build(cls, raw)` walks the same fields to make the value from the checked data: a key the YAML left
out keeps the class's default. A new key is one line, on the class."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from orchestrator.config import schema as s

T = TypeVar("T")


def key(
    check: s.Checker, default: Any = dataclasses.MISSING, *, relative: bool = False, name: str | None = None
) -> Any:
    """A field read from the YAML key of its name (or `name`, where the YAML's is not a Python name such as
    `from`) through `check`; no default: the key is required.

    A dict default is copied for each value; `relative` makes a path relative to the file's folder."""
    meta = {"check": check, "relative": relative, "key": name}
    if isinstance(default, dict):
        return dataclasses.field(default_factory=lambda: dict(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _read(cls: type) -> list[dataclasses.Field[Any]]:
    """The fields of `cls` that are read from the YAML."""
    return [f for f in dataclasses.fields(cls) if "check" in f.metadata]


def _key(f: dataclasses.Field[Any]) -> str:
    """The YAML key field `f` is read from."""
    return f.metadata["key"] or f.name


def checker(
    cls: type,
    also: dict[str, s.Field] | None = None,
) -> s.Mapping:
    """The mapping check of section `cls`: one key per field (required when the class has no default; a key left
    out is None in the checked data), `also` for keys the loader reads itself, and the class's `problems` (if
    it has one) for the checks across its keys."""
    fields: dict[str, s.Field] = {}
    for f in _read(cls):
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        fields[_key(f)] = s.Field(f.metadata["check"], required=required)
    extra: Callable[[dict[str, Any]], list[tuple[str, str]]] | None = getattr(cls, "problems", None)
    return s.Mapping({**fields, **(also or {})}, extra=extra, section=cls)


def build(cls: type[T], raw: dict[str, Any], root: Path | None = None, **given: Any) -> T:
    """The value of section `cls` from checked data: each field from its key (a list becomes a tuple, a mapping a
    copy, a nested section is built the same way), a key left out keeps the class's default, and `given`
    settles the fields the loader works out itself (from other sections)."""
    kwargs: dict[str, Any] = dict(given)
    for f in _read(cls):
        if f.name not in given:
            value = _value(f, raw.get(_key(f)), root)
            if value is not None:
                kwargs[f.name] = value
    return cls(**kwargs)


def _value(f: dataclasses.Field[Any], v: Any, root: Path | None) -> Any:
    """One field's value from its checked data (None: keep the class's default)."""
    if v is None or (isinstance(v, (list, dict)) and not v):  # left out, or empty: the class's default
        return None
    check = f.metadata["check"]
    if isinstance(check, s.Mapping) and check.section is not None:
        return build(check.section, v, root)
    if isinstance(v, list):
        return tuple(v)
    if isinstance(v, dict):
        return dict(v)
    if f.metadata["relative"] and root is not None:
        return Path(v) if Path(v).is_absolute() else root / v
    return v
