"""diagnose() and create_service() against moto; ECS shapes moto cannot produce come from after-call hooks."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from orchestrator.aws.ecs import EcsClient
from orchestrator.config.model import LoadBalancerSpec, NetworkSpec
from orchestrator.doctor import diagnose
from orchestrator.errors import ConfigError
from tests.doctor_env import CLUSTER, SERVICE, aws_context, good_env
from tests.harness.moto import plain_moto

PULL = (
    "CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref "
    "123456789012.dkr.ecr.us-east-1.amazonaws.com/shine-api-gateway:enhanced-v5: i/o timeout"
)


@pytest.fixture
def aws():
    """An AwsContext on in-process moto, with task states pinned (moto drifts them on every describe)."""
    with plain_moto(pinned_tasks=True):
        yield aws_context()


@pytest.fixture
def env(aws, tmp_path):
    """The known-good environment."""
    return good_env(aws, tmp_path)


def run_tasks(env, count=2, revision=None):
    """Start `count` tasks of a revision in the cluster (moto lists them under the service)."""
    out = env.client("ecs").run_task(
        cluster=CLUSTER,
        taskDefinition=revision or env.taskdef_arn,
        count=count,
        launchType="FARGATE",
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": [env.subnets[0]],
                "securityGroups": [env.security_group],
                "assignPublicIp": "ENABLED",
            }
        },
    )
    return [t["taskArn"] for t in out["tasks"]]


def stop_like_aws(env, task_arns, reason, exit_code=None, container_reason="", stop_code="EssentialContainerExited"):
    """Make describe_tasks answer as AWS does for tasks that stopped (moto never stops them this way)."""

    def hook(parsed, **_):
        for t in parsed.get("tasks", []):
            if t["taskArn"] in task_arns:
                t.update(lastStatus="STOPPED", desiredStatus="STOPPED", stoppedReason=reason, stopCode=stop_code)
                for c in t.get("containers", []):
                    c["lastStatus"] = "STOPPED"
                    c.pop("exitCode", None)
                    if exit_code is not None:
                        c["exitCode"] = exit_code
                    if container_reason:
                        c["reason"] = container_reason

    env.client("ecs").meta.events.register("after-call.ecs.DescribeTasks", hook)


def test_diagnose_pull_error_names_the_missing_route(env):
    """CannotPullContainerError is explained by the failing network check, in plain words."""
    ec2 = env.client("ec2")
    ec2.delete_route(RouteTableId=env.route_table, DestinationCidrBlock="0.0.0.0/0")
    env.client("ecs").update_service(
        cluster=CLUSTER,
        service=SERVICE,
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": list(env.subnets),
                "securityGroups": [env.security_group],
                "assignPublicIp": "DISABLED",
            }
        },
    )
    arns = run_tasks(env)
    stop_like_aws(env, arns[:1], "Task failed to start", container_reason=PULL, stop_code="TaskFailedToStart")
    d = diagnose(env.pipeline, env.aws, since=None, revision_arn=env.taskdef_arn)
    assert d.summary().startswith(
        f"tasks stop with CannotPullContainerError: {env.subnets[0]} has no route to an internet gateway "
        "and assignPublicIp is DISABLED"
    )
    assert len(d.stopped_tasks) == 1 and d.stopped_tasks[0].pull_failed
    assert d.running_tasks == 1
    assert "network.routes" in [c.id for c in d.failed_checks]


def test_diagnose_pull_error_without_a_failing_check_quotes_ecs(env):
    """With nothing else failing, the pull error itself is quoted."""
    arns = run_tasks(env, count=1)
    stop_like_aws(env, arns, PULL, stop_code="TaskFailedToStart")
    assert (
        diagnose(env.pipeline, env.aws, None, env.taskdef_arn)
        .summary()
        .startswith("tasks stop with CannotPullContainerError: CannotPullContainerError: pull image manifest")
    )


def test_diagnose_container_exit_code(env):
    """A crashing container: 'container api exited with code 1: Essential container in task exited'."""
    arns = run_tasks(env, count=2)
    stop_like_aws(env, arns, "Essential container in task exited", exit_code=1)
    d = diagnose(env.pipeline, env.aws, None, env.taskdef_arn)
    assert d.summary() == "container api exited with code 1: Essential container in task exited (2 tasks)"
    assert [c.exit_code for t in d.stopped_tasks for c in t.containers] == [1, 1]


def test_diagnose_only_looks_at_the_given_revision(env):
    """Stopped tasks of another revision are not this rollout's evidence."""
    other = env.register()
    arns = run_tasks(env, count=1, revision=other)
    stop_like_aws(env, arns, "Essential container in task exited", exit_code=137)
    d = diagnose(env.pipeline, env.aws, None, env.taskdef_arn)
    assert d.stopped_tasks == ()
    assert diagnose(env.pipeline, env.aws, None, other).stopped_tasks[0].containers[0].exit_code == 137


