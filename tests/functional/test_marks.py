"""Verdict marks on AWS (moto): tags round trip, a sync into an empty store, forged tags ignored, tagging denied,
deregistered revisions excluded, sync cost in API calls; the store's mark contract on both backends; and
`snail state sync` / `snail release` as separate processes against moto's server."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from orchestrator import marks as marks_mod
from orchestrator.aws.tagging import RevisionTags
from orchestrator.marks import MarkWriter, content_hash, ensure_synced, mark_tags, read_mark, sync, tag_value
from orchestrator.release_memory import Refusal, blocked, hold, rollback_target
from orchestrator.state.base import FAILED, GOOD, HELD, GoodRecord, Mark
from orchestrator.state.sqlite import SqliteStore
from tests.functional.world import live
from tests.harness.cli import snail
from tests.harness.pipeline import image, write_pipeline

FAMILY = "shine-api-gateway"
SERVICE = "shine-api-gateway"


def register(ecs: Any, tag: str, phase: str = "health-only", family: str = FAMILY) -> tuple[str, dict[str, Any]]:
    """Register a revision like a phase would (image by digest, SNAIL_PHASE set); returns (arn, described)."""
    td = ecs.register_task_definition(
        family=family,
        networkMode="awsvpc",
        cpu="256",
        memory="512",
        containerDefinitions=[
            {
                "name": "api",
                "image": image(tag),
                "memory": 256,
                "portMappings": [{"containerPort": 5000}],
                "environment": [{"name": "SNAIL_PHASE", "value": phase}],
            }
        ],
    )["taskDefinition"]
    return td["taskDefinitionArn"], td


def good(arn: str, phase: str, minute: int, **kw: Any) -> Mark:
    """A good mark that went live at minute `minute`."""
    at = f"2026-11-29T06:{minute:02d}:00+00:00"
    return Mark(
        service=SERVICE,
        revision_arn=arn,
        phase=phase,
        verdict=kw.pop("verdict", GOOD),
        spec_hash=kw.pop("spec_hash", f"spec-{phase}"),
        gates_hash=marks_mod.gates_hash([{"type": "http", "path": "/health"}]),
        gates=[{"type": "http", "path": "/health"}],
        at=at,
        live_since=at,
        run_id=kw.pop("run_id", "r-20261129-060000-abcd"),
        **kw,
    )


def tags_of(ecs: Any, arn: str) -> dict[str, str]:
    """A revision's tags as a dict."""
    return {t["key"]: t["value"] for t in ecs.describe_task_definition(taskDefinition=arn, include=["TAGS"])["tags"]}


def count_calls(client: Any) -> Counter:
    """Count every API call the client makes, by operation name."""
    calls: Counter = Counter()
    client.meta.events.register("before-call", lambda model, **_: calls.update([model.name]))
    return calls


@pytest.fixture
def ecs() -> Iterator[Any]:
    """ECS in moto, in process."""
    with mock_aws():
        yield boto3.client("ecs", region_name="us-east-1")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    """An empty local store (a fresh checkout)."""
    s = SqliteStore(tmp_path / "state.db")
    yield s
    s.close()


# ---------------------------------------------------------------- tags
def test_tag_values_fit_ecs_rules() -> None:
    """Reasons become legal tag values: refused characters dropped to spaces, at most 256 characters."""
    assert tag_value("status 500 (expected 200) #12 — 'bad'") == "status 500 expected 200 12 bad"
    assert tag_value("user@host: a/b=c+d_e.f") == "user@host: a/b=c+d_e.f"
    assert len(tag_value("x" * 1000)) == 256
    assert all(len(v) <= 256 for v in mark_tags(good("arn:td/f:1", "p", 1, reason="y" * 999)).values())


def test_a_secret_in_a_failure_reason_never_reaches_the_tags() -> None:
    """A gate's failure text with a token in its URL is masked before it becomes the snail:reason tag."""
    why = "GET https://api.example.com/health?api_key=AKIAIOSFODNN7EXAMPLE: status 500; password=hunter2"
    tags = mark_tags(good("arn:td/f:1", "p", 1, verdict=FAILED, reason=why))
    assert "AKIAIOSFODNN7EXAMPLE" not in tags["snail:reason"] and "hunter2" not in tags["snail:reason"]
    assert "status 500" in tags["snail:reason"]


