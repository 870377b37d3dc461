"""The local spool: what a run could not write to its state store (an outage, expired credentials) waits here.

A rollback never waits for the store (the journal lets it act unrecorded); what it would have written, the trail
events, steps, verdict marks, how the run ended and the lock's release, is kept in one JSON file per run under
the local state folder, and the next run on this machine replays it before it plans (so the plan sees the
quarantine mark, and the history shows how the run ended). A replay that fails leaves the rest for later;
what was written is dropped from the file first, so nothing is written twice."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import structlog

from orchestrator.state.base import Mark, StateStore, TrailEvent

log = structlog.get_logger(__name__)


class Spool:
    """One file per run: `<state dir>/spool/<run_id>.json`."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def _path(self, run_id: str) -> Path:
        return self.folder / f"{run_id}.json"

    def keep(self, run_id: str, service: str, entries: list[dict[str, Any]]) -> Path | None:
        """Write what the store did not take (atomically); None when it could not be kept either."""
        if not entries:
            return None
        path = self._path(run_id)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.new")
            tmp.write_text(json.dumps({"run_id": run_id, "service": service, "entries": entries}, default=str))
            os.replace(tmp, path)
        except OSError as exc:  # the structured log already carries every event
            log.error("spool_not_kept", run_id=run_id, error=str(exc))
            return None
        return path

    def pending(self, service: str) -> list[Path]:
        """The spooled runs of a service, oldest first (run ids sort by time)."""
        out = []
        for path in sorted(self.folder.glob("*.json")) if self.folder.is_dir() else []:
            try:
                if json.loads(path.read_text()).get("service") == service:
                    out.append(path)
            except (OSError, ValueError):
                continue
        return out

    def replay(self, store: StateStore, service: str) -> list[str]:
        """Write every spooled record of `service` to the store; the run ids fully replayed. Stops at the first
        refused write (the store is still out) and keeps the rest."""
        done: list[str] = []
        for path in self.pending(service):
            data = json.loads(path.read_text())
            entries: list[dict[str, Any]] = data["entries"]
            try:
                while entries:
                    _apply(store, entries[0])
                    entries.pop(0)
                    if entries:
                        path.write_text(json.dumps({**data, "entries": entries}, default=str))
            except Exception as exc:  # noqa: BLE001 - still out: the next run tries again
                log.warning("spool_replay_stopped", run_id=data.get("run_id"), error=f"{type(exc).__name__}: {exc}")
                return done
            path.unlink(missing_ok=True)
            done.append(str(data.get("run_id")))
            log.info("spool_replayed", run_id=data.get("run_id"))
        return done


def event_entry(ev: TrailEvent) -> dict[str, Any]:
    """A trail event, spooled."""
    return {"kind": "event", "event": asdict(ev)}


def step_entry(run_id: str, begun: tuple[Any, ...], outcome: str, result: dict[str, Any]) -> dict[str, Any]:
    """A whole step (intent and result), spooled."""
    phase, kind, intent, at = begun
    return {
        "kind": "step",
        "run_id": run_id,
        "phase": phase,
        "step": kind,
        "intent": intent,
        "at": at,
        "outcome": outcome,
        "result": result,
    }


def mark_entry(mark: Mark) -> dict[str, Any]:
    """A verdict mark, spooled (its tags on AWS were written, or warned about, by the run)."""
    return {"kind": "mark", "mark": mark.to_dict()}


def finish_entry(run_id: str, status: str, exit_code: int, message: str, at: str) -> dict[str, Any]:
    """How the run ended, spooled."""
    return {"kind": "finish", "run_id": run_id, "status": status, "exit_code": exit_code, "message": message, "at": at}


def release_entry(service: str, run_id: str) -> dict[str, Any]:
    """The lock's release (conditional on the holder: a lock taken over since is left alone)."""
    return {"kind": "release", "service": service, "run_id": run_id}


def _apply(store: StateStore, e: dict[str, Any]) -> None:
    kind = e["kind"]
    if kind == "event":
        store.append_event(TrailEvent(**e["event"]))
    elif kind == "step":
        step_id = store.begin_step(e["run_id"], e["phase"], e["step"], e["intent"], e["at"])
        store.end_step(step_id, e["outcome"], e["result"], e["at"])
    elif kind == "mark":
        store.put_mark(Mark.from_dict(e["mark"]))
    elif kind == "finish":
        run = store.get_run(e["run_id"])
        if run is None or run.status == "running":  # a later run may have reconciled it already
            store.finish_run(e["run_id"], e["status"], e["exit_code"], e["message"], e["at"])
    elif kind == "release":
        store.release_lock(e["service"], e["run_id"])
