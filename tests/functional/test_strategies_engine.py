"""The engine driving ECS-native blue-green and canary through PAUSE hooks, on moto + the sandbox agent + the
sandbox's real load balancer data plane (HTTP on 127.0.0.1), with a fake clock: gates judge green through the
test listener, CONTINUE or ROLLBACK answers the hook, and a ROLLBACK starts no task."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from ecsbox import lb
from ecsbox.agent import EcsAgent
from ecsbox.launchers import InstantLauncher
from orchestrator.aws.ecs import EcsClient
from orchestrator.aws.session import AwsContext
from orchestrator.config import load_pipeline
from orchestrator.engine import strategies
from orchestrator.engine.executor import Engine, RunOptions
from orchestrator.errors import ConfigErrors
from orchestrator.plan import render_plan
from orchestrator.state.sqlite import SqliteStore
from orchestrator.trail import render
from tests.conftest import Behaviour
from tests.functional.world import ACCOUNT, REGION, AgentClock
from tests.harness.pipeline import image, pipeline_text

CLUSTER, SERVICE = "shine", "shine-api-gateway"

# On the injected clock a 1 s poll and retry wait cost nothing real; these pipelines do not bake.
TIMING = {"bake": "0", "poll": "1s", "wait": "1s"}


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (for a listener of the data plane)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class World:
    """moto (in process) + the agent + the load balancer data plane + per-image HTTP servers + a pipeline."""

    def __init__(
        self,
        tmp_path: Path,
        http_server: Any,
        strategy: str = "blue-green",
        on_interrupt: str = "rollback",
        controller: str = "ECS",
        grace: int = 0,
    ):
        self.controller = controller
        self.grace = grace  # the service's healthCheckGracePeriodSeconds (ECS keeps ELB-unhealthy tasks that long)
        self.tmp = tmp_path
        self.http_server = http_server
        self.strategy = strategy
        self.on_interrupt = on_interrupt
        self.ports: dict[str, int] = {}
        self.behaviours: dict[str, Behaviour] = {}
        self.clock = AgentClock()
        self.launcher = InstantLauncher(host_port_for=lambda img: self.ports.get(img))
        self.agent = EcsAgent(
            self.launcher,
            account_id=ACCOUNT,
            region=REGION,
            monotonic=self.clock.monotonic,
            restart_backoff=(0, 0),
            steady_after=0,
        )
        self.clock.agent = self.agent
        self.clock.on_sleep.append(lambda: time.sleep(0.01))  # the data plane (a real thread) catches up
        self.ecs = boto3.client("ecs", region_name=REGION)
        self.elbv2 = boto3.client("elbv2", region_name=REGION)
        self.serve("0")
        self._seed()
        self.plane = lb.DataPlane(account_id=ACCOUNT, refresh=0.05, metrics_period=3600, min_health_interval=0.02)
        self.plane.start()
        for _ in range(10):
            self.agent.reconcile_once()
        self.store = SqliteStore(tmp_path / ".snail" / "state.db")

    def _seed(self) -> None:
        ec2 = boto3.client("ec2", region_name=REGION)
        vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
        subnets = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"][:2]]
        sg = ec2.describe_security_groups()["SecurityGroups"][0]["GroupId"]
        balancer = self.elbv2.create_load_balancer(Name="shine", Subnets=subnets)["LoadBalancers"][0]
        self.blue_tg, self.green_tg = (
            self.elbv2.create_target_group(
                Name=name,
                Protocol="HTTP",
                Port=5000,
                VpcId=vpc,
                TargetType="ip",
                HealthCheckPath="/health",
                HealthyThresholdCount=2,
                UnhealthyThresholdCount=2,
            )["TargetGroups"][0]["TargetGroupArn"]
            for name in ("shine-blue", "shine-green")
        )
        self.rules: dict[str, str] = {}
        self.urls: dict[str, str] = {}
        for kind in ("production", "test"):
            port = free_port()
            listener = self.elbv2.create_listener(
                LoadBalancerArn=balancer["LoadBalancerArn"],
                Protocol="HTTP",
                Port=port,
                DefaultActions=[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}],
            )["Listeners"][0]
            self.rules[kind] = self.elbv2.create_rule(
                ListenerArn=listener["ListenerArn"],
                Priority=1,
                Conditions=[{"Field": "path-pattern", "Values": ["/*"]}],
                Actions=[{"Type": "forward", "TargetGroupArn": self.blue_tg}],
            )["Rules"][0]["RuleArn"]
            self.urls[kind] = f"http://127.0.0.1:{port}"
        self.ecs.create_cluster(clusterName=CLUSTER)
        td = self.ecs.register_task_definition(
            family=SERVICE,
            containerDefinitions=[
                {"name": "api", "image": image("0"), "memory": 512, "portMappings": [{"containerPort": 5000}]}
            ],
            networkMode="awsvpc",
            requiresCompatibilities=["FARGATE"],
            cpu="256",
            memory="512",
        )["taskDefinition"]["taskDefinitionArn"]
        self.ecs.create_service(
            cluster=CLUSTER,
            serviceName=SERVICE,
            taskDefinition=td,
            desiredCount=2,
            launchType="FARGATE",
            networkConfiguration={"awsvpcConfiguration": {"subnets": subnets, "securityGroups": [sg]}},
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
            deploymentConfiguration={"deploymentCircuitBreaker": {"enable": True, "rollback": True}},
            deploymentController={"type": self.controller},
            healthCheckGracePeriodSeconds=self.grace,
        )

    def close(self) -> None:
        """Stop the data plane."""
        self.plane.stop()

    def serve(self, tag: str, behaviour: Behaviour | None = None) -> Behaviour:
        """The HTTP server the tasks of image(tag) answer from."""
        url, b = self.http_server(behaviour or Behaviour())
        self.ports[image(tag)] = int(url.rsplit(":", 1)[1])
        self.behaviours[tag] = b
        return b

    def pipeline(self, phases: dict[str, str], extra: dict[str, str] | None = None) -> Any:
        """pipeline.yaml + phase files (name -> image tag); returns the loaded pipeline."""
        (self.tmp / "phases").mkdir(exist_ok=True)
        balancer = {
            "target_group_arn": self.blue_tg,
            "production_listener_rule": self.rules["production"],
            "test_listener_rule": self.rules["test"],
            "target_groups": [self.blue_tg, self.green_tg],
            "infrastructure_role": "arn:aws:iam::123456789012:role/ecsInfrastructureRole",
            "test_url": self.urls["test"],
        }
        text = pipeline_text(
            self.tmp,
            list(phases),
            TIMING,
            service={"load_balancer": balancer},
            gates=("ecs-rollout", "http-ok"),
            sections={"rollback": {"on_interrupt": self.on_interrupt}},
            defaults={"strategy": self.strategy},
        )
        (self.tmp / "pipeline.yaml").write_text(text)
        for name, tag in phases.items():
            body = f'name: {name}\nimage: {{ref: "{image(tag)}"}}\n' + (extra or {}).get(name, "")
            (self.tmp / "phases" / f"{name}.yaml").write_text(body)
        return load_pipeline(self.tmp / "pipeline.yaml")

    def engine(self, pipeline: Any, aws: AwsContext | None = None) -> Engine:
        """An engine on the fake clock."""
        return Engine(pipeline, aws or AwsContext(region=REGION), self.store, clock=self.clock)

    def live(self) -> str:
        """The service's task definition."""
        return self.ecs.describe_services(cluster=CLUSTER, services=[SERVICE])["services"][0]["taskDefinition"]

    def forward(self, kind: str) -> dict[str, int]:
        """A rule's forward weights: {'blue': w, 'green': w} (blue = the seeded first group)."""
        [rule] = self.elbv2.describe_rules(RuleArns=[self.rules[kind]])["Rules"]
        action = rule["Actions"][0]
        names = {self.blue_tg: "shine-blue", self.green_tg: "shine-green"}
        if "ForwardConfig" not in action:
            return {names[action["TargetGroupArn"]]: 1}
        return {names[g["TargetGroupArn"]]: g["Weight"] for g in action["ForwardConfig"]["TargetGroups"]}

    def events(self, kind: str) -> list[Any]:
        """The trail's events of one kind, oldest first."""
        return [e for e in self.store.events(SERVICE) if e.kind == kind]

    def deployments(self) -> list[dict[str, Any]]:
        """Every service deployment, newest first."""
        arns = [
            d["serviceDeploymentArn"]
            for d in self.ecs.list_service_deployments(cluster=CLUSTER, service=SERVICE)["serviceDeployments"]
        ]
        return self.ecs.describe_service_deployments(serviceDeploymentArns=arns)["serviceDeployments"] if arns else []


@pytest.fixture
def aws():
    """In-process moto for every AWS call of the test."""
    from ecsbox import extension

    with mock_aws():
        yield
    extension.uninstall()


@pytest.fixture
def world(aws, tmp_path, http_server):
    """A service behind a load balancer with production and test listener rules, blue on image 0."""
    w = World(tmp_path, http_server)
    yield w
    w.close()


