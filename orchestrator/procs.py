"""Processes on this host: is a recorded pid still the live process it was?"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path


def process_start(pid: int) -> int | None:
    """When the process started, in clock ticks since boot (/proc/PID/stat field 22); None if unknown.

    A pid and its start time name one process: a recycled pid has a different start time."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


@lru_cache(maxsize=1)
def boot_id() -> str:
    """This boot of this host (pids and monotonic clocks mean nothing across a reboot); '' if unknown."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def pid_alive(pid: int, started: int | None = None) -> bool:
    """The process exists, is not a zombie, and (when `started` is given) is the one that started then."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            try:
                os.waitpid(pid, os.WNOHANG)  # reap it if it is our child
            except ChildProcessError:
                pass
            return False
    except OSError:
        pass
    if started is not None:
        now = process_start(pid)
        if now is not None and now != started:
            return False  # the pid was recycled: the process we recorded is gone
    return True
