"""Every doctor check, in the order a report lists them, run against one shared context."""

from __future__ import annotations

from orchestrator.aws.session import AwsContext
from orchestrator.config.model import Pipeline
from orchestrator.doctor import image_pull, marks_check, network, ports, service_checks, strategy_checks
from orchestrator.doctor.context import DoctorContext
from orchestrator.doctor.model import DoctorReport

GROUPS = (
    service_checks.checks,
    ports.checks,
    network.checks,
    image_pull.checks,
    marks_check.checks,
    strategy_checks.checks,
    service_checks.bindings_checks,
)


def run_checks_on(ctx: DoctorContext) -> DoctorReport:
    """Every check group against one context (its describes are shared)."""
    return DoctorReport(tuple(c for group in GROUPS for c in group(ctx)))


def run_doctor(pipeline: Pipeline, aws: AwsContext) -> DoctorReport:
    """Run every preflight check; never raises for AWS errors (they become failed checks)."""
    return run_checks_on(DoctorContext(pipeline, aws))