def test_blue_green_good_release_continues_and_is_marked_good(world) -> None:
    """Green passes its gates on the test listener: CONTINUE, production shifts to green, marked good."""
    world.serve("a")
    p = world.pipeline({"one": "a"})
    out = world.engine(p).run(RunOptions())
    assert (out.exit_code, out.status) == (0, "succeeded"), out.message
    good = world.store.last_good(SERVICE, "one")
    assert good is not None and world.live() == good.revision_arn
    assert world.forward("production") == {"shine-blue": 0, "shine-green": 1}
    dep = world.deployments()[0]
    assert dep["status"] == "SUCCESSFUL"
    answered = [s.intent for r in world.store.runs(SERVICE) for s in world.store.steps(r.run_id)]
    assert [(a["stage"], a["action"]) for a in answered if "action" in a] == [("POST_TEST_TRAFFIC_SHIFT", "CONTINUE")]
    updated = world.events("service_updated")[-1]
    assert updated.data["pauses"] == ["POST_TEST_TRAFFIC_SHIFT"]
    passed = [e for e in world.events("gate_passed") if e.data.get("stage") == "POST_TEST_TRAFFIC_SHIFT"]
    assert {e.data["gate"] for e in passed} == {"ecs-rollout", "http /health"}
    assert world.behaviours["a"].hits >= 1  # the http gate reached green through the test listener
    shifts = [e.data["traffic"] for e in world.events("traffic_shifted")]
    assert shifts[-1] == {"blue": 0.0, "green": 100.0}
    html = render("html", SERVICE, world.store.events(SERVICE), world.store.runs(SERVICE), p.phase_names())
    assert "traffic share" in html and "data-share=" in html  # the timeline draws the shift


def test_broken_release_is_caught_on_test_traffic_and_traffic_returns_without_a_task(world) -> None:
    """Green answers "degraded" on the test listener (the ALB's health check passes): ROLLBACK at the hook,
    production never on green, no task started."""
    world.serve("a")
    world.serve("b", Behaviour(200, {"status": "degraded"}))
    p = world.pipeline({"one": "a", "two": "b"})
    assert world.engine(p).run(RunOptions(to_phase="one")).status == "succeeded"
    one = world.store.last_good(SERVICE, "one")
    production_before = world.forward("production")
    started: dict[str, int] = {}

    def note_decision() -> None:
        if world.events("decision") and "n" not in started:
            started["n"] = len(world.launcher.started)

    world.clock.on_sleep.append(note_decision)
    out = world.engine(p).run(RunOptions(from_phase="two"))
    assert (out.exit_code, out.status) == (1, "rolled_back"), out.message
    assert world.live() == one.revision_arn
    assert world.forward("production") == production_before  # production never left blue
    shifts = [e.data["traffic"]["green"] for e in world.events("traffic_shifted") if e.run_id == out.run_id]
    assert shifts and max(shifts) == 0.0
    dep = world.deployments()[0]
    assert dep["status"] == "ROLLBACK_SUCCESSFUL" and "ContinueServiceDeployment" in dep["rollback"]["reason"]
    assert started.get("n") == len(world.launcher.started)  # not one task started after the decision
    kinds = [e.kind for e in world.store.events(SERVICE, out.run_id)]
    assert kinds.index("gate_failed") < kinds.index("decision") < kinds.index("rollback_started")
    assert kinds.index("rollback_started") < kinds.index("rollback_verified")
    run = world.store.runs(SERVICE)[0]
    assert not [s for s in world.store.steps(run.run_id) if s.kind == "rollback"]  # no second deployment
    assert world.store.last_good(SERVICE, "two") is None
    assert "degraded" in out.message


def test_continue_denied_leaves_the_rollback_timeout_to_protect_production(world) -> None:
    """ContinueServiceDeployment denied: the message names the permission; the hook's ROLLBACK timeout returns
    traffic to blue, and the run ends rolled back on blue."""
    world.serve("a")
    world.serve("b")
    p = world.pipeline({"one": "a", "two": "b"})
    assert world.engine(p).run(RunOptions(to_phase="one")).status == "succeeded"
    one = world.store.last_good(SERVICE, "one")
    aws = AwsContext(region=REGION)

    def deny(params: Any, **_: Any) -> None:
        raise ClientError(
            {"Error": {"Code": "AccessDeniedException", "Message": "not authorized"}}, "ContinueServiceDeployment"
        )

    aws.client("ecs").meta.events.register("before-call.ecs.ContinueServiceDeployment", deny)
    out = world.engine(p, aws).run(RunOptions(from_phase="two"))
    assert out.status == "rolled_back" and "ecs:ContinueServiceDeployment" in out.message, out.message
    assert world.live() == one.revision_arn
    [warning] = [e for e in world.events("warning") if e.run_id == out.run_id]
    assert "ecs:ContinueServiceDeployment" in warning.message and "ROLLBACK" in warning.message
    dep = world.deployments()[0]
    assert dep["status"] == "ROLLBACK_SUCCESSFUL" and "timed out" in dep["rollback"]["reason"]
    assert world.forward("production") == {"shine-blue": 0, "shine-green": 1}  # phase one's group, as before


def test_killed_while_paused_then_resumed_judges_the_same_hook(aws, tmp_path, http_server) -> None:
    """Interrupted while judging at the hook (on_interrupt: record): the deployment stays paused; `run --resume`
    finds it, judges the hook and continues; no second deployment is started."""
    world = World(tmp_path, http_server, on_interrupt="record")
    try:
        world.serve("a")
        p = world.pipeline({"one": "a"})
        calls = {"n": 0}

        def die_once_at_the_hook() -> None:
            deps = world.deployments()
            hooks = deps[0].get("lifecycleHookDetails", []) if deps else []
            if any(h["status"] == "AWAITING_ACTION" for h in hooks) and calls["n"] == 0:
                calls["n"] += 1
                raise KeyboardInterrupt

        world.clock.on_sleep.append(die_once_at_the_hook)
        first = world.engine(p).run(RunOptions())
        assert first.status == "interrupted", first.message
        dep, created = world.deployments()
        assert dep["status"] == "IN_PROGRESS" and dep["lifecycleHookDetails"][0]["status"] == "AWAITING_ACTION"
        svc = EcsClient(AwsContext(region=REGION)).service(CLUSTER, SERVICE)
        shown, lines = strategies.status(AwsContext(region=REGION), svc)  # what `snail status` prints
        assert shown is not None and shown["stage"] == "POST_TEST_TRAFFIC_SHIFT"
        assert shown["traffic"] == {"blue": 100.0, "green": 0.0} and shown["test_traffic_green"] == 100.0
        assert "BLUE_GREEN IN_PROGRESS at POST_TEST_TRAFFIC_SHIFT" in lines[0] and "AWAITING_ACTION" in lines[1]
        aws = AwsContext(region=REGION)
        calls: list[str] = []
        aws.record_calls(calls)
        engine = world.engine(p, aws)
        second = engine.run(RunOptions(from_phase=engine.resume_point()))
        assert (second.exit_code, second.status) == (0, "succeeded"), second.message
        again, _ = world.deployments()  # the same deployment, continued: no new one
        assert again["serviceDeploymentArn"] == dep["serviceDeploymentArn"] and again["status"] == "SUCCESSFUL"
        resumed = [e for e in world.events("service_unchanged") if e.data.get("resumed")]
        assert resumed and resumed[0].run_id == second.run_id
        assert resumed[0].data["found_by"] == "journal" and "ecs:ListServiceDeployments" not in calls
        assert world.store.last_good(SERVICE, "one").revision_arn == world.live()
    finally:
        world.close()


def publish(world: World, group_arn: str, requests: int, errors: int) -> None:
    """ALB metrics for a target group at the fake clock's now, as the data plane publishes them."""
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    [group] = world.elbv2.describe_target_groups(TargetGroupArns=[group_arn])["TargetGroups"]
    dims = [{"Name": "TargetGroup", "Value": group_arn.rsplit(":", 1)[-1]}]
    if group.get("LoadBalancerArns"):
        dims.append({"Name": "LoadBalancer", "Value": group["LoadBalancerArns"][0].split(":loadbalancer/", 1)[-1]})
    now = world.clock.now()
    cloudwatch.put_metric_data(
        Namespace="AWS/ApplicationELB",
        MetricData=[
            {"MetricName": "RequestCount", "Dimensions": dims, "Value": requests, "Timestamp": now},
            {"MetricName": "HTTPCode_Target_5XX_Count", "Dimensions": dims, "Value": errors, "Timestamp": now},
            {"MetricName": "TargetResponseTime", "Dimensions": dims, "Value": 0.02, "Timestamp": now},
        ],
    )


def test_a_hook_left_unanswered_times_out_to_blue_and_the_next_run_says_so(aws, tmp_path, http_server) -> None:
    """Nobody answers the hook (the snail that set it is gone): its ROLLBACK timeout puts everything back on blue;
    the next run says in the trail that ECS, not snail, rolled it back, then deploys and judges again."""
    world = World(tmp_path, http_server, on_interrupt="record")
    try:
        world.serve("a")
        p = world.pipeline({"one": "a"})
        bootstrap = world.live()
        gone = {"n": 0}

        def die_at_the_hook() -> None:
            deps = world.deployments()
            hooks = deps[0].get("lifecycleHookDetails", []) if deps else []
            if any(h["status"] == "AWAITING_ACTION" for h in hooks) and gone["n"] == 0:
                gone["n"] += 1
                raise KeyboardInterrupt

        world.clock.on_sleep.append(die_at_the_hook)
        assert world.engine(p).run(RunOptions()).status == "interrupted"
        world.clock.advance(11 * 60)  # past the hook's 10-minute timeout
        for _ in range(10):
            world.agent.reconcile_once()
        assert world.deployments()[0]["status"] == "ROLLBACK_SUCCESSFUL" and world.live() == bootstrap
        out = world.engine(p).run(RunOptions())
        assert out.status == "succeeded", out.message
        [note] = [e for e in world.events("reconciled") if e.data.get("by") == "hook_timeout"]
        assert note.run_id == out.run_id and "rolled back by ECS, not by snail" in note.message
    finally:
        world.close()


