"""snail status: what the service runs, which phase that is, last good per phase, lock holder, in-flight run."""

from __future__ import annotations

import time

import click

from orchestrator.cli.app import App, pass_app
from orchestrator.errors import ExitCode
from orchestrator.release_memory import QUARANTINED, Block
from orchestrator.state.base import GOOD, HELD, Mark, current_marks


@click.command("status")
@pass_app
def command(app: App) -> int:
    """Show the live revision and phase, the good revisions, the lock and any in-flight run."""
    from orchestrator.aws.ecs import EcsClient, short_name
    from orchestrator.release_memory import blocks, status_lines

    p = app.pipeline
    svc = EcsClient(app.aws()).service(p.service.cluster, p.service.name)
    store = app.store
    app.engine().sync(svc.task_definition if svc else None)  # a fresh checkout learns the marks from AWS
    history = store.good_history(p.service.name)
    marks = store.marks(p.service.name)
    live = svc.task_definition if svc else None
    live_good = next((g for g in history if g.revision_arn == live), None)
    per_phase = {name: next((g for g in history if g.phase == name), None) for name in p.phase_names()}
    holder = store.lock_holder(p.service.name, time.time())
    inflight = [r for r in store.runs(p.service.name, 50) if r.status == "running"]
    open_steps = store.open_steps(p.service.name)
    held = held_phases(marks, [n for n, g in per_phase.items() if g is None])
    stale = stale_quarantines(app, blocks(marks))
    data = {
        "service": p.service.name,
        "exists": svc is not None,
        "revision": live,
        "phase": live_good.phase if live_good else None,
        "deployments": [d.__dict__ for d in svc.deployments] if svc else [],
        "good": {k: (v.to_dict() if v else None) for k, v in per_phase.items()},
        "lock": holder,
        "in_flight": [r.to_dict() for r in inflight],
        "open_steps": [{"run_id": s.run_id, "kind": s.kind, "phase": s.phase, "intent": s.intent} for s in open_steps],
        "blocked": [
            {"kind": b.kind, "phase": b.phase, "revision": b.revision_arn, "message": b.message()}
            for b in blocks(marks)
            if b not in stale
        ],
        "held": {name: h.revision_arn for name, h in held.items()},
    }
    lines = []
    if svc is None:
        lines.append(f"service {p.service.name}: MISSING in cluster {p.service.cluster}")
    else:
        prim = svc.primary
        lines.append(
            f"service {p.service.name}: {short_name(svc.task_definition)} — "
            + (
                f"phase {live_good.phase} (passed its gates {live_good.at})"
                if live_good
                else "NOT a revision that passed snail's gates"
            )
        )
        if prim:
            lines.append(
                f"  primary deployment {prim.id}: {prim.rollout_state}, {prim.running}/{prim.desired} running, {prim.failed} failed"
            )
        for d in svc.others:
            lines.append(f"  draining {d.id}: {d.task_definition.rsplit('/', 1)[-1]}, {d.running} running")
        from orchestrator.engine import strategies  # blue-green / canary / linear in progress

        data["service_deployment"], more = strategies.status(app.aws(), svc)
        lines.extend(more)
    for name, g in per_phase.items():
        h = held.get(name)
        if g is not None:
            lines.append(f"  [x] {name}: {g.revision_arn.rsplit('/', 1)[-1]} {g.image} ({g.at})")
        elif h is not None:
            passed = "passed its gates, " if h.prior == GOOD else ""
            lines.append(
                f"  [h] {name}: {h.short} {passed}held since {h.at} by {h.by or '?'}"
                + (f" ({h.reason})" if h.reason else "")
                + f": `snail release {h.short}` lifts it"
            )
        else:
            lines.append(f"  [ ] {name}: never passed")
    lines.append(
        "lock: "
        + (
            f"held by run {holder['run_id']} ({holder.get('user')}@{holder.get('host')}, {holder.get('command')}) since {holder.get('since')}"
            if holder
            else "free"
        )
    )
    for r in inflight:
        lines.append(f"in flight: run {r.run_id} ({r.command}) since {r.started_at}")
    for s in open_steps:
        lines.append(f"unfinished step: {s.kind} of run {s.run_id} ({s.phase}) — the next run reconciles it")
    hidden = {b.message() for b in stale}
    lines.extend(f"  ! {line}" for line in status_lines(marks) if line not in hidden)
    app.emit(data, "\n".join(lines))
    return ExitCode.OK


def held_phases(marks: list[Mark], phases: list[str]) -> dict[str, Mark]:
    """Phases (of those with no good revision) whose newest revision is held: a human rolled back from it. Shown
    as held, not as `never passed`: it may well have passed (the hold keeps the verdict it replaced)."""
    out: dict[str, Mark] = {}
    for m in current_marks(marks):
        if m.phase in phases and m.phase not in out and m.verdict == HELD:
            out[m.phase] = m
    return out


def stale_quarantines(app: App, found: list[Block]) -> list[Block]:
    """Quarantines of specs no phase file describes any more (the phase changed since, or is gone): they block
    nothing, so status does not list them. The current specs are the plan's (no build, no change); if planning
    fails, nothing is hidden."""
    quarantined = [b for b in found if b.kind == QUARANTINED]
    if not quarantined:
        return []
    try:
        from orchestrator.engine.executor import RunOptions

        plan = app.engine().plan(RunOptions(), with_diff=False)
    except Exception:  # noqa: BLE001 - status still shows everything it knows
        return []
    current = {(pp.phase.name, pp.spec_hash) for pp in plan.phases}
    return [b for b in quarantined if (b.phase, b.spec_hash) not in current]
