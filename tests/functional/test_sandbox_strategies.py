"""ECS's native BLUE_GREEN, CANARY and LINEAR deployments in the sandbox agent, through boto3 on moto's server.

Tasks need no containers (InstantLauncher) and the agent's clock is fake (seconds; an ECS minute is 60 of them).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import botocore.session
import pytest
import requests
from botocore.exceptions import ClientError

from ecsbox import alarms, bootstrap, control, extension, lb
from ecsbox import deployments as sd
from ecsbox.agent import EcsAgent
from ecsbox.launchers import InstantLauncher
from ecsbox.lb_seed import LoadBalancerSeed
from orchestrator.aws.elbv2 import Elbv2Client
from orchestrator.aws.session import AwsContext
from orchestrator.config import load_pipeline
from orchestrator.errors import NotFound
from tests.harness.http import serve_in_thread

REGION = "us-east-1"
CLUSTER = "shine"
SERVICE = "shine-api-gateway"
BLUE = "127.0.0.1:5055/shine-api-gateway:blue"
GREEN = "127.0.0.1:5055/shine-api-gateway:green"
MISSING = "127.0.0.1:5055/shine-api-gateway:missing"
PULL_ERROR = "CannotPullContainerError: pull image manifest has been retried 1 time(s): not found"
ALL_STAGES = [
    "PRE_SCALE_UP",
    "SCALE_UP",
    "POST_SCALE_UP",
    "TEST_TRAFFIC_SHIFT",
    "POST_TEST_TRAFFIC_SHIFT",
    "PRODUCTION_TRAFFIC_SHIFT",
    "POST_PRODUCTION_TRAFFIC_SHIFT",
    "BAKE_TIME",
    "CLEAN_UP",
]
ECS_MODEL = botocore.session.get_session().get_service_model("ecs")


@pytest.fixture(scope="module")
def endpoint():
    """A moto server of this module's own (its CloudWatch metric store must start empty: the canary test sums
    every RequestCount datapoint), with the sandbox extension installed for this module only."""
    from moto.server import ThreadedMotoServer

    extension.install()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()
    extension.uninstall()


class World:
    """boto3 clients on a freshly reset moto, the load balancer's ARNs, and the fake agent clock."""

    def __init__(self, endpoint: str) -> None:
        requests.post(f"{endpoint}/moto-api/reset", timeout=10)
        kwargs = dict(
            endpoint_url=endpoint, region_name=REGION, aws_access_key_id="sandbox", aws_secret_access_key="sandbox"
        )
        self.ecs = boto3.client("ecs", **kwargs)
        self.ec2 = boto3.client("ec2", **kwargs)
        self.elbv2 = boto3.client("elbv2", **kwargs)
        self.cloudwatch = boto3.client("cloudwatch", **kwargs)
        self.raw: list[tuple[str, dict[str, Any]]] = []
        self.ecs.meta.events.register("after-call.ecs", self._keep_raw)
        self.now = 0.0
        self.launcher = InstantLauncher(
            host_port_for=lambda image: 18080,
            fail_reason_for=lambda image: PULL_ERROR if image == MISSING else None,
        )
        self.agent = EcsAgent(
            self.launcher, restart_backoff=(0, 0), steady_after=0, monotonic=lambda: self.now, minute=60.0
        )
        self.ecs.create_cluster(clusterName=CLUSTER)
        vpc = self.ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
        self.subnets = [s["SubnetId"] for s in self.ec2.describe_subnets()["Subnets"][:2]]
        self.sg = self.ec2.describe_security_groups()["SecurityGroups"][0]["GroupId"]
        lb = self.elbv2.create_load_balancer(Name="shine", Subnets=self.subnets)["LoadBalancers"][0]
        self.blue_tg, self.green_tg = (
            self.elbv2.create_target_group(
                Name=name, Protocol="HTTP", Port=5000, VpcId=vpc, TargetType="ip", HealthCheckPath="/health"
            )["TargetGroups"][0]["TargetGroupArn"]
            for name in ("shine-blue", "shine-green")
        )
        self.rules = {}
        for name, port in (("production", 80), ("test", 8080)):
            listener = self.elbv2.create_listener(
                LoadBalancerArn=lb["LoadBalancerArn"],
                Protocol="HTTP",
                Port=port,
                DefaultActions=[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}],
            )["Listeners"][0]
            self.rules[name] = self.elbv2.create_rule(
                ListenerArn=listener["ListenerArn"],
                Priority=1,
                Conditions=[{"Field": "path-pattern", "Values": ["/*"]}],
                Actions=[{"Type": "forward", "TargetGroupArn": self.blue_tg}],
            )["Rules"][0]["RuleArn"]

    def _keep_raw(self, http_response: Any, model: Any, **_: Any) -> None:
        if http_response.status_code == 200:
            self.raw.append((model.name, json.loads(http_response.content or b"{}")))

    def register(self, image: str) -> str:
        """A revision of the service's family running `image`."""
        return self.ecs.register_task_definition(
            family=SERVICE,
            containerDefinitions=[
                {
                    "name": "api",
                    "image": image,
                    "memory": 512,
                    "portMappings": [{"containerPort": 5000, "protocol": "tcp"}],
                }
            ],
            networkMode="awsvpc",
            requiresCompatibilities=["FARGATE"],
            cpu="256",
            memory="512",
        )["taskDefinition"]["taskDefinitionArn"]

    def create_service(self, desired: int = 2, **config: Any) -> None:
        """The awsvpc service behind the load balancer, blue running and COMPLETED before the test starts."""
        self.ecs.create_service(
            cluster=CLUSTER,
            serviceName=SERVICE,
            taskDefinition=self.register(BLUE),
            desiredCount=desired,
            launchType="FARGATE",
            networkConfiguration={
                "awsvpcConfiguration": {
                    "subnets": self.subnets,
                    "securityGroups": [self.sg],
                    "assignPublicIp": "ENABLED",
                }
            },
            loadBalancers=[
                {
                    "targetGroupArn": self.blue_tg,
                    "containerName": "api",
                    "containerPort": 5000,
                    "advancedConfiguration": {
                        "alternateTargetGroupArn": self.green_tg,
                        "productionListenerRule": self.rules["production"],
                        "testListenerRule": self.rules["test"],
                        "roleArn": "arn:aws:iam::123456789012:role/ecsInfrastructureRole",
                    },
                }
            ],
            deploymentConfiguration={
                "deploymentCircuitBreaker": {"enable": True, "rollback": True},
                "maximumPercent": 200,
                "minimumHealthyPercent": 100,
                **config,
            },
        )
        self.settle(lambda: self.deployments_completed())

    def describe(self) -> dict[str, Any]:
        """The service as DescribeServices returns it."""
        return self.ecs.describe_services(cluster=CLUSTER, services=[SERVICE])["services"][0]

    def deployments_completed(self) -> bool:
        """One PRIMARY deployment, COMPLETED."""
        deps = self.describe()["deployments"]
        return len(deps) == 1 and deps[0]["rolloutState"] == "COMPLETED"

    def deploy(self, image: str = GREEN) -> str:
        """update_service to a new revision running `image`; return the new service deployment's ARN."""
        self.ecs.update_service(cluster=CLUSTER, service=SERVICE, taskDefinition=self.register(image))
        return self.describe()["currentServiceDeployment"]

    def deployment(self, arn: str) -> dict[str, Any]:
        """DescribeServiceDeployments for one ARN."""
        return self.ecs.describe_service_deployments(serviceDeploymentArns=[arn])["serviceDeployments"][0]

    def settle(self, until: Any, rounds: int = 40, tick: float = 0.0) -> None:
        """Run scheduler rounds (advancing the fake clock by `tick`) until `until()` holds."""
        for _ in range(rounds):
            self.agent.reconcile_once()
            if until():
                return
            self.now += tick
        raise AssertionError(f"not settled after {rounds} rounds: {self.describe()['deployments']}")

    def until_status(self, arn: str, *statuses: str, tick: float = 0.0, rounds: int = 40) -> dict[str, Any]:
        """Rounds until the service deployment has one of `statuses`; return it."""
        self.settle(lambda: self.deployment(arn)["status"] in statuses, rounds=rounds, tick=tick)
        return self.deployment(arn)

    def until_awaiting(self, arn: str, stage: str, rounds: int = 40) -> dict[str, Any]:
        """Rounds until a PAUSE hook awaits action at `stage`; return the deployment."""

        def awaiting() -> bool:
            dep = self.deployment(arn)
            hooks = dep.get("lifecycleHookDetails", [])
            return dep.get("lifecycleStage") == stage and any(h["status"] == "AWAITING_ACTION" for h in hooks)

        self.settle(awaiting, rounds=rounds)
        return self.deployment(arn)

    def forward(self, rule: str) -> dict[str, int]:
        """The rule's forward weights by target group: {'blue': w, 'green': w}."""
        [found] = self.elbv2.describe_rules(RuleArns=[self.rules[rule]])["Rules"]
        action = found["Actions"][0]
        names = {self.blue_tg: "blue", self.green_tg: "green"}
        if "ForwardConfig" not in action:  # a plain forward, as the rule was created
            return {names[action["TargetGroupArn"]]: 1}
        return {names[g["TargetGroupArn"]]: g["Weight"] for g in action["ForwardConfig"]["TargetGroups"]}

    def targets(self, tg: str) -> set[str]:
        """The registered target ids of a target group."""
        health = self.elbv2.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]
        return {t["Target"]["Id"] for t in health}

    def running(self, image: str) -> int:
        """RUNNING tasks whose revision runs `image`."""
        arns = self.ecs.list_tasks(cluster=CLUSTER, serviceName=SERVICE)["taskArns"]
        found = self.ecs.describe_tasks(cluster=CLUSTER, tasks=arns)["tasks"] if arns else []
        images = {}
        for t in found:
            td = t["taskDefinitionArn"]
            if td not in images:
                images[td] = self.ecs.describe_task_definition(taskDefinition=td)["taskDefinition"][
                    "containerDefinitions"
                ][0]["image"]
        return sum(1 for t in found if t["lastStatus"] == "RUNNING" and images[t["taskDefinitionArn"]] == image)


@pytest.fixture
def world(endpoint) -> World:
    """A fresh moto world with a load balancer, two target groups and production/test listener rules."""
    return World(endpoint)


def pause(*stages: str, minutes: int = 30, action: str = "ROLLBACK") -> dict[str, Any]:
    """A PAUSE lifecycle hook at `stages`."""
    return {
        "targetType": "PAUSE",
        "lifecycleStages": list(stages),
        "timeoutConfiguration": {"timeoutInMinutes": minutes, "action": action},
    }


# ------------------------------------------------------------------------------------------------ blue/green


def test_blue_green_walks_every_stage_in_order_and_ends_on_green(world):
    """BLUE_GREEN: stages in ECS's order, production and test rules on green, blue drained, SUCCESSFUL."""
    world.create_service(strategy="BLUE_GREEN", bakeTimeInMinutes=0)
    blue_ips = world.targets(world.blue_tg)
    assert len(blue_ips) == 2  # blue's tasks were registered as they started
    arn = world.deploy()
    dep = world.until_status(arn, "SUCCESSFUL")
    run = extension.ecs_backend("123456789012", REGION).sandbox_service_deployments[arn]
    assert run.stages_seen == ALL_STAGES
    assert dep["lifecycleStage"] == "CLEAN_UP"
    assert dep["targetServiceRevision"]["requestedProductionTrafficWeight"] == 100.0
    assert world.forward("production") == {"blue": 0, "green": 1}
    assert world.forward("test") == {"blue": 0, "green": 1}
    assert world.targets(world.blue_tg) == set() and len(world.targets(world.green_tg)) == 2
    assert world.running(GREEN) == 2 and world.running(BLUE) == 0
    service = world.describe()
    assert [d["rolloutState"] for d in service["deployments"]] == ["COMPLETED"]
    assert service["deployments"][0]["taskDefinition"].endswith(":2")


def test_blue_green_scales_green_fully_next_to_blue(world):
    """Green scales to the whole desired count while blue keeps running (maximumPercent does not bound it)."""
    world.create_service(
        strategy="BLUE_GREEN", bakeTimeInMinutes=0, maximumPercent=100, lifecycleHooks=[pause("POST_SCALE_UP")]
    )
    arn = world.deploy()
    world.until_awaiting(arn, "POST_SCALE_UP")
    assert world.running(GREEN) == 2 and world.running(BLUE) == 2
    assert world.forward("production") == {"blue": 1, "green": 0}


def test_pause_hook_awaits_action_with_green_on_test_traffic_only(world):
    """A PAUSE hook at POST_TEST_TRAFFIC_SHIFT waits: green has the test listener, blue all production."""
    world.create_service(strategy="BLUE_GREEN", bakeTimeInMinutes=0, lifecycleHooks=[pause("POST_TEST_TRAFFIC_SHIFT")])
    arn = world.deploy()
    dep = world.until_awaiting(arn, "POST_TEST_TRAFFIC_SHIFT")
    [hook] = dep["lifecycleHookDetails"]
    assert (hook["targetType"], hook["status"], hook["timeoutAction"]) == ("PAUSE", "AWAITING_ACTION", "ROLLBACK")
    assert "targetArn" not in hook and hook["expiresAt"] > dep["createdAt"]
    assert dep["status"] == "IN_PROGRESS"
    assert world.forward("test") == {"blue": 0, "green": 1}
    assert world.forward("production") == {"blue": 1, "green": 0}
    for _ in range(5):  # it stays paused
        world.agent.reconcile_once()
    assert world.deployment(arn)["lifecycleHookDetails"][0]["status"] == "AWAITING_ACTION"


def test_continue_resumes_the_deployment_to_success(world):
    """ContinueServiceDeployment CONTINUE: the hook SUCCEEDED and the deployment finishes on green."""
    world.create_service(strategy="BLUE_GREEN", bakeTimeInMinutes=0, lifecycleHooks=[pause("POST_TEST_TRAFFIC_SHIFT")])
    arn = world.deploy()
    hook = world.until_awaiting(arn, "POST_TEST_TRAFFIC_SHIFT")["lifecycleHookDetails"][0]
    out = world.ecs.continue_service_deployment(serviceDeploymentArn=arn, hookId=hook["hookId"], action="CONTINUE")
    assert out["serviceDeploymentArn"] == arn
    world.until_status(arn, "SUCCESSFUL")
    assert world.forward("production") == {"blue": 0, "green": 1}
    with pytest.raises(ClientError) as err:  # a resolved hook cannot be answered twice
        world.ecs.continue_service_deployment(serviceDeploymentArn=arn, hookId=hook["hookId"], action="CONTINUE")
    assert err.value.response["Error"]["Code"] == "InvalidParameterException"


def test_rollback_returns_traffic_to_blue_without_starting_a_task(world):
    """ContinueServiceDeployment ROLLBACK: production and test back on blue, green stopped, no task started."""
    world.create_service(strategy="BLUE_GREEN", bakeTimeInMinutes=0, lifecycleHooks=[pause("POST_TEST_TRAFFIC_SHIFT")])
    arn = world.deploy()
    hook = world.until_awaiting(arn, "POST_TEST_TRAFFIC_SHIFT")["lifecycleHookDetails"][0]
    started = len(world.launcher.started)
    world.ecs.continue_service_deployment(serviceDeploymentArn=arn, hookId=hook["hookId"], action="ROLLBACK")
    assert world.deployment(arn)["status"] == "ROLLBACK_REQUESTED"
    dep = world.until_status(arn, "ROLLBACK_SUCCESSFUL")
    assert len(world.launcher.started) == started  # not one task started by the rollback
    assert world.forward("production") == {"blue": 1, "green": 0}
    assert world.forward("test") == {"blue": 1, "green": 0}
    assert dep["rollback"]["serviceRevisionArn"] == dep["sourceServiceRevisions"][0]["arn"]
    assert "ContinueServiceDeployment" in dep["rollback"]["reason"]
    assert world.running(BLUE) == 2 and world.running(GREEN) == 0
    assert world.targets(world.green_tg) == set() and len(world.targets(world.blue_tg)) == 2
    service = world.describe()
    assert [(d["status"], d["rolloutState"]) for d in service["deployments"]] == [("PRIMARY", "COMPLETED")]
    assert service["taskDefinition"].endswith(":1")


def test_hook_timeout_action_rollback(world):
    """A PAUSE hook nobody answers times out after its minutes and its ROLLBACK action applies."""
    world.create_service(strategy="BLUE_GREEN", bakeTimeInMinutes=0, lifecycleHooks=[pause("POST_SCALE_UP", minutes=2)])
    arn = world.deploy()
    world.until_awaiting(arn, "POST_SCALE_UP")
    world.now += 119
    world.agent.reconcile_once()
    assert world.deployment(arn)["lifecycleHookDetails"][0]["status"] == "AWAITING_ACTION"
    world.now += 2
    dep = world.until_status(arn, "ROLLBACK_SUCCESSFUL")
    assert "timed out" in dep["rollback"]["reason"]
    assert world.running(BLUE) == 2 and world.running(GREEN) == 0


def test_hook_timeout_action_continue(world):
    """A PAUSE hook whose timeout action is CONTINUE lets the deployment go on when it expires."""
    world.create_service(
        strategy="BLUE_GREEN", bakeTimeInMinutes=0, lifecycleHooks=[pause("PRE_SCALE_UP", minutes=1, action="CONTINUE")]
    )
    arn = world.deploy()
    world.until_awaiting(arn, "PRE_SCALE_UP")
    assert world.running(GREEN) == 0  # nothing scaled before the hook resolved
    world.now += 61
    world.until_status(arn, "SUCCESSFUL")
    run = extension.ecs_backend("123456789012", REGION).sandbox_service_deployments[arn]
    assert run.hooks[0].status == "TIMED_OUT"


def test_bake_time_keeps_blue_and_stop_service_deployment_rolls_back(world):
    """During BAKE_TIME blue still runs; StopServiceDeployment ROLLBACK puts production back on it."""
    world.create_service(strategy="BLUE_GREEN", bakeTimeInMinutes=5)
    arn = world.deploy()
    world.settle(lambda: world.deployment(arn).get("lifecycleStage") == "BAKE_TIME")
    world.now += 240
    world.agent.reconcile_once()
    assert world.deployment(arn)["lifecycleStage"] == "BAKE_TIME"
    assert world.running(BLUE) == 2 and world.forward("production") == {"blue": 0, "green": 1}
    started = len(world.launcher.started)
    world.ecs.stop_service_deployment(serviceDeploymentArn=arn, stopType="ROLLBACK")
    world.until_status(arn, "ROLLBACK_SUCCESSFUL")
    assert world.forward("production") == {"blue": 1, "green": 0}
    assert len(world.launcher.started) == started


def test_bake_time_elapses_then_clean_up(world):
    """After bakeTimeInMinutes of the agent's clock the blue revision is cleaned up."""
    world.create_service(strategy="BLUE_GREEN", bakeTimeInMinutes=3)
    arn = world.deploy()
    world.settle(lambda: world.deployment(arn).get("lifecycleStage") == "BAKE_TIME")
    world.until_status(arn, "SUCCESSFUL", tick=30, rounds=20)
    assert world.now >= 180


def test_circuit_breaker_during_scale_up_rolls_back(world):
    """Green tasks that cannot start trip the breaker during SCALE_UP; blue keeps production, nothing restarted."""
    world.create_service(strategy="BLUE_GREEN", bakeTimeInMinutes=0)
    arn = world.deploy(MISSING)
    dep = world.until_status(arn, "ROLLBACK_SUCCESSFUL")
    assert dep["deploymentCircuitBreaker"]["status"] == "TRIGGERED"
    assert dep["deploymentCircuitBreaker"]["failureCount"] >= dep["deploymentCircuitBreaker"]["threshold"] == 3
    assert dep["lifecycleStage"] == "SCALE_UP"
    assert world.forward("production") == {"blue": 1, "green": 0}
    assert world.running(BLUE) == 2
    events = [e["message"] for e in world.describe()["events"]]
    assert any("tasks failed to start" in m for m in events)


# ------------------------------------------------------------------------------------------------ canary, linear


def test_canary_shifts_its_percent_then_the_rest(world):
    """CANARY 10 %: the production rule splits 900/100 while the hook waits, then all goes to green."""
    world.create_service(
        strategy="CANARY",
        bakeTimeInMinutes=0,
        canaryConfiguration={"canaryPercent": 10.0, "canaryBakeTimeInMinutes": 2},
        lifecycleHooks=[pause("PRODUCTION_TRAFFIC_SHIFT")],
    )
    arn = world.deploy()
    dep = world.until_awaiting(arn, "PRODUCTION_TRAFFIC_SHIFT")
    assert world.forward("production") == {"blue": 900, "green": 100}
    assert dep["targetServiceRevision"]["requestedProductionTrafficWeight"] == 10.0
    assert dep["sourceServiceRevisions"][0]["requestedProductionTrafficWeight"] == 90.0
    hook = dep["lifecycleHookDetails"][0]
    world.ecs.continue_service_deployment(serviceDeploymentArn=arn, hookId=hook["hookId"], action="CONTINUE")
    world.agent.reconcile_once()
    assert world.forward("production") == {"blue": 900, "green": 100}  # canary bake: 2 minutes
    world.until_status(arn, "SUCCESSFUL", tick=30, rounds=20)
    assert world.forward("production") == {"blue": 0, "green": 1}


def test_canary_rollback_from_the_canary_slice(world):
    """A ROLLBACK on the canary's hook puts the whole production rule back on blue."""
    world.create_service(
        strategy="CANARY",
        bakeTimeInMinutes=0,
        canaryConfiguration={"canaryPercent": 10.0, "canaryBakeTimeInMinutes": 0},
        lifecycleHooks=[pause("PRODUCTION_TRAFFIC_SHIFT")],
    )
    arn = world.deploy()
    hook = world.until_awaiting(arn, "PRODUCTION_TRAFFIC_SHIFT")["lifecycleHookDetails"][0]
    world.ecs.continue_service_deployment(serviceDeploymentArn=arn, hookId=hook["hookId"], action="ROLLBACK")
    world.until_status(arn, "ROLLBACK_SUCCESSFUL")
    assert world.forward("production") == {"blue": 1, "green": 0}


def test_linear_steps_with_a_hook_at_each_step(world):
    """LINEAR 25 %: 25, 50, 75 % each wait at the hook and bake, then 100 % (no hook, no bake at 100 %)."""
    world.create_service(
        strategy="LINEAR",
        bakeTimeInMinutes=0,
        linearConfiguration={"stepPercent": 25.0, "stepBakeTimeInMinutes": 1},
        lifecycleHooks=[pause("PRODUCTION_TRAFFIC_SHIFT")],
    )
    arn = world.deploy()
    seen = []
    for _ in range(3):
        dep = world.until_awaiting(arn, "PRODUCTION_TRAFFIC_SHIFT")
        seen.append(world.forward("production"))
        awaiting = [h for h in dep["lifecycleHookDetails"] if h["status"] == "AWAITING_ACTION"]
        world.ecs.continue_service_deployment(serviceDeploymentArn=arn, hookId=awaiting[0]["hookId"])
        world.agent.reconcile_once()  # the hook resolved: the step's bake time starts
        assert world.deployment(arn)["lifecycleStage"] == "PRODUCTION_TRAFFIC_SHIFT"
        world.now += 61
    world.until_status(arn, "SUCCESSFUL")
    assert seen == [{"blue": 750, "green": 250}, {"blue": 500, "green": 500}, {"blue": 250, "green": 750}]
    assert world.forward("production") == {"blue": 0, "green": 1}


# ------------------------------------------------------------------------------------------------ API shapes


def _check_shape(value: Any, shape: Any, path: str) -> list[str]:
    """Keys absent from the botocore shape, and required members missing, anywhere under `value`."""
    problems: list[str] = []
    if shape.type_name == "structure":
        assert isinstance(value, dict), path
        for key, item in value.items():
            if key not in shape.members:
                problems.append(f"{path}.{key} is not in {shape.name}")
            else:
                problems += _check_shape(item, shape.members[key], f"{path}.{key}")
        problems += [f"{path}.{k} is required by {shape.name}" for k in shape.required_members if k not in value]
    elif shape.type_name == "list":
        for index, item in enumerate(value):
            problems += _check_shape(item, shape.member, f"{path}[{index}]")
    return problems


def test_service_deployment_responses_match_botocore_shapes(world):
    """Every key the sandbox returns from the four service-deployment operations is in botocore's output shape."""
    world.create_service(strategy="BLUE_GREEN", bakeTimeInMinutes=0, lifecycleHooks=[pause("POST_TEST_TRAFFIC_SHIFT")])
    arn = world.deploy()
    hook = world.until_awaiting(arn, "POST_TEST_TRAFFIC_SHIFT")["lifecycleHookDetails"][0]
    listed = world.ecs.list_service_deployments(cluster=CLUSTER, service=SERVICE)["serviceDeployments"]
    assert [d["serviceDeploymentArn"] for d in listed][0] == arn and len(listed) == 2  # newest first
    assert listed[1]["status"] == "SUCCESSFUL"  # the service's first deployment
    world.ecs.describe_service_deployments(serviceDeploymentArns=[arn, arn + "-missing"])
    world.ecs.continue_service_deployment(serviceDeploymentArn=arn, hookId=hook["hookId"], action="ROLLBACK")
    world.until_status(arn, "ROLLBACK_SUCCESSFUL")
    world.ecs.describe_service_deployments(serviceDeploymentArns=[arn])
    seen = set()
    for operation, body in world.raw:
        if operation not in (
            "ListServiceDeployments",
            "DescribeServiceDeployments",
            "ContinueServiceDeployment",
            "StopServiceDeployment",
        ):
            continue
        seen.add(operation)
        output = ECS_MODEL.operation_model(operation).output_shape
        assert _check_shape(body, output, operation) == []
    assert seen == {"ListServiceDeployments", "DescribeServiceDeployments", "ContinueServiceDeployment"}
    missing = world.ecs.describe_service_deployments(serviceDeploymentArns=[arn + "-missing"])["failures"]
    assert missing == [{"arn": arn + "-missing", "reason": "MISSING"}]
    dep = world.deployment(arn)
    revisions = world.ecs.describe_service_revisions(
        serviceRevisionArns=[dep["targetServiceRevision"]["arn"], dep["sourceServiceRevisions"][0]["arn"]]
    )["serviceRevisions"]
    assert [r["containerImages"][0]["image"] for r in revisions] == [GREEN, BLUE]
    assert revisions[0]["taskDefinition"].endswith(":2") and revisions[0]["loadBalancers"][0]["advancedConfiguration"]
    [body] = [b for op, b in world.raw if op == "DescribeServiceRevisions"]
    assert _check_shape(body, ECS_MODEL.operation_model("DescribeServiceRevisions").output_shape, "revisions") == []


def test_describe_service_deployment_keys_during_each_state(world):
    """In flight, paused and rolled back, DescribeServiceDeployments carries only modelled keys."""
    world.create_service(strategy="CANARY", bakeTimeInMinutes=0, lifecycleHooks=[pause("PRODUCTION_TRAFFIC_SHIFT")])
    arn = world.deploy()
    world.agent.reconcile_once()
    world.until_awaiting(arn, "PRODUCTION_TRAFFIC_SHIFT")
    world.ecs.stop_service_deployment(serviceDeploymentArn=arn)
    world.until_status(arn, "ROLLBACK_SUCCESSFUL")
    world.deployment(arn)
    bodies = [b for op, b in world.raw if op in ("DescribeServiceDeployments", "StopServiceDeployment")]
    assert len(bodies) > 3
    for body in bodies:
        op = "StopServiceDeployment" if "serviceDeployments" not in body else "DescribeServiceDeployments"
        assert _check_shape(body, ECS_MODEL.operation_model(op).output_shape, op) == []


def test_stop_service_deployment_errors_like_ecs(world):
    """An unknown ARN is ServiceDeploymentNotFoundException; a finished deployment cannot be stopped."""
    world.create_service(strategy="BLUE_GREEN", bakeTimeInMinutes=0)
    first = world.describe()["currentServiceDeployment"]
    with pytest.raises(ClientError) as err:
        world.ecs.stop_service_deployment(serviceDeploymentArn=first + "x")
    assert err.value.response["Error"]["Code"] == "ServiceDeploymentNotFoundException"
    with pytest.raises(ClientError) as err:
        world.ecs.stop_service_deployment(serviceDeploymentArn=first)
    assert err.value.response["Error"]["Code"] == "ConflictException"


def test_strategy_needs_the_load_balancer_wiring(world):
    """BLUE_GREEN without an advancedConfiguration, or a hook at a stage ECS does not allow, is refused."""
    world.create_service()
    with pytest.raises(ClientError) as err:
        world.ecs.update_service(
            cluster=CLUSTER,
            service=SERVICE,
            loadBalancers=[{"targetGroupArn": world.blue_tg, "containerName": "api", "containerPort": 5000}],
            deploymentConfiguration={"strategy": "BLUE_GREEN"},
        )
    assert err.value.response["Error"]["Code"] == "InvalidParameterException"
    assert "advancedConfiguration" in err.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as err:
        world.ecs.update_service(
            cluster=CLUSTER,
            service=SERVICE,
            deploymentConfiguration={"strategy": "BLUE_GREEN", "lifecycleHooks": [pause("SCALE_UP")]},
        )
    assert "SCALE_UP" in err.value.response["Error"]["Message"]


def test_rolling_deployment_is_recorded_and_can_be_rolled_back(world):
    """ROLLING deployments are service deployments too: SUCCESSFUL, and StopServiceDeployment ROLLBACK restores."""
    world.create_service()
    first = world.describe()["currentServiceDeployment"]
    assert world.deployment(first)["status"] == "SUCCESSFUL"
    arn = world.deploy()
    assert arn != first
    world.agent.reconcile_once()
    world.ecs.stop_service_deployment(serviceDeploymentArn=arn, stopType="ROLLBACK")
    dep = world.until_status(arn, "ROLLBACK_SUCCESSFUL")
    assert dep["rollback"]["serviceRevisionArn"] == dep["sourceServiceRevisions"][0]["arn"]
    assert world.describe()["taskDefinition"].endswith(":1")
    assert world.running(BLUE) == 2 and world.running(GREEN) == 0


def test_target_health_reports_what_the_load_balancer_measured(world):
    """With a data plane's lookup installed, DescribeTargetHealth says what it measured, not moto's 'healthy'."""
    world.create_service()
    extension.TARGET_HEALTH["lookup"] = lambda tg, ip, port: (
        "unhealthy",
        "Target.ResponseCodeMismatch",
        "Health checks failed with these codes: [500]",
    )
    try:
        health = world.elbv2.describe_target_health(TargetGroupArn=world.blue_tg)["TargetHealthDescriptions"]
    finally:
        extension.TARGET_HEALTH["lookup"] = None
    assert len(health) == 2
    assert {h["TargetHealth"]["State"] for h in health} == {"unhealthy"}
    assert health[0]["TargetHealth"]["Reason"] == "Target.ResponseCodeMismatch"
    assert {h["Target"]["Port"] for h in health} == {5000}


# ------------------------------------------------------------------------------------------------ the data plane


class App(BaseHTTPRequestHandler):
    """A task's application: answers its color; /health answers `health_status`."""

    color = "blue"
    health_status = 200
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # head and body are two writes: no 40 ms delayed-ACK stall between them

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        """200 with the color, or the health status on /health."""
        status = self.health_status if self.path == "/health" else 200
        body = self.color.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        """Quiet."""


def serve(color: str, health_status: int = 200) -> ThreadingHTTPServer:
    """A real HTTP server on 127.0.0.1 standing in for one task's container."""
    handler = type(f"App_{color}", (App,), {"color": color, "health_status": health_status})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    serve_in_thread(server)
    return server


class Plane:
    """Seeded load balancer, agent and data plane on moto's server; tasks answer from real local HTTP servers."""

    def __init__(self, endpoint: str, images: dict[str, int]) -> None:
        requests.post(f"{endpoint}/moto-api/reset", timeout=10)
        self.info = control.SandboxInfo(
            pid=os.getpid(), endpoint_url=endpoint, registry="127.0.0.1:5055", region=REGION
        )
        self.launcher = InstantLauncher(host_port_for=lambda image: images.get(image.rsplit(":", 1)[-1]))
        self.agent = EcsAgent(self.launcher, restart_backoff=(0.2, 0.5), steady_after=0.2, interval=0.1)
        self.spec = control.SandboxSpec(
            cluster=CLUSTER,
            service=SERVICE,
            region=REGION,
            desired_count=1,
            circuit_breaker=True,
            load_balancer=LoadBalancerSeed(
                target_group="shine-blue",
                target_groups=("shine-blue", "shine-green"),
                production_listener_rule="production",
                test_listener_rule="test",
                infrastructure_role="ecsInfrastructureRole",
            ),
        )
        self.seeded = control.seed(self.info, self.spec)
        self.ecs = self.info.client("ecs")
        self.elbv2 = self.info.client("elbv2")
        self.cloudwatch = self.info.client("cloudwatch")
        self.plane = lb.DataPlane(
            metrics_period=3600, publish=lb.cloudwatch_publisher(self.cloudwatch), min_health_interval=0.2
        )
        self.plane.start()
        self.agent.start()

    def close(self) -> None:
        """Stop the agent and the data plane."""
        self.agent.stop()
        self.plane.stop()

    def wait(self, until: Any, timeout: float = 20.0) -> None:
        """Poll until `until()` holds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if until():
                return
            time.sleep(0.1)
        raise AssertionError(f"timed out; service {self.describe()['deployments']}")

    def describe(self) -> dict[str, Any]:
        """DescribeServices for the service."""
        return self.ecs.describe_services(cluster=CLUSTER, services=[SERVICE])["services"][0]

    def deployment(self, arn: str) -> dict[str, Any]:
        """DescribeServiceDeployments for one ARN."""
        return self.ecs.describe_service_deployments(serviceDeploymentArns=[arn])["serviceDeployments"][0]

    def get(self, url: str, n: int) -> dict[str, int]:
        """`n` GETs on one keep-alive session; count the answers by body (and status when not 200)."""
        counts: dict[str, int] = {}
        with requests.Session() as session:
            for _ in range(n):
                r = session.get(url, timeout=5)
                key = r.text if r.status_code == 200 else str(r.status_code)
                counts[key] = counts.get(key, 0) + 1
        return counts

    def deploy(self, image: str, **config: Any) -> str:
        """A new revision running `image` with a deployment configuration; return the service deployment ARN."""
        td = self.ecs.describe_task_definition(taskDefinition=self.seeded["task_definition_arn"])["taskDefinition"]
        container = {**td["containerDefinitions"][0], "image": image}
        new = self.ecs.register_task_definition(
            family=SERVICE,
            containerDefinitions=[container],
            networkMode="awsvpc",
            requiresCompatibilities=["FARGATE"],
            cpu="256",
            memory="512",
        )["taskDefinition"]["taskDefinitionArn"]
        self.ecs.update_service(cluster=CLUSTER, service=SERVICE, taskDefinition=new, deploymentConfiguration=config)
        return self.describe()["currentServiceDeployment"]

    def health(self, tg: str) -> list[dict[str, Any]]:
        """DescribeTargetHealth's descriptions."""
        return self.elbv2.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]


@pytest.fixture
def plane(endpoint, monkeypatch):
    """Blue answers 'blue', green 'green', broken answers 500 on /health; the bootstrap image is blue."""
    monkeypatch.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
    monkeypatch.setenv("SNAIL_BASE_IMAGE", "snail-base/python:3.11")  # the bootstrap image (built FROM it) is blue
    first = bootstrap.image_ref("snail-base/python:3.11", 5000).rsplit(":", 1)[-1]
    servers = {first: serve("blue"), "green": serve("green"), "broken": serve("broken", 500)}
    world = Plane(endpoint, {tag: s.server_address[1] for tag, s in servers.items()})
    world.wait(lambda: world.describe()["deployments"][0]["rolloutState"] == "COMPLETED")
    yield world
    world.close()
    for server in servers.values():
        server.shutdown()


def test_seeding_creates_listeners_rules_and_a_service_behind_them(plane):
    """Seeding: two target groups, production and test listener rules on their own ports, the service wired."""
    seeded = plane.seeded
    assert seeded["production_url"] != seeded["test_url"]
    assert len(seeded["target_group_arns"]) == 2
    [wired] = plane.describe()["loadBalancers"]
    assert wired["advancedConfiguration"] == {
        "alternateTargetGroupArn": seeded["target_group_arns"][1],
        "productionListenerRule": seeded["production_listener_rule_arn"],
        "testListenerRule": seeded["test_listener_rule_arn"],
        "roleArn": seeded["infrastructure_role_arn"],
    }
    assert plane.get(seeded["production_url"], 20) == {"blue": 20}
    again = control.seed(plane.info, plane.spec)  # idempotent: the same resources, nothing new
    assert {k: again[k] for k in ("production_url", "test_url", "target_group_arns")} == {
        k: seeded[k] for k in ("production_url", "test_url", "target_group_arns")
    }


def test_the_first_revision_is_an_ordinary_one(plane):
    """The seeded first revision runs the placeholder image as built: no command, entry point, environment or tag
    that a client would have to recognise and strip (the product's planner has no case for it)."""
    found = plane.ecs.describe_task_definition(taskDefinition=plane.seeded["task_definition_arn"], include=["TAGS"])
    [cd] = found["taskDefinition"]["containerDefinitions"]
    assert cd["image"] == bootstrap.image_ref("snail-base/python:3.11", 5000)
    assert {k for k in ("command", "entryPoint", "environment") if cd.get(k)} == set()
    assert found.get("tags", []) == []


def test_target_health_is_measured_not_assumed(plane):
    """The running task's target is 'healthy' because its /health answered; the unused group has none."""
    blue, green = plane.seeded["target_group_arns"]
    [target] = plane.health(blue)
    assert target["TargetHealth"]["State"] == "healthy"
    assert target["Target"]["Port"] == 5000 and not target["Target"]["Id"].startswith("127.")
    assert plane.health(green) == []


def test_canary_splits_production_traffic_by_weight_and_rolls_back(plane):
    """CANARY 10 %: 1,000 production requests split 900/100 (within 5 %), test traffic all green, then ROLLBACK."""
    arn = plane.deploy(
        "127.0.0.1:5055/shine-api-gateway:green",
        strategy="CANARY",
        canaryConfiguration={"canaryPercent": 10.0, "canaryBakeTimeInMinutes": 0},
        bakeTimeInMinutes=0,
        lifecycleHooks=[pause("PRODUCTION_TRAFFIC_SHIFT")],
    )
    plane.wait(
        lambda: any(h["status"] == "AWAITING_ACTION" for h in plane.deployment(arn).get("lifecycleHookDetails", []))
    )
    counts = plane.get(plane.seeded["production_url"], 1000)
    assert abs(counts.get("green", 0) - 100) <= 50 and counts.get("green", 0) + counts.get("blue", 0) == 1000
    assert plane.get(plane.seeded["test_url"], 50) == {"green": 50}
    blue_tg, green_tg = plane.seeded["target_group_arns"]
    assert [t["TargetHealth"]["State"] for t in plane.health(green_tg)] == ["healthy"]

    assert plane.plane.flush_metrics() > 0
    stats = {}
    for tg in (blue_tg, green_tg):
        points = plane.cloudwatch.get_metric_statistics(
            Namespace="AWS/ApplicationELB",
            MetricName="RequestCount",
            Dimensions=[
                {"Name": "TargetGroup", "Value": lb.tg_dimension(tg)},
                {"Name": "LoadBalancer", "Value": lb.lb_dimension(plane.seeded["load_balancer_arn"])},
            ],
            StartTime=datetime.now(timezone.utc) - timedelta(minutes=5),
            EndTime=datetime.now(timezone.utc) + timedelta(minutes=1),
            Period=60,
            Statistics=["Sum"],
        )["Datapoints"]
        stats[tg] = sum(p["Sum"] for p in points)
    assert stats[green_tg] == counts["green"] + 50 and stats[blue_tg] >= counts["blue"]
    latency = plane.cloudwatch.get_metric_statistics(
        Namespace="AWS/ApplicationELB",
        MetricName="TargetResponseTime",
        Dimensions=[
            {"Name": "TargetGroup", "Value": lb.tg_dimension(green_tg)},
            {"Name": "LoadBalancer", "Value": lb.lb_dimension(plane.seeded["load_balancer_arn"])},
        ],
        StartTime=datetime.now(timezone.utc) - timedelta(minutes=5),
        EndTime=datetime.now(timezone.utc) + timedelta(minutes=1),
        Period=60,
        Statistics=["Average", "SampleCount", "Maximum"],
    )["Datapoints"]
    # every green answer is a latency sample; in-process targets answer in well under a second (0.0 is possible)
    assert sum(p["SampleCount"] for p in latency) == counts["green"] + 50 and 0 <= latency[0]["Average"] < 1
    p99 = plane.cloudwatch.get_metric_data(  # what a metrics gate asks for: the target group's p99 latency
        MetricDataQueries=[
            {
                "Id": "p99",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/ApplicationELB",
                        "MetricName": "TargetResponseTime",
                        "Dimensions": [
                            {"Name": "TargetGroup", "Value": lb.tg_dimension(green_tg)},
                            {"Name": "LoadBalancer", "Value": lb.lb_dimension(plane.seeded["load_balancer_arn"])},
                        ],
                    },
                    "Period": 300,
                    "Stat": "p99",
                },
            }
        ],
        StartTime=datetime.now(timezone.utc) - timedelta(minutes=5),
        EndTime=datetime.now(timezone.utc) + timedelta(minutes=1),
    )["MetricDataResults"][0]["Values"]
    # a p99 lies within the observed range (not necessarily above the mean: a few slow answers among many
    # instant ones, which these in-process targets give, put the mean above the 99th percentile)
    assert len(p99) == 1 and 0 <= p99[0] <= latency[0]["Maximum"]

    started = len(plane.launcher.started)
    hook = next(h for h in plane.deployment(arn)["lifecycleHookDetails"] if h["status"] == "AWAITING_ACTION")
    plane.ecs.continue_service_deployment(serviceDeploymentArn=arn, hookId=hook["hookId"], action="ROLLBACK")
    plane.wait(lambda: plane.deployment(arn)["status"] == "ROLLBACK_SUCCESSFUL")
    assert plane.get(plane.seeded["production_url"], 100) == {"blue": 100}
    assert len(plane.launcher.started) == started


def test_blue_green_switches_production_only_after_continue(plane):
    """BLUE_GREEN: green answers the test URL while production stays blue; after CONTINUE production is green."""
    arn = plane.deploy(
        "127.0.0.1:5055/shine-api-gateway:green",
        strategy="BLUE_GREEN",
        bakeTimeInMinutes=0,
        lifecycleHooks=[pause("POST_TEST_TRAFFIC_SHIFT")],
    )
    plane.wait(
        lambda: any(h["status"] == "AWAITING_ACTION" for h in plane.deployment(arn).get("lifecycleHookDetails", []))
    )
    assert plane.get(plane.seeded["production_url"], 50) == {"blue": 50}
    assert plane.get(plane.seeded["test_url"], 50) == {"green": 50}
    hook = plane.deployment(arn)["lifecycleHookDetails"][0]
    [summary] = control.services_summary(plane.info)  # what `snail sandbox status` shows
    assert summary["service_deployment"] == {
        "id": arn.rsplit("/", 1)[-1],
        "status": "IN_PROGRESS",
        "strategy": "BLUE_GREEN",
        "stage": "POST_TEST_TRAFFIC_SHIFT",
        "production_percent": 0.0,
        "test_percent": 100.0,
        "awaiting_hooks": [hook["hookId"]],
    }
    plane.ecs.continue_service_deployment(serviceDeploymentArn=arn, hookId=hook["hookId"], action="CONTINUE")
    plane.wait(lambda: plane.deployment(arn)["status"] == "SUCCESSFUL")
    assert plane.get(plane.seeded["production_url"], 50) == {"green": 50}
    blue_tg, green_tg = plane.seeded["target_group_arns"]
    assert plane.health(blue_tg) == [] and len(plane.health(green_tg)) == 1


def test_unhealthy_green_is_reported_replaced_and_rolled_back(plane):
    """Green failing its /health: DescribeTargetHealth says why, ECS replaces it, the breaker rolls back to blue."""
    # ECS leaves an unhealthy target alone for the grace period: long enough to see it reported every time.
    plane.ecs.update_service(cluster=CLUSTER, service=SERVICE, healthCheckGracePeriodSeconds=1)
    arn = plane.deploy(
        "127.0.0.1:5055/shine-api-gateway:broken",
        strategy="BLUE_GREEN",
        bakeTimeInMinutes=0,
        deploymentCircuitBreaker={"enable": True, "rollback": True},
    )
    green_tg = plane.seeded["target_group_arns"][1]
    seen: list[dict[str, Any]] = []

    def unhealthy() -> bool:
        seen.extend(t["TargetHealth"] for t in plane.health(green_tg))
        return any(h["State"] == "unhealthy" for h in seen)

    plane.wait(unhealthy)
    bad = next(h for h in seen if h["State"] == "unhealthy")
    assert (bad["Reason"], bad["Description"]) == (
        "Target.ResponseCodeMismatch",
        "Health checks failed with these codes: [500]",
    )
    plane.wait(lambda: plane.deployment(arn)["status"] == "ROLLBACK_SUCCESSFUL", timeout=40)
    assert plane.deployment(arn)["deploymentCircuitBreaker"]["status"] == "TRIGGERED"
    stopped = plane.ecs.list_tasks(cluster=CLUSTER, serviceName=SERVICE, desiredStatus="STOPPED")["taskArns"]
    reasons = {t["stoppedReason"] for t in plane.ecs.describe_tasks(cluster=CLUSTER, tasks=stopped)["tasks"]}
    assert f"Task failed ELB health checks in (target-group {green_tg})" in reasons
    assert plane.get(plane.seeded["production_url"], 20) == {"blue": 20}


def test_smooth_weights_split_exactly():
    """The weighted pick gives each target group exactly its share over any window of sum(weights) picks."""
    picker = lb.SmoothWeighted([("blue", 900), ("green", 100)])
    picks = [picker.pick() for _ in range(1000)]
    assert picks.count("green") == 100
    assert max(len(run) for run in "".join("g" if p == "green" else "b" for p in picks).split("g")) <= 10
    assert lb.SmoothWeighted([("blue", 0), ("green", 0)]).pick() is None


def test_rules_and_matchers_like_an_alb():
    """Path patterns with * and ?, host headers case-insensitively, and HttpCode ranges/lists."""
    rule = lb.Rule(1, (("path-pattern", ("/api/*",)), ("host-header", ("*.example.com",))), {}, "r")
    assert lb.rule_matches(rule, "/api/v1", "Shop.Example.com")
    assert not lb.rule_matches(rule, "/web", "shop.example.com")
    assert lb.matcher_accepts("200-299", 204) and lb.matcher_accepts("200,302", 302)
    assert not lb.matcher_accepts("200", 500)


def test_elbv2_adapter_reads_rules_weights_and_health(plane):
    """Elbv2Client resolves groups by name and rules by Name tag, reads each rule's split and the targets' health."""
    aws = AwsContext(
        region=REGION,
        endpoint_url=plane.info.endpoint_url,
        credentials={"aws_access_key_id": "sandbox", "aws_secret_access_key": "sandbox"},
    )
    client = Elbv2Client(aws)
    blue_arn, green_arn = plane.seeded["target_group_arns"]
    blue = client.target_group("shine-blue")
    assert (blue.arn, blue.port, blue.health_path, blue.dimension) == (
        blue_arn,
        5000,
        "/health",
        lb.tg_dimension(blue_arn),
    )
    production = client.rule("production", (plane.seeded["load_balancer_arn"],))
    assert production.arn == plane.seeded["production_listener_rule_arn"]
    assert production.forwards_to(blue_arn, green_arn) and production.share(blue_arn) == 100.0
    assert client.listener_port(production.listener_arn) == int(plane.seeded["production_url"].rsplit(":", 1)[1])
    assert client.rule(production.arn).weights == production.weights
    assert [t.is_healthy for t in client.target_health(blue_arn)] == [True]
    with pytest.raises(NotFound):
        client.rule("nope", (plane.seeded["load_balancer_arn"],))
    with pytest.raises(NotFound):
        client.target_group("nope")


def test_health_check_grace_period_spares_a_new_task(world):
    """A target the load balancer calls unhealthy is left alone during healthCheckGracePeriodSeconds, then replaced."""
    world.create_service(strategy="ROLLING", desired=1)
    world.ecs.update_service(cluster=CLUSTER, service=SERVICE, healthCheckGracePeriodSeconds=60)
    extension.TARGET_HEALTH["lookup"] = lambda tg, ip, port: ("unhealthy", "Target.Timeout", "Request timed out")
    try:
        world.deploy()
        for _ in range(5):
            world.agent.reconcile_once()
        assert world.running(GREEN) == 1 and not elb_stops(world)  # within the grace period
        world.now += 61
        world.agent.reconcile_once()
    finally:
        extension.TARGET_HEALTH["lookup"] = None
    assert elb_stops(world)


def elb_stops(world: World) -> list[str]:
    """Stopped reasons of tasks ECS replaced because their load-balancer health checks failed."""
    stopped = world.ecs.list_tasks(cluster=CLUSTER, serviceName=SERVICE, desiredStatus="STOPPED")["taskArns"]
    tasks = world.ecs.describe_tasks(cluster=CLUSTER, tasks=stopped)["tasks"] if stopped else []
    return [t["stoppedReason"] for t in tasks if t["stoppedReason"].startswith("Task failed ELB health checks")]


def test_pipeline_load_balancer_fields_reach_the_sandbox_spec(tmp_path):
    """service.load_balancer's rules, target groups and role load from pipeline.yaml into the seeding spec."""
    (tmp_path / "phases").mkdir()
    (tmp_path / "phases" / "one.yaml").write_text(
        "name: one\nimage: {ref: '127.0.0.1:5055/api@sha256:" + "a" * 64 + "'}\n"
    )
    (tmp_path / "pipeline.yaml").write_text(
        "version: 1\n"
        "service:\n"
        "  cluster: shine\n  name: shine-api-gateway\n  container: api\n  port: 5000\n"
        "  load_balancer:\n"
        "    target_group_arn: shine-blue\n"
        "    target_groups: [shine-blue, shine-green]\n"
        "    production_listener_rule: production\n"
        "    test_listener_rule: test\n"
        "    infrastructure_role: ecsInfrastructureRole\n"
        "registry: {url: 127.0.0.1:5055/shine-api-gateway}\n"
        "phases: [one]\n"
    )
    pipeline = load_pipeline(tmp_path / "pipeline.yaml")
    from orchestrator.cli.sandboxing import spec_for

    spec = spec_for(pipeline)
    assert spec.load_balancer == LoadBalancerSeed(
        target_group="shine-blue",
        container_port=None,
        target_groups=("shine-blue", "shine-green"),
        production_listener_rule="production",
        test_listener_rule="test",
        infrastructure_role="ecsInfrastructureRole",
    )
    assert pipeline.service.load_balancer.target_groups == ("shine-blue", "shine-green")


def test_a_newer_deployment_reconciles_the_one_it_replaced(world):
    """Updating during a paused canary: the old deployment STOPPED, RECONCILE_SERVICE drains its green, traffic restarts on blue."""
    world.create_service(
        strategy="CANARY",
        bakeTimeInMinutes=0,
        canaryConfiguration={"canaryPercent": 10.0, "canaryBakeTimeInMinutes": 0},
        lifecycleHooks=[pause("PRODUCTION_TRAFFIC_SHIFT")],
    )
    first = world.deploy(GREEN)
    world.until_awaiting(first, "PRODUCTION_TRAFFIC_SHIFT")
    assert world.forward("production") == {"blue": 900, "green": 100}
    third = "127.0.0.1:5055/shine-api-gateway:third"
    second = world.deploy(third)
    assert world.deployment(first)["status"] == "STOPPED"
    dep = world.until_awaiting(second, "PRODUCTION_TRAFFIC_SHIFT")
    run = extension.ecs_backend("123456789012", REGION).sandbox_service_deployments[second]
    assert run.stages_seen[:3] == ["RECONCILE_SERVICE", "PRE_SCALE_UP", "SCALE_UP"]
    assert len(dep["sourceServiceRevisions"]) == 2
    assert world.running(GREEN) == 0 and world.running(BLUE) == 2 and world.running(third) == 2
    assert world.forward("production") == {"blue": 900, "green": 100}  # the new canary's slice, on third
    hook = next(h for h in dep["lifecycleHookDetails"] if h["status"] == "AWAITING_ACTION")
    world.ecs.continue_service_deployment(serviceDeploymentArn=second, hookId=hook["hookId"], action="ROLLBACK")
    world.until_status(second, "ROLLBACK_SUCCESSFUL")
    assert world.forward("production") == {"blue": 1, "green": 0}
    assert world.running(BLUE) == 2 and world.running(third) == 0


def test_breaker_without_rollback_fails_green_and_keeps_blue_serving(world):
    """Breaker on, rollback off: green's deployment FAILED, production stays on blue, the deployment goes on trying."""
    world.create_service(
        strategy="BLUE_GREEN",
        bakeTimeInMinutes=0,
        deploymentCircuitBreaker={"enable": True, "rollback": False},
    )
    arn = world.deploy(MISSING)
    world.settle(lambda: world.deployment(arn)["deploymentCircuitBreaker"]["status"] == "TRIGGERED")
    for _ in range(5):
        world.agent.reconcile_once()
    dep = world.deployment(arn)
    assert (dep["status"], dep["lifecycleStage"]) == ("IN_PROGRESS", "SCALE_UP")
    green = world.describe()["deployments"][0]
    assert (green["status"], green["rolloutState"]) == ("PRIMARY", "FAILED")
    assert green["failedTasks"] > dep["deploymentCircuitBreaker"]["threshold"]  # still trying
    assert world.forward("production") == {"blue": 1, "green": 0} and world.running(BLUE) == 2


# ------------------------------------------------------------------------------------------------ alarms


def put_alarm(world: World, name: str, metric: str = "HTTPCode_Target_5XX_Count", **kwargs: Any) -> None:
    """A metric alarm on the green target group's metric (Sum > 0 over one minute unless told otherwise)."""
    params = {
        "AlarmName": name,
        "Namespace": "AWS/ApplicationELB",
        "MetricName": metric,
        "Dimensions": [{"Name": "TargetGroup", "Value": "targetgroup/green/1"}],
        "Statistic": "Sum",
        "Period": 60,
        "EvaluationPeriods": 1,
        "Threshold": 0.0,
        "ComparisonOperator": "GreaterThanThreshold",
        **kwargs,
    }
    world.cloudwatch.put_metric_alarm(**{k: v for k, v in params.items() if v is not None})


def put_value(world: World, metric: str, values: list[float]) -> None:
    """Publish values for the green target group now."""
    world.cloudwatch.put_metric_data(
        Namespace="AWS/ApplicationELB",
        MetricData=[
            {
                "MetricName": metric,
                "Dimensions": [{"Name": "TargetGroup", "Value": "targetgroup/green/1"}],
                "Values": values,
                "Timestamp": datetime.now(timezone.utc),
            }
        ],
    )


def alarm_state(world: World, name: str) -> dict[str, Any]:
    """DescribeAlarms for one alarm."""
    return world.cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]


def test_alarms_are_evaluated_like_cloudwatch(world):
    """5XX above 0 puts the alarm in ALARM with CloudWatch's reason; no data is INSUFFICIENT_DATA or OK by policy."""
    put_alarm(world, "green-5xx")
    put_alarm(world, "quiet", metric="Nothing")
    put_alarm(world, "quiet-ok", metric="Nothing", TreatMissingData="notBreaching")
    put_alarm(world, "slow", metric="TargetResponseTime", Statistic=None, ExtendedStatistic="p99", Threshold=0.5)
    put_value(world, "HTTPCode_Target_5XX_Count", [3.0])
    put_value(world, "TargetResponseTime", [0.01] * 98 + [0.9, 0.9])
    changes = alarms.evaluate_once("123456789012")
    assert sorted(c[0] for c in changes) == ["green-5xx", "quiet", "slow"]  # quiet-ok stays OK
    assert alarm_state(world, "green-5xx")["StateValue"] == "ALARM"
    assert alarm_state(world, "green-5xx")["StateReason"].startswith(
        "Threshold Crossed: 1 out of the last 1 datapoints [3] was greater than the threshold (0)"
    )
    assert alarm_state(world, "quiet")["StateValue"] == "INSUFFICIENT_DATA"
    assert alarm_state(world, "quiet-ok")["StateValue"] == "OK"
    assert alarm_state(world, "slow")["StateValue"] == "ALARM"  # p99 0.9 > 0.5 though the average is 0.03
    assert alarms.evaluate_once("123456789012") == []  # no change, no new state


def test_deployment_alarm_rolls_back_a_paused_blue_green(world):
    """deploymentConfiguration.alarms: an alarm in ALARM while green is on test traffic rolls the deployment back."""
    put_alarm(world, "green-5xx")
    world.create_service(
        strategy="BLUE_GREEN",
        bakeTimeInMinutes=0,
        lifecycleHooks=[pause("POST_TEST_TRAFFIC_SHIFT")],
        alarms={"alarmNames": ["green-5xx"], "enable": True, "rollback": True},
    )
    arn = world.deploy()
    dep = world.until_awaiting(arn, "POST_TEST_TRAFFIC_SHIFT")
    assert dep["alarms"] == {"status": "MONITORING", "alarmNames": ["green-5xx"], "triggeredAlarmNames": []}
    put_value(world, "HTTPCode_Target_5XX_Count", [7.0])
    alarms.evaluate_once("123456789012")
    dep = world.until_status(arn, "ROLLBACK_SUCCESSFUL")
    assert dep["alarms"]["status"] == "TRIGGERED" and dep["alarms"]["triggeredAlarmNames"] == ["green-5xx"]
    assert dep["rollback"]["reason"] == "ECS deployment alarms: green-5xx in ALARM."
    assert world.forward("production") == {"blue": 1, "green": 0} and world.running(GREEN) == 0


def test_a_second_up_puts_a_running_service_behind_its_new_load_balancer(endpoint, monkeypatch):
    """pipeline.yaml gains service.load_balancer: `up` again wires the service and its running task is registered."""
    monkeypatch.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
    requests.post(f"{endpoint}/moto-api/reset", timeout=10)
    info = control.SandboxInfo(pid=os.getpid(), endpoint_url=endpoint, registry="127.0.0.1:5055", region=REGION)
    agent = EcsAgent(InstantLauncher(host_port_for=lambda image: 18080), restart_backoff=(0, 0), steady_after=0)
    spec = control.SandboxSpec(cluster=CLUSTER, service=SERVICE, region=REGION)
    control.seed(info, spec)
    ecs, elbv2 = info.client("ecs"), info.client("elbv2")
    for _ in range(5):
        agent.reconcile_once()
    assert ecs.describe_services(cluster=CLUSTER, services=[SERVICE])["services"][0]["loadBalancers"] == []
    with_lb = dataclasses.replace(spec, load_balancer=LoadBalancerSeed(target_group="shine-blue"))
    seeded = control.seed(info, with_lb)
    [wired] = ecs.describe_services(cluster=CLUSTER, services=[SERVICE])["services"][0]["loadBalancers"]
    assert wired["targetGroupArn"] == seeded["target_group_arns"][0] and "advancedConfiguration" not in wired
    assert "test_url" not in seeded  # one target group: a production listener only
    agent.reconcile_once()
    targets = elbv2.describe_target_health(TargetGroupArn=wired["targetGroupArn"])["TargetHealthDescriptions"]
    assert [t["Target"]["Port"] for t in targets] == [5000]


def test_the_load_balancer_answers_for_itself_like_an_alb():
    """No rule matches: the default fixed response; an empty group: 503; a refusing target: 502; counted as ELB 5XX."""
    refused = _free_port()
    app = serve("blue")
    groups = {
        "tg/empty": lb.TargetGroup("tg/empty", "targetgroup/empty/1", ["app/x/1"], [], health_enabled=False),
        "tg/dead": lb.TargetGroup(
            "tg/dead", "targetgroup/dead/1", ["app/x/1"], [lb.Target("10.0.0.9", 5000, ("127.0.0.1", refused))]
        ),
        "tg/blue": lb.TargetGroup(
            "tg/blue",
            "targetgroup/blue/1",
            ["app/x/1"],
            [lb.Target("10.0.0.1", 5000, ("127.0.0.1", app.server_address[1]))],
            health_enabled=False,
        ),
    }
    port = _free_port()
    rules = [
        lb.Rule(1, (("path-pattern", ("/empty*",)),), {"Type": "forward", "TargetGroupArn": "tg/empty"}, "r1"),
        lb.Rule(2, (("path-pattern", ("/dead*",)),), {"Type": "forward", "TargetGroupArn": "tg/dead"}, "r2"),
        lb.Rule(3, (("path-pattern", ("/app*",)),), {"Type": "forward", "TargetGroupArn": "tg/blue"}, "r3"),
        lb.Rule(
            float("inf"),
            (),
            {"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404", "MessageBody": "no route"}},
            "default",
        ),
    ]
    snap = lb.Snapshot({port: lb.Listener(port, "app/x/1", rules)}, groups)
    published: list[dict[str, Any]] = []
    plane = lb.DataPlane(snapshot=lambda: snap, metrics_period=3600, publish=published.extend)
    plane.start()
    try:
        base = f"http://127.0.0.1:{port}"
        nowhere = requests.get(f"{base}/elsewhere", timeout=5)
        assert (nowhere.status_code, nowhere.text, nowhere.headers["Server"]) == (404, "no route", "awselb/2.0")
        assert requests.get(f"{base}/empty", timeout=5).status_code == 503
        dead = requests.get(f"{base}/dead", timeout=5)
        assert (dead.status_code, dead.reason) == (502, "Bad Gateway")
        assert requests.get(f"{base}/app", timeout=5).text == "blue"
        plane.flush_metrics()
    finally:
        plane.stop()
        app.shutdown()
    # periods are aligned to the clock: requests made across a period boundary land in two datapoints, so sum them
    by_name: dict[tuple[str, tuple[str, ...]], dict[str, float]] = {}
    for d in published:
        key = (d["MetricName"], tuple(x["Value"] for x in d["Dimensions"]))
        by_name.setdefault(key, {"Value": 0.0})["Value"] += float(d.get("Value", 0.0))
    assert by_name[("HTTPCode_ELB_5XX_Count", ("app/x/1",))]["Value"] == 2.0
    assert by_name[("RequestCount", ("app/x/1",))]["Value"] == 4.0
    assert by_name[("HTTPCode_Target_2XX_Count", ("targetgroup/blue/1", "app/x/1"))]["Value"] == 1.0
    assert (
        "HTTPCode_Target_5XX_Count",
        ("targetgroup/dead/1", "app/x/1"),
    ) not in by_name  # the ELB's, not the target's