def test_canary_pauses_after_the_slice_and_rolls_back_on_its_metrics(aws, tmp_path, http_server) -> None:
    """Canary 10 %: test traffic first, then the production slice; green's 5xx ratio from CloudWatch (compared
    with blue's) fails the metrics gate at the slice: ROLLBACK, and blue serves all of production again."""
    world = World(tmp_path, http_server, strategy="{type: canary, percent: 10, step_bake: 1m}")
    try:
        world.serve("a")
        world.serve("b")
        gate = "{type: metrics, min_requests: 5, max_5xx_ratio: 0.05, compare: true, retries: {attempts: 2, wait: 1s}}"
        p = world.pipeline({"one": "a", "two": "b"}, {"two": f"gates:\n  - {gate}\n"})
        assert world.engine(p).run(RunOptions(to_phase="one")).status == "succeeded"
        blue = world.store.last_good(SERVICE, "one")
        production = world.forward("production")
        blue_group = world.blue_tg if production.get("shine-blue") else world.green_tg
        green_group = world.green_tg if blue_group == world.blue_tg else world.blue_tg

        def traffic() -> None:
            publish(world, green_group, requests=20, errors=6)
            publish(world, blue_group, requests=180, errors=1)

        world.clock.on_sleep.append(traffic)
        out = world.engine(p).run(RunOptions(from_phase="two"))
        assert out.status == "rolled_back", out.message
        assert world.live() == blue.revision_arn and world.forward("production") == production
        updated = world.events("service_updated")[-1]
        assert updated.data["pauses"] == ["POST_TEST_TRAFFIC_SHIFT", "PRODUCTION_TRAFFIC_SHIFT"]
        [decision] = [e for e in world.events("decision") if e.run_id == out.run_id]
        assert decision.data["stage"] == "PRODUCTION_TRAFFIC_SHIFT" and decision.data["production_on_green"] == 10.0
        [failed] = [e for e in world.events("gate_failed") if e.run_id == out.run_id]
        assert failed.data["gate"] == "metrics" and "5xx ratio" in failed.message
        assert failed.data["evidence"]["green"]["5xx"] >= 6 and "blue" in failed.data["evidence"]
        assert world.deployments()[0]["status"] == "ROLLBACK_SUCCESSFUL"
        green = [e.data["traffic"]["green"] for e in world.events("traffic_shifted") if e.run_id == out.run_id]
        assert 10.0 in green and green[-1] == 0.0
    finally:
        world.close()


def test_metrics_gate_gives_no_verdict_without_traffic(aws) -> None:
    """No requests in the window: inconclusive (no traffic proves nothing), with the numbers as evidence."""
    from orchestrator.clock import FakeClock
    from orchestrator.config.gates import MetricsGate
    from orchestrator.gates import metrics
    from orchestrator.gates.context import GateContext

    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    tg = boto3.client("elbv2", region_name=REGION).create_target_group(Name="g", Protocol="HTTP", Port=80, VpcId=vpc)
    arn = tg["TargetGroups"][0]["TargetGroupArn"]
    ctx = GateContext("c", "s", "td", 5000, aws=AwsContext(region=REGION), clock=FakeClock())
    v = metrics.evaluate(MetricsGate(target_group_arn=arn), ctx)
    assert v.status == "inconclusive" and v.evidence["green"]["requests"] == 0


def test_a_rolling_phase_after_blue_green_drops_the_hooks(world) -> None:
    """A `strategy: rolling` phase after a blue-green one: the service goes back to ROLLING without PAUSE hooks
    (a rolling update must never wait for a judge), and the phase passes."""
    world.serve("a")
    world.serve("b")
    p = world.pipeline({"one": "a", "two": "b"}, {"two": "strategy: rolling\n"})
    out = world.engine(p).run(RunOptions())
    assert out.status == "succeeded", out.message
    svc = world.ecs.describe_services(cluster=CLUSTER, services=[SERVICE])["services"][0]
    cfg = svc["deploymentConfiguration"]
    assert cfg.get("strategy") == "ROLLING" and not cfg.get("lifecycleHooks")
    assert world.live() == world.store.last_good(SERVICE, "two").revision_arn


def test_a_strategy_on_a_code_deploy_service_exits_2_naming_the_controller(aws, tmp_path, http_server) -> None:
    """blue-green on a CODE_DEPLOY service: nothing is deployed, exit 2, the message names the controller."""
    world = World(tmp_path, http_server, controller="CODE_DEPLOY")
    try:
        world.serve("a")
        before = world.live()
        out = world.engine(world.pipeline({"one": "a"})).run(RunOptions())
        assert out.exit_code == 2 and "CODE_DEPLOY deployment controller" in out.message, out.message
        assert world.live() == before
    finally:
        world.close()


def test_plan_shows_the_strategy_its_pauses_and_traffic_steps(world) -> None:
    """`plan` names the strategy, the stage where snail pauses with the gates judged there, and the steps."""
    world.strategy = "{type: linear, percent: 25, step_bake: 1m}"
    extra = {"one": "gates:\n  - {type: metrics, min_requests: 5}\n"}
    p = world.pipeline({"one": "a"}, extra)
    text = render_plan(world.engine(p).plan(RunOptions()), p)
    assert "strategy: linear, steps of 25%, 1m each" in text
    assert "pause:    POST_TEST_TRAFFIC_SHIFT (green on the test listener only): ecs-rollout, http /health" in text
    assert "pause:    PRODUCTION_TRAFFIC_SHIFT (green on its production share): metrics" in text
    assert "production on green 25% -> 50% -> 75% -> 100%" in text


def test_plan_records_the_traffic_deployer_for_a_strategy_phase(world) -> None:
    """A blue-green phase is planned for the traffic deployer: the plan's text and JSON say so."""
    p = world.pipeline({"one": "a"})
    plan = world.engine(p).plan(RunOptions())
    text = render_plan(plan, p)
    assert "deployer: traffic (ECS shifts traffic to green; snail judges at each PAUSE hook)" in text
    assert [pp.to_dict()["deployer"] for pp in plan.phases] == ["traffic"]


def test_doctor_checks_what_the_strategies_need_with_the_exact_fix(world) -> None:
    """doctor: ECS controller, both groups on service.port, rules forwarding to both groups (a rule that names
    one group fails with the modify-rule command that fixes it), the infrastructure role trusting ECS."""
    from orchestrator.doctor import run_doctor

    p = world.pipeline({"one": "a"})
    report = run_doctor(p, AwsContext(region=REGION))
    assert report.get("strategy.controller").status == "passed"
    assert report.get("strategy.target-groups").status == "passed"
    rules = report.get("strategy.listener-rules")
    assert rules.status == "failed" and "forwards to shine-blue, not to both" in rules.evidence
    assert rules.fix.startswith(f"aws elbv2 modify-rule --rule-arn {world.rules['production']} --actions")
    role = report.get("strategy.infrastructure-role")
    assert role.status == "failed" and "aws iam create-role --role-name ecsInfrastructureRole" in role.fix
    forward = json.loads(rules.fix.split("--actions ", 1)[1].strip("'"))
    for kind in ("production", "test"):  # apply the fix doctor printed, and create the role it names
        world.elbv2.modify_rule(RuleArn=world.rules[kind], Actions=forward)
    iam = boto3.client("iam", region_name=REGION)
    trust = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs.amazonaws.com"},'
    iam.create_role(RoleName="ecsInfrastructureRole", AssumeRolePolicyDocument=trust + '"Action":"sts:AssumeRole"}]}')
    again = run_doctor(p, AwsContext(region=REGION))
    assert again.get("strategy.listener-rules").status == "passed"
    assert again.get("strategy.infrastructure-role").status == "warning"  # no AmazonECSInfrastructureRolePolicy...


def test_doctor_fails_a_target_group_on_another_port(world) -> None:
    """A second target group on port 8080 while the container listens on 5000: green would never be healthy."""
    from orchestrator.doctor import run_doctor

    vpc = boto3.client("ec2", region_name=REGION).describe_vpcs()["Vpcs"][0]["VpcId"]
    wrong = world.elbv2.create_target_group(Name="shine-8080", Protocol="HTTP", Port=8080, VpcId=vpc, TargetType="ip")
    world.green_tg = wrong["TargetGroups"][0]["TargetGroupArn"]
    report = run_doctor(world.pipeline({"one": "a"}), AwsContext(region=REGION))
    groups = report.get("strategy.target-groups")
    assert groups.status == "failed" and "shine-8080 is on port 8080, the container listens on 5000" in groups.evidence
    assert groups.fix == "recreate shine-8080 with --port 5000 (a target group's port cannot be changed)"


def test_strategy_without_the_load_balancer_wiring_is_a_config_error(tmp_path) -> None:
    """`strategy: blue-green` without service.load_balancer's rules and groups: validate names the line."""
    (tmp_path / "phases").mkdir()
    (tmp_path / "pipeline.yaml").write_text(
        "version: 1\nservice: {cluster: c, name: s, container: api, port: 5000}\n"
        "registry: {url: 127.0.0.1:5055/s}\nphases: [one]\n"
    )
    (tmp_path / "phases" / "one.yaml").write_text(
        'name: one\nimage: {ref: "r@sha256:' + "a" * 64 + '"}\nstrategy: blue-green\n'
    )
    with pytest.raises(ConfigErrors) as err:
        load_pipeline(tmp_path / "pipeline.yaml")
    [e] = err.value.errors
    assert e.line == 3 and "production_listener_rule" in e.message and e.key == "strategy"


