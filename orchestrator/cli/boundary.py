"""The one boundary where a command's result or error becomes what the user sees and its exit code.

With `--output json`, stdout carries exactly ONE document for every command and every exit code:
`exit_code`, `outcome`, `message`, `diagnosis`, `run_id` (plus the command's own result fields). With
`--log-format json`, every stderr line is JSON (errors too). Otherwise errors are plain `error:` lines."""

from __future__ import annotations

import json
import os
import sys
import traceback
from dataclasses import dataclass, field
from typing import Any

import click

from orchestrator.errors import ConfigErrors, ExitCode, SnailError

OUTCOME_OF_CODE = {
    ExitCode.OK: "ok",
    ExitCode.ROLLED_BACK: "rolled_back",
    ExitCode.USAGE: "usage_error",
    ExitCode.HUMAN_NEEDED: "human_needed",
    ExitCode.LOCKED: "locked",
    ExitCode.PREFLIGHT: "preflight_failed",
    ExitCode.INTERRUPTED: "interrupted",
}
# botocore's own errors that mean "the command was set up wrong", not "AWS is broken": exit 2 with a hint.
_SETUP_ERRORS = {
    "NoCredentialsError": "no AWS credentials found",
    "PartialCredentialsError": "incomplete AWS credentials",
    "ProfileNotFound": "the AWS profile does not exist",
    "NoRegionError": "no AWS region",
    "EndpointConnectionError": "the AWS endpoint cannot be reached",
    "ConnectTimeoutError": "the AWS endpoint did not accept a connection in time",
    "InvalidRegionError": "not a valid AWS region",
}


@dataclass
class Ended:
    """How a command ended, ready to be reported: the exit code and what to say."""

    exit_code: int
    outcome: str
    message: str = ""
    diagnosis: str | None = None
    run_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    failed: bool = False  # raised (not returned): the error still has to be said on stderr
    click_error: click.ClickException | None = None
    trace: str | None = None
    sandbox: bool = False  # the command ran against the sandbox: the commands it suggests say --sandbox


def ended_from_result(app: Any, code: int) -> Ended:
    """A command that returned: its exit code, and the outcome finish() or emit() recorded on the app."""
    outcome = getattr(app, "outcome", None) if app is not None else None
    if outcome is not None:
        return Ended(
            exit_code=code,
            outcome=outcome.status,
            message=outcome.message,
            diagnosis=getattr(outcome, "diagnosis", None) or None,
            run_id=outcome.run_id,
        )
    text = getattr(app, "result_text", "") if app is not None else ""
    first = next((line for line in text.splitlines() if line.strip()), "")
    return Ended(exit_code=code, outcome=OUTCOME_OF_CODE.get(code, "failed"), message=first)


def _split_diagnosis(message: str, diagnosis: str | None) -> tuple[str, str | None]:
    if "\ndiagnosis: " in message:
        message, _, found = message.partition("\ndiagnosis: ")
        diagnosis = diagnosis or found
    return message, diagnosis or None


def ended_from_error(exc: BaseException) -> Ended:
    """Every error class -> exit code, outcome and message (never a bare traceback)."""
    if isinstance(exc, (KeyboardInterrupt, click.exceptions.Abort)):
        return Ended(ExitCode.INTERRUPTED, "interrupted", "interrupted", failed=True)
    if isinstance(exc, click.ClickException):
        return Ended(ExitCode.USAGE, "usage_error", exc.format_message(), failed=True, click_error=exc)
    if isinstance(exc, ConfigErrors):
        return Ended(
            ExitCode.USAGE,
            "usage_error",
            "\n".join(str(e) for e in exc.errors),
            extra={
                "errors": [{"file": e.path, "line": e.line, "key": e.key, "message": e.message} for e in exc.errors]
            },
            failed=True,
        )
    if isinstance(exc, SnailError):
        code = getattr(exc, "code", None)
        if code in _SETUP_ERRORS:
            return _setup_error(str(code), str(exc))
        message, diagnosis = _split_diagnosis(str(exc), exc.data.get("diagnosis"))
        status = exc.data.get("status")
        if status is None:
            status = "rollback_failed" if type(exc).__name__ == "RollbackFailed" else None
        return Ended(
            exit_code=exc.exit_code,
            outcome=status or OUTCOME_OF_CODE.get(exc.exit_code, "failed"),
            message=message,
            diagnosis=diagnosis,
            run_id=exc.data.get("run_id"),
            failed=True,
        )
    name = type(exc).__name__
    if name in _SETUP_ERRORS and type(exc).__module__.startswith("botocore"):
        return _setup_error(name, str(exc))
    return Ended(
        ExitCode.HUMAN_NEEDED,
        "internal_error",
        f"unexpected {name}: {exc} (a bug in snail: please report it with the trail)",
        failed=True,
        trace="".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
    )


