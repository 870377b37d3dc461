"""examples/github-actions/deploy.yml and examples/cron/crontab do what docs/ci.md says: their commands are
parsed out of the files and run, as GitHub's runner and cron would run them, against moto's server."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import Behaviour
from tests.functional.world import live
from tests.harness.cli import snail
from tests.harness.pipeline import write_pipeline

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / "examples" / "github-actions" / "deploy.yml"
CRONTAB = ROOT / "examples" / "cron" / "crontab"
BIN = Path(sys.executable).parent

CI_STATE = {"backend": "dynamodb", "table": "snail-ci"}  # the state a CI job shares (docs/ci.md)


def load_workflow() -> dict[str, Any]:
    """The workflow as data (PyYAML reads the key `on` as True: YAML 1.1)."""
    wf = yaml.safe_load(WORKFLOW.read_text())
    wf["on"] = wf.pop(True, wf.get("on"))
    return wf


def _expressions(event: str) -> dict[str, str]:
    return {"inputs.command || 'run'": "run", "github.event_name": event}


def _substitute(text: str, event: str) -> str:
    known = _expressions(event)

    def value(m: re.Match[str]) -> str:
        expr = m.group(1).strip()
        assert expr in known, f"the test does not know how GitHub evaluates ${{{{ {expr} }}}}"
        return known[expr]

    return re.sub(r"\$\{\{(.*?)\}\}", value, text)


def run_workflow(w: Any, event: str) -> list[dict[str, Any]]:
    """Each `run:` step in order, in bash -eo pipefail as GitHub runs it, with the workflow's and the step's env;
    `uses:` steps are what GitHub provides (checkout, Python, OIDC credentials, the artifact upload)."""
    wf = load_workflow()
    job = wf["jobs"]["deploy"]
    out_file, summary = w["root"] / "github_output", w["root"] / "step_summary"
    env = {
        **os.environ,
        **{k: str(v) for k, v in wf["env"].items()},
        "PATH": f"{BIN}:{os.environ['PATH']}",
        "AWS_ACCESS_KEY_ID": "testing",  # what configure-aws-credentials exports after assuming the role
        "AWS_SECRET_ACCESS_KEY": "testing",
        "SNAIL_ENDPOINT_URL": w["url"],
        "GITHUB_OUTPUT": str(out_file),
        "GITHUB_STEP_SUMMARY": str(summary),
    }
    results: list[dict[str, Any]] = []
    failed = False
    for step in job["steps"]:
        if "uses" in step or step.get("id") == "install":  # the install step: this checkout is installed already
            continue
        if failed and "always()" not in str(step.get("if", "")):
            continue
        step_env = {**env, **{k: _substitute(str(v), event) for k, v in (step.get("env") or {}).items()}}
        script = _substitute(step["run"], event)
        r = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
            cwd=w["root"],
            env=step_env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        results.append({"name": step.get("name"), "rc": r.returncode, "stdout": r.stdout, "stderr": r.stderr})
        failed = failed or r.returncode != 0
    return results


def _project(w: Any, broken: bool = False) -> None:
    write_pipeline(w["root"], {"health-only": "a", "hybrid-ml": "b"}, state=CI_STATE)
    w["serve"]("a")
    w["serve"]("b", Behaviour(500, {"error": "ML dependencies failed"}) if broken else None)
    assert snail(w, "state", "init").returncode == 0  # done once by an admin (docs/ci.md)


def test_workflow_shape() -> None:
    """Push, an hourly schedule and a manual trigger; OIDC (id-token: write); artifact uploaded even on failure."""
    wf = load_workflow()
    assert set(wf["on"]) == {"push", "schedule", "workflow_dispatch"}
    assert re.fullmatch(r"[\d*/,-]+( [\d*/,-]+){4}", wf["on"]["schedule"][0]["cron"])
    assert wf["permissions"]["id-token"] == "write"
    steps = wf["jobs"]["deploy"]["steps"]
    creds = next(s for s in steps if str(s.get("uses", "")).startswith("aws-actions/configure-aws-credentials"))
    assert "role-to-assume" in creds["with"] and "aws-access-key-id" not in creds["with"]
    upload = next(s for s in steps if str(s.get("uses", "")).startswith("actions/upload-artifact"))
    assert upload["if"] == "always()" and "trail.html" in upload["with"]["path"]


@pytest.mark.process
def test_workflow_delivers_then_a_scheduled_tick_is_a_quiet_noop(world) -> None:
    """Push: every step passes, the result and the trail are written for the artifact; the hourly tick then
    finds nothing to do and stays green."""
    _project(world)
    steps = run_workflow(world, "push")
    assert [s["rc"] for s in steps] == [0, 0, 0, 0], steps
    result = json.loads((world["root"] / "snail-result.json").read_text())
    assert result["exit_code"] == 0 and result["outcome"] == "succeeded" and result["run_id"]
    assert "::notice title=snail::done: health-only, hybrid-ml passed their gates" in steps[2]["stdout"]
    assert f"run_id={result['run_id']}" in (world["root"] / "github_output").read_text()
    assert "<html" in (world["root"] / "trail.html").read_text().lower()
    assert live(world).endswith("shine-api-gateway:3")
    tick = run_workflow(world, "schedule")
    assert [s["rc"] for s in tick] == [0, 0, 0, 0], tick
    assert json.loads((world["root"] / "snail-result.json").read_text())["outcome"] == "noop"


@pytest.mark.process
def test_workflow_rollback_is_a_red_job_with_the_trail_kept(world) -> None:
    """A failing phase: the deliver step fails with an ::error annotation (exit 1 -> red), and the trail step
    still runs, so the artifact holds the trail of the rollback."""
    _project(world, broken=True)
    steps = run_workflow(world, "push")
    by_name = {s["name"]: s for s in steps}
    assert by_name["deliver"]["rc"] == 1
    assert "::error title=snail rolled back::" in by_name["deliver"]["stdout"], by_name["deliver"]
    assert by_name["trail"]["rc"] == 0
    assert "rolled back" in (world["root"] / "trail.md").read_text().lower()
    assert live(world).endswith("shine-api-gateway:2")


@pytest.mark.process
def test_crontab_line_runs_and_a_noop_is_silent(world) -> None:
    """The crontab's command (its `cd` pointed at this project): the first tick delivers; the next prints nothing,
    so cron sends no mail."""
    _project(world)
    line = next(ln for ln in CRONTAB.read_text().splitlines() if ln and not ln.startswith(("#", "SHELL", "MAILTO")))
    command = " ".join(line.split()[5:]).replace("/srv/shine", str(world["root"])).replace(".venv/bin/", "")
    env = {
        **os.environ,
        "PATH": f"{BIN}:{os.environ['PATH']}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "SNAIL_ENDPOINT_URL": world["url"],
    }
    first = subprocess.run(["bash", "-c", command], env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0 and "done:" in first.stdout, first.stderr[-1500:]
    second = subprocess.run(["bash", "-c", command], env=env, capture_output=True, text=True, timeout=300)
    assert (second.returncode, second.stdout, second.stderr) == (0, "", "")
