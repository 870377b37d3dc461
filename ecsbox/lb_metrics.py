"""The ALB metrics the sandbox's load balancer publishes into CloudWatch, per period.

Per target group (dimensions TargetGroup + LoadBalancer): RequestCount, HTTPCode_Target_2XX/3XX/4XX/5XX_Count and
TargetResponseTime (every response time, as values with counts, so averages, maxima and percentiles are real);
per load balancer (dimension LoadBalancer): RequestCount and HTTPCode_ELB_5XX_Count. Namespace AWS/ApplicationELB.
Like an ALB, nothing is published for a period without requests.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

NAMESPACE = "AWS/ApplicationELB"


@dataclass
class GroupCounters:
    """One period of one target group (or, with group None, of the load balancer itself)."""

    requests: int = 0
    codes: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # "2XX" -> n
    elb_5xx: int = 0
    response_times: list[float] = field(default_factory=list)


class Metrics:
    """Counts requests per (load balancer, target group) and turns a period into CloudWatch metric data."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._period: dict[tuple[str, str | None], GroupCounters] = defaultdict(GroupCounters)
        self.totals: dict[str, int] = defaultdict(int)  # RequestCount per target group dimension, since start

    def record(self, lb: str, group: str | None, status: int, seconds: float | None, from_target: bool) -> None:
        """One request answered (by a target, or by the load balancer itself when `from_target` is False)."""
        with self._lock:
            lb_counters = self._period[(lb, None)]
            lb_counters.requests += 1
            if not from_target and status >= 500:
                lb_counters.elb_5xx += 1
            if group is not None:
                counters = self._period[(lb, group)]
                counters.requests += 1
                self.totals[group] += 1
                if from_target:
                    counters.codes[f"{status // 100}XX"] += 1
                    if seconds is not None:
                        counters.response_times.append(seconds)

    def drain(self, timestamp: datetime) -> list[dict[str, Any]]:
        """The metric data of the period that ends now (empty without requests), and start a new period."""
        with self._lock:
            period, self._period = self._period, defaultdict(GroupCounters)
        data: list[dict[str, Any]] = []
        for (lb, group), c in period.items():
            if not c.requests:
                continue
            dims = [{"Name": "LoadBalancer", "Value": lb}]
            if group is None:
                data.append(_datum("RequestCount", dims, c.requests, timestamp))
                if c.elb_5xx:
                    data.append(_datum("HTTPCode_ELB_5XX_Count", dims, c.elb_5xx, timestamp))
                continue
            dims = [{"Name": "TargetGroup", "Value": group}, *dims]
            data.append(_datum("RequestCount", dims, c.requests, timestamp))
            for klass, n in sorted(c.codes.items()):
                data.append(_datum(f"HTTPCode_Target_{klass}_Count", dims, n, timestamp))
            if c.response_times:
                buckets: dict[float, int] = defaultdict(int)
                for s in c.response_times:
                    buckets[round(s, 3)] += 1
                values = sorted(buckets.items())
                for start in range(0, len(values), 150):  # PutMetricData takes 150 values per datum
                    chunk = values[start : start + 150]
                    data.append(
                        {
                            "MetricName": "TargetResponseTime",
                            "Dimensions": dims,
                            "Timestamp": timestamp,
                            "Unit": "Seconds",
                            "Values": [v for v, _ in chunk],
                            "Counts": [float(n) for _, n in chunk],
                        }
                    )
        return data


def _datum(name: str, dims: list[dict[str, str]], value: float, timestamp: datetime) -> dict[str, Any]:
    return {"MetricName": name, "Dimensions": dims, "Timestamp": timestamp, "Unit": "Count", "Value": float(value)}


def cloudwatch_publisher(client: Any) -> Callable[[list[dict[str, Any]]], None]:
    """Publish metric data with a boto3 CloudWatch client (20 data points per call, PutMetricData's limit)."""

    def publish(data: list[dict[str, Any]]) -> None:
        for start in range(0, len(data), 20):
            client.put_metric_data(Namespace=NAMESPACE, MetricData=data[start : start + 20])

    return publish
