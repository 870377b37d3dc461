"""The fleet journal in DynamoDB (`state: {backend: dynamodb, table: T}` in fleet.yaml): runners on many machines
share one fleet's state (the current run, history, the fleet-wide quarantine, a stop request) and its lock.

The table has the state table's schema (string keys pk/sk, `snail state init` makes one). Items of one fleet:

    pk=FLEET#<name>   sk=CURRENT            the current fleet run (gzip'd JSON: 50 targets' events fit easily)
    pk=FLEET#<name>   sk=HIST#<run_id>      an earlier run's summary
    pk=FLEET#<name>   sk=QUAR#<release>     a release quarantined fleet-wide, and why
    pk=FLEET#<name>   sk=STOP               a stop asked for by `snail fleet stop` while another runner holds the lock
    pk=SVC#fleet#<name> sk=LOCK             the fleet's lease lock: the same lease (heartbeat counter, takeover of a
                                             dead or expired holder judged on the observer's monotonic clock) as a
                                             service's lock, so a killed fleet runner never leaves the line locked

Every read is strongly consistent: a runner must see the stop request and the run another runner just wrote."""

from __future__ import annotations

import gzip
import json
import secrets
from typing import Any

from orchestrator.aws.errors import aws_call
from orchestrator.clock import SystemClock
from orchestrator.errors import Locked
from orchestrator.fleet.decide import FleetRun
from orchestrator.fleet.journal import FleetLocked
from orchestrator.fleet.model import Fleet

LEASE = 60.0  # seconds: a runner that stops beating loses the fleet's lock after this long


class DynamoFleetJournal:
    """Read and write the fleet journal of one fleet in a DynamoDB table (the same interface as FleetJournal)."""

    def __init__(self, fleet: Fleet, client: Any) -> None:
        from orchestrator.state.dynamodb import DynamoStore

        assert fleet.state.table, "the loader requires state.table with backend: dynamodb"
        self.client = client
        self.table = fleet.state.table
        self.name = fleet.state.name
        self.pk = f"FLEET#{self.name}"
        self.lock_key = f"fleet#{self.name}"
        self.store = DynamoStore(client, self.table)  # its lease lock is the fleet's lock
        self._heartbeat: Any = None
        self._holder_id: str | None = None

    # ---------------------------------------------------------------- items
    def _key(self, sk: str) -> dict[str, Any]:
        return {"pk": {"S": self.pk}, "sk": {"S": sk}}

    def _get(self, sk: str) -> dict[str, Any] | None:
        with aws_call("dynamodb:GetItem"):
            return self.client.get_item(TableName=self.table, Key=self._key(sk), ConsistentRead=True).get("Item")

    def _put(self, sk: str, **attrs: dict[str, Any]) -> None:
        with aws_call("dynamodb:PutItem"):
            self.client.put_item(TableName=self.table, Item={**self._key(sk), **attrs})

    def _delete(self, sk: str) -> None:
        with aws_call("dynamodb:DeleteItem"):
            self.client.delete_item(TableName=self.table, Key=self._key(sk))

    def _items(self, prefix: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        kw: dict[str, Any] = {
            "TableName": self.table,
            "ConsistentRead": True,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :p)",
            "ExpressionAttributeValues": {":pk": {"S": self.pk}, ":p": {"S": prefix}},
        }
        while True:
            with aws_call("dynamodb:Query"):
                page = self.client.query(**kw)
            out += page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return out
            kw["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # ---------------------------------------------------------------- the run
    def current(self) -> FleetRun | None:
        """The latest fleet run (finished or not)."""
        item = self._get("CURRENT")
        if not item:
            return None
        return FleetRun.from_dict(json.loads(gzip.decompress(item["doc"]["B"]).decode("utf-8")))

    def history(self) -> list[dict[str, Any]]:
        """Earlier fleet runs, oldest first (their summaries)."""
        rows = [json.loads(i["summary"]["S"]) for i in self._items("HIST#")]
        return sorted(rows, key=lambda r: float(r.get("started_at") or 0))

    def save(self, run: FleetRun) -> None:
        """Record the run's current value (after every transition); a new run moves the old one to history.
        Raises LockLost (exit 4) once this runner no longer holds the fleet's lease: a runner that lost it stops."""
        if self._heartbeat is not None:
            self._heartbeat.check()
        if run.run_id != getattr(self, "_saved_run_id", None):  # first save of this run in this process
            old = self._get("CURRENT")
            if old and old.get("run_id", {}).get("S") != run.run_id:
                prev = json.loads(gzip.decompress(old["doc"]["B"]).decode("utf-8"))
                summary = {k: prev.get(k) for k in ("run_id", "release", "status", "stopped", "started_at")}
                self._put(f"HIST#{prev['run_id']}", summary={"S": json.dumps(summary, default=str)})
            self._saved_run_id = run.run_id
        blob = gzip.compress(json.dumps(run.to_dict(), sort_keys=True, default=str).encode("utf-8"))
        self._put("CURRENT", run_id={"S": run.run_id}, doc={"B": blob})

    # ---------------------------------------------------------------- quarantine
    def quarantined(self) -> dict[str, str]:
        """release -> why it is quarantined fleet-wide."""
        return {i["sk"]["S"].removeprefix("QUAR#"): i.get("reason", {}).get("S", "") for i in self._items("QUAR#")}

    def quarantine(self, release: str, reason: str) -> None:
        """No target anywhere deploys `release` again until it changes or `--retry-failed`."""
        self._put(f"QUAR#{release}", reason={"S": reason or "failed"})

    def lift(self, release: str) -> None:
        """`--retry-failed`: the release may be tried again."""
        self._delete(f"QUAR#{release}")

    # ---------------------------------------------------------------- a stop asked for by another runner
    def request_stop(self, reason: str, by: str) -> None:
        """`snail fleet stop` while a fleet run holds the lock: that run stops the line at once."""
        self._put("STOP", request={"S": json.dumps({"reason": reason, "by": by})})

    def stop_requested(self) -> dict[str, Any] | None:
        """The pending stop request, if any."""
        item = self._get("STOP")
        return json.loads(item["request"]["S"]) if item else None

    def clear_stop(self) -> None:
        """The request was acted on."""
        self._delete("STOP")

    # ---------------------------------------------------------------- the lock
    def lock(self) -> None:
        """Take the fleet's lease (exit 4 naming the holder); a dead or expired holder is taken over."""
        from orchestrator.engine import lock as leases
        from orchestrator.engine.lease import Heartbeat

        clock = SystemClock()
        self._holder_id = f"fleet-{secrets.token_hex(5)}"
        holder = leases.holder_record(self._holder_id, "fleet run", clock.now().isoformat(timespec="seconds"))
        try:
            leases.acquire(self.store, self.lock_key, holder, LEASE, clock=clock)
        except Locked as exc:
            h = exc.holder
            raise FleetLocked(
                f"another fleet run holds this fleet's lock ({h.get('user')}@{h.get('host')}, since "
                f"{h.get('since')}; table {self.table}); try again when it ends"
            ) from None
        self._heartbeat = Heartbeat(self.store, self.lock_key, self._holder_id, LEASE)
        self._heartbeat.__enter__()

    def unlock(self) -> None:
        """Release the fleet's lease."""
        if self._heartbeat is not None:
            self._heartbeat.__exit__(None, None, None)
            self._heartbeat = None
        if self._holder_id is not None:
            try:
                self.store.release_lock(self.lock_key, self._holder_id)
            except Exception:  # noqa: BLE001 - its lease expires; the next runner takes it over
                pass
            self._holder_id = None