def _setup_error(name: str, detail: str) -> Ended:
    from orchestrator.cli.reach import CREDENTIALS_HINT

    hint = (
        CREDENTIALS_HINT
        if "Credentials" in name
        else "check --profile, --region and --endpoint-url (or use `snail --sandbox …`)"
    )
    return Ended(ExitCode.USAGE, "usage_error", f"{_SETUP_ERRORS[name]}: {detail}; {hint}", failed=True)


def _early(args: list[str], name: str, env: str, default: str) -> str:
    """A global option read straight from argv/env: for errors raised before click parsed it."""
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return os.environ.get(env) or default


def report(ended: Ended, app: Any, args: list[str]) -> int:
    """Print the result document / error line for `ended`, send notifications for failed runs; return the code."""
    live = sys.modules.get("orchestrator.cli.progress")
    if live is not None:  # a live progress display must not be drawn under the result or the error
        live.close_live()
    output = app.output if app is not None else _early(args, "--output", "SNAIL_OUTPUT", "text")
    log_format = app.log_format if app is not None else _early(args, "--log-format", "SNAIL_LOG_FORMAT", "console")
    if app is None and log_format == "json":
        from orchestrator.log import configure

        configure("json")
    if app is not None and getattr(app, "sandbox", False):  # suggested commands paste into the sandbox
        from orchestrator.cli.app import sandbox_hints

        ended.message = sandbox_hints(ended.message)
        ended.diagnosis = sandbox_hints(ended.diagnosis) if ended.diagnosis else ended.diagnosis
        ended.sandbox = True
    if ended.failed and app is not None and getattr(app, "outcome", None) is None:
        from orchestrator.cli.common import notify_outcome

        notify_outcome(app, ended.outcome, ended.exit_code, ended.message, ended.diagnosis, ended.run_id)
    if output == "json":
        doc: dict[str, Any] = {"command": getattr(app, "command", None)}
        result = getattr(app, "result", None) if app is not None else None
        if isinstance(result, dict):
            doc.update(result)
        doc.update(ended.extra)
        doc.update(
            exit_code=ended.exit_code,
            outcome=ended.outcome,
            message=ended.message,
            diagnosis=ended.diagnosis,
            run_id=ended.run_id,
        )
        click.echo(json.dumps(doc, indent=2, default=str))
    if log_format == "json":
        _log_end(ended, getattr(app, "command", None))
    elif ended.failed:
        _error_to_stderr(ended, show_usage=output != "json")
    return ended.exit_code


def _log_end(ended: Ended, command: str | None) -> None:
    """--log-format json: the last stderr line says how the command ended (command_failed for any non-zero)."""
    import structlog

    log = structlog.get_logger("snail")
    emit = log.error if ended.exit_code != 0 else log.info
    emit(
        "command_failed" if ended.exit_code != 0 else "command_finished",
        command=command,
        exit_code=ended.exit_code,
        outcome=ended.outcome,
        message=ended.message,
        diagnosis=ended.diagnosis,
        run_id=ended.run_id,
        traceback=ended.trace,
    )


def _error_to_stderr(ended: Ended, show_usage: bool) -> None:
    if ended.click_error is not None and show_usage:
        ended.click_error.show()
        return
    if ended.trace:
        sys.stderr.write(ended.trace)
    if ended.exit_code == ExitCode.OK:
        return
    trail = "snail --sandbox trail" if ended.sandbox else "snail trail"
    run = f" (run {ended.run_id}; see `{trail} --run {ended.run_id}`)" if ended.run_id else ""
    if ended.outcome == "interrupted" and ended.message == "interrupted":
        click.echo("interrupted", err=True)
        return
    click.echo(f"error: {ended.message}{run}", err=True)
    if ended.diagnosis:
        click.echo(f"diagnosis: {ended.diagnosis}", err=True)
