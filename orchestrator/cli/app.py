"""The typed application context every command gets on ctx.obj: options, pipeline, AWS, state, progress."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from orchestrator.aws.session import AwsContext
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

    def sandbox_info(self, start: bool = False) -> Any:
        """The running sandbox (started if asked and not up)."""
        if self._sandbox_info is None:
            from orchestrator.sandbox import control

            spec = control.SandboxSpec.from_pipeline(self.pipeline)
            state_dir = self.pipeline.state_dir()
            info = control.ensure_up(spec, state_dir) if start else control.status(state_dir)
            if info is None or not info.healthy:
                from orchestrator.errors import UsageError

                raise UsageError(
                    "the sandbox is not running: start it with `snail sandbox up` (or use `snail run --sandbox`)"
                )
            self._sandbox_info = info
        return self._sandbox_info

    def aws(self, start_sandbox: bool = False) -> AwsContext:
        """How to reach AWS: the sandbox's endpoint, an explicit endpoint, or the real thing."""
        if self._aws is None:
            region = self.region or self.pipeline.service.region
            if self.sandbox:
                kw = self.sandbox_info(start=start_sandbox).client_kwargs()
                self._aws = AwsContext(
                    region=kw.get("region_name", region),
                    endpoint_url=kw["endpoint_url"],
                    credentials={
                        "aws_access_key_id": kw["aws_access_key_id"],
                        "aws_secret_access_key": kw["aws_secret_access_key"],
                    },
                )
            else:
                self._aws = AwsContext(region=region, profile=self.profile, endpoint_url=self.endpoint_url)
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
            from orchestrator.state.redacting import redacting
            from orchestrator.state.secure import private_state

            private_state(self.pipeline.state_dir(), getattr(self._store, "path", None))
            self._store = redacting(self._store)  # nothing reaches the store (or the trail) unmasked
        return self._store

    def progress(self) -> Any:
        """The human progress display (off for JSON output or JSON logs)."""
        from orchestrator.cli.progress import Progress

        return Progress(enabled=self.output == "text" and self.log_format != "json")

    def emit(self, data: Any, text: str) -> None:
        """Print a result: JSON with --output json, else the text."""
        if self.output == "json":
            click.echo(json.dumps(data, indent=2, default=str))
        else:
            click.echo(text)

    def engine(self, start_sandbox: bool = False) -> Any:
        """An engine wired to this context."""
        from orchestrator.engine.executor import Engine
        from orchestrator.engine.images import Images

        aws = self.aws(start_sandbox=start_sandbox)
        progress = self.progress()
        images = Images(
            self.pipeline,
            aws,
            registry_url=self.registry_url(),
            progress=lambda ev: progress(str(ev.get("event", "build_step")), ev),
        )
        return Engine(
            self.pipeline, aws, self.store, images=images, progress=progress, diagnose=_diagnoser(self.pipeline, aws)
        )


def _diagnoser(pipeline: Pipeline, aws: AwsContext) -> Any:
    def diagnose(revision_arn: str, cause: Any, since: Any = None) -> str:
        from orchestrator.doctor import diagnose as run

        return run(pipeline, aws, since=since, revision_arn=revision_arn).summary()

    return diagnose


pass_app = click.make_pass_decorator(App)


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


def root_of(app: App) -> Path:
    """The pipeline's folder."""
    return app.pipeline.root
