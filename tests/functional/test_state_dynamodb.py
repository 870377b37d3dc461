"""The DynamoDB state store against moto's server, as several runners on several machines would use it:
lock races, lease takeover, event order and step ids across writers, the table's creation, `snail state`."""

from __future__ import annotations

import functools
import json
import multiprocessing
import threading

import boto3
import pytest
from botocore.stub import Stubber

from orchestrator.errors import AccessDenied, Locked, UsageError
from orchestrator.state.base import RunRecord, TrailEvent
from orchestrator.state.dynamodb import DynamoStore, create_table, table_status

REGION = "us-east-1"
TABLE = "snail-state"


def client(url: str):  # noqa: ANN201
    """A low-level DynamoDB client for moto's server (each runner has its own)."""
    return boto3.client(
        "dynamodb", region_name=REGION, endpoint_url=url, aws_access_key_id="testing", aws_secret_access_key="testing"
    )


def holder(run_id: str) -> dict:
    """A lock holder record."""
    return {"run_id": run_id, "user": "ci", "host": f"host-{run_id}", "command": "run", "since": "2026-11-29T06:00:00"}


@pytest.fixture(scope="module")
def server(moto_server: str):
    """The session's moto server, with DynamoDB's per-item write serialisation restored (see below)."""
    from moto.dynamodb.responses import DynamoHandler

    # Real DynamoDB applies writes to one item one at a time, which is what makes a conditional put a lock.
    # moto's threaded server evaluates the condition and stores the item without a lock (and answers
    # ReturnValues=ALL_OLD from a separate read), so two racing requests could both pass. Serialising moto's
    # write handlers restores the guarantee our code relies on; the races below still go through HTTP.
    write_lock = threading.Lock()
    mp = pytest.MonkeyPatch()
    for name in ("put_item", "update_item", "delete_item", "transact_write_items"):
        original = getattr(DynamoHandler, name)

        def serialised(self, _original=original):  # noqa: ANN001, ANN202
            with write_lock:
                return _original(self)

        mp.setattr(DynamoHandler, name, functools.wraps(original)(serialised))
    yield moto_server
    mp.undo()


@pytest.fixture
def url(server: str) -> str:
    """moto's endpoint with a fresh state table."""
    import requests

    requests.post(f"{server}/moto-api/reset", timeout=10)
    create_table(client(server), TABLE)
    return server


ROUNDS = 5


def _acquire(url: str, run_id: str, barrier, results) -> None:  # noqa: ANN001
    store = DynamoStore(client(url), TABLE)
    for round_ in range(ROUNDS):  # a fresh lock per round: several chances for a wrong lock to let two in
        barrier.wait()
        try:
            store.acquire_lock(f"svc{round_}", holder(run_id), lease=60, now=1000)
            results.put((round_, run_id, "got"))
        except Locked as exc:
            results.put((round_, run_id, f"locked by {exc.holder['run_id']}"))


def test_lock_race_across_processes_has_one_winner(url: str) -> None:
    """Six processes racing for a free lock, five times: each time exactly one gets it, the others are told who."""
    ctx = multiprocessing.get_context("spawn")
    n = 6
    barrier, results = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=_acquire, args=(url, f"r{i}", barrier, results)) for i in range(n)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    outcomes: dict[int, dict[str, str]] = {}
    for _ in range(n * ROUNDS):
        round_, run_id, outcome = results.get(timeout=5)
        outcomes.setdefault(round_, {})[run_id] = outcome
    store = DynamoStore(client(url), TABLE)
    for round_, by_run in sorted(outcomes.items()):
        winners = [r for r, o in by_run.items() if o == "got"]
        assert len(winners) == 1, (round_, by_run)
        assert all(o == f"locked by {winners[0]}" for r, o in by_run.items() if r != winners[0])
        assert store.lock_holder(f"svc{round_}", now=1001)["run_id"] == winners[0]


