"""API-call budgets as assertions on recorded calls (a botocore before-call hook; calls are deterministic, time
is not): the preflight cache (hit, miss, what invalidates it, failures never cached), a normal no-op scheduled
`snail run` (<= 3 calls, only the ECS client made) and the sandbox seeded once, not per command."""

from __future__ import annotations

import os
import subprocess
import textwrap
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from orchestrator.aws.session import AwsContext
from orchestrator.doctor import preflight as pf
from tests.doctor_env import CLUSTER, MANIFEST, SERVICE, good_env
from tests.harness.cli import snail

NO_OP_BUDGET = 3  # AWS calls per service for a scheduled run that finds everything live and good


@pytest.fixture
def calls(env: Any) -> Any:
    """Every AWS call the test's AwsContext makes, as `service:Operation`."""
    sink: list[str] = []
    stop = env.aws.record_calls(sink)
    yield sink
    stop()


def _ecs(env: Any) -> Any:
    return env.client("ecs")


# ------------------------------------------------------------------------------------------ preflight cache


def test_preflight_passes_then_answers_from_cache_with_one_call(env, calls) -> None:
    """The first preflight makes every check; the next one makes exactly one DescribeServices call."""
    first = pf.preflight(env.pipeline, env.aws)
    assert not first.cached and first.report is not None and first.report.ok()
    assert "ec2:DescribeSubnets" in calls and "iam:GetRole" in calls and len(calls) > 10
    assert calls.count("ecs:DescribeServices") == 1  # the checks reuse the preflight's describe
    calls.clear()
    second = pf.preflight(env.pipeline, env.aws)
    assert second.cached and second.report is None
    assert calls == ["ecs:DescribeServices"]


def test_pipeline_change_doctor_reads_invalidates_but_a_new_image_does_not(env, calls) -> None:
    """Changing a service setting re-checks; a phase's new image (no check reads it) keeps the cache."""
    pf.preflight(env.pipeline, env.aws)
    changed = env.with_service(desired_count=2)
    assert not pf.preflight(changed, env.aws).cached
    assert pf.preflight(changed, env.aws).cached
    phase = changed.phases[0]
    new_image = replace(changed, phases=(replace(phase, image=replace(phase.image, ref=f"{env.repository_uri}:v2")),))
    calls.clear()
    assert pf.preflight(new_image, env.aws).cached
    assert calls == ["ecs:DescribeServices"]


def test_template_edit_invalidates(env) -> None:
    """An edit of the task-definition template (its bytes are in the key) re-checks."""
    pf.preflight(env.pipeline, env.aws)
    template = env.pipeline.service.task_definition
    template.write_text(template.read_text() + "\n")
    assert not pf.preflight(env.pipeline, env.aws).cached


def test_service_configuration_change_in_ecs_invalidates(env, calls) -> None:
    """Someone changes the service's deployment configuration: the next preflight checks everything again."""
    pf.preflight(env.pipeline, env.aws)
    _ecs(env).update_service(
        cluster=CLUSTER,
        service=SERVICE,
        deploymentConfiguration={"maximumPercent": 150, "minimumHealthyPercent": 50},
    )
    calls.clear()
    again = pf.preflight(env.pipeline, env.aws)
    assert not again.cached and again.report is not None
    assert "ec2:DescribeSubnets" in calls


def test_new_revision_on_the_service_keeps_the_cache(env) -> None:
    """The live revision is not in the key (each run's plan reads it): a deployed release keeps the cache."""
    pf.preflight(env.pipeline, env.aws)
    env.point_service_at(env.register(environment=[{"name": "PORT", "value": "5000"}, {"name": "X", "value": "1"}]))
    assert pf.preflight(env.pipeline, env.aws).cached


def test_entry_expires_after_the_ttl(env, monkeypatch) -> None:
    """After SNAIL_PREFLIGHT_TTL seconds the entry is stale and everything is checked again."""
    monkeypatch.setenv("SNAIL_PREFLIGHT_TTL", "600")
    now = [1_000_000.0]
    monkeypatch.setattr(pf, "_now", lambda: now[0])
    pf.preflight(env.pipeline, env.aws)
    now[0] += 599
    assert pf.preflight(env.pipeline, env.aws).cached
    now[0] += 2
    assert not pf.preflight(env.pipeline, env.aws).cached