def test_diagnose_service_events_since_the_deploy(env):
    """Only events since `since` are kept, oldest first; with nothing else wrong the summary quotes ECS and
    points at the application."""
    t0 = datetime(2025, 8, 11, 20, 40, tzinfo=timezone.utc)
    events = [
        {
            "id": "3",
            "createdAt": t0 + timedelta(minutes=5),
            "message": "(service shine-api-gateway) has reached a steady state.",
        },
        {
            "id": "2",
            "createdAt": t0 + timedelta(minutes=1),
            "message": "(service shine-api-gateway) has started 1 tasks.",
        },
        {"id": "1", "createdAt": t0 - timedelta(hours=1), "message": "(service shine-api-gateway) old news."},
    ]
    env.client("ecs").meta.events.register(
        "after-call.ecs.DescribeServices",
        lambda parsed, **_: [s.update(events=events) for s in parsed.get("services", [])],
    )
    d = diagnose(env.pipeline, env.aws, since=t0, revision_arn=env.taskdef_arn)
    assert [e["message"] for e in d.events] == [events[1]["message"], events[0]["message"]]
    assert d.summary() == (
        "no task stopped and no doctor check fails (ECS's last word: (service shine-api-gateway) "
        "has reached a steady state.): the application's answers failed the gate"
    )


def test_diagnose_target_health_reasons(env):
    """Unhealthy targets are reported with the load balancer's reason code and description."""
    elb = env.client("elbv2")
    tg = elb.create_target_group(Name="shine-tg", Protocol="HTTP", Port=5000, VpcId=env.vpc, TargetType="ip")[
        "TargetGroups"
    ][0]
    p = env.with_service(load_balancer=LoadBalancerSpec(tg["TargetGroupArn"], 5000))
    unhealthy = [
        {
            "Target": {"Id": "10.20.0.5", "Port": 5000},
            "HealthCheckPort": "5000",
            "TargetHealth": {
                "State": "unhealthy",
                "Reason": "Target.ResponseCodeMismatch",
                "Description": "Health checks failed with these codes: [404]",
            },
        }
    ]
    elb.meta.events.register(
        "after-call.elastic-load-balancing-v2.DescribeTargetHealth",
        lambda parsed, **_: parsed.update(TargetHealthDescriptions=unhealthy),
    )
    d = diagnose(p, env.aws, None, env.taskdef_arn)
    assert (
        "target 10.20.0.5:5000 is unhealthy: Target.ResponseCodeMismatch (Health checks failed with these codes: [404])"
    ) in d.summary()


def test_diagnose_masks_secrets_and_is_json(env):
    """Credential-like text in stop reasons is masked; to_dict() is JSON with the summary."""
    arns = run_tasks(env, count=1)
    stop_like_aws(env, arns, "Essential container in task exited: bad key AKIAABCDEFGHIJKLMNOP", exit_code=1)
    d = diagnose(env.pipeline, env.aws, None, env.taskdef_arn)
    text = json.dumps(d.to_dict(), default=str)
    assert "AKIAABCDEFGHIJKLMNOP" not in text and "AKIAABCDEFGHIJKLMNOP" not in d.summary()
    assert json.loads(text)["summary"].startswith("container api exited with code 1")


