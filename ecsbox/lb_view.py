"""What the sandbox's load balancer routes by, read from moto: listeners, rules, target groups, targets.

A `Snapshot` is rebuilt from moto's in-process ELBv2 state on every refresh of the data plane (`lb.py`).
Targets are what ECS registered (a task's private IP and container port); `task_addresses` resolves them to
the port the task's container publishes on 127.0.0.1. Routing helpers match rules and split by weight as an
ALB does.
"""

from __future__ import annotations

import fnmatch
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from ecsbox import extension as ext


@dataclass(frozen=True)
class Target:
    """A registered target and where it really answers."""

    id: str
    port: int
    address: tuple[str, int] | None  # None: nothing answers for it here (the task stopped, or unknown IP)


@dataclass
class TargetGroup:
    """A target group as the data plane routes to it and checks it."""

    arn: str
    dimension: str  # "targetgroup/<name>/<id>"
    load_balancers: list[str]  # "app/<name>/<id>" of the load balancers whose rules use it
    targets: list[Target]
    health_path: str = "/"
    health_port: str = "traffic-port"
    matcher: str = "200"
    interval: float = 30.0
    timeout: float = 5.0
    healthy_threshold: int = 5
    unhealthy_threshold: int = 2
    health_enabled: bool = True
    in_use: bool = True


@dataclass(frozen=True)
class Rule:
    """A listener rule: conditions and its first action."""

    priority: float
    conditions: tuple[tuple[str, tuple[str, ...]], ...]  # (field, patterns)
    action: dict[str, Any]
    arn: str


@dataclass
class Listener:
    """A listener: its port, load balancer and rules (default last)."""

    port: int
    load_balancer: str  # "app/<name>/<id>"
    rules: list[Rule]


@dataclass
class Snapshot:
    """Everything the proxy routes by, rebuilt from moto on each refresh."""

    listeners: dict[int, Listener] = field(default_factory=dict)
    groups: dict[str, TargetGroup] = field(default_factory=dict)


def lb_dimension(arn: str) -> str:
    """`app/<name>/<id>` from a load balancer ARN, as the LoadBalancer dimension is written."""
    return arn.split(":loadbalancer/", 1)[-1]


def tg_dimension(arn: str) -> str:
    """`targetgroup/<name>/<id>` from a target group ARN, as the TargetGroup dimension is written."""
    return arn.rsplit(":", 1)[-1]


def snapshot_from_moto(account_id: str, regions: list[str] | None = None) -> Snapshot:
    """Read load balancers, listeners, rules and targets from moto's in-process ELBv2 (and ECS for addresses)."""
    from moto.elbv2.models import elbv2_backends

    snap = Snapshot()
    addresses = task_addresses(account_id)
    backends = elbv2_backends[account_id]
    for region in regions or list(backends.keys()):
        backend = backends[region]
        used: dict[str, set[str]] = defaultdict(set)
        for lb in list(backend.load_balancers.values()):
            lb_dim = lb_dimension(lb.arn)
            for listener in list(lb.listeners.values()):
                if (listener.protocol or "HTTP") not in ("HTTP", "HTTPS"):
                    continue
                rules = []
                for rule in list(listener.rules.values()):
                    actions = [a.data for a in rule.actions]
                    if not actions:
                        continue
                    action = sorted(actions, key=lambda a: int(a.get("Order", 0) or 0))[0]
                    for arn in _action_groups(action):
                        used[arn].add(lb_dim)
                    priority = float("inf") if rule.priority == "default" else float(rule.priority)
                    rules.append(Rule(priority, _conditions(rule.conditions), action, rule.arn))
                rules.sort(key=lambda r: r.priority)
                snap.listeners[int(listener.port)] = Listener(int(listener.port), lb_dim, rules)
        for tg in list(backend.target_groups.values()):
            targets = []
            for t in list(tg.targets.values()):
                port = int(t.get("Port") or tg.port or 80)
                address = addresses.get((t["Id"], port))
                if address is None and t["Id"].startswith("127."):
                    address = (t["Id"], port)
                targets.append(Target(t["Id"], port, address))
            matcher = (tg.matcher or {}).get("HttpCode", "200") if getattr(tg, "matcher", None) else "200"
            snap.groups[tg.arn] = TargetGroup(
                arn=tg.arn,
                dimension=tg_dimension(tg.arn),
                load_balancers=sorted(used.get(tg.arn, set())),
                targets=targets,
                health_path=tg.health_check_path or "/",
                health_port=str(tg.health_check_port or "traffic-port"),
                matcher=str(matcher),
                interval=float(tg.health_check_interval_seconds or 30),
                timeout=float(tg.health_check_timeout_seconds or 5),
                healthy_threshold=int(tg.healthy_threshold_count or 5),
                unhealthy_threshold=int(tg.unhealthy_threshold_count or 2),
                health_enabled=bool(tg.health_check_enabled),
                in_use=tg.arn in used,
            )
    return snap