def test_ttl_zero_never_caches(env, monkeypatch) -> None:
    """SNAIL_PREFLIGHT_TTL=0: every preflight checks everything and nothing is written."""
    monkeypatch.setenv("SNAIL_PREFLIGHT_TTL", "0")
    assert not pf.preflight(env.pipeline, env.aws).cached
    assert not pf.preflight(env.pipeline, env.aws).cached
    assert not (env.pipeline.state_dir() / pf.CACHE_FILE).exists()


def _break_security_group(env: Any) -> None:
    env.client("ec2").revoke_security_group_ingress(
        GroupId=env.security_group,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 5000, "ToPort": 5000, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
    )


def test_failed_preflight_is_never_cached(env) -> None:
    """A failing check is reported by every preflight until it is fixed; no entry is written."""
    _break_security_group(env)
    for _ in range(2):
        result = pf.preflight(env.pipeline, env.aws)
        assert not result.cached and result.report is not None
        assert [c.id for c in result.report.failed] == ["network.security-groups"]
    assert not (env.pipeline.state_dir() / pf.CACHE_FILE).exists()


def test_doctor_rechecks_drops_a_failed_entry_and_refreshes_a_passed_one(env, calls) -> None:
    """`snail doctor` always checks: a failure it finds drops the cached pass; once fixed, its pass is reused."""
    pf.preflight(env.pipeline, env.aws)
    _break_security_group(env)
    calls.clear()
    report = pf.doctor_and_record(env.pipeline, env.aws)  # what `snail doctor` runs
    assert not report.ok() and "ec2:DescribeSecurityGroups" in calls
    assert not pf.preflight(env.pipeline, env.aws).cached  # the stale pass is gone
    env.client("ec2").authorize_security_group_ingress(
        GroupId=env.security_group,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 5000, "ToPort": 5000, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
    )
    assert pf.doctor_and_record(env.pipeline, env.aws).ok()
    calls.clear()
    assert pf.preflight(env.pipeline, env.aws).cached and calls == ["ecs:DescribeServices"]


def test_missing_service_is_never_cached(aws, tmp_path) -> None:
    """No service (the field log's MISSING): nothing to fingerprint, so the checks run every time."""
    missing = good_env(aws, tmp_path, create=False)
    for _ in range(2):
        result = pf.preflight(missing.pipeline, aws)
        assert not result.cached and result.report is not None
        assert "service.exists" in [c.id for c in result.report.failed]


# ------------------------------------------------------------------------------------------ a real no-op run


def _pipeline_files(root: Path, known_good: Any, image: str) -> None:
    """pipeline.yaml + one phase for the known-good environment (same settings doctor_env's pipeline has)."""
    (root / "pipeline.yaml").write_text(
        textwrap.dedent(f"""\
        version: 1
        service:
          cluster: {CLUSTER}
          name: {SERVICE}
          region: us-east-1
          container: api
          port: 5000
          task_definition: phases/taskdef.json
          network: {{subnets: [{", ".join(known_good.subnets)}], security_groups: [{known_good.security_group}], assign_public_ip: true}}
        registry:
          ecr: {SERVICE}
        defaults:
          gates:
            - {{type: ecs-rollout, timeout: 1m, poll: 0.2s}}
            - {{type: http, path: /health, expect: {{status: 200}}, retries: {{attempts: 5, wait: 0.2s}}}}
          bake: 0s
        phases: [health-only]
        """)
    )
    (root / "phases" / "health-only.yaml").write_text(f'name: health-only\nimage: {{ref: "{image}"}}\n')


def _snail(root: Path, url: str, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, list[str]]]:
    """`snail ARGS` against moto's server, with every AWS call it makes recorded (each call builds its own
    AwsContext, as a new process does: its clients are the ones it made)."""
    calls: list[str] = []
    made: list[str] = []
    original = AwsContext.client

    def client(self: AwsContext, service: str) -> Any:
        if service not in self._clients:
            made.append(service)
            c = original(self, service)
            c.meta.events.register(
                "before-call",
                lambda model=None, **_: calls.append(model.service_model.service_name + ":" + model.name),
            )
            return c
        return original(self, service)

    AwsContext.client = client  # type: ignore[method-assign]
    try:
        r = snail(
            root, *args, env={"SNAIL_ENDPOINT_URL": url, "SNAIL_FILE": str(root / "pipeline.yaml")}, hermetic=True
        )
    finally:
        AwsContext.client = original  # type: ignore[method-assign]
    return r, {"calls": calls, "clients": made}


