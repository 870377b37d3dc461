"""snail fleet on moto's server with the ECS stand-in moving deployments: 4 targets, 2 regions, 3 waves.

The CLI runs as a separate process, as a user runs it; results are read through boto3 and the fleet journal."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.harness import cli

ACCOUNT = "123456789012"
TARGETS = {  # name -> (region, cluster)
    "staging": ("us-east-1", "shine-staging"),
    "cell1": ("us-east-1", "shine-cell1"),
    "cell2": ("us-east-1", "shine-cell2"),
    "euw1": ("eu-west-1", "shine"),
}
SERVICE = "shine-api-gateway"


def image(tag: str) -> str:
    """A pinned image whose digest is made from a short tag."""
    return f"127.0.0.1:5055/shine-api-gateway@sha256:{tag * 64}"


PIPELINE = """\
version: 1
service: {cluster: shine, name: shine-api-gateway, region: us-east-1, container: api, port: 5000}
registry: {url: 127.0.0.1:5055/shine-api-gateway}
defaults:
  gates:
    - {type: ecs-rollout, timeout: 1m, poll: 0.2s}
    - {type: http, path: /health, expect: {status: 200}, retries: {attempts: 2, wait: 0.2s}}
  bake: 0s
phases: [v1, v2]
"""

FLEET = """\
version: 1
pipeline: pipeline.yaml
targets:
  staging: {{region: us-east-1, cluster: shine-staging}}
  cell1:   {{region: us-east-1, cluster: shine-cell1}}
  cell2:   {{region: us-east-1, cluster: shine-cell2}}
  euw1:    {{region: eu-west-1, cluster: shine, pipeline: eu/pipeline.yaml}}
waves:
  - {{name: staging, targets: [staging]}}
  - {{name: one-box, targets: [cell1]{one_box}}}
  - {{name: rest, targets: [cell2, euw1], max_parallel: 2}}
{extra}"""


def write_pipeline(root: Path, v1: str, v2: str) -> None:
    """pipeline.yaml with phases v1 and v2 pinned to the images of these tags."""
    (root / "phases").mkdir(parents=True, exist_ok=True)
    (root / "pipeline.yaml").write_text(PIPELINE)
    for name, tag in (("v1", v1), ("v2", v2)):
        (root / "phases" / f"{name}.yaml").write_text(f'name: {name}\nimage: {{ref: "{image(tag)}"}}\n')


@pytest.fixture(scope="module")
def stand_in(moto_server: str) -> Any:
    """The ECS stand-in for every region of the moto server: containers answer on real HTTP servers."""
    from ecsbox.agent import EcsAgent
    from ecsbox.launchers import InstantLauncher

    ports: dict[str, int] = {}
    agent = EcsAgent(
        InstantLauncher(host_port_for=lambda img: ports.get(img)),
        account_id=ACCOUNT,
        region=None,
        interval=0.1,
        steady_after=0.2,
    )
    agent.start()
    yield {"url": moto_server, "ports": ports}
    agent.stop(stop_tasks=True)
    from ecsbox import extension

    extension.uninstall()


@pytest.fixture
def fleet(stand_in: dict[str, Any], tmp_path: Path, http_server: Any) -> dict[str, Any]:
    """A fresh moto account with the four services on a bootstrap revision, and a fleet folder."""
    import requests

    from tests.conftest import Behaviour

    requests.post(f"{stand_in['url']}/moto-api/reset", timeout=10)
    clients = {r: boto3.client("ecs", region_name=r, endpoint_url=stand_in["url"]) for r in ("us-east-1", "eu-west-1")}
    for region, cluster in TARGETS.values():
        ecs = clients[region]
        ecs.create_cluster(clusterName=cluster)
        td = ecs.register_task_definition(
            family=SERVICE,
            networkMode="bridge",
            containerDefinitions=[
                {"name": "api", "image": image("0"), "memory": 256, "portMappings": [{"containerPort": 5000}]}
            ],
        )["taskDefinition"]["taskDefinitionArn"]
        ecs.create_service(cluster=cluster, serviceName=SERVICE, taskDefinition=td, desiredCount=1)
    behaviours: dict[str, Any] = {}
    for tag in "0abcde":
        url, b = http_server(Behaviour())
        stand_in["ports"][image(tag)] = int(url.rsplit(":", 1)[1])
        behaviours[tag] = b
    root = tmp_path / "svc"
    write_pipeline(root, "a", "b")
    write_pipeline(root / "eu", "a", "b")
    (root / "fleet.yaml").write_text(FLEET.format(one_box="", extra=""))
    return {"root": root, "ecs": clients, "url": stand_in["url"], "behaviour": behaviours}


def fleet_env(world: dict[str, Any]) -> dict[str, str]:
    """The moto server, and the fleet's polls at 0.1 s (no SNAIL_FILE: the fleet names its pipelines)."""
    return {"SNAIL_ENDPOINT_URL": world["url"], "SNAIL_FLEET_POLL": "0.1"}


