"""What ECS does to a service's load balancer, done to moto's ELBv2 state: targets and listener-rule weights.

ECS registers each task of a service in its target group (awsvpc: the task's private IP and the container
port), deregisters it when the task stops, and for BLUE_GREEN, LINEAR and CANARY rewrites the weighted
forward actions of the production and test listener rules. The sandbox's load balancer (`lb.py`) routes
real requests by exactly this state, and reports the health it measures back through DescribeTargetHealth.

After a BLUE_GREEN, CANARY or LINEAR deployment completes, the sandbox leaves the service's `loadBalancers`
(`targetGroupArn`, `advancedConfiguration.alternateTargetGroupArn`) as they were configured, and keeps which of
the two groups production now uses for itself (`production_target_group`): the next deployment's green goes to
the other one, so the groups alternate across deployments. ECS's documentation (the AdvancedConfiguration API
reference, "Application Load Balancer resources for blue/green deployments", the blue/green workflow page)
does not say whether DescribeServices swaps the two fields after a deployment, so the sandbox does not invent
it; code that needs production's group reads the production listener rule's weights, which are documented.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from ecsbox import extension as ext

log = structlog.get_logger(__name__)

MAX_WEIGHT = 999  # ALB's largest forward-action weight

# Called after every change the agent makes to rules or targets, so the data plane applies it at once
# instead of at its next periodic refresh (lb.DataPlane registers itself here).
CHANGE_LISTENERS: list[Callable[[], None]] = []


def _changed() -> None:
    for listener in list(CHANGE_LISTENERS):
        listener()


@dataclass(frozen=True)
class ServiceTraffic:
    """A service's load-balancer wiring as ECS reads it from `loadBalancers[0]`."""

    target_group: str
    alternate_target_group: str | None
    production_rule: str | None
    test_rule: str | None
    container_name: str | None
    container_port: int | None


def wiring(service: Any) -> ServiceTraffic | None:
    """The first load balancer of the service, or None when it has none."""
    lbs = [lb for lb in getattr(service, "load_balancers", None) or [] if lb.get("targetGroupArn")]
    if not lbs:
        return None
    lb = lbs[0]
    adv = lb.get("advancedConfiguration") or {}
    port = lb.get("containerPort")
    return ServiceTraffic(
        lb["targetGroupArn"],
        adv.get("alternateTargetGroupArn"),
        adv.get("productionListenerRule"),
        adv.get("testListenerRule"),
        lb.get("containerName"),
        int(port) if port is not None else None,
    )


def production_target_group(service: Any) -> str | None:
    """The target group production traffic goes to now (the last completed deployment's)."""
    w = wiring(service)
    if w is None:
        return None
    return getattr(service, "sandbox_production_tg", None) or w.target_group


def other_target_group(service: Any) -> str | None:
    """The target group a green revision goes to: the one production is not using."""
    w = wiring(service)
    if w is None or not w.alternate_target_group:
        return None
    prod = production_target_group(service)
    return w.alternate_target_group if prod == w.target_group else w.target_group


def elbv2(account_id: str, region: str) -> Any:
    """moto's in-process ELBv2 backend."""
    from moto.elbv2.models import elbv2_backends

    return elbv2_backends[account_id][region]


def weights(green_percent: float) -> tuple[int, int]:
    """(blue, green) forward weights for `green_percent` of the traffic, within ALB's 0..999."""
    green_percent = min(100.0, max(0.0, green_percent))
    if green_percent >= 100:
        return 0, 1
    if green_percent <= 0:
        return 1, 0
    green = max(1, round(green_percent * 10))
    blue = max(1, round((100 - green_percent) * 10))
    scale = max(blue, green) / MAX_WEIGHT
    if scale > 1:
        green, blue = max(1, round(green / scale)), max(1, round(blue / scale))
    return blue, green


def shift(
    account_id: str, region: str, rule_arn: str | None, blue_tg: str, green_tg: str, green_percent: float
) -> bool:
    """Point a listener rule at blue and green with `green_percent` to green; False if the rule is gone."""
    if not rule_arn:
        return False
    blue_w, green_w = weights(green_percent)
    action = {
        "Type": "forward",
        "ForwardConfig": {
            "TargetGroups": [
                {"TargetGroupArn": blue_tg, "Weight": blue_w},
                {"TargetGroupArn": green_tg, "Weight": green_w},
            ]
        },
    }
    backend = elbv2(account_id, region)
    try:
        backend.modify_rule(rule_arn, [], [action])
    except Exception as exc:  # noqa: BLE001 - a deleted rule: the deployment goes on, the event says so
        log.warning("sandbox_rule_shift_failed", rule=rule_arn, error=str(exc))
        return False
    log.info("sandbox_traffic_shifted", rule=rule_arn.rsplit("/", 2)[-2], green_percent=green_percent)
    _changed()
    return True


def task_target(task: Any, service: Any) -> tuple[str, int] | None:
    """(target id, port) ECS registers for an awsvpc task: its private IP and the load-balanced container port."""
    w = wiring(service)
    if w is None:
        return None
    ip = None
    for attachment in getattr(task, "attachments", None) or []:
        for detail in attachment.get("details", []):
            if detail.get("name") == "privateIPv4Address":
                ip = detail.get("value")
    if not ip or w.container_port is None:
        return None
    return ip, w.container_port


def register(account_id: str, region: str, target_group: str, target: tuple[str, int]) -> bool:
    """Register a task in a target group (False when the group is gone)."""
    try:
        elbv2(account_id, region).register_targets(target_group, [{"Id": target[0], "Port": target[1]}])
    except Exception as exc:  # noqa: BLE001 - the service still runs; target health will say so
        log.warning("sandbox_target_register_failed", target_group=target_group, error=str(exc))
        return False
    log.info("sandbox_target_registered", target_group=target_group.rsplit("/", 2)[-2], target=target)
    _changed()
    return True


def deregister(account_id: str, region: str, target_group: str, target: tuple[str, int]) -> None:
    """Deregister a task from its target group (already gone is fine)."""
    try:
        elbv2(account_id, region).deregister_targets(target_group, [{"Id": target[0], "Port": target[1]}])
    except Exception:  # noqa: BLE001 - not registered any more
        return
    log.info("sandbox_target_deregistered", target_group=target_group.rsplit("/", 2)[-2], target=target)
    _changed()


def health(target_group: str, target: tuple[str, int]) -> str | None:
    """The state the load balancer measured for a target (None: no load balancer runs here)."""
    lookup = ext.TARGET_HEALTH["lookup"]
    if lookup is None:
        return None
    measured = lookup(target_group, target[0], target[1])
    return measured[0] if measured else None
