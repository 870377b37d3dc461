"""The fleet journal: the current fleet run, every earlier one, and the releases quarantined fleet-wide.

Local backend: one JSON document under the fleet's state folder, replaced atomically after every transition
(write to a temporary file, fsync, rename), so a kill -9 at any point leaves the last recorded value. The fleet's
own lock is an flock on a file beside it: held for the life of the process, released by the kernel when the
process dies, so a killed fleet run never leaves the line locked."""

from __future__ import annotations

import fcntl
import json
import os
from typing import Any

from orchestrator.errors import ExitCode, SnailError
from orchestrator.fleet.decide import FleetRun
from orchestrator.fleet.model import Fleet


class FleetLocked(SnailError):
    """Another fleet run holds this fleet's lock."""

    exit_code = ExitCode.LOCKED


class FleetJournal:
    """Read and write the fleet journal of one fleet.yaml (local backend)."""

    def __init__(self, fleet: Fleet) -> None:
        self.dir = fleet.state_dir() / "fleet"
        self.path = self.dir / "journal.json"
        self._lock_fd: int | None = None

    # ---------------------------------------------------------------- the document
    def _read(self) -> dict[str, Any]:
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {"current": None, "history": [], "quarantined": {}}

    def _write(self, doc: dict[str, Any]) -> None:
        from orchestrator.state.secure import private_dir

        private_dir(self.dir)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1, sort_keys=True, default=str)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def current(self) -> FleetRun | None:
        """The latest fleet run (finished or not)."""
        data = self._read().get("current")
        return FleetRun.from_dict(data) if data else None

    def history(self) -> list[dict[str, Any]]:
        """Earlier fleet runs, oldest first (their summaries)."""
        return list(self._read().get("history") or [])

    def save(self, run: FleetRun) -> None:
        """Record the run's current value (after every transition)."""
        doc = self._read()
        old = doc.get("current")
        if old and old.get("run_id") != run.run_id:
            doc["history"] = [*doc.get("history", []), _summary(old)][-200:]
        doc["current"] = run.to_dict()
        self._write(doc)

    def quarantined(self) -> dict[str, str]:
        """release -> why it is quarantined fleet-wide."""
        return dict(self._read().get("quarantined") or {})

    def quarantine(self, release: str, reason: str) -> None:
        """No target anywhere deploys `release` again until it changes or `--retry-failed`."""
        doc = self._read()
        doc["quarantined"] = {**(doc.get("quarantined") or {}), release: reason}
        self._write(doc)

    def lift(self, release: str) -> None:
        """`--retry-failed`: the release may be tried again."""
        doc = self._read()
        (doc.get("quarantined") or {}).pop(release, None)
        self._write(doc)

    # ---------------------------------------------------------------- a stop asked for by another process
    def request_stop(self, reason: str, by: str) -> None:
        """`snail fleet stop` while a fleet run holds the lock: that run stops the line at its next step."""
        from orchestrator.state.secure import private_dir

        private_dir(self.dir)
        (self.dir / "stop").write_text(json.dumps({"reason": reason, "by": by}), encoding="utf-8")

    def stop_requested(self) -> dict[str, Any] | None:
        """The pending stop request, if any."""
        try:
            return json.loads((self.dir / "stop").read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return None

    def clear_stop(self) -> None:
        """The request was acted on."""
        (self.dir / "stop").unlink(missing_ok=True)

    # ---------------------------------------------------------------- the lock
    def lock(self) -> None:
        """Take the fleet's lock (exit 4 naming the holder if another fleet run has it)."""
        from orchestrator.state.secure import private_dir

        private_dir(self.dir)
        fd = os.open(self.dir / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise FleetLocked(f"another fleet run holds this fleet's lock ({holder}); try again when it ends") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}".encode())
        self._lock_fd = fd

    def unlock(self) -> None:
        """Release the fleet's lock."""
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None


def _summary(run: dict[str, Any]) -> dict[str, Any]:
    return {k: run.get(k) for k in ("run_id", "release", "status", "stopped", "started_at")}
