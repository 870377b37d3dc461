"""The pipeline as frozen dataclasses: what load_pipeline() returns and everything downstream reads.

Each section's fields carry their YAML checker and state their default, once (config/section.py derives the
check and builds the value from them); `problems` is a section's check across its own keys."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from orchestrator.config import gate_schema
from orchestrator.config import schema as s
from orchestrator.config import strategy as strategy_schema
from orchestrator.config.gates import GateSpec, Retries  # noqa: F401 (re-exported: the pipeline's vocabulary)
from orchestrator.config.notify import NotifySpec
from orchestrator.config.section import checker, key
from orchestrator.config.strategy import StrategySpec
from orchestrator.config.yamlio import to_data


@dataclass(frozen=True)
class ProbeSpec:
    """The local port probe run on a freshly built image before it is pushed."""

    path: str = key(s.string, "/health")
    timeout: float = key(s.duration, 30.0)


def _probe(node: yaml.Node, at: str, errors: s.Errors) -> Any:
    """The local port probe: false, or {path: /health, timeout: 30s} (timeout finite, 1s to 1h)."""
    if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:bool":
        return {} if to_data(node) is True else False
    checked = checker(ProbeSpec)(node, at, errors)
    if checked is s._MISSING:
        return checked
    out = {k: v for k, v in checked.items() if v is not None}
    path = out.get("path")
    if path is not None and not str(path).startswith("/"):
        errors.add(node, f"{at}.path", f"a path starts with '/': write {'/' + str(path)!r}")
        return s._MISSING
    t = out.get("timeout")
    if t is not None and not 1.0 <= t <= 3600.0:
        errors.add(node, f"{at}.timeout", f"must be between 1s and 1h, got {t:g}s")
        return s._MISSING
    return out


@dataclass(frozen=True)
class ImageSpec:
    """Where a phase's image comes from: a build context, or a prebuilt reference."""

    context: Path | None = key(s.file_path, None, relative=True)
    ref: str | None = key(s.image_ref, None)
    dockerfile: str | None = key(s.file_path, None)
    build_args: dict[str, str] = key(s.str_map, {})
    probe: ProbeSpec | None = key(_probe, None)  # the loader's: a build context gets ProbeSpec() unless `false`
    # BuildKit secret mounts (RUN --mount=type=secret,id=NAME): never in a layer or the image's history
    build_secrets: dict[str, str] = key(s.str_map, {})

    @staticmethod
    def problems(d: dict[str, Any]) -> list[tuple[str, str]]:
        """Exactly one of context or ref; build_secrets only for a build, names BuildKit takes, none also a build
        arg (that one would be in the image's history)."""
        from orchestrator.build.buildkit import SECRET_ID

        out = (
            [("image", "give exactly one of `context` or `ref`")]
            if bool(d.get("context")) == bool(d.get("ref"))
            else []
        )
        secrets = d.get("build_secrets") or {}
        if secrets and d.get("ref"):
            out.append(("build_secrets", "build secrets are for a build `context`, not a prebuilt `ref`"))
        out += [
            (
                "build_secrets",
                f"{n!r}: a build secret's name is letters, digits, '_', '.' or '-' (it is the mount's id)",
            )
            for n in secrets
            if not SECRET_ID.match(str(n))
        ]
        out += [
            ("build_secrets", f"{n!r} is both a build arg and a build secret: keep it in build_secrets only")
            for n in secrets
            if n in (d.get("build_args") or {})
        ]
        return out


@dataclass(frozen=True)
class TaskSpec:
    """The changes a phase makes to the container and task definition."""

    cpu: int | None = key(s.integer(128, 16384), None)
    memory: int | None = key(s.integer(128, 122880), None)
    environment: dict[str, str] = key(s.str_map, {})
    secrets: dict[str, str] = key(s.secret_map, {})
    command: tuple[str, ...] | None = key(s.list_of(s.string), None)


@dataclass(frozen=True)
class Defaults:
    """`defaults:` what every phase takes unless it says otherwise (its strategy as checked data, merged per phase)."""

    gates: tuple[GateSpec, ...] = key(s.list_of(gate_schema.gate), ())
    bake: float = key(s.duration, 0.0)
    build_args: dict[str, str] = key(s.str_map, {})
    strategy: dict[str, Any] | None = key(strategy_schema.check, None)


