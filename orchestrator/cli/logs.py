"""snail logs: the containers' CloudWatch Logs, found through the awslogs configuration of the task definition."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import click

from orchestrator.cli.app import App, pass_app
from orchestrator.cli.common import complete_phase, complete_run_id
from orchestrator.errors import ExitCode, UsageError

FOLLOW_POLL = 2.0  # seconds between reads with --follow


@dataclass(frozen=True)
class Selection:
    """Which revisions' logs to read, from when, and why (for the header line)."""

    revisions: tuple[str, ...]
    start_ms: int | None
    end_ms: int | None
    what: str


@click.command("logs")
@click.option("--phase", help="the phase's last good revision", shell_complete=complete_phase)
@click.option("--revision", help="a task-definition revision: N, family:N or its ARN")
@click.option("--run", "run_id", help="the revisions a run deployed, during that run", shell_complete=complete_run_id)
@click.option("--since", default=None, help="how far back, e.g. 10m, 1h (default 10m; a run: its start)")
@click.option("-n", "--lines", "limit", type=click.IntRange(min=1), default=200, show_default=True, help="at most")
@click.option("-f", "--follow", is_flag=True, help="keep printing new lines until Ctrl-C")
@pass_app
def command(
    app: App,
    phase: str | None,
    revision: str | None,
    run_id: str | None,
    since: str | None,
    limit: int,
    follow: bool,
) -> int:
    """Print what the service's containers wrote to CloudWatch Logs (the live revision unless told otherwise)."""
    from orchestrator.aws.ecs import EcsClient

    if sum(bool(x) for x in (phase, revision, run_id)) > 1:
        raise UsageError("choose one of --phase, --revision and --run")
    ecs = EcsClient(app.aws())
    sel = _select(app, ecs, phase, revision, run_id, since)
    reader = LogReader(app, ecs, sel)
    lines = reader.read(limit)
    data = [{"at": _iso(line.timestamp), "stream": line.stream, "message": line.message} for line in lines]
    header = f"# {sel.what}: {len(lines)} line(s)" + ("" if lines else f" ({reader.why_empty()})")
    if not follow:
        result: dict[str, Any] = {"selection": sel.what, "lines": data}
        if not lines:
            result["note"] = reader.why_empty()
        app.emit(result, "\n".join([header, *(_fmt(line) for line in lines)]))
        return ExitCode.OK
    click.echo(header, err=True)
    for line in lines:
        click.echo(_fmt(line))
    try:
        while True:
            time.sleep(FOLLOW_POLL)
            for line in reader.read(None, follow=True):
                click.echo(_fmt(line))
    except KeyboardInterrupt:
        return ExitCode.OK


class LogReader:
    """Reads the selected revisions' streams; remembers what it printed so --follow prints only what is new."""

    def __init__(self, app: App, ecs: Any, sel: Selection) -> None:
        from orchestrator.aws.logs import LogsClient

        self.app = app
        self.ecs = ecs
        self.sel = sel
        self.logs = LogsClient(app.aws())
        self.targets = self._targets()
        self._seen: set[tuple[int, str, str]] = set()
        self._last_ms = sel.start_ms

    def _targets(self) -> list[tuple[str, Any]]:
        from orchestrator.aws.logs import awslogs_targets

        out = []
        for rev in self.sel.revisions:
            td, _ = self.ecs.task_definition(rev)
            out += [(td.get("taskDefinitionArn", rev), t) for t in awslogs_targets(td, self.app.aws().region)]
        return out

    def _task_ids(self, revision: str) -> list[str]:
        svc = self.app.pipeline.service
        ids = []
        for status in ("RUNNING", "STOPPED"):
            ids += [t.short_id for t in self.ecs.tasks(svc.cluster, svc.name, status) if t.task_definition == revision]
        return ids

    def read(self, limit: int | None, follow: bool = False) -> list[Any]:
        """New lines of every selected stream since the last read, oldest first (masked, neutralised on print)."""
        from orchestrator.redact import mask_text

        lines = []
        seen_groups: set[tuple[str | None, str, str | None]] = set()
        for revision, target in self.targets:
            streams = [s for s in (target.stream(t) for t in self._task_ids(revision)) if s]
            key = (target.region, target.group, ",".join(streams) or target.stream_family_prefix)
            if key in seen_groups:
                continue
            seen_groups.add(key)
            if streams:
                got = []
                for i in range(0, len(streams), 100):
                    got += self.logs.filter(
                        target.region, target.group, streams=streams[i : i + 100], start_ms=self._last_ms
                    )
            elif target.stream_family_prefix and not follow:
                # the tasks are gone from ECS (it forgets stopped tasks after a while): every task's stream of
                # this container within the time window
                got = self.logs.filter(
                    target.region, target.group, stream_prefix=target.stream_family_prefix, start_ms=self._last_ms
                )
            else:
                got = []
            lines += got
        if self.sel.end_ms is not None and not follow:
            lines = [line for line in lines if line.timestamp <= self.sel.end_ms]
        lines.sort(key=lambda line: line.timestamp)
        fresh = []
        for line in lines:
            k = (line.timestamp, line.stream, line.message)
            if k in self._seen:
                continue
            self._seen.add(k)
            fresh.append(type(line)(line.timestamp, line.stream, mask_text(line.message)))
        if fresh:
            self._last_ms = max(self._last_ms or 0, fresh[-1].timestamp)
        return fresh[-limit:] if limit is not None else fresh

    def why_empty(self) -> str:
        """Why nothing was printed: no awslogs configuration, or nothing written in the window."""
        if not self.targets:
            return "the task definition has no awslogs logConfiguration: its containers' output is not in CloudWatch"
        groups = ", ".join(sorted({t.group for _, t in self.targets}))
        return f"nothing written to {groups} in this window; try --since 1h"


