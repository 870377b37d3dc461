"""The cluster and the service: they exist, can roll, report their circuit breaker; bindings prove nothing."""

from __future__ import annotations

import json
import math
from typing import Any

from orchestrator.doctor.context import DoctorContext, Skip
from orchestrator.doctor.model import FAILED, PASSED, WARNING, Check
from orchestrator.doctor.runner import Result, check, run_checks


@check("cluster.active", "ECS cluster exists and is ACTIVE")
def cluster_active(ctx: DoctorContext) -> Result:
    """The cluster must exist and be ACTIVE, or nothing else can be checked."""
    s = ctx.spec
    cl = ctx.cluster()
    if cl is None:
        return Result(
            FAILED,
            f"cluster {s.cluster!r} does not exist in {s.region} (ECS answered MISSING)",
            f"aws ecs create-cluster --cluster-name {s.cluster} --region {s.region}"
            "   # or fix service.cluster / service.region in pipeline.yaml",
        )
    if cl.get("status") != "ACTIVE":
        return Result(
            FAILED,
            f"cluster {s.cluster!r} is {cl.get('status')}, not ACTIVE",
            f"aws ecs create-cluster --cluster-name {s.cluster} --region {s.region}",
        )
    # The cluster's task/service counters are left out: emulators (moto) let them drift below zero.
    return Result(PASSED, f"cluster {s.cluster} is ACTIVE")


def create_service_command(ctx: DoctorContext) -> str:
    """The aws-cli command that creates the service from the pipeline's settings (real ids where known)."""
    s = ctx.spec
    family = s.name
    tpl = None
    try:
        tpl = ctx.template()
    except Exception:  # a broken template is reported by the ports checks
        pass
    if tpl and tpl.get("family"):
        family = tpl["family"]
    net = s.network
    subnets = ",".join(net.subnets) if net and net.subnets else "<subnet-id>"
    sgs = ",".join(net.security_groups) if net and net.security_groups else "<sg-id>"
    public = "ENABLED" if net and net.assign_public_ip else "DISABLED"
    cb = "true" if s.circuit_breaker else "false"
    cmd = (
        f"aws ecs create-service --cluster {s.cluster} --service-name {s.name} --task-definition {family} "
        f"--desired-count {s.desired_count} --launch-type {s.launch_type} "
        f"--network-configuration 'awsvpcConfiguration={{subnets=[{subnets}],securityGroups=[{sgs}],assignPublicIp={public}}}' "
        f"--deployment-configuration 'maximumPercent=200,minimumHealthyPercent=100,"
        f"deploymentCircuitBreaker={{enable={cb},rollback={cb}}}' --region {s.region}"
    )
    if s.load_balancer:
        cmd += (
            f" --load-balancers targetGroupArn={s.load_balancer.target_group_arn},"
            f"containerName={s.container},containerPort={s.load_balancer.container_port or s.port}"
        )
    return cmd


@check("service.exists", "ECS service exists and is ACTIVE")
def service_exists(ctx: DoctorContext) -> Result:
    """The field log's first hour: the service was MISSING and everything else was a red herring."""
    s = ctx.spec
    cl = ctx.cluster()
    if cl is None or cl.get("status") != "ACTIVE":
        raise Skip(f"cluster {s.cluster!r} is missing or not ACTIVE")
    svc = ctx.service()
    if svc is None:
        return Result(
            FAILED,
            f"service {s.name!r} does not exist in cluster {s.cluster!r} ({s.region}): ECS answered MISSING; "
            "no rollout can start until it exists",
            f"snail run --create-service   (creates it from pipeline.yaml), or: {create_service_command(ctx)}",
        )
    if svc.get("status") != "ACTIVE":
        return Result(
            FAILED,
            f"service {s.name!r} is {svc.get('status')} (being deleted), not ACTIVE",
            "wait for the deletion to finish, then: snail run --create-service",
        )
    return Result(
        PASSED,
        f"service {s.name} is ACTIVE on {svc.get('taskDefinition', '?').rsplit('/', 1)[-1]} "
        f"(desired {svc.get('desiredCount')}, running {svc.get('runningCount')})",
    )


@check("service.desired-count", "desiredCount is above 0")
def desired_count(ctx: DoctorContext) -> Result:
    """A service scaled to zero runs no tasks, so no gate can ever pass."""
    s = ctx.spec
    svc = ctx.require_service()
    n = int(svc.get("desiredCount", 0))
    if n <= 0:
        want = max(s.desired_count, 1)
        return Result(
            FAILED,
            f"service {s.name} has desiredCount {n}: no task will run, no gate can pass",
            f"aws ecs update-service --cluster {s.cluster} --service {s.name} --desired-count {want} --region {s.region}",
        )
    note = "" if n == s.desired_count else f" (pipeline.yaml says desired_count {s.desired_count})"
    return Result(PASSED, f"desiredCount {n}{note}")


def rolling_room(desired: int, minimum: int, maximum: int) -> tuple[int, int]:
    """(tasks ECS may stop first, tasks ECS may start first) — ECS rounds max down and min up."""
    can_start = math.floor(desired * maximum / 100) - desired
    can_stop = desired - math.ceil(desired * minimum / 100)
    return max(can_stop, 0), max(can_start, 0)