def _fresh_moto(url: str) -> AwsContext:
    """An empty moto server state, and a context that talks to it."""
    import requests

    requests.post(f"{url}/moto-api/reset", timeout=10)
    return AwsContext(
        region="us-east-1",
        endpoint_url=url,
        credentials={"aws_access_key_id": "testing", "aws_secret_access_key": "testing"},
    )


def test_scheduled_noop_run_stays_within_budget(server, tmp_path, http_server) -> None:
    """A normal `snail run` (preflight on) delivers; the scheduled re-run makes <= 3 calls with only the ECS
    client; an ECS-side change to the service makes the next run check everything again."""
    url = server["url"]
    ctx = _fresh_moto(url)
    known_good = good_env(ctx, tmp_path)
    manifest = MANIFEST.replace("a" * 64, "c" * 64)  # a second image, really in the repository (doctor checks)
    pushed = ctx.client("ecr").put_image(repositoryName=SERVICE, imageManifest=manifest, imageTag="release-2")
    image = f"{known_good.repository_uri}@{pushed['image']['imageId']['imageDigest']}"
    health, _ = http_server()
    server["ports"][image] = int(health.rsplit(":", 1)[1])
    server["ports"][known_good.image] = int(health.rsplit(":", 1)[1])
    _pipeline_files(tmp_path, known_good, image)

    first, rec = _snail(tmp_path, url, "run")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "ec2:DescribeSubnets" in rec["calls"]  # the preflight really ran

    noop, rec = _snail(tmp_path, url, "run")
    assert noop.returncode == 0 and "nothing to do" in noop.stdout, noop.stdout + noop.stderr
    assert len(rec["calls"]) <= NO_OP_BUDGET, rec["calls"]
    assert all(c.startswith("ecs:") for c in rec["calls"]) and rec["clients"] == ["ecs"]

    ctx.client("ecs").update_service(
        cluster=CLUSTER, service=SERVICE, deploymentConfiguration={"maximumPercent": 200, "minimumHealthyPercent": 50}
    )
    after, rec = _snail(tmp_path, url, "run")
    assert after.returncode == 0 and "nothing to do" in after.stdout, after.stdout + after.stderr
    assert "ec2:DescribeSubnets" in rec["calls"]


def test_a_release_reads_the_service_twice_before_it_updates_it(server, tmp_path, http_server) -> None:
    """A new release by a normal `snail run` whose preflight is cached: the plan's DescribeServices serves the
    preflight too; the only other read before UpdateService is the stale-plan check under the lock."""
    url = server["url"]
    ctx = _fresh_moto(url)
    known_good = good_env(ctx, tmp_path)
    health, _ = http_server()
    images = []
    for n, digit in enumerate("cd"):
        manifest = MANIFEST.replace("a" * 64, digit * 64)
        pushed = ctx.client("ecr").put_image(repositoryName=SERVICE, imageManifest=manifest, imageTag=f"r{n}")
        images.append(f"{known_good.repository_uri}:{pushed['image']['imageId']['imageTag']}")  # moto's digests repeat
    for img in (known_good.image, *images):
        server["ports"][img] = int(health.rsplit(":", 1)[1])
    _pipeline_files(tmp_path, known_good, images[0])
    first, rec = _snail(tmp_path, url, "run")
    assert first.returncode == 0, first.stdout + first.stderr

    _pipeline_files(tmp_path, known_good, images[1])  # a new image: same pipeline as doctor reads it, cache holds
    second, rec = _snail(tmp_path, url, "run")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "ecs:UpdateService" in rec["calls"], (second.stdout, rec["calls"])
    before_update = rec["calls"][: rec["calls"].index("ecs:UpdateService")]
    assert before_update.count("ecs:DescribeServices") == 2, before_update
    assert len(before_update) <= 5, before_update  # + ListTaskDefinitions, DescribeTaskDefinition, Register


# ------------------------------------------------------------------------------------------ sandbox seeding


