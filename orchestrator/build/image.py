"""What a build produced and what a port probe is asked and found: small frozen values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class BuiltImage:
    """An image of one phase in one repository, by content tag and (once in the registry) digest."""

    phase: str
    repository: str
    tag: str
    digest: str | None
    built: bool
    pushed: bool

    @property
    def ref(self) -> str:
        """The reference a task definition should use: pinned by digest when known."""
        return f"{self.repository}@{self.digest}" if self.digest else f"{self.repository}:{self.tag}"

    @property
    def tagged(self) -> str:
        """repository:tag (what was built locally and pushed)."""
        return f"{self.repository}:{self.tag}"


@dataclass(frozen=True)
class ProbeSpec:
    """Run the image locally and expect `path` to answer 2xx on `port` within `timeout` seconds."""

    port: int = 5000
    path: str = "/health"
    timeout: float = 30.0
    env: Mapping[str, str] | None = None
    # what the task runs instead of the image's own ENTRYPOINT/CMD (the phase's task.command, the template's
    # entryPoint): the probe runs the same process ECS will, not the image's default
    command: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None


@dataclass(frozen=True)
class ProbeResult:
    """What a port probe saw: the answer (or none), how long it took and which ports the process listened on."""

    image_ref: str
    port: int
    path: str
    ok: bool
    status: int | None = None
    body: str = ""
    elapsed: float = 0.0
    host_port: int | None = None
    listening_ports: tuple[int, ...] | None = None  # None: could not be seen
    exit_code: int | None = None  # the container stopped on its own
    logs: str = field(default="", repr=False)
