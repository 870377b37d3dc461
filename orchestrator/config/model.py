"""The pipeline as frozen dataclasses: what load_pipeline() returns and everything downstream reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.config.gates import GateSpec, Retries  # noqa: F401 (re-exported: the pipeline's vocabulary)
from orchestrator.config.notify import NotifySpec
from orchestrator.config.strategy import StrategySpec


@dataclass(frozen=True)
class ProbeSpec:
    """The local port probe run on a freshly built image before it is pushed."""

    path: str = "/health"
    timeout: float = 30.0


@dataclass(frozen=True)
class ImageSpec:
    """Where a phase's image comes from: a build context, or a prebuilt reference."""

    context: Path | None = None
    ref: str | None = None
    dockerfile: str | None = None
    build_args: dict[str, str] = field(default_factory=dict)
    probe: ProbeSpec | None = None
    # BuildKit secret mounts (RUN --mount=type=secret,id=NAME): never in a layer or the image's history
    build_secrets: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskSpec:
    """The changes a phase makes to the container and task definition."""

    cpu: int | None = None
    memory: int | None = None
    environment: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    command: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Phase:
    """One step of the pipeline: an image, task changes, gates, bake time and approval."""

    name: str
    image: ImageSpec
    task: TaskSpec
    gates: tuple[GateSpec, ...]
    bake: float
    approval: str = "auto"
    path: Path | None = None
    strategy: StrategySpec = StrategySpec()  # rolling unless the phase or `defaults` says otherwise

    @property
    def manual(self) -> bool:
        """True when `run` must stop before this phase until `snail promote`."""
        return self.approval == "manual"


@dataclass(frozen=True)
class NetworkSpec:
    """awsvpc settings, used when snail creates the service."""

    subnets: tuple[str, ...] = ()
    security_groups: tuple[str, ...] = ()
    assign_public_ip: bool = False


@dataclass(frozen=True)
class LoadBalancerSpec:
    """The target group the service registers in, if any; for blue-green/canary/linear, both groups and rules."""

    target_group_arn: str
    container_port: int | None = None
    production_listener_rule: str | None = None  # ARN (in the sandbox: a name seeding creates)
    test_listener_rule: str | None = None
    target_groups: tuple[str, ...] = ()  # the two target groups ECS alternates between (ARNs or names)
    infrastructure_role: str | None = None  # the role ECS uses to shift traffic (ARN or name)
    test_url: str | None = None  # base URL of the test listener, when its DNS name is not how to reach it


@dataclass(frozen=True)
class ServiceSpec:
    """The ECS service the pipeline delivers to."""

    cluster: str
    name: str
    region: str
    container: str
    port: int
    task_definition: Path | None = None
    desired_count: int = 1
    launch_type: str = "FARGATE"
    endpoint: str | None = None
    network: NetworkSpec | None = None
    load_balancer: LoadBalancerSpec | None = None
    circuit_breaker: bool = True


@dataclass(frozen=True)
class RegistrySpec:
    """Where images are pushed: an ECR repository by name, or any OCI registry by URL."""

    ecr: str | None = None
    url: str | None = None
    create: bool = False

    @property
    def repository_name(self) -> str:
        """The repository's short name."""
        if self.ecr:
            return self.ecr
        assert self.url
        return self.url.rstrip("/").split("/", 1)[-1] if "/" in self.url else self.url


@dataclass(frozen=True)
class StateSpec:
    """Where runs, steps, good revisions and the lock live."""

    backend: str = "local"
    path: str = ".snail"
    table: str | None = None
    lease: float = 300.0


@dataclass(frozen=True)
class Pipeline:
    """A whole pipeline.yaml with its phase files loaded and defaults merged in."""

    version: int
    service: ServiceSpec
    registry: RegistrySpec
    state: StateSpec
    phases: tuple[Phase, ...]
    path: Path
    defaults_gates: tuple[GateSpec, ...] = ()
    bake: float = 0.0
    on_interrupt: str = "rollback"  # rollback | record (leave the revision, record it for `run --resume`)
    notify: tuple[NotifySpec, ...] = ()  # where to say how a run ended (orchestrator/notify)

    @property
    def root(self) -> Path:
        """The folder pipeline.yaml is in; relative paths resolve against it."""
        return self.path.parent

    def phase(self, name: str) -> Phase:
        """The phase called `name`; KeyError if there is none."""
        for p in self.phases:
            if p.name == name:
                return p
        raise KeyError(name)

    def phase_names(self) -> list[str]:
        """Phase names in pipeline order."""
        return [p.name for p in self.phases]

    def state_dir(self) -> Path:
        """The local state folder (absolute)."""
        p = Path(self.state.path)
        return p if p.is_absolute() else self.root / p
