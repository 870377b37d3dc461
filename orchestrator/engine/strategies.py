"""ECS's deployment configuration for a phase's strategy, and what `snail status` shows of a service deployment.

The builders here say what to send ECS: `deployment_configuration` (strategy, settings, one PAUSE hook per judging
stage, the deployment alarms snail manages) for the deployers (engine/rolling.py, engine/traffic.py), and
`restore_configuration`/`restore` for the rollback collaborator (hooks, bake and snail's alarms dropped)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from orchestrator.aws.deployments import DeploymentsClient
from orchestrator.aws.ecs import EcsClient, ServiceView, short_name
from orchestrator.config.gates import GateSpec
from orchestrator.config.strategy import alarm_names, pause_stages

if TYPE_CHECKING:
    from orchestrator.config.model import Pipeline
    from orchestrator.config.strategy import StrategySpec


NO_ALARMS: dict[str, Any] = {"alarmNames": [], "enable": False, "rollback": False}


def owned_alarms(pipeline: Pipeline) -> frozenset[str]:
    """The alarms snail manages as ECS deployment alarms: those the pipeline's `alarm` gates name (any phase)."""
    gates = tuple(pipeline.defaults_gates) + tuple(g for ph in pipeline.phases for g in ph.gates)
    return frozenset(alarm_names(gates))


def deployment_alarms(wanted: list[str], svc: ServiceView | None, owned: frozenset[str]) -> dict[str, Any] | None:
    """The `alarms` block to send ECS, or None to leave the service's as they are. snail sets the alarms its gates
    name (watched by ECS itself at every stage, its bake included, with rollback: an alarm returns traffic to blue
    even when snail is gone) and switches off the ones it set (ECS keeps the alarms an update does not name).
    Alarms someone configured on the service that no alarm gate names are theirs: never touched."""
    current = ((svc.deployment_configuration if svc else None) or {}).get("alarms") or {}
    names = set(current.get("alarmNames") or [])
    if names - owned:
        return None
    if wanted:
        return {"alarmNames": wanted, "enable": True, "rollback": True}
    return dict(NO_ALARMS) if current.get("enable") or names else None


def deployment_configuration(
    strategy: StrategySpec,
    gates: tuple[GateSpec, ...],
    breaker: bool,
    svc: ServiceView | None = None,
    owned: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """The deploymentConfiguration for ECS: strategy, its settings, one PAUSE hook per judging stage, and the
    deployment alarms snail manages (`svc`: the service now; `owned`: the alarms the pipeline's gates name)."""
    cfg: dict[str, Any] = {
        "strategy": strategy.ecs_name,
        "deploymentCircuitBreaker": {"enable": breaker, "rollback": breaker},
    }
    alarms = deployment_alarms(alarm_names(gates) if strategy.uses_traffic else [], svc, owned)
    if alarms is not None:  # a rolling update after a strategy: the strategy's alarms go too
        cfg["alarms"] = alarms
    if not strategy.uses_traffic:
        cfg["lifecycleHooks"] = []
        return cfg
    cfg["bakeTimeInMinutes"] = int(strategy.bake // 60)
    if strategy.kind == "canary":
        cfg["canaryConfiguration"] = {
            "canaryPercent": strategy.percent,
            "canaryBakeTimeInMinutes": int(strategy.step_bake // 60),
        }
    if strategy.kind == "linear":
        cfg["linearConfiguration"] = {
            "stepPercent": strategy.percent,
            "stepBakeTimeInMinutes": int(strategy.step_bake // 60),
        }
    cfg["lifecycleHooks"] = [
        {
            "targetType": "PAUSE",
            "lifecycleStages": pause_stages(strategy, gates),
            "timeoutConfiguration": {
                "timeoutInMinutes": max(1, math.ceil(strategy.hook_timeout / 60)),
                "action": "ROLLBACK",
            },
        }
    ]
    return cfg


def restore_configuration(svc: ServiceView | None, owned: frozenset[str] = frozenset()) -> dict[str, Any] | None:
    """For a rollback by update_service on a service that still carries snail's PAUSE hooks or deployment alarms:
    the configuration that keeps its strategy but drops the hooks and the bake (a rollback must not wait for a
    judge) and the alarms snail set (`owned`; the failed release's alarm is likely still in ALARM: ECS would roll
    the rollback itself back, onto the failed release). None when there is neither (a plain update_service)."""
    cfg = (svc.deployment_configuration if svc else None) or {}
    alarms = deployment_alarms([], svc, owned)
    if not cfg.get("lifecycleHooks") and alarms is None:
        return None
    out: dict[str, Any] = {"lifecycleHooks": [], "bakeTimeInMinutes": 0} if cfg.get("lifecycleHooks") else {}
    if alarms is not None:
        out["alarms"] = alarms
    return out


def restore(
    ecs: EcsClient,
    deployments: DeploymentsClient,
    cluster: str,
    service: str,
    revision_arn: str,
    svc: ServiceView | None,
    owned: frozenset[str] = frozenset(),
) -> None:
    """The rollback's update_service: plain, or (on a service carrying snail's PAUSE hooks or deployment alarms)
    with the hooks, the bake and snail's alarms dropped, so the rollback deployment never waits for a judge that is
    not coming, nor is rolled back by the failed release's alarm."""
    cfg = restore_configuration(svc, owned)
    if cfg is None:
        ecs.update_service(cluster, service, revision_arn)
        return
    deployments.update_service(cluster, service, revision_arn, cfg)


def status(aws: Any, svc: ServiceView | None) -> tuple[dict[str, Any] | None, list[str]]:
    """For `snail status`: the service deployment of a traffic strategy, stage by stage (data, lines). No call
    is made for a rolling service."""
    cfg = svc.deployment_configuration if svc else {}
    current = svc.raw.get("currentServiceDeployment") if svc else None
    if svc is None or not current or cfg.get("strategy", "ROLLING") == "ROLLING":
        return None, []
    view = DeploymentsClient(aws).describe(current)
    if view is None:
        return None, []
    green = 100.0 if view.succeeded else 0.0 if view.rolled_back else view.green_production
    data = {
        "arn": view.arn,
        "strategy": cfg.get("strategy"),
        "status": view.status,
        "stage": view.stage,
        "traffic": {"blue": round(100 - green, 1), "green": round(green, 1)},
        "test_traffic_green": view.green_test,
        "hooks": [{"id": h.hook_id, "status": h.status, "timeout_action": h.timeout_action} for h in view.hooks],
    }
    lines = [
        f"  service deployment {short_name(view.arn)}: {cfg.get('strategy')} {view.status} at {view.stage or '-'}; "
        f"production blue {100 - green:g}% / green {green:g}%, test listener green {view.green_test:g}%"
    ]
    for h in view.hooks:
        expires = f", expires {h.expires_at}" if h.awaiting and h.expires_at else ""
        lines.append(f"    PAUSE hook {h.hook_id}: {h.status}{expires} (on timeout: {h.timeout_action})")
    alarms = view.raw.get("alarms") or {}
    if alarms.get("alarmNames"):  # ECS's own watch (deploymentConfiguration.alarms): what it saw
        fired = list(alarms.get("triggeredAlarmNames") or [])
        data["alarms"] = {"status": alarms.get("status"), "names": list(alarms["alarmNames"]), "in_alarm": fired}
        lines.append(
            f"    deployment alarms {', '.join(alarms['alarmNames'])}: {alarms.get('status')}"
            f" (in ALARM: {', '.join(fired) or 'none'})"
        )
    return data, lines