@check("service.deployment-config", "min/max healthy percent allow a rolling update")
def deployment_config(ctx: DoctorContext) -> Result:
    """A max 100 / min 100 service with one task can neither start a new task nor stop the old one."""
    s = ctx.spec
    svc = ctx.require_service()
    dc = svc.get("deploymentConfiguration") or {}
    # Absent means ECS's defaults for a rolling-update service (moto also drops it on create).
    maximum = int(dc.get("maximumPercent", 200))
    minimum = int(dc.get("minimumHealthyPercent", 100))
    desired = max(int(svc.get("desiredCount", 0)), 1)
    stop, start = rolling_room(desired, minimum, maximum)
    seen = f"maximumPercent {maximum}, minimumHealthyPercent {minimum}, desiredCount {desired}" + (
        "" if dc else " (ECS defaults: the service reports no deploymentConfiguration)"
    )
    fix = (
        f"aws ecs update-service --cluster {s.cluster} --service {s.name} --deployment-configuration "
        f"'maximumPercent=200,minimumHealthyPercent=100' --region {s.region}"
    )
    if stop == 0 and start == 0:
        return Result(
            FAILED,
            f"a rolling update cannot proceed: ECS may neither start an extra task nor stop one first\n{seen}",
            fix,
        )
    if start == 0:
        return Result(
            WARNING,
            f"ECS must stop {stop} old task(s) before starting new ones: capacity drops during every rollout\n{seen}",
            fix,
        )
    return Result(PASSED, f"ECS may start {start} new task(s) before stopping old ones\n{seen}")


@check("service.circuit-breaker", "deployment circuit breaker state")
def circuit_breaker(ctx: DoctorContext) -> Result:
    """Reports the circuit breaker; ECS rolling back on its own is a failure to snail, never a success."""
    s = ctx.spec
    svc = ctx.require_service()
    cb = (svc.get("deploymentConfiguration") or {}).get("deploymentCircuitBreaker") or {}
    enabled, rollback = bool(cb.get("enable")), bool(cb.get("rollback"))
    seen = f"circuit breaker enable={str(enabled).lower()} rollback={str(rollback).lower()}"
    fix = (
        f"aws ecs update-service --cluster {s.cluster} --service {s.name} --deployment-configuration "
        f"'maximumPercent=200,minimumHealthyPercent=100,deploymentCircuitBreaker={{enable=true,rollback=true}}' "
        f"--region {s.region}"
    )
    if not enabled and s.circuit_breaker:
        return Result(
            WARNING,
            f"{seen}: a deployment whose tasks keep failing is retried by ECS until snail's "
            "ecs-rollout gate times out (pipeline.yaml wants it on: service.circuit_breaker)",
            fix,
        )
    if not enabled:
        return Result(PASSED, f"{seen} (as pipeline.yaml says: service.circuit_breaker: false)")
    return Result(PASSED, f"{seen}; an ECS rollback is reported by snail as a failed rollout, never as success")


@check("health.network-bindings", "networkBindings are not used as proof of health — health comes from the gates")
def network_bindings(ctx: DoctorContext) -> Result:
    """The field log's misleading empty bindings: report them, trust the gates."""
    try:
        ctx.require_service()
        tasks = ctx.running_tasks()
    except Skip as exc:
        return Result(PASSED, f"health is proven only by the gates; no running tasks to show ({exc})")
    if not tasks:
        return Result(PASSED, "health is proven only by the gates; the service has no RUNNING tasks now")
    empty = sum(1 for t in tasks for c in t.get("containers", []) if not c.get("networkBindings"))
    total = sum(len(t.get("containers", [])) for t in tasks)
    lines = [
        f"health is proven only by the gates; {len(tasks)} running task(s), networkBindings empty on "
        f"{empty} of {total} container(s) — that says nothing about health"
    ]
    for t in tasks[:10]:
        tid = t.get("taskArn", "").rsplit("/", 1)[-1]
        rev = t.get("taskDefinitionArn", "").rsplit("/", 1)[-1]
        for c in t.get("containers", []):
            b = c.get("networkBindings") or []
            shown = (
                json.dumps([{k: x.get(k) for k in ("containerPort", "hostPort", "bindIP")} for x in b]) if b else "[]"
            )
            eni = _eni_ip(t)
            why = (
                " (normal for awsvpc/Fargate: the task's ENI" + (f" {eni}" if eni else "") + " is its address)"
                if not b
                else ""
            )
            lines.append(
                f"task {tid} ({rev}, {t.get('lastStatus')}) container {c.get('name')}: networkBindings {shown}{why}"
            )
    if len(tasks) > 10:
        lines.append(f"… and {len(tasks) - 10} more tasks")
    return Result(PASSED, "\n".join(lines))


def _eni_ip(task: dict[str, Any]) -> str | None:
    for att in task.get("attachments", []):
        for d in att.get("details", []):
            if d.get("name") == "privateIPv4Address":
                return d.get("value")
    return None


CHECKS = (cluster_active, service_exists, desired_count, deployment_config, circuit_breaker)


def checks(ctx: DoctorContext) -> list[Check]:
    """Cluster and service checks."""
    return run_checks(ctx, CHECKS)


def bindings_checks(ctx: DoctorContext) -> list[Check]:
    """The standing network-bindings notice (run last)."""
    return run_checks(ctx, (network_bindings,))
