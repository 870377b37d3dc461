"""What blue-green, canary and linear need before a run: the ECS deployment controller, the two target groups
(port and health check on service.port), the production and test listener rules forwarding to both groups, and
the infrastructure role ECS shifts traffic with. Skipped when no phase uses a traffic strategy."""

from __future__ import annotations

from typing import Any

from orchestrator.aws.elbv2 import Elbv2Client, TargetGroupView
from orchestrator.doctor.context import DoctorContext, Skip
from orchestrator.doctor.model import FAILED, PASSED, WARNING, Check
from orchestrator.doctor.runner import Result, check, run_checks
from orchestrator.errors import NotFound

LB_POLICY = "AmazonECSInfrastructureRolePolicyForLoadBalancers"


def _strategies(ctx: DoctorContext) -> list[str]:
    """The traffic strategies the pipeline's phases use (Skip when none does)."""
    kinds = sorted({ph.strategy.kind for ph in ctx.pipeline.phases if ph.strategy.uses_traffic})
    if not kinds:
        raise Skip("no phase uses blue-green, canary or linear")
    return kinds


def _groups(ctx: DoctorContext) -> list[TargetGroupView]:
    lb = ctx.spec.load_balancer
    names = list(lb.target_groups) if lb else []
    if len(names) != 2:
        raise Skip("service.load_balancer.target_groups does not name two groups (validate says so)")
    return ctx._once("strategy.groups", lambda: [Elbv2Client(ctx.aws).target_group(n) for n in names])


@check("strategy.controller", "the service's deployment controller is ECS")
def controller(ctx: DoctorContext) -> Result:
    """ECS-native strategies need the ECS deployment controller (not CODE_DEPLOY or EXTERNAL)."""
    kinds = _strategies(ctx)
    svc = ctx.require_service()
    kind = (svc.get("deploymentController") or {}).get("type", "ECS")
    if kind != "ECS":
        return Result(
            FAILED,
            f"service {ctx.spec.name} has the {kind} deployment controller: {', '.join(kinds)} need the ECS "
            "controller (ECS cannot change a service's controller in place)",
            "recreate the service with --deployment-controller type=ECS, or set `strategy: rolling` in the phases",
        )
    return Result(PASSED, f"deployment controller ECS ({', '.join(kinds)} can run)")


@check("strategy.target-groups", "both target groups exist, on service.port, with a health check")
def target_groups(ctx: DoctorContext) -> Result:
    """Each group's port and health-check port must be the container's port, or green is never healthy."""
    _strategies(ctx)
    port = (ctx.spec.load_balancer.container_port if ctx.spec.load_balancer else None) or ctx.spec.port
    try:
        groups = _groups(ctx)
    except NotFound as exc:
        return Result(
            FAILED,
            f"a target group of service.load_balancer.target_groups is missing: {exc}",
            "create it: aws elbv2 create-target-group --name <name> --protocol HTTP "
            f"--port {port} --target-type ip --vpc-id <vpc> --health-check-path /health",
        )
    bad = []
    for g in groups:
        if g.port != port:
            bad.append((g, f"{g.name} is on port {g.port}, the container listens on {port}"))
        elif g.health_port not in (None, "traffic-port", str(port)):
            bad.append((g, f"{g.name} health-checks port {g.health_port}, the container listens on {port}"))
    if bad:
        g, why = bad[0]
        fix = (
            f"aws elbv2 modify-target-group --target-group-arn {g.arn} --health-check-port traffic-port"
            if g.port == port
            else f"recreate {g.name} with --port {port} (a target group's port cannot be changed)"
        )
        return Result(FAILED, "; ".join(w for _, w in bad), fix)
    paths = ", ".join(f"{g.name} {g.health_path or '/'}" for g in groups)
    return Result(PASSED, f"two target groups on port {port}, health checks: {paths}")