def test_strategy_settings_are_checked_in_whole_minutes(tmp_path) -> None:
    """ECS counts bake times in minutes: a 90s bake is refused with its line; a good canary loads with its steps."""
    (tmp_path / "phases").mkdir()
    (tmp_path / "pipeline.yaml").write_text(
        "version: 1\nservice: {cluster: c, name: s, container: api, port: 5000}\n"
        "registry: {url: 127.0.0.1:5055/s}\nphases: [one]\n"
    )
    ref = '"r@sha256:' + "a" * 64 + '"'
    (tmp_path / "phases" / "one.yaml").write_text(
        f"name: one\nimage: {{ref: {ref}}}\nstrategy: {{type: linear, step_bake: 90s}}\n"
    )
    with pytest.raises(ConfigErrors) as err:
        load_pipeline(tmp_path / "pipeline.yaml")
    assert any("whole number of minutes" in e.message and e.line == 3 for e in err.value.errors)


# ---------------------------------------------------------------------------------------------- linear
LINEAR_MIN = "{type: linear, percent: 3, step_bake: 0}"  # ECS's smallest stepPercent (3.0) and stepBake (0 min)
ALARM = "shine-5xx"
ALARM_GATE = f"gates:\n  - {{type: alarm, alarms: [{ALARM}]}}\n"  # phase two judged by the alarm


def phase_one_live(world: World, two: str = "") -> tuple[Any, Any, dict[str, int]]:
    """Phases one (image a) and two (image b, with `two` added to its file), phase one delivered, live and good;
    returns (pipeline, phase one's good record, the production rule's forwards)."""
    world.serve("a")
    world.serve("b")
    p = world.pipeline({"one": "a", "two": "b"}, {"two": two} if two else None)
    assert world.engine(p).run(RunOptions(to_phase="one")).status == "succeeded"
    one = world.store.last_good(SERVICE, "one")
    assert one is not None
    return p, one, world.forward("production")


def assert_back_on_phase_one(world: World, out: Any, one: Any, production_before: dict[str, int]) -> None:
    """The run ended rolled back (exit 1): phase one's good revision is live, production forwards as before, and
    real requests on the production listener reach phase one's release only."""
    assert (out.exit_code, out.status) == (1, "rolled_back"), out.message
    assert world.live() == one.revision_arn and world.forward("production") == production_before
    assert production_serves(world, "a")


def alarm(world: World, state: str = "OK") -> None:
    """The CloudWatch alarm the production gates watch (moto never evaluates it: the test sets its state)."""
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    if not cloudwatch.describe_alarms(AlarmNames=[ALARM])["MetricAlarms"]:
        cloudwatch.put_metric_alarm(
            AlarmName=ALARM,
            Namespace="AWS/ApplicationELB",
            MetricName="HTTPCode_Target_5XX_Count",
            Statistic="Sum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=5,
            ComparisonOperator="GreaterThanThreshold",
        )
    cloudwatch.set_alarm_state(AlarmName=ALARM, StateValue=state, StateReason=f"test: {state}")


def hooks_awaiting(world: World, in_flight_only: bool = False) -> list[dict[str, Any]]:
    """Every PAUSE hook still AWAITING_ACTION (of every service deployment, or of those still in flight)."""
    deps = [d for d in world.deployments() if not in_flight_only or d["status"] in ("PENDING", "IN_PROGRESS")]
    return [h for d in deps for h in d.get("lifecycleHookDetails", []) if h["status"] == "AWAITING_ACTION"]


def production_serves(world: World, tag: str, requests: int = 5) -> bool:
    """Real requests through the production listener all reach image(tag)'s server (and no other)."""
    import urllib.request

    before = {t: b.hits for t, b in world.behaviours.items()}
    for _ in range(requests):
        with urllib.request.urlopen(world.urls["production"] + "/health", timeout=5) as r:  # noqa: S310 - 127.0.0.1
            assert r.status == 200
    gained = {t: b.hits - before[t] for t, b in world.behaviours.items()}
    return gained[tag] >= requests and all(n == 0 for t, n in gained.items() if t != tag)


def answers(world: World, run_id: str | None) -> list[tuple[str, str]]:
    """(stage, action) of every ContinueServiceDeployment a run made, in order."""
    return [
        (s.intent["stage"], s.intent["action"])
        for s in world.store.steps(run_id or "")
        if s.kind == "continue_deployment"
    ]


def test_linear_good_release_walks_every_step_and_ends_on_green(aws, tmp_path, http_server) -> None:
    """linear 3% / 0 min (the smallest steps ECS takes): green is judged on the test listener, then at each of the
    33 partial shifts (target-health on green's own group); every hook is answered CONTINUE after its gates passed,
    ECS completes, the revision is marked good and production is 100 % on green."""
    world = World(tmp_path, http_server, strategy=LINEAR_MIN)
    try:
        world.serve("a")
        p = world.pipeline({"one": "a"}, {"one": "gates:\n  - {type: target-health}\n"})
        out = world.engine(p).run(RunOptions())
        assert (out.exit_code, out.status) == (0, "succeeded"), out.message
        good = world.store.last_good(SERVICE, "one")
        assert good is not None and world.live() == good.revision_arn
        assert world.forward("production") == {"shine-blue": 0, "shine-green": 1}
        assert world.deployments()[0]["status"] == "SUCCESSFUL" and not hooks_awaiting(world)
        steps = [3.0 * n for n in range(1, 34)]  # 3 % .. 99 %, then 100 % without a pause
        expected = [("POST_TEST_TRAFFIC_SHIFT", "CONTINUE")] + [("PRODUCTION_TRAFFIC_SHIFT", "CONTINUE")] * len(steps)
        assert answers(world, out.run_id) == expected
        judged = [e for e in world.events("gate_passed") if e.data.get("stage") == "PRODUCTION_TRAFFIC_SHIFT"]
        assert len(judged) == len(steps) and {e.data["gate"] for e in judged} == {"target-health"}
        assert all("healthy in shine-green" in e.message for e in judged)
        aimed = [e for e in world.events("gate_passed") if e.data["gate"] == "target-health"]
        assert {e.data["evidence"]["target_group"] for e in aimed} == {world.green_tg}  # green's group at every hook
        green = [e.data["traffic"]["green"] for e in world.events("traffic_shifted") if e.run_id == out.run_id]
        assert [g for g in green if 0 < g < 100] == [round(s, 1) for s in steps] and green[-1] == 100.0
        updated = world.events("service_updated")[-1]
        assert updated.data["strategy"]["percent"] == 3.0 and updated.data["strategy"]["step_bake"] == 0.0
    finally:
        world.close()


def test_linear_broken_release_rolls_back_at_the_step_where_its_gates_fail(aws, tmp_path, http_server) -> None:
    """linear 3 %: green passes on the test listener and at 3 % and 6 %, then its 5xx alarm fires at 9 %: ROLLBACK
    at that hook, production back on blue without a task started, exit 1, the spec quarantined, and the trail says
    it stopped at PRODUCTION_TRAFFIC_SHIFT with 9 % of production on green."""
    world = World(tmp_path, http_server, strategy=LINEAR_MIN)
    try:
        alarm(world, "OK")
        p, one, production_before = phase_one_live(world, ALARM_GATE)
        green_name = "shine-blue" if production_before.get("shine-green") else "shine-green"
        started: dict[str, int] = {}

        def fire_at_nine_percent() -> None:
            weights = world.forward("production")
            if 100.0 * weights.get(green_name, 0) / sum(weights.values()) >= 9.0:
                alarm(world, "ALARM")
            if world.events("decision") and "n" not in started:
                started["n"] = len(world.launcher.started)

        world.clock.on_sleep.append(fire_at_nine_percent)
        out = world.engine(p).run(RunOptions(from_phase="two"))
        assert_back_on_phase_one(world, out, one, production_before)
        assert answers(world, out.run_id) == [
            ("POST_TEST_TRAFFIC_SHIFT", "CONTINUE"),
            ("PRODUCTION_TRAFFIC_SHIFT", "CONTINUE"),
            ("PRODUCTION_TRAFFIC_SHIFT", "CONTINUE"),
            ("PRODUCTION_TRAFFIC_SHIFT", "ROLLBACK"),
        ]
        [decision] = [e for e in world.events("decision") if e.run_id == out.run_id]
        assert decision.data["stage"] == "PRODUCTION_TRAFFIC_SHIFT" and decision.data["production_on_green"] == 9.0
        dep = world.deployments()[0]
        assert dep["status"] == "ROLLBACK_SUCCESSFUL" and not hooks_awaiting(world)
        assert started.get("n") == len(world.launcher.started)  # not one task started after the decision
        assert not [s for s in world.store.steps(out.run_id or "") if s.kind == "rollback"]  # no second deployment
        green = [e.data["traffic"]["green"] for e in world.events("traffic_shifted") if e.run_id == out.run_id]
        assert max(green) == 9.0 and green[-1] == 0.0
        assert world.store.last_good(SERVICE, "two") is None
        md = render("md", SERVICE, world.store.events(SERVICE), world.store.runs(SERVICE), p.phase_names())
        assert "ROLLBACK at PRODUCTION_TRAFFIC_SHIFT" in md and "production had 9% on it" in md
        assert "in ALARM: shine-5xx" in md
        deployments = len(world.deployments())
        again = world.engine(p).run(RunOptions(from_phase="two"))  # the same spec again: quarantined, not deployed
        assert (again.exit_code, again.status) == (1, "quarantined"), again.message
        assert world.live() == one.revision_arn and len(world.deployments()) == deployments
    finally:
        world.close()


