"""The shared state store: one DynamoDB table (single-table design) for runners on many machines.

Items (string keys `pk`/`sk`; sequences are zero-padded so string order is numeric order):

    pk=RUN#<run_id>      sk=RUN                        the run record (the truth for finish_run/get_run)
    pk=RUNS              sk=RUN#<run_id>               id directory: get_run by a unique prefix
    pk=SVC#<service>     sk=RUN#<started_at>#<seq>     runs of a service, newest first (points at the run)
    pk=RUN#<run_id>      sk=STEP#<step_id>             a step: intent, then outcome and result
    pk=STEP#<step_id>    sk=STEP                       where a step lives (end_step only knows its id)
    pk=SVC#<service>     sk=OPEN#<step_id>             marker while a step is in flight (open_steps)
    pk=SVC#<service>     sk=EVT#<seq>                  trail events in the order their sequence was taken
    pk=SVC#<service>     sk=GOOD#<seq>                 revisions that passed our gates (before marks: adopted as marks by the first read)
    pk=SVC#<service>     sk=MARK#<at>#<ns>             verdict marks (good/failed/held/released), in time order
    pk=SVC#<service>     sk=REV#<revision arn>         the revision cache of `snail state sync`: ACTIVE | INACTIVE
    pk=SVC#<service>     sk=LOCK                       the lease: run_id, holder (JSON), expires_at
    pk=SVC#<service>     sk=SEQ#RUN|SEQ#EVT|SEQ#GOOD   atomic counters (UpdateItem ADD)
    pk=SEQ               sk=STEP                       the table-wide step id counter

Every read is strongly consistent: a runner must see the lock and the steps another runner just wrote.
"""

from __future__ import annotations

import functools
import json
import time
from typing import Any

import structlog

from orchestrator.aws.dynamodb import DynamoTable, item, key, plain, value
from orchestrator.errors import Locked, StateCorrupt, UsageError
from orchestrator.state.base import (
    GOOD,
    GoodRecord,
    LockRow,
    Mark,
    RunRecord,
    StepRecord,
    TrailEvent,
    good_from_marks,
    parse_token,
)

_PAD = 12

log = structlog.get_logger(__name__)


# ---------------------------------------------------------------- the table
def create_table(client: Any, table: str, wait_delay: float = 2.0, wait_attempts: int = 150) -> dict[str, Any]:
    """Create the state table if it does not exist (idempotent) and wait until it is ACTIVE."""
    return DynamoTable(client, table).create(wait_delay, wait_attempts)


def table_status(client: Any, table: str) -> str | None:
    """The table's status (ACTIVE, CREATING, ...), or None if it does not exist."""
    return DynamoTable(client, table).status()


def create_table_cli(table: str, region: str | None = None) -> str:
    """The AWS CLI commands that create the same table as `create_table`."""
    reg = f" --region {region}" if region else ""
    return (
        f"aws dynamodb create-table --table-name {table}"
        " --attribute-definitions AttributeName=pk,AttributeType=S AttributeName=sk,AttributeType=S"
        " --key-schema AttributeName=pk,KeyType=HASH AttributeName=sk,KeyType=RANGE"
        f" --billing-mode PAY_PER_REQUEST{reg}\n"
        f"aws dynamodb wait table-exists --table-name {table}{reg}"
    )


def _seq(n: int) -> str:
    return str(n).zfill(_PAD)


