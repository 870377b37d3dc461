"""The sandbox's ECS agent against moto's server, through boto3, with tasks that need no containers."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
import requests

from ecsbox import extension
from ecsbox.agent import EcsAgent
from ecsbox.launchers import InstantLauncher

REGION = "us-east-1"
CLUSTER = "shine"
SERVICE = "shine-api-gateway"
GOOD = "127.0.0.1:5055/shine-api-gateway:good"
GOOD2 = "127.0.0.1:5055/shine-api-gateway:good2"
MISSING = "127.0.0.1:5055/shine-api-gateway:missing"
CRASHES = "127.0.0.1:5055/shine-api-gateway:crashes"
PULL_ERROR = "CannotPullContainerError: pull image manifest has been retried 1 time(s): not found"


@pytest.fixture(scope="module")
def endpoint(moto_server: str):
    """The session's moto server, with the sandbox extension installed for this module only."""
    extension.install()
    yield moto_server
    extension.uninstall()  # other tests expect plain moto


@pytest.fixture
def ecs(endpoint):
    """A boto3 ECS client on a freshly reset moto."""
    requests.post(f"{endpoint}/moto-api/reset", timeout=10)
    kwargs = dict(
        endpoint_url=endpoint, region_name=REGION, aws_access_key_id="sandbox", aws_secret_access_key="sandbox"
    )
    client = boto3.client("ecs", **kwargs)
    client.ec2 = boto3.client("ec2", **kwargs)  # type: ignore[attr-defined]
    client.create_cluster(clusterName=CLUSTER)
    return client


@pytest.fixture
def launcher():
    """Tasks RUNNING at once on host port 18080; MISSING cannot be pulled; CRASHES exits with code 3."""
    return InstantLauncher(
        host_port_for=lambda image: 18080,
        fail_reason_for=lambda image: PULL_ERROR if image == MISSING else None,
        exit_code_for=lambda image: 3 if image == CRASHES else None,
    )


@pytest.fixture
def agent(launcher):
    """An agent that never backs off and counts a task healthy once RUNNING, driven by reconcile_once."""
    return EcsAgent(launcher, restart_backoff=(0, 0), steady_after=0)  # every region moto knows


def register(ecs, image: str, health_check: bool = False) -> str:
    """Register a revision of the service's family running `image`; return its ARN."""
    container: dict[str, Any] = {
        "name": "api",
        "image": image,
        "memory": 512,
        "portMappings": [{"containerPort": 5000, "protocol": "tcp"}],
        "essential": True,
    }
    if health_check:
        container["healthCheck"] = {"command": ["CMD-SHELL", "true"], "interval": 5, "retries": 3}
    return ecs.register_task_definition(
        family=SERVICE,
        containerDefinitions=[container],
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
    )["taskDefinition"]["taskDefinitionArn"]


def create_service(ecs, td: str, desired: int = 1, breaker: dict | None = None) -> dict:
    """Create the awsvpc FARGATE service on the default VPC's first subnet."""
    subnet = ecs.ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    sg = ecs.ec2.describe_security_groups()["SecurityGroups"][0]["GroupId"]
    kwargs: dict[str, Any] = dict(
        cluster=CLUSTER,
        serviceName=SERVICE,
        taskDefinition=td,
        desiredCount=desired,
        launchType="FARGATE",
        networkConfiguration={
            "awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [sg], "assignPublicIp": "ENABLED"}
        },
    )
    if breaker is not None:
        kwargs["deploymentConfiguration"] = {
            "deploymentCircuitBreaker": breaker,
            "maximumPercent": 200,
            "minimumHealthyPercent": 100,
        }
    return ecs.create_service(**kwargs)["service"]


def describe(ecs) -> dict:
    """The service as describe_services returns it."""
    return ecs.describe_services(cluster=CLUSTER, services=[SERVICE])["services"][0]


def settle(agent, ecs, until, rounds: int = 20) -> dict:
    """Run scheduler rounds until `until(service)` holds; fail after `rounds`."""
    for _ in range(rounds):
        agent.reconcile_once()
        service = describe(ecs)
        if until(service):
            return service
    raise AssertionError(f"not settled after {rounds} rounds: {service['deployments']}")


def completed(service: dict) -> bool:
    """One PRIMARY deployment, COMPLETED."""
    deps = service["deployments"]
    return len(deps) == 1 and deps[0]["rolloutState"] == "COMPLETED"


