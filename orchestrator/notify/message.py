"""What a notification says: the service, what happened, the diagnosis and where the trail is; always masked."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

from orchestrator.config.notify import EVENT_OF_OUTCOME

_TITLES = {
    "failed": "FAILED",
    "rolled_back": "ROLLED BACK",
    "rollback_failed": "ROLLBACK FAILED: a human is needed",
    "needs_approval": "waiting for approval",
    "succeeded": "succeeded",
}


def _mask_text(text: str) -> str:
    from orchestrator import redact

    return redact.mask_text(text)


def _mask_data(data: Any) -> Any:
    from orchestrator import redact

    mask = getattr(redact, "mask_data", None)
    if mask is not None:
        return mask(data)
    if isinstance(data, dict):
        return {k: _mask_data(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_mask_data(v) for v in data]
    return redact.mask_text(data) if isinstance(data, str) else data


def ci_run_url(env: dict[str, str] | None = None) -> str | None:
    """The CI job this command runs in (GitHub Actions; GitLab CI), where the trail artifact is uploaded."""
    env = dict(os.environ) if env is None else env
    if env.get("GITHUB_RUN_ID") and env.get("GITHUB_REPOSITORY"):
        server = env.get("GITHUB_SERVER_URL", "https://github.com")
        return f"{server}/{env['GITHUB_REPOSITORY']}/actions/runs/{env['GITHUB_RUN_ID']}"
    return env.get("CI_JOB_URL") or None


@dataclass(frozen=True)
class Notice:
    """One command's ending, as every notification target receives it."""

    event: str | None
    service: str
    cluster: str
    region: str
    command: str
    outcome: str
    exit_code: int
    message: str
    diagnosis: str | None
    run_id: str | None
    trail: str | None
    link: str | None
    at: str

    @classmethod
    def build(
        cls,
        pipeline: Any,
        *,
        command: str,
        status: str,
        exit_code: int,
        message: str,
        diagnosis: str | None,
        run_id: str | None,
        env: dict[str, str] | None = None,
    ) -> Notice:
        """A masked notice for one outcome; `event` is None when nothing should be sent (a no-op, a dry run)."""
        env = dict(os.environ) if env is None else env
        link = env.get("SNAIL_TRAIL_URL", "").replace("{run_id}", run_id or "") or ci_run_url(env)
        return cls(
            event=EVENT_OF_OUTCOME.get(status),
            service=pipeline.service.name,
            cluster=pipeline.service.cluster,
            region=pipeline.service.region,
            command=command,
            outcome=status,
            exit_code=int(exit_code),
            message=_mask_text(message or ""),
            diagnosis=_mask_text(diagnosis) if diagnosis else None,
            run_id=run_id,
            trail=f"snail trail --run {run_id}" if run_id else None,
            link=link or None,
            at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        )

    @property
    def title(self) -> str:
        """`🐌 shine-api-gateway: ROLLED BACK (snail run, exit 1)`."""
        what = _TITLES.get(self.event or "", self.outcome)
        return f"🐌 {self.service}: {what} (snail {self.command}, exit {self.exit_code})"

    def text(self) -> str:
        """Plain text for Slack and SNS: title, message, diagnosis, trail and link, masked."""
        lines = [self.title, self.message]
        if self.diagnosis:
            lines.append(f"diagnosis: {self.diagnosis}")
        if self.trail:
            lines.append(f"trail: `{self.trail}`" + (f" — {self.link}" if self.link else ""))
        elif self.link:
            lines.append(f"trail: {self.link}")
        return _mask_text("\n".join(lines))

    def to_dict(self) -> dict[str, Any]:
        """The webhook's JSON body (every string masked)."""
        data = asdict(self)
        data["title"] = self.title
        return dict(_mask_data(data))
