"""structlog set-up: pretty console on a TTY, JSON lines with --log-format json (CI)."""

from __future__ import annotations

import logging
import os
import sys

import structlog


class _CurrentStderr:
    """Writes to whatever sys.stderr is *now*: a captured or replaced stream may be closed later (test runners,
    click's CliRunner), and a logger must never hold on to a dead one."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()


def configure(fmt: str = "console", verbose: int = 0) -> None:
    """Configure structlog once per process; logs go to stderr, never stdout (stdout is for results)."""
    level = logging.WARNING
    if fmt == "json":
        level = logging.INFO
    if verbose >= 1:
        level = logging.INFO
    if verbose >= 2:
        level = logging.DEBUG
    from orchestrator.redact import structlog_processor

    processors: list = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog_processor,  # secrets masked in every event, whatever the renderer (the stream masks again)
    ]
    if fmt == "json":
        # Tracebacks as data carry frame locals: mask them too.
        processors += [structlog.processors.dict_tracebacks, structlog_processor, structlog.processors.JSONRenderer()]
    else:
        colors = sys.stderr.isatty() and "NO_COLOR" not in os.environ  # no-color.org
        processors += [structlog.dev.ConsoleRenderer(colors=colors)]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )
