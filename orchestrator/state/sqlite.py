"""The embedded default state store: SQLite in .snail/, WAL + immediate transactions, safe for two processes."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from orchestrator.errors import Locked
from orchestrator.state.base import GOOD, GoodRecord, Mark, RunRecord, StepRecord, TrailEvent, good_from_marks

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
  run_id TEXT PRIMARY KEY, service TEXT NOT NULL, command TEXT NOT NULL, status TEXT NOT NULL,
  started_at TEXT NOT NULL, finished_at TEXT, exit_code INTEGER, message TEXT DEFAULT '',
  user TEXT DEFAULT '', host TEXT DEFAULT '', phases TEXT DEFAULT '[]');
CREATE INDEX IF NOT EXISTS runs_by_service ON runs(service, started_at);
CREATE TABLE IF NOT EXISTS steps (
  step_id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, service TEXT NOT NULL, phase TEXT,
  kind TEXT NOT NULL, intent TEXT NOT NULL, started_at TEXT NOT NULL, outcome TEXT, result TEXT DEFAULT '{}',
  finished_at TEXT);
CREATE INDEX IF NOT EXISTS steps_by_run ON steps(run_id);
CREATE TABLE IF NOT EXISTS events (
  id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, service TEXT NOT NULL, phase TEXT,
  at TEXT NOT NULL, kind TEXT NOT NULL, message TEXT NOT NULL, data TEXT DEFAULT '{}');
CREATE INDEX IF NOT EXISTS events_by_service ON events(service, id);
CREATE TABLE IF NOT EXISTS good (
  id INTEGER PRIMARY KEY AUTOINCREMENT, service TEXT NOT NULL, phase TEXT NOT NULL, revision_arn TEXT NOT NULL,
  image TEXT NOT NULL, digest TEXT, run_id TEXT NOT NULL, at TEXT NOT NULL, spec_hash TEXT DEFAULT '');
CREATE INDEX IF NOT EXISTS good_by_service ON good(service, id);
CREATE TABLE IF NOT EXISTS marks (
  id INTEGER PRIMARY KEY AUTOINCREMENT, service TEXT NOT NULL, revision_arn TEXT NOT NULL, verdict TEXT NOT NULL,
  at TEXT NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS marks_by_service ON marks(service, at, id);
CREATE TABLE IF NOT EXISTS revisions (
  service TEXT NOT NULL, revision_arn TEXT NOT NULL, status TEXT NOT NULL, PRIMARY KEY (service, revision_arn));
CREATE TABLE IF NOT EXISTS locks (
  service TEXT PRIMARY KEY, run_id TEXT NOT NULL, holder TEXT NOT NULL, expires_at REAL NOT NULL);
"""


