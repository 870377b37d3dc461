"""Benchmark: rebuilding the verdict marks from AWS (`snail state sync`) for 10, 100 and 1000 revisions against
moto's server over HTTP: API calls and seconds for a sync into an empty store (default, --full with 1 and 8
describe workers, without the tagging API), then for a current cache (ensure_synced: none; forced). Not a test.

    .venv/bin/python bench/sync_marks.py [10 100 1000]
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")

FAMILY = SERVICE = "shine-api-gateway"


def seed(ecs: object, n: int) -> None:
    """n revisions of the family, every one carrying a good mark (the worst case: every one is adopted)."""
    from orchestrator.aws.tagging import RevisionTags
    from orchestrator.marks import MarkWriter
    from orchestrator.state.base import GOOD, Mark
    from orchestrator.state.sqlite import SqliteStore

    with tempfile.TemporaryDirectory() as d:
        writer = MarkWriter(RevisionTags(ecs), SqliteStore(Path(d) / "seed.db"))
        for i in range(n):
            td = ecs.register_task_definition(  # type: ignore[attr-defined]
                family=FAMILY,
                containerDefinitions=[{"name": "api", "image": f"repo@sha256:{i:064x}", "memory": 256}],
            )["taskDefinition"]
            at = f"2026-11-29T{i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}+00:00"
            mark = Mark(SERVICE, td["taskDefinitionArn"], "health-only", GOOD, spec_hash=f"s{i}", at=at, live_since=at)
            writer.write(mark, td)


def measure(url: str, n: int) -> list[dict[str, object]]:
    """Sync n revisions (every one marked, as in a family snail manages) into an empty store, each way; then
    with a current cache."""
    import time

    import boto3
    import requests

    from orchestrator.aws.tagging import RevisionTags
    from orchestrator.marks import ensure_synced, sync
    from orchestrator.state.sqlite import SqliteStore

    requests.post(f"{url}/moto-api/reset", timeout=10)
    ecs = boto3.client("ecs", region_name="us-east-1", endpoint_url=url)
    tagging = boto3.client("resourcegroupstaggingapi", region_name="us-east-1", endpoint_url=url)
    seed(ecs, n)
    calls: Counter = Counter()
    for client in (ecs, tagging):
        client.meta.events.register("before-call", lambda model, **_: calls.update([model.name]))
    cases = [
        ("empty store, tags API, newest 50 verified (default)", {"tagging": tagging}),
        ("empty store, tags API, --full, 1 describe worker", {"tagging": tagging, "full": True, "workers": 1}),
        ("empty store, tags API, --full, 8 describe workers", {"tagging": tagging, "full": True}),
        ("empty store, no tags API (fallback), newest 50", {}),
    ]
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for i, (label, kw) in enumerate(cases):
            store = SqliteStore(Path(d) / f"{i}.db")
            calls.clear()
            t = time.perf_counter()
            tags = RevisionTags(ecs, kw.pop("tagging", None))
            report = sync(store, tags, SERVICE, FAMILY, **kw)  # type: ignore[arg-type]
            rows.append({"revisions": n, "case": label, "calls": dict(calls), "seconds": time.perf_counter() - t})
            assert len(report.adopted) == report.described
        store = SqliteStore(Path(d) / "1.db")  # the --full one: every revision cached and verified
        latest = ecs.list_task_definitions(familyPrefix=FAMILY)["taskDefinitionArns"][-1]
        for label, force in (
            ("cache current: ensure_synced, live revision cached", False),
            ("cache current, forced", True),
        ):
            calls.clear()
            t = time.perf_counter()
            ensure_synced(store, RevisionTags(ecs, tagging), SERVICE, FAMILY, live_revision=latest, force=force)
            rows.append({"revisions": n, "case": label, "calls": dict(calls), "seconds": time.perf_counter() - t})
    return rows


def main(sizes: list[int]) -> None:
    """Print a Markdown table."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    srv = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    srv.start()
    host, port = srv.get_host_and_port()
    try:
        print("| revisions | case | API calls | seconds |")
        print("|---|---|---|---|")
        for n in sizes:
            for r in measure(f"http://{host}:{port}", n):
                calls = ", ".join(f"{k} {v}" for k, v in sorted(r["calls"].items())) or "none"  # type: ignore[attr-defined]
                print(f"| {r['revisions']} | {r['case']} | {calls} | {r['seconds']:.2f} |")
    finally:
        srv.stop()


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [10, 100, 1000])
