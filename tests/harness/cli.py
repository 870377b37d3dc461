"""`snail` as a process, as a user runs it: `python -m orchestrator` with this checkout on PYTHONPATH (a tmp
cwd would otherwise import whatever orchestrator is installed), test credentials and the test's endpoint."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

CHECKOUT = str(Path(__file__).resolve().parents[2])

# A world: a mapping with its folder ("root", holding pipeline.yaml) and its moto server ("url"); a folder alone
# means no endpoint and no SNAIL_FILE (pipeline.yaml is looked up from the cwd, as for a user).
Where = Mapping[str, Any] | Path


def snail_env(where: Where, env: Mapping[str, str] | None = None, hermetic: bool = False) -> dict[str, str]:
    """This process's environment (with `hermetic`, none of its SNAIL_* settings), test credentials, the world's
    endpoint and pipeline.yaml, then `env`."""
    out = {k: v for k, v in os.environ.items() if k != "SNAIL_FILE" and not (hermetic and k.startswith("SNAIL_"))}
    out.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    out["PYTHONPATH"] = os.pathsep.join(p for p in (CHECKOUT, os.environ.get("PYTHONPATH")) if p)
    if not isinstance(where, Path):
        out.update(SNAIL_ENDPOINT_URL=where["url"], SNAIL_FILE=str(where["root"] / "pipeline.yaml"))
    return {**out, **(env or {})}


def _cwd(where: Where) -> Path:
    return where if isinstance(where, Path) else where["root"]


def snail(
    where: Where, *args: str, timeout: float = 120, env: Mapping[str, str] | None = None, hermetic: bool = False
) -> subprocess.CompletedProcess:
    """Run `snail ARGS` in the world's folder and wait for it (stdout and stderr captured as text)."""
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        env=snail_env(where, env, hermetic),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=_cwd(where),
    )


def start_snail(where: Where, *args: str, env: Mapping[str, str] | None = None, **popen: Any) -> subprocess.Popen:
    """Start `snail ARGS` in the world's folder as a background process (stdout and stderr piped, text, unless
    `popen` says otherwise), for a test whose point is the process: signals, kill -9, locks across processes."""
    options: dict[str, Any] = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True, **popen}
    return subprocess.Popen(
        [sys.executable, "-m", "orchestrator", *args], env=snail_env(where, env), cwd=_cwd(where), **options
    )
