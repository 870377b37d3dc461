"""The ECS behaviours snail depends on, replayed against ecsbox through boto3 only, with expectations written from
AWS's documentation (the page is named in each test). A product test and the emulator then no longer only check
each other: these would fail for an emulator that agreed with a wrong snail."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.ecsbox.conftest import BROKEN, CLUSTER, CRASHES, GREEN, SERVICE, Aws


def pause(stage: str, minutes: int = 30) -> dict:
    """A PAUSE lifecycle hook: the deployment waits at `stage` for ContinueServiceDeployment, or its timeout."""
    return {
        "targetType": "PAUSE",
        "lifecycleStages": [stage],
        "timeoutConfiguration": {"timeoutInMinutes": minutes, "action": "ROLLBACK"},
    }


def test_update_service_starts_a_primary_deployment_that_completes(aws: Aws) -> None:
    """https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Deployment.html: the most recent deployment is
    PRIMARY, the one it replaces ACTIVE while it still runs tasks; rolloutState is IN_PROGRESS until the new tasks
    reach a steady state, then COMPLETED, and the old deployment goes away once drained."""
    aws.create_service(deploymentCircuitBreaker={"enable": True, "rollback": False})
    old = aws.service()["deployments"][0]["id"]
    new_td = aws.register(GREEN)
    aws.ecs.update_service(cluster=CLUSTER, service=SERVICE, taskDefinition=new_td)
    deployments = aws.service()["deployments"]
    assert [(d["status"], d["rolloutState"]) for d in deployments] == [
        ("PRIMARY", "IN_PROGRESS"),
        ("ACTIVE", "COMPLETED"),
    ]
    assert deployments[0]["taskDefinition"] == new_td and deployments[1]["id"] == old
    aws.wait(lambda: [d["rolloutState"] for d in aws.service()["deployments"]] == ["COMPLETED"])
    (done,) = aws.service()["deployments"]
    assert (done["status"], done["taskDefinition"], done["runningCount"], done["desiredCount"]) == (
        "PRIMARY",
        new_td,
        1,
        1,
    )


def test_the_circuit_breaker_fails_a_deployment_whose_tasks_keep_stopping(aws: Aws) -> None:
    """https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-circuit-breaker.html: with the breaker
    on, a deployment whose tasks fail to reach RUNNING repeatedly (at least 3 failures, the lowest threshold) is
    marked FAILED; rollback off, ECS does not return to the previous deployment by itself."""
    aws.create_service(deploymentCircuitBreaker={"enable": True, "rollback": False})
    bad = aws.register(CRASHES)
    aws.ecs.update_service(cluster=CLUSTER, service=SERVICE, taskDefinition=bad)
    failed = aws.wait(lambda: next((d for d in aws.service()["deployments"] if d["rolloutState"] == "FAILED"), None))
    assert failed["taskDefinition"] == bad and failed["status"] == "PRIMARY"
    assert failed["failedTasks"] >= 3
    assert "circuit breaker" in failed["rolloutStateReason"]
    stopped = aws.ecs.list_tasks(cluster=CLUSTER, serviceName=SERVICE, desiredStatus="STOPPED")["taskArns"]
    reasons = {t["stoppedReason"] for t in aws.ecs.describe_tasks(cluster=CLUSTER, tasks=stopped[:10])["tasks"]}
    assert any("Essential container in task exited" in r for r in reasons)


def test_a_pause_hook_waits_awaiting_action_with_green_on_the_test_listener_only(aws: Aws) -> None:
    """https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-type-blue-green.html: at
    POST_TEST_TRAFFIC_SHIFT the test listener rule forwards to green while production stays on blue.
    https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ContinueServiceDeployment.html: "When a service
    deployment reaches a lifecycle stage that has a PAUSE hook configured, the deployment pauses and waits for an
    explicit action" (the deployment IN_PROGRESS, its hook AWAITING_ACTION, as DescribeServiceDeployments shows)."""
    aws.create_service(
        blue_green=True, strategy="BLUE_GREEN", bakeTimeInMinutes=0, lifecycleHooks=[pause("POST_TEST_TRAFFIC_SHIFT")]
    )
    aws.ecs.update_service(cluster=CLUSTER, service=SERVICE, taskDefinition=aws.register(GREEN))
    arn = aws.service()["currentServiceDeployment"]

    def awaiting() -> dict | None:
        dep = aws.deployment(arn)
        hooks = [h for h in dep.get("lifecycleHookDetails", []) if h["status"] == "AWAITING_ACTION"]
        return dep if dep.get("lifecycleStage") == "POST_TEST_TRAFFIC_SHIFT" and hooks else None

    dep = aws.wait(awaiting)
    assert dep["status"] == "IN_PROGRESS"
    assert aws.forward("test") == {"blue": 0, "green": 1}
    assert aws.forward("production") == {"blue": 1, "green": 0}


