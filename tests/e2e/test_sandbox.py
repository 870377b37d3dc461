"""The sandbox end to end: a real daemon process, real containers, real HTTP on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import os
import signal
import time
import uuid
from pathlib import Path

import pytest
import requests

from ecsbox import control
from ecsbox.daemon import sandbox_id_for
from ecsbox.errors import DockerUnavailable

pytestmark = pytest.mark.e2e

SPEC = control.SandboxSpec(
    cluster="snail-e2e", service="e2e-api", region="us-east-1", container="api", port=5000, repository="e2e-api"
)


def _fail_or_skip(reason: str) -> None:
    """Skip on a developer machine; under CI=true a missing prerequisite fails."""
    if os.environ.get("CI", "").lower() in ("", "0", "false", "no"):
        pytest.skip(f"{reason}; under CI=true this fails instead")
    pytest.fail(f"{reason} under CI", pytrace=False)


@pytest.fixture(scope="module")
def sandbox(docker_client, tmp_path_factory):
    """A sandbox started with `up` in a fresh state dir on a free port; always brought `down`."""
    import docker

    try:
        docker_client.images.get(control.default_bootstrap_image())
    except docker.errors.ImageNotFound:
        _fail_or_skip(f"base image {control.default_bootstrap_image()} missing: run scripts/docker-up.sh")
    state_dir = tmp_path_factory.mktemp("sandbox")
    started = time.monotonic()
    info = control.up(SPEC, state_dir, port=_free_port())
    info.up_seconds = time.monotonic() - started  # type: ignore[attr-defined]
    yield info
    control.down(state_dir)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _service(info) -> dict:
    return info.client("ecs").describe_services(cluster=SPEC.cluster, services=[SPEC.service])["services"][0]


def _wait(info, until, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        service = _service(info)
        if until(service):
            return service
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out: {service['deployments']} {[e['message'] for e in service['events'][:5]]}")
        time.sleep(0.2)


def _completed_on(td: str):
    return lambda s: (
        len(s["deployments"]) == 1
        and s["deployments"][0]["rolloutState"] == "COMPLETED"
        and s["deployments"][0]["taskDefinition"] == td
    )


def _running_tasks(info) -> list[dict]:
    ecs = info.client("ecs")
    arns = ecs.list_tasks(cluster=SPEC.cluster, serviceName=SPEC.service)["taskArns"]
    return ecs.describe_tasks(cluster=SPEC.cluster, tasks=arns)["tasks"] if arns else []


def _register(info, command: list[str] | None = None, image: str | None = None, health: list[str] | None = None) -> str:
    ecs = info.client("ecs")
    base = ecs.describe_task_definition(taskDefinition=f"{SPEC.service}:1")["taskDefinition"]
    container = dict(base["containerDefinitions"][0])
    if command is not None:
        container["command"] = command
    if image is not None:
        container["image"] = image
    if health is not None:
        container["healthCheck"] = {"command": health, "interval": 1, "timeout": 2, "retries": 2, "startPeriod": 0}
    return ecs.register_task_definition(
        family=SPEC.service,
        containerDefinitions=[container],
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        executionRoleArn=base["executionRoleArn"],
    )["taskDefinition"]["taskDefinitionArn"]


def _labelled(docker_client, sandbox_id: str) -> list:
    return docker_client.containers.list(all=True, filters={"label": f"snail-sandbox-id={sandbox_id}"})


def test_up_seeds_network_registry_logs_role_and_service(sandbox):
    """`up` seeds cluster, public VPC, security group, ECR repo, log group, execution role and service."""
    seeded = sandbox.seeded
    ec2 = sandbox.client("ec2")
    vpc = seeded["vpc_id"]
    assert ec2.describe_vpc_attribute(VpcId=vpc, Attribute="enableDnsHostnames")["EnableDnsHostnames"]["Value"]
    assert ec2.describe_vpc_attribute(VpcId=vpc, Attribute="enableDnsSupport")["EnableDnsSupport"]["Value"]
    subnets = ec2.describe_subnets(SubnetIds=seeded["subnet_ids"])["Subnets"]
    assert len(subnets) == 2 and all(s["MapPublicIpOnLaunch"] and s["VpcId"] == vpc for s in subnets)
    [igw] = ec2.describe_internet_gateways(InternetGatewayIds=[seeded["internet_gateway_id"]])["InternetGateways"]
    assert igw["Attachments"][0]["VpcId"] == vpc
    for subnet in seeded["subnet_ids"]:
        [table] = ec2.describe_route_tables(Filters=[{"Name": "association.subnet-id", "Values": [subnet]}])[
            "RouteTables"
        ]
        assert any(
            r.get("GatewayId") == igw["InternetGatewayId"] and r["DestinationCidrBlock"] == "0.0.0.0/0"
            for r in table["Routes"]
        )
    [sg] = ec2.describe_security_groups(GroupIds=[seeded["security_group_id"]])["SecurityGroups"]
    assert any(p["FromPort"] == SPEC.port and p["IpRanges"][0]["CidrIp"] == "0.0.0.0/0" for p in sg["IpPermissions"])
    assert sandbox.client("ecr").describe_repositories(repositoryNames=["e2e-api"])["repositories"]
    groups = sandbox.client("logs").describe_log_groups(logGroupNamePrefix="/ecs/e2e-api")["logGroups"]
    assert [g["logGroupName"] for g in groups] == ["/ecs/e2e-api"]
    iam = sandbox.client("iam")
    policies = iam.list_attached_role_policies(RoleName="ecsTaskExecutionRole")["AttachedPolicies"]
    assert [p["PolicyName"] for p in policies] == ["AmazonECSTaskExecutionRolePolicy"]
    service = _service(sandbox)
    assert service["deploymentConfiguration"]["deploymentCircuitBreaker"] == {"enable": True, "rollback": False}
    assert service["networkConfiguration"]["awsvpcConfiguration"]["assignPublicIp"] == "ENABLED"
    assert service["deployments"][0]["rolloutState"] == "COMPLETED"
    info = control.status(Path(sandbox.state_dir))
    assert info.healthy and info.pid == sandbox.pid


def test_second_up_is_idempotent(sandbox):
    """`up` on a running sandbox reuses the daemon and seeds nothing new."""
    again = control.up(SPEC, Path(sandbox.state_dir))
    assert again.pid == sandbox.pid
    assert {k: again.seeded[k] for k in sandbox.seeded} == sandbox.seeded
    families = sandbox.client("ecs").list_task_definitions(familyPrefix=SPEC.service)["taskDefinitionArns"]
    assert len(families) == 1


def test_bootstrap_task_serves_health_on_its_network_binding(sandbox, docker_client):
    """The service's real container answers /health on 127.0.0.1:<hostPort> from its networkBindings."""
    [task] = _running_tasks(sandbox)
    [binding] = task["containers"][0]["networkBindings"]
    assert binding["bindIP"] == "127.0.0.1" and binding["containerPort"] == SPEC.port
    response = requests.get(f"http://127.0.0.1:{binding['hostPort']}/health", timeout=5)
    assert response.status_code == 200 and response.json()["status"] == "healthy"
    [container] = _labelled(docker_client, sandbox.sandbox_id)
    assert container.labels["snail-task"] == task["taskArn"].rsplit("/", 1)[-1]


