"""What CI relies on, for every command and every exit code: with --output json stdout is exactly ONE JSON
document (exit_code, outcome, message, diagnosis, run_id); with --log-format json every stderr line is JSON;
progress stays on stderr; -q keeps a no-op silent; errors have the right class and a hint."""

from __future__ import annotations

import json
import os
import re
import socket
import time
from typing import Any

import pytest

from orchestrator.state.sqlite import SqliteStore
from tests.conftest import Behaviour
from tests.functional.world import live
from tests.harness.cli import snail, start_snail
from tests.harness.pipeline import write_pipeline

KEYS = ("exit_code", "outcome", "message", "diagnosis", "run_id")


def one_document(r: Any) -> dict[str, Any]:
    """stdout is exactly one JSON object with the contract's keys, and its exit_code is the process's."""
    doc = json.loads(r.stdout)  # raises if there is anything else on stdout
    assert isinstance(doc, dict), r.stdout
    assert all(k in doc for k in KEYS), doc
    assert doc["exit_code"] == r.returncode, (doc, r.stderr[-800:])
    return doc


def json_lines(r: Any) -> list[dict[str, Any]]:
    """Every stderr line is a JSON object (no plain `error:` or progress lines)."""
    out = []
    for line in r.stderr.splitlines():
        if line.strip():
            try:
                out.append(json.loads(line))
            except ValueError:
                raise AssertionError(f"not a JSON line on stderr of {r.args[3:]}: {line!r}") from None
    return out


def both(w: Any, *args: str, env: dict[str, str] | None = None) -> tuple[dict[str, Any], Any, Any]:
    """Run a command as `--output json --log-format json` and as plain text; check the contract on both."""
    j = snail(w, "--output", "json", "--log-format", "json", *args, env=env)
    doc = one_document(j)
    json_lines(j)
    t = snail(w, *args, env=env)
    assert t.returncode == j.returncode, (args, t.stderr[-800:])
    assert "Traceback" not in t.stderr and "Traceback" not in j.stderr, (args, t.stderr[-1500:])
    return doc, j, t


def test_every_command_in_text_and_json(world) -> None:
    """Read-only and deploy commands, exit 0: one document each, progress on stderr (also with --output json)."""
    write_pipeline(world["root"], {"health-only": "a", "hybrid-ml": "b"})
    world["serve"]("a"), world["serve"]("b")
    j = snail(world, "--output", "json", "--log-format", "json", "run", "--to", "health-only")
    doc = one_document(j)
    assert doc["outcome"] == "succeeded" and doc["run_id"] and doc["command"] == "run"
    progress = [e for e in json_lines(j) if e.get("event") == "progress"]
    assert any(e["kind"] == "phase_passed" for e in progress)  # a CI log shows the rollout as it happens
    for args in (
        ("validate",),
        ("doctor",),
        ("plan",),
        ("status",),
        ("history",),
        ("trail",),
        ("state", "show"),
        ("iam-policy",),
        ("sandbox", "status"),
        ("unlock", "--force"),
        ("completion", "bash"),
        ("run", "--dry-run"),
    ):
        doc, _, _ = both(world, *args)
        assert doc["exit_code"] == 0 and doc["outcome"] in ("ok", "dry_run"), (args, doc)
    for args in (("state", "sync"), ("logs", "--phase", "health-only"), ("release", "health-only")):
        doc, _, _ = both(world, *args)  # whatever their exit code: one document, JSON stderr, same code as text
        assert doc["command"] == args[0]
    t = snail(world, "--output", "json", "promote", "--skip-preflight")
    doc = one_document(t)
    assert doc["outcome"] == "succeeded" and "hybrid-ml" in doc["message"]
    assert "phase hybrid-ml passed its gates" in t.stderr  # --output json no longer silences the progress
    t = snail(world, "rollback")
    assert t.returncode == 0 and "rolled back" in t.stdout + t.stderr, t.stderr[-800:]
    hist = json.loads(snail(world, "--output", "json", "history").stdout)
    assert hist["runs"][0]["command"].startswith("rollback")


