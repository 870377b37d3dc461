"""The lease heartbeat that keeps a run's lock alive while it works."""

from __future__ import annotations

import threading
import time
from typing import Any

from orchestrator.state.base import StateStore


class Heartbeat:
    """Keeps the lease alive while a run works (a dead process stops renewing, so its lease expires)."""

    def __init__(self, store: StateStore, service: str, run_id: str, lease: float) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, args=(store, service, run_id, lease), daemon=True)

    def _beat(self, store: StateStore, service: str, run_id: str, lease: float) -> None:
        while not self._stop.wait(max(1.0, lease / 3)):
            try:
                store.heartbeat(service, run_id, lease, time.time())
            except Exception:  # a missed beat is survivable: the lease still has two thirds left
                pass

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
