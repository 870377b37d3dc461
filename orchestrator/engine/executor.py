"""The engine: executes the plan phase by phase; any failure after a deploy rolls back to the last good revision.

Each phase: image -> register revision (reused if identical) -> update service -> gates -> bake -> mark good.
Every mutation is a journal step (intent written before, result after); every decision is a trail event."""

from __future__ import annotations

import getpass
import os
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from orchestrator import taskdef
from orchestrator.aws.ecs import EcsClient, revision_of
from orchestrator.aws.session import AwsContext
from orchestrator.clock import Clock, SystemClock
from orchestrator.config.model import GateSpec, Phase, Pipeline
from orchestrator.engine.images import Images
from orchestrator.engine.journal import Journal
from orchestrator.engine.lease import Heartbeat
from orchestrator.engine.outcome import Outcome
from orchestrator.engine.rollback import RollbackMixin, _Deployed
from orchestrator.errors import (
    ExitCode,
    GateFailed,
    Interrupted,
    Locked,
    PreflightFailed,
    SnailError,
    UsageError,
)
from orchestrator.gates import GateContext, ecs_rollout, run_gate
from orchestrator.plan import PhasePlan, Plan, make_plan
from orchestrator.procs import pid_alive
from orchestrator.state.base import GoodRecord, RunRecord, StateStore


def new_run_id(clock: Clock) -> str:
    """A sortable, readable run id: r-YYYYmmdd-HHMMSS-xxxx."""
    return clock.now().strftime("r-%Y%m%d-%H%M%S-") + secrets.token_hex(2)


@dataclass
class RunOptions:
    """What the user asked `run` / `promote` for."""

    from_phase: str | None = None
    to_phase: str | None = None
    dry_run: bool = False
    create_service: bool = False
    approved: set[str] = field(default_factory=set)
    only: str | None = None  # promote: exactly this phase
    command: str = "run"


