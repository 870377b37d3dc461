"""ecsbox: Amazon ECS in a box on 127.0.0.1 (moto's server as the control plane, an agent that runs the tasks as
real Docker containers, a load balancer, CloudWatch alarms), for rehearsing deployments without an AWS account.

Its public face is small:

    from ecsbox import SandboxSpec, up, status, down
    info = up(SandboxSpec(cluster="c", service="s"), state_dir)   # -> SandboxInfo; info.endpoints() for clients
    status(state_dir)                                             # -> SandboxInfo | None
    down(state_dir)

It imports nothing of snail (`orchestrator`); moto and the Docker SDK come with `pip install 'snail-trail[sandbox]'`
and are imported only when the sandbox starts (`missing_requirements()` names what is absent).
"""

from __future__ import annotations

import importlib.util

from ecsbox.control import DEFAULT_PORT, SandboxInfo, SandboxSpec, down, ensure_up, status, up
from ecsbox.errors import DockerUnavailable, EcsboxError, SandboxError

REQUIREMENTS = {"moto": "moto[server]", "flask": "moto[server]", "docker": "docker"}

__all__ = [
    "DEFAULT_PORT",
    "DockerUnavailable",
    "EcsboxError",
    "SandboxError",
    "SandboxInfo",
    "SandboxSpec",
    "down",
    "ensure_up",
    "missing_requirements",
    "status",
    "up",
]


def missing_requirements() -> list[str]:
    """The distributions the sandbox needs that are not installed (e.g. ['moto[server]']), in a stable order."""
    return sorted({dist for module, dist in REQUIREMENTS.items() if not _importable(module)})


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False