def _select(
    app: App, ecs: Any, phase: str | None, revision: str | None, run_id: str | None, since: str | None
) -> Selection:
    from orchestrator.aws.ecs import family_of, short_name
    from orchestrator.config.schema import parse_duration

    svc = app.pipeline.service
    try:
        window = parse_duration(since) if since else None
    except ValueError:
        raise UsageError(f"--since {since!r}: not a duration (e.g. 30s, 10m, 2h)") from None
    start_ms = int((time.time() - (window if window is not None else 600)) * 1000)
    if run_id:
        run = app.store.get_run(run_id)
        if run is None:
            raise UsageError(f"no run {run_id!r} (see `snail history`)")
        revs: list[str] = []
        for e in app.store.events(svc.name, run.run_id):
            rev = e.data.get("revision")
            if isinstance(rev, str) and rev and rev not in revs and e.kind != "phase_passed":
                revs.append(rev)
        if not revs:
            raise UsageError(f"run {run.run_id} deployed no revision: there are no container logs to show")
        begin = _ms(run.started_at)
        end = _ms(run.finished_at) + 60_000 if run.finished_at else None
        return Selection(
            tuple(revs),
            begin if window is None else start_ms,
            end,
            f"run {run.run_id} ({', '.join(short_name(r) for r in revs)})",
        )
    if phase:
        if phase not in app.pipeline.phase_names():
            raise UsageError(
                f"no phase {phase!r} in {app.pipeline.path.name} (phases: {', '.join(app.pipeline.phase_names())})"
            )
        good = app.store.last_good(svc.name, phase)
        if good is None:
            raise UsageError(f"phase {phase!r} has no good revision yet: name one with --revision N")
        return Selection((good.revision_arn,), start_ms, None, f"phase {phase} ({short_name(good.revision_arn)})")
    live = ecs.require_service(svc.cluster, svc.name).task_definition
    if revision:
        want = revision if ":" in revision else f"{family_of(live)}:{revision}"
        return Selection((want,), start_ms, None, f"revision {short_name(want)}")
    return Selection((live,), start_ms, None, f"live revision {short_name(live)}")


def _ms(iso: str) -> int:
    t = datetime.fromisoformat(iso)
    t = t if t.tzinfo else t.replace(tzinfo=timezone.utc)
    return int(t.timestamp() * 1000)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat(timespec="milliseconds")


def _fmt(line: Any) -> str:
    from orchestrator.trail.escape import neutralise

    t = datetime.fromtimestamp(line.timestamp / 1000, tz=timezone.utc).strftime("%H:%M:%S")
    return f"{t} {line.container}/{line.task_id[:8]}: {neutralise(line.message).rstrip()}"