def test_rolled_back_run_is_one_document_with_diagnosis(world) -> None:
    """Exit 1: the document says rolled_back, names the run and carries the message; text says error: on stderr."""
    write_pipeline(world["root"], {"health-only": "a", "hybrid-ml": "b"})
    world["serve"]("a"), world["serve"]("b", Behaviour(500, {"error": "ML dependencies failed"}))
    j = snail(world, "--output", "json", "--log-format", "json", "run", "--skip-preflight")
    doc = one_document(j)
    assert doc["exit_code"] == 1 and doc["outcome"] == "rolled_back" and doc["run_id"]
    assert "rolled back to shine-api-gateway:2" in doc["message"]
    failed = [e for e in json_lines(j) if e.get("event") == "command_failed"]
    assert failed and failed[-1]["exit_code"] == 1 and failed[-1]["run_id"] == doc["run_id"]
    assert live(world).endswith("shine-api-gateway:2")


def test_usage_errors_exit_2_as_one_document(world) -> None:
    """Bad option, unknown phase, broken YAML, unknown command: exit 2, one document, JSON stderr lines."""
    path = write_pipeline(world["root"], {"health-only": "a"})
    for args in (("--bogus",), ("run", "--to", "nope"), ("rollback", "--to-phase", "nope"), ("nosuchcommand",)):
        doc, _, t = both(world, *args)
        assert doc["exit_code"] == 2 and doc["outcome"] == "usage_error", (args, doc)
    doc, _, _ = both(world, "rollback", "--to-phase", "nope")
    assert doc["message"].startswith("unknown phase 'nope'")
    path.write_text(path.read_text().replace("port: 5000", "port: 8o80"))
    doc, _, t = both(world, "run")
    assert doc["exit_code"] == 2 and "service.port" in doc["message"] and doc["errors"][0]["line"] == 7
    assert "error:" in t.stderr and "service.port" in t.stderr


def test_human_needed_locked_and_preflight_exits(world) -> None:
    """Exit 3 (no good revision to roll back to), 4 (the lock is held), 5 (the service is missing)."""
    write_pipeline(world["root"], {"health-only": "a"})
    world["serve"]("a")
    doc, _, t = both(world, "rollback")
    assert doc["exit_code"] == 3, doc
    store = SqliteStore(world["root"] / ".snail" / "state.db")
    holder = {"run_id": "r-x", "user": "ci", "host": socket.gethostname(), "pid": os.getpid(), "command": "run"}
    store.acquire_lock("shine-api-gateway", holder, 300, time.time())
    doc, _, t = both(world, "run", "--skip-preflight")
    assert doc["exit_code"] == 4 and doc["outcome"] == "locked" and "r-x" in doc["message"]
    assert "another run holds the lock" in t.stderr
    store.force_unlock("shine-api-gateway")
    world["ecs"].delete_service(cluster="shine", service="shine-api-gateway", force=True)
    doc, _, _ = both(world, "doctor")
    assert doc["exit_code"] == 5 and doc["outcome"] == "preflight_failed"
    doc, _, _ = both(world, "run")
    assert doc["exit_code"] == 5


def test_quiet_noop_prints_nothing(world) -> None:
    """A scheduled run that finds nothing to do: `snail -q run` prints nothing at all and exits 0."""
    write_pipeline(world["root"], {"health-only": "a"})
    world["serve"]("a")
    assert snail(world, "run", "--skip-preflight").returncode == 0
    r = snail(world, "-q", "run", "--skip-preflight")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    loud = snail(world, "run", "--skip-preflight")
    assert "nothing to do" in loud.stdout


def test_wait_lock_waits_then_runs(world) -> None:
    """--wait-lock: a held lock is waited for (with a countdown on stderr) instead of exit 4."""
    import threading

    write_pipeline(world["root"], {"health-only": "a"})
    world["serve"]("a")
    store = SqliteStore(world["root"] / ".snail" / "state.db")
    holder = {"run_id": "r-held", "user": "ci", "host": socket.gethostname(), "pid": os.getpid(), "command": "run"}
    store.acquire_lock("shine-api-gateway", holder, 300, time.time())
    threading.Timer(3.0, lambda: store.release_lock("shine-api-gateway", "r-held")).start()
    started = time.monotonic()
    r = snail(world, "run", "--skip-preflight", "--wait-lock", "1m")
    assert r.returncode == 0, r.stderr[-1500:]
    assert time.monotonic() - started >= 3.0
    assert re.search(r"waiting for (the lock|run r-held)", r.stderr) and "r-held" in r.stderr  # countdown, holder
    quick = snail(world, "run", "--skip-preflight", "--wait-lock", "soon")
    assert quick.returncode == 2 and "is not a duration" in quick.stderr


