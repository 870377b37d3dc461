"""Seed the load balancer a pipeline's `service.load_balancer` asks for: target groups, listeners, rules, role.

In the sandbox the target groups, listener rules and infrastructure role may be given by name; seeding creates
what is missing (idempotently, through boto3 like everything else in `control.seed`) and returns the ARNs.
Rules carry their name as a `Name` tag, since ELBv2 rules have no names of their own. Each listener gets a free
port on 127.0.0.1, which is where the sandbox's data plane (`lb.py`) answers for it: the production URL and
the test URL.
"""

from __future__ import annotations

import json
import re
import socket
from dataclasses import dataclass
from typing import Any

import structlog

log = structlog.get_logger(__name__)

HEALTH_PATH = "/health"
INFRASTRUCTURE_POLICY = "arn:aws:iam::aws:policy/AmazonECSInfrastructureRolePolicyForLoadBalancers"
# What that managed policy lets ECS do, for a moto that does not know the managed policy.
INFRASTRUCTURE_ACTIONS = [
    "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeTargetHealth",
    "elasticloadbalancing:DescribeListeners",
    "elasticloadbalancing:DescribeRules",
    "elasticloadbalancing:ModifyListener",
    "elasticloadbalancing:ModifyRule",
    "elasticloadbalancing:RegisterTargets",
    "elasticloadbalancing:DeregisterTargets",
]


@dataclass(frozen=True)
class LoadBalancerSeed:
    """What pipeline.yaml's service.load_balancer asks the sandbox for (names or ARNs)."""

    target_group: str
    container_port: int | None = None
    target_groups: tuple[str, ...] = ()
    production_listener_rule: str | None = None
    test_listener_rule: str | None = None
    infrastructure_role: str | None = None

    @property
    def group_names(self) -> list[str]:
        """Both target groups (production first), or the one."""
        names = list(self.target_groups) or [self.target_group]
        if self.target_group not in names:
            names.insert(0, self.target_group)
        return names


def seed_load_balancer(clients: dict[str, Any], spec: Any, seeded: dict[str, Any]) -> dict[str, Any]:
    """Create what is missing of `spec.load_balancer`; return ARNs, URLs and the service's `loadBalancers`."""
    from ecsbox.control import SandboxError

    lb: LoadBalancerSeed = spec.load_balancer
    service, port = spec.service, spec.port
    elbv2, iam = clients["elbv2"], clients["iam"]
    groups = [_target_group(elbv2, name, port, seeded["vpc_id"], SandboxError) for name in lb.group_names]
    lb_arn = _load_balancer(elbv2, service, seeded)
    out: dict[str, Any] = {"load_balancer_arn": lb_arn, "target_group_arns": groups}
    rules = {"production": lb.production_listener_rule or "production"}
    if lb.test_listener_rule or len(groups) > 1:
        rules["test"] = lb.test_listener_rule or "test"
    for kind, name in rules.items():
        rule_arn, listener_port = _rule(elbv2, lb_arn, name, groups, SandboxError)
        out[f"{kind}_listener_rule_arn"] = rule_arn
        out[f"{kind}_url"] = f"http://127.0.0.1:{listener_port}"
    if lb.infrastructure_role:
        out["infrastructure_role_arn"] = _infrastructure_role(iam, lb.infrastructure_role)
    entry: dict[str, Any] = {
        "targetGroupArn": groups[0],
        "containerName": spec.container,
        "containerPort": lb.container_port or port,
    }
    if len(groups) > 1 and out.get("infrastructure_role_arn"):
        entry["advancedConfiguration"] = {
            "alternateTargetGroupArn": groups[1],
            "productionListenerRule": out["production_listener_rule_arn"],
            "roleArn": out["infrastructure_role_arn"],
            **({"testListenerRule": out["test_listener_rule_arn"]} if out.get("test_listener_rule_arn") else {}),
        }
    out["service_load_balancers"] = [entry]
    log.info("sandbox_load_balancer_seeded", production=out.get("production_url"), test=out.get("test_url"))
    return out