def test_mark_round_trips_through_the_revision_tags(ecs, store, tmp_path) -> None:
    """A good mark written to a revision is read back from AWS into a fresh store with the same verdict and data."""
    arn, td = register(ecs, "a")
    mark = good(arn, "health-only", 1, image=image("a"), digest="sha256:" + "a" * 64)
    assert MarkWriter(RevisionTags(ecs), store).write(mark, td) is None
    tags = tags_of(ecs, arn)
    assert tags["snail:verdict"] == "good" and tags["snail:phase"] == "health-only"
    assert tags["snail:content"] == content_hash(td) and tags["snail:live-since"] == mark.at
    fresh = SqliteStore(tmp_path / "fresh.db")
    report = sync(fresh, RevisionTags(ecs), SERVICE, FAMILY, container="api")
    assert report.adopted == ["shine-api-gateway:1 good (health-only)"] and report.ignored == []
    (back,) = fresh.marks(SERVICE)
    assert (back.verdict, back.phase, back.spec_hash, back.gates_hash, back.live_since, back.run_id) == (
        GOOD,
        "health-only",
        mark.spec_hash,
        mark.gates_hash,
        mark.live_since,
        mark.run_id,
    )
    assert back.source == "aws" and back.image == image("a")
    assert fresh.last_good(SERVICE, "health-only").revision_arn == arn


def test_content_hash_of_the_registered_body_matches_the_description(ecs) -> None:
    """ECS fills in cpu 0, essential, empty lists when it describes: the body and the description hash alike."""
    body = {
        "family": "x",
        "containerDefinitions": [
            {"name": "api", "image": image("a"), "memory": 128, "portMappings": [{"containerPort": 5000}]}
        ],
    }
    td = ecs.register_task_definition(**body)["taskDefinition"]
    assert td["containerDefinitions"][0]["cpu"] == 0  # moto, like ECS, filled it in
    aws_shape = {**td, "containerDefinitions": [{**td["containerDefinitions"][0], "essential": True}]}
    aws_shape["containerDefinitions"][0]["portMappings"] = [
        {"containerPort": 5000, "hostPort": 5000, "protocol": "tcp"}
    ]
    assert content_hash(body) == content_hash(td) == content_hash(aws_shape)


def test_mark_without_a_definition_describes_the_revision_once(ecs, store) -> None:
    """Without the definition at hand, writing a mark costs one describe and one TagResource."""
    arn, td = register(ecs, "a")
    calls = count_calls(ecs)
    MarkWriter(RevisionTags(ecs), store).write(good(arn, "health-only", 1))
    assert calls == Counter({"DescribeTaskDefinition": 1, "TagResource": 1})
    assert tags_of(ecs, arn)["snail:content"] == content_hash(td)


# ---------------------------------------------------------------- sync
def test_sync_from_an_empty_store_rebuilds_every_verdict(ecs, store, tmp_path) -> None:
    """A fresh checkout rebuilds good, failed and held marks and what they decide: target, quarantine, hold."""
    laptop = SqliteStore(tmp_path / "laptop.db")
    w = MarkWriter(RevisionTags(ecs), laptop)
    arns = {}
    for n, (tag, phase) in enumerate([("a", "health-only"), ("b", "hybrid-ml"), ("c", "optimized"), ("d", "enhanced")]):
        arns[phase], td = register(ecs, tag, phase)
        w.write(good(arns[phase], phase, n + 1), td)
    bad, td = register(ecs, "e", "enhanced")
    w.write(good(bad, "enhanced", 9, verdict=FAILED, spec_hash="spec-bad", reason="status 500 (expected 200)"), td)
    register(ecs, "f", "enhanced")  # registered, never judged: no mark
    enhanced = next(m for m in laptop.marks(SERVICE) if m.revision_arn == arns["enhanced"])
    w.write(
        hold(
            enhanced,
            service=SERVICE,
            revision_arn=arns["enhanced"],
            by="ops@laptop",
            reason="login broken",
            at="2026-11-29T07:00:00+00:00",
            run_id="r-rb",
        )
    )

    report = sync(store, RevisionTags(ecs), SERVICE, FAMILY, container="api")
    assert (report.listed, report.described, len(report.adopted), report.ignored) == (6, 6, 5, [])
    assert [g.phase for g in store.good_history(SERVICE)] == ["optimized", "hybrid-ml", "health-only"]
    target = rollback_target(store.marks(SERVICE), arns["optimized"])
    assert isinstance(target, Mark) and target.revision_arn == arns["hybrid-ml"]
    q = blocked(store.marks(SERVICE), "spec-bad", "enhanced")
    assert q is not None and q.kind == "quarantined" and q.reason == "status 500 expected 200"
    h = blocked(store.marks(SERVICE), "spec-enhanced", "enhanced")
    assert h is not None and (h.kind, h.by, h.reason) == (HELD, "ops@laptop", "login broken")


