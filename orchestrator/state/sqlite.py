"""The embedded default state store: SQLite in .snail/, WAL + immediate transactions, safe for two processes.

One connection per thread (the lease heartbeat runs in its own thread and never shares the main thread's
transaction), a busy timeout after which "database is locked" is a StateBusy error, and a file that is not a
whole snail state database (empty, truncated, garbage, a folder, another schema, bad JSON) is StateCorrupt."""

from __future__ import annotations

import functools
import json
import os
import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from orchestrator.errors import Locked, StateBusy, StateCorrupt
from orchestrator.state.base import (
    GoodRecord,
    LockRow,
    Mark,
    RunRecord,
    StepRecord,
    TrailEvent,
    good_from_marks,
    parse_token,
)

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
  service TEXT PRIMARY KEY, run_id TEXT NOT NULL, holder TEXT NOT NULL, expires_at REAL NOT NULL,
  beats INTEGER NOT NULL DEFAULT 0, lease REAL NOT NULL DEFAULT 0);
"""

BUSY_TIMEOUT = 30.0  # seconds a write waits for another process's transaction before StateBusy
_MAGIC = b"SQLite format 3\x00"
_CORRUPT_SIGNS = ("not a database", "malformed", "no such table", "no such column", "has no column named")
_F = TypeVar("_F", bound=Callable[..., Any])
_JSON_COLUMNS = {"phases", "intent", "result", "data", "holder"}  # columns that hold JSON (verify parses them)


def recovery(path: Path) -> str:
    """What to do about an unreadable state file."""
    return (
        f"Move it aside (`mv {path} {path}.broken`), then run `snail state sync` to rebuild the good/failed marks "
        "from the task-definition tags in AWS (the old file's runs and trail stay in the moved copy)"
    )


def _corrupt(path: Path, problem: str) -> StateCorrupt:
    return StateCorrupt(str(path), problem, recovery(path))


def inspect_state_file(path: Path) -> str:
    """'absent' or 'present' (a whole SQLite file); StateCorrupt naming the file otherwise. Creates nothing."""
    folder = path.parent
    for parent in (folder, *folder.parents):
        if parent.exists() and not parent.is_dir():
            raise StateCorrupt(
                str(parent),
                "is a file, but snail keeps its state in a folder by that name",
                f"Move the file aside (`mv {parent} {parent}.file`) and run again",
            )
    if path.is_dir():
        raise StateCorrupt(
            str(path),
            "is a folder where the SQLite state file should be",
            f"Move it aside (`mv {path} {path}.dir`) and run `snail state sync` to rebuild the marks from AWS",
        )
    if not path.exists():
        return "absent"
    with path.open("rb") as f:
        header = f.read(100)
    size = path.stat().st_size
    if size == 0:
        raise _corrupt(path, "is empty (0 bytes): the history it held is gone, and snail will not treat it as none")
    if not header.startswith(_MAGIC):
        raise _corrupt(path, "is not an SQLite database (its first bytes are not the SQLite header)")
    page = int.from_bytes(header[16:18], "big") if len(header) >= 18 else 0
    page = 65536 if page == 1 else page
    if len(header) < 100 or page < 512 or size % page:
        raise _corrupt(path, f"is truncated ({size} bytes is not a whole number of {page}-byte pages)")
    return "present"


def _check_file(path: Path) -> bool:
    """Refuse a state path that is not a whole SQLite file; True if the file exists (False: create it)."""
    present = inspect_state_file(path) == "present"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StateCorrupt(
            str(path.parent), f"cannot create the state folder: {exc.strerror}", "Fix its permissions"
        ) from None
    return present


def _create(path: Path) -> None:
    """Create the database whole, then link it into place: nobody ever sees a half-made (0-byte) state file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.new")
    try:
        from orchestrator.state.secure import private_file

        private_file(tmp)  # born 0600 in a 0700 folder; -wal/-shm take the database file's mode
        db = sqlite3.connect(str(tmp), isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)
        finally:
            db.close()
        try:
            os.link(tmp, path)  # atomic, and never replaces a file another process created first
        except FileExistsError:
            pass
    finally:
        tmp.unlink(missing_ok=True)


