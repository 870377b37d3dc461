"""`snail doctor`: preflight checks that name the field log's incidents with evidence and a fix,
and the diagnosis bundle attached to a rollback."""

from __future__ import annotations

from orchestrator.doctor.checks import GROUPS, run_checks_on, run_doctor
from orchestrator.doctor.context import DoctorContext, Skip
from orchestrator.doctor.diagnose import Diagnosis, StoppedTask, diagnose
from orchestrator.doctor.model import Check, DoctorReport
from orchestrator.doctor.render import render_text

__all__ = [
    "GROUPS",
    "Check",
    "Diagnosis",
    "DoctorContext",
    "DoctorReport",
    "Skip",
    "StoppedTask",
    "diagnose",
    "render_text",
    "run_checks_on",
    "run_doctor",
]
