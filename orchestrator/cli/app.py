"""The typed application context every command gets on ctx.obj: options, pipeline, AWS, state, progress."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import click

from orchestrator.aws.session import AwsContext
from orchestrator.clock import Clock, SystemClock
from orchestrator.config.model import Pipeline


@dataclass
class App:
    """Global options plus lazily built collaborators."""

    file: str | None = None  # None: the nearest pipeline.yaml in the current folder or above
    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None
    sandbox: bool = False
    output: str = "text"
    log_format: str = "console"
    verbose: int = 0
    quiet: bool = False
    wait_lock: float = 0.0
    command: str | None = None
    clock: Clock = field(default_factory=SystemClock, repr=False)  # the one clock the engine and its waits use
    result: Any = field(default=None, repr=False)
    result_text: str = field(default="", repr=False)
    outcome: Any = field(default=None, repr=False)
    _pipeline: Pipeline | None = field(default=None, repr=False)
    _aws: AwsContext | None = field(default=None, repr=False)
    _store: Any = field(default=None, repr=False)
    _sandbox_info: Any = field(default=None, repr=False)

    @property
    def pipeline(self) -> Pipeline:
        """pipeline.yaml, loaded and checked once."""
        if self._pipeline is None:
            from orchestrator.config import load_pipeline

            self._pipeline = load_pipeline(self.file)
            from orchestrator.redact import learn_pipeline

            learn_pipeline(self._pipeline)  # secret env values, build args, valueFrom, URL credentials
        return self._pipeline

    current: ClassVar[App | None] = None

    def sandbox_info(self, start: bool = False) -> Any:
        """The running sandbox (started if asked and not up)."""
        if self._sandbox_info is None:
            from orchestrator.cli.sandboxing import LOG_PROCESSOR, ecsbox, requested_port, spec_for, translated

            box = ecsbox()
            state_dir = self.pipeline.state_dir()
            with translated():
                if start:
                    port = requested_port()  # SNAIL_SANDBOX_PORT: honoured wherever the sandbox starts
                    spec = spec_for(self.pipeline)
                    with self.saying_sandbox_start(spec):
                        info = box.ensure_up(spec, state_dir, port=port, log_processor=LOG_PROCESSOR)
                else:
                    info = box.status(state_dir)
            if info is None or not info.healthy:
                from orchestrator.errors import UsageError

                raise UsageError(SANDBOX_NOT_RUNNING)
            self._sandbox_info = info
        return self._sandbox_info

    @contextlib.contextmanager
    def saying_sandbox_start(self, spec: Any) -> Iterator[None]:
        """Starting (or seeding) the sandbox takes seconds: say so first, show the time it takes on a terminal,
        and say when it is up. Says nothing when it is already up and seeded for this service."""
        from orchestrator.cli.sandboxing import ecsbox

        before = ecsbox().status(self.pipeline.state_dir())
        fresh = before is None or not before.healthy
        if before is not None and not fresh and spec is not None and spec.key() in before.seeded_for:
            yield
            return
        say = self.progress()
        what = (
            "starting the sandbox on 127.0.0.1 (moto, the registry, the ECS agent)"
            if fresh
            else f"seeding the sandbox for service {spec.service}"
        )
        say("sandbox_starting", {"message": what})
        started = time.monotonic()
        ended = "failed after"  # the error itself is said by the CLI boundary
        try:
            yield
            ended = "done in"
        finally:
            say("sandbox_ready", {"message": f"{what}: {ended} {time.monotonic() - started:.1f}s"})
            if hasattr(say, "close"):
                say.close()

    def aws(self, start_sandbox: bool = False) -> AwsContext:
        """How to reach AWS: the sandbox's endpoint, an explicit endpoint, or the real thing."""
        if self._aws is None:
            region = self.region or self.pipeline.service.region
            if self.sandbox:
                ends = self.sandbox_info(start=start_sandbox).endpoints()
                self._aws = AwsContext(
                    region=ends.get("region") or region,
                    # an explicit --endpoint-url wins (e.g. bench/compare's request-counting proxy in front of it)
                    endpoint_url=self.endpoint_url or ends["endpoint_url"],
                    credentials=ends["credentials"],
                    test_url=ends.get("test_url"),
                )
            else:
                from orchestrator.cli.reach import checked_context

                self._aws = checked_context(region, self.profile, self.endpoint_url, region_given=bool(self.region))
        return self._aws

    def registry_url(self) -> str | None:
        """In the sandbox, pushes go to its local registry instead of ECR's data plane."""
        return self.sandbox_info().registry if self.sandbox else None

    @property
    def store(self) -> Any:
        """The state store pipeline.yaml asks for; the sandbox keeps its own, which lives and dies with it."""
        if self._store is None:
            from orchestrator.state import open_store

            if self.sandbox and self.pipeline.state.backend == "local":
                from orchestrator.state.sqlite import SqliteStore

                self._store = SqliteStore(sandbox_store_path(self.pipeline))
            else:
                self._store = open_store(
                    self.pipeline, self.aws() if self.pipeline.state.backend == "dynamodb" else None
                )
            from orchestrator.state.redacting import pipeline_gate_specs, redacting
            from orchestrator.state.secure import private_state

            private_state(self.pipeline.state_dir(), getattr(self._store, "path", None))
            # Nothing reaches the store (or the trail) unmasked; recorded gate specs read back with today's
            # credentials, so a rollback is verified with the real ones.
            self._store = redacting(self._store, pipeline_gate_specs(self.pipeline))
        return self._store

    def progress(self) -> Any:
        """Progress on stderr whatever the result format (a CI log shows the rollout as it happens): JSON lines
        with --log-format json, the human display otherwise; nothing with -q."""
        if self.log_format == "json":
            return JsonProgress(enabled=not self.quiet, rewrite=self.hints)
        from orchestrator.cli.progress import Progress

        # what the result printed on stdout says anyway is not said on stderr first (with --output json the
        # document is not read by a person: the line stays)
        said = RESULT_KINDS if self.output != "json" else frozenset()
        return Progress(enabled=not self.quiet, said_by_result=said, rewrite=self.hints)

    def hints(self, text: str) -> str:
        """Commands suggested in `text`, made to paste where this command ran: with --sandbox they get it too
        (`snail release v2` pasted bare would go to the real account)."""
        return sandbox_hints(text) if self.sandbox else text

    def emit(self, data: Any, text: str, key: str | None = None, routine: bool = False) -> None:
        """Record a command's result. Text is printed now (not with -q when `routine`, e.g. a no-op); with
        --output json the CLI boundary prints ONE document later: the result merged with exit code and outcome
        (a list goes under `key`)."""
        self.result = {key or "result": data} if not isinstance(data, dict) else data
        text = self.hints(text)
        self.result_text = text
        if self.output != "json" and not (self.quiet and routine):
            click.echo(fit_terminal(text))

    def note(self, text: str, **data: Any) -> None:
        """A side remark on stderr: a plain `note:` line, or a JSON log line with --log-format json."""
        text = self.hints(text)
        if self.log_format == "json":
            import structlog

            structlog.get_logger("snail").warning("note", message=text, **data)
        elif not self.quiet:
            click.echo(f"note: {text}", err=True)

    def engine(self, start_sandbox: bool = False, clock: Any = None, watch: Any = None) -> Any:
        """An engine wired to this context, on this context's clock. `clock`: other injected time (the fleet's
        interruptible clock); `watch`: also called with every progress event (the fleet hears a target decide to
        roll back)."""
        from orchestrator.engine.executor import Engine
        from orchestrator.images import Images

        aws = self.aws(start_sandbox=start_sandbox)
        progress = self.progress() if watch is None else _tee(watch, self.progress())
        publish = None
        if self.sandbox and self.pipeline.registry.ecr:
            from orchestrator.aws.ecr_mirror import mirror_to_ecr

            repo = self.pipeline.registry.ecr

            def publish(built: Any, target: Any) -> str:
                return mirror_to_ecr(aws, repo, built, target)

        images = Images(
            self.pipeline,
            aws,
            registry_url=self.registry_url(),
            progress=lambda ev: progress(str(ev.get("event", "build_step")), ev),
            publish=publish,
        )
        return Engine(
            self.pipeline,
            aws,
            self.store,
            images=images,
            progress=progress,
            diagnose=_diagnoser(self.pipeline, aws),
            log_lines=_log_lines(self.pipeline, aws),
            lock_wait=self.wait_lock,
            clock=clock if clock is not None else self.clock,
        )


