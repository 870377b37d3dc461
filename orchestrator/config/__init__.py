"""Configuration: pipeline.yaml and phase files -> frozen dataclasses."""

from orchestrator.config.loader import GATE_TYPES, load_pipeline
from orchestrator.config.model import (
    GateSpec,
    ImageSpec,
    Phase,
    Pipeline,
    Retries,
    ServiceSpec,
    TaskSpec,
)

__all__ = [
    "GATE_TYPES",
    "GateSpec",
    "ImageSpec",
    "Phase",
    "Pipeline",
    "Retries",
    "ServiceSpec",
    "TaskSpec",
    "load_pipeline",
]