@dataclass(frozen=True)
class Phase:
    """One step of the pipeline: an image, task changes, gates, bake time and approval."""

    name: str = key(s.string)
    image: ImageSpec = key(checker(ImageSpec))
    task: TaskSpec = key(checker(TaskSpec), TaskSpec())
    gates: tuple[GateSpec, ...] = key(s.list_of(gate_schema.gate), ())  # the loader adds the defaults' first
    bake: float = key(s.duration, Defaults.bake)  # left out: the `defaults:` bake
    approval: str = key(s.one_of("auto", "manual"), "auto")
    path: Path | None = None
    strategy: StrategySpec = key(strategy_schema.check, StrategySpec())  # merged over `defaults`' by the loader

    @property
    def manual(self) -> bool:
        """True when `run` must stop before this phase until `snail promote`."""
        return self.approval == "manual"


@dataclass(frozen=True)
class NetworkSpec:
    """awsvpc settings, used when snail creates the service."""

    subnets: tuple[str, ...] = key(s.list_of(s.string), ())
    security_groups: tuple[str, ...] = key(s.list_of(s.string), ())
    assign_public_ip: bool = key(s.boolean, False)


@dataclass(frozen=True)
class LoadBalancerSpec:
    """The target group the service registers in, if any; for blue-green/canary/linear, both groups and rules."""

    target_group_arn: str = key(s.string)
    container_port: int | None = key(s.port, None)
    production_listener_rule: str | None = key(s.string, None)  # ARN (in the sandbox: a name seeding creates)
    test_listener_rule: str | None = key(s.string, None)
    # the two target groups ECS alternates between (ARNs or names)
    target_groups: tuple[str, ...] = key(s.list_of(s.string, 2), ())
    infrastructure_role: str | None = key(s.string, None)  # the role ECS uses to shift traffic (ARN or name)
    test_url: str | None = key(
        s.http_url, None
    )  # base URL of the test listener, when its DNS name is not how to reach it


@dataclass(frozen=True, kw_only=True)
class ServiceSpec:
    """The ECS service the pipeline delivers to."""

    cluster: str = key(s.ecs_name("cluster"))
    name: str = key(s.ecs_name("service"))
    region: str = key(s.region, "us-east-1")
    container: str = key(s.ecs_name("container"))
    port: int = key(s.port)
    task_definition: Path | None = key(s.file_path, None, relative=True)
    desired_count: int = key(s.integer(0, 1000), 1)
    launch_type: str = key(s.one_of("FARGATE", "EC2", "EXTERNAL"), "FARGATE")
    endpoint: str | None = key(s.http_url, None)
    network: NetworkSpec | None = key(checker(NetworkSpec), None)
    load_balancer: LoadBalancerSpec | None = key(checker(LoadBalancerSpec), None)
    circuit_breaker: bool = key(s.boolean, True)


@dataclass(frozen=True)
class RegistrySpec:
    """Where images are pushed: an ECR repository by name, or any OCI registry by URL."""

    ecr: str | None = key(s.ecr_repository, None)
    url: str | None = key(s.registry_url, None)
    create: bool = key(s.boolean, False)

    @staticmethod
    def problems(d: dict[str, Any]) -> list[tuple[str, str]]:
        """Exactly one of ecr or url."""
        return [("registry", "give exactly one of `ecr` or `url`")] if bool(d.get("ecr")) == bool(d.get("url")) else []

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

    backend: str = key(s.one_of("local", "dynamodb"), "local")
    path: str = key(s.file_path, ".snail")
    table: str | None = key(s.dynamodb_table, None)
    lease: float = key(s.lease, 300.0)

    problems = staticmethod(s.dynamodb_needs_table)


@dataclass(frozen=True)
class Rollback:
    """`rollback:` what an interrupted run does."""

    on_interrupt: str = key(s.one_of("rollback", "record"), "rollback")  # rollback | record (for `run --resume`)


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
    bake: float = Defaults.bake
    on_interrupt: str = Rollback.on_interrupt  # rollback | record (leave the revision, record it for `run --resume`)
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