class JsonProgress:
    """Progress as JSON lines on stderr (--log-format json): one `progress` log event per update."""

    def __init__(self, enabled: bool = True, rewrite: Any = None) -> None:
        self.enabled = enabled
        self.rewrite = rewrite or (lambda text: text)

    def __call__(self, kind: str, data: dict[str, Any]) -> None:
        if not self.enabled or kind in ("gate_attempt", "build_output", "push_layer", "push_progress"):
            return
        import structlog

        fields = {k: v for k, v in data.items() if k not in ("event", "kind")}
        if "message" in fields:
            fields["message"] = self.rewrite(str(fields["message"]))
        structlog.get_logger("snail.progress").info("progress", kind=kind, **fields)


def _tee(watch: Any, shown: Any) -> Any:
    def progress(kind: str, data: dict[str, Any]) -> None:
        watch(kind, data)
        shown(kind, data)

    return progress


def _log_lines(pipeline: Pipeline, aws: AwsContext) -> Any:
    def lines(revision_arn: str) -> list[str]:
        from orchestrator.doctor.diagnose import revision_log_lines

        return revision_log_lines(aws, pipeline.service.cluster, pipeline.service.name, revision_arn)

    return lines


def _diagnoser(pipeline: Pipeline, aws: AwsContext) -> Any:
    def diagnose(revision_arn: str, cause: Any, since: Any = None) -> str:
        from orchestrator.doctor import diagnose as run

        return run(pipeline, aws, since=since, revision_arn=revision_arn, cause=cause).summary()

    return diagnose


pass_app = click.make_pass_decorator(App)

# Events whose message is the command's result line (printed on stdout right after): the display skips them.
RESULT_KINDS = frozenset({"noop", "paused", "blocked"})

_COMMANDS = "run|release|rollback|promote|trail|status|plan|history|logs|unlock|state|doctor|validate"
_SUGGESTED = re.compile(rf"(?<![\w-])snail (?=(?:{_COMMANDS})\b)")


def fit_terminal(text: str, stream: Any = None) -> str:
    """On a terminal, long result lines wrap at spaces to its width (the terminal itself cuts words in two);
    continuation lines are indented. A pipe or a file gets the lines whole."""
    import shutil
    import sys
    import textwrap

    stream = stream or sys.stdout
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        tty = False
    if not tty:
        return text
    width = shutil.get_terminal_size((100, 24)).columns
    return "\n".join(
        textwrap.fill(line, width, subsequent_indent="  ", break_long_words=False, break_on_hyphens=False)
        if len(line) > width
        else line
        for line in text.splitlines()
    )


def sandbox_hints(text: str) -> str:
    """`snail release v2` -> `snail --sandbox release v2` in every command a message suggests (the global option
    goes before the command); `snail sandbox ...` and prose are left alone."""
    return _SUGGESTED.sub("snail --sandbox ", text)


# A suggestion that parses: global options go before the command (`snail --sandbox run`, not `snail run --sandbox`).
SANDBOX_NOT_RUNNING = (
    "the sandbox is not running: start it with `snail sandbox up`, or run `snail --sandbox run`, which starts it"
)


def sandbox_store_path(pipeline: Pipeline) -> Path:
    """Where the sandbox's runs and good revisions are kept (never mixed with a real account's)."""
    return pipeline.state_dir() / "sandbox" / "state.db"


def forget_sandbox_state(pipeline: Pipeline) -> bool:
    """Delete the sandbox's state store: the world it described is gone. True if there was one."""
    path = sandbox_store_path(pipeline)
    found = path.exists()
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    return found
