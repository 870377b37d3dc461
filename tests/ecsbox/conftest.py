"""The emulator on its own: ecsbox's daemon (moto's server, the ECS agent, the load balancer) in this process, its
tasks answered by real HTTP servers on 127.0.0.1 instead of containers, and boto3 clients pointed at it. Nothing
of snail is imported here or in the tests: they check ecsbox against AWS's documentation, not against snail."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
import requests

REGION = "us-east-1"
ACCOUNT = "123456789012"
CLUSTER = "box"
SERVICE = "web"
BLUE = "registry.local/web:blue"
GREEN = "registry.local/web:green"
BROKEN = "registry.local/web:broken"  # answers 500 on /health
CRASHES = "registry.local/web:crashes"  # its process exits with code 3 as soon as it starts


class App(BaseHTTPRequestHandler):
    """One task's container: its colour on every path; /health answers `health` (200 unless broken)."""

    color = "blue"
    health = 200

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        status = self.health if self.path.startswith("/health") else 200
        body = self.color.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def _serve(color: str, health: int = 200) -> ThreadingHTTPServer:
    handler = type(f"App_{color}", (App,), {"color": color, "health": health})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """ecsbox.daemon.run in a thread: an ECS minute lasts one second, tasks need no Docker."""
    from ecsbox import daemon, extension
    from ecsbox.launchers import InstantLauncher

    mp = pytest.MonkeyPatch()
    mp.setenv("SNAIL_SANDBOX_MINUTE", "1")
    servers = {"blue": _serve("blue"), "green": _serve("green"), "broken": _serve("broken", 500)}
    launcher = InstantLauncher(
        host_port_for=lambda image: (
            servers[image.rsplit(":", 1)[-1]].server_address[1] if image.rsplit(":", 1)[-1] in servers else None
        ),
        exit_code_for=lambda image: 3 if image == CRASHES else None,
    )
    port = _free_port()
    stop = threading.Event()
    thread = threading.Thread(
        target=daemon.run,
        args=(tmp_path_factory.mktemp("box"), port),
        kwargs={"registry": None, "interval": 0.1, "launcher": launcher, "stop_event": stop, "metrics_period": 3600},
        daemon=True,
    )
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.get(f"{url}/moto-api/", timeout=1)
            break
        except requests.RequestException:
            time.sleep(0.1)
    yield url
    stop.set()
    thread.join(timeout=30)
    extension.uninstall()  # other tests in this process expect plain moto
    for server in servers.values():
        server.shutdown()
    mp.undo()


class Aws:
    """boto3 clients on a freshly reset emulator, with a VPC, a load balancer, two target groups and production and
    test listener rules (forwarding to blue) made the way a user makes them."""

    def __init__(self, endpoint: str) -> None:
        requests.post(f"{endpoint}/moto-api/reset", timeout=10)
        kw = {
            "endpoint_url": endpoint,
            "region_name": REGION,
            "aws_access_key_id": "box",
            "aws_secret_access_key": "box",
        }
        self.ecs = boto3.client("ecs", **kw)
        self.ec2 = boto3.client("ec2", **kw)
        self.elbv2 = boto3.client("elbv2", **kw)
        self.ecs.create_cluster(clusterName=CLUSTER)
        vpc = self.ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
        self.subnets = [s["SubnetId"] for s in self.ec2.describe_subnets()["Subnets"][:2]]
        self.sg = self.ec2.describe_security_groups()["SecurityGroups"][0]["GroupId"]
        lb = self.elbv2.create_load_balancer(Name="box", Subnets=self.subnets)["LoadBalancers"][0]
        self.blue_tg, self.green_tg = (
            self.elbv2.create_target_group(
                Name=name,
                Protocol="HTTP",
                Port=5000,
                VpcId=vpc,
                TargetType="ip",
                HealthCheckPath="/health",
                HealthCheckIntervalSeconds=5,
                HealthyThresholdCount=2,
                UnhealthyThresholdCount=2,
            )["TargetGroups"][0]["TargetGroupArn"]
            for name in ("web-blue", "web-green")
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

    def register(self, image: str) -> str:
        """A revision of the service's family running `image`."""
        return self.ecs.register_task_definition(
            family=SERVICE,
            containerDefinitions=[
                {
                    "name": "app",
                    "image": image,
                    "memory": 512,
                    "essential": True,
                    "portMappings": [{"containerPort": 5000, "protocol": "tcp"}],
                }
            ],
            networkMode="awsvpc",
            requiresCompatibilities=["FARGATE"],
            cpu="256",
            memory="512",
        )["taskDefinition"]["taskDefinitionArn"]

    def create_service(self, desired: int = 1, blue_green: bool = False, grace: int = 0, **config: Any) -> None:
        """The service on blue, behind the production rule; returns once its first deployment is COMPLETED. `grace`
        is healthCheckGracePeriodSeconds; `config` goes into deploymentConfiguration."""
        balancer: dict[str, Any] = {"targetGroupArn": self.blue_tg, "containerName": "app", "containerPort": 5000}
        if blue_green:
            balancer["advancedConfiguration"] = {
                "alternateTargetGroupArn": self.green_tg,
                "productionListenerRule": self.rules["production"],
                "testListenerRule": self.rules["test"],
                "roleArn": f"arn:aws:iam::{ACCOUNT}:role/ecsInfrastructureRole",
            }
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
            loadBalancers=[balancer],
            healthCheckGracePeriodSeconds=grace,
            deploymentConfiguration={"maximumPercent": 200, "minimumHealthyPercent": 100, **config},
        )
        self.wait(lambda: [d["rolloutState"] for d in self.service()["deployments"]] == ["COMPLETED"])

    def service(self) -> dict[str, Any]:
        """DescribeServices."""
        return self.ecs.describe_services(cluster=CLUSTER, services=[SERVICE])["services"][0]

    def deployment(self, arn: str) -> dict[str, Any]:
        """DescribeServiceDeployments for one ARN."""
        return self.ecs.describe_service_deployments(serviceDeploymentArns=[arn])["serviceDeployments"][0]

    def forward(self, rule: str) -> dict[str, int]:
        """The rule's forward weights: {'blue': w, 'green': w}."""
        (found,) = self.elbv2.describe_rules(RuleArns=[self.rules[rule]])["Rules"]
        action = found["Actions"][0]
        names = {self.blue_tg: "blue", self.green_tg: "green"}
        if "ForwardConfig" not in action:
            return {names[action["TargetGroupArn"]]: 1}
        return {names[g["TargetGroupArn"]]: g["Weight"] for g in action["ForwardConfig"]["TargetGroups"]}

    def wait(self, until: Callable[[], Any], timeout: float = 60.0) -> Any:
        """Poll (the emulator runs in real time) until `until()` is truthy; return its value."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = until()
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"timed out; deployments: {self.service()['deployments']}")


@pytest.fixture
def aws(endpoint: str) -> Aws:
    """A fresh world on the emulator."""
    return Aws(endpoint)
