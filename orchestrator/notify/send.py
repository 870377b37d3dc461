"""Sending notifications: bounded in time, retried with tenacity, never raising; each result is recorded.

A notification must never block or fail a rollout: every target gets at most `timeout` per attempt and three
attempts within twice that budget, and any failure becomes a `notify_failed` trail event and a log line."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

import structlog
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
)

from orchestrator.config.notify import NotifySpec
from orchestrator.notify.message import Notice

log = structlog.get_logger(__name__)
ATTEMPTS = 3
SIGNATURE_HEADER = "X-Snail-Signature"


class SendFailed(Exception):
    """One attempt failed; `retry` says whether another attempt can help (5xx, 429, network) or not (4xx)."""

    def __init__(self, message: str, retry: bool = True) -> None:
        super().__init__(message)
        self.retry = retry


def sign(secret: str, body: bytes) -> str:
    """The webhook signature header's value: `sha256=` + HMAC-SHA256(secret, body) in hex (GitHub's scheme)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http(s) checked by schema
            return int(response.status)
    except urllib.error.HTTPError as exc:
        retry = exc.code >= 500 or exc.code == 429
        raise SendFailed(f"HTTP {exc.code} {exc.reason}", retry=retry) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SendFailed(f"cannot reach {urllib.parse.urlparse(url).hostname}: {reason}") from None


def _slack(spec: NotifySpec, notice: Notice, aws: Any) -> str:
    body = json.dumps({"text": notice.text()}).encode()
    status = _post(spec.target, body, {"Content-Type": "application/json", **spec.headers}, spec.timeout)
    return f"HTTP {status}"


def _webhook(spec: NotifySpec, notice: Notice, aws: Any) -> str:
    body = json.dumps(notice.to_dict(), sort_keys=True).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "snail-trail",
        "X-Snail-Event": notice.event or notice.outcome,
        **spec.headers,
    }
    if spec.secret:
        headers[SIGNATURE_HEADER] = sign(spec.secret, body)
    return f"HTTP {_post(spec.target, body, headers, spec.timeout)}"


def _sns(spec: NotifySpec, notice: Notice, aws: Any) -> str:
    if aws is None:
        raise SendFailed("no AWS access for SNS", retry=False)
    from orchestrator.aws.sns import SnsClient
    from orchestrator.errors import AwsError

    region = spec.target.split(":")[3] or aws.region
    # SNS subjects are ASCII, one line, under 100 characters.
    subject = f"snail: {notice.service} {notice.event or notice.outcome} (exit {notice.exit_code})"
    try:
        message_id = SnsClient(aws, region, spec.timeout).publish(
            spec.target,
            subject.encode("ascii", "replace").decode()[:99],
            notice.text(),
            {"event": notice.event or notice.outcome},
        )
    except AwsError as exc:
        throttled = exc.code in ("Throttling", "ThrottlingException", "InternalError", "ServiceUnavailable")
        raise SendFailed(f"{exc.code}: {exc.detail}", retry=throttled or exc.transient) from None
    return f"message {message_id}"


SENDERS: dict[str, Callable[[NotifySpec, Notice, Any], str]] = {"slack": _slack, "webhook": _webhook, "sns": _sns}


def send(spec: NotifySpec, notice: Notice, aws: Any = None, sleep: Callable[[float], None] = time.sleep) -> str:
    """Send one notice to one target with retries; return what the target answered; raise SendFailed."""
    if not spec.target:
        raise SendFailed("the target is empty (is its ${VARIABLE} set in this environment?)", retry=False)
    retrying = Retrying(
        stop=stop_after_attempt(ATTEMPTS) | stop_after_delay(spec.timeout * 2),
        wait=wait_exponential(multiplier=0.5, max=2.0),
        retry=retry_if_exception(lambda e: isinstance(e, SendFailed) and e.retry),
        sleep=sleep,
        reraise=True,
    )
    try:
        return str(retrying(SENDERS[spec.kind], spec, notice, aws))
    except RetryError as exc:  # pragma: no cover - reraise=True makes tenacity raise the last error itself
        raise SendFailed(str(exc)) from None


def send_all(
    targets: tuple[NotifySpec, ...] | list[NotifySpec],
    notice: Notice,
    aws: Any = None,
    store: Any = None,
    sleep: Callable[[float], None] = time.sleep,
) -> list[dict[str, Any]]:
    """Send `notice` to every target that wants its event; never raises; records `notified`/`notify_failed`."""
    results: list[dict[str, Any]] = []
    if notice.event is None:
        return results
    from orchestrator import redact

    learn = getattr(redact, "learn", None)
    if learn is not None:  # a Slack URL or webhook key is itself a secret: never printed anywhere
        learn([t.target for t in targets if t.kind == "slack"] + [t.secret for t in targets if t.secret])
    for spec in targets:
        if not spec.wants(notice.event):
            continue
        started = time.monotonic()
        try:
            answer = send(spec, notice, aws, sleep=sleep)
            result = {"target": spec.label, "event": notice.event, "ok": True, "answer": answer}
            log.info("notified", target=spec.label, notify_event=notice.event, answer=answer)
        except Exception as exc:  # noqa: BLE001 - a notification never fails the command that sent it
            result = {"target": spec.label, "event": notice.event, "ok": False, "error": redact.mask_text(str(exc))}
            log.warning("notify_failed", target=spec.label, notify_event=notice.event, error=result["error"])
        result["seconds"] = round(time.monotonic() - started, 3)
        results.append(result)
        _record(store, notice, result)
    return results


def _record(store: Any, notice: Notice, result: dict[str, Any]) -> None:
    """A trail event for the notification (when the command had a run to attach it to)."""
    if store is None or not notice.run_id:
        return
    from orchestrator.state.base import TrailEvent

    if result["ok"]:
        kind, message = "notified", f"notified {result['target']}: {notice.event}"
    else:
        kind, message = "notify_failed", f"notification to {result['target']} failed: {result['error']}"
    try:
        store.append_event(
            TrailEvent(
                run_id=notice.run_id,
                service=notice.service,
                at=notice.at,
                kind=kind,
                message=message,
                data=result,
            )
        )
    except Exception as exc:  # noqa: BLE001 - the trail is best effort here; the log line above stands
        log.warning("notify_record_failed", error=str(exc))