def test_a_current_cache_costs_no_call_or_one(ecs, store) -> None:
    """ensure_synced: empty cache -> list + describes; current -> 0 calls; forced -> 1 list, 0 describes; a new
    live revision -> it alone is described."""
    for tag in "abc":
        register(ecs, tag)
    calls = count_calls(ecs)
    first = ensure_synced(store, RevisionTags(ecs), SERVICE, FAMILY)
    assert first.synced and calls == Counter({"ListTaskDefinitions": 1, "DescribeTaskDefinition": 3})
    latest = f"arn:aws:ecs:us-east-1:123456789012:task-definition/{FAMILY}:3"
    calls.clear()
    assert not ensure_synced(store, RevisionTags(ecs), SERVICE, FAMILY, live_revision=latest).synced
    assert calls == Counter()
    ensure_synced(store, RevisionTags(ecs), SERVICE, FAMILY, live_revision=latest, force=True)
    assert calls == Counter({"ListTaskDefinitions": 1})
    new, _ = register(ecs, "d")
    calls.clear()
    ensure_synced(store, RevisionTags(ecs), SERVICE, FAMILY, live_revision=new)
    assert calls == Counter({"ListTaskDefinitions": 1, "DescribeTaskDefinition": 1})


@pytest.mark.parametrize("n", [10, 100])
def test_sync_cost_is_one_list_and_one_describe_per_new_revision(ecs, store, n: int) -> None:
    """Without the tagging API: one list (moto returns one page; AWS pages by 100) + one describe per revision
    not cached, at most the newest 50 per sync; a current cache then costs the list alone."""
    for i in range(n):
        register(ecs, f"{i:x}")
    calls = count_calls(ecs)
    rounds = []
    for _ in range(3):
        calls.clear()
        report = sync(store, RevisionTags(ecs), SERVICE, FAMILY)
        rounds.append((calls["ListTaskDefinitions"], calls["DescribeTaskDefinition"], report.api_calls))
    if n == 10:
        assert rounds == [(1, 10, 11), (1, 0, 1), (1, 0, 1)]
    else:
        assert rounds == [(1, 50, 51), (1, 50, 51), (1, 0, 1)]
    assert len(store.cached_revisions(SERVICE)) == n
    calls.clear()
    assert sync(store, RevisionTags(ecs), SERVICE, FAMILY, full=True).described == n


def test_first_sync_reads_the_newest_revisions_first(ecs, store) -> None:
    """Past the 50-revision window, the newest revisions are verified first and the report says what is left."""
    arns = [register(ecs, f"{i:x}")[0] for i in range(60)]
    report = sync(store, RevisionTags(ecs), SERVICE, FAMILY)
    assert set(store.cached_revisions(SERVICE)) == set(arns[10:])
    assert "10 older revisions not read yet" in report.notes[0]


@pytest.fixture
def tagging(ecs) -> Any:  # noqa: ANN001
    """The Resource Groups Tagging API in the same moto account."""
    return boto3.client("resourcegroupstaggingapi", region_name="us-east-1")