class SqliteStore:
    """State in one SQLite file; every write is its own short transaction."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(self.path), timeout=30, isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=30000")
        self._db.executescript(SCHEMA)
        self._adopt_good_rows()

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        # BEGIN IMMEDIATE takes the write lock up front, so two processes never interleave a read-then-write.
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        else:
            self._db.execute("COMMIT")

    # runs
    def start_run(self, run: RunRecord) -> None:
        """Record a new run as running."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO runs(run_id, service, command, status, started_at, user, host, phases) VALUES (?,?,?,?,?,?,?,?)",
                (
                    run.run_id,
                    run.service,
                    run.command,
                    run.status,
                    run.started_at,
                    run.user,
                    run.host,
                    json.dumps(run.phases),
                ),
            )

    def finish_run(self, run_id: str, status: str, exit_code: int, message: str, at: str) -> None:
        """Record how a run ended."""
        with self._tx() as db:
            db.execute(
                "UPDATE runs SET status=?, exit_code=?, message=?, finished_at=? WHERE run_id=?",
                (status, exit_code, message, at, run_id),
            )

    def _run(self, row: sqlite3.Row) -> RunRecord:
        d = dict(row)
        d["phases"] = json.loads(d.get("phases") or "[]")
        return RunRecord(**d)

    def get_run(self, run_id: str) -> RunRecord | None:
        """One run by id (a unique prefix works too)."""
        row = self._db.execute("SELECT * FROM runs WHERE run_id=?", (run_id,)).fetchone()
        if row is None:
            rows = self._db.execute("SELECT * FROM runs WHERE run_id LIKE ?", (run_id + "%",)).fetchall()
            row = rows[0] if len(rows) == 1 else None
        return self._run(row) if row else None

    def runs(self, service: str, limit: int = 20) -> list[RunRecord]:
        """Runs of a service, newest first."""
        rows = self._db.execute(
            "SELECT * FROM runs WHERE service=? ORDER BY started_at DESC, rowid DESC LIMIT ?", (service, limit)
        ).fetchall()
        return [self._run(r) for r in rows]

    # steps
    def begin_step(self, run_id: str, phase: str | None, kind: str, intent: dict[str, Any], at: str) -> int:
        """Write the intent of a mutation before acting; returns the step id."""
        with self._tx() as db:
            svc = db.execute("SELECT service FROM runs WHERE run_id=?", (run_id,)).fetchone()
            cur = db.execute(
                "INSERT INTO steps(run_id, service, phase, kind, intent, started_at) VALUES (?,?,?,?,?,?)",
                (run_id, svc["service"] if svc else "", phase, kind, json.dumps(intent, default=str), at),
            )
            return int(cur.lastrowid)

    def end_step(self, step_id: int, outcome: str, result: dict[str, Any], at: str) -> None:
        """Write the result of a mutation after acting."""
        with self._tx() as db:
            db.execute(
                "UPDATE steps SET outcome=?, result=?, finished_at=? WHERE step_id=?",
                (outcome, json.dumps(result, default=str), at, step_id),
            )

    def _step(self, row: sqlite3.Row) -> StepRecord:
        d = dict(row)
        d.pop("service", None)
        d["intent"] = json.loads(d["intent"])
        d["result"] = json.loads(d["result"] or "{}")
        return StepRecord(**d)

    def steps(self, run_id: str) -> list[StepRecord]:
        """A run's steps in order."""
        rows = self._db.execute("SELECT * FROM steps WHERE run_id=? ORDER BY step_id", (run_id,)).fetchall()
        return [self._step(r) for r in rows]

    def open_steps(self, service: str) -> list[StepRecord]:
        """Steps whose intent was written but whose result never was (a crash mid-mutation)."""
        rows = self._db.execute(
            "SELECT * FROM steps WHERE service=? AND outcome IS NULL ORDER BY step_id", (service,)
        ).fetchall()
        return [self._step(r) for r in rows]

    # events
    def append_event(self, event: TrailEvent) -> None:
        """Append one journal line."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO events(run_id, service, phase, at, kind, message, data) VALUES (?,?,?,?,?,?,?)",
                (
                    event.run_id,
                    event.service,
                    event.phase,
                    event.at,
                    event.kind,
                    event.message,
                    json.dumps(event.data, default=str),
                ),
            )

    def events(self, service: str, run_id: str | None = None) -> list[TrailEvent]:
        """Journal lines, oldest first (one run's, or the service's whole trail)."""
        if run_id:
            rows = self._db.execute("SELECT * FROM events WHERE run_id=? ORDER BY id", (run_id,)).fetchall()
        else:
            rows = self._db.execute("SELECT * FROM events WHERE service=? ORDER BY id", (service,)).fetchall()
        out = []
        for r in rows:
            d = dict(r)
            d.pop("id")
            d["data"] = json.loads(d["data"] or "{}")
            out.append(TrailEvent(**d))
        return out

    # good revisions and marks (good_history = revisions whose newest mark is good)
    def mark_good(self, record: GoodRecord) -> None:
        """Record that a revision passed our gates for a phase (a good mark)."""
        self.put_mark(_good_mark(record))

    def last_good(self, service: str, phase: str | None = None) -> GoodRecord | None:
        """The most recent good revision of the service (or of one phase)."""
        return next((g for g in self.good_history(service) if phase is None or g.phase == phase), None)

    def good_history(self, service: str) -> list[GoodRecord]:
        """Revisions whose newest mark is good, newest first."""
        return good_from_marks(self.marks(service))

    def put_mark(self, mark: Mark) -> None:
        """Journal one verdict on a revision."""
        data = {k: v for k, v in mark.to_dict().items() if k != "active"}
        with self._tx() as db:
            db.execute(
                "INSERT INTO marks(service, revision_arn, verdict, at, data) VALUES (?,?,?,?,?)",
                (mark.service, mark.revision_arn, mark.verdict, mark.at, json.dumps(data, default=str)),
            )

    def marks(self, service: str) -> list[Mark]:
        """Every mark of the service, newest first; `active` is False for revisions known to be deregistered."""
        rows = self._db.execute(
            "SELECT m.data, r.status FROM marks m LEFT JOIN revisions r "
            "ON r.service = m.service AND r.revision_arn = m.revision_arn "
            "WHERE m.service=? ORDER BY m.at DESC, m.id DESC",
            (service,),
        ).fetchall()
        return [Mark(**json.loads(r["data"]), active=r["status"] != "INACTIVE") for r in rows]

    def cached_revisions(self, service: str) -> dict[str, str]:
        """Revisions a sync already described (or a mark was written for): ARN -> ACTIVE | INACTIVE."""
        rows = self._db.execute("SELECT revision_arn, status FROM revisions WHERE service=?", (service,)).fetchall()
        return {r["revision_arn"]: r["status"] for r in rows}

    def cache_revisions(self, service: str, statuses: dict[str, str]) -> None:
        """Remember revisions as described (ARN -> ACTIVE | INACTIVE), in one transaction."""
        with self._tx() as db:
            db.executemany(
                "INSERT OR REPLACE INTO revisions(service, revision_arn, status) VALUES (?,?,?)",
                [(service, arn, status) for arn, status in statuses.items()],
            )

    def _adopt_good_rows(self) -> None:
        """A store written before marks existed: its good rows become good marks, once."""
        if self._db.execute("SELECT 1 FROM marks LIMIT 1").fetchone() is not None:
            return
        rows = self._db.execute("SELECT * FROM good ORDER BY id").fetchall()
        for r in rows:
            d = dict(r)
            d.pop("id")
            d.pop("gates", None)
            self.put_mark(_good_mark(GoodRecord(**d)))

    # lock
    def acquire_lock(self, service: str, holder: dict[str, Any], lease: float, now: float) -> dict[str, Any] | None:
        """Take the service's lease; raises Locked if a live holder has it. Returns an expired holder taken over."""
        with self._tx() as db:
            row = db.execute("SELECT * FROM locks WHERE service=?", (service,)).fetchone()
            taken_over = None
            if row is not None:
                if row["expires_at"] > now and row["run_id"] != holder["run_id"]:
                    raise Locked(json.loads(row["holder"]))
                taken_over = json.loads(row["holder"])
            db.execute(
                "INSERT OR REPLACE INTO locks(service, run_id, holder, expires_at) VALUES (?,?,?,?)",
                (service, holder["run_id"], json.dumps(holder), now + lease),
            )
            return taken_over if taken_over and taken_over.get("run_id") != holder["run_id"] else None

    def heartbeat(self, service: str, run_id: str, lease: float, now: float) -> bool:
        """Extend our lease; False if we no longer hold it."""
        with self._tx() as db:
            cur = db.execute(
                "UPDATE locks SET expires_at=? WHERE service=? AND run_id=?", (now + lease, service, run_id)
            )
            return cur.rowcount == 1

    def release_lock(self, service: str, run_id: str) -> None:
        """Give the lease back (only if we hold it)."""
        with self._tx() as db:
            db.execute("DELETE FROM locks WHERE service=? AND run_id=?", (service, run_id))

    def lock_holder(self, service: str, now: float) -> dict[str, Any] | None:
        """Who holds the lease now (None if free or expired)."""
        row = self._db.execute("SELECT * FROM locks WHERE service=?", (service,)).fetchone()
        if row is None or row["expires_at"] <= now:
            return None
        return {**json.loads(row["holder"]), "expires_at": row["expires_at"]}

    def force_unlock(self, service: str) -> dict[str, Any] | None:
        """Remove the lease whoever holds it; returns who did."""
        with self._tx() as db:
            row = db.execute("SELECT * FROM locks WHERE service=?", (service,)).fetchone()
            db.execute("DELETE FROM locks WHERE service=?", (service,))
            return json.loads(row["holder"]) if row else None


def _good_mark(record: GoodRecord) -> Mark:
    """A GoodRecord as a good mark (it went live when it was marked, as far as this record knows)."""
    return Mark(
        service=record.service,
        revision_arn=record.revision_arn,
        phase=record.phase,
        verdict=GOOD,
        spec_hash=record.spec_hash,
        gates=list(record.gates),
        at=record.at,
        run_id=record.run_id,
        live_since=record.at,
        image=record.image,
        digest=record.digest,
    )
