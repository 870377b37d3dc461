"""ELBv2 in the release engineer's words: target groups, listener rules and their traffic split, target health.

What blue-green, canary and linear need from the load balancer, and what `doctor` checks: the listener rules
exist and forward to the two target groups, each group's port and health check, the weight each rule gives each
group, and what the targets' health checks say. Names are resolved too (a target group by its name, a rule by
its `Name` tag), which is how pipeline.yaml may name them in the sandbox.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from orchestrator.aws.errors import aws_call
from orchestrator.errors import NotFound

if TYPE_CHECKING:
    from orchestrator.aws.session import AwsContext


@dataclass(frozen=True)
class TargetGroupView:
    """A target group: port, protocol and health check."""

    arn: str
    name: str
    port: int | None
    protocol: str | None
    target_type: str | None
    health_path: str | None
    health_port: str | None
    matcher: str | None
    load_balancer_arns: tuple[str, ...]

    @property
    def dimension(self) -> str:
        """`targetgroup/<name>/<id>`: its TargetGroup dimension in CloudWatch."""
        return self.arn.rsplit(":", 1)[-1]

    @classmethod
    def from_api(cls, g: dict[str, Any]) -> TargetGroupView:
        """From DescribeTargetGroups' shape."""
        return cls(
            arn=g["TargetGroupArn"],
            name=g.get("TargetGroupName", ""),
            port=g.get("Port"),
            protocol=g.get("Protocol"),
            target_type=g.get("TargetType"),
            health_path=g.get("HealthCheckPath"),
            health_port=g.get("HealthCheckPort"),
            matcher=(g.get("Matcher") or {}).get("HttpCode"),
            load_balancer_arns=tuple(g.get("LoadBalancerArns") or ()),
        )


@dataclass(frozen=True)
class RuleView:
    """A listener rule and the weight its forward action gives each target group."""

    arn: str
    listener_arn: str
    is_default: bool
    weights: dict[str, int]  # target group ARN -> weight (a plain forward is {arn: 1})

    def share(self, target_group_arn: str) -> float:
        """The percentage of the rule's traffic that goes to a target group."""
        total = sum(self.weights.values())
        return 100.0 * self.weights.get(target_group_arn, 0) / total if total else 0.0

    def forwards_to(self, *target_group_arns: str) -> bool:
        """Whether the rule's forward action names every one of these target groups."""
        return all(arn in self.weights for arn in target_group_arns)

    @classmethod
    def from_api(cls, r: dict[str, Any], listener_arn: str) -> RuleView:
        """From DescribeRules' shape (the first forward action)."""
        weights: dict[str, int] = {}
        for action in r.get("Actions", []):
            if action.get("Type") != "forward":
                continue
            groups = (action.get("ForwardConfig") or {}).get("TargetGroups") or []
            if groups:
                weights = {g["TargetGroupArn"]: int(g.get("Weight", 1)) for g in groups}
            elif action.get("TargetGroupArn"):
                weights = {action["TargetGroupArn"]: 1}
            break
        return cls(r["RuleArn"], listener_arn, bool(r.get("IsDefault")), weights)


@dataclass(frozen=True)
class TargetHealthView:
    """One registered target and its health."""

    id: str
    port: int | None
    state: str
    reason: str | None
    description: str | None

    @property
    def is_healthy(self) -> bool:
        """State `healthy`."""
        return self.state == "healthy"