@functools.lru_cache(maxsize=1)
def _expected_columns() -> dict[str, list[tuple[str, str, int, str | None, int]]]:
    """Every table's columns as SCHEMA declares them: (name, type, notnull, default, primary-key position)."""
    mem = sqlite3.connect(":memory:")
    try:
        mem.executescript(SCHEMA)
        tables = [r[0] for r in mem.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {
            t: [(c[1], c[2], c[3], c[4], c[5]) for c in mem.execute(f"PRAGMA table_info({t})")]
            for t in tables
            if not t.startswith("sqlite_")
        }
    finally:
        mem.close()


def _guard(fn: _F) -> _F:
    @functools.wraps(fn)
    def guarded(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(self, *args, **kwargs)
        except sqlite3.OperationalError as exc:
            text = str(exc)
            if "locked" in text or "busy" in text:
                raise StateBusy(
                    f"state store {self.path} stayed locked by another process for more than "
                    f"{self.busy_timeout:g}s (SQLite: {text}): another snail, or a sqlite3 shell with an open "
                    f"transaction, holds it; `fuser {self.path}` names the process",
                    where=str(self.path),
                ) from None
            if any(sign in text for sign in _CORRUPT_SIGNS):
                raise _corrupt(self.path, f"is not in the shape snail wrote (SQLite: {text})") from None
            raise
        except sqlite3.DatabaseError as exc:
            if any(sign in str(exc) for sign in _CORRUPT_SIGNS):
                raise _corrupt(self.path, f"is damaged (SQLite: {exc})") from None
            raise
        except json.JSONDecodeError as exc:
            raise _corrupt(self.path, f"holds a row whose JSON does not parse ({exc.msg})") from None

    return guarded  # type: ignore[return-value]


def guarded_store(cls: type) -> type:
    """Every public method (and __init__) turns SQLite's and JSON's errors into StateBusy / StateCorrupt."""
    for name, fn in list(vars(cls).items()):
        if callable(fn) and (not name.startswith("_") or name == "__init__") and name != "close":
            setattr(cls, name, _guard(fn))
    return cls


@guarded_store
class SqliteStore:
    """State in one SQLite file; every write is its own short transaction on the calling thread's connection."""

    def __init__(self, path: str | Path, busy_timeout: float = BUSY_TIMEOUT) -> None:
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        if not _check_file(self.path):
            _create(self.path)
        self._migrate()  # first: a file of someone else's shape is refused before anything is written to it
        self._db.execute("PRAGMA journal_mode=WAL")  # kept: a file from an older snail may use a rollback journal
        self._db.executescript(SCHEMA)
        self._adopt_good_rows()

    @property
    def _db(self) -> sqlite3.Connection:
        """This thread's connection (one connection must never interleave two threads' transactions)."""
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(
                str(self.path), timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
            )
            db.row_factory = sqlite3.Row
            self._local.db = db
            with self._connections_lock:
                self._connections.append(db)
        return db

    def _migrate(self) -> None:
        """Add the columns a newer snail declares (with defaults) to existing tables; refuse a table of someone
        else's shape (a key or required column missing) before changing anything."""
        missing: list[tuple[str, str, str]] = []
        for table, columns in _expected_columns().items():
            have = {c["name"] for c in self._db.execute(f"PRAGMA table_info({table})")}
            if not have:
                continue  # absent: SCHEMA creates it
            for name, type_, notnull, default, key in columns:
                if name in have:
                    continue
                if key or (notnull and default is None):
                    raise _corrupt(
                        self.path, f"has a table {table!r} without its column {name!r}: not a snail state file"
                    )
                extra = (" NOT NULL" if notnull else "") + (f" DEFAULT {default}" if default is not None else "")
                missing.append((table, name, f"{type_}{extra}"))
        for table, name, decl in missing:
            with self._tx() as db:
                if name not in {c["name"] for c in db.execute(f"PRAGMA table_info({table})")}:
                    db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {decl}")

    def verify(self) -> None:
        """Read every page (SQLite's quick_check) and parse every JSON column: StateCorrupt naming the file and
        the first bad row if anything is damaged."""
        problems = [r[0] for r in self._db.execute("PRAGMA quick_check").fetchall()]
        if problems != ["ok"]:
            raise _corrupt(self.path, f"is damaged (SQLite quick_check: {'; '.join(problems[:3])})")
        for table, columns in _expected_columns().items():
            for name, *_ in columns:
                if name not in _JSON_COLUMNS:
                    continue
                for rowid, text in self._db.execute(f"SELECT rowid, {name} FROM {table}"):
                    try:
                        json.loads(text if text is not None else "null")
                    except (TypeError, json.JSONDecodeError):
                        raise _corrupt(self.path, f"has a row ({table} #{rowid}) whose {name} is not JSON") from None

    def close(self) -> None:
        """Close every thread's connection to the database."""
        with self._connections_lock:
            for db in self._connections:
                db.close()
            self._connections.clear()
        self._local = threading.local()

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
            return int(cur.lastrowid or 0)  # always set after an INSERT

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
        self.put_mark(Mark.from_good(record))

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
        return [Mark.from_dict(json.loads(r["data"]), active=r["status"] != "INACTIVE") for r in rows]

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
            self.put_mark(Mark.from_good(GoodRecord(**d)))

    # lock (a lease row with a heartbeat counter; orchestrator.engine.lock decides takeovers)
    def acquire_lock(
        self, service: str, holder: dict[str, Any], lease: float, now: float = 0.0
    ) -> dict[str, Any] | None:
        """Take the service's lock if it is free (or already ours); raises Locked naming the holder otherwise."""
        with self._tx() as db:
            row = db.execute("SELECT * FROM locks WHERE service=?", (service,)).fetchone()
            if row is not None and row["run_id"] != holder["run_id"]:
                raise Locked(json.loads(row["holder"]))
            if row is None:
                db.execute(
                    "INSERT INTO locks(service, run_id, holder, expires_at, beats, lease) VALUES (?,?,?,?,0,?)",
                    (service, holder["run_id"], json.dumps(holder), now + lease, lease),
                )
            else:
                db.execute(
                    "UPDATE locks SET holder=?, expires_at=?, lease=?, beats=beats+1 WHERE service=?",
                    (json.dumps(holder), now + lease, lease, service),
                )
            return None

    def heartbeat(self, service: str, run_id: str, lease: float, now: float = 0.0) -> bool:
        """Renew our lease (its counter moves); False if we no longer hold it."""
        with self._tx() as db:
            cur = db.execute(
                "UPDATE locks SET beats=beats+1, expires_at=?, lease=? WHERE service=? AND run_id=?",
                (now + lease, lease, service, run_id),
            )
            return cur.rowcount == 1

    def release_lock(self, service: str, run_id: str) -> None:
        """Give the lease back (only if we hold it)."""
        with self._tx() as db:
            db.execute("DELETE FROM locks WHERE service=? AND run_id=?", (service, run_id))

    def lock_state(self, service: str) -> LockRow | None:
        """The lock row as stored (no judgement of expiry), or None if the lock is free."""
        row = self._db.execute("SELECT * FROM locks WHERE service=?", (service,)).fetchone()
        if row is None:
            return None
        return LockRow(
            service, row["run_id"], json.loads(row["holder"]), int(row["beats"]), float(row["lease"]), row["expires_at"]
        )

    def lock_holder(self, service: str, now: float = 0.0) -> dict[str, Any] | None:
        """Who holds the lock, with its heartbeat counter (None if free); expiry is for an observer to judge."""
        row = self.lock_state(service)
        return row.holder_view() if row else None

    def take_over(
        self, service: str, expected_holder_token: str, new_holder: dict[str, Any], lease: float, now: float = 0.0
    ) -> bool:
        """Replace the holder in one conditional write: only if the row still carries the token observed."""
        run_id, beats = parse_token(expected_holder_token)
        with self._tx() as db:
            cur = db.execute(
                "UPDATE locks SET run_id=?, holder=?, expires_at=?, lease=?, beats=0 "
                "WHERE service=? AND run_id=? AND beats=?",
                (new_holder["run_id"], json.dumps(new_holder), now + lease, lease, service, run_id, beats),
            )
            return cur.rowcount == 1

    def force_unlock(self, service: str, expected_holder_token: str | None = None) -> dict[str, Any] | None:
        """Remove the lock (only if it still carries the token, when given); returns whose lock was removed."""
        with self._tx() as db:
            row = db.execute("SELECT * FROM locks WHERE service=?", (service,)).fetchone()
            if row is None:
                return None
            if expected_holder_token is not None and expected_holder_token != f"{row['run_id']}#{row['beats']}":
                return None
            db.execute("DELETE FROM locks WHERE service=?", (service,))
            return json.loads(row["holder"])