def _free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_strategy_on_a_code_deploy_service_names_the_controller(world):
    """A native strategy on a service with the CODE_DEPLOY controller is refused, naming the controller."""
    world.ecs.create_service(
        cluster=CLUSTER,
        serviceName="legacy",
        taskDefinition=world.register(BLUE),
        desiredCount=1,
        deploymentController={"type": "CODE_DEPLOY"},
    )
    with pytest.raises(ClientError) as err:
        world.ecs.update_service(
            cluster=CLUSTER,
            service="legacy",
            loadBalancers=[
                {
                    "targetGroupArn": world.blue_tg,
                    "containerName": "api",
                    "containerPort": 5000,
                    "advancedConfiguration": {
                        "alternateTargetGroupArn": world.green_tg,
                        "productionListenerRule": world.rules["production"],
                        "roleArn": "arn:aws:iam::123456789012:role/ecsInfrastructureRole",
                    },
                }
            ],
            deploymentConfiguration={"strategy": "BLUE_GREEN"},
        )
    assert err.value.response["Error"]["Code"] == "InvalidParameterException"
    assert "CODE_DEPLOY" in err.value.response["Error"]["Message"]


# ------------------------------------------------------------------------------- hooks end with their deployment


def test_a_superseded_deployment_leaves_no_hook_awaiting_action(world):
    """A newer deployment replaces one paused at a PAUSE hook: the old one STOPPED, its hook FAILED and unanswerable."""
    world.create_service(strategy="BLUE_GREEN", bakeTimeInMinutes=0, lifecycleHooks=[pause("POST_TEST_TRAFFIC_SHIFT")])
    first = world.deploy(GREEN)
    [hook] = world.until_awaiting(first, "POST_TEST_TRAFFIC_SHIFT")["lifecycleHookDetails"]
    world.deploy("127.0.0.1:5055/shine-api-gateway:third")
    old = world.deployment(first)
    assert old["status"] == "STOPPED"
    assert [(h["hookId"], h["status"]) for h in old["lifecycleHookDetails"]] == [(hook["hookId"], "FAILED")]
    with pytest.raises(ClientError) as err:
        world.ecs.continue_service_deployment(serviceDeploymentArn=first, hookId=hook["hookId"], action="CONTINUE")
    assert err.value.response["Error"]["Code"] == "InvalidParameterException"


@pytest.mark.parametrize("status", ["ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS", *sd.FINISHED])
def test_no_hook_awaits_action_once_its_deployment_ends(status):
    """However a deployment ends or turns back (stopped, rolled back, succeeded), no hook of it still awaits action."""
    now = datetime.now(timezone.utc)
    revision = sd.Revision("arn:rev/1", "ecs-svc/1", "family:1")
    run = sd.ServiceDeploymentRun(
        "arn:dep/1", "arn:svc", "arn:cluster", SERVICE, CLUSTER, "BLUE_GREEN", {}, revision, [], "IN_PROGRESS"
    )
    for stage, state in (("PRE_SCALE_UP", "SUCCEEDED"), ("POST_TEST_TRAFFIC_SHIFT", "AWAITING_ACTION")):
        run.hooks.append(sd.Hook(f"h-{stage}", stage, "PAUSE", None, state, now, 0.0, "ROLLBACK", stage))
    run.set_status(status)
    assert run.awaiting() == []
    assert [h.status for h in run.hooks] == ["SUCCEEDED", "FAILED"]  # a resolved hook keeps its verdict


# ----------------------------------------------------------------------------------- target groups across deployments


def test_successive_blue_green_deployments_alternate_the_target_groups(world):
    """Each deployment's green goes to the group production does not use; loadBalancers stays as configured."""
    world.create_service(strategy="BLUE_GREEN", bakeTimeInMinutes=0)
    configured = world.describe()["loadBalancers"]
    world.until_status(world.deploy(GREEN), "SUCCESSFUL")
    assert world.forward("production") == {"blue": 0, "green": 1} and len(world.targets(world.green_tg)) == 2
    third = "127.0.0.1:5055/shine-api-gateway:third"
    world.until_status(world.deploy(third), "SUCCESSFUL")
    assert world.forward("production") == {"blue": 1, "green": 0}  # back on the first group, now running third
    assert len(world.targets(world.blue_tg)) == 2 and world.targets(world.green_tg) == set()
    assert world.running(third) == 2 and world.running(GREEN) == 0
    assert world.describe()["loadBalancers"] == configured  # ECS's docs do not say it swaps them: see traffic.py


# ------------------------------------------------------------------------ the load balancer stops what it started


class _AsyncioErrors(logging.Handler):
    """Keeps what asyncio logs at ERROR (e.g. 'Task was destroyed but it is pending!')."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Keep the message."""
        self.messages.append(record.getMessage())


@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.filterwarnings("error::ResourceWarning")  # an unclosed transport, garbage-collected, is an error
def test_stopping_the_load_balancer_ends_every_task_it_started():
    """Stop with a probe and a proxied request in flight and a client kept alive: every check, connection and
    server ends, each upstream connection is closed (not left to the garbage collector), nothing pending is
    destroyed."""
    import gc
    import socket

    silent = socket.socket()  # a target that accepts and never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    silent.settimeout(5)
    app = serve("blue")
    quiet = ("127.0.0.1", silent.getsockname()[1])
    groups = {
        "tg/blue": lb.TargetGroup(  # its health probe of the silent target is in flight at stop
            "tg/blue",
            "targetgroup/blue/1",
            ["app/x/1"],
            [
                lb.Target("10.0.0.1", 5000, ("127.0.0.1", app.server_address[1])),
                lb.Target("10.0.0.2", 5000, quiet),
            ],
            interval=0.05,
            timeout=30.0,
        ),
        "tg/slow": lb.TargetGroup(
            "tg/slow", "targetgroup/slow/1", ["app/x/1"], [lb.Target("10.0.0.3", 5000, quiet)], health_enabled=False
        ),
    }
    port = _free_port()
    rules = [
        lb.Rule(1, (("path-pattern", ("/slow*",)),), {"Type": "forward", "TargetGroupArn": "tg/slow"}, "r1"),
        lb.Rule(2, (), {"Type": "forward", "TargetGroupArn": "tg/blue"}, "r2"),
    ]
    snap = lb.Snapshot({port: lb.Listener(port, "app/x/1", rules)}, groups)
    errors = _AsyncioErrors()
    logging.getLogger("asyncio").addHandler(errors)
    plane = lb.DataPlane(snapshot=lambda: snap, metrics_period=3600, publish=lambda data: None)
    plane.start()
    client = requests.Session()

    def wait_for_slow() -> None:
        with contextlib.suppress(requests.RequestException):  # cut at stop: the balancer closes it
            requests.get(f"http://127.0.0.1:{port}/slow", timeout=10)

    waiting = threading.Thread(target=wait_for_slow, daemon=True)
    upstreams: dict[bytes, socket.socket] = {}
    try:
        deadline = time.monotonic() + 5
        while plane.lookup("tg/blue", "10.0.0.1", 5000)[0] != "healthy" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 200  # kept alive through stop
        waiting.start()
        while len(upstreams) < 2:  # the probe (GET /) and the proxied request (GET /slow), both unanswered
            conn, _ = silent.accept()
            conn.settimeout(5)
            head = b""
            while b"\r\n\r\n" not in head:
                head += conn.recv(4096)
            upstreams[head.split(b" ", 2)[1]] = conn
        assert sorted(upstreams) == [b"/", b"/slow"]
        thread = plane._thread
        plane.stop()
        assert thread is not None and not thread.is_alive()
        for path, conn in upstreams.items():
            assert conn.recv(4096) == b"", path  # closed by the balancer (a timeout here: left open)
        with pytest.raises(requests.ConnectionError):  # the listener is closed
            requests.get(f"http://127.0.0.1:{port}/", timeout=5)
        del plane
        gc.collect()  # a task left pending would be destroyed here, and asyncio would log it
        assert errors.messages == []
    finally:
        logging.getLogger("asyncio").removeHandler(errors)
        for conn in upstreams.values():
            conn.close()
        client.close()
        app.shutdown()
        app.server_close()
        silent.close()
