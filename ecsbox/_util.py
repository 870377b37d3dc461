"""Copies of the few small helpers ecsbox needs, so that it imports nothing of the product that drives it."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DIR_MODE = 0o700
FILE_MODE = 0o600


def pid_alive(pid: int) -> bool:
    """The process exists and is not a zombie (a zombie child of ours is reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            return False
    except OSError:
        pass
    return True


def _chmod_if_ours(p: Path, mode: int) -> None:
    try:
        st = p.stat()
        if st.st_uid == os.getuid() and (st.st_mode & 0o777) != mode:
            p.chmod(mode)
    except OSError:
        pass


def private_dir(path: str | Path) -> Path:
    """Create `path` (and missing parents) as 0700; tighten it to 0700 if it exists and is ours."""
    p = Path(path)
    missing = []
    probe = p
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    for d in reversed(missing):
        with contextlib.suppress(FileExistsError):
            d.mkdir(mode=DIR_MODE)
        _chmod_if_ours(d, DIR_MODE)
    _chmod_if_ours(p, DIR_MODE)
    return p


def private_file(path: str | Path) -> Path:
    """Create `path` empty as 0600 if missing (in a private directory); tighten it to 0600 if it exists."""
    p = Path(path)
    private_dir(p.parent)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, FILE_MODE))
    _chmod_if_ours(p, FILE_MODE)
    return p


def write_private(path: str | Path, text: str) -> Path:
    """Write a text file as 0600 in a 0700 folder, replacing it atomically."""
    p = Path(path)
    private_dir(p.parent)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, FILE_MODE)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, p)
    return p


@dataclass(frozen=True)
class AwsLogsTarget:
    """Where ECS's awslogs driver sends one container's output."""

    container: str
    group: str
    region: str | None
    stream_prefix: str | None

    def stream(self, task_id: str) -> str | None:
        """`prefix/container/task-id` (None without a stream prefix: ECS names it by Docker id)."""
        return f"{self.stream_prefix}/{self.container}/{task_id}" if self.stream_prefix else None


def awslogs_targets(task_definition: dict[str, Any]) -> list[AwsLogsTarget]:
    """The awslogs configuration of every container of a task definition that has one."""
    out = []
    for cd in task_definition.get("containerDefinitions", []):
        lc = cd.get("logConfiguration") or {}
        opts = lc.get("options") or {}
        if lc.get("logDriver") != "awslogs" or not opts.get("awslogs-group"):
            continue
        out.append(
            AwsLogsTarget(
                container=str(cd.get("name", "")),
                group=str(opts["awslogs-group"]),
                region=opts.get("awslogs-region"),
                stream_prefix=opts.get("awslogs-stream-prefix") or None,
            )
        )
    return out