@pytest.mark.parametrize(
    ("args", "env", "expect"),
    [
        (("--endpoint-url", "http://127.0.0.1:1"), {}, "nothing answers on 127.0.0.1:1"),
        (("--endpoint-url", "localhost:4566"), {}, "is not an http(s) URL"),
        (("--region", "moon-1"), {}, "is not an AWS region name"),
        (
            ("--profile", "nope"),
            {"AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"},
            "no such profile",
        ),
    ],
)
def test_setup_mistakes_exit_2_quickly_with_a_hint(world, args: tuple[str, ...], env: dict, expect: str) -> None:
    """A bad endpoint, region or profile is a usage error (exit 2) said in a few seconds, not 20 s of retries."""
    write_pipeline(world["root"], {"health-only": "a"})
    started = time.monotonic()
    r = snail(world, *args, "status", env={"SNAIL_ENDPOINT_URL": "", **env})
    assert r.returncode == 2, r.stderr
    assert expect in r.stderr
    assert time.monotonic() - started < 8


def test_missing_credentials_exit_2_with_hint(world) -> None:
    """No credentials anywhere: exit 2 naming --profile and --sandbox (not exit 3, 'a human is needed')."""
    write_pipeline(world["root"], {"health-only": "a"})
    env = {
        "AWS_ACCESS_KEY_ID": "",
        "AWS_SECRET_ACCESS_KEY": "",
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    assert "AWS_PROFILE" not in os.environ
    r = snail(world, "--output", "json", "status", env=env)
    doc = one_document(r)
    assert doc["exit_code"] == 2 and "--profile" in doc["message"] and "--sandbox" in doc["message"]


def test_sandbox_hint_parses_and_state_show_honours_sandbox(world) -> None:
    """`snail --sandbox doctor` with no sandbox suggests commands that parse; `state show` names the sandbox's store."""
    write_pipeline(world["root"], {"health-only": "a"})
    r = snail(world, "--sandbox", "doctor", env={"SNAIL_ENDPOINT_URL": ""})
    assert r.returncode == 2 and "the sandbox is not running" in r.stderr
    import re

    suggested = re.findall(r"`(snail [^`]+)`", r.stderr)
    assert "snail --sandbox run" in suggested and "snail sandbox up" in suggested
    for cmd in suggested:
        parsed = snail(world, *cmd.split()[1:], "--help")
        assert parsed.returncode == 0, (cmd, parsed.stderr)
    shown = json.loads(snail(world, "--output", "json", "--sandbox", "state", "show").stdout)
    assert shown["sandbox"] is True and shown["path"].endswith(".snail/sandbox/state.db")
    plain = json.loads(snail(world, "--output", "json", "state", "show").stdout)
    assert plain["sandbox"] is False and plain["path"].endswith(".snail/state.db")


def test_promote_without_argument_promotes_the_waiting_manual_phase(world) -> None:
    """`run` stops before the manual phase (exit 0, paused); `promote` with no argument delivers that phase."""
    write_pipeline(world["root"], {"health-only": "a", "hybrid-ml": "b"}, extra={"hybrid-ml": "approval: manual\n"})
    world["serve"]("a"), world["serve"]("b")
    paused = one_document(snail(world, "--output", "json", "run", "--skip-preflight"))
    assert paused["outcome"] == "paused" and "snail promote hybrid-ml" in paused["message"]
    doc = one_document(snail(world, "--output", "json", "promote", "--skip-preflight"))
    assert doc["exit_code"] == 0 and doc["outcome"] == "succeeded" and "hybrid-ml" in doc["message"], doc
    assert live(world).endswith("shine-api-gateway:3")


@pytest.mark.process
def test_interrupted_run_is_one_document_exit_130(world) -> None:
    """SIGTERM mid-bake (a cancelled CI job): exit 130, one document saying interrupted, JSON stderr lines."""
    import signal
    import subprocess

    write_pipeline(world["root"], {"health-only": "a", "hybrid-ml": "b"}, extra={"hybrid-ml": "bake: 30s\n"})
    world["serve"]("a"), world["serve"]("b")
    proc = start_snail(world, "--output", "json", "--log-format", "json", "run", "--skip-preflight")
    assert proc.stderr is not None
    lines = []
    deadline = time.monotonic() + 120
    for line in proc.stderr:  # wait until hybrid-ml is baking: deployed, not yet proven
        lines.append(line)
        if '"kind": "baking"' in line and "hybrid-ml" in line or time.monotonic() > deadline:
            break
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    r = subprocess.CompletedProcess(proc.args, proc.returncode, out, "".join(lines) + err)
    doc = one_document(r)
    assert doc["exit_code"] == 130 and doc["outcome"] == "interrupted" and doc["run_id"], doc
    json_lines(r)
