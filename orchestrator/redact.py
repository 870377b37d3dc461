"""Secrets never reach logs, plans, diffs or the trail: one place decides what to mask."""

from __future__ import annotations

import re
from typing import Any

MASK = "****"
_SECRET_NAME = re.compile(
    r"(pass(word)?|secret|token|credential|api[_-]?key|private[_-]?key|access[_-]?key|auth)", re.I
)
_SECRET_VALUE = re.compile(
    r"(AKIA[0-9A-Z]{16}|ASIA[0-9A-Z]{16}|-----BEGIN [A-Z ]*PRIVATE KEY-----|ghp_[A-Za-z0-9]{20,}|xox[bp]-)"
)


def looks_secret(name: str, value: Any = "") -> bool:
    """True when an environment variable's name or value looks like a credential."""
    return bool(_SECRET_NAME.search(name or "")) or bool(_SECRET_VALUE.search(str(value or "")))


def mask_taskdef(definition: dict[str, Any]) -> dict[str, Any]:
    """A copy of a task definition with credential-like environment values masked."""
    out = dict(definition)
    cds = []
    for cd in definition.get("containerDefinitions", []):
        cd = dict(cd)
        if "environment" in cd:
            cd["environment"] = [
                {
                    "name": e.get("name"),
                    "value": MASK if looks_secret(e.get("name", ""), e.get("value")) else e.get("value"),
                }
                for e in cd["environment"]
            ]
        if "repositoryCredentials" in cd:
            cd["repositoryCredentials"] = {"credentialsParameter": MASK}
        cds.append(cd)
    if cds:
        out["containerDefinitions"] = cds
    return out


def mask_text(text: str, secrets: list[str] | tuple[str, ...] = ()) -> str:
    """Replace known secret values and credential-looking tokens in free text."""
    for s in secrets:
        if s and len(s) >= 4:
            text = text.replace(s, MASK)
    return _SECRET_VALUE.sub(MASK, text)
