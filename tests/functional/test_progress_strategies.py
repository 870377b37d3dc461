"""The progress display during an ECS blue-green deployment whose green tasks fail: never silent for a poll (issue
19 item 7). moto + the sandbox agent (green's tasks exit 3 and the circuit breaker rolls back) + the engine on a
fake clock; what the engine reports goes through the real display, live at 80 columns and plain."""

from __future__ import annotations

import io
from typing import Any

from orchestrator.cli.progress import Progress
from orchestrator.engine import traffic
from orchestrator.engine.executor import Engine, RunOptions
from tests.functional.test_strategies_engine import REGION, SERVICE, World
from tests.harness.pipeline import image


def test_a_blue_green_phase_whose_green_tasks_fail_says_something_every_poll(aws, tmp_path, http_server) -> None:
    """Green's tasks exit 3 while ECS scales up green (the breaker rolls back after 3 failures): every poll of the
    deployment reports ECS's stage with green's counts; at each poll the live status area (80 columns) has one
    row for it, no wider than 80, with the counts of that poll; the plain log prints a line each time they move."""
    from rich.console import Console, Group

    from orchestrator.aws.session import AwsContext

    world = World(tmp_path, http_server)
    try:
        world.serve("a")
        world.serve("b")
        world.launcher.exit_code_for = lambda img: 3 if img == image("b") else None
        p = world.pipeline({"one": "a", "two": "b"})
        assert world.engine(p).run(RunOptions(to_phase="one")).status == "succeeded"

        reports: list[tuple[str, dict[str, Any]]] = []
        plain = io.StringIO()
        log = Progress(plain, live=False, monotonic=world.clock.monotonic)
        screen = Progress(io.StringIO(), live=True, monotonic=world.clock.monotonic, width=80, color=False)

        def progress(kind: str, data: dict[str, Any]) -> None:
            reports.append((kind, data))
            log(kind, data)
            screen(kind, data)

        polls: list[tuple[int, list[str]]] = []  # (reports so far, the status area's rows) at each strategy poll

        def at_poll(seconds: float) -> None:
            if seconds != traffic.POLL or screen._view is None:
                return
            rec = Console(file=io.StringIO(), width=80, record=True)
            rec.print(Group(*screen._view.status_lines()))
            polls.append((len(reports), [r for r in rec.export_text().splitlines() if r.strip()]))

        sleep = world.clock.sleep

        def sleep_and_look(seconds: float) -> None:
            at_poll(seconds)
            sleep(seconds)

        world.clock.sleep = sleep_and_look  # type: ignore[method-assign]
        engine = Engine(p, AwsContext(region=REGION), world.store, clock=world.clock, progress=progress)
        out = engine.run(RunOptions(from_phase="two"))
        screen.close()
    finally:
        world.close()
    assert (out.exit_code, out.status) == (1, "rolled_back"), out.message
    waits = [d for k, d in reports if k == "gate_waiting" and d.get("gate") == "blue-green"]
    assert len(polls) >= 2 and len(waits) >= len(polls), (len(polls), len(waits))
    counts = [n for n, _ in polls]
    assert all(b > a for a, b in zip(counts, counts[1:], strict=False)), counts  # a report between every two polls
    failed_seen = set()
    for _, rows in polls:
        mine = [r for r in rows if "[two] blue-green: " in r]
        assert len(mine) == 1 and len(mine[0]) <= 80, rows
        assert "running" in mine[0] and "failed" in mine[0] and "next look in" in mine[0], mine  # whole, not cut
        failed_seen.add(mine[0].split(" failed")[0].rsplit(" ", 1)[-1])
    assert len(failed_seen) >= 2, failed_seen  # the failures were counted as they happened, not at the end
    lines = [line for line in plain.getvalue().splitlines() if "blue-green: " in line]
    assert len(lines) >= len(failed_seen), plain.getvalue()
    assert world.store.last_good(SERVICE, "two") is None