def test_diagnose_survives_access_denied(env):
    """An AWS refusal while listing tasks is recorded in `errors`, not raised."""
    from botocore.exceptions import ClientError

    def deny(**_):
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "ListTasks")

    env.client("ecs").meta.events.register("before-call.ecs.ListTasks", deny)
    d = diagnose(env.pipeline, env.aws, None, env.taskdef_arn)
    assert any("ecs:ListTasks" in e for e in d.errors)
    assert isinstance(d.summary(), str)


def test_diagnose_describes_tasks_in_one_batch(env):
    """STOPPED and RUNNING tasks are listed separately and described together in one call."""
    arns = run_tasks(env, count=3)
    stop_like_aws(env, arns[:1], "Essential container in task exited", exit_code=1)
    calls: list[str] = []
    env.client("ecs").meta.events.register("before-call", lambda model, **_: calls.append(model.name))
    diagnose(env.pipeline, env.aws, None, env.taskdef_arn)
    assert calls.count("DescribeTasks") == 2  # one for diagnose, one for doctor's network-bindings check
    assert calls.count("DescribeServices") == 1


def create_service(pipeline, aws, revision_arn):  # noqa: ANN001, ANN201
    """The ECS adapter's create_service for a pipeline's service."""
    return EcsClient(aws).create_service(pipeline.service, revision_arn)


# --- create_service -----------------------------------------------------------------------------


def test_create_service_from_the_pipeline(aws, tmp_path):
    """The missing service is created with the pipeline's count, launch type, network and circuit breaker."""
    env = good_env(aws, tmp_path, create=False)
    arn = create_service(env.pipeline, aws, env.taskdef_arn)
    svc = env.client("ecs").describe_services(cluster=CLUSTER, services=[SERVICE])["services"][0]
    assert svc["serviceArn"] == arn and svc["status"] == "ACTIVE"
    assert svc["taskDefinition"] == env.taskdef_arn and svc["desiredCount"] == 1 and svc["launchType"] == "FARGATE"
    assert svc["networkConfiguration"]["awsvpcConfiguration"] == {
        "subnets": list(env.subnets),
        "securityGroups": [env.security_group],
        "assignPublicIp": "ENABLED",
    }
    assert svc["deploymentConfiguration"] == {
        "maximumPercent": 200,
        "minimumHealthyPercent": 100,
        "deploymentCircuitBreaker": {"enable": True, "rollback": True},
    }


def test_create_service_with_a_given_network_and_no_circuit_breaker(aws, tmp_path):
    """The pipeline's network is used as given; circuit_breaker false is honoured."""
    env = good_env(aws, tmp_path, create=False)
    net = NetworkSpec((env.subnets[1],), (env.security_group,), False)
    p = env.with_service(circuit_breaker=False, network=net)
    create_service(p, aws, env.taskdef_arn)
    svc = env.client("ecs").describe_services(cluster=CLUSTER, services=[SERVICE])["services"][0]
    assert svc["networkConfiguration"]["awsvpcConfiguration"]["subnets"] == [env.subnets[1]]
    assert svc["deploymentConfiguration"]["deploymentCircuitBreaker"] == {"enable": False, "rollback": False}


def test_create_service_with_a_load_balancer(aws, tmp_path):
    """A configured target group is registered with the pipeline's container and port."""
    env = good_env(aws, tmp_path, create=False)
    tg = env.client("elbv2").create_target_group(
        Name="shine-tg", Protocol="HTTP", Port=5000, VpcId=env.vpc, TargetType="ip"
    )["TargetGroups"][0]["TargetGroupArn"]
    create_service(env.with_service(load_balancer=LoadBalancerSpec(tg)), aws, env.taskdef_arn)
    svc = env.client("ecs").describe_services(cluster=CLUSTER, services=[SERVICE])["services"][0]
    assert svc["loadBalancers"] == [{"targetGroupArn": tg, "containerName": "api", "containerPort": 5000}]


def test_create_fargate_service_without_network_is_a_config_error(aws, tmp_path):
    """No subnets anywhere: a ConfigError naming service.network, and no service is created."""
    env = good_env(aws, tmp_path, create=False)
    with pytest.raises(ConfigError, match="service.network"):
        create_service(env.with_service(network=None), aws, env.taskdef_arn)
    assert env.client("ecs").describe_services(cluster=CLUSTER, services=[SERVICE])["services"] == []
