"""The diagnosis bundle a rollback carries, in plain words: stopped reasons and exit codes of OUR revision's tasks
(never the old ones being drained, nor ours being drained by the rollback), the gate's failing answers, what to
check when the endpoint refuses connections, target health, the last log lines (masked) and doctor's failing
checks. It reads AWS only, so it says the same in the sandbox as on AWS."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

from orchestrator.arns import short_name
from orchestrator.aws.session import AwsContext
from orchestrator.config.model import Pipeline
from orchestrator.doctor.context import DoctorContext
from orchestrator.doctor.model import Check
from orchestrator.errors import SnailError
from orchestrator.redact import mask_text

PULL_ERROR = "CannotPullContainerError"
# Stops ECS (or a person) decided, not failures: a deployment draining old tasks, a scale-in, our own rollback.
DRAIN_PREFIXES = ("Scaling activity initiated", "Service deleted")
# How a refused or dropped connection reads in a gate's evidence (urllib / requests / http.client).
_REFUSED = re.compile(r"Refused|Reset|RemoteDisconnected|Connection aborted|closed connection|EOF", re.I)
LOG_LINES = 20
# Checks whose failure explains why an image cannot be pulled, in the order they are most likely the cause.
PULL_CAUSES = (
    "network.routes",
    "network.public-ip",
    "network.dns",
    "image.current",
    "image.repository",
    "image.execution-role",
    "network.security-groups",
)


@dataclass(frozen=True)
class ContainerExit:
    """One container of a stopped task: how it ended."""

    name: str
    exit_code: int | None
    reason: str


@dataclass(frozen=True)
class StoppedTask:
    """A task that stopped, with ECS's reason and its containers' exit codes."""

    task_id: str
    revision: str
    stopped_reason: str
    stop_code: str
    containers: tuple[ContainerExit, ...] = ()

    @property
    def drained(self) -> bool:
        """Stopped because ECS or a person decided so (a deployment draining it, a scale-in, StopTask)."""
        return self.stop_code == "UserInitiated" or self.stopped_reason.startswith(DRAIN_PREFIXES)

    @property
    def pull_failed(self) -> bool:
        """ECS could not pull the image."""
        return PULL_ERROR in self.stopped_reason or any(PULL_ERROR in c.reason for c in self.containers)

    @property
    def crashed(self) -> ContainerExit | None:
        """The first container that exited with a non-zero code."""
        return next((c for c in self.containers if c.exit_code not in (None, 0)), None)


@dataclass(frozen=True)
class Diagnosis:
    """Why a rollout failed, as far as ECS, the load balancer and doctor can tell."""

    service: str
    revision: str | None
    since: str | None
    events: tuple[dict[str, str], ...] = ()
    stopped_tasks: tuple[StoppedTask, ...] = ()
    running_tasks: int = 0
    target_health: tuple[dict[str, str], ...] = ()
    failed_checks: tuple[Check, ...] = ()
    errors: tuple[str, ...] = field(default_factory=tuple)
    drained_tasks: int = 0  # our revision's tasks stopped by a drain: not evidence of a failure
    failing_answers: tuple[dict[str, Any], ...] = ()  # the gate's responses with a bad status
    refused: str = ""  # the connection problem, when the endpoint refused or dropped connections
    container: str = "CONTAINER"  # service.container: named in the ECS Exec command
    expected_port: int | None = None
    log_lines: tuple[str, ...] = ()

    def summary(self) -> str:
        """What went wrong in plain words, most telling cause first."""
        parts: list[str] = []
        used: set[str] = set()
        pulls = [t for t in self.stopped_tasks if t.pull_failed]
        if pulls:
            cause = next((c for cid in PULL_CAUSES for c in self.failed_checks if c.id == cid), None)
            if cause is not None:
                used.add(cause.id)
                parts.append(f"tasks stop with {PULL_ERROR}: {cause.cause}")
            else:
                parts.append(
                    f"tasks stop with {PULL_ERROR}: {_short(pulls[0].stopped_reason or pulls[0].containers[0].reason)}"
                )
        seen: set[str] = set()
        for t in self.stopped_tasks:
            if t.pull_failed or t.drained:
                continue
            crash = t.crashed
            if crash is not None:
                line = f"container {crash.name} exited with code {crash.exit_code}: {_short(t.stopped_reason or crash.reason)}"
            elif t.stopped_reason:
                line = f"tasks stop: {_short(t.stopped_reason)}"
            else:
                continue
            if line not in seen:
                seen.add(line)
                n = sum(
                    1
                    for x in self.stopped_tasks
                    if x.stopped_reason == t.stopped_reason and not x.pull_failed and not x.drained
                )
                parts.append(line + (f" ({n} tasks)" if n > 1 else ""))
        parts += self._endpoint_parts()
        for th in self.target_health:
            parts.append(
                f"target {th['target']} is {th['state']}: {th.get('reason', '')} ({th.get('description', '')})".replace(
                    ": ()", ""
                )
            )
        for c in self.failed_checks:
            if c.id not in used:
                parts.append(f"doctor {c.id}: {c.cause}")
        if self.log_lines and parts:
            parts.append(f"last log line: {_short(self.log_lines[-1], 240)}")
        if not parts and self.events:
            # ECS is content (tasks run, none stopped) and the infrastructure checks pass: the application's own
            # answers failed the gate, and the gate's evidence says how.
            parts.append(
                f"no task stopped and no doctor check fails (ECS's last word: {self.events[-1]['message']}): "
                "the application's answers failed the gate"
            )
        if not parts:
            parts.append(
                "no stopped tasks, no unhealthy targets and no failing doctor checks: the gate's own evidence "
                "is all there is"
            )
        if self.log_lines and not any(p.startswith("last log line") for p in parts):
            parts.append(f"last log line: {_short(self.log_lines[-1], 240)}")
        return mask_text("; ".join(parts))

    def _endpoint_parts(self) -> list[str]:
        """What the gate's answers say: a refused endpoint (and the port the app does listen on), bad statuses."""
        parts: list[str] = []
        port = self.expected_port
        if self.refused:
            parts.append(
                f"the endpoint refuses connections on port {port} ({self.refused}): the app may listen on another "
                f"port; check its startup lines (`snail logs`), portMappings.containerPort ({port}) and the app's "
                f"PORT setting; with ECS Exec: `aws ecs execute-command --task TASK --container {self.container} "
                "--interactive --command 'cat /proc/net/tcp'` lists its listening ports"
            )
        for answer in self.failing_answers[:1]:
            body = _short(str(answer.get("body") or ""), 160)
            parts.append(
                f"the application answers HTTP {answer.get('status')} on {answer.get('path') or '/'}"
                + (f": {body}" if body else "")
            )
        return parts

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the trail and `--output json`."""
        d = asdict(self)
        d["summary"] = self.summary()
        return d


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _utc(t: Any) -> datetime | None:
    if not isinstance(t, datetime):
        return None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def _same_revision(arn: str, revision: str) -> bool:
    return arn == revision or short_name(arn) == short_name(revision)


def _tasks(ctx: DoctorContext) -> list[dict[str, Any]]:
    """STOPPED and RUNNING tasks of the service: two lists, then describes batched 100 at a time."""
    return ctx.ecs().task_records(ctx.spec.cluster, ctx.spec.name, "STOPPED", "RUNNING")


def diagnose(
    pipeline: Pipeline,
    aws: AwsContext,
    since: datetime | None = None,
    revision_arn: str | None = None,
    cause: Any = None,
) -> Diagnosis:
    """Gather why a rollout of `revision_arn` failed; never raises for AWS errors (they are listed instead).

    `cause` is the failing gate's Verdict (or the exception): its answers say whether the endpoint refused
    connections or answered a bad status. It reads AWS only (the same on AWS as in the sandbox): which port the
    app does listen on is the pre-push probe's to say."""
    from orchestrator.doctor.checks import run_checks_on
    from orchestrator.doctor.preflight import lookup

    ctx = DoctorContext(pipeline, aws, trust_preflight=lookup)  # a valid preflight pass vouches for the network
    errors: list[str] = []
    cutoff = _utc(since)
    events: list[dict[str, str]] = []
    stopped: list[StoppedTask] = []
    running_ids: list[str] = []
    health: list[dict[str, str]] = []
    try:
        svc = ctx.service() or {}
        for e in svc.get("events", []):
            at = _utc(e.get("createdAt"))
            if cutoff is None or (at is not None and at >= cutoff):
                events.append({"at": at.isoformat() if at else "", "message": mask_text(str(e.get("message", "")))})
        events.sort(key=lambda e: e["at"])  # ECS lists newest first
        if svc:
            for t in _tasks(ctx):
                if revision_arn and not _same_revision(t.get("taskDefinitionArn", ""), revision_arn):
                    continue  # another revision's tasks (the old ones being drained) are not this rollout's
                if t.get("lastStatus") == "STOPPED" or t.get("desiredStatus") == "STOPPED":
                    stopped_at = _utc(t.get("stoppedAt"))
                    if cutoff is not None and stopped_at is not None and stopped_at < cutoff:
                        continue  # stopped before this deployment
                    stopped.append(_stopped_task(t))
                else:
                    running_ids.append(t.get("taskArn", "").rsplit("/", 1)[-1])
    except SnailError as exc:
        errors.append(str(exc))
    if pipeline.service.load_balancer is not None:
        try:
            for target in ctx.elbv2().target_health(pipeline.service.load_balancer.target_group_arn):
                if not target.is_healthy:
                    health.append(
                        {
                            "target": f"{target.id}:{target.port}",
                            "state": target.state,
                            "reason": target.reason or "",
                            "description": target.description or "",
                        }
                    )
        except SnailError as exc:
            errors.append(str(exc))
    failing_answers, refused = _answers(cause)
    crashed = [t.task_id for t in stopped if not t.drained and not t.pull_failed]
    log_lines = _log_lines(aws, revision_arn, crashed or running_ids, errors) if revision_arn else []
    report = run_checks_on(ctx)
    return Diagnosis(
        service=pipeline.service.name,
        revision=revision_arn,
        since=cutoff.isoformat() if cutoff else None,
        events=tuple(events),
        stopped_tasks=tuple(stopped),
        running_tasks=len(running_ids),
        target_health=tuple(health),
        failed_checks=report.failed,
        errors=tuple(errors),
        drained_tasks=sum(1 for t in stopped if t.drained),
        failing_answers=tuple(failing_answers),
        refused=refused,
        container=pipeline.service.container,
        expected_port=pipeline.service.port,
        log_lines=tuple(log_lines),
    )