@pytest.mark.parametrize("n", [10, 100])
def test_sync_with_the_tagging_api_describes_only_marked_revisions(ecs, tagging, store, tmp_path, n: int) -> None:
    """n revisions, every tenth marked: list + GetResources + one describe per marked revision; a current cache
    forced costs the list and GetResources only."""
    laptop = MarkWriter(RevisionTags(ecs), SqliteStore(tmp_path / "laptop.db"))
    for i in range(n):
        arn, td = register(ecs, f"{i:x}")
        if i % 10 == 0:
            laptop.write(good(arn, "health-only", i % 60, spec_hash=f"s{i}"), td)
    calls, tag_calls = count_calls(ecs), count_calls(tagging)
    report = sync(store, RevisionTags(ecs, tagging), SERVICE, FAMILY)
    assert calls == Counter({"ListTaskDefinitions": 1, "DescribeTaskDefinition": n // 10})
    assert tag_calls == Counter({"GetResources": 1}) and report.api_calls == 2 + n // 10
    assert len(report.adopted) == n // 10 and len(store.cached_revisions(SERVICE)) == n
    calls.clear()
    tag_calls.clear()
    ensure_synced(store, RevisionTags(ecs, tagging), SERVICE, FAMILY, force=True)
    assert calls + tag_calls == Counter({"ListTaskDefinitions": 1, "GetResources": 1})


def test_a_mark_written_elsewhere_on_a_cached_revision_is_picked_up(ecs, tagging, store, tmp_path) -> None:
    """CI synced revision 1 as good; a laptop then holds it: the next sync sees the changed tags and adopts the hold."""
    laptop = SqliteStore(tmp_path / "laptop.db")
    arn, td = register(ecs, "a")
    MarkWriter(RevisionTags(ecs), laptop).write(good(arn, "health-only", 1), td)
    sync(store, RevisionTags(ecs, tagging), SERVICE, FAMILY)
    (mine,) = laptop.marks(SERVICE)
    held = hold(
        mine, service=SERVICE, revision_arn=arn, by="ops@laptop", reason="", at="2026-11-29T07:00:00+00:00", run_id="r"
    )
    MarkWriter(RevisionTags(ecs), laptop).write(held)
    report = sync(store, RevisionTags(ecs, tagging), SERVICE, FAMILY)
    assert report.adopted == ["shine-api-gateway:1 held (health-only)"] and report.described == 1
    assert blocked(store.marks(SERVICE), mine.spec_hash, "health-only") is not None
    assert sync(store, RevisionTags(ecs, tagging), SERVICE, FAMILY).described == 0


def test_tagging_api_denied_falls_back_to_describing_every_revision(ecs, tagging, store) -> None:
    """tag:GetResources denied: the sync still completes by describing each uncached revision, and says so."""
    deny_any(tagging, "resourcegroupstaggingapi", "GetResources")
    for tag in "ab":
        register(ecs, tag)
    report = sync(store, RevisionTags(ecs, tagging), SERVICE, FAMILY)
    assert report.described == 2 and "allow tag:GetResources" in report.notes[0]


def test_family_prefix_does_not_leak_other_families(ecs, store) -> None:
    """familyPrefix 'shine-api-gateway' also matches 'shine-api-gateway-canary': those revisions are left out."""
    register(ecs, "a")
    register(ecs, "b", family=FAMILY + "-canary")
    assert sync(store, RevisionTags(ecs), SERVICE, FAMILY).listed == 1


# ---------------------------------------------------------------- bad input and faults
def test_forged_good_tag_is_reported_and_ignored(ecs, store, tmp_path) -> None:
    """A good mark's tags copied onto another revision (other content) do not verify: reported, not adopted."""
    laptop = SqliteStore(tmp_path / "laptop.db")
    arn1, td1 = register(ecs, "a")
    MarkWriter(RevisionTags(ecs), laptop).write(good(arn1, "health-only", 1), td1)
    arn2, _ = register(ecs, "bad")
    ecs.tag_resource(resourceArn=arn2, tags=[{"key": k, "value": v} for k, v in tags_of(ecs, arn1).items()])
    arn3, _ = register(ecs, "c")
    ecs.tag_resource(resourceArn=arn3, tags=[{"key": "snail:verdict", "value": "good"}])
    report = sync(store, RevisionTags(ecs), SERVICE, FAMILY)
    assert [m.revision_arn for m in store.marks(SERVICE)] == [arn1]
    assert len(report.ignored) == 2
    assert "shine-api-gateway:2: 'good' mark does not match the revision's content" in report.ignored[0]
    assert "shine-api-gateway:3: 'good' mark without snail:content" in report.ignored[1]
    target = rollback_target(store.marks(SERVICE), arn3)
    assert isinstance(target, Mark) and target.revision_arn == arn1


def test_read_mark_ignores_unknown_verdicts(ecs) -> None:
    """A verdict snail never writes is ignored with a reason."""
    arn, td = register(ecs, "a")
    mark, why = read_mark(SERVICE, td, {"snail:verdict": "great", "snail:content": content_hash(td)})
    assert mark is None and "unknown verdict 'great'" in (why or "")
    assert read_mark(SERVICE, td, {"snail:phase": "health-only"}) == (None, None)


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: object) -> Iterator[bytes]:
        yield self._body


def deny(client: Any, operation: str) -> list[str]:
    """Make every ECS `operation` call fail with AccessDeniedException, as IAM would; returns the refused calls."""
    return deny_any(client, "ecs", operation)


def deny_any(client: Any, service: str, operation: str) -> list[str]:
    """Make every `operation` call of `service` fail with AccessDeniedException; returns the refused calls."""
    from botocore.awsrequest import AWSResponse

    refused: list[str] = []

    def handler(request: Any, **_: object) -> AWSResponse:
        refused.append(operation)
        body = json.dumps({"__type": "AccessDeniedException", "message": f"not authorized: {service}:{operation}"})
        return AWSResponse(request.url, 400, {"Content-Type": "application/x-amz-json-1.1"}, _Raw(body.encode()))

    client.meta.events.register_first(f"before-send.{service}.{operation}", handler)
    return refused


def test_tagging_denied_keeps_the_local_record_and_warns_once(server, store) -> None:
    """AccessDenied on TagResource: both marks kept locally, no tag on AWS, one warning naming ecs:TagResource,
    and the call is not retried. (moto's server: a refused call must have no side effect.)"""
    import requests

    requests.post(f"{server['url']}/moto-api/reset", timeout=10)
    ecs = boto3.client("ecs", region_name="us-east-1", endpoint_url=server["url"])
    refused = deny(ecs, "TagResource")
    arn1, td1 = register(ecs, "a")
    arn2, td2 = register(ecs, "b", "hybrid-ml")
    w = MarkWriter(RevisionTags(ecs), store)
    first = w.write(good(arn1, "health-only", 1), td1)
    second = w.write(good(arn2, "hybrid-ml", 2), td2)
    assert first is not None and "ecs:TagResource was denied" in first
    assert "allow ecs:TagResource on arn:aws:ecs:*:*:task-definition/shine-api-gateway:*" in first
    assert second is None and w.warnings == [first]
    assert refused == ["TagResource", "TagResource"]  # once per mark: never retried
    assert [g.revision_arn for g in store.good_history(SERVICE)] == [arn2, arn1]
    assert "snail:verdict" not in {
        t["key"] for t in ecs.describe_task_definition(taskDefinition=arn1, include=["TAGS"]).get("tags", [])
    }


def test_deregistered_revision_is_flagged_and_never_a_target(ecs, store) -> None:
    """A good revision deregistered after a sync is flagged INACTIVE by the next sync and never a rollback target."""
    w = MarkWriter(RevisionTags(ecs), store)
    arns = []
    for n, tag in enumerate("abc"):
        arn, td = register(ecs, tag)
        w.write(good(arn, "health-only", n + 1, spec_hash=f"s{n}"), td)
        arns.append(arn)
    ecs.deregister_task_definition(taskDefinition=arns[1])
    report = sync(store, RevisionTags(ecs), SERVICE, FAMILY)
    assert report.deregistered == ["shine-api-gateway:2"]
    assert store.cached_revisions(SERVICE)[arns[1]] == "INACTIVE"
    assert [m.active for m in store.marks(SERVICE)] == [True, False, True]
    target = rollback_target(store.marks(SERVICE), arns[2])
    assert isinstance(target, Mark) and target.revision_arn == arns[0]
    refusal = rollback_target(store.marks(SERVICE), arns[2], to_revision="2")
    assert isinstance(refusal, Refusal) and "deregistered" in refusal.message


def test_fresh_sync_never_adopts_a_deregistered_revision(ecs, store, tmp_path) -> None:
    """A fresh checkout lists ACTIVE revisions only: a deregistered good revision is not even a candidate."""
    laptop = SqliteStore(tmp_path / "laptop.db")
    arn1, td1 = register(ecs, "a")
    arn2, td2 = register(ecs, "b")
    MarkWriter(RevisionTags(ecs), laptop).write(good(arn1, "health-only", 1), td1)
    MarkWriter(RevisionTags(ecs), laptop).write(good(arn2, "health-only", 2, spec_hash="s2"), td2)
    ecs.deregister_task_definition(taskDefinition=arn1)
    sync(store, RevisionTags(ecs), SERVICE, FAMILY)
    assert [m.revision_arn for m in store.marks(SERVICE)] == [arn2]
    assert isinstance(rollback_target(store.marks(SERVICE), arn2), Refusal)


# ---------------------------------------------------------------- the store's mark contract, both backends
@pytest.fixture(params=["sqlite", "dynamodb"])
def any_store(request, tmp_path: Path) -> Iterator[Any]:
    """A fresh store of each backend."""
    if request.param == "sqlite":
        s = SqliteStore(tmp_path / "state.db")
        yield s
        s.close()
    else:
        from orchestrator.state.dynamodb import DynamoStore, create_table

        with mock_aws():
            client = boto3.client("dynamodb", region_name="us-east-1")
            create_table(client, "snail-state", wait_delay=0)
            yield DynamoStore(client, "snail-state")


def test_store_keeps_marks_newest_first_with_gates(any_store) -> None:
    """put_mark/marks: newest first by time (then write order); good_history = revisions whose newest mark is
    good, each with the gate specs it passed."""
    a, b = "arn:td/f:1", "arn:td/f:2"
    any_store.put_mark(good(a, "one", 1))
    any_store.put_mark(good(b, "two", 2))
    any_store.put_mark(good(a, "one", 3, verdict=HELD, by="ops@laptop"))
    assert [(m.revision_arn, m.verdict) for m in any_store.marks(SERVICE)] == [(a, HELD), (b, GOOD), (a, GOOD)]
    (g,) = any_store.good_history(SERVICE)
    assert g.revision_arn == b and g.gates == [{"type": "http", "path": "/health"}]
    assert any_store.last_good(SERVICE, "one") is None and any_store.marks("other") == []


def test_store_mark_good_persists_gates(any_store) -> None:
    """mark_good (the engine's call today) keeps GoodRecord.gates and shows up as a good mark."""
    gates = [{"type": "ecs-rollout", "timeout": 600.0}, {"type": "http", "path": "/ml/status"}]
    any_store.mark_good(GoodRecord(SERVICE, "hybrid-ml", "arn:td/f:2", "img@2", "sha256:2", "r1", "t2", "h2", gates))
    assert any_store.last_good(SERVICE, "hybrid-ml").gates == gates
    (m,) = any_store.marks(SERVICE)
    assert (m.verdict, m.live_since, m.gates) == (GOOD, "t2", gates)


def test_store_revision_cache(any_store) -> None:
    """cache_revisions/cached_revisions remember what a sync described; INACTIVE revisions' marks are inactive."""
    any_store.put_mark(good("arn:td/f:1", "one", 1))
    statuses = {f"arn:td/f:{i}": "ACTIVE" for i in range(1, 31)}  # more than one DynamoDB batch (25)
    any_store.cache_revisions(SERVICE, statuses)
    any_store.cache_revisions(SERVICE, {"arn:td/f:1": "INACTIVE"})
    cached = any_store.cached_revisions(SERVICE)
    assert len(cached) == 30 and cached["arn:td/f:1"] == "INACTIVE"
    assert [m.active for m in any_store.marks(SERVICE)] == [False]


def test_sqlite_store_adopts_good_rows_written_before_marks(tmp_path: Path) -> None:
    """A .snail/state.db from before marks: its good rows become good marks when it is opened."""
    import sqlite3

    path = tmp_path / "old.db"
    SqliteStore(path).close()
    db = sqlite3.connect(path)
    db.execute("DELETE FROM marks")
    db.execute(
        "INSERT INTO good(service, phase, revision_arn, image, digest, run_id, at, spec_hash) VALUES (?,?,?,?,?,?,?,?)",
        (SERVICE, "health-only", "arn:td/f:2", "img", None, "r0", "2026-11-28T06:00:00+00:00", "h"),
    )
    db.commit()
    db.close()
    s = SqliteStore(path)
    assert s.last_good(SERVICE).revision_arn == "arn:td/f:2"
    s.close()
    assert len(SqliteStore(path).marks(SERVICE)) == 1  # adopted once, not on every open


# ---------------------------------------------------------------- the CLI, as a separate process
def _aws_marks_for_local_good(world) -> None:  # noqa: ANN001
    """What the engine will do once wired: the good marks of the local store also written to the revisions."""
    s = SqliteStore(world["root"] / ".snail" / "state.db")
    w = MarkWriter(RevisionTags(world["ecs"]), s)
    for n, g in enumerate(reversed(s.good_history(SERVICE))):
        w.write(
            Mark(
                SERVICE,
                g.revision_arn,
                g.phase,
                GOOD,
                spec_hash=g.spec_hash,
                at=g.at,
                live_since=f"2026-11-29T06:0{n}:00+00:00",
                run_id=g.run_id,
                image=g.image,
            )
        )
    s.close()


def test_cli_fresh_checkout_syncs_then_status_and_rollback_work(world) -> None:
    """Run two phases, delete .snail/, `snail state sync`: status shows the same good phases, plan and run have
    nothing to do, and `rollback` goes back to phase one's revision, verified."""
    write_pipeline(world["root"], {"health-only": "a", "hybrid-ml": "b"})
    world["serve"]("a"), world["serve"]("b")
    assert snail(world, "run", "--skip-preflight").returncode == 0
    _aws_marks_for_local_good(world)
    before = json.loads(snail(world, "--output", "json", "status").stdout)
    shutil.rmtree(world["root"] / ".snail")
    r = snail(world, "--output", "json", "state", "sync")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["adopted"] == ["shine-api-gateway:2 good (health-only)", "shine-api-gateway:3 good (hybrid-ml)"]
    # one list + one GetResources page + one describe per marked revision (the bootstrap revision has no mark)
    assert (report["listed"], report["described"], report["api_calls"], report["ignored"]) == (3, 2, 4, [])
    after = json.loads(snail(world, "--output", "json", "status").stdout)
    assert after["phase"] == before["phase"] == "hybrid-ml"
    assert {p: g["revision_arn"] for p, g in after["good"].items()} == {
        p: g["revision_arn"] for p, g in before["good"].items()
    }
    assert "nothing to do" in snail(world, "plan").stdout
    again = snail(world, "run", "--skip-preflight")
    assert again.returncode == 0 and "nothing to do" in again.stdout
    rb = snail(world, "rollback")
    assert rb.returncode == 0, rb.stderr
    assert live(world).endswith("shine-api-gateway:2")


def test_cli_release_lifts_a_hold_and_updates_the_tag(world) -> None:
    """`snail release 3` after a hold: the tag says good again, the trail records who lifted it; nothing held
    left is a usage error (exit 2)."""
    write_pipeline(world["root"], {"health-only": "a", "hybrid-ml": "b"})
    world["serve"]("a"), world["serve"]("b")
    assert snail(world, "run", "--skip-preflight").returncode == 0
    _aws_marks_for_local_good(world)
    s = SqliteStore(world["root"] / ".snail" / "state.db")
    held = next(m for m in s.marks(SERVICE) if m.revision_arn.endswith(":3"))
    MarkWriter(RevisionTags(world["ecs"]), s).write(
        hold(
            held,
            service=SERVICE,
            revision_arn=held.revision_arn,
            by="ops@laptop",
            reason="login broken",
            at="2026-11-29T07:00:00+00:00",
            run_id="r-rb",
        )
    )
    s.close()
    assert tags_of(world["ecs"], held.revision_arn)["snail:verdict"] == "held"
    shutil.rmtree(world["root"] / ".snail")  # the hold was written by another checkout: release reads the tags
    r = snail(world, "release", "3", "--reason", "fixed upstream")
    assert r.returncode == 0, r.stderr
    assert "hold on shine-api-gateway:3 (hybrid-ml) lifted by" in r.stdout and "now good" in r.stdout
    tags = tags_of(world["ecs"], held.revision_arn)
    assert (tags["snail:verdict"], tags["snail:reason"]) == ("good", "fixed upstream")
    assert "lifted by" in snail(world, "--output", "json", "trail").stdout
    again = snail(world, "release", "hybrid-ml")
    assert again.returncode == 2 and "nothing held matches 'hybrid-ml'" in again.stderr


def test_gates_hash_is_derived_from_the_gate_specs(ecs, store) -> None:
    """A mark written with its gate specs carries their hash in snail:gates; the specs stay in the store only."""
    arn, td = register(ecs, "a")
    gates = [{"type": "ecs-rollout", "timeout": 600.0}, {"type": "http", "path": "/health"}]
    MarkWriter(RevisionTags(ecs), store).write(
        Mark(SERVICE, arn, "health-only", GOOD, gates=gates, at="t1", live_since="t1"), td
    )
    assert tags_of(ecs, arn)["snail:gates"] == marks_mod.gates_hash(gates) != ""
    assert store.last_good(SERVICE).gates == gates


def test_probe_tagging_changes_nothing_and_names_the_permission(server) -> None:
    """doctor's probe: allowed -> the tags are unchanged; denied -> the fix names ecs:TagResource; untagged -> not
    probed."""
    import requests

    requests.post(f"{server['url']}/moto-api/reset", timeout=10)
    ecs = boto3.client("ecs", region_name="us-east-1", endpoint_url=server["url"])
    arn, _ = register(ecs, "a")
    assert marks_mod.probe_tagging(RevisionTags(ecs), arn)[0] is None
    ecs.tag_resource(resourceArn=arn, tags=[{"key": "snail:phase", "value": "health-only"}])
    before = tags_of(ecs, arn)
    assert marks_mod.probe_tagging(RevisionTags(ecs), arn)[0] is True and tags_of(ecs, arn) == before
    deny(ecs, "TagResource")
    ok, fix = marks_mod.probe_tagging(RevisionTags(ecs), arn)
    assert ok is False and "allow ecs:TagResource on arn:aws:ecs:*:*:task-definition/shine-api-gateway:*" in fix


def test_gates_hash_agrees_with_the_engines() -> None:
    """snail:gates from recorded dicts equals the engine's hash of the typed specs (one hash, two callers)."""
    from orchestrator.config.gates import gates_from_data
    from orchestrator.config.gates import gates_hash as spec_gates_hash

    specs = gates_from_data([{"type": "ecs-rollout"}, {"type": "http", "path": "/health"}])
    assert marks_mod.gates_hash([g.to_dict() for g in specs]) == spec_gates_hash(specs)


def test_hold_on_an_unjudged_revision_keeps_its_phase_and_spec(ecs, store) -> None:
    """A revision snail registered but never judged, rolled back from: the hold takes phase and spec from its
    registration tags, so the spec is blocked and `snail release PHASE` finds it."""
    arn = ecs.register_task_definition(
        family=FAMILY,
        containerDefinitions=[{"name": "api", "image": image("a"), "memory": 256}],
        tags=[{"key": "snail:phase", "value": "enhanced"}, {"key": "snail:spec-hash", "value": "s-enh"}],
    )["taskDefinition"]["taskDefinitionArn"]
    MarkWriter(RevisionTags(ecs), store).write(
        hold(None, service=SERVICE, revision_arn=arn, by="ops@laptop", reason="", at="t1", run_id="r")
    )
    assert tags_of(ecs, arn)["snail:phase"] == "enhanced"
    b = blocked(store.marks(SERVICE), "s-enh", "enhanced")
    assert b is not None and b.kind == HELD


def test_dynamodb_table_written_before_marks_still_has_its_good_revisions() -> None:
    """A state table with GOOD# items (before marks): the first read adopts them as good marks, once."""
    from orchestrator.state.dynamodb import DynamoStore, create_table

    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_table(client, "snail-state", wait_delay=0)
        item = {"service": SERVICE, "phase": "health-only", "revision_arn": "arn:td/f:2", "image": "img"}
        item |= {"run_id": "r0", "at": "2026-11-28T06:00:00+00:00", "spec_hash": "h"}
        client.put_item(
            TableName="snail-state",
            Item={"pk": {"S": f"SVC#{SERVICE}"}, "sk": {"S": "GOOD#000000000001"}}
            | {k: {"S": v} for k, v in item.items()},
        )
        store = DynamoStore(client, "snail-state")
        assert store.last_good(SERVICE).revision_arn == "arn:td/f:2"
        store.put_mark(good("arn:td/f:3", "hybrid-ml", 1))
        assert [g.revision_arn for g in store.good_history(SERVICE)] == ["arn:td/f:3", "arn:td/f:2"]
        assert len(store.marks(SERVICE)) == 2