@pytest.mark.parametrize(
    ("action", "final", "production"),
    [("CONTINUE", "SUCCESSFUL", {"blue": 0, "green": 1}), ("ROLLBACK", "ROLLBACK_SUCCESSFUL", {"blue": 1, "green": 0})],
)
def test_continue_service_deployment_continues_or_rolls_back(
    aws: Aws, action: str, final: str, production: dict
) -> None:
    """https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ContinueServiceDeployment.html: CONTINUE
    resumes the paused deployment to its end (production on green); ROLLBACK returns traffic to the source
    revision (production on blue). https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ServiceDeployment.html
    names the end states SUCCESSFUL and ROLLBACK_SUCCESSFUL. A hook already answered cannot be answered again."""
    aws.create_service(
        blue_green=True, strategy="BLUE_GREEN", bakeTimeInMinutes=0, lifecycleHooks=[pause("POST_TEST_TRAFFIC_SHIFT")]
    )
    aws.ecs.update_service(cluster=CLUSTER, service=SERVICE, taskDefinition=aws.register(GREEN))
    arn = aws.service()["currentServiceDeployment"]
    hook = aws.wait(
        lambda: next(
            (h for h in aws.deployment(arn).get("lifecycleHookDetails", []) if h["status"] == "AWAITING_ACTION"), None
        )
    )
    out = aws.ecs.continue_service_deployment(serviceDeploymentArn=arn, hookId=hook["hookId"], action=action)
    assert out["serviceDeploymentArn"] == arn
    dep = aws.wait(lambda: (d := aws.deployment(arn))["status"] == final and d)
    assert aws.forward("production") == production
    if action == "ROLLBACK":
        assert dep["rollback"]["serviceRevisionArn"] == dep["sourceServiceRevisions"][0]["arn"]
    with pytest.raises(ClientError):
        aws.ecs.continue_service_deployment(serviceDeploymentArn=arn, hookId=hook["hookId"], action="CONTINUE")


def test_stop_service_deployment_rollback_during_the_bake_returns_to_blue(aws: Aws) -> None:
    """https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_StopServiceDeployment.html: stopType ROLLBACK
    on an in-progress blue/green deployment (here during BAKE_TIME, blue still up) rolls it back: production returns
    to the source revision and the deployment ends ROLLBACK_SUCCESSFUL."""
    aws.create_service(blue_green=True, strategy="BLUE_GREEN", bakeTimeInMinutes=30)  # an ECS minute is 1 s here
    aws.ecs.update_service(cluster=CLUSTER, service=SERVICE, taskDefinition=aws.register(GREEN))
    arn = aws.service()["currentServiceDeployment"]
    aws.wait(lambda: aws.deployment(arn).get("lifecycleStage") == "BAKE_TIME")
    assert aws.forward("production") == {"blue": 0, "green": 1}
    aws.ecs.stop_service_deployment(serviceDeploymentArn=arn, stopType="ROLLBACK")
    aws.wait(lambda: aws.deployment(arn)["status"] == "ROLLBACK_SUCCESSFUL")
    assert aws.forward("production") == {"blue": 1, "green": 0}


def test_target_health_follows_the_health_check_path(aws: Aws) -> None:
    """https://docs.aws.amazon.com/elasticloadbalancing/latest/application/target-group-health-checks.html: a
    registered target is `initial` until it passes HealthyThresholdCount checks, then `healthy`; one that answers
    the health check path with a code outside the matcher (200) becomes `unhealthy` with reason
    Target.ResponseCodeMismatch. https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_CreateService.html:
    for healthCheckGracePeriodSeconds "the service scheduler ignores unhealthy Elastic Load Balancing target health
    checks", so the unhealthy target stays registered and its task is not replaced while the period lasts (without
    one, the state lasts until ECS's next look, too short to observe reliably)."""
    aws.create_service(grace=600, deploymentCircuitBreaker={"enable": False, "rollback": False})

    def states() -> dict[str, str]:
        found = aws.elbv2.describe_target_health(TargetGroupArn=aws.blue_tg)["TargetHealthDescriptions"]
        return {d["Target"]["Id"]: d["TargetHealth"]["State"] for d in found}

    assert aws.wait(lambda: set(states().values()) == {"healthy"})
    aws.ecs.update_service(cluster=CLUSTER, service=SERVICE, taskDefinition=aws.register(BROKEN))

    def mismatch() -> dict | None:
        found = aws.elbv2.describe_target_health(TargetGroupArn=aws.blue_tg)["TargetHealthDescriptions"]
        return next((d["TargetHealth"] for d in found if d["TargetHealth"]["State"] == "unhealthy"), None)

    health = aws.wait(mismatch)
    assert health["Reason"] == "Target.ResponseCodeMismatch"
    assert "500" in health["Description"]
    primary = aws.service()["deployments"][0]
    assert (primary["rolloutState"], primary["failedTasks"]) == ("IN_PROGRESS", 0)