# ------------------------------------------------------------------------- a rollback after a CONTINUE
def test_blue_green_rolls_back_at_the_post_shift_hook_after_continuing_on_test_traffic(world) -> None:
    """blue-green: green passes on the test listener (CONTINUE), production shifts to it, and its alarm fires at
    POST_PRODUCTION_TRAFFIC_SHIFT: ROLLBACK there returns production to blue (still running: no task started),
    exit 1, nothing left awaiting action."""
    alarm(world, "OK")
    p, one, production_before = phase_one_live(world, ALARM_GATE)
    started: dict[str, int] = {}

    def fire_once_production_is_on_green() -> None:
        if world.forward("production") != production_before and not world.events("decision"):
            alarm(world, "ALARM")
        if world.events("decision") and "n" not in started:
            started["n"] = len(world.launcher.started)

    world.clock.on_sleep.append(fire_once_production_is_on_green)
    out = world.engine(p).run(RunOptions(from_phase="two"))
    assert_back_on_phase_one(world, out, one, production_before)
    assert answers(world, out.run_id) == [
        ("POST_TEST_TRAFFIC_SHIFT", "CONTINUE"),
        ("POST_PRODUCTION_TRAFFIC_SHIFT", "ROLLBACK"),
    ]
    [decision] = [e for e in world.events("decision") if e.run_id == out.run_id]
    assert decision.data["stage"] == "POST_PRODUCTION_TRAFFIC_SHIFT" and decision.data["production_on_green"] == 100.0
    assert world.deployments()[0]["status"] == "ROLLBACK_SUCCESSFUL" and not hooks_awaiting(world)
    assert started.get("n") == len(world.launcher.started)
    kinds = [e.kind for e in world.store.events(SERVICE, out.run_id)]
    assert kinds.index("decision") < kinds.index("rollback_started") < kinds.index("rollback_verified")
    assert world.store.last_good(SERVICE, "two") is None


def test_a_failure_after_ecs_completed_rolls_back_through_the_hooks_left_on_the_service(world) -> None:
    """blue-green with ECS's bake: green passes on the test listener (CONTINUE), ECS shifts, bakes and completes,
    then the phase's own bake finds the alarm firing. The service still carries snail's PAUSE hooks: the rollback
    deployment must not wait at one (nobody would answer it). It ends on phase one's revision, verified, exit 1, with
    production on it and nothing awaiting action."""
    world.strategy = "{type: blue-green, bake: 1m}"
    world.serve("a")
    world.serve("b")
    alarm(world, "OK")
    gates = f"gates:\n  - {{type: alarm, alarms: [{ALARM}]}}\nbake: 2m\n"
    p = world.pipeline({"one": "a", "two": "b"}, {"two": gates})
    assert world.engine(p).run(RunOptions(to_phase="one")).status == "succeeded"
    one = world.store.last_good(SERVICE, "one")
    assert one is not None
    production_before = world.forward("production")

    def fire_once_ecs_completed() -> None:
        deps = world.deployments()
        if deps and deps[0]["status"] == "SUCCESSFUL" and not world.events("decision"):
            alarm(world, "ALARM")

    world.clock.on_sleep.append(fire_once_ecs_completed)
    out = world.engine(p).run(RunOptions(from_phase="two"))
    assert (out.exit_code, out.status) == (1, "rolled_back"), out.message
    assert world.live() == one.revision_arn
    assert world.forward("production") == production_before  # phase one's tasks back on the group they served from
    assert production_serves(world, "a")
    assert not hooks_awaiting(world)
    assert answers(world, out.run_id) == [  # phase two's hooks; the rollback deployment never paused
        ("POST_TEST_TRAFFIC_SHIFT", "CONTINUE"),
        ("POST_PRODUCTION_TRAFFIC_SHIFT", "CONTINUE"),
    ]
    rollback, two = world.deployments()[:2]  # ECS completed phase two's deployment; the rollback is a new one
    assert (rollback["status"], two["status"]) == ("SUCCESSFUL", "SUCCESSFUL")
    assert not rollback.get("lifecycleHookDetails")
    svc = world.ecs.describe_services(cluster=CLUSTER, services=[SERVICE])["services"][0]
    assert not svc["deploymentConfiguration"].get("lifecycleHooks")
    kinds = [e.kind for e in world.store.events(SERVICE, out.run_id)]
    assert kinds.index("decision") < kinds.index("rollback_started") < kinds.index("rollback_verified")
    [failed] = [e for e in world.events("gate_failed") if e.run_id == out.run_id]
    assert failed.data["gate"] == "bake" or ALARM in failed.message


def test_an_aws_fault_during_ecs_bake_after_continue_stops_the_deployment_back_to_blue(world) -> None:
    """blue-green with ECS's bake: green passed on the test listener (CONTINUE) and has all of production; while ECS
    bakes, DescribeServiceDeployments fails. snail stops the deployment (StopServiceDeployment ROLLBACK): production is
    back on blue, still running (no task started), the run ends rolled back (exit 1) and not quarantined (the release
    did not fail a gate), with nothing left awaiting action."""
    world.strategy = "{type: blue-green, bake: 5m}"
    p, one, production_before = phase_one_live(world)
    aws = AwsContext(region=REGION)
    faults = {"n": 0}
    started: dict[str, int] = {}

    def fail_once_in_bake(params: Any, **_: Any) -> None:
        deps = world.deployments()
        if deps and deps[0].get("lifecycleStage") == "BAKE_TIME" and faults["n"] == 0:
            faults["n"] += 1
            started["n"] = len(world.launcher.started)
            raise ClientError(
                {"Error": {"Code": "ServerException", "Message": "internal failure"}}, "DescribeServiceDeployments"
            )

    aws.client("ecs").meta.events.register("before-call.ecs.DescribeServiceDeployments", fail_once_in_bake)
    out = world.engine(p, aws).run(RunOptions(from_phase="two"))
    assert faults["n"] == 1
    assert_back_on_phase_one(world, out, one, production_before)
    assert answers(world, out.run_id) == [("POST_TEST_TRAFFIC_SHIFT", "CONTINUE")]
    stops = [s for s in world.store.steps(out.run_id or "") if s.kind == "stop_deployment"]
    assert len(stops) == 1 and not [s for s in world.store.steps(out.run_id or "") if s.kind == "rollback"]
    dep = world.deployments()[0]
    assert dep["status"] == "ROLLBACK_SUCCESSFUL" and "StopServiceDeployment" in dep["rollback"]["reason"]
    assert not hooks_awaiting(world) and started["n"] == len(world.launcher.started)
    green = [e.data["traffic"]["green"] for e in world.events("traffic_shifted") if e.run_id == out.run_id]
    assert 100.0 in green and green[-1] == 0.0
    assert world.store.last_good(SERVICE, "two") is None
    assert world.engine(p).run(RunOptions(from_phase="two")).status != "quarantined"  # deployed again, not blocked


def test_a_rollback_by_update_while_our_hook_still_awaits_action_is_not_wedged(world) -> None:
    """blue-green: CONTINUE at the test hook; at the post-shift hook ContinueServiceDeployment fails (a server error)
    and so does StopServiceDeployment, so the engine rolls back by UpdateService while ECS still waits at our hook.
    The rollback must not wait for that hook (or a new one): the service ends on phase one's revision with all of
    production on it, verified, exit 1, and no hook is left AWAITING_ACTION."""
    alarm(world, "OK")
    p, one, _ = phase_one_live(world, ALARM_GATE)
    aws = AwsContext(region=REGION)

    def server_error(operation: str) -> Any:
        def fail(params: Any, **_: Any) -> None:
            if operation == "StopServiceDeployment" or "post_production" in params.get("hookId", ""):
                raise ClientError({"Error": {"Code": "ServerException", "Message": "internal failure"}}, operation)

        return fail

    for op in ("ContinueServiceDeployment", "StopServiceDeployment"):
        aws.client("ecs").meta.events.register(f"before-parameter-build.ecs.{op}", server_error(op))
    out = world.engine(p, aws).run(RunOptions(from_phase="two"))
    assert (out.exit_code, out.status) == (1, "rolled_back"), out.message
    assert world.live() == one.revision_arn
    assert production_serves(world, "a")  # production answers from phase one's release only
    tasks = world.ecs.list_tasks(cluster=CLUSTER, serviceName=SERVICE, desiredStatus="RUNNING")["taskArns"]
    running = world.ecs.describe_tasks(cluster=CLUSTER, tasks=tasks)["tasks"] if tasks else []
    assert running and {t["taskDefinitionArn"] for t in running} == {one.revision_arn}  # only one's tasks run
    assert not hooks_awaiting(world, in_flight_only=True)
    rollback, two = world.deployments()[:2]  # phase two's deployment was superseded by the rollback's, not resumed
    assert (rollback["status"], two["status"]) == ("SUCCESSFUL", "STOPPED") and not rollback.get("lifecycleHookDetails")
    steps = [s.kind for s in world.store.steps(out.run_id or "")]
    assert "stop_deployment" in steps and "rollback" in steps
    [warning] = [e for e in world.events("warning") if e.run_id == out.run_id]
    assert "could not be stopped" in warning.message and "ServerException" in warning.message
    kinds = [e.kind for e in world.store.events(SERVICE, out.run_id)]
    assert "rollback_verified" in kinds