def _guarded(fn: Any) -> Any:
    @functools.wraps(fn)
    def guarded(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(self, *args, **kwargs)
        except json.JSONDecodeError as exc:
            raise StateCorrupt(
                f"DynamoDB table {self.table}",
                f"holds an item whose JSON does not parse ({exc.msg})",
                "Find it with `aws dynamodb scan`, delete or fix it; `snail state sync` rebuilds the marks from AWS",
            ) from None

    return guarded


def guarded_store(cls: type) -> type:
    """Every public method turns an item whose JSON does not parse into StateCorrupt naming the table."""
    for name, fn in list(vars(cls).items()):
        if callable(fn) and not name.startswith("_"):
            setattr(cls, name, _guarded(fn))
    return cls


@guarded_store
class DynamoStore:
    """State in one DynamoDB table, shared by every runner; the lock and transitions are conditional writes."""

    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table
        self.db = DynamoTable(client, table)
        self._service_of_run: dict[str, str] = {}
        self._step_home: dict[int, tuple[str, str]] = {}  # step_id -> (run_id, service)

    def close(self) -> None:
        """Nothing to close (the client is shared); here for parity with SqliteStore."""

    def start_run(self, run: RunRecord) -> None:
        """Record a new run as running (its id must be new)."""
        seq = self.db.next(f"SVC#{run.service}", "SEQ#RUN")
        index_sk = f"RUN#{run.started_at}#{_seq(seq)}"
        record = item(
            pk=f"RUN#{run.run_id}",
            sk="RUN",
            run_id=run.run_id,
            service=run.service,
            command=run.command,
            status=run.status,
            started_at=run.started_at,
            user=run.user,
            host=run.host,
            message=run.message,
            finished_at=run.finished_at,
            exit_code=run.exit_code,
            phases=json.dumps(run.phases),
            index_sk=index_sk,
        )
        ok = self.db.transact(
            "dynamodb:TransactWriteItems",
            [
                {"Put": {"TableName": self.table, "Item": record, "ConditionExpression": "attribute_not_exists(pk)"}},
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": item(pk="RUNS", sk=f"RUN#{run.run_id}", service=run.service),
                    }
                },
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": item(pk=f"SVC#{run.service}", sk=index_sk, run_id=run.run_id),
                    }
                },
            ],
        )
        if not ok:
            raise UsageError(f"run {run.run_id} is already recorded in {self.table}")
        self._service_of_run[run.run_id] = run.service

    def finish_run(self, run_id: str, status: str, exit_code: int, message: str, at: str) -> None:
        """Record how a run ended (a conditional write: never creates a run that was not started)."""
        ok, _ = self.db.conditional(
            "UpdateItem",
            Key=key(f"RUN#{run_id}", "RUN"),
            UpdateExpression="SET #status = :s, exit_code = :c, message = :m, finished_at = :at",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":s": value(status),
                ":c": value(exit_code),
                ":m": value(message),
                ":at": value(at),
            },
        )
        if not ok:
            log.warning("state_finish_unknown_run", run_id=run_id, table=self.table)

    @staticmethod
    def _run(d: dict[str, Any]) -> RunRecord:
        return RunRecord(
            run_id=d["run_id"],
            service=d["service"],
            command=d["command"],
            status=d["status"],
            started_at=d["started_at"],
            user=d.get("user", ""),
            host=d.get("host", ""),
            finished_at=d.get("finished_at"),
            exit_code=d.get("exit_code"),
            message=d.get("message", ""),
            phases=json.loads(d.get("phases") or "[]"),
        )

    def get_run(self, run_id: str) -> RunRecord | None:
        """One run by id (a unique prefix works too)."""
        d = self.db.get(f"RUN#{run_id}", "RUN")
        if d is None:
            matches = list(self.db.query("RUNS", f"RUN#{run_id}", limit=2))
            if len(matches) != 1:
                return None
            d = self.db.get(f"RUN#{matches[0]['sk'][4:]}", "RUN")
        return self._run(d) if d else None

    def runs(self, service: str, limit: int = 20) -> list[RunRecord]:
        """Runs of a service, newest first."""
        ids = [d["run_id"] for d in self.db.query(f"SVC#{service}", "RUN#", newest_first=True, limit=limit)]
        found = self.db.batch_get([(f"RUN#{r}", "RUN") for r in ids])
        return [self._run(found[(f"RUN#{r}", "RUN")]) for r in ids if (f"RUN#{r}", "RUN") in found]

    # ---------------------------------------------------------------- steps
    def _service(self, run_id: str) -> str:
        if run_id not in self._service_of_run:
            run = self.db.get(f"RUN#{run_id}", "RUN")
            if run is None:
                return ""  # as SqliteStore: a step of an unknown run belongs to no service
            self._service_of_run[run_id] = run["service"]
        return self._service_of_run[run_id]

    def begin_step(self, run_id: str, phase: str | None, kind: str, intent: dict[str, Any], at: str) -> int:
        """Write the intent of a mutation before acting; returns the step id (unique across runners)."""
        service = self._service(run_id)
        step_id = self.db.next("SEQ", "STEP")
        sk = f"STEP#{_seq(step_id)}"
        ok = self.db.transact(
            "dynamodb:TransactWriteItems",
            [
                {
                    "Put": {
                        "TableName": self.table,
                        "ConditionExpression": "attribute_not_exists(pk)",
                        "Item": item(
                            pk=f"RUN#{run_id}",
                            sk=sk,
                            step_id=step_id,
                            run_id=run_id,
                            service=service,
                            phase=phase,
                            kind=kind,
                            intent=json.dumps(intent, default=str),
                            started_at=at,
                        ),
                    }
                },
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": item(pk=f"STEP#{step_id}", sk="STEP", run_id=run_id, service=service),
                    }
                },
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": item(pk=f"SVC#{service}", sk=f"OPEN#{_seq(step_id)}", run_id=run_id, step_id=step_id),
                    }
                },
            ],
        )
        if not ok:  # the counter never hands out an id twice, so this is someone writing to our table by hand
            raise UsageError(f"step {step_id} already exists in {self.table}: the step counter was reset")
        self._step_home[step_id] = (run_id, service)
        return step_id

    def end_step(self, step_id: int, outcome: str, result: dict[str, Any], at: str) -> None:
        """Write the result of a mutation after acting (a conditional write) and clear its open marker."""
        home = self._step_home.get(step_id)
        if home is None:
            ptr = self.db.get(f"STEP#{step_id}", "STEP")
            if ptr is None:
                log.warning("state_end_unknown_step", step_id=step_id, table=self.table)
                return
            home = (ptr["run_id"], ptr["service"])
        run_id, service = home
        ok = self.db.transact(
            "dynamodb:TransactWriteItems",
            [
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": key(f"RUN#{run_id}", f"STEP#{_seq(step_id)}"),
                        "UpdateExpression": "SET outcome = :o, #result = :r, finished_at = :at",
                        "ConditionExpression": "attribute_exists(pk)",
                        "ExpressionAttributeNames": {"#result": "result"},
                        "ExpressionAttributeValues": {
                            ":o": value(outcome),
                            ":r": value(json.dumps(result, default=str)),
                            ":at": value(at),
                        },
                    }
                },
                {"Delete": {"TableName": self.table, "Key": key(f"SVC#{service}", f"OPEN#{_seq(step_id)}")}},
            ],
        )
        if not ok:
            log.warning("state_end_unknown_step", step_id=step_id, table=self.table)

    @staticmethod
    def _step(d: dict[str, Any]) -> StepRecord:
        return StepRecord(
            step_id=int(d["step_id"]),
            run_id=d["run_id"],
            phase=d.get("phase"),
            kind=d["kind"],
            intent=json.loads(d["intent"]),
            started_at=d["started_at"],
            outcome=d.get("outcome"),
            result=json.loads(d.get("result") or "{}"),
            finished_at=d.get("finished_at"),
        )

    def steps(self, run_id: str) -> list[StepRecord]:
        """A run's steps in order."""
        return [self._step(d) for d in self.db.query(f"RUN#{run_id}", "STEP#")]

    def open_steps(self, service: str) -> list[StepRecord]:
        """Steps whose intent was written but whose result never was (a crash mid-mutation)."""
        markers = list(self.db.query(f"SVC#{service}", "OPEN#"))
        keys = [(f"RUN#{m['run_id']}", f"STEP#{_seq(int(m['step_id']))}") for m in markers]
        found = self.db.batch_get(keys)
        out = []
        for m, k in zip(markers, keys, strict=True):
            if k in found and found[k].get("outcome") is None:
                self._step_home[int(m["step_id"])] = (m["run_id"], service)
                out.append(self._step(found[k]))
        return out

    # ---------------------------------------------------------------- events
    def append_event(self, event: TrailEvent) -> None:
        """Append one journal line; its place in the trail is a sequence number no other writer gets."""
        seq = self.db.next(f"SVC#{event.service}", "SEQ#EVT")
        self.db.put(
            ConditionExpression="attribute_not_exists(pk)",
            typed=item(
                pk=f"SVC#{event.service}",
                sk=f"EVT#{_seq(seq)}",
                run_id=event.run_id,
                service=event.service,
                phase=event.phase,
                at=event.at,
                kind=event.kind,
                message=event.message,
                data=json.dumps(event.data, default=str),
            ),
        )

    def events(self, service: str, run_id: str | None = None) -> list[TrailEvent]:
        """Journal lines, oldest first (one run's, or the service's whole trail)."""
        items = self.db.query(f"SVC#{service}", "EVT#", filters={"run_id": run_id} if run_id else None)
        return [
            TrailEvent(
                run_id=d["run_id"],
                service=d["service"],
                at=d["at"],
                kind=d["kind"],
                message=d["message"],
                phase=d.get("phase"),
                data=json.loads(d.get("data") or "{}"),
            )
            for d in items
        ]

    # ---------------------------------------------------------------- good revisions and marks
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
        """Journal one verdict on a revision (one PutItem; the sort key orders marks by time, then write order)."""
        data = {k: v for k, v in mark.to_dict().items() if k != "active"}
        self.db.put(
            item(
                pk=f"SVC#{mark.service}",
                sk=f"MARK#{mark.at}#{time.time_ns():020d}",
                revision_arn=mark.revision_arn,
                verdict=mark.verdict,
                data=json.dumps(data, default=str),
            ),
        )

    def marks(self, service: str) -> list[Mark]:
        """Every mark of the service, newest first; `active` is False for revisions known to be deregistered."""
        inactive = {arn for arn, status in self.cached_revisions(service).items() if status == "INACTIVE"}
        out = []
        for d in self.db.query(f"SVC#{service}", "MARK#", newest_first=True):
            m = Mark.from_dict(json.loads(d["data"]))
            m.active = m.revision_arn not in inactive
            out.append(m)
        if not out:  # a table written before marks: its GOOD# items become good marks, once (the first read)
            legacy = [self._legacy_good(d) for d in self.db.query(f"SVC#{service}", "GOOD#")]
            for g in legacy:
                self.put_mark(
                    Mark(
                        service=g.service,
                        revision_arn=g.revision_arn,
                        phase=g.phase,
                        verdict=GOOD,
                        spec_hash=g.spec_hash,
                        at=g.at,
                        run_id=g.run_id,
                        live_since=g.at,
                        image=g.image,
                        digest=g.digest,
                    )
                )
            if legacy:
                return self.marks(service)
        return out

    @staticmethod
    def _legacy_good(d: dict[str, Any]) -> GoodRecord:
        return GoodRecord(
            service=d["service"],
            phase=d["phase"],
            revision_arn=d["revision_arn"],
            image=d["image"],
            digest=d.get("digest"),
            run_id=d["run_id"],
            at=d["at"],
            spec_hash=d.get("spec_hash", ""),
        )

    def cached_revisions(self, service: str) -> dict[str, str]:
        """Revisions a sync already described (or a mark was written for): ARN -> ACTIVE | INACTIVE."""
        return {d["sk"][4:]: d["status"] for d in self.db.query(f"SVC#{service}", "REV#")}

    def cache_revisions(self, service: str, statuses: dict[str, str]) -> None:
        """Remember revisions as described (ARN -> ACTIVE | INACTIVE), 25 items per BatchWriteItem."""
        self.db.batch_put(
            [item(pk=f"SVC#{service}", sk=f"REV#{arn}", status=status) for arn, status in statuses.items()]
        )

    # ---------------------------------------------------------------- lock
    # The lease item carries a heartbeat counter (beats). Every change to it is a conditional write, so of two
    # runners acting on what they observed, DynamoDB's per-item serialisation lets exactly one through.
    def acquire_lock(
        self, service: str, holder: dict[str, Any], lease: float, now: float = 0.0
    ) -> dict[str, Any] | None:
        """Take the service's lock if it is free (or already ours); raises Locked naming the holder otherwise."""
        me = str(holder["run_id"])
        # an upsert: a new lock starts its counter at 0; the holder taking it again moves the counter
        ok, answer = self.db.conditional(
            "UpdateItem",
            Key=key(f"SVC#{service}", "LOCK"),
            UpdateExpression="SET run_id = :me, holder = :h, expires_at = :exp, lease = :lease, "
            "beats = if_not_exists(beats, :minus_one) + :one",
            ConditionExpression="attribute_not_exists(pk) OR run_id = :me",
            ExpressionAttributeValues={
                ":me": value(me),
                ":h": value(json.dumps(holder, default=str)),
                ":exp": value(now + lease),
                ":lease": value(lease),
                ":minus_one": value(-1),
                ":one": value(1),
            },
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
        if not ok:
            live: Any = answer.get("Item")
            current = plain(live) if live else self.db.get(f"SVC#{service}", "LOCK")
            raise Locked(self._json(current["holder"], "the lock") if current else {"run_id": "?"})
        return None

    def heartbeat(self, service: str, run_id: str, lease: float, now: float = 0.0) -> bool:
        """Renew our lease (its counter moves); False if we no longer hold it."""
        ok, _ = self.db.conditional(
            "UpdateItem",
            Key=key(f"SVC#{service}", "LOCK"),
            UpdateExpression="SET expires_at = :exp, lease = :lease, beats = if_not_exists(beats, :zero) + :one",
            ConditionExpression="run_id = :me",
            ExpressionAttributeValues={
                ":exp": value(now + lease),
                ":lease": value(lease),
                ":zero": value(0),
                ":one": value(1),
                ":me": value(run_id),
            },
        )
        return ok

    def release_lock(self, service: str, run_id: str) -> None:
        """Give the lease back (only if we hold it: someone else's, or nobody's, is not ours to release)."""
        self.db.conditional(
            "DeleteItem",
            Key=key(f"SVC#{service}", "LOCK"),
            ConditionExpression="run_id = :me",
            ExpressionAttributeValues={":me": value(run_id)},
        )

    def _lock_row(self, service: str, d: dict[str, Any]) -> LockRow:
        return LockRow(
            service,
            str(d["run_id"]),
            self._json(d["holder"], "the lock"),
            int(d.get("beats", 0)),
            float(d.get("lease", 0)),
            float(d.get("expires_at", 0)),
        )

    def lock_state(self, service: str) -> LockRow | None:
        """The lock item as stored (no judgement of expiry), or None if the lock is free."""
        d = self.db.get(f"SVC#{service}", "LOCK")
        return self._lock_row(service, d) if d else None

    def lock_holder(self, service: str, now: float = 0.0) -> dict[str, Any] | None:
        """Who holds the lock, with its heartbeat counter (None if free); expiry is for an observer to judge."""
        row = self.lock_state(service)
        return row.holder_view() if row else None

    @staticmethod
    def _token_condition(token: str) -> tuple[str, dict[str, Any]]:
        run_id, beats = parse_token(token)
        # an item written before the counter existed has no beats attribute: it reads as 0
        counter = "(beats = :beats OR attribute_not_exists(beats))" if beats == 0 else "beats = :beats"
        return f"run_id = :rid AND {counter}", {":rid": value(run_id), ":beats": value(beats)}

    def take_over(
        self, service: str, expected_holder_token: str, new_holder: dict[str, Any], lease: float, now: float = 0.0
    ) -> bool:
        """Replace the holder in one conditional write: only if the item still carries the token observed."""
        condition, values = self._token_condition(expected_holder_token)
        ok, _ = self.db.conditional(
            "PutItem",
            Item=item(
                pk=f"SVC#{service}",
                sk="LOCK",
                run_id=str(new_holder["run_id"]),
                holder=json.dumps(new_holder, default=str),
                expires_at=now + lease,
                lease=lease,
                beats=0,
            ),
            ConditionExpression=condition,
            ExpressionAttributeValues=values,
        )
        return ok

    def force_unlock(self, service: str, expected_holder_token: str | None = None) -> dict[str, Any] | None:
        """Remove the lock (only if it still carries the token, when given); returns whose lock was removed."""
        kw: dict[str, Any] = {}
        if expected_holder_token is not None:
            condition, values = self._token_condition(expected_holder_token)
            kw = {"ConditionExpression": condition, "ExpressionAttributeValues": values}
        ok, answer = self.db.conditional("DeleteItem", Key=key(f"SVC#{service}", "LOCK"), ReturnValues="ALL_OLD", **kw)
        old = answer.get("Attributes") if ok else None
        return self._json(plain(old)["holder"], "the lock") if old else None

    def _json(self, text: str, what: str) -> Any:
        """Parse a JSON attribute; an item that does not parse is StateCorrupt naming the table."""
        try:
            return json.loads(text)
        except (TypeError, json.JSONDecodeError) as exc:
            raise StateCorrupt(
                f"DynamoDB table {self.table}",
                f"{what} holds JSON that does not parse ({exc})",
                "Delete that item (`snail unlock --force` for the lock), then `snail state sync` rebuilds the marks",
            ) from None
