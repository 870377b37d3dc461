"""CloudWatch in the release engineer's words: alarms and their states (alarm gates), and metric data (metrics
gates read the ALB's metrics of a target group)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from orchestrator.aws.errors import aws_call

if TYPE_CHECKING:
    from orchestrator.aws.session import AwsContext


class CloudWatchClient:
    """Alarms and metric data."""

    def __init__(self, aws: AwsContext) -> None:
        self._cloudwatch = aws.client("cloudwatch")

    def alarms(self, names: list[str]) -> dict[str, dict[str, Any]]:
        """The named alarms that exist (metric and composite), by name, as DescribeAlarms says them."""
        with aws_call("cloudwatch:DescribeAlarms"):
            out = self._cloudwatch.describe_alarms(AlarmNames=names)
        return {a["AlarmName"]: a for a in out.get("MetricAlarms", []) + out.get("CompositeAlarms", [])}

    def metric_data(self, queries: list[dict[str, Any]], start: datetime, end: datetime) -> dict[str, list[float]]:
        """Each query's values by its Id over [start, end) (GetMetricData)."""
        with aws_call("cloudwatch:GetMetricData"):
            out = self._cloudwatch.get_metric_data(MetricDataQueries=queries, StartTime=start, EndTime=end)
        return {r["Id"]: list(r.get("Values") or []) for r in out.get("MetricDataResults", [])}
