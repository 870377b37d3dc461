"""The CLI as a separate process against moto's server (ThreadedMotoServer + the sandbox agent in this process);
results are checked through boto3, the state store and the trail's text."""

from __future__ import annotations

import json
import time

import pytest

from tests.conftest import Behaviour
from tests.functional.world import live
from tests.harness.cli import snail, start_snail
from tests.harness.pipeline import image, write_pipeline


def test_cli_two_phase_run_then_status_history_trail(world) -> None:
    """`snail run` delivers two phases (exit 0); status, history and trail tell the same story."""
    write_pipeline(world["root"], {"health-only": "a", "hybrid-ml": "b"})
    world["serve"]("a"), world["serve"]("b")
    r = snail(world, "run", "--skip-preflight")
    assert r.returncode == 0, r.stderr
    assert "done: health-only, hybrid-ml passed their gates" in r.stdout
    assert live(world).endswith("shine-api-gateway:3")
    td = world["ecs"].describe_task_definition(taskDefinition=live(world), include=["TAGS"])
    assert {t["key"]: t["value"] for t in td["tags"]}["snail:phase"] == "hybrid-ml"
    st = json.loads(snail(world, "--output", "json", "status").stdout)
    assert st["phase"] == "hybrid-ml" and st["lock"] is None
    assert st["good"]["health-only"]["revision_arn"].endswith(":2")
    hist = json.loads(snail(world, "--output", "json", "history").stdout)
    assert hist["runs"][0]["status"] == "succeeded" and hist["runs"][0]["exit_code"] == 0
    trail = snail(world, "trail").stdout
    assert "# 🐌 **SNAIL TRAIL LOG: shine-api-gateway**" in trail
    assert "- [X] **health-only**: complete" in trail and "- [X] **hybrid-ml**: complete" in trail
    again = snail(world, "run", "--skip-preflight")
    assert again.returncode == 0 and "nothing to do" in again.stdout


def test_cli_failing_phase_rolls_back_exit_1(world) -> None:
    """Phase two's /health answers 500: exit 1, the service is back on phase one's revision, the trail says why."""
    write_pipeline(world["root"], {"health-only": "a", "hybrid-ml": "b"})
    world["serve"]("a"), world["serve"]("b", Behaviour(500, {"error": "ML dependencies failed"}))
    r = snail(world, "run", "--skip-preflight")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "rolled back to shine-api-gateway:2 (phase health-only), verified" in r.stdout + r.stderr
    assert live(world).endswith("shine-api-gateway:2")
    trail = snail(world, "trail", "--format", "md").stdout
    assert "## 🚨 **EMERGENCY ROLLBACK EVENTS**" in trail
    assert "status 500, expected 200" in trail
    assert (
        "[Resolution]: rolled back to shine-api-gateway:2 (phase health-only): the gates it passed, passed again"
        in trail
    )
    page = world["root"] / "trail.html"
    assert snail(world, "trail", "--format", "html", "-o", str(page)).returncode == 0
    html = page.read_text()
    assert "decision: roll back" in html and "<svg" in html


def test_cli_plan_is_read_only_and_shows_diff(world) -> None:
    """`snail plan` shows the image, the diff and the gates, and registers nothing."""
    write_pipeline(world["root"], {"health-only": "a"})
    before = world["ecs"].list_task_definitions()["taskDefinitionArns"]
    r = snail(world, "plan")
    assert r.returncode == 0, r.stderr
    assert "phase health-only" in r.stdout and "gates:    ecs-rollout, http /health" in r.stdout
    added = [line.strip() for line in r.stdout.splitlines() if line.strip().startswith("+")]
    assert '+"name": "SNAIL_PHASE",' in [
        a.replace(" ", "").replace('+"name":"SNAIL_PHASE",', '+"name": "SNAIL_PHASE",') for a in added
    ]
    assert any(a.startswith("+") and image("a") in a for a in added)  # the image change, as a unified diff
    assert world["ecs"].list_task_definitions()["taskDefinitionArns"] == before
    dry = snail(world, "run", "--dry-run")
    assert dry.returncode == 0 and "dry run: nothing was changed" in dry.stdout
    assert world["ecs"].list_task_definitions()["taskDefinitionArns"] == before


def test_cli_plan_and_dry_run_name_each_phases_deployer(world) -> None:
    """`plan` and `run --dry-run` say which deployer runs each phase (rolling here), in text and in JSON."""
    write_pipeline(world["root"], {"health-only": "a"})
    line = "deployer: rolling (ECS replaces the tasks, then snail judges the new ones)"
    for args in (("plan",), ("run", "--dry-run")):
        r = snail(world, *args)
        assert r.returncode == 0 and line in r.stdout, r.stdout
        shown = json.loads(snail(world, "--output", "json", *args).stdout)
        assert [ph["deployer"] for ph in shown["phases"]] == ["rolling"], shown


def test_cli_validate_reports_file_line(world) -> None:
    """A YAML mistake exits 2 and names file, line and key; nothing is touched."""
    path = write_pipeline(world["root"], {"health-only": "a"})
    path.write_text(path.read_text().replace("port: 5000", "port: 8o80"))
    r = snail(world, "validate")
    assert r.returncode == 2
    assert f"{path}:7: service.port: expected a port number, got '8o80'" in r.stdout
    r = snail(world, "run", "--skip-preflight")
    assert r.returncode == 2 and "service.port" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.process
def test_cli_second_run_is_locked_out(world) -> None:
    """Two runs at once: the second exits 4 naming the holder; the first finishes normally."""
    write_pipeline(world["root"], {"health-only": "a"})
    (world["root"] / "phases" / "health-only.yaml").write_text(
        f'name: health-only\nimage: {{ref: "{image("a")}"}}\nbake: 6s\n'
    )
    world["serve"]("a")
    first = start_snail(world, "run", "--skip-preflight")
    deadline = time.time() + 60
    while time.time() < deadline:
        st = json.loads(snail(world, "--output", "json", "status").stdout)
        if st["lock"]:
            break
        time.sleep(0.3)
    second = snail(world, "run", "--skip-preflight")
    assert second.returncode == 4, second.stderr
    assert "another run holds the lock: run r-" in second.stderr and "(run) since" in second.stderr
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err


def test_cli_plan_never_creates_the_ecr_repository(world) -> None:
    """With `registry: {ecr: …, create: true}` and no repository yet, plan says run will create it — and does not."""
    path = write_pipeline(world["root"], {"health-only": "a"})
    path.write_text(
        path.read_text().replace("  url: 127.0.0.1:5055/shine-api-gateway", "  ecr: shine-api-gateway\n  create: true")
    )
    ctx = world["root"] / "images" / "health-only"
    ctx.mkdir(parents=True)
    (ctx / "Dockerfile").write_text("FROM scratch\n")
    (world["root"] / "phases" / "health-only.yaml").write_text(
        "name: health-only\nimage: {context: images/health-only}\n"
    )
    r = snail(world, "plan")
    assert r.returncode == 0, r.stderr
    assert "repository shine-api-gateway does not exist yet: run creates it" in r.stdout
    import boto3

    ecr = boto3.client("ecr", region_name="us-east-1", endpoint_url=world["url"])
    assert ecr.describe_repositories()["repositories"] == []
