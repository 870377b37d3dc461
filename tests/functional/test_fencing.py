"""A partitioned lock holder's late write (issue 25): ECS has no conditional update, so a late write is made
impossible by time (docs/locks.md). Holder A reaches AWS (ECS and the DynamoDB state) through a proxy that, from
A's UpdateService on, holds every call of A for 8 s; its lease (2 s) lapses, runner B takes over and deploys. A's
UpdateService used to land 8 s later and move production back to A's release. Real time: a 2 s lease, calls bounded
by 0.5 s + 1 s, bake 0 s."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from typing import Any

import boto3

from orchestrator.aws.session import AwsContext
from orchestrator.config import load_pipeline
from orchestrator.engine.executor import Engine, RunOptions
from orchestrator.state.dynamodb import DynamoStore, create_table
from tests.functional.slow_proxy import SlowProxy
from tests.functional.world import REGION, live
from tests.harness.pipeline import image, write_pipeline

SERVICE = "shine-api-gateway"
TABLE = "snail-fencing"
LEASE = 2.0
HOLD = 8.0  # the partition: longer than A's lease and B's whole release, shorter than botocore's 30 s read timeout


def engine(root: Path, tag: str, url: str, **kw: Any) -> Engine:
    """An engine for a one-phase pipeline deploying image(tag), its AWS calls (and its DynamoDB state) sent to url."""
    path = write_pipeline(root, {"health-only": tag}, {"health-only": "bake: 0s\n"})
    p = load_pipeline(path)
    p = dataclasses.replace(p, state=dataclasses.replace(p.state, lease=LEASE))  # below the 10 s a file may say
    aws = AwsContext(region=REGION, endpoint_url=url, connect_timeout=0.5, read_timeout=1.0)
    return Engine(p, aws, DynamoStore(aws.client("dynamodb"), TABLE), **kw)


def test_a_partitioned_holders_late_update_never_lands_after_the_takeover(world, tmp_path: Path) -> None:
    """A is cut off at its UpdateService: A's held attempts are given up at their bound (the proxy drops them),
    A sends nothing once its lease may have expired, B takes over after the lease and waits out A's call bound
    before its first change. Production ends on B's release; A's UpdateService never reached ECS."""
    create_table(boto3.client("dynamodb", region_name=REGION, endpoint_url=world["url"]), TABLE, wait_delay=0)
    world["serve"]("a"), world["serve"]("b")
    cut, healed = threading.Event(), threading.Event()

    def partition(op: str) -> float:
        if op == "UpdateService":
            cut.set()
        return HOLD if cut.is_set() and not healed.is_set() else 0.0

    with SlowProxy(world["url"], delay=partition) as proxy:
        a = engine(tmp_path / "a", "a", proxy.url)
        b = engine(tmp_path / "b", "b", world["url"], lock_wait=30.0)
        ended: dict[str, Any] = {}
        holder = threading.Thread(target=lambda: ended.update(a=a.run(RunOptions())), name="holder-a")
        holder.start()
        assert cut.wait(60), "A never reached its UpdateService"
        out = b.run(RunOptions())
        assert out.exit_code == 0, out.message
        healed.set()  # A's later calls get through again: it must still change nothing
        holder.join(120)
        assert not holder.is_alive()
    assert ended["a"].exit_code in (3, 4), ended["a"].message
    assert live(world) == b.store.good_history(SERVICE)[0].revision_arn
    td = world["ecs"].describe_task_definition(taskDefinition=live(world))["taskDefinition"]
    assert td["containerDefinitions"][0]["image"] == image("b")
    assert "UpdateService" in proxy.dropped and "UpdateService" not in proxy.forwarded, (
        proxy.forwarded,
        proxy.dropped,
    )
    taken = [e for e in b.store.events(SERVICE, out.run_id) if e.kind == "lock_taken_over"]
    assert taken and "the first change waits 1.5s for any late call of it" in taken[0].message