def _race(stores: list[DynamoStore], attempt) -> dict[str, object]:  # noqa: ANN001
    """Run attempt(store, i) for each store at the same moment on its own thread; results by index."""
    barrier = threading.Barrier(len(stores))
    out: dict[str, object] = {}

    def go(i: int, store: DynamoStore) -> None:
        barrier.wait()
        try:
            out[f"r{i}"] = attempt(store, i)
        except Locked as exc:
            out[f"r{i}"] = exc

    threads = [threading.Thread(target=go, args=(i, s)) for i, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return out


def test_stale_lease_is_taken_over_by_exactly_one_of_two_racers(url: str) -> None:
    """Two runners that judged the same lease dead race to take it over: one conditional write wins, one loses."""
    stores = [DynamoStore(client(url), TABLE) for _ in range(2)]
    for round_ in range(8):
        stores[0].force_unlock("svc")
        stores[0].acquire_lock("svc", holder("dead"), lease=60, now=1000)
        token = stores[0].lock_state("svc").token
        out = _race(stores, lambda s, i, token=token: s.take_over("svc", token, holder(f"r{i}"), lease=60))
        winners = [r for r, v in out.items() if v is True]
        assert len(winners) == 1 and sorted(map(str, out.values())) == ["False", "True"], (round_, out)
        assert stores[1].lock_state("svc").run_id == winners[0]
        assert not stores[0].heartbeat("svc", "dead", lease=60), "the old holder finds it lost the lock"


def test_event_order_is_kept_with_two_writers(url: str) -> None:
    """Two runners writing to one trail: strict alternation reads back in that order; concurrent writes lose nothing."""
    a, b = DynamoStore(client(url), TABLE), DynamoStore(client(url), TABLE)
    for i in range(5):
        a.append_event(TrailEvent("ra", "svc", f"t{i}", "step", f"a{i}"))
        b.append_event(TrailEvent("rb", "svc", f"t{i}", "step", f"b{i}"))
    assert [e.message for e in a.events("svc")] == [m for i in range(5) for m in (f"a{i}", f"b{i}")]
    assert [e.message for e in b.events("svc", "rb")] == [f"b{i}" for i in range(5)]

    def write(store: DynamoStore, i: int) -> None:
        for n in range(20):
            store.append_event(TrailEvent(f"w{i}", "busy", "t", "step", f"w{i}-{n}", data={"n": n}))

    _race([a, b], write)
    trail = a.events("busy")
    assert len(trail) == 40
    for w in ("w0", "w1"):
        assert [e.data["n"] for e in trail if e.run_id == w] == list(range(20))


def test_step_ids_are_unique_across_store_instances(url: str) -> None:
    """Two runners beginning steps at once never get the same step id; any runner can end any step."""
    a, b = DynamoStore(client(url), TABLE), DynamoStore(client(url), TABLE)
    a.start_run(RunRecord("r1", "svc", "run", "running", "2026-11-29T06:00:00"))
    out = _race([a, b], lambda s, i: [s.begin_step("r1", "one", f"kind{i}", {"n": n}, "t") for n in range(15)])
    ids = out["r0"] + out["r1"]
    assert len(set(ids)) == 30
    assert [s.step_id for s in b.steps("r1")] == sorted(ids)
    assert len(b.open_steps("svc")) == 30
    fresh = DynamoStore(client(url), TABLE)  # knows nothing of these steps: finds them by id alone
    for sid in ids:
        fresh.end_step(sid, "interrupted", {"reconciled_by": "r2"}, "t2")
    assert a.open_steps("svc") == []
    assert {s.outcome for s in a.steps("r1")} == {"interrupted"}
    assert a.steps("r1")[0].result == {"reconciled_by": "r2"}


def test_transitions_never_create_records(url: str) -> None:
    """finish_run and end_step on records that do not exist write nothing (conditional writes)."""
    store = DynamoStore(client(url), TABLE)
    store.finish_run("ghost", "succeeded", 0, "", "t")
    store.end_step(424242, "ok", {}, "t")
    assert store.get_run("ghost") is None
    items = client(url).scan(TableName=TABLE)["Items"]
    assert not [i for i in items if "ghost" in i["pk"]["S"] or "424242" in json.dumps(i)]


def test_run_lookup_by_prefix_and_listing_by_page(url: str) -> None:
    """get_run takes a unique prefix; runs() returns the newest `limit` runs across many pages of a long history."""
    store = DynamoStore(client(url), TABLE)
    for i in range(3):
        store.start_run(RunRecord(f"r-20261129-0{i}", "svc", "run", "running", f"2026-11-29T0{i}:00:00"))
    store.start_run(RunRecord("r-20261130-00", "svc", "run", "running", "2026-11-30T00:00:00"))
    assert store.get_run("r-20261130").run_id == "r-20261130-00"
    assert store.get_run("r-20261129") is None  # ambiguous
    assert [r.run_id for r in store.runs("svc", limit=2)] == ["r-20261130-00", "r-20261129-02"]
    with pytest.raises(UsageError):
        store.start_run(RunRecord("r-20261130-00", "svc", "run", "running", "2026-12-01T00:00:00"))
    big = "x" * 40_000  # ~50 events of 40 KB: more than one 1 MB query page
    for n in range(50):
        store.append_event(TrailEvent("r1", "paged", "t", "step", f"e{n}", data={"blob": big}))
    assert [e.message for e in store.events("paged")] == [f"e{n}" for n in range(50)]


def test_create_table_is_idempotent(url: str) -> None:
    """Creating the table again changes nothing and keeps its data; a missing table has no status."""
    c = client(url)
    store = DynamoStore(c, TABLE)
    store.start_run(RunRecord("r1", "svc", "run", "running", "t0"))
    again = create_table(c, TABLE)
    assert (again["created"], again["status"]) == (False, "ACTIVE")
    assert store.get_run("r1").run_id == "r1"
    assert table_status(c, TABLE) == "ACTIVE"
    assert table_status(c, "no-such-table") is None
    assert create_table(c, "fresh-table")["created"] is True


def test_create_table_refuses_a_foreign_table(url: str) -> None:
    """A table of the same name with another key is not taken for a state table."""
    c = client(url)
    c.create_table(
        TableName="foreign",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    with pytest.raises(UsageError, match="not a snail state table"):
        create_table(c, "foreign")


def _snail(monkeypatch, capsys, *argv: str) -> tuple[int, str, str]:  # noqa: ANN001
    """Run `snail ARGV` in-process through the CLI's one error boundary; returns (exit code, stdout, stderr)."""
    from orchestrator.cli import main

    monkeypatch.setitem(main.COMMANDS, "state", "orchestrator.cli.state:group")
    monkeypatch.setitem(main.HELP, "state", "Create the shared DynamoDB state table; show where state lives.")
    import signal

    term = signal.getsignal(signal.SIGTERM)  # main() installs its own SIGTERM handler: keep pytest's
    try:
        with pytest.raises(SystemExit) as exc:
            main.main(list(argv))
    finally:
        signal.signal(signal.SIGTERM, term)
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def test_snail_state_init_creates_the_table(server: str, make_pipeline, monkeypatch, capsys) -> None:
    """`snail state init` creates pipeline.yaml's table (once), prints the AWS CLI equivalent; `show` reports it."""
    import requests

    from tests.conftest import PIPELINE

    requests.post(f"{server}/moto-api/reset", timeout=10)
    path = make_pipeline(PIPELINE + "state: {backend: dynamodb, table: snail-state}\n")
    base = ("-f", str(path), "--endpoint-url", server)
    code, out, err = _snail(monkeypatch, capsys, *base, "state", "init")
    assert code == 0, err
    assert "state table snail-state created: ACTIVE" in out
    assert "aws dynamodb create-table --table-name snail-state" in out and "PAY_PER_REQUEST" in out
    assert client(server).describe_table(TableName=TABLE)["Table"]["TableStatus"] == "ACTIVE"
    code, out, _ = _snail(monkeypatch, capsys, *base, "state", "init")
    assert code == 0 and "state table snail-state already exists: ACTIVE" in out
    code, out, _ = _snail(monkeypatch, capsys, *base, "--output", "json", "state", "show")
    assert code == 0 and json.loads(out)["status"] == "ACTIVE" and json.loads(out)["table"] == TABLE


def test_snail_state_init_refuses_the_local_backend(server: str, make_pipeline, monkeypatch, capsys) -> None:
    """`snail state init` with the local backend exits 2 and says what to set; nothing is created."""
    import requests

    from tests.conftest import PIPELINE

    requests.post(f"{server}/moto-api/reset", timeout=10)
    path = make_pipeline(PIPELINE)
    code, out, err = _snail(monkeypatch, capsys, "-f", str(path), "--endpoint-url", server, "state", "init")
    assert code == 2
    assert "state.backend is 'local'" in err and "backend: dynamodb" in err
    assert client(server).list_tables()["TableNames"] == []
    code, out, _ = _snail(monkeypatch, capsys, "-f", str(path), "state", "show")
    assert code == 0 and "state: local SQLite" in out


def test_access_denied_surfaces_as_our_error() -> None:
    """A permission error from DynamoDB becomes AccessDenied naming the operation, not a botocore traceback."""
    c = boto3.client("dynamodb", region_name=REGION)
    store = DynamoStore(c, TABLE)
    with Stubber(c) as stub:
        stub.add_client_error(
            "update_item",
            service_error_code="AccessDeniedException",
            http_status_code=400,
            service_message="User: arn:aws:iam::1:user/ci is not authorized to perform: dynamodb:UpdateItem",
        )
        with pytest.raises(AccessDenied) as exc:
            store.acquire_lock("svc", holder("r1"), lease=60, now=1000)
    assert exc.value.operation == "dynamodb:UpdateItem"
    assert "not authorized" in str(exc.value) and "needs permission for dynamodb:UpdateItem" in str(exc.value)


def test_lock_held_is_read_from_the_failed_condition() -> None:
    """A failed lock condition names the live holder from the item DynamoDB returns with the failure."""
    c = boto3.client("dynamodb", region_name=REGION)
    store = DynamoStore(c, TABLE)
    live = {
        "pk": {"S": "SVC#svc"},
        "sk": {"S": "LOCK"},
        "run_id": {"S": "r9"},
        "holder": {"S": json.dumps(holder("r9"))},
        "expires_at": {"N": "1060"},
    }
    with Stubber(c) as stub:
        stub.add_client_error(
            "update_item",
            service_error_code="ConditionalCheckFailedException",
            http_status_code=400,
            response_meta={},
            modeled_fields={"Item": live},
        )
        with pytest.raises(Locked) as exc:
            store.acquire_lock("svc", holder("r1"), lease=60, now=1000)
    assert exc.value.holder["run_id"] == "r9"
    assert "run r9 by ci@host-r9 (run)" in str(exc.value)
