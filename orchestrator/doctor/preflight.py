"""The preflight `run` and `promote` make: doctor's checks, cached per service while nothing they read changed.

A passed preflight is remembered in `<state dir>/preflight.json` under the service (endpoint, region, cluster,
name) with two fingerprints: the pipeline as doctor reads it (service, registry, task-definition template,
every gate) and the service's configuration as ECS describes it (network, deployment configuration, load
balancers, launch type). The next preflight makes ONE DescribeServices call; when both fingerprints match and
the entry is younger than the TTL, doctor's ~17 calls are skipped. A failed preflight is never cached and drops
the entry; `snail doctor` always checks everything and refreshes the entry.

What is deliberately not in the key: a phase's image, environment or task sizes (no check reads them), and the
revision the service runs (snail registers every revision it deploys from the checked template, and each run's
plan reads the live revision anyway). Drift that the service's description cannot show (a security-group rule,
a route, the execution role's policies) is re-checked when the entry expires: `SNAIL_PREFLIGHT_TTL` seconds,
default 3600; 0 turns the cache off.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from orchestrator.aws.session import AwsContext
from orchestrator.config.model import Pipeline
from orchestrator.doctor.model import DoctorReport
from orchestrator.errors import SnailError

log = structlog.get_logger("snail.preflight")

CACHE_FILE = "preflight.json"
DEFAULT_TTL = 3600.0
# What ECS says about a service's configuration; counts, deployments, events and the live revision are left out.
SERVICE_FIELDS = (
    "status",
    "launchType",
    "capacityProviderStrategy",
    "platformVersion",
    "networkConfiguration",
    "deploymentConfiguration",
    "deploymentController",
    "loadBalancers",
    "serviceRegistries",
    "schedulingStrategy",
    "roleArn",
)


@dataclass(frozen=True)
class Preflight:
    """How a preflight ended: its report (None when the cache answered) and whether the cache answered."""

    report: DoctorReport | None
    cached: bool
    age: float = 0.0  # seconds since the cached check, when cached


def _now() -> float:
    """Wall-clock seconds (entries outlive the process, so not monotonic); tests replace it."""
    return time.time()


def ttl_seconds() -> float:
    """How long a passed preflight stays valid (SNAIL_PREFLIGHT_TTL, seconds; 0 = never cache)."""
    raw = os.environ.get("SNAIL_PREFLIGHT_TTL", "").strip()
    try:
        return max(0.0, float(raw)) if raw else DEFAULT_TTL
    except ValueError:
        return DEFAULT_TTL


def _plain(value: Any) -> Any:
    """Plain JSON-able data of config objects (dataclasses, paths, tuples)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        to_dict = getattr(value, "to_dict", None)
        return to_dict() if callable(to_dict) else _plain(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def pipeline_fingerprint(pipeline: Pipeline) -> str:
    """A hash of what doctor's checks read from the pipeline: service, registry, template (its bytes), gates."""
    svc = pipeline.service
    template = b""
    if svc.task_definition is not None:
        try:
            template = Path(svc.task_definition).read_bytes()
        except OSError:
            template = b"<unreadable>"
    data = {
        "service": _plain(svc),
        "registry": _plain(pipeline.registry),
        "template": hashlib.sha256(template).hexdigest(),
        "gates": {"defaults": _plain(pipeline.defaults_gates), **{p.name: _plain(p.gates) for p in pipeline.phases}},
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:20]


def service_fingerprint(service: dict[str, Any] | None) -> str | None:
    """A hash of the service's configuration as described (None: missing or inactive, never cacheable)."""
    if not service or service.get("status") != "ACTIVE":
        return None
    data = {k: service.get(k) for k in SERVICE_FIELDS}
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:20]


def cache_key(pipeline: Pipeline, aws: AwsContext) -> str:
    """Which service an entry is about: endpoint (or real AWS), region, cluster and name."""
    s = pipeline.service
    return f"{aws.endpoint_url or 'aws'}|{aws.region}|{s.cluster}|{s.name}"


def _path(pipeline: Pipeline) -> Path:
    return pipeline.state_dir() / CACHE_FILE


def _load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _save(path: Path, data: dict[str, Any]) -> None:
    from orchestrator.state.secure import write_private

    try:
        write_private(path, json.dumps(data, indent=1, sort_keys=True))  # 0600 in a 0700 folder
    except OSError as exc:  # a cache that cannot be written (.snail is a file, disk full) only costs a re-check
        log.warning("preflight_cache_not_saved", path=str(path), error=str(exc))


def describe_service(pipeline: Pipeline, aws: AwsContext) -> dict[str, Any] | None:
    """The service as ECS describes it (one call), or None when it is missing or cannot be read."""
    from orchestrator.aws.ecs import EcsClient

    s = pipeline.service
    try:
        return EcsClient(aws).describe_service(s.cluster, s.name)
    except SnailError as exc:  # the full doctor run names the cause
        log.debug("preflight_describe_failed", error=str(exc))
        return None


def record(pipeline: Pipeline, aws: AwsContext, report: DoctorReport, service: dict[str, Any] | None) -> bool:
    """Remember a passed report for this service (True), or forget the service's entry when it failed."""
    path = _path(pipeline)
    data = _load(path)
    key = cache_key(pipeline, aws)
    fp = service_fingerprint(service)
    if report.ok() and fp is not None and ttl_seconds() > 0:
        data[key] = {
            "pipeline": pipeline_fingerprint(pipeline),
            "service": fp,
            "checked_at": _now(),
            "warnings": [c.id for c in report.warnings],
        }
        _save(path, data)
        return True
    if data.pop(key, None) is not None:
        _save(path, data)
    return False


def lookup(pipeline: Pipeline, aws: AwsContext, service: dict[str, Any] | None) -> float | None:
    """The age in seconds of a still valid passed preflight for this service and pipeline, else None."""
    ttl = ttl_seconds()
    fp = service_fingerprint(service)
    if ttl <= 0 or fp is None:
        return None
    entry = _load(_path(pipeline)).get(cache_key(pipeline, aws))
    if not isinstance(entry, dict):
        return None
    age = _now() - float(entry.get("checked_at", 0))
    if entry.get("service") != fp or entry.get("pipeline") != pipeline_fingerprint(pipeline) or not 0 <= age < ttl:
        return None
    return age


def doctor_and_record(pipeline: Pipeline, aws: AwsContext, service: dict[str, Any] | None = None) -> DoctorReport:
    """Every check (what `snail doctor` runs), then the cache entry refreshed or dropped with the result.
    `service`: a DescribeServices answer just made, reused instead of asking again."""
    from orchestrator.doctor.checks import run_checks_on
    from orchestrator.doctor.context import DoctorContext

    ctx = DoctorContext(pipeline, aws)
    if service is not None:
        ctx.know_service(service)
    report = run_checks_on(ctx)
    try:
        service = ctx.service()
    except SnailError:
        service = None
    record(pipeline, aws, report, service)
    return report


def preflight(pipeline: Pipeline, aws: AwsContext, described: dict[str, Any] | None = None) -> Preflight:
    """The preflight: the cache when it still holds (one DescribeServices call, or none when `described`, the
    DescribeServices answer the plan just made, is given), else every check, recorded."""
    service = described if described is not None else describe_service(pipeline, aws)
    age = lookup(pipeline, aws, service)
    if age is not None:
        log.info("preflight_cached", age_s=round(age), hint="`snail doctor` checks everything again")
        return Preflight(None, cached=True, age=age)
    return Preflight(doctor_and_record(pipeline, aws, service), cached=False)