def snail(world: dict[str, Any], *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    """`snail` in the fleet's folder against the moto server."""
    return cli.snail(world["root"], *args, timeout=timeout, env=fleet_env(world))


def live(world: dict[str, Any], target: str) -> str:
    """The target's live revision (family:N), through boto3."""
    region, cluster = TARGETS[target]
    svc = world["ecs"][region].describe_services(cluster=cluster, services=[SERVICE])["services"][0]
    return svc["taskDefinition"].rsplit("/", 1)[-1]


def image_of(world: dict[str, Any], target: str) -> str:
    """The image the target's live revision runs."""
    region, cluster = TARGETS[target]
    ecs = world["ecs"][region]
    arn = ecs.describe_services(cluster=cluster, services=[SERVICE])["services"][0]["taskDefinition"]
    return ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]["containerDefinitions"][0]["image"]


def deployments(world: dict[str, Any], target: str) -> int:
    """How many deployments the target's service has had recorded (a new one per UpdateService)."""
    region, cluster = TARGETS[target]
    svc = world["ecs"][region].describe_services(cluster=cluster, services=[SERVICE])["services"][0]
    return len(svc["deployments"])


def journal(world: dict[str, Any]) -> dict[str, Any]:
    """The fleet journal as stored."""
    return json.loads((world["root"] / ".snail" / "fleet" / "journal.json").read_text())["current"]


def order_of(doc: dict[str, Any], kind: str) -> list[str]:
    """Targets in the order of their `kind` events."""
    return [e["target"] for e in doc["events"] if e["kind"] == kind]


def test_a_good_release_reaches_every_target_wave_by_wave(fleet: dict[str, Any]) -> None:
    """staging, then the one-box, then cell2 and euw1 (eu-west-1), each on v2's image; a re-run is a silent no-op."""
    assert snail(fleet, "fleet", "validate").returncode == 0
    r = snail(fleet, "fleet", "run", "--skip-preflight")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "passed on every target" in r.stdout
    for t in TARGETS:
        assert image_of(fleet, t) == image("b"), t
    started = order_of(journal(fleet), "target_started")
    assert started[:2] == ["staging", "cell1"] and set(started[2:]) == {"cell2", "euw1"}
    ended = order_of(journal(fleet), "target_ended")
    assert ended.index("staging") < started.index("cell1") and ended.index("cell1") < started.index("cell2")
    again = snail(fleet, "-q", "fleet", "run", "--skip-preflight")
    assert again.returncode == 0 and again.stdout == "" and again.stderr == ""
    assert {t: image_of(fleet, t) for t in TARGETS} == {t: image("b") for t in TARGETS}
    status = snail(fleet, "--output", "json", "fleet", "status")
    doc = json.loads(status.stdout)
    assert doc["fleet_run"]["status"] == "succeeded"


def test_a_broken_release_stops_the_line_and_no_later_wave_is_touched(fleet: dict[str, Any]) -> None:
    """v2 answers 500 on /health: staging rolls back to v1, later waves keep v1 with no update; re-run deploys nowhere."""
    fleet["behaviour"]["b"].status = 500
    r = snail(fleet, "fleet", "run", "--skip-preflight", "--to", "v1")
    assert r.returncode == 0, r.stdout + r.stderr
    before = {t: (live(fleet, t), deployments(fleet, t)) for t in TARGETS}
    r = snail(fleet, "fleet", "run", "--skip-preflight")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "the line stopped" in r.stdout and "staging" in r.stdout
    assert image_of(fleet, "staging") == image("a")
    for t in ("cell1", "cell2", "euw1"):
        assert (live(fleet, t), deployments(fleet, t)) == before[t], t
    doc = journal(fleet)
    assert doc["targets"]["staging"]["status"] == "failed"
    assert {doc["targets"][t]["status"] for t in ("cell1", "cell2", "euw1")} == {"cancelled"}
    again = snail(fleet, "fleet", "run", "--skip-preflight")
    assert again.returncode == 1 and "quarantined for the whole fleet" in again.stdout
    assert live(fleet, "staging") == before["staging"][0] or image_of(fleet, "staging") == image("a")
    assert all(deployments(fleet, t) == before[t][1] for t in ("cell1", "cell2", "euw1"))