def tasks(ecs, desired_status: str = "RUNNING") -> list[dict]:
    """The service's tasks with `desired_status`, described."""
    arns = ecs.list_tasks(cluster=CLUSTER, serviceName=SERVICE, desiredStatus=desired_status)["taskArns"]
    return ecs.describe_tasks(cluster=CLUSTER, tasks=arns)["tasks"] if arns else []


def test_create_service_keeps_deployment_configuration_and_starts_in_progress(ecs, agent):
    """create_service keeps deploymentConfiguration and its deployment starts IN_PROGRESS with 0 running."""
    td = register(ecs, GOOD)
    created = create_service(ecs, td, breaker={"enable": True, "rollback": True})
    assert created["deploymentConfiguration"]["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
    dep = created["deployments"][0]
    assert (dep["status"], dep["rolloutState"], dep["runningCount"], dep["taskDefinition"]) == (
        "PRIMARY",
        "IN_PROGRESS",
        0,
        td,
    )
    assert dep["id"].startswith("ecs-svc/")
    assert describe(ecs)["deploymentConfiguration"]["maximumPercent"] == 200


def test_first_deployment_completes_with_running_task_and_bindings(ecs, agent):
    """The first deployment's task runs with a 127.0.0.1 binding and the rollout COMPLETES with events."""
    td = register(ecs, GOOD)
    create_service(ecs, td)
    service = settle(agent, ecs, completed)
    assert service["runningCount"] == 1 and service["deployments"][0]["runningCount"] == 1
    [task] = tasks(ecs)
    assert task["lastStatus"] == "RUNNING" and task["desiredStatus"] == "RUNNING"
    assert task["taskDefinitionArn"] == td
    assert task["group"] == f"service:{SERVICE}"
    assert task["startedBy"] == service["deployments"][0]["id"]
    assert task["containers"][0]["networkBindings"] == [
        {"bindIP": "127.0.0.1", "containerPort": 5000, "hostPort": 18080, "protocol": "tcp"}
    ]
    messages = [e["message"] for e in service["events"]]
    assert messages[0] == f"(service {SERVICE}) has reached a steady state."
    assert any(
        m.startswith(f"(service {SERVICE}) has started 1 tasks: (task {task['taskArn'].split('/')[-1]})")
        for m in messages
    )
    assert any("deployment completed." in m for m in messages)


def test_update_creates_new_primary_then_completes_and_drains_old(ecs, agent):
    """update_service to rev 2 makes a new IN_PROGRESS PRIMARY (old ACTIVE), then COMPLETED with old drained."""
    td1 = register(ecs, GOOD)
    create_service(ecs, td1)
    first = settle(agent, ecs, completed)["deployments"][0]
    td2 = register(ecs, GOOD2)
    updated = ecs.update_service(cluster=CLUSTER, service=SERVICE, taskDefinition=f"{SERVICE}:2")["service"]
    assert updated["taskDefinition"] == td2
    primary, active = updated["deployments"]
    assert (primary["status"], primary["rolloutState"], primary["taskDefinition"], primary["runningCount"]) == (
        "PRIMARY",
        "IN_PROGRESS",
        td2,
        0,
    )
    assert primary["rolloutStateReason"] == f"ECS deployment {primary['id']} in progress."
    assert (active["id"], active["status"], active["taskDefinition"]) == (first["id"], "ACTIVE", td1)
    old_task = tasks(ecs)[0]["taskArn"]

    service = settle(agent, ecs, completed)
    dep = service["deployments"][0]
    assert (dep["id"], dep["taskDefinition"], dep["runningCount"]) == (primary["id"], td2, 1)
    assert dep["rolloutStateReason"] == f"ECS deployment {primary['id']} completed."
    [task] = tasks(ecs)
    assert task["taskDefinitionArn"] == td2
    [old] = ecs.describe_tasks(cluster=CLUSTER, tasks=[old_task])["tasks"]
    assert (old["lastStatus"], old["desiredStatus"]) == ("STOPPED", "STOPPED")
    assert old["stoppedReason"] == f"Scaling activity initiated by (deployment {primary['id']})"
    assert any("has stopped 1 running tasks" in e["message"] for e in service["events"])


def test_force_new_deployment_makes_a_new_primary_on_the_same_revision(ecs, agent):
    """forceNewDeployment starts a new PRIMARY on the same task definition and replaces the task."""
    td = register(ecs, GOOD)
    create_service(ecs, td)
    first = settle(agent, ecs, completed)["deployments"][0]
    deps = ecs.update_service(cluster=CLUSTER, service=SERVICE, forceNewDeployment=True)["service"]["deployments"]
    assert [d["status"] for d in deps] == ["PRIMARY", "ACTIVE"] and deps[1]["id"] == first["id"]
    service = settle(agent, ecs, completed)
    assert service["deployments"][0]["id"] == deps[0]["id"] and service["deployments"][0]["taskDefinition"] == td


def test_unpullable_image_fails_tasks_with_stopped_reason(ecs, agent):
    """An image that cannot be pulled stops each task with CannotPullContainerError and counts failedTasks."""
    td = register(ecs, MISSING)
    create_service(ecs, td)
    service = settle(agent, ecs, lambda s: s["deployments"][0]["failedTasks"] >= 2)
    assert service["deployments"][0]["rolloutState"] == "IN_PROGRESS"  # no circuit breaker: keeps trying
    stopped = tasks(ecs, "STOPPED")
    assert stopped and all(t["stoppedReason"] == PULL_ERROR for t in stopped)
    assert stopped[0]["stopCode"] == "TaskFailedToStart"
    assert stopped[0]["containers"][0]["reason"] == PULL_ERROR


def test_crashing_container_reports_essential_exit_and_is_replaced(ecs, launcher):
    """A container that exits is STOPPED with 'Essential container in task exited', its exit code, and replaced."""
    agent = EcsAgent(launcher, region=REGION, restart_backoff=(0, 0), steady_after=3600)
    td = register(ecs, CRASHES)
    create_service(ecs, td)
    service = settle(agent, ecs, lambda s: s["deployments"][0]["failedTasks"] >= 1)
    [stopped, *_] = tasks(ecs, "STOPPED")
    assert stopped["stoppedReason"] == "Essential container in task exited"
    assert stopped["stopCode"] == "EssentialContainerExited"
    assert stopped["containers"][0]["exitCode"] == 3
    assert len(launcher.started) >= 2  # replaced
    assert service["deployments"][0]["rolloutState"] == "IN_PROGRESS"


def test_circuit_breaker_fails_and_rolls_back_to_previous_revision(ecs, agent):
    """With the circuit breaker and rollback, a failing rev 2 is FAILED and ECS rolls back to rev 1."""
    td1 = register(ecs, GOOD)
    create_service(ecs, td1, breaker={"enable": True, "rollback": True})
    first = settle(agent, ecs, completed)["deployments"][0]
    register(ecs, MISSING)
    bad = ecs.update_service(cluster=CLUSTER, service=SERVICE, taskDefinition=f"{SERVICE}:2")["service"]["deployments"][
        0
    ]

    def rolled_back(s: dict) -> bool:
        return any(d["id"] == bad["id"] and d["rolloutState"] == "FAILED" for d in s["deployments"]) or (
            completed(s) and s["deployments"][0]["id"] != bad["id"]
        )

    service = settle(agent, ecs, rolled_back)
    failed = next(d for d in service["deployments"] if d["id"] == bad["id"])
    assert failed["rolloutStateReason"] == "ECS deployment circuit breaker: tasks failed to start."
    assert failed["failedTasks"] >= 3 and failed["status"] == "ACTIVE"
    primary = service["deployments"][0]
    assert (
        primary["status"] == "PRIMARY"
        and primary["taskDefinition"] == td1
        and primary["id"] not in (bad["id"], first["id"])
    )
    assert service["taskDefinition"] == td1
    service = settle(agent, ecs, completed)
    assert service["deployments"][0]["id"] == primary["id"]
    assert [t["taskDefinitionArn"] for t in tasks(ecs)] == [td1]
    messages = [e["message"] for e in service["events"]]
    assert f"(service {SERVICE}) (deployment {bad['id']}) deployment failed: tasks failed to start." in messages
    assert f"(service {SERVICE}) rolling back to deployment {first['id']}." in messages


def test_circuit_breaker_without_rollback_leaves_failed_primary(ecs, agent):
    """Circuit breaker without rollback: the PRIMARY is FAILED and the service keeps the bad revision."""
    td1 = register(ecs, GOOD)
    create_service(ecs, td1, breaker={"enable": True, "rollback": False})
    settle(agent, ecs, completed)
    td2 = register(ecs, MISSING)
    ecs.update_service(cluster=CLUSTER, service=SERVICE, taskDefinition=td2)
    service = settle(agent, ecs, lambda s: s["deployments"][0]["rolloutState"] == "FAILED")
    assert service["deployments"][0]["taskDefinition"] == td2 and service["taskDefinition"] == td2
    assert service["deployments"][1]["runningCount"] == 1  # the old task keeps serving


def test_desired_count_is_honoured_up_and_down(ecs, agent):
    """desiredCount 3 runs 3 tasks; scaling to 1 stops 2 and the service is steady again."""
    td = register(ecs, GOOD)
    create_service(ecs, td, desired=3)
    service = settle(agent, ecs, completed)
    assert service["runningCount"] == 3 and len(tasks(ecs)) == 3
    ecs.update_service(cluster=CLUSTER, service=SERVICE, desiredCount=1)
    service = settle(agent, ecs, lambda s: s["runningCount"] == 1)
    assert service["deployments"][0]["desiredCount"] == 1 and len(tasks(ecs)) == 1
    assert len(service["deployments"]) == 1


def test_min_healthy_percent_limits_replacement(ecs, agent, launcher):
    """With maximumPercent 100 / minimumHealthyPercent 50, a rollout never runs more than desired tasks."""
    td1 = register(ecs, GOOD)
    create_service(ecs, td1, desired=2)
    settle(agent, ecs, completed)
    ecs.update_service(
        cluster=CLUSTER,
        service=SERVICE,
        taskDefinition=register(ecs, GOOD2),
        deploymentConfiguration={"maximumPercent": 100, "minimumHealthyPercent": 50},
    )
    peak = 0
    for _ in range(20):
        agent.reconcile_once()
        peak = max(peak, len(tasks(ecs)))
        if completed(describe(ecs)):
            break
    assert completed(describe(ecs)) and peak <= 2
    assert describe(ecs)["deploymentConfiguration"]["deploymentCircuitBreaker"] == {"enable": False, "rollback": False}


def test_unhealthy_task_is_stopped_for_failed_health_checks(ecs, agent, launcher):
    """A task whose container healthCheck reports UNHEALTHY is stopped with ECS's health-check reason."""
    td = register(ecs, GOOD, health_check=True)
    create_service(ecs, td)
    settle(agent, ecs, completed)
    [task] = tasks(ecs)
    assert task["healthStatus"] == "HEALTHY"
    launcher.set_health(task["taskArn"].split("/")[-1], "UNHEALTHY")
    settle(agent, ecs, lambda s: s["deployments"][0]["failedTasks"] == 1)
    [stopped] = ecs.describe_tasks(cluster=CLUSTER, tasks=[task["taskArn"]])["tasks"]
    assert stopped["stoppedReason"] == "Task failed container health checks"


def test_stop_task_through_the_api_is_replaced(ecs, agent, launcher):
    """StopTask on a service task stops its container and the scheduler starts a replacement."""
    td = register(ecs, GOOD)
    create_service(ecs, td)
    settle(agent, ecs, completed)
    [task] = tasks(ecs)
    ecs.stop_task(cluster=CLUSTER, task=task["taskArn"], reason="operator test")
    settle(
        agent,
        ecs,
        lambda s: len(tasks(ecs)) == 1 and tasks(ecs)[0]["taskArn"] != task["taskArn"] and s["runningCount"] == 1,
    )
    [stopped] = ecs.describe_tasks(cluster=CLUSTER, tasks=[task["taskArn"]])["tasks"]
    assert stopped["stoppedReason"] == "operator test" and stopped["stopCode"] == "UserInitiated"
    assert task["taskArn"].split("/")[-1] in launcher.stopped


def test_agent_thread_completes_a_rollout(ecs, launcher):
    """Started as a thread, the agent completes a rollout on its own."""
    import time

    agent = EcsAgent(launcher, region=REGION, interval=0.05, restart_backoff=(0, 0), steady_after=0.2)
    create_service(ecs, register(ecs, GOOD))
    agent.start()
    try:
        deadline = time.monotonic() + 10
        while not completed(describe(ecs)) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        agent.stop()
    assert completed(describe(ecs)) and agent.errors == 0


def test_uninstall_restores_plain_moto():
    """uninstall() puts moto's own methods back, and install() patches them again."""
    from moto.ecs.models import EC2ContainerServiceBackend
    from moto.ecs.responses import EC2ContainerServiceResponse

    extension.uninstall()
    try:
        assert "call_action" not in EC2ContainerServiceResponse.__dict__
        assert EC2ContainerServiceBackend.update_service.__module__ == "moto.ecs.models"
    finally:
        extension.install()
    assert EC2ContainerServiceBackend.update_service.__module__ == "ecsbox.extension"


def test_missing_service_is_reported_missing(ecs, agent):
    """describe_services on a service never created reports MISSING, and the agent starts nothing."""
    agent.reconcile_once()
    out = ecs.describe_services(cluster=CLUSTER, services=[SERVICE])
    assert out["services"] == [] and out["failures"][0]["reason"] == "MISSING"
    assert agent.task_records() == []