class Engine(RollbackMixin):
    """Runs phases, gates and rollbacks for one service."""

    def __init__(
        self,
        pipeline: Pipeline,
        aws: AwsContext,
        store: StateStore,
        *,
        clock: Clock | None = None,
        images: Images | None = None,
        progress: Callable[[str, dict[str, Any]], None] | None = None,
        diagnose: Callable[[str, Any, Any], str] | None = None,
    ) -> None:
        self.p = pipeline
        self.aws = aws
        self.store = store
        self.clock = clock or SystemClock()
        self.ecs = EcsClient(aws)
        self.images = images or Images(pipeline, aws)
        self.progress = progress
        self.diagnose = diagnose
        self.svc = pipeline.service

    # ---------------------------------------------------------------- selection and planning
    def select(self, opts: RunOptions) -> list[Phase]:
        """The phases a command covers, in pipeline order."""
        names = self.p.phase_names()
        for n in (opts.from_phase, opts.to_phase, opts.only):
            if n and n not in names:
                raise UsageError(f"no phase named {n!r} (phases: {', '.join(names)})")
        if opts.only:
            return [self.p.phase(opts.only)]
        lo = names.index(opts.from_phase) if opts.from_phase else 0
        hi = names.index(opts.to_phase) if opts.to_phase else len(names) - 1
        if lo > hi:
            raise UsageError(f"--from {opts.from_phase} comes after --to {opts.to_phase}")
        return list(self.p.phases[lo : hi + 1])

    def plan(self, opts: RunOptions, with_diff: bool = True) -> Plan:
        """The read-only plan for these options (the diff costs one more describe; `run` does without it)."""
        return make_plan(
            self.p,
            self.ecs,
            self.store,
            self.images,
            self.select(opts),
            explicit_start=bool(opts.from_phase or opts.only),
            with_diff=with_diff,
        )

    # ---------------------------------------------------------------- locking and run records
    def _begin(self, command: str, phases: list[str]) -> Journal:
        run_id = new_run_id(self.clock)
        holder = {
            "run_id": run_id,
            "user": getpass.getuser(),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "command": command,
            "since": self.clock.now().isoformat(timespec="seconds"),
        }
        taken = self._acquire(holder)
        self.store.start_run(
            RunRecord(
                run_id,
                self.svc.name,
                command,
                "running",
                holder["since"],
                user=holder["user"],
                host=holder["host"],
                phases=phases,
            )
        )
        j = Journal(self.store, run_id, self.svc.name, self.clock, self.progress)
        j.event(
            "run_started",
            f"{command} started by {holder['user']}@{holder['host']}: phases {', '.join(phases) or '-'}",
            command=command,
        )
        if taken:
            why = f"its process {taken.get('pid')} is gone" if taken.get("dead_pid") else "its lease expired"
            j.event(
                "lock_taken_over",
                f"took over the lock of run {taken.get('run_id')} ({why}; "
                f"{taken.get('user')}@{taken.get('host')}, {taken.get('command')} since {taken.get('since')})",
                previous=taken,
            )
        self._reconcile(j)
        return j

    def _acquire(self, holder: dict[str, Any]) -> dict[str, Any] | None:
        """Take the lease; a holder on this host whose process is gone is taken over at once (no lease wait)."""
        try:
            return self.store.acquire_lock(self.svc.name, holder, self.p.state.lease, time.time())
        except Locked as exc:
            old = exc.holder
            if old.get("host") != holder["host"] or not old.get("pid") or pid_alive(int(old["pid"])):
                raise
            self.store.force_unlock(self.svc.name)
            self.store.acquire_lock(self.svc.name, holder, self.p.state.lease, time.time())
            return {**old, "dead_pid": True}

    def _finish(self, j: Journal, outcome: Outcome) -> Outcome:
        j.phase = None
        j.event("run_finished", outcome.message, status=outcome.status, exit_code=outcome.exit_code)
        self.store.finish_run(j.run_id, outcome.status, outcome.exit_code, outcome.message, j.now())
        self.store.release_lock(self.svc.name, j.run_id)
        outcome.run_id = j.run_id
        return outcome

    def _reconcile(self, j: Journal) -> None:
        """What a crashed run left behind is closed with what ECS really shows, and the trail says so.

        We hold the lock, so any other run still marked running is dead: its open steps (intent written,
        result never) are closed as interrupted, and the run itself is marked interrupted."""
        live: str | None = None
        looked = False
        for st in self.store.open_steps(self.svc.name):
            if st.run_id == j.run_id:
                continue
            if not looked:
                svc = self.ecs.service(self.svc.cluster, self.svc.name)
                live, looked = (svc.task_definition if svc else None), True
            target = st.intent.get("to")
            happened = bool(target) and live == target
            self.store.end_step(
                st.step_id,
                "interrupted",
                {"reconciled_by": j.run_id, "service_revision": live, "took_effect": happened},
                j.now(),
            )
            self._mark_interrupted(
                j,
                st.run_id,
                f"during {st.kind} ({st.phase or '-'}); the service runs {(live or '?').rsplit('/', 1)[-1]}",
                step=st.kind,
                took_effect=happened,
            )
        for run in self.store.runs(self.svc.name, 50):
            if run.run_id != j.run_id and run.status == "running":
                done = [e for e in self.store.events(self.svc.name, run.run_id) if e.kind != "run_started"]
                self._mark_interrupted(
                    j, run.run_id, f"after: {done[-1].message}" if done else "before it changed anything"
                )

    def _mark_interrupted(self, j: Journal, run_id: str, where: str, **data: Any) -> None:
        run = self.store.get_run(run_id)
        if run and run.status == "running":
            self.store.finish_run(
                run_id, "interrupted", ExitCode.INTERRUPTED, f"interrupted {where}; reconciled by {j.run_id}", j.now()
            )
        j.event("reconciled", f"run {run_id} was interrupted {where}", run=run_id, **data)

    def resume_point(self) -> str:
        """The phase an interrupted run was in (for `run --resume`); UsageError when nothing was interrupted."""
        for r in self.store.runs(self.svc.name, 20):
            if r.status in ("running", "interrupted"):
                phases = [e.phase for e in self.store.events(self.svc.name, r.run_id) if e.phase]
                names = self.p.phase_names()
                for ph in reversed(phases):
                    if ph in names:
                        return ph
                return r.phases[0] if r.phases else names[0]
            if r.status not in ("noop",):
                break
        raise UsageError("nothing to resume: the last run was not interrupted (see `snail history`)")

    # ---------------------------------------------------------------- run
    def run(self, opts: RunOptions) -> Outcome:
        """Run the selected phases; roll back on any failure after a deploy."""
        plan = self.plan(opts, with_diff=opts.dry_run)
        if opts.dry_run:
            return Outcome(ExitCode.OK, "dry run: nothing was changed", plan=plan, status="dry_run")
        if plan.service is None and not opts.create_service:
            raise PreflightFailed(
                f"service {self.svc.name!r} does not exist in cluster {self.svc.cluster!r} (the field log's first "
                "incident): run with --create-service to create it from pipeline.yaml, or check cluster/region"
            )
        j = self._begin(opts.command, [pp.phase.name for pp in plan.todo])
        try:
            with Heartbeat(self.store, self.svc.name, j.run_id, self.p.state.lease):
                return self._finish(j, self._run_phases(j, plan, opts))
        except SnailError as exc:
            status = exc.data.get("status") or {
                ExitCode.ROLLED_BACK: "rolled_back",
                ExitCode.INTERRUPTED: "interrupted",
            }.get(exc.exit_code, "failed")
            self._finish(j, Outcome(exc.exit_code, str(exc), status=status))
            exc.data["run_id"] = j.run_id
            raise

    def _run_phases(self, j: Journal, plan: Plan, opts: RunOptions) -> Outcome:
        if not plan.todo:
            last = plan.phases[-1] if plan.phases else None
            msg = (
                (
                    f"nothing to do: phase {last.phase.name} is already live and good "
                    f"({last.good.revision_arn.rsplit('/', 1)[-1]}, image {last.identity})"
                )
                if last and last.good
                else "nothing to do"
            )
            j.event("noop", msg)
            return Outcome(ExitCode.OK, msg, status="noop")
        for pp in plan.phases:
            if pp.skip:
                j.phase = pp.phase.name
                j.event("phase_skipped", f"{pp.phase.name}: {pp.skip}")
        done = []
        for pp in plan.todo:
            if pp.phase.manual and pp.phase.name not in opts.approved and opts.only != pp.phase.name:
                j.phase = pp.phase.name
                msg = f"phase {pp.phase.name} needs manual approval: run `snail promote {pp.phase.name}` to continue"
                j.event("paused", msg)
                return Outcome(ExitCode.OK, msg, status="paused")
            try:
                self._run_phase(j, plan, pp, create=opts.create_service)
            except _Deployed as d:
                self._roll_back(j, pp.phase.name, d)
            except KeyboardInterrupt:
                raise Interrupted(f"interrupted before phase {pp.phase.name} changed the service") from None
            except SnailError as exc:
                if isinstance(exc, PreflightFailed):
                    raise
                svc = self.ecs.service(self.svc.cluster, self.svc.name)
                where = svc.task_definition.rsplit("/", 1)[-1] if svc else "(no service)"
                msg = (
                    f"phase {pp.phase.name} failed before it changed the service: {exc}; nothing was deployed, "
                    f"the service stays on {where}"
                )
                j.event("phase_failed", msg, error=type(exc).__name__)
                exc.message, exc.args = msg, (msg,)
                exc.data["status"] = "failed"
                raise
            done.append(pp.phase.name)
        return Outcome(ExitCode.OK, f"done: {', '.join(done)} passed their gates", status="succeeded")

    def _gate_ctx(self, j: Journal, revision_arn: str, phase: str) -> GateContext:
        return GateContext(
            cluster=self.svc.cluster,
            service=self.svc.name,
            revision_arn=revision_arn,
            port=self.svc.port,
            ecs=self.ecs,
            aws=self.aws,
            endpoint=self.svc.endpoint,
            deployed_at=self.clock.now(),
            clock=self.clock,
            progress=j.progress,
            phase=phase,
            workdir=str(self.p.root),
        )

    def _run_phase(self, j: Journal, plan: Plan, pp: PhasePlan, create: bool) -> None:
        ph = pp.phase
        j.phase = ph.name
        j.event("phase_started", f"phase {ph.name} started", gates=[g.label for g in ph.gates])
        with j.step("image", phase=ph.name, identity=pp.identity) as r:
            img = self.images.resolve(ph)
            r.update(ref=img.ref, built=img.built, pushed=img.pushed)
        verb = "built and pushed" if img.pushed else "built" if img.built else "reused"
        j.event(
            "image_ready",
            f"image {verb}: {img.ref}",
            ref=img.ref,
            digest=img.digest,
            built=img.built,
            pushed=img.pushed,
        )
        base = plan.base or {}
        desired = taskdef.compose(base, self.svc, ph, img.ref)
        svc = self.ecs.service(self.svc.cluster, self.svc.name)  # registering below does not change the service
        arn = self._register(j, ph, desired, pp.spec_hash, img.digest, svc)
        if svc is None:
            if not create:
                raise PreflightFailed(f"service {self.svc.name!r} disappeared")
            with j.step("create_service", to=arn) as r:
                from orchestrator.doctor import create_service

                r["service_arn"] = create_service(self.p, self.aws, arn)
            j.event("service_created", f"created missing ECS service {self.svc.name!r} on {arn.rsplit('/', 1)[-1]}")
            before = None
        else:
            before = svc.task_definition
        deployed_at = self.clock.now()
        try:
            if before is not None and before != arn:
                with j.step("update_service", **{"from": before, "to": arn}) as r:
                    after = self.ecs.update_service(self.svc.cluster, self.svc.name, arn)
                    r["deployment"] = after.primary.id if after.primary else None
                j.event(
                    "service_updated",
                    f"service {self.svc.name} -> {arn.rsplit('/', 1)[-1]}",
                    previous=before,
                    revision=arn,
                )
            elif before == arn:
                j.event("service_unchanged", f"service already runs {arn.rsplit('/', 1)[-1]}; gating it again")
            ctx = self._gate_ctx(j, arn, ph.name)
            self._gates(j, ph.gates, ctx, ph.name)
            if ph.bake > 0:
                j.progress("baking", {"seconds": ph.bake})
                self.clock.sleep(ph.bake)
                self._after_bake(j, ph, ctx)
                j.event("bake_done", f"baked {ph.bake:g}s: still ours and healthy")
        except _Deployed:
            raise
        except (SnailError, KeyboardInterrupt) as exc:
            raise _Deployed(exc, arn, deployed_at) from None
        self.store.mark_good(
            GoodRecord(self.svc.name, ph.name, arn, img.ref, img.digest, j.run_id, j.now(), pp.spec_hash)
        )
        j.event(
            "phase_passed",
            f"phase {ph.name} passed its gates on {arn.rsplit('/', 1)[-1]}: marked good",
            revision=arn,
            image=img.ref,
        )

    def _gates(self, j: Journal, gates: tuple[GateSpec, ...], ctx: GateContext, phase: str) -> None:
        for g in gates:
            v = run_gate(g, ctx)
            data = {"gate": g.label, "status": v.status, "attempts": v.attempts, "evidence": v.evidence}
            if v.passed:
                if v.attempts > 1:
                    j.event("gate_passed", f"[x] {g.label}: {v.summary} (after {v.attempts} attempts)", **data)
                else:
                    j.event("gate_passed", f"[x] {g.label}: {v.summary}", **data)
                continue
            j.event("gate_failed", f"[ ] {g.label}: {v.status}: {v.summary}", **data)
            raise GateFailed(phase, v)

    def _after_bake(self, j: Journal, ph: Phase, ctx: GateContext) -> None:
        """After the bake: the service must still run our revision (nobody replaced it), alarms still quiet."""
        v = ecs_rollout.judge(self.ecs.service(self.svc.cluster, self.svc.name), ctx.revision_arn, "bake")
        if v.status == "failed":
            j.event("gate_failed", f"[ ] bake: {v.summary}", gate="bake", status=v.status, evidence=v.evidence)
            raise GateFailed(ph.name, v)
        self._gates(j, tuple(g for g in ph.gates if g.type == "alarm"), ctx, ph.name)

    def _register(self, j: Journal, ph: Phase, desired: dict[str, Any], spec: str, digest: str | None, svc: Any) -> str:
        """Register the phase's revision, or reuse an identical one (same spec hash and image): the service's
        current revision or the family's newest are the candidates."""
        image = taskdef.container(desired, self.svc.container)["image"]  # type: ignore[index]
        candidates = []
        if svc is not None and svc.task_definition:
            candidates.append(svc.task_definition)
        latest = self.ecs.latest_revision(desired["family"])
        if latest and latest not in candidates:
            candidates.append(latest)
        for arn in candidates:
            td, tags = self.ecs.task_definition(arn)
            cd = taskdef.container(td, self.svc.container)
            if tags.get(taskdef.TAG_SPEC) == spec and cd is not None and cd.get("image") == image:
                j.event(
                    "revision_reused", f"identical revision {arn.rsplit('/', 1)[-1]} reused (spec {spec})", revision=arn
                )
                return arn
        tags = {taskdef.TAG_PHASE: ph.name, taskdef.TAG_SPEC: spec, taskdef.TAG_RUN: j.run_id}
        if digest:
            tags[taskdef.TAG_DIGEST] = digest
        with j.step("register", family=desired["family"], spec=spec, image=image) as r:
            arn = self.ecs.register_revision(desired, tags)
            r["revision"] = arn
        j.event(
            "revision_registered",
            f"registered task definition revision {revision_of(arn)} ({arn.rsplit('/', 1)[-1]})",
            revision=arn,
        )
        return arn