def test_sandbox_is_seeded_once_not_per_command(tmp_path, monkeypatch, moto_server) -> None:
    """`--sandbox` commands reuse a sandbox `up` seeded for this service; one never seeded for it is seeded."""
    import requests

    from ecsbox import control

    requests.post(f"{moto_server}/moto-api/reset", timeout=10)
    spec = control.SandboxSpec(cluster=CLUSTER, service=SERVICE, repository=SERVICE)
    info = control.SandboxInfo(pid=os.getpid(), endpoint_url=moto_server, registry="127.0.0.1:5055", region="us-east-1")
    control._write_info(tmp_path, info)
    seeds: list[str] = []  # seeding itself is the e2e sandbox tests' business; here: when it happens
    # manage_docker=False: this sandbox is a record over moto's server, with no Docker (no placeholder image build)
    monkeypatch.setattr(control, "seed", lambda i, s: seeds.append(s.service) or {"service": s.service})

    first = control.ensure_up(
        spec, tmp_path, wait_steady=0, manage_docker=False
    )  # up, but never seeded for this service
    assert seeds == [SERVICE] and spec.key() in first.seeded_for
    for _ in range(3):  # every later --sandbox command
        control.ensure_up(spec, tmp_path, wait_steady=0, manage_docker=False)
    assert seeds == [SERVICE]
    no_service = control.SandboxSpec(cluster=CLUSTER, service=SERVICE, repository=SERVICE, create_service=False)
    control.ensure_up(
        no_service, tmp_path, wait_steady=0, manage_docker=False
    )  # the same world whether or not up made the service
    assert seeds == [SERVICE]
    other = replace(spec, service="other-api")
    control.ensure_up(other, tmp_path, wait_steady=0, manage_docker=False)
    assert seeds == [SERVICE, "other-api"]


# ------------------------------------------------------------------------------------------ what clients keep


def test_clients_are_built_without_doc_strings_or_unused_endpoints() -> None:
    """AwsContext's models carry no documentation strings and its endpoints table only the services snail
    or a credential provider calls (together about 14 MB of a five-client run's peak)."""
    from orchestrator.aws.models import ENDPOINT_SERVICES

    ctx = AwsContext(region="us-east-1", credentials={"aws_access_key_id": "a", "aws_secret_access_key": "b"})
    desc = ctx.client("ec2").meta.service_model._service_description
    assert desc["operations"]["DescribeSubnets"]["name"] == "DescribeSubnets"
    assert not any(isinstance(op.get("documentation"), str) for op in desc["operations"].values())
    assert not any(isinstance(shape.get("documentation"), str) for shape in desc["shapes"].values())
    endpoints = ctx.session()._session.get_component("data_loader").load_data("endpoints")
    listed = {name for partition in endpoints["partitions"] for name in partition["services"]}
    assert "ecs" in listed and listed <= ENDPOINT_SERVICES


# ------------------------------------------------------------------------------------------ the diagnosis


def test_diagnosis_trusts_a_valid_preflight_for_the_infrastructure(env, calls) -> None:
    """After a rollback the diagnosis does not ask EC2, IAM or Logs again what a valid preflight just proved;
    without one (or once it is stale) it checks them."""
    from orchestrator.doctor import diagnose

    diagnose(env.pipeline, env.aws)
    assert any(c.startswith(("ec2:", "iam:")) for c in calls)  # no preflight yet: everything is checked
    pf.preflight(env.pipeline, env.aws)
    calls.clear()
    diagnosis = diagnose(env.pipeline, env.aws)
    assert not any(c.startswith(("ec2:", "iam:", "logs:DescribeLogGroups")) for c in calls), calls
    assert diagnosis.failed_checks == ()
    _break_security_group(env)  # the service's description cannot show this: the entry stays valid (TTL)
    _ecs(env).update_service(
        cluster=CLUSTER, service=SERVICE, deploymentConfiguration={"maximumPercent": 200, "minimumHealthyPercent": 50}
    )
    calls.clear()
    diagnosis = diagnose(env.pipeline, env.aws)  # the service changed: the entry no longer vouches
    assert "ec2:DescribeSecurityGroups" in calls
    assert [c.id for c in diagnosis.failed_checks] == ["network.security-groups"]
