"""`notify:` in pipeline.yaml: where to say how a run ended (Slack, SNS, a webhook) and for which outcomes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orchestrator.config import schema as s
from orchestrator.config.section import build, checker, key

EVENTS = ("failed", "rolled_back", "rollback_failed", "needs_approval", "succeeded")
# Nothing for no-ops or successes unless asked: a scheduled run that finds nothing to do stays silent.
DEFAULT_ON = ("failed", "rolled_back", "rollback_failed", "needs_approval")
KINDS = ("slack", "sns", "webhook")

# How a command's outcome maps to a notification event; outcomes not listed never notify (noop, dry_run,
# ok, locked, usage_error: nothing happened, or nothing a human must hear about from this run).
EVENT_OF_OUTCOME = {
    "succeeded": "succeeded",
    "paused": "needs_approval",
    "rolled_back": "rolled_back",
    "rollback_failed": "rollback_failed",
    "human_needed": "rollback_failed",
    "failed": "failed",
    "preflight_failed": "failed",
    "interrupted": "failed",
    "internal_error": "failed",
}


@dataclass(frozen=True)
class NotifySpec:
    """One notification target: kind (slack | sns | webhook), its URL or topic ARN, and the events it wants."""

    kind: str  # the key the target is written under
    target: str
    on: tuple[str, ...] = key(s.list_of(s.one_of(*EVENTS), 1), DEFAULT_ON)
    secret: str | None = key(s.string, None)  # webhook only: HMAC-SHA256 key for the X-Snail-Signature header
    headers: dict[str, str] = key(s.str_map, {})
    timeout: float = key(s.duration, 5.0)
    source: str = ""

    @staticmethod
    def problems(d: dict[str, Any]) -> list[tuple[str, str]]:
        """One target per entry; a secret only for a webhook."""
        given = [k for k in KINDS if d.get(k) is not None]
        if len(given) > 1:
            return [(given[1], f"give exactly one of {', '.join(KINDS)} per entry (got {', '.join(given)})")]
        if not given and all(k in d for k in KINDS):  # a kind that failed its own check is already reported
            return [("slack", f"each entry needs one of {', '.join(KINDS)}")]
        if d.get("secret") and given and given[0] != "webhook":
            return [("secret", "`secret` signs webhook bodies; slack and sns do not use it")]
        return []

    @property
    def label(self) -> str:
        """A name safe to print: the kind and the host or topic, never the URL's path (Slack's secret)."""
        if self.kind == "sns":
            return f"sns {self.target.rsplit(':', 1)[-1]}"
        from urllib.parse import urlparse

        return f"{self.kind} {urlparse(self.target).hostname or '?'}"

    def wants(self, event: str | None) -> bool:
        """True when this target asked for `event`."""
        return event is not None and event in self.on


def schema() -> Any:
    """The YAML checker for the `notify:` list (file:line errors like every other key)."""

    def target_url(node: Any, key: str, errors: Any) -> Any:
        v = s.string(node, key, errors)
        if isinstance(v, str) and v and not v.startswith(("https://", "http://")):
            errors.add(node, key, f"{v[:40]!r} is not an http(s) URL")
            return s._MISSING
        return v

    def topic_arn(node: Any, key: str, errors: Any) -> Any:
        v = s.string(node, key, errors)
        if isinstance(v, str) and v and not (v.startswith("arn:") and v.count(":") >= 5):
            errors.add(node, key, f"{v!r} is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)")
            return s._MISSING
        return v

    kinds = {"slack": s.Field(target_url), "webhook": s.Field(target_url), "sns": s.Field(topic_arn)}
    return s.list_of(checker(NotifySpec, also=kinds))


def specs_from(raw: list[dict[str, Any]] | None, source: str = "") -> tuple[NotifySpec, ...]:
    """Checked `notify:` data -> NotifySpec values (defaults stated once, on the class)."""
    out = []
    for d in raw or ():
        kind = next(k for k in KINDS if d.get(k) is not None)
        target = str(d[kind])
        # an empty secret signs nothing, and a timeout of 0 is the default one
        given: dict[str, Any] = {"secret": d.get("secret") or None, "timeout": d.get("timeout") or NotifySpec.timeout}
        out.append(build(NotifySpec, d, kind=kind, target=target, source=source, **given))
    return tuple(out)