def task_addresses(account_id: str) -> dict[tuple[str, int], tuple[str, int]]:
    """(private IP, container port) -> (127.0.0.1, host port) for every sandbox task that publishes a port."""
    from moto.backends import get_backend

    out: dict[tuple[str, int], tuple[str, int]] = {}
    with ext.BACKEND_LOCK:
        for backend in list(get_backend("ecs")[account_id].values()):
            for tasks in list(backend.tasks.values()):
                for task in list(tasks.values()):
                    if getattr(task, "last_status", None) != "RUNNING":
                        continue
                    ip = None
                    for attachment in getattr(task, "attachments", None) or []:
                        for detail in attachment.get("details", []):
                            if detail.get("name") == "privateIPv4Address":
                                ip = detail.get("value")
                    if not ip:
                        continue
                    for container in getattr(task, "containers", []):
                        for b in getattr(container, "network_bindings", None) or []:
                            out[(ip, int(b["containerPort"]))] = (b.get("bindIP") or "127.0.0.1", int(b["hostPort"]))
    return out


def _action_groups(action: dict[str, Any]) -> list[str]:
    if action.get("Type") != "forward":
        return []
    groups = [g["TargetGroupArn"] for g in (action.get("ForwardConfig") or {}).get("TargetGroups", [])]
    return groups or ([action["TargetGroupArn"]] if action.get("TargetGroupArn") else [])


def _conditions(conditions: list[dict[str, Any]]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    out = []
    for c in conditions or []:
        name = c.get("Field", "")
        values = list(c.get("Values") or [])
        for key in ("PathPatternConfig", "HostHeaderConfig"):
            values += list((c.get(key) or {}).get("Values") or [])
        out.append((name, tuple(values)))
    return tuple(out)


class SmoothWeighted:
    """nginx's smooth weighted round robin: over any window of sum(weights) picks, each gets exactly its weight."""

    def __init__(self, weights: list[tuple[str, int]]) -> None:
        self.items = [(k, w) for k, w in weights if w > 0]
        self.current = {k: 0 for k, _ in self.items}
        self.total = sum(w for _, w in self.items)

    def pick(self) -> str | None:
        """The next item, or None when every weight is 0."""
        if not self.items:
            return None
        best = None
        for key, weight in self.items:
            self.current[key] += weight
            if best is None or self.current[key] > self.current[best]:
                best = key
        assert best is not None
        self.current[best] -= self.total
        return best


def rule_matches(rule: Rule, path: str, host: str) -> bool:
    """Whether a request's path and host meet all of a rule's conditions (ALB wildcards * and ?)."""
    for name, patterns in rule.conditions:
        if name == "path-pattern":
            if not any(fnmatch.fnmatchcase(path, p) for p in patterns):
                return False
        elif name == "host-header":
            if not any(fnmatch.fnmatchcase(host.lower(), p.lower()) for p in patterns):
                return False
        else:
            return False  # a condition the sandbox does not evaluate never matches
    return True


def matcher_accepts(matcher: str, status: int) -> bool:
    """An ALB HttpCode matcher ("200", "200-299", "200,302") accepts `status`."""
    for part in matcher.split(","):
        part = part.strip()
        if "-" in part:
            low, high = part.split("-", 1)
            if int(low) <= status <= int(high):
                return True
        elif part and int(part) == status:
            return True
    return False
