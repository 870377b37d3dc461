"""The error tree: every error carries its data and the exit code it maps to at the CLI boundary."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class ExitCode:
    """Exit codes of the `snail` command (DESIGN.md, README)."""

    OK = 0
    ROLLED_BACK = 1
    USAGE = 2
    HUMAN_NEEDED = 3
    LOCKED = 4
    PREFLIGHT = 5
    INTERRUPTED = 130


# AWS error codes that a later call may not see again (throttling, 5xx, connection faults as botocore names them)
TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "SlowDown",
        "InternalServerError",
        "InternalFailure",
        "InternalError",
        "ServerException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "EndpointConnectionError",
        "ConnectionClosedError",
        "ReadTimeoutError",
        "ConnectTimeoutError",
    }
)


class SnailError(Exception):
    """Base of every error snail raises on purpose; `exit_code` is what the CLI exits with."""

    exit_code = ExitCode.HUMAN_NEEDED

    def __init__(self, message: str, **data: Any) -> None:
        super().__init__(message)
        self.message = message
        self.data = data

    def __str__(self) -> str:
        return self.message


class UsageError(SnailError):
    """A command was called wrongly; nothing was changed."""

    exit_code = ExitCode.USAGE


class ConfigError(SnailError):
    """A pipeline or phase file is wrong; names the file, line and key."""

    exit_code = ExitCode.USAGE

    def __init__(self, path: str, line: int | None, message: str, key: str | None = None) -> None:
        self.path = str(path)
        self.line = line
        self.key = key
        where = f"{self.path}:{line}" if line else self.path
        what = f"{key}: " if key else ""
        super().__init__(f"{where}: {what}{message}")


@dataclass
class ConfigErrors(Exception):
    """Several configuration mistakes at once (validate reports them all)."""

    errors: list[ConfigError] = field(default_factory=list)
    exit_code: int = ExitCode.USAGE

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)


class AwsError(SnailError):
    """An AWS call failed after our retries; `operation` and `code` say which and why."""

    @property
    def transient(self) -> bool:
        """Throttling, a 5xx or a connection fault: the same call may succeed if made again later."""
        return self.code in TRANSIENT_CODES or self.code.endswith(("Timeout", "TimeoutError", "ConnectionError"))

    def __init__(self, operation: str, code: str, message: str) -> None:
        self.operation = operation
        self.code = code
        self.detail = message  # what AWS (or botocore) said, without the operation and the code
        super().__init__(f"{operation} failed: {code}: {message}", operation=operation, code=code)


class AccessDenied(AwsError):
    """AWS refused a call for lack of permission; never retried."""


class CredentialsExpired(AwsError):
    """The AWS credentials expired (a session token past its end): nothing more can be done until they are renewed."""

    exit_code = ExitCode.USAGE  # before anything changed: fix your credentials (exit 2)


class NotFound(AwsError):
    """An AWS resource we need does not exist."""


class DockerUnavailable(SnailError):
    """The Docker Engine cannot be reached."""

    exit_code = ExitCode.USAGE


class BuildError(SnailError):
    """An image failed to build; the message carries the failing Dockerfile step."""

    exit_code = ExitCode.ROLLED_BACK


class PushError(SnailError):
    """An image could not be pushed to its registry."""

    exit_code = ExitCode.ROLLED_BACK


class PortProbeFailed(SnailError):
    """The built image does not answer its health path on the service port locally."""

    exit_code = ExitCode.ROLLED_BACK


class RolledBack(SnailError):
    """The run failed and the service was rolled back to the last good revision, verified by gates."""

    exit_code = ExitCode.ROLLED_BACK


class RollbackFailed(SnailError):
    """Rollback failed or was impossible: a human is needed; the message says what state the service is in."""

    exit_code = ExitCode.HUMAN_NEEDED


class Locked(SnailError):
    """Another run holds the service's lock."""

    exit_code = ExitCode.LOCKED

    def __init__(self, holder: dict[str, Any]) -> None:
        self.holder = holder
        super().__init__(
            "another run holds the lock: run {run_id} by {user}@{host} ({command}) since {since}".format(
                **{k: holder.get(k, "?") for k in ("run_id", "user", "host", "command", "since")}
            )
        )


class LockLost(SnailError):
    """Our lease was taken by another run or could not be renewed: the run stops at its next safe point."""

    exit_code = ExitCode.LOCKED

    def __init__(self, message: str, taken_by: dict[str, Any] | None = None) -> None:
        self.taken_by = taken_by
        super().__init__(message, taken_by=taken_by)


class StateCorrupt(SnailError):
    """The state store cannot be read as one: names the file (or table) and how to recover."""

    exit_code = ExitCode.USAGE

    def __init__(self, where: str, problem: str, recovery: str) -> None:
        self.where = where
        super().__init__(f"state store {where}: {problem}. Nothing was changed. {recovery}", where=where)


class StateBusy(SnailError):
    """The state store stayed locked by another process beyond the busy timeout."""

    exit_code = ExitCode.LOCKED


class PreflightFailed(SnailError):
    """`doctor` found a failing check before the rollout; nothing was changed."""

    exit_code = ExitCode.PREFLIGHT
