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
    """What the sandbox must hold for this pipeline."""
    return ecsbox().SandboxSpec.from_pipeline(pipeline, create_service=create_service)
