"""The product's side of the sandbox: ecsbox imported lazily (it comes with the `sandbox` extra), its errors turned
into snail's, and the spec it seeds read from pipeline.yaml."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from orchestrator.errors import SnailError, UsageError

INSTALL_HINT = "pip install 'snail-trail[sandbox]' (or pipx install 'snail-trail[sandbox]')"
LOG_PROCESSOR = "orchestrator.redact:structlog_processor"  # the daemon's log is masked like every other output


class SandboxFailed(SnailError):
    """ecsbox could not start, seed or stop the sandbox; nothing in the pipeline was changed."""

    exit_code = 2


def ecsbox() -> Any:
    """The ecsbox package, or exit 2 saying exactly what to install."""
    try:
        import ecsbox as box
    except ImportError as exc:
        raise UsageError(f"the sandbox is not installed ({exc.name or exc}): {INSTALL_HINT}") from None
    missing = box.missing_requirements()
    if missing:
        raise UsageError(f"the sandbox needs {', '.join(missing)}, which is not installed: {INSTALL_HINT}")
    return box


@contextmanager
def translated() -> Iterator[None]:
    """ecsbox's errors as snail's (same message, same data, its exit code)."""
    from ecsbox.errors import EcsboxError

    try:
        yield
    except EcsboxError as exc:
        err = SandboxFailed(exc.message, **exc.data)
        err.exit_code = exc.exit_code
        raise err from None


def requested_port() -> int | None:
    """SNAIL_SANDBOX_PORT, for every path that starts the sandbox (`sandbox up --port` reads it too)."""
    raw = os.environ.get("SNAIL_SANDBOX_PORT", "").strip()
    if not raw:
        return None
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise UsageError(f"SNAIL_SANDBOX_PORT={raw!r} is not a TCP port (1-65535)")
    return int(raw)


def spec_for(pipeline: Any, create_service: bool = True) -> Any:
    """What the sandbox must hold for this pipeline: its service, container port, repository, load balancer."""
    box = ecsbox()
    from ecsbox.lb_seed import LoadBalancerSeed

    svc = pipeline.service
    registry = pipeline.registry
    repository = registry.ecr
    if not repository and registry.url:
        repository = str(registry.url).rstrip("/").rsplit("/", 1)[-1].split(":")[0]
    lb = svc.load_balancer
    seed = None
    if lb is not None:
        seed = LoadBalancerSeed(
            target_group=lb.target_group_arn,
            container_port=lb.container_port,
            target_groups=tuple(lb.target_groups or ()),
            production_listener_rule=lb.production_listener_rule,
            test_listener_rule=lb.test_listener_rule,
            infrastructure_role=lb.infrastructure_role,
        )
    return box.SandboxSpec(
        cluster=svc.cluster,
        service=svc.name,
        region=svc.region,
        container=svc.container,
        port=int(svc.port),
        repository=repository or svc.name,
        desired_count=int(svc.desired_count or 1),
        create_service=create_service,
        circuit_breaker=bool(svc.circuit_breaker),
        load_balancer=seed,
    )