@check("strategy.listener-rules", "production and test listener rules exist and forward to both groups")
def listener_rules(ctx: DoctorContext) -> Result:
    """ECS shifts traffic by rewriting the rules' weights: each must forward to both target groups."""
    _strategies(ctx)
    lb = ctx.spec.load_balancer
    assert lb is not None
    groups = _groups(ctx)
    arns = [g.arn for g in groups]
    balancers = tuple(dict.fromkeys(a for g in groups for a in g.load_balancer_arns))
    elbv2 = Elbv2Client(ctx.aws)
    seen = []
    for kind, name in (("production", lb.production_listener_rule), ("test", lb.test_listener_rule)):
        if not name:
            return Result(
                FAILED,
                f"no {kind} listener rule in service.load_balancer: snail judges green on the test listener",
                f"add service.load_balancer.{kind}_listener_rule (a rule ARN) to pipeline.yaml",
            )
        try:
            rule = elbv2.rule(name, balancers)
        except NotFound as exc:
            return Result(
                FAILED,
                f"the {kind} listener rule {name} does not exist: {exc}",
                f"aws elbv2 create-rule --listener-arn <{kind} listener> --priority 1 "
                "--conditions Field=path-pattern,Values='/*' "
                f"--actions '{_forward(arns)}'   # then put its ARN in service.load_balancer.{kind}_listener_rule",
            )
        if not rule.forwards_to(*arns):
            return Result(
                FAILED,
                f"the {kind} listener rule {name} forwards to {_names(rule.weights, groups)}, not to both "
                f"{' and '.join(g.name for g in groups)}",
                f"aws elbv2 modify-rule --rule-arn {rule.arn} --actions '{_forward(arns)}'",
            )
        seen.append(f"{kind}: {', '.join(f'{g.name} {rule.share(g.arn):g}%' for g in groups)}")
    return Result(PASSED, "; ".join(seen))


@check("strategy.infrastructure-role", "the infrastructure role exists and may shift the load balancer")
def infrastructure_role(ctx: DoctorContext) -> Result:
    """ECS assumes this role to rewrite the listener rules; without it the deployment fails at the shift."""
    _strategies(ctx)
    lb = ctx.spec.load_balancer
    role = lb.infrastructure_role if lb else None
    if not role:
        return Result(FAILED, "no service.load_balancer.infrastructure_role", _create_role("ecsInfrastructureRole"))
    name = role.rsplit("/", 1)[-1]
    iam = ctx.iam()
    try:
        found = iam.require_role(name)
    except NotFound as exc:
        return Result(FAILED, f"role {name} does not exist: {exc}", _create_role(name))
    trust = str(found.get("AssumeRolePolicyDocument") or "")
    if "ecs.amazonaws.com" not in trust:
        return Result(
            FAILED,
            f"role {name} does not trust ecs.amazonaws.com: ECS cannot assume it",
            f"aws iam update-assume-role-policy --role-name {name} --policy-document "
            '\'{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs.amazonaws.com"},'
            '"Action":"sts:AssumeRole"}]}\'',
        )
    attached = iam.attached_policies(name)
    if not any(p.get("PolicyName") == LB_POLICY for p in attached):
        return Result(
            WARNING,
            f"role {name} exists but has no {LB_POLICY}: make sure its own policies allow "
            "elasticloadbalancing:ModifyRule and ModifyListener on the two rules",
            f"aws iam attach-role-policy --role-name {name} --policy-arn arn:aws:iam::aws:policy/service-role/{LB_POLICY}",
        )
    return Result(PASSED, f"role {name} trusts ECS and has {LB_POLICY}")


def _forward(arns: list[str]) -> str:
    groups = ",".join(f'{{"TargetGroupArn":"{a}","Weight":{100 if i == 0 else 0}}}' for i, a in enumerate(arns))
    return f'[{{"Type":"forward","ForwardConfig":{{"TargetGroups":[{groups}]}}}}]'


def _names(weights: dict[str, Any], groups: list[TargetGroupView]) -> str:
    by_arn = {g.arn: g.name for g in groups}
    return ", ".join(by_arn.get(a, a.rsplit(":", 1)[-1]) for a in weights) or "nothing"


def _create_role(name: str) -> str:
    return (
        f"aws iam create-role --role-name {name} --assume-role-policy-document "
        '\'{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs.amazonaws.com"},'
        f'"Action":"sts:AssumeRole"}}]}}\' && aws iam attach-role-policy --role-name {name} '
        f"--policy-arn arn:aws:iam::aws:policy/service-role/{LB_POLICY}"
    )


CHECKS = (controller, target_groups, listener_rules, infrastructure_role)


def checks(ctx: DoctorContext) -> list[Check]:
    """The strategy checks; none at all when no phase uses a traffic strategy (a rolling pipeline's report
    stays as it was)."""
    if not any(ph.strategy.uses_traffic for ph in ctx.pipeline.phases):
        return []
    return run_checks(ctx, CHECKS)
