"""Configuration: pipeline.yaml and phase files -> frozen dataclasses."""

from orchestrator.config.gates import GATE_TYPES, gates_from_data
from orchestrator.config.loader import load_pipeline
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
    "gates_from_data",
    "load_pipeline",
]