def _stopped_task(t: dict[str, Any]) -> StoppedTask:
    return StoppedTask(
        task_id=t.get("taskArn", "").rsplit("/", 1)[-1],
        revision=t.get("taskDefinitionArn", "").rsplit("/", 1)[-1],
        stopped_reason=mask_text(str(t.get("stoppedReason", ""))),
        stop_code=str(t.get("stopCode", "")),
        containers=tuple(
            ContainerExit(str(c.get("name", "")), c.get("exitCode"), mask_text(str(c.get("reason", ""))))
            for c in t.get("containers", [])
        ),
    )


def _answers(cause: Any) -> tuple[list[dict[str, Any]], str]:
    """From a gate's verdict (or an exception carrying one): the bad-status answers, and the connection problem
    when the endpoint refused or dropped connections."""
    verdict = getattr(cause, "verdict", None) or cause
    evidence = getattr(verdict, "evidence", None)
    responses = evidence.get("responses") if isinstance(evidence, dict) else None
    failing: list[dict[str, Any]] = []
    refused = ""
    for r in responses if isinstance(responses, list) else []:
        if not isinstance(r, dict):
            continue
        status = r.get("status")
        problems = [str(p) for p in r.get("problems") or []]
        if status is None:
            hit = next((p for p in problems if _REFUSED.search(p)), None)
            if hit and not refused:
                refused = _short(hit, 120)
        elif problems:
            url = str(r.get("url") or "")
            path = urlsplit(url).path or "/"
            failing.append({"status": status, "url": url, "path": path, "body": r.get("body") or ""})
    if not refused and not responses:
        text = str(getattr(verdict, "summary", "") or cause or "")
        m = _REFUSED.search(text)
        if m:
            refused = _short(text, 120)
    return failing, refused