def _target_group(elbv2: Any, name: str, port: int, vpc_id: str, error: type[Exception]) -> str:
    if name.startswith("arn:"):
        try:
            return elbv2.describe_target_groups(TargetGroupArns=[name])["TargetGroups"][0]["TargetGroupArn"]
        except elbv2.exceptions.TargetGroupNotFoundException as exc:
            raise error(f"service.load_balancer names target group {name}, which does not exist") from exc
    try:
        return elbv2.describe_target_groups(Names=[name])["TargetGroups"][0]["TargetGroupArn"]
    except elbv2.exceptions.TargetGroupNotFoundException:
        pass
    return elbv2.create_target_group(
        Name=name,
        Protocol="HTTP",
        Port=port,
        VpcId=vpc_id,
        TargetType="ip",
        HealthCheckProtocol="HTTP",
        HealthCheckPath=HEALTH_PATH,
        HealthCheckIntervalSeconds=5,
        HealthCheckTimeoutSeconds=2,
        HealthyThresholdCount=2,
        UnhealthyThresholdCount=2,
        Matcher={"HttpCode": "200"},
    )["TargetGroups"][0]["TargetGroupArn"]


def _load_balancer(elbv2: Any, service: str, seeded: dict[str, Any]) -> str:
    name = re.sub(r"[^A-Za-z0-9-]", "-", service)[:32].strip("-") or "snail"
    try:
        return elbv2.describe_load_balancers(Names=[name])["LoadBalancers"][0]["LoadBalancerArn"]
    except elbv2.exceptions.LoadBalancerNotFoundException:
        pass
    return elbv2.create_load_balancer(
        Name=name,
        Subnets=seeded["subnet_ids"],
        SecurityGroups=[seeded["security_group_id"]],
        Scheme="internet-facing",
        Type="application",
    )["LoadBalancers"][0]["LoadBalancerArn"]


def _rule(elbv2: Any, lb_arn: str, name: str, groups: list[str], error: type[Exception]) -> tuple[str, int]:
    """The rule named `name` (by ARN or Name tag) and its listener's port; created on a new listener if missing."""
    listeners = elbv2.describe_listeners(LoadBalancerArn=lb_arn)["Listeners"]
    for listener in listeners:
        rules = elbv2.describe_rules(ListenerArn=listener["ListenerArn"])["Rules"]
        arns = [r["RuleArn"] for r in rules if not r.get("IsDefault")]
        if name.startswith("arn:") and name in [r["RuleArn"] for r in rules]:
            return name, int(listener["Port"])
        if arns:
            for desc in elbv2.describe_tags(ResourceArns=arns)["TagDescriptions"]:
                if {"Key": "Name", "Value": name} in desc.get("Tags", []):
                    return desc["ResourceArn"], int(listener["Port"])
    if name.startswith("arn:"):
        raise error(f"service.load_balancer names listener rule {name}, which does not exist")
    port = _free_port()
    listener_arn = elbv2.create_listener(
        LoadBalancerArn=lb_arn,
        Protocol="HTTP",
        Port=port,
        DefaultActions=[
            {"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404", "ContentType": "text/plain"}}
        ],
    )["Listeners"][0]["ListenerArn"]
    forward = [{"TargetGroupArn": arn, "Weight": 1 if index == 0 else 0} for index, arn in enumerate(groups)]
    rule_arn = elbv2.create_rule(
        ListenerArn=listener_arn,
        Priority=1,
        Conditions=[{"Field": "path-pattern", "Values": ["/*"]}],
        Actions=[{"Type": "forward", "ForwardConfig": {"TargetGroups": forward}}],
        Tags=[{"Key": "Name", "Value": name}],
    )["Rules"][0]["RuleArn"]
    return rule_arn, port


def _infrastructure_role(iam: Any, name: str) -> str:
    if name.startswith("arn:"):
        return name
    try:
        return iam.get_role(RoleName=name)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        pass
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ecs.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    try:
        iam.attach_role_policy(RoleName=name, PolicyArn=INFRASTRUCTURE_POLICY)
    except iam.exceptions.NoSuchEntityException:
        policy = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": INFRASTRUCTURE_ACTIONS, "Resource": "*"}],
        }
        iam.put_role_policy(
            RoleName=name, PolicyName="ecs-infrastructure-load-balancers", PolicyDocument=json.dumps(policy)
        )
    return arn


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