def test_linear_steps_below_what_ecs_takes_are_refused_with_their_line(tmp_path) -> None:
    """ECS takes a linear stepPercent of 3.0 to 100.0 in multiples of 0.1 (canary percent from 0.1): a 1 % or 3.05 %
    step is refused at load time with its line (not by UpdateService in the middle of a run); 3 % loads."""
    (tmp_path / "phases").mkdir()
    (tmp_path / "pipeline.yaml").write_text(
        "version: 1\nservice: {cluster: c, name: s, container: api, port: 5000}\n"
        "registry: {url: 127.0.0.1:5055/s}\nphases: [one]\n"
    )
    ref = '"r@sha256:' + "a" * 64 + '"'
    for percent, problem in (("1", "3% to 100%"), ("3.05", "multiple of 0.1")):
        (tmp_path / "phases" / "one.yaml").write_text(
            f"name: one\nimage: {{ref: {ref}}}\nstrategy:\n  type: linear\n  percent: {percent}\n"
        )
        with pytest.raises(ConfigErrors) as err:
            load_pipeline(tmp_path / "pipeline.yaml")
        [e] = [e for e in err.value.errors if "percent" in (e.key or "")]
        assert e.line == 5 and problem in e.message, e
    (tmp_path / "phases" / "one.yaml").write_text(
        f"name: one\nimage: {{ref: {ref}}}\nstrategy: {{type: canary, percent: 0.5}}\n"
    )
    with pytest.raises(ConfigErrors) as err:  # a canary of 0.5 % is fine; only the missing wiring is refused
        load_pipeline(tmp_path / "pipeline.yaml")
    assert not [e for e in err.value.errors if "percent" in (e.key or "") or "percent" in e.message]


def test_interrupted_at_a_linear_step_after_continues_stops_the_deployment_back_to_blue(
    aws, tmp_path, http_server
) -> None:
    """Ctrl-C while judging the third linear step (green passed on the test listener, at 3 % and at 6 %; on_interrupt:
    rollback): the deployment is stopped with ROLLBACK, production returns to blue without a task started, blue is
    verified, exit 130, the revision is not quarantined, and no hook is left awaiting action."""
    world = World(tmp_path, http_server, strategy=LINEAR_MIN)
    try:
        alarm(world, "OK")
        p, one, production_before = phase_one_live(world, ALARM_GATE)
        seen = {"hooks": 0, "launched": -1}

        def ctrl_c_at_the_third_step() -> None:
            run = world.store.runs(SERVICE, 1)[0]
            answered = [s for s in world.store.steps(run.run_id) if s.kind == "continue_deployment"]
            if len(answered) == 3 and hooks_awaiting(world, in_flight_only=True) and seen["launched"] < 0:
                seen["launched"] = len(world.launcher.started)
                raise KeyboardInterrupt

        world.clock.on_sleep.append(ctrl_c_at_the_third_step)
        out = world.engine(p).run(RunOptions(from_phase="two"))
        assert (out.exit_code, out.status) == (130, "interrupted"), out.message
        assert world.live() == one.revision_arn and world.forward("production") == production_before
        assert production_serves(world, "a")  # real requests on the production listener reach phase one only
        assert (
            answers(world, out.run_id)
            == [("POST_TEST_TRAFFIC_SHIFT", "CONTINUE")] + [("PRODUCTION_TRAFFIC_SHIFT", "CONTINUE")] * 2
        )
        steps = [s.kind for s in world.store.steps(out.run_id or "")]
        assert steps.count("stop_deployment") == 1 and "rollback" not in steps
        dep = world.deployments()[0]
        assert dep["status"] == "ROLLBACK_SUCCESSFUL" and not hooks_awaiting(world)
        assert seen["launched"] == len(world.launcher.started)  # not one task started by the rollback
        kinds = [e.kind for e in world.store.events(SERVICE, out.run_id)]
        assert "rollback_verified" in kinds
        green = [e.data["traffic"]["green"] for e in world.events("traffic_shifted") if e.run_id == out.run_id]
        assert max(green) == 9.0 and green[-1] == 0.0
        assert world.engine(p).run(RunOptions(from_phase="two")).status != "quarantined"
    finally:
        world.close()


def test_a_lock_taken_by_another_run_mid_deployment_leaves_the_deployment_to_that_run(world) -> None:
    """Our lease is taken by another run while ECS moves our deployment towards its PAUSE hook: we stop (exit 4)
    without touching the deployment (StopServiceDeployment would undo the work of the run that holds the lock now; the hook's own ROLLBACK
    timeout still guards production). The run holding the lock finds the paused deployment and judges it."""
    from orchestrator.errors import LockLost

    world.serve("a")
    p = world.pipeline({"one": "a"})
    engine = world.engine(p)
    taken = {"n": 0}
    own_checkpoint = engine._checkpoint

    def lease_taken_at_the_hook() -> None:
        deps = world.deployments()
        if deps and deps[0]["status"] == "IN_PROGRESS" and len(deps) > 1 and taken["n"] == 0:
            taken["n"] += 1
            raise LockLost("the lock was taken over", taken_by={"run_id": "B", "host": "ci-2"})
        own_checkpoint()

    engine._checkpoint = lease_taken_at_the_hook  # type: ignore[method-assign]
    out = engine.run(RunOptions())
    assert (out.exit_code, out.status) == (4, "lock_lost"), out.message
    assert taken["n"] == 1
    dep = world.deployments()[0]
    assert dep["status"] == "IN_PROGRESS"  # left in flight: no StopServiceDeployment
    assert not [s for s in world.store.steps(out.run_id or "") if s.kind in ("stop_deployment", "rollback")]
    other = world.engine(p).run(RunOptions())  # the run that holds the lock now
    assert (other.exit_code, other.status) == (0, "succeeded"), other.message
    assert world.deployments()[0]["serviceDeploymentArn"] == dep["serviceDeploymentArn"]  # the same one, judged
    assert world.deployments()[0]["status"] == "SUCCESSFUL" and not hooks_awaiting(world)


def test_gates_slower_than_the_hook_timeout_end_rolled_back_by_ecs_and_say_so(world) -> None:
    """Green needs 12 minutes to pass its http gate on the test listener, longer than the hook's 10-minute timeout:
    ECS rolls back on the timeout (production never left blue), the late CONTINUE is refused, and the run ends
    rolled back (exit 1) on blue, verified, not quarantined, and saying the hook timed out while snail was judging."""
    world.serve("a")
    slow = world.serve("b", Behaviour(200, {"status": "starting"}))  # ELB's health check passes; the gate waits
    p = world.pipeline(
        {"one": "a", "two": "b"},
        {
            "two": "inherit_gates: false\ngates:\n  - {type: http, path: /health, expect: {json: {status: ok}}, retries: {attempts: 40, wait: 30s}}\n"
        },
    )
    assert world.engine(p).run(RunOptions(to_phase="one")).status == "succeeded"
    one = world.store.last_good(SERVICE, "one")
    assert one is not None
    production_before = world.forward("production")
    start = world.clock.monotonic()

    def ready_after_twelve_minutes() -> None:
        if world.clock.monotonic() - start >= 12 * 60:
            slow.body = {"status": "ok"}

    world.clock.on_sleep.append(ready_after_twelve_minutes)
    out = world.engine(p).run(RunOptions(from_phase="two"))
    assert_back_on_phase_one(world, out, one, production_before)
    dep = world.deployments()[0]
    assert dep["status"] == "ROLLBACK_SUCCESSFUL" and "timed out" in dep["rollback"]["reason"]
    assert (
        "only after its PAUSE hook's 10m timeout" in out.message and "raise the strategy's hook_timeout" in out.message
    )
    [warning] = [e for e in world.events("warning") if e.run_id == out.run_id]
    assert warning.data["stage"] == "POST_TEST_TRAFFIC_SHIFT"
    assert not [s for s in world.store.steps(out.run_id or "") if s.kind in ("stop_deployment", "rollback")]
    assert world.engine(p).run(RunOptions(from_phase="two")).status != "quarantined"


# ------------------------------------------------------------------ judging during ECS's bake (blue still up)


def in_ecs_bake(world: World) -> bool:
    """The newest service deployment is IN_PROGRESS at BAKE_TIME: production is all on green, blue still up."""
    deps = world.deployments()
    return bool(deps) and deps[0]["status"] == "IN_PROGRESS" and deps[0].get("lifecycleStage") == "BAKE_TIME"


def sent_configurations(aws: AwsContext) -> list[dict[str, Any]]:
    """Every deploymentConfiguration an UpdateService through `aws` sends (filled in as the run goes)."""
    sent: list[dict[str, Any]] = []

    def keep(params: Any, **_: Any) -> None:
        sent.append(dict(params.get("deploymentConfiguration") or {}))

    aws.client("ecs").meta.events.register("before-parameter-build.ecs.UpdateService", keep)
    return sent


def two_phases_on_blue_green_with_a_bake(world: World, extra: str) -> tuple[Any, Any, dict[str, int]]:
    """Phase one live and good through blue-green with a 1-minute ECS bake; returns (pipeline, one, production)."""
    world.strategy = "{type: blue-green, bake: 1m}"
    return phase_one_live(world, extra)


def assert_back_on_blue_caught_in_bake(world: World, out: Any, one: Any, production: dict[str, int]) -> None:
    """Traffic back on phase one by StopServiceDeployment during ECS's bake: exit 1, no second deployment, the
    trail says where, and the failed release is quarantined."""
    assert_back_on_phase_one(world, out, one, production)
    assert answers(world, out.run_id) == [
        ("POST_TEST_TRAFFIC_SHIFT", "CONTINUE"),
        ("POST_PRODUCTION_TRAFFIC_SHIFT", "CONTINUE"),
    ]
    steps = [s.kind for s in world.store.steps(out.run_id or "")]
    assert steps.count("stop_deployment") == 1 and "rollback" not in steps  # a traffic switch, not a new deployment
    dep = world.deployments()[0]
    assert dep["status"] == "ROLLBACK_SUCCESSFUL" and "StopServiceDeployment" in dep["rollback"]["reason"]
    assert not hooks_awaiting(world)
    [decision] = [e for e in world.events("decision") if e.run_id == out.run_id]
    assert decision.data["during"] == "ecs_bake" and decision.data["stage"] == "BAKE_TIME"
    assert "caught during ECS's bake" in decision.message and "without a new task" in decision.message
    assert decision.data["production_on_green"] == 100.0
    [returned] = [e for e in world.events("rollback_started") if e.run_id == out.run_id]
    assert returned.data["traffic_returned"] and "without starting a task" in returned.message
    kinds = [e.kind for e in world.store.events(SERVICE, out.run_id)]
    assert kinds.index("gate_failed") < kinds.index("decision") < kinds.index("rollback_started")
    assert kinds.index("rollback_started") < kinds.index("rollback_verified")
    assert "during ECS's bake" in out.message
    assert world.store.last_good(SERVICE, "two") is None
    again = world.engine(load_pipeline(world.tmp / "pipeline.yaml")).run(RunOptions(from_phase="two"))
    assert (again.exit_code, again.status) == (1, "quarantined"), again.message  # the release's own failure