def test_a_failure_in_the_last_wave_returns_its_passed_target(fleet: dict[str, Any]) -> None:
    """euw1's own pipeline ships a broken v2: euw1 rolls back, cell2 (passed in the same wave) goes back to v1."""
    assert snail(fleet, "fleet", "run", "--skip-preflight", "--to", "v1").returncode == 0
    write_pipeline(fleet["root"] / "eu", "a", "e")
    fleet["behaviour"]["e"].status = 500
    r = snail(fleet, "fleet", "run", "--skip-preflight")
    assert r.returncode == 1, r.stdout + r.stderr
    assert image_of(fleet, "euw1") == image("a") and image_of(fleet, "cell2") == image("a")
    assert image_of(fleet, "staging") == image("b") and image_of(fleet, "cell1") == image("b")  # earlier waves keep
    doc = journal(fleet)
    assert doc["targets"]["cell2"]["status"] == "returned" and doc["targets"]["euw1"]["status"] == "failed"
    html = snail(fleet, "fleet", "trail", "--format", "html")
    assert html.returncode == 0 and 'data-status="returned"' in html.stdout and 'class="stop"' in html.stdout


@pytest.mark.process
def test_approval_and_resume_after_kill_9(fleet: dict[str, Any]) -> None:
    """A manual one-box stops the run (exit 0); once approved, a run killed -9 mid-wave is resumed to the end."""
    (fleet["root"] / "fleet.yaml").write_text(FLEET.format(one_box=", approval: manual", extra=""))
    r = snail(fleet, "fleet", "run", "--skip-preflight")
    assert r.returncode == 0 and "snail fleet approve one-box" in r.stdout, r.stdout + r.stderr
    assert image_of(fleet, "staging") == image("b") and image_of(fleet, "cell1") == image("0")
    assert snail(fleet, "fleet", "approve", "one-box", "--reason", "staging looks fine").returncode == 0
    proc = cli.start_snail(
        fleet["root"],
        *("-q", "fleet", "run", "--skip-preflight"),
        env={"SNAIL_ENDPOINT_URL": fleet["url"]},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait for the event "cell1 started", then kill -9
        try:
            if journal(fleet)["targets"]["cell1"]["status"] == "running":
                break
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert journal(fleet)["targets"]["cell1"]["status"] == "running"
    run_id = journal(fleet)["run_id"]
    r = snail(fleet, "fleet", "run", "--skip-preflight", "--resume")
    assert r.returncode == 0, r.stdout + r.stderr
    assert journal(fleet)["run_id"] == run_id
    assert order_of(journal(fleet), "target_started").count("staging") == 1
    for t in TARGETS:
        assert image_of(fleet, t) == image("b"), t


def test_a_freeze_blocks_forward_moves_but_not_fleet_stop(fleet: dict[str, Any]) -> None:
    """Under a freeze no wave starts (exit 0, nothing changed); `fleet stop` still sends staging back to v1."""
    today = time.strftime("%Y-%m-%d", time.gmtime())
    assert snail(fleet, "fleet", "run", "--skip-preflight", "--to", "v1").returncode == 0
    (fleet["root"] / "fleet.yaml").write_text(
        FLEET.format(one_box=", approval: manual", extra="on_failure: {earlier_waves: rollback}\n")
    )
    assert snail(fleet, "fleet", "run", "--skip-preflight").returncode == 0  # staging on v2, one-box waiting
    assert image_of(fleet, "staging") == image("b")
    (fleet["root"] / "fleet.yaml").write_text(
        FLEET.format(
            one_box=", approval: manual",
            extra=f"on_failure: {{earlier_waves: rollback}}\nfreezes: [{{from: {today}, to: {today}, reason: audit}}]\n",
        )
    )
    frozen = snail(fleet, "fleet", "run", "--skip-preflight", "--approve", "one-box")
    assert frozen.returncode == 0 and "freeze" in frozen.stdout and "audit" in frozen.stdout
    assert image_of(fleet, "cell1") == image("a")
    stop = snail(fleet, "fleet", "stop", "--reason", "audit found a problem")
    assert stop.returncode == 1, stop.stdout + stop.stderr
    assert image_of(fleet, "staging") == image("a")


@pytest.mark.process
def test_fleet_stop_sends_an_in_flight_target_back_at_once(fleet: dict[str, Any]) -> None:
    """staging is on v2 and baking (10 minutes): `snail fleet stop` from another shell makes it go back to v1 now,
    verified; the later waves are cancelled and untouched, and the run exits 1 naming each target's revision."""
    assert snail(fleet, "fleet", "run", "--skip-preflight", "--to", "v1").returncode == 0
    before = {t: (live(fleet, t), deployments(fleet, t)) for t in ("cell1", "cell2", "euw1")}
    v2 = fleet["root"] / "phases" / "v2.yaml"
    v2.write_text(v2.read_text() + "bake: 10m\n")
    proc = cli.start_snail(fleet["root"], "fleet", "run", "--skip-preflight", env=fleet_env(fleet))
    try:
        deadline = time.monotonic() + 120  # a hang guard: the wait is on the event "staging runs v2"
        while image_of(fleet, "staging") != image("b") and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert image_of(fleet, "staging") == image("b"), proc.poll()
        stop = snail(fleet, "fleet", "stop", "--reason", "pager went off")
        assert stop.returncode == 0 and "stops the line" in stop.stdout, stop.stdout + stop.stderr
        out, err = proc.communicate(timeout=120)  # far less than the 10-minute bake: it did not wait for it
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, out + err
    assert image_of(fleet, "staging") == image("a")
    assert "staging: returned (on shine-api-gateway:" in out and "pager went off" in out
    for t in ("cell1", "cell2", "euw1"):
        assert (live(fleet, t), deployments(fleet, t)) == before[t], t
    doc = journal(fleet)
    assert doc["targets"]["staging"]["status"] == "returned"
    assert {doc["targets"][t]["status"] for t in ("cell1", "cell2", "euw1")} == {"cancelled"}
    told = [e for e in doc["events"] if e["kind"] == "targets_told"]
    assert told and told[0]["targets"] == ["staging"]


def test_two_checkouts_share_one_fleet_run_through_dynamodb(fleet: dict[str, Any], tmp_path: Path) -> None:
    """state: dynamodb: a runner delivers staging and stops at the manual one-box; a second checkout (another CI
    runner) approves it and finishes the same fleet run, wave by wave; neither keeps a local fleet journal."""
    import shutil

    from orchestrator.state.dynamodb import create_table

    create_table(boto3.client("dynamodb", region_name="us-east-1", endpoint_url=fleet["url"]), "snail-fleet", 0)
    state = "state: {backend: dynamodb, table: snail-fleet, region: us-east-1}\n"
    (fleet["root"] / "fleet.yaml").write_text(FLEET.format(one_box=", approval: manual", extra=state))
    other = {**fleet, "root": tmp_path / "runner-b" / "svc"}
    shutil.copytree(fleet["root"], other["root"])
    r = snail(fleet, "fleet", "run", "--skip-preflight")
    assert r.returncode == 0 and "snail fleet approve one-box" in r.stdout, r.stdout + r.stderr
    assert image_of(fleet, "staging") == image("b") and image_of(fleet, "cell1") == image("0")
    assert snail(other, "fleet", "approve", "one-box").returncode == 0
    r = snail(other, "fleet", "run", "--skip-preflight")
    assert r.returncode == 0 and "passed on every target" in r.stdout, r.stdout + r.stderr
    for t in TARGETS:
        assert image_of(fleet, t) == image("b"), t
    doc = json.loads(snail(fleet, "--output", "json", "fleet", "status").stdout)["fleet_run"]
    assert doc["status"] == "succeeded" and order_of(doc, "target_started").count("staging") == 1
    assert not (fleet["root"] / ".snail" / "fleet").exists() and not (other["root"] / ".snail" / "fleet").exists()


@pytest.mark.process
def test_sigterm_on_a_fleet_run_sends_the_in_flight_target_back_and_leaves_the_run_resumable(
    fleet: dict[str, Any],
) -> None:
    """SIGTERM (what CI sends on cancel) while staging bakes v2: staging goes back to v1, verified, the fleet exits
    130, and the fleet run is left unfinished with staging to deliver again (`fleet run --resume`)."""
    assert snail(fleet, "fleet", "run", "--skip-preflight", "--to", "v1").returncode == 0
    v2 = fleet["root"] / "phases" / "v2.yaml"
    v2.write_text(v2.read_text() + "bake: 10m\n")
    proc = cli.start_snail(fleet["root"], "fleet", "run", "--skip-preflight", env=fleet_env(fleet))
    try:
        deadline = time.monotonic() + 120  # a hang guard: the wait is on the event "staging runs v2"
        while image_of(fleet, "staging") != image("b") and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert image_of(fleet, "staging") == image("b"), proc.poll()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out + err
    assert image_of(fleet, "staging") == image("a")
    doc = journal(fleet)
    assert doc["status"] == "running" and doc["targets"]["staging"]["status"] == "pending"
    assert "--resume" in doc["targets"]["staging"]["message"]
    assert [e["targets"] for e in doc["events"] if e["kind"] == "targets_told"] == [["staging"]]
