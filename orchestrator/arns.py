"""The shared vocabulary for ARNs: the short names the ECS console shows (pure functions, no AWS import)."""

from __future__ import annotations


def short_name(arn: str) -> str:
    """'arn:aws:ecs:…:task-definition/fam:3' -> 'fam:3' (the last path segment of any ARN)."""
    return arn.rsplit("/", 1)[-1]


def family_of(arn: str) -> str:
    """'arn:…:task-definition/fam:3' or 'fam:3' -> 'fam'."""
    return short_name(arn).split(":", 1)[0]


def revision_of(arn: str) -> int | None:
    """'arn:…:task-definition/fam:3' -> 3."""
    tail = short_name(arn).split(":")
    return int(tail[1]) if len(tail) > 1 and tail[1].isdigit() else None
