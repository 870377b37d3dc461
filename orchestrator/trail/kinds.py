"""The kinds of trail events: one enum, values identical to the strings stored in the journal."""

from __future__ import annotations

from enum import Enum


class EventKind(str, Enum):
    """What a trail event records. A str subclass: `EventKind.GATE_PASSED == "gate_passed"` holds."""

    RUN_STARTED = "run_started"
    PHASE_STARTED = "phase_started"
    IMAGE_READY = "image_ready"
    REVISION_REGISTERED = "revision_registered"
    REVISION_REUSED = "revision_reused"
    SERVICE_UPDATED = "service_updated"
    SERVICE_CREATED = "service_created"
    SERVICE_UNCHANGED = "service_unchanged"
    GATE_PASSED = "gate_passed"
    GATE_FAILED = "gate_failed"
    BAKE_DONE = "bake_done"
    PHASE_PASSED = "phase_passed"
    PHASE_FAILED = "phase_failed"
    PHASE_SKIPPED = "phase_skipped"
    DECISION = "decision"
    DIAGNOSIS = "diagnosis"  # what explains a failure, recorded after the rollback began
    BLOCKED = "blocked"  # a quarantined or held release was not deployed
    MARKED = "marked"  # a verdict (failed / held / released) written on a revision
    WARNING = "warning"  # something the run survived but a person should know (e.g. tagging denied)
    ROLLBACK_STARTED = "rollback_started"
    ROLLBACK_VERIFIED = "rollback_verified"
    ROLLBACK_FAILED = "rollback_failed"
    ROLLBACK_IMPOSSIBLE = "rollback_impossible"
    PAUSED = "paused"
    NOOP = "noop"
    RUN_FINISHED = "run_finished"
    RECONCILED = "reconciled"
    LOCK_TAKEN_OVER = "lock_taken_over"
    INTERRUPTED = "interrupted"
    UNLOCKED = "unlocked"  # `snail unlock --force` writes it (orchestrator/cli/unlock.py)
    RELEASED = "released"  # `snail release` lifted a hold (orchestrator/cli/release.py)
    NOTIFIED = "notified"  # a notification was sent (orchestrator/notify/send.py)
    NOTIFY_FAILED = "notify_failed"  # a notification could not be sent
    SUPERSEDED = "superseded"  # another actor's deployment replaced ours: stopped judging, nothing rolled back
    TRAFFIC_SHIFTED = "traffic_shifted"  # strategies: data {"traffic": {"blue": pct, "green": pct}}

    def __str__(self) -> str:
        return self.value


def kind_of(value: str) -> EventKind | None:
    """The EventKind for a stored string, None for a kind this version does not know (older/newer journals)."""
    try:
        return EventKind(value)
    except ValueError:
        return None
