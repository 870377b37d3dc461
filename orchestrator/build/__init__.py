"""Images: content-tagged Docker builds, pushes to ECR or any OCI registry, and a local port probe.

The docker SDK is imported inside functions only, so importing this package (and `snail --help`) stays cheap.
"""

from orchestrator.build.builder import ImageBuilder
from orchestrator.build.image import BuiltImage, ProbeResult, ProbeSpec
from orchestrator.build.registry import registry_digest
from orchestrator.build.tags import content_tag, context_files
from orchestrator.build.target import RegistryTarget

__all__ = [
    "BuiltImage",
    "ImageBuilder",
    "ProbeResult",
    "ProbeSpec",
    "RegistryTarget",
    "content_tag",
    "context_files",
    "registry_digest",
]
