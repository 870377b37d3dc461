"""The emulator's own errors. Each carries its data and a suggested process exit code (2: nothing was changed and
the caller must act); a host program maps them to its own errors."""

from __future__ import annotations

from typing import Any

USAGE = 2


class EcsboxError(Exception):
    """Base of every error ecsbox raises on purpose."""

    exit_code = USAGE

    def __init__(self, message: str, **data: Any) -> None:
        super().__init__(message)
        self.message = message
        self.data = data

    def __str__(self) -> str:
        return self.message


class SandboxError(EcsboxError):
    """The sandbox could not be started, seeded or stopped."""


class DockerUnavailable(EcsboxError):
    """No Docker Engine answers, or the local registry cannot be had; the message says how to get one."""
