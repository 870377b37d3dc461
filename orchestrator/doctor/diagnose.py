"""The diagnosis bundle a rollback carries: ECS events, stopped tasks, target health, failing checks — in plain words."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from orchestrator.aws.errors import aws_call
from orchestrator.aws.session import AwsContext
from orchestrator.config.model import Pipeline
from orchestrator.doctor.context import DoctorContext
from orchestrator.doctor.model import Check
from orchestrator.errors import SnailError
from orchestrator.redact import mask_text

PULL_ERROR = "CannotPullContainerError"
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
            if t.pull_failed:
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
                n = sum(1 for x in self.stopped_tasks if x.stopped_reason == t.stopped_reason and not x.pull_failed)
                parts.append(line + (f" ({n} tasks)" if n > 1 else ""))
        for th in self.target_health:
            parts.append(
                f"target {th['target']} is {th['state']}: {th.get('reason', '')} ({th.get('description', '')})".replace(
                    ": ()", ""
                )
            )
        for c in self.failed_checks:
            if c.id not in used:
                parts.append(f"doctor {c.id}: {c.cause}")
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
        return mask_text("; ".join(parts))

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
    return arn == revision or arn.rsplit("/", 1)[-1] == revision.rsplit("/", 1)[-1]


def _tasks(ctx: DoctorContext) -> list[dict[str, Any]]:
    """STOPPED and RUNNING tasks of the service: two lists, then describes batched 100 at a time."""
    ecs = ctx.client("ecs")
    arns: list[str] = []
    for status in ("STOPPED", "RUNNING"):
        with aws_call("ecs:ListTasks"):
            for page in ecs.get_paginator("list_tasks").paginate(
                cluster=ctx.spec.cluster, serviceName=ctx.spec.name, desiredStatus=status
            ):
                arns.extend(a for a in page.get("taskArns", []) if a not in arns)
    out: list[dict[str, Any]] = []
    for i in range(0, len(arns), 100):
        with aws_call("ecs:DescribeTasks"):
            out.extend(ecs.describe_tasks(cluster=ctx.spec.cluster, tasks=arns[i : i + 100]).get("tasks", []))
    return out


def diagnose(
    pipeline: Pipeline, aws: AwsContext, since: datetime | None = None, revision_arn: str | None = None
) -> Diagnosis:
    """Gather why a rollout of `revision_arn` failed; never raises for AWS errors (they are listed instead)."""
    from orchestrator.doctor import run_checks_on

    ctx = DoctorContext(pipeline, aws)
    errors: list[str] = []
    cutoff = _utc(since)
    events: list[dict[str, str]] = []
    stopped: list[StoppedTask] = []
    running = 0
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
                    continue
                if t.get("lastStatus") == "STOPPED" or t.get("desiredStatus") == "STOPPED":
                    stopped.append(
                        StoppedTask(
                            task_id=t.get("taskArn", "").rsplit("/", 1)[-1],
                            revision=t.get("taskDefinitionArn", "").rsplit("/", 1)[-1],
                            stopped_reason=mask_text(str(t.get("stoppedReason", ""))),
                            stop_code=str(t.get("stopCode", "")),
                            containers=tuple(
                                ContainerExit(
                                    str(c.get("name", "")), c.get("exitCode"), mask_text(str(c.get("reason", "")))
                                )
                                for c in t.get("containers", [])
                            ),
                        )
                    )
                else:
                    running += 1
    except SnailError as exc:
        errors.append(str(exc))
    if pipeline.service.load_balancer is not None:
        try:
            with aws_call("elasticloadbalancing:DescribeTargetHealth"):
                out = ctx.client("elbv2").describe_target_health(
                    TargetGroupArn=pipeline.service.load_balancer.target_group_arn
                )
            for d in out.get("TargetHealthDescriptions", []):
                th = d.get("TargetHealth", {})
                if th.get("State") != "healthy":
                    tgt = d.get("Target", {})
                    health.append(
                        {
                            "target": f"{tgt.get('Id')}:{tgt.get('Port')}",
                            "state": str(th.get("State")),
                            "reason": str(th.get("Reason", "")),
                            "description": str(th.get("Description", "")),
                        }
                    )
        except SnailError as exc:
            errors.append(str(exc))
    report = run_checks_on(ctx)
    return Diagnosis(
        service=pipeline.service.name,
        revision=revision_arn,
        since=cutoff.isoformat() if cutoff else None,
        events=tuple(events),
        stopped_tasks=tuple(stopped),
        running_tasks=running,
        target_health=tuple(health),
        failed_checks=report.failed,
        errors=tuple(errors),
    )