def test_an_alarm_during_ecs_bake_returns_traffic_to_blue_without_a_task(world) -> None:
    """blue-green, bake 1m: green passes on the test listener and after the shift (CONTINUE twice), then its alarm
    goes into ALARM while ECS bakes with blue still up. snail's look at the alarm during the bake fails, it stops the
    deployment with ROLLBACK: production is back on blue, no task started, exit 1, the release quarantined, and the
    trail says the failure was caught during ECS's bake."""
    alarm(world, "OK")
    p, one, production = two_phases_on_blue_green_with_a_bake(world, ALARM_GATE)
    seen: dict[str, int] = {}

    def fire_in_ecs_bake() -> None:
        if "launched" not in seen and in_ecs_bake(world):
            seen["launched"] = len(world.launcher.started)
            alarm(world, "ALARM")

    world.clock.on_sleep.append(fire_in_ecs_bake)
    out = world.engine(p).run(RunOptions(from_phase="two"))
    assert "launched" in seen
    assert seen["launched"] == len(world.launcher.started)  # not one task started from the alarm on
    [failed] = [e for e in world.events("gate_failed") if e.run_id == out.run_id]
    assert failed.data["during"] == "ecs_bake" and ALARM in failed.message and failed.data["stage"] == "BAKE_TIME"
    assert_back_on_blue_caught_in_bake(world, out, one, production)


def test_a_5xx_ratio_crossing_its_threshold_during_ecs_bake_returns_traffic_to_blue(world) -> None:
    """blue-green, bake 1m, a metrics gate (5xx ratio at most 5 %): green serves cleanly on its production share,
    then starts failing 1 request in 2 during ECS's bake. Its ratio over the gate's window crosses 5 % a few polls in:
    StopServiceDeployment ROLLBACK, traffic back on blue without a task, exit 1, quarantined."""
    gate = "gates:\n  - {type: metrics, min_requests: 5, max_5xx_ratio: 0.05}\n"
    p, one, production = two_phases_on_blue_green_with_a_bake(world, gate)
    green_group = world.blue_tg if production.get("shine-green") else world.green_tg
    seen: dict[str, int] = {}

    def traffic() -> None:
        if in_ecs_bake(world):
            seen.setdefault("launched", len(world.launcher.started))
            seen["bad"] = seen.get("bad", 0) + 1
            publish(world, green_group, requests=20, errors=10)
        elif "bad" not in seen:
            publish(world, green_group, requests=100, errors=0)

    world.clock.on_sleep.append(traffic)
    out = world.engine(p).run(RunOptions(from_phase="two"))
    assert seen["launched"] == len(world.launcher.started)
    assert seen["bad"] >= 2  # the first look(s) in the bake still passed: the ratio crossed 5 % as the window filled
    [failed] = [e for e in world.events("gate_failed") if e.run_id == out.run_id]
    assert failed.data["during"] == "ecs_bake" and failed.data["gate"] == "metrics" and "5xx ratio" in failed.message
    assert failed.data["evidence"]["green"]["5xx_ratio"] > 0.05
    assert failed.data["evidence"]["green"]["target_group"] == green_group.rsplit(":", 1)[-1]  # aimed at green
    assert_back_on_blue_caught_in_bake(world, out, one, production)


def test_a_good_release_with_quiet_alarms_through_ecs_bake_is_marked_good(world) -> None:
    """blue-green, bake 1m, an alarm gate: the deploymentConfiguration sent carries the alarm for ECS to watch
    (enable + rollback), snail looks at the alarm at each poll of ECS's bake, it stays OK, ECS completes and the
    release is marked good, the trail saying the alarm was judged during the bake."""
    alarm(world, "OK")
    p, _one, _production = two_phases_on_blue_green_with_a_bake(world, ALARM_GATE)
    aws = AwsContext(region=REGION)
    sent = sent_configurations(aws)
    calls: list[str] = []
    aws.record_calls(calls)
    out = world.engine(p, aws).run(RunOptions(from_phase="two"))
    assert (out.exit_code, out.status) == (0, "succeeded"), out.message
    assert world.store.last_good(SERVICE, "two").revision_arn == world.live()
    assert sent and sent[0]["alarms"] == {"alarmNames": [ALARM], "enable": True, "rollback": True}
    dep = world.deployments()[0]
    assert dep["status"] == "SUCCESSFUL" and dep["alarms"]["status"] in ("MONITORING", "MONITORING_COMPLETE")
    shown, lines = strategies.status(AwsContext(region=REGION), EcsClient(aws).service(CLUSTER, SERVICE))
    assert shown is not None and shown["alarms"]["names"] == [ALARM] and shown["alarms"]["in_alarm"] == []
    assert f"deployment alarms {ALARM}: {dep['alarms']['status']} (in ALARM: none)" in lines[-1]
    [judged] = [e for e in world.events("gate_passed") if e.run_id == out.run_id and e.data.get("during")]
    assert judged.data["during"] == "ecs_bake" and "during ECS's bake" in judged.message
    looks = int(judged.message.split("judged ", 1)[1].split(" ")[0])
    assert looks >= 20  # a 1-minute bake polled every 2 s: about 30 looks
    assert calls.count("cloudwatch:DescribeAlarms") >= looks


def test_ecs_rolling_back_on_its_own_alarm_during_the_bake_is_reported_with_the_alarm(world) -> None:
    """ECS sees the deployment alarm first (its own watch: snail has not looked yet): it rolls back during its bake.
    The run ends rolled back on blue (no task started, exit 1, quarantined) and the reason names the alarm and says
    ECS caught it during its bake."""
    alarm(world, "OK")
    p, one, production = two_phases_on_blue_green_with_a_bake(world, ALARM_GATE)
    seen: dict[str, int] = {}

    def ecs_sees_it_first() -> None:
        if "launched" not in seen and in_ecs_bake(world):
            seen["launched"] = len(world.launcher.started)
            alarm(world, "ALARM")
            world.agent.reconcile_once()  # ECS's round comes before snail's next look

    world.clock.on_sleep.append(ecs_sees_it_first)
    out = world.engine(p).run(RunOptions(from_phase="two"))
    assert (out.exit_code, out.status) == (1, "rolled_back"), out.message
    assert world.live() == one.revision_arn and world.forward("production") == production
    assert seen["launched"] == len(world.launcher.started)
    dep = world.deployments()[0]
    assert dep["status"] == "ROLLBACK_SUCCESSFUL" and dep["alarms"]["triggeredAlarmNames"] == [ALARM]
    assert not [s for s in world.store.steps(out.run_id or "") if s.kind in ("stop_deployment", "rollback")]
    assert ALARM in out.message and "during its bake" in out.message, out.message
    assert world.store.last_good(SERVICE, "two") is None


def test_a_rollback_and_a_rolling_phase_drop_the_deployment_alarms(world) -> None:
    """The deployment alarms a blue-green phase set are off after a rolling phase (a rolling update is judged by
    snail's gates only) and on the configuration a rollback restores with (the failed release's alarm, still in
    ALARM, would otherwise roll the rollback itself back onto the failed release)."""
    alarm(world, "OK")
    world.serve("a")
    world.serve("b")
    p = world.pipeline({"one": "a", "two": "b"}, {"one": ALARM_GATE, "two": "strategy: rolling\n"})
    assert world.engine(p).run(RunOptions(to_phase="one")).status == "succeeded"
    svc = EcsClient(AwsContext(region=REGION)).service(CLUSTER, SERVICE)
    assert svc is not None and svc.deployment_configuration["alarms"]["alarmNames"] == [ALARM]
    assert strategies.restore_configuration(svc, strategies.owned_alarms(p)) == {
        "lifecycleHooks": [],
        "bakeTimeInMinutes": 0,
        "alarms": {"alarmNames": [], "enable": False, "rollback": False},
    }
    out = world.engine(p).run(RunOptions(from_phase="two"))
    assert out.status == "succeeded", out.message
    cfg = world.ecs.describe_services(cluster=CLUSTER, services=[SERVICE])["services"][0]["deploymentConfiguration"]
    assert cfg["strategy"] == "ROLLING" and cfg["alarms"]["enable"] is False and not cfg["alarms"]["alarmNames"]