def test_up_without_its_base_image_says_what_to_set_and_starts_nothing(docker_client, tmp_path):
    """The first revision's image is built FROM the base image: one that is neither here nor pullable is named,
    with SNAIL_BASE_IMAGE as the way out, before any daemon, registry or container starts."""
    spec = dataclasses.replace(SPEC, bootstrap_image=f"snail-e2e/no-such-base:{uuid.uuid4().hex[:8]}")
    with pytest.raises(DockerUnavailable) as raised:
        control.up(spec, tmp_path, port=_free_port())
    assert spec.bootstrap_image in raised.value.message and "SNAIL_BASE_IMAGE" in raised.value.message
    assert control.status(tmp_path) is None
    assert _labelled(docker_client, sandbox_id_for(tmp_path)) == []


def test_image_that_exits_reports_essential_container_exited(sandbox):
    """Updating to an image that exits at once stops tasks with 'Essential container in task exited'."""
    good = _service(sandbox)["taskDefinition"]
    bad = _register(sandbox, command=["python3", "-c", "import sys; sys.exit(3)"])
    sandbox.client("ecs").update_service(cluster=SPEC.cluster, service=SPEC.service, taskDefinition=bad)
    service = _wait(sandbox, lambda s: s["deployments"][0]["rolloutState"] == "FAILED", timeout=90)
    assert service["deployments"][0]["rolloutStateReason"] == "ECS deployment circuit breaker: tasks failed to start."
    ecs = sandbox.client("ecs")
    arns = ecs.list_tasks(cluster=SPEC.cluster, serviceName=SPEC.service, desiredStatus="STOPPED")["taskArns"]
    stopped = [
        t for t in ecs.describe_tasks(cluster=SPEC.cluster, tasks=arns)["tasks"] if t["taskDefinitionArn"] == bad
    ]
    assert len(stopped) >= 3
    assert {t["stoppedReason"] for t in stopped} == {"Essential container in task exited"}
    assert {t["containers"][0]["exitCode"] for t in stopped} == {3}
    # The old task kept serving throughout; going back to the good revision completes.
    started = time.monotonic()
    ecs.update_service(cluster=SPEC.cluster, service=SPEC.service, taskDefinition=good)
    _wait(sandbox, _completed_on(good), timeout=60)
    print(f"rollback to the good revision COMPLETED in {time.monotonic() - started:.1f}s")


