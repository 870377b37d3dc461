"""CloudWatch Logs: where a task's containers write (the awslogs driver's group, region and stream prefix), reading
those streams, and writing them (the sandbox ships its containers' output with the same names).

ECS names an awslogs stream `<awslogs-stream-prefix>/<container name>/<task id>`; a container without a prefix
gets a stream named by its Docker container id, which cannot be found from ECS, so such containers are skipped
with a note."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

from orchestrator.arns import short_name
from orchestrator.aws.errors import aws_call
from orchestrator.aws.session import AwsContext
from orchestrator.errors import NotFound


@dataclass(frozen=True)
class AwsLogsTarget:
    """Where one container's output goes with the awslogs driver."""

    container: str
    group: str
    region: str | None
    stream_prefix: str | None

    def stream(self, task_id: str) -> str | None:
        """The stream of this container in one task (None without a stream prefix: ECS names it by Docker id)."""
        if not self.stream_prefix:
            return None
        return f"{self.stream_prefix}/{self.container}/{task_id}"

    @property
    def stream_family_prefix(self) -> str | None:
        """The prefix shared by this container's streams in every task."""
        return f"{self.stream_prefix}/{self.container}/" if self.stream_prefix else None


@dataclass(frozen=True)
class LogLine:
    """One log event: when, which stream, what."""

    timestamp: int  # milliseconds since the epoch
    stream: str
    message: str

    @property
    def task_id(self) -> str:
        """The task id at the end of an ECS awslogs stream name."""
        return short_name(self.stream)

    @property
    def container(self) -> str:
        """The container name in the middle of an ECS awslogs stream name."""
        parts = self.stream.split("/")
        return parts[-2] if len(parts) >= 3 else ""


def awslogs_targets(task_definition: dict[str, Any], default_region: str | None = None) -> list[AwsLogsTarget]:
    """The awslogs configuration of every container of a task definition that has one."""
    out = []
    for cd in task_definition.get("containerDefinitions", []):
        lc = cd.get("logConfiguration") or {}
        opts = lc.get("options") or {}
        if lc.get("logDriver") != "awslogs" or not opts.get("awslogs-group"):
            continue
        out.append(
            AwsLogsTarget(
                container=str(cd.get("name", "")),
                group=str(opts["awslogs-group"]),
                region=opts.get("awslogs-region") or default_region,
                stream_prefix=opts.get("awslogs-stream-prefix") or None,
            )
        )
    return out


def task_id_of(task_arn: str) -> str:
    """arn:aws:ecs:…:task/cluster/0123abcd -> 0123abcd (a bare id is returned as is)."""
    return short_name(task_arn)


class LogsClient:
    """The CloudWatch Logs adapter: one boto3 client per region, ClientError turned into our errors."""

    def __init__(self, aws: AwsContext) -> None:
        self.aws = aws
        self._clients: dict[str, Any] = {}

    def client(self, region: str | None) -> Any:
        """The logs client for a region (the awslogs region may differ from the service's)."""
        region = region or self.aws.region
        if region == self.aws.region:
            return self.aws.client("logs")
        if region not in self._clients:
            from botocore.config import Config

            from orchestrator.aws.session import RETRY_CONFIG

            cfg = Config(
                retries=cast(Any, dict(RETRY_CONFIG)),
                connect_timeout=5,
                read_timeout=30,
                user_agent_extra="snail-trail",
            )
            self._clients[region] = self.aws.session().client(
                "logs", region_name=region, endpoint_url=self.aws.endpoint_url, config=cfg
            )
        return self._clients[region]

    # ------------------------------------------------------------------------------------------ reading

    def group_exists(self, name: str, region: str | None = None) -> bool:
        """True when the log group exists (exact name: DescribeLogGroups matches by prefix)."""
        with aws_call("logs:DescribeLogGroups"):
            pages = self.client(region).get_paginator("describe_log_groups").paginate(logGroupNamePrefix=name)
            return any(g.get("logGroupName") == name for page in pages for g in page.get("logGroups", []))

    def tail(self, region: str | None, group: str, stream: str, n: int = 20) -> list[LogLine]:
        """The last `n` events of one stream, oldest first ([] when the stream does not exist yet)."""
        logs = self.client(region)
        try:
            with aws_call("logs:GetLogEvents"):
                out = logs.get_log_events(logGroupName=group, logStreamName=stream, limit=n, startFromHead=False)
        except NotFound:
            return []
        return [LogLine(int(e.get("timestamp", 0)), stream, str(e.get("message", ""))) for e in out.get("events", [])]

    def filter(
        self,
        region: str | None,
        group: str,
        streams: list[str] | None = None,
        stream_prefix: str | None = None,
        start_ms: int | None = None,
        limit: int | None = None,
    ) -> list[LogLine]:
        """Events of a group since `start_ms`, by stream names or a stream-name prefix, oldest first."""
        logs = self.client(region)
        kwargs: dict[str, Any] = {"logGroupName": group}
        if streams:
            kwargs["logStreamNames"] = streams[:100]  # the API takes at most 100 names
        elif stream_prefix:
            kwargs["logStreamNamePrefix"] = stream_prefix
        if start_ms is not None:
            kwargs["startTime"] = int(start_ms)
        lines: list[LogLine] = []
        try:
            while True:
                with aws_call("logs:FilterLogEvents"):
                    out = logs.filter_log_events(**kwargs)
                for e in out.get("events", []):
                    lines.append(
                        LogLine(int(e.get("timestamp", 0)), str(e.get("logStreamName", "")), str(e.get("message", "")))
                    )
                token = out.get("nextToken")
                if not token or (limit is not None and len(lines) >= limit) or not out.get("events"):
                    break
                kwargs["nextToken"] = token
        except NotFound:
            return []
        lines.sort(key=lambda line: line.timestamp)
        return lines[-limit:] if limit is not None else lines


def now_ms() -> int:
    """The wall clock in milliseconds (CloudWatch timestamps)."""
    return int(time.time() * 1000)


def last_log_lines(aws: AwsContext, taskdef: dict[str, Any], task_ids: Iterable[str], n: int = 20) -> list[str]:
    """The last `n` lines the given tasks' containers wrote to CloudWatch Logs, oldest first, masked, each line
    prefixed with `container/task:` when there is more than one stream. [] when the task definition has no
    awslogs configuration or nothing was written; never raises for AWS errors (the lines are evidence)."""
    from orchestrator.redact import mask_text

    client = LogsClient(aws)
    lines: list[LogLine] = []
    ids = [task_id_of(t) for t in task_ids]
    for target in awslogs_targets(taskdef, aws.region):
        for tid in ids:
            stream = target.stream(tid)
            if stream is None:
                continue
            try:
                lines += client.tail(target.region, target.group, stream, n)
            except Exception:  # noqa: BLE001 - no logs is not a reason to fail a diagnosis
                continue
    lines.sort(key=lambda line: line.timestamp)
    lines = lines[-n:]
    several = len({line.stream for line in lines}) > 1
    return [
        mask_text(f"{line.container}/{line.task_id[:8]}: {line.message}" if several else line.message) for line in lines
    ]