class Elbv2Client:
    """Target groups, listener rules and target health."""

    def __init__(self, aws: AwsContext) -> None:
        self._elbv2 = aws.client("elbv2")

    def target_group(self, name_or_arn: str) -> TargetGroupView:
        """A target group by ARN or name; NotFound when there is none."""
        kwargs = {"TargetGroupArns": [name_or_arn]} if name_or_arn.startswith("arn:") else {"Names": [name_or_arn]}
        with aws_call("elasticloadbalancing:DescribeTargetGroups"):
            groups = self._elbv2.describe_target_groups(**kwargs)["TargetGroups"]
        return TargetGroupView.from_api(groups[0])

    def rule(self, name_or_arn: str, load_balancer_arns: tuple[str, ...] = ()) -> RuleView:
        """A listener rule by ARN, or by its Name tag among the listeners of `load_balancer_arns`."""
        if name_or_arn.startswith("arn:"):
            with aws_call("elasticloadbalancing:DescribeRules"):
                [found] = self._elbv2.describe_rules(RuleArns=[name_or_arn])["Rules"]
            return RuleView.from_api(found, _listener_of(name_or_arn))
        for lb_arn in load_balancer_arns:
            with aws_call("elasticloadbalancing:DescribeListeners"):
                listeners = self._elbv2.describe_listeners(LoadBalancerArn=lb_arn)["Listeners"]
            for listener in listeners:
                with aws_call("elasticloadbalancing:DescribeRules"):
                    rules = self._elbv2.describe_rules(ListenerArn=listener["ListenerArn"])["Rules"]
                arns = [r["RuleArn"] for r in rules if not r.get("IsDefault")]
                if not arns:
                    continue
                with aws_call("elasticloadbalancing:DescribeTags"):
                    tags = self._elbv2.describe_tags(ResourceArns=arns)["TagDescriptions"]
                for desc in tags:
                    if {"Key": "Name", "Value": name_or_arn} in desc.get("Tags", []):
                        rule = next(r for r in rules if r["RuleArn"] == desc["ResourceArn"])
                        return RuleView.from_api(rule, listener["ListenerArn"])
        raise NotFound(
            "elasticloadbalancing:DescribeRules",
            "RuleNotFound",
            f"no listener rule named {name_or_arn} on {', '.join(load_balancer_arns) or 'any load balancer given'}",
        )

    def listener_port(self, listener_arn: str) -> int | None:
        """The port a listener answers on."""
        found = self.listener(listener_arn)
        return found.get("Port") if found else None

    def listener(self, listener_arn: str) -> dict[str, Any] | None:
        """A listener as DescribeListeners says it (port, protocol), or None."""
        with aws_call("elasticloadbalancing:DescribeListeners"):
            found = self._elbv2.describe_listeners(ListenerArns=[listener_arn]).get("Listeners") or []
        return dict(found[0]) if found else None

    def load_balancers(self, arns: list[str]) -> list[dict[str, Any]]:
        """Load balancers as DescribeLoadBalancers says them (DNS name, scheme, state, VPC)."""
        with aws_call("elasticloadbalancing:DescribeLoadBalancers"):
            return list(self._elbv2.describe_load_balancers(LoadBalancerArns=arns).get("LoadBalancers") or [])

    def target_groups(self, **by: Any) -> list[TargetGroupView]:
        """Target groups by `TargetGroupArns=`, `Names=` or `LoadBalancerArn=` (DescribeTargetGroups)."""
        return [TargetGroupView.from_api(g) for g in self.target_group_records(**by)]

    def target_group_records(self, **by: Any) -> list[dict[str, Any]]:
        """Target groups as DescribeTargetGroups says them (raw), by ARNs, names or load balancer."""
        with aws_call("elasticloadbalancing:DescribeTargetGroups"):
            return list(self._elbv2.describe_target_groups(**by).get("TargetGroups") or [])

    def target_health(self, target_group_arn: str) -> list[TargetHealthView]:
        """Every registered target of a group with its health."""
        with aws_call("elasticloadbalancing:DescribeTargetHealth"):
            found = self._elbv2.describe_target_health(TargetGroupArn=target_group_arn)["TargetHealthDescriptions"]
        return [
            TargetHealthView(
                id=d["Target"]["Id"],
                port=d["Target"].get("Port"),
                state=d["TargetHealth"].get("State", "unknown"),
                reason=d["TargetHealth"].get("Reason"),
                description=d["TargetHealth"].get("Description"),
            )
            for d in found
        ]


def _listener_of(rule_arn: str) -> str:
    """The listener ARN a rule ARN belongs to (`...:listener-rule/app/lb/id/listener-id/rule-id`)."""
    head, _, _rule_id = rule_arn.rpartition("/")
    return head.replace(":listener-rule/", ":listener/")