def test_update_to_new_revision_completes_and_drains_old_container(sandbox, docker_client):
    """A new good revision COMPLETES with a new container serving, and the old container is removed."""
    [old_task] = _running_tasks(sandbox)
    new = _register(sandbox)
    started = time.monotonic()
    sandbox.client("ecs").update_service(cluster=SPEC.cluster, service=SPEC.service, taskDefinition=new)
    _wait(sandbox, _completed_on(new), timeout=60)
    took = time.monotonic() - started
    print(f"update -> COMPLETED with a real container in {took:.1f}s")
    [task] = _running_tasks(sandbox)
    assert task["taskDefinitionArn"] == new and task["taskArn"] != old_task["taskArn"]
    port = task["containers"][0]["networkBindings"][0]["hostPort"]
    assert requests.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200
    deadline = time.monotonic() + 20
    while len(_labelled(docker_client, sandbox.sandbox_id)) != 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [c.labels["snail-task"] for c in _labelled(docker_client, sandbox.sandbox_id)] == [
        task["taskArn"].rsplit("/", 1)[-1]
    ]


def test_unpullable_image_reports_cannot_pull_container_error(sandbox):
    """An image missing from the local registry stops tasks with CannotPullContainerError."""
    good = _service(sandbox)["taskDefinition"]
    bad = _register(sandbox, image=f"{sandbox.registry}/e2e-api:does-not-exist")
    ecs = sandbox.client("ecs")
    ecs.update_service(cluster=SPEC.cluster, service=SPEC.service, taskDefinition=bad)
    _wait(sandbox, lambda s: s["deployments"][0]["failedTasks"] >= 1, timeout=60)
    arns = ecs.list_tasks(cluster=SPEC.cluster, serviceName=SPEC.service, desiredStatus="STOPPED")["taskArns"]
    stopped = [
        t for t in ecs.describe_tasks(cluster=SPEC.cluster, tasks=arns)["tasks"] if t["taskDefinitionArn"] == bad
    ]
    assert stopped and stopped[0]["stoppedReason"].startswith("CannotPullContainerError:")
    assert stopped[0]["stopCode"] == "TaskFailedToStart"
    ecs.update_service(cluster=SPEC.cluster, service=SPEC.service, taskDefinition=good)
    _wait(sandbox, _completed_on(good), timeout=60)


def test_container_health_check_gates_the_rollout(sandbox):
    """A healthCheck that passes makes the task HEALTHY; one that fails stops tasks for failed health checks."""
    ecs = sandbox.client("ecs")
    probe = "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5000/health', timeout=1)"
    healthy = _register(sandbox, health=["CMD", "python3", "-c", probe])
    ecs.update_service(cluster=SPEC.cluster, service=SPEC.service, taskDefinition=healthy)
    _wait(sandbox, _completed_on(healthy), timeout=60)
    [task] = _running_tasks(sandbox)
    assert task["healthStatus"] == "HEALTHY" and task["containers"][0]["healthStatus"] == "HEALTHY"
    sick = _register(sandbox, health=["CMD-SHELL", "exit 1"])
    ecs.update_service(cluster=SPEC.cluster, service=SPEC.service, taskDefinition=sick)
    _wait(sandbox, lambda s: s["deployments"][0]["failedTasks"] >= 1, timeout=60)
    arns = ecs.list_tasks(cluster=SPEC.cluster, serviceName=SPEC.service, desiredStatus="STOPPED")["taskArns"]
    stopped = [
        t for t in ecs.describe_tasks(cluster=SPEC.cluster, tasks=arns)["tasks"] if t["taskDefinitionArn"] == sick
    ]
    assert stopped[0]["stoppedReason"] == "Task failed container health checks"
    ecs.update_service(cluster=SPEC.cluster, service=SPEC.service, taskDefinition=healthy)
    _wait(sandbox, _completed_on(healthy), timeout=60)


def test_killed_daemon_is_detected_and_up_restarts_cleanly(sandbox, docker_client):
    """SIGKILL on the daemon: status reports it dead, `up` removes its orphans and serves again."""
    state_dir = Path(sandbox.state_dir)
    orphans = {c.id for c in _labelled(docker_client, sandbox.sandbox_id)}
    assert orphans
    os.kill(sandbox.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while control.status(state_dir).alive and time.monotonic() < deadline:
        time.sleep(0.1)
    dead = control.status(state_dir)
    assert dead is not None and not dead.alive and not dead.healthy
    started = time.monotonic()
    again = control.up(SPEC, state_dir)
    print(f"restart after SIGKILL: {time.monotonic() - started:.1f}s")
    assert again.pid != sandbox.pid and control.status(state_dir).healthy
    assert orphans.isdisjoint(c.id for c in _labelled(docker_client, sandbox.sandbox_id))
    [task] = _running_tasks(again)
    port = task["containers"][0]["networkBindings"][0]["hostPort"]
    assert requests.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200
    sandbox.pid = again.pid


def test_down_leaves_no_container_and_no_daemon(sandbox, docker_client):
    """`down` stops the daemon, removes every container of the sandbox and forgets it."""
    state_dir = Path(sandbox.state_dir)
    pid = control.status(state_dir).pid
    result = control.down(state_dir)
    assert result["daemon"] == "stopped"
    assert _labelled(docker_client, sandbox_id_for(state_dir)) == []
    assert control.status(state_dir) is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
