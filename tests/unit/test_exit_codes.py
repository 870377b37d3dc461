"""The CLI boundary's classification: every error class -> exit code, outcome and message (no traceback)."""

from __future__ import annotations

import json

import click
import pytest
from botocore.exceptions import EndpointConnectionError, NoCredentialsError

from orchestrator.cli.boundary import Ended, _early, ended_from_error, report
from orchestrator.errors import AwsError, ConfigError, ConfigErrors, Locked, RollbackFailed, RolledBack, UsageError


@pytest.mark.parametrize(
    ("exc", "code", "outcome"),
    [
        (UsageError("bad"), 2, "usage_error"),
        (ConfigErrors([ConfigError("p.yaml", 3, "oops", "service.port")]), 2, "usage_error"),
        (click.UsageError("No such option"), 2, "usage_error"),
        (RolledBack("phase x failed; rolled back\ndiagnosis: exit 1"), 1, "rolled_back"),
        (RollbackFailed("no good revision"), 3, "rollback_failed"),
        (Locked({"run_id": "r-1", "user": "u", "host": "h", "command": "run", "since": "t"}), 4, "locked"),
        (KeyboardInterrupt(), 130, "interrupted"),
        (NoCredentialsError(), 2, "usage_error"),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), 2, "usage_error"),
        (AwsError("ecs:DescribeServices", "NoCredentialsError", "Unable to locate credentials"), 2, "usage_error"),
        (ZeroDivisionError("bug"), 3, "internal_error"),
    ],
)
def test_every_error_class_has_its_code(exc: BaseException, code: int, outcome: str) -> None:
    """Each class maps to the documented exit code and outcome; setup mistakes are exit 2 with a hint."""
    ended = ended_from_error(exc)
    assert (ended.exit_code, ended.outcome) == (code, outcome)
    if code == 2 and "credentials" in ended.message.lower():
        assert "--profile" in ended.message and "--sandbox" in ended.message


def test_diagnosis_is_split_out_of_the_message() -> None:
    """A rolled-back message's `diagnosis:` line becomes the document's diagnosis field."""
    ended = ended_from_error(RolledBack("phase x failed; rolled back\ndiagnosis: task exited 1"))
    assert ended.message == "phase x failed; rolled back" and ended.diagnosis == "task exited 1"


def test_config_errors_carry_file_line_key() -> None:
    """ConfigErrors list every mistake with file, line and key for the JSON document."""
    ended = ended_from_error(ConfigErrors([ConfigError("p.yaml", 3, "oops", "service.port")]))
    assert ended.extra["errors"] == [
        {"file": "p.yaml", "line": 3, "key": "service.port", "message": "p.yaml:3: service.port: oops"}
    ]


def test_global_options_are_read_before_click_parses() -> None:
    """--output/--log-format come from argv (either spelling) or the environment when parsing itself failed."""
    assert _early(["--output", "json", "--bogus"], "--output", "SNAIL_OUTPUT", "text") == "json"
    assert _early(["--output=json"], "--output", "SNAIL_OUTPUT", "text") == "json"
    assert _early(["run"], "--output", "NO_SUCH_VARIABLE_HERE", "text") == "text"


def test_report_prints_one_document(capsys: pytest.CaptureFixture[str]) -> None:
    """With --output json and no app (parsing failed), stdout is one document with the contract's keys."""
    code = report(Ended(2, "usage_error", "No such option"), None, ["--output", "json", "--bogus"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 2 and doc["exit_code"] == 2 and doc["outcome"] == "usage_error"
    assert set(doc) >= {"exit_code", "outcome", "message", "diagnosis", "run_id"}


def test_an_error_in_the_sandbox_suggests_commands_with_sandbox(capsys: pytest.CaptureFixture[str]) -> None:
    """A failed command against the sandbox: the `error:` line and its `snail trail` pointer carry --sandbox, so a
    pasted hint reads the sandbox's own record, not a real account's (issue 19 item 8)."""
    from orchestrator.cli.app import App

    app = App(sandbox=True, command="run")
    app.outcome = object()  # no notification: the outcome was reported already
    ended = Ended(1, "quarantined", "not deployed: … or `snail run --retry-failed`", run_id="r-1", failed=True)
    assert report(ended, app, []) == 1
    err = capsys.readouterr().err
    assert "`snail --sandbox run --retry-failed`" in err and "`snail --sandbox trail --run r-1`" in err