def _log_lines(aws: AwsContext, revision_arn: str, task_ids: list[str], errors: list[str]) -> list[str]:
    """The last lines the tasks wrote to CloudWatch Logs (masked), through the revision's awslogs settings."""
    from orchestrator.aws.logs import last_log_lines

    if not task_ids:
        return []
    try:
        from orchestrator.aws.ecs import EcsClient

        td = EcsClient(aws).definition(revision_arn)
        return last_log_lines(aws, td, task_ids[:5], LOG_LINES)
    except SnailError as exc:
        errors.append(str(exc))
        return []


def revision_log_lines(aws: AwsContext, cluster: str, service: str, revision_arn: str, n: int = LOG_LINES) -> list[str]:
    """The last `n` log lines (masked) of a revision's tasks in a service: the ones that failed first, else the
    running ones. For a failed gate's evidence; [] when nothing can be read (never raises)."""
    from orchestrator.aws.ecs import EcsClient
    from orchestrator.aws.logs import last_log_lines

    try:
        ecs = EcsClient(aws)
        seen: dict[str, Any] = {}
        for status in ("STOPPED", "RUNNING"):
            for t in ecs.tasks(cluster, service, status):
                if _same_revision(t.task_definition, revision_arn):
                    seen.setdefault(t.arn, t)
        stopped = [t for t in seen.values() if "STOPPED" in (t.last_status, t.desired_status)]
        failed = [t.short_id for t in stopped if not t.stopped_reason.startswith(DRAIN_PREFIXES)]
        ids = failed or [t.short_id for t in seen.values() if t not in stopped]
        if not ids:
            return []
        td, _ = ecs.task_definition(revision_arn)
        return last_log_lines(aws, td, ids[:5], n)
    except Exception:  # noqa: BLE001 - evidence is best effort
        return []