def test_plan_and_validate_warn_when_the_gates_at_a_pause_can_outlast_the_hook_timeout(world, capsys) -> None:
    """hook_timeout 1m, and at POST_TEST_TRAFFIC_SHIFT an http gate (3 tries of up to 5 s, 1 s apart: 17 s) and a
    command gate that may run 2m: 137 s in the worst case, so ECS could apply the timeout's ROLLBACK while snail still
    judges. `plan` (text and JSON) and `validate` warn, naming the stage, each gate's worst case and the fix; the
    production pause (an alarm: a few API calls) gets no warning. `plan` also says ECS watches the alarm itself."""
    from orchestrator.cli.main import main

    world.strategy = "{type: blue-green, hook_timeout: 1m, bake: 1m}"
    gates = f"gates:\n  - {{type: command, run: 'true', timeout: 2m}}\n  - {{type: alarm, alarms: [{ALARM}]}}\n"
    p = world.pipeline({"one": "a"}, {"one": gates})
    plan = world.engine(p).plan(RunOptions())
    text = render_plan(plan, p)
    expected = (
        "the gates at POST_TEST_TRAFFIC_SHIFT can take up to 137s (http /health 17s, command true 120s), longer "
        "than the strategy's hook_timeout (1m): ECS would apply the timeout's ROLLBACK while snail is still judging; "
        "raise hook_timeout to at least 3m"
    )
    [warning] = [line for line in text.splitlines() if "WARNING:" in line]
    assert expected in warning
    assert f"alarms:   ECS itself watches {ALARM} at every stage" in text
    assert "ECS bake: 1m, blue still up: alarm judged each poll" in text
    [pp] = plan.phases
    [shown] = pp.to_dict()["strategy"]["warnings"]
    assert expected in shown
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["-f", str(world.tmp / "pipeline.yaml"), "validate"])
    out = capsys.readouterr().out
    assert exc.value.code == 0 and f"warning: phase one: {expected}" in out, out
    roomy = world.pipeline({"one": "a"}, {"one": gates.replace("2m", "30s")})  # 47 s: fits in the minute
    assert "WARNING:" not in render_plan(world.engine(roomy).plan(RunOptions()), roomy)


@pytest.mark.parametrize("alarm_first", [True, False], ids=["then-continue", "then-rollback"])
def test_ecs_rolling_back_on_its_alarm_while_snail_judges_at_a_hook_is_reported_not_an_error(
    world, alarm_first: bool
) -> None:
    """At POST_PRODUCTION_TRAFFIC_SHIFT the metrics gate waits for traffic (retrying) when the alarm fires and ECS,
    watching it, rolls back before snail answers the hook: the late CONTINUE (the alarm was judged OK before) or
    ROLLBACK (the alarm judged after) is refused. That refusal is not the story: the run ends rolled back on blue,
    no task started, exit 1, quarantined, with the alarm named."""
    alarm(world, "OK")
    metrics = "{type: metrics, min_requests: 5, retries: {attempts: 4, wait: 2s}}"
    listed = [f"{{type: alarm, alarms: [{ALARM}]}}", metrics]
    gates = "gates:\n" + "".join(f"  - {g}\n" for g in (listed if alarm_first else listed[::-1]))
    world.serve("a")
    world.serve("b")
    p = world.pipeline({"one": "a", "two": "b"}, {"two": gates})
    assert world.engine(p).run(RunOptions(to_phase="one")).status == "succeeded"
    one = world.store.last_good(SERVICE, "one")
    assert one is not None
    production = world.forward("production")
    green_group = world.blue_tg if production.get("shine-green") else world.green_tg
    seen: dict[str, int] = {}

    def ecs_sees_the_alarm_while_snail_judges() -> None:
        if "launched" in seen:
            publish(world, green_group, requests=50, errors=0)  # traffic arrives: the metrics gate passes
        elif any(h["hookId"].endswith("post_production_traffic_shift-0") for h in hooks_awaiting(world)):
            seen["paused"] = seen.get("paused", 0) + 1
            if seen["paused"] < 2:  # the first sleep at the hook is snail's wait; the second, the metrics retry
                return
            seen["launched"] = len(world.launcher.started)
            alarm(world, "ALARM")
            world.agent.reconcile_once()  # ECS's deployment alarm: it rolls back on its own

    world.clock.on_sleep.append(ecs_sees_the_alarm_while_snail_judges)
    out = world.engine(p).run(RunOptions(from_phase="two"))
    assert (out.exit_code, out.status) == (1, "rolled_back"), out.message
    assert world.live() == one.revision_arn and world.forward("production") == production
    assert seen["launched"] == len(world.launcher.started)
    assert ALARM in out.message and "unexpected" not in out.message, out.message
    assert not [s for s in world.store.steps(out.run_id or "") if s.kind in ("stop_deployment", "rollback")]
    assert world.store.last_good(SERVICE, "two") is None
    again = world.engine(p).run(RunOptions(from_phase="two"))
    assert (again.exit_code, again.status) == (1, "quarantined"), again.message


def test_a_snail_restarted_during_ecs_bake_resumes_judging_it(aws, tmp_path, http_server) -> None:
    """Interrupted while ECS bakes (on_interrupt: record): the deployment goes on baking. `run --resume` finds it in
    flight, judges the bake from where it is, and when the alarm fires stops it back to blue: no task started,
    exit 1, quarantined, and no second deployment of the release."""
    world = World(tmp_path, http_server, on_interrupt="record")
    try:
        alarm(world, "OK")
        p, one, production = two_phases_on_blue_green_with_a_bake(world, ALARM_GATE)
        seen: dict[str, int] = {}

        def ctrl_c_in_ecs_bake() -> None:
            if "interrupted" not in seen and in_ecs_bake(world):
                seen["interrupted"] = 1
                raise KeyboardInterrupt

        world.clock.on_sleep.append(ctrl_c_in_ecs_bake)
        first = world.engine(p).run(RunOptions(from_phase="two"))
        assert first.status == "interrupted", first.message
        [dep] = [d for d in world.deployments() if d["status"] == "IN_PROGRESS"]
        assert dep["lifecycleStage"] == "BAKE_TIME"

        def fire_in_the_resumed_bake() -> None:
            if "launched" not in seen and in_ecs_bake(world):
                seen["launched"] = len(world.launcher.started)
                alarm(world, "ALARM")

        world.clock.on_sleep.append(fire_in_the_resumed_bake)
        engine = world.engine(p)
        out = engine.run(RunOptions(from_phase=engine.resume_point()))
        assert (out.exit_code, out.status) == (1, "rolled_back"), out.message
        assert world.live() == one.revision_arn and world.forward("production") == production
        assert seen["launched"] == len(world.launcher.started)
        assert world.deployments()[0]["serviceDeploymentArn"] == dep["serviceDeploymentArn"]  # the same one, stopped
        assert world.deployments()[0]["status"] == "ROLLBACK_SUCCESSFUL"
        [decision] = [e for e in world.events("decision") if e.run_id == out.run_id]
        assert decision.data["during"] == "ecs_bake"
        assert world.store.last_good(SERVICE, "two") is None
    finally:
        world.close()


def test_deployment_alarms_an_operator_set_are_left_as_they_were(world) -> None:
    """Deployment alarms configured on the service outside snail (no alarm gate names them) are the operator's:
    a blue-green release, a rolling phase after it and the rollback configuration all leave them untouched."""
    alarm(world, "OK")  # an alarm in OK state, named by no gate of this pipeline
    theirs = {"alarmNames": [ALARM], "enable": True, "rollback": False}
    world.ecs.update_service(cluster=CLUSTER, service=SERVICE, deploymentConfiguration={"alarms": theirs})
    world.serve("a")
    world.serve("b")
    p = world.pipeline({"one": "a", "two": "b"}, {"two": "strategy: rolling\n"})
    assert strategies.owned_alarms(p) == frozenset()

    def alarms() -> dict:
        svc = world.ecs.describe_services(cluster=CLUSTER, services=[SERVICE])["services"][0]
        return svc["deploymentConfiguration"].get("alarms") or {}

    assert world.engine(p).run(RunOptions(to_phase="one")).status == "succeeded"
    assert alarms() == theirs
    svc = EcsClient(AwsContext(region=REGION)).service(CLUSTER, SERVICE)
    assert "alarms" not in (strategies.restore_configuration(svc, strategies.owned_alarms(p)) or {})
    out = world.engine(p).run(RunOptions(from_phase="two"))
    assert out.status == "succeeded", out.message
    assert alarms() == theirs


def test_an_http_gate_failing_in_the_phase_bake_after_a_blue_green_shift_fails_the_phase(world) -> None:
    """blue-green: green passes on the test listener, ECS shifts production and completes; then, during the phase's
    own bake, green answers 500 on the phase's /ready gate (the load balancer's /health check stays green, so ECS
    replaces no task: the verdict is the gate's, whatever the real-time data plane sees first). The bake judges the
    http gate again: exit 1, back on phase one (verified), phase two quarantined, "failed during the bake" (it used
    to be "still ours and healthy ... marked good")."""
    ready = "gates:\n  - {type: http, path: /ready, expect: {status: 200}}\n"
    p, one, production_before = phase_one_live(world, "bake: 1m\n" + ready)
    shipped = len(world.deployments())

    def fail_once_ecs_completed() -> None:
        deps = world.deployments()
        if len(deps) > shipped and deps[0]["status"] == "SUCCESSFUL" and not world.events("decision"):
            world.behaviours["b"].paths["/ready"] = 500

    world.clock.on_sleep.append(fail_once_ecs_completed)
    out = world.engine(p).run(RunOptions(from_phase="two"))
    assert_back_on_phase_one(world, out, one, production_before)
    assert "failed during the bake" in out.message and "status 500" in out.message
    assert world.store.last_good(SERVICE, "two") is None
    two = next(e.data["revision"] for e in world.events("service_updated") if e.run_id == out.run_id)
    assert [m.verdict for m in world.store.marks(SERVICE) if m.revision_arn == two] == ["failed"]
    assert answers(world, out.run_id) == [("POST_TEST_TRAFFIC_SHIFT", "CONTINUE")]  # ECS was done: a new deployment
