"""The engine: executes a plan phase by phase; any failure after a deploy rolls back to the last good revision.

Each phase: image -> register revision (reused if identical) -> update service -> gates -> bake -> mark good.
Every mutation is a journal step (intent written before, result after); every decision is a trail event.
A phase returns a result value; a failure after the update, whatever raised it, becomes a rollback decision."""

from __future__ import annotations

import dataclasses
import getpass
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from orchestrator import taskdef
from orchestrator.aws.deployments import DeploymentsClient
from orchestrator.aws.ecs import EcsClient, ServiceView, revision_of, short_name
from orchestrator.aws.session import AwsContext
from orchestrator.clock import Clock, SystemClock
from orchestrator.config.gates import GateSpec, gates_hash
from orchestrator.config.model import Phase, Pipeline
from orchestrator.engine import bake, manual, strategies
from orchestrator.engine.deployer import ROLLING, TRAFFIC, DeployContext, Deployer, failed_after
from orchestrator.engine.journal import Journal
from orchestrator.engine.judging import Judge
from orchestrator.engine.lease import Heartbeat
from orchestrator.engine.outcome import UNEVENTFUL, Outcome
from orchestrator.engine.results import FailedAfterDeploy, FailedBeforeDeploy, PhasePassed, PhaseResult
from orchestrator.engine.rollback import Rollback, RollbackOutcome
from orchestrator.engine.rolling import RollingDeployer
from orchestrator.engine.traffic import TrafficDeployer
from orchestrator.errors import (
    AccessDenied,
    AwsError,
    CredentialsExpired,
    ExitCode,
    Locked,
    LockLost,
    PreflightFailed,
    SnailError,
    UsageError,
)
from orchestrator.gates.verdict import Action, Where, action
from orchestrator.images import Images, ResolvedImage
from orchestrator.plan import PhasePlan, Plan, make_plan
from orchestrator.state.base import Mark, RunRecord, StateStore
from orchestrator.trail.kinds import EventKind as K

DEPLOYERS: dict[str, Deployer] = {ROLLING: RollingDeployer(), TRAFFIC: TrafficDeployer()}  # plan's name -> who


class PlanFailed(SnailError):
    """AWS could not be read while planning, after the retries: the command stopped before it changed anything."""

    exit_code = ExitCode.ROLLED_BACK  # status "failed": the service never left its revision (not "human needed")


def _noted(message: str, failures: dict[str, Exception]) -> str:
    """The message, plus what the state store did not take at the end of a run (and its first error)."""
    if not failures:
        return message
    first = next(iter(failures.values()))
    return f"{message} (not recorded: {', '.join(failures)}: {type(first).__name__}: {first})"


def _nothing_to_do(plan: Plan) -> str:
    """What a plan with nothing to deploy says: the phase live and good, and any changed phase left behind it."""
    good = plan.live_good
    live = next((pp for pp in plan.phases if good is not None and pp.phase.name == good.phase), None)
    msg = (
        f"nothing to do: phase {live.phase.name} is already live and good "
        f"({short_name(good.revision_arn)}, image {live.identity})"
        if live is not None and good is not None
        else "nothing to do"
    )
    if plan.behind:  # a changed phase is not deployed: news, printed even with -q (cli/common.finish)
        msg += "; " + "; ".join(plan.behind)
    return msg


def _seconds(value: Any) -> float:
    """A number of seconds from a lock record (0 when absent or not a number)."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def new_run_id(clock: Clock) -> str:
    """A sortable, readable run id: r-YYYYmmdd-HHMMSS-xxxxxxxxxx. 40 random bits: two services' runs in the same
    second (a shared DynamoDB history) drew the same 16-bit suffix often enough to collide."""
    return clock.now().strftime("r-%Y%m%d-%H%M%S-") + secrets.token_hex(5)


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
    retry_failed: bool = False  # deploy a quarantined spec on purpose (recorded)


class Engine:
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
        lock_wait: float = 0.0,
        log_lines: Callable[[str], list[str]] | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.aws = aws
        self.store = store
        self.clock = clock or SystemClock()
        self.ecs = EcsClient(aws)
        self.deployments = DeploymentsClient(aws)
        self.images = images or Images(pipeline, aws)
        self.progress = progress
        self.spec = pipeline.service
        self.lock_wait = lock_wait
        self._heartbeat: Heartbeat | None = None
        self._contended = False  # the lock was held when this run asked for it: another run may have changed things
        self._not_before = 0.0  # monotonic (our clock): no change before it (a taken-over holder's late calls)
        self._checks = True
        self._marks: Any = None  # MarkWriter, made on the first verdict
        self._definitions: dict[str, dict[str, Any]] = {}  # revisions this run registered or described, by ARN
        self._unsaved_marks: list[Mark] = []  # verdicts the store refused (spooled at the end of the run)
        self.owned_alarms = strategies.owned_alarms(pipeline)
        self.judge = Judge(
            spec=pipeline.service,
            ecs=self.ecs,
            aws=aws,
            clock=self.clock,
            workdir=str(pipeline.root),
            lease=pipeline.state.lease,
            checkpoint=lambda: self._checkpoint(),  # late-bound: the lease is taken per run
            log_lines=log_lines,
        )
        # A fleet's `barrier: test-traffic`: called at the test-traffic hook once green passed its gates, before
        # CONTINUE; it returns when the whole wave passed, or raises (KeyboardInterrupt: go back, ROLLBACK).
        self.test_traffic_hold: Callable[[], None] | None = None
        self.rollbacks = Rollback(
            self.ecs,
            store,
            pipeline.service,
            self.judge.gates,
            fallback_gates=self._phase_gates,
            on_interrupt=pipeline.on_interrupt,
            diagnose=diagnose,
            owned_alarms=self.owned_alarms,
            clock=self.clock,
            deployments=self.deployments,
        )

    # ---------------------------------------------------------------- selection and planning
    def select(self, opts: RunOptions) -> list[Phase]:
        """The phases a command covers, in pipeline order."""
        names = self.pipeline.phase_names()
        for n in (opts.from_phase, opts.to_phase, opts.only):
            if n and n not in names:
                raise UsageError(f"no phase named {n!r} (phases: {', '.join(names)})")
        if opts.only:
            return [self.pipeline.phase(opts.only)]
        lo = names.index(opts.from_phase) if opts.from_phase else 0
        hi = names.index(opts.to_phase) if opts.to_phase else len(names) - 1
        if lo > hi:
            raise UsageError(f"--from {opts.from_phase} comes after --to {opts.to_phase}")
        return list(self.pipeline.phases[lo : hi + 1])

    def plan(self, opts: RunOptions, with_diff: bool = True) -> Plan:
        """The read-only plan for these options (the diff costs one more describe; `run` does without it)."""
        try:
            return make_plan(
                self.pipeline,
                self.ecs,
                self.store,
                self.images,
                self.select(opts),
                explicit_start=bool(opts.from_phase or opts.only),
                with_diff=with_diff,
                allow_failed=opts.retry_failed,
                sync=self.sync,
            )
        except CredentialsExpired as exc:  # exit 2: nothing changed, fix the credentials
            detail = exc.message.split(": ", 2)[-1]
            raise CredentialsExpired(exc.operation, exc.code, f"{detail}; nothing was changed") from None
        except AwsError as exc:  # after botocore's retries (throttling, 5xx), or denied: planning only reads
            later = "" if isinstance(exc, AccessDenied) else ": try again later"
            raise PlanFailed(f"{exc}; nothing was changed (planning only reads){later}", status="failed") from None

    def sync(self, live_revision: str | None, force: bool = False) -> None:
        """Rebuild the local marks from the revisions' tags when the cache is empty or behind (free when current)."""
        from orchestrator import marks
        from orchestrator.aws.tagging import RevisionTags

        if not force:  # current cache: no call, and no client made (a scheduled no-op stays at one call)
            cached = self.store.cached_revisions(self.spec.name)
            if cached and (live_revision is None or live_revision in cached):
                return
        family = marks.family_for(self.pipeline, live_revision)
        marks.ensure_synced(
            self.store,
            RevisionTags.of(self.aws),
            self.spec.name,
            family,
            live_revision=live_revision,
            force=force,
            container=self.spec.container,
        )

    def run(self, opts: RunOptions) -> Outcome:
        """Plan, then execute exactly that plan (the dry run only renders it)."""
        if not opts.dry_run:
            self.replay_spool()
        plan = self.plan(opts, with_diff=opts.dry_run)
        if opts.dry_run:
            return Outcome.of("dry_run", "dry run: nothing was changed", plan=plan)
        return self.execute(plan, opts)

    # ---------------------------------------------------------------- locking and run records
    def _begin(self, command: str, phases: list[str]) -> Journal:
        run_id = new_run_id(self.clock)
        from orchestrator.engine.lock import holder_record

        holder = holder_record(run_id, command, self.clock.now().isoformat(timespec="seconds"))
        holder["call_bound"] = self.aws.call_bound  # what a run taking our lock over must wait out (docs/locks.md)
        try:
            taken = self._acquire(holder)
        except Locked as exc:
            self._refused_by_lock(command, phases, exc)
            raise
        recorded = False
        try:
            self.store.start_run(
                RunRecord(
                    run_id,
                    self.spec.name,
                    command,
                    "running",
                    holder["since"],
                    user=holder["user"],
                    host=holder["host"],
                    phases=phases,
                )
            )
            recorded = True
            return self._started(run_id, command, phases, holder, taken)
        except BaseException:
            # nothing was changed yet: what this run took goes back, or the next run would find a lock that no
            # running process holds and wait out its lease (or exit 4) for nothing
            self._abandon(run_id, recorded)
            raise

    def _refused_by_lock(self, command: str, phases: list[str], exc: Locked) -> None:
        """A run refused because another run holds the lock is a row in the history, once per streak (the holder's
        own row comes first, so every new holder starts a new streak). Never in the way of the exit 4 itself."""
        waited = f" (after waiting {self.lock_wait:g}s)" if self.lock_wait else ""
        out = Outcome.of("locked", f"not run: {Locked(exc.holder).message}{waited}")
        holder = exc.holder

        def record(j: Journal) -> None:
            j.event(K.BLOCKED, out.message, block="locked", holder=holder)

        try:
            self._once_per_streak(out, RunOptions(command=command), phases, record)
        except Exception as err:  # noqa: BLE001 - the refusal is told on stderr and by exit 4 all the same
            structlog.get_logger(__name__).warning("refusal_not_recorded", error=str(err))

    def _abandon(self, run_id: str, recorded: bool) -> None:
        """Release the lock of a run that could not start (its record refused, or the reconciliation failed), and
        close its record if this run wrote one (a refused id may be another run's: that record is not ours)."""
        if recorded:
            try:
                at = self.clock.now().isoformat(timespec="seconds")
                self.store.finish_run(run_id, "failed", ExitCode.ROLLED_BACK, "could not start: nothing changed", at)
            except Exception:  # noqa: BLE001 - the next run reconciles a record left running
                pass
        try:
            self.store.release_lock(self.spec.name, run_id)
        except Exception:  # noqa: BLE001 - its lease expires, and a dead process is taken over at once
            pass

    def _started(
        self, run_id: str, command: str, phases: list[str], holder: dict[str, Any], taken: dict[str, Any] | None
    ) -> Journal:
        """The run's first trail events and the reconciliation of what crashed runs left (lock held, run recorded)."""
        j = Journal(self.store, run_id, self.spec.name, self.clock, self.progress)
        j.event(
            K.RUN_STARTED,
            f"{command} started by {holder['user']}@{holder['host']}: phases {', '.join(phases) or '-'}"
            + (" (after waiting for the lock)" if self._contended else ""),
            command=command,
        )
        if taken:
            why = taken.get("detail") or ("its process is gone" if taken.get("dead_pid") else "its lease expired")
            j.event(
                K.LOCK_TAKEN_OVER,
                f"took over the lock of run {taken.get('run_id')} ({why}; "
                f"{taken.get('user')}@{taken.get('host')}, {taken.get('command')} since {taken.get('since')})",
                previous=taken,
            )
        self._reconcile(j)
        return j

    def _acquire(self, holder: dict[str, Any]) -> dict[str, Any] | None:
        """Take the lease (waiting up to lock_wait); a dead or expired holder is taken over in one conditional
        write. Returns what was taken over (for the trail), or None."""
        from orchestrator.engine import lock

        observations = lock.FileObservations(
            self.pipeline.state_dir() / "lock-observed.json", clock_is_system=isinstance(self.clock, SystemClock)
        )

        def waiting(w: lock.LockWait) -> None:
            if self.progress is not None:
                self.progress(
                    "lock_wait",
                    {
                        "holder": w.holder,
                        "waited": w.waited,
                        "remaining": w.remaining,
                        "message": f"waiting for run {w.holder.get('run_id')}: {w.remaining:.0f}s left",
                    },
                )

        def busy() -> None:
            self._contended = True

        self._contended = False
        taken = lock.acquire(
            self.store,
            self.spec.name,
            holder,
            self.pipeline.state.lease,
            wait=self.lock_wait,
            clock=self.clock,
            on_wait=waiting,
            observations=observations,
            on_busy=busy,
        )
        if taken is None:
            return None
        self._contended = True
        detail = taken.detail
        if taken.reason == "expired":
            # a holder cut off from AWS may still have one call in flight, started before its lease ran out: it
            # lands (or fails) within that call's bound, so our first change waits the bound out
            bound = max(self.aws.call_bound, _seconds(taken.previous.get("call_bound")))
            self._not_before = self.clock.monotonic() + bound
            detail += f"; the first change waits {bound:g}s for any late call of it"
        return {**taken.previous, "dead_pid": taken.reason == "dead_process", "detail": detail}

    def _fence(self, operation: str) -> None:
        """Before each attempt of a call that changes something (aws.fence): a taken-over lock's bound is waited out
        first; once our lease may have expired, nothing more is sent (LockLost)."""
        hb = self._heartbeat
        if hb is None:
            return
        wait = self._not_before - self.clock.monotonic()
        if wait > 0:
            if self.progress is not None:
                self.progress("lock_wait", {"message": f"{operation} waits {wait:.1f}s: the last holder's late calls"})
            self.clock.sleep(wait)
        hb.fence(operation)

    def _finish(self, j: Journal, outcome: Outcome) -> Outcome:
        """Record how the run ended and release the lock. A store that still refuses writes (disk full, locked past
        its busy timeout) never changes the outcome or its exit code: the message says what was not recorded."""
        j = j.at(None)  # the run's own section
        outcome = dataclasses.replace(outcome, run_id=j.run_id)
        j.event(K.RUN_FINISHED, outcome.message, status=outcome.status, exit_code=outcome.exit_code)
        failures: dict[str, Exception] = {}
        try:
            j.flush()
        except Exception as exc:  # noqa: BLE001 - the journal logged every event: the log stream has them
            failures["its trail (see the log)"] = exc
        try:  # if not: the next run finds this run "running" and marks it interrupted
            message = _noted(outcome.message, failures)
            self.store.finish_run(j.run_id, outcome.status, outcome.exit_code, message, j.now())
        except Exception as exc:  # noqa: BLE001
            failures["how it ended"] = exc
        try:  # if not: a later run takes the lock over once this process is gone or its lease expired
            self.store.release_lock(self.spec.name, j.run_id)
        except Exception as exc:  # noqa: BLE001
            failures["the lock's release"] = exc
        outcome = dataclasses.replace(outcome, message=_noted(outcome.message, failures))
        if failures:
            outcome = self._spool_unsaved(j, outcome, failures)
        return outcome

    def _spool_unsaved(self, j: Journal, outcome: Outcome, failures: dict[str, Exception]) -> Outcome:
        """What the store refused at the end of a run goes to the local spool; the next run replays it. The outcome
        then says where it was kept."""
        from orchestrator.state import spool

        entries = [spool.step_entry(j.run_id, *s) for s in j.unsaved_steps]
        entries += [spool.event_entry(ev) for ev in j.unsaved]
        entries += [spool.mark_entry(m) for m in self._unsaved_marks]
        if "how it ended" in failures:
            entries.append(spool.finish_entry(j.run_id, outcome.status, outcome.exit_code, outcome.message, j.now()))
        if "the lock's release" in failures:
            entries.append(spool.release_entry(self.spec.name, j.run_id))
        kept = self.spool().keep(j.run_id, self.spec.name, entries)
        if kept is None:
            return outcome
        return dataclasses.replace(outcome, message=f"{outcome.message}; kept in {kept} for the next run to write")

    def spool(self) -> Any:
        """Where this machine keeps what a run could not write to the state store."""
        from orchestrator.state.spool import Spool

        return Spool(self.pipeline.state_dir() / "spool")

    def replay_spool(self) -> list[str]:
        """Write what earlier runs on this machine could not (before planning: the plan must see it)."""
        try:
            return list(self.spool().replay(self.store, self.spec.name))
        except Exception:  # noqa: BLE001 - a spool we cannot read never stops a run; its file stays
            return []

    def _reconcile(self, j: Journal) -> None:
        """What a crashed run left behind is closed with what ECS really shows, and the trail says so.

        We hold the lock, so any other run still marked running is dead: its open steps (intent written,
        result never) are closed as interrupted, and the run itself is marked interrupted."""
        live: str | None = None
        looked = False
        for st in self.store.open_steps(self.spec.name):
            if st.run_id == j.run_id:
                continue
            if not looked:
                service = self.ecs.service(self.spec.cluster, self.spec.name)
                live, looked = (service.task_definition if service else None), True
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
                f"during {st.kind} ({st.phase or '-'}); the service runs {short_name(live or '?')}",
                step=st.kind,
                took_effect=happened,
            )
        for run in self.store.runs(self.spec.name, 50):
            if run.run_id != j.run_id and run.status == "running":
                done = [e for e in self.store.events(self.spec.name, run.run_id) if e.kind != K.RUN_STARTED]
                self._mark_interrupted(
                    j, run.run_id, f"after: {done[-1].message}" if done else "before it changed anything"
                )

    def _mark_interrupted(self, j: Journal, run_id: str, where: str, **data: Any) -> None:
        run = self.store.get_run(run_id)
        if run and run.status == "running":
            self.store.finish_run(
                run_id, "interrupted", ExitCode.INTERRUPTED, f"interrupted {where}; reconciled by {j.run_id}", j.now()
            )
        j.event(K.RECONCILED, f"run {run_id} was interrupted {where}", run=run_id, **data)

    def resume_point(self) -> str:
        """The phase an interrupted run was in (for `run --resume`); UsageError when nothing was interrupted."""
        for r in self.store.runs(self.spec.name, 20):
            if r.status in ("running", "interrupted"):
                phases = [e.phase for e in self.store.events(self.spec.name, r.run_id) if e.phase]
                names = self.pipeline.phase_names()
                for ph in reversed(phases):
                    if ph in names:
                        return ph
                return r.phases[0] if r.phases else names[0]
            if r.status not in UNEVENTFUL:
                break
        raise UsageError("nothing to resume: the last run was not interrupted (see `snail history`)")

    # ---------------------------------------------------------------- execute
    def execute(self, plan: Plan, opts: RunOptions) -> Outcome:
        """Execute exactly `plan`: every phase to a result; a failure after a deploy to a recorded rollback."""
        if plan.service is None and not opts.create_service:
            raise PreflightFailed(
                f"service {self.spec.name!r} does not exist in cluster {self.spec.cluster!r} (the field log's first "
                "incident): run with --create-service to create it from pipeline.yaml, or check cluster/region"
            )
        if not plan.todo:
            return self._noop(plan, opts)
        if plan.todo[0].block is not None:
            return self._blocked(plan.todo[0], opts)
        j = self._begin(opts.command, [pp.phase.name for pp in plan.todo])
        outcome = Outcome.of("failed", "the run ended before it decided anything")
        replanned: Plan | None = None
        try:
            with Heartbeat(self.store, self.spec.name, j.run_id, self.pipeline.state.lease) as hb:
                self._heartbeat, self.aws.fence = hb, self._fence
                settled = None
                if self._contended:  # we queued behind another run: plan again from what it left
                    replanned = plan = self.plan(opts, with_diff=False)
                    settled = self._settled(j, plan)
                outcome = settled or self._execute(j, plan, opts)
        except KeyboardInterrupt:
            outcome = Outcome.of("interrupted", "interrupted before anything was deployed; nothing changed")
        except SnailError as exc:  # between phases: the service is on a good revision or unchanged
            code = exc.exit_code if exc.exit_code in (ExitCode.USAGE, ExitCode.LOCKED, ExitCode.PREFLIGHT) else 1
            outcome = Outcome.of("failed", f"{exc}; nothing more was changed", exit_code=code)
        except Exception as exc:  # noqa: BLE001 - a phase turns its own faults into results; this is between them
            outcome = Outcome.of(
                "failed",
                f"unexpected {type(exc).__name__}: {exc}; nothing more was changed (a bug in snail: "
                "please report it with the trail)",
            )
        finally:
            self._heartbeat = self.aws.fence = None
            outcome = self._finish(j, outcome)
            if replanned is not None:  # what was executed (the CLI reports what was live before from it)
                outcome = dataclasses.replace(outcome, plan=replanned)
        return outcome

    def _settled(self, j: Journal, plan: Plan) -> Outcome | None:
        """A run that waited for the lock, on its fresh plan: what the run before it left may already be what was
        asked for (a no-op, exit 0), or blocked (quarantined, held); None when there is something to deliver.
        Either way this run holds the lock and is recorded: every queued run is a row in the history."""
        if plan.service is None or plan.todo and plan.todo[0].block is None:
            return None
        if not plan.todo:
            msg = _nothing_to_do(plan) + " (planned again after waiting for the lock)"
            j.event(K.NOOP, msg)
            return Outcome.of("noop", msg)
        pp = plan.todo[0]
        assert pp.block is not None
        msg = f"not deployed: {pp.block.message()}"
        block = pp.block
        j.at(pp.phase.name).event(K.BLOCKED, msg, block=block.kind, revision=block.revision_arn, failed_by=block.run_id)
        return Outcome.of("quarantined" if pp.block.kind == "quarantined" else "held", msg)

    def _noop(self, plan: Plan, opts: RunOptions) -> Outcome:
        """Nothing to do: said once per streak of no-op runs (a scheduled run every minute writes one record)."""
        msg = _nothing_to_do(plan)
        out = Outcome.of("noop", msg, plan=plan)
        return self._once_per_streak(out, opts, [], lambda j: j.event(K.NOOP, msg))

    def _blocked(self, pp: PhasePlan, opts: RunOptions) -> Outcome:
        """A quarantined or held release is not deployed: nothing changes, said once per streak, exit 1."""
        assert pp.block is not None
        msg = f"not deployed: {pp.block.message()}"
        out = Outcome.of("quarantined" if pp.block.kind == "quarantined" else "held", msg)
        block = pp.block

        def record(j: Journal) -> None:
            j.at(pp.phase.name).event(
                K.BLOCKED, msg, block=block.kind, revision=block.revision_arn, failed_by=block.run_id
            )

        return self._once_per_streak(out, opts, [pp.phase.name], record)

    def _once_per_streak(
        self, out: Outcome, opts: RunOptions, phases: list[str], record: Callable[[Journal], None]
    ) -> Outcome:
        """A run that changes nothing (no-op, quarantined, held) is recorded once per streak: when the newest run
        already said the same, it is that run's answer again (a cron tick adds no run to the history)."""
        previous = self.store.runs(self.spec.name, 1)
        if (
            previous
            and previous[0].status == out.status
            and (out.status == "noop" or previous[0].message == out.message)
        ):
            return dataclasses.replace(out, run_id=previous[0].run_id)
        run_id = new_run_id(self.clock)
        now = self.clock.now().isoformat(timespec="seconds")
        self.store.start_run(
            RunRecord(
                run_id,
                self.spec.name,
                opts.command,
                "running",
                now,
                user=getpass.getuser(),
                host=socket.gethostname(),
                phases=phases,
            )
        )
        j = Journal(self.store, run_id, self.spec.name, self.clock, self.progress)
        record(j)
        self.store.finish_run(run_id, out.status, out.exit_code, out.message, j.now())
        return dataclasses.replace(out, run_id=run_id)

    def _execute(self, j: Journal, plan: Plan, opts: RunOptions) -> Outcome:
        live = self.ecs.service(self.spec.cluster, self.spec.name)
        if plan.service is not None and (live is None or live.task_definition != plan.live_revision):
            now = short_name(live.task_definition) if live else "nothing (deleted)"
            return Outcome.of(
                "failed",
                f"the service changed since this plan was made ({short_name(plan.live_revision or '?')} -> {now}): "
                "nothing was changed; plan again",
                exit_code=ExitCode.LOCKED,
            )
        for pp in plan.phases:
            if pp.skip:
                j.at(pp.phase.name).event(K.PHASE_SKIPPED, f"{pp.phase.name}: {pp.skip}")
        done: list[str] = []
        for pp in plan.todo:
            pj = j.at(pp.phase.name)  # this phase's section of the trail
            if pp.phase.manual and pp.phase.name not in opts.approved and opts.only != pp.phase.name:
                msg = f"phase {pp.phase.name} needs manual approval: run `snail promote {pp.phase.name}` to continue"
                pj.event(K.PAUSED, msg)
                return Outcome.of("paused", msg)
            if pp.block is not None:
                msg = f"not deployed: {pp.block.message()}"
                pj.event(K.BLOCKED, msg, block=pp.block.kind, revision=pp.block.revision_arn)
                if done:  # the climb delivered what it could and stops below the block: the run changed things
                    return Outcome.of(
                        "succeeded", f"done: {', '.join(done)} passed their gates; the climb stops: {msg}"
                    )
                return Outcome.of("quarantined" if pp.block.kind == "quarantined" else "held", msg)
            if opts.retry_failed:
                pj.event(K.WARNING, f"--retry-failed: phase {pp.phase.name} is deployed even if its spec failed before")
            result = self._phase(pj, plan, pp, live, create=opts.create_service)
            if isinstance(result, FailedBeforeDeploy):
                return self._failed_before(pj, result)
            judged = (
                action(Where.QUARANTINE, result.verdict)
                if isinstance(result, FailedAfterDeploy) and result.verdict
                else None
            )
            if isinstance(result, FailedAfterDeploy) and judged is Action.STOP:  # superseded: theirs now
                return self._superseded(pj, result)
            if isinstance(result, FailedAfterDeploy):
                self._checks = False  # the rollback runs to its end, lease or not
                if result.lock_lost and getattr(result.cause, "taken_by", None):
                    # another run owns the service now: touching it would undo that run's work
                    msg = (
                        f"{result.reason}; stopped during phase {pp.phase.name}: the service was left on "
                        f"{short_name(result.revision_arn)}, not rolled back (the run holding the lock decides "
                        "now; `snail run --resume` or `snail rollback` afterwards)"
                    )
                    pj.event(K.INTERRUPTED, msg, revision=result.revision_arn, lock_lost=True)
                    return Outcome.of("lock_lost", msg)
                ro = self.rollbacks.after_failure(pj, result)
                if judged is Action.QUARANTINE:
                    # quarantined: the release itself failed a gate (not a snail bug, an AWS fault or a lost lock);
                    # the mark follows the rollback's events, in the target phase's section when there was one
                    after = pj.at(ro.target.phase) if ro.target is not None else pj
                    self._write_mark(after, self._mark(after, pp, result.revision_arn, "failed", reason=result.reason))
                return self._rolled_back(result, ro)
            done.append(pp.phase.name)
            if pp is not plan.todo[-1]:  # the next phase starts from the service as it is now
                fresh = result.service if isinstance(result, PhasePassed) else None  # the bake just looked
                live = fresh or self.ecs.service(self.spec.cluster, self.spec.name)
        its = "its" if len(done) == 1 else "their"
        behind = "".join(f"; {note}" for note in plan.behind)
        return Outcome.of("succeeded", f"done: {', '.join(done)} passed {its} gates{behind}")

    def _superseded(self, j: Journal, failure: FailedAfterDeploy) -> Outcome:
        """Another actor's deployment replaced ours (or scaled the service to 0): not our failure. Nothing is rolled
        back (that would undo their release) and our revision is left unmarked, so the next run judges it again."""
        assert failure.verdict is not None
        v = failure.verdict
        when = " during the bake" if bake.in_bake(v) else " while its gates were judged"
        live = v.evidence.get("live")
        msg = (
            f"phase {failure.phase} stopped{when}: {v.summary}. Not rolled back (the service is theirs now) and "
            f"{short_name(failure.revision_arn)} is not marked: the next run judges it again"
        )
        j.event(
            K.SUPERSEDED,
            f"superseded by another actor{when}: phase {failure.phase} stopped judging {short_name(failure.revision_arn)}",
            revision=failure.revision_arn,
            live=live,
            superseded_by=v.evidence.get("superseded_by"),
        )
        return Outcome.of("superseded", msg)

    def _failed_before(self, j: Journal, failure: FailedBeforeDeploy) -> Outcome:
        if failure.interrupted:
            msg = f"interrupted before phase {failure.phase} changed the service; nothing was deployed"
            j.event(K.INTERRUPTED, msg)
            return Outcome.of("interrupted", msg)
        if isinstance(failure.cause, PreflightFailed):
            return Outcome.of("failed", str(failure.cause), exit_code=ExitCode.PREFLIGHT)
        if isinstance(failure.cause, LockLost):  # exit 4 like a lock lost after the update, not 1 ("rolled back")
            msg = f"phase {failure.phase} stopped before it changed the service: {failure.reason}; nothing was deployed"
            j.event(K.INTERRUPTED, msg, lock_lost=True)
            return Outcome.of("lock_lost", msg)
        try:
            service = self.ecs.service(self.spec.cluster, self.spec.name)
            where = short_name(service.task_definition) if service else "(no service)"
        except Exception:  # the fault may be AWS itself: say what we know
            where = "its last revision (it could not be described just now)"
        msg = (
            f"phase {failure.phase} failed before it changed the service: {failure.reason}; nothing was deployed, "
            f"the service stays on {where}"
        )
        j.event(K.PHASE_FAILED, msg, error=type(failure.cause).__name__)
        code = getattr(failure.cause, "exit_code", ExitCode.ROLLED_BACK)
        return Outcome.of("failed", msg, exit_code=code if code in (ExitCode.USAGE,) else ExitCode.ROLLED_BACK)

    def _rolled_back(self, failure: FailedAfterDeploy, ro: RollbackOutcome) -> Outcome:
        """The command's outcome after a failed phase and its rollback."""
        diagnosis = ro.diagnosis
        tail = f"\ndiagnosis: {diagnosis}" if diagnosis else ""
        if ro.status == "recorded":
            return Outcome.of("interrupted", ro.message)
        if not ro.verified:
            return Outcome.of(
                "rollback_failed",
                f"phase {failure.phase} failed: {failure.reason}; {ro.message}{tail}",
                diagnosis=diagnosis,
            )
        if failure.lock_lost:
            return Outcome.of(
                "lock_lost", f"phase {failure.phase} stopped: {failure.reason}; {ro.message}{tail}", diagnosis=diagnosis
            )
        if failure.interrupted:
            return Outcome.of(
                "interrupted", f"interrupted during phase {failure.phase}; {ro.message}", diagnosis=diagnosis
            )
        return Outcome.of(
            "rolled_back", f"phase {failure.phase} failed: {failure.reason}; {ro.message}{tail}", diagnosis=diagnosis
        )

    # ---------------------------------------------------------------- one phase
    def _phase(self, j: Journal, plan: Plan, pp: PhasePlan, service: ServiceView | None, create: bool) -> PhaseResult:
        """Image, register, update, gates, bake, mark good: a result value, whatever happens on the way."""
        ph = pp.phase
        try:
            j.event(K.PHASE_STARTED, f"phase {ph.name} started", gates=[g.label for g in pp.gates])
            if (
                service is not None and service.desired == 0
            ):  # no task of ours would run: nothing could answer the gates
                raise PreflightFailed(
                    f"service {self.spec.name} has desiredCount 0: no task of phase {ph.name} would run, so no gate "
                    "could judge it (a release is good only when a task of ours ran and answered its gates); "
                    f"scale it up first: aws ecs update-service --cluster {self.spec.cluster} --service "
                    f"{self.spec.name} --desired-count {max(self.spec.desired_count, 1)}"
                )
            img = self._image(j, pp)
            desired = taskdef.compose(
                plan.base.definition, self.spec, ph, img.ref, from_template=plan.base.from_template
            )
            arn = self._register(j, pp, desired, img.digest, service, base=plan.base.revision_arn)
            if service is None:
                if not create:
                    raise PreflightFailed(f"service {self.spec.name!r} disappeared")
                with j.step("create_service", to=arn) as r:
                    r["service_arn"] = self.ecs.create_service(self.spec, arn, str(self.pipeline.path))
                j.event(K.SERVICE_CREATED, f"created missing ECS service {self.spec.name!r} on {short_name(arn)}")
            self._checkpoint()
        except KeyboardInterrupt as exc:
            return FailedBeforeDeploy(ph.name, exc, interrupted=True)
        except Exception as exc:  # noqa: BLE001 - nothing changed yet: any failure is "failed before deploy"
            return FailedBeforeDeploy(ph.name, exc)
        try:  # the rollback target, chosen before the update and kept in memory: a rollback never needs the store
            self.rollbacks.choose(arn, live=service.task_definition if service is not None else None)
        except Exception as exc:  # noqa: BLE001 - nothing changed yet
            return FailedBeforeDeploy(ph.name, exc)
        deployed_at = self.clock.now()
        ctx = DeployContext(
            plan=pp,
            revision_arn=arn,
            service=service,
            deployed_at=deployed_at,
            image=img.ref,
            spec=self.spec,
            journal=j,
            clock=self.clock,
            judge=self.judge,
            checkpoint=self._checkpoint,
            ecs=self.ecs,
            deployments=self.deployments,
            aws=self.aws,
            store=self.store,
            owned_alarms=self.owned_alarms,
            on_interrupt=self.pipeline.on_interrupt,
            test_traffic_hold=self.test_traffic_hold,
        )
        result = DEPLOYERS[pp.deployer].deploy(ctx)
        if not isinstance(result, PhasePassed):
            return result
        try:
            self._checkpoint()
            self._mark_good(j, ph, pp, arn, img)
        except BaseException as exc:  # noqa: BLE001 - after the update, anything at all ends in a rollback
            return failed_after(ph.name, arn, deployed_at, exc)
        return result

    def _image(self, j: Journal, pp: PhasePlan) -> ResolvedImage:
        with j.step("image", phase=pp.phase.name, identity=pp.identity) as r:
            img = self.images.resolve(pp.phase)
            r.update(ref=img.ref, built=img.built, pushed=img.pushed)
        verb = "built and pushed" if img.pushed else "built" if img.built else "reused"
        j.event(
            K.IMAGE_READY,
            f"image {verb}: {img.ref}",
            ref=img.ref,
            digest=img.digest,
            built=img.built,
            pushed=img.pushed,
        )
        return img

    def _checkpoint(self) -> None:
        """A safe point: stop here if our lease was lost."""
        check = getattr(self._heartbeat, "check", None)
        if check is not None and self._checks:
            check()

    def _phase_gates(self, phase: str) -> tuple[GateSpec, ...]:
        try:
            return self.pipeline.phase(phase).gates
        except KeyError:
            return self.pipeline.defaults_gates

    def _mark(self, j: Journal, pp: PhasePlan, arn: str, verdict: str, **extra: Any) -> Mark:
        return Mark(
            service=self.spec.name,
            revision_arn=arn,
            phase=pp.phase.name,
            verdict=verdict,
            spec_hash=pp.spec_hash,
            at=j.now(),
            run_id=j.run_id,
            **extra,
        )

    def _write_mark(self, j: Journal, mark: Mark, definition: dict[str, Any] | None = None) -> None:
        """The verdict, locally and as the revision's tags on AWS; a refused tag is a warning, never a failure."""
        from orchestrator.aws.tagging import RevisionTags
        from orchestrator.marks import MarkWriter

        if self._marks is None:
            self._marks = MarkWriter(RevisionTags.of(self.aws), self.store)
        try:
            warning = self._marks.write(mark, definition)
        except Exception as exc:  # noqa: BLE001 - the local record is what matters for this run
            warning = f"could not record the {mark.verdict!r} verdict on {mark.short}: {exc}"
            self._unsaved_marks.append(mark)  # the spool keeps it for the next run
        if mark.verdict != "good":
            j.event(
                K.MARKED,
                f"{mark.short} marked {mark.verdict}" + (f": {mark.reason}" if mark.reason else ""),
                revision=mark.revision_arn,
                verdict=mark.verdict,
            )
        if warning:
            j.event(K.WARNING, warning)

    def _mark_good(self, j: Journal, ph: Phase, pp: PhasePlan, arn: str, img: ResolvedImage) -> None:
        gates = [g.to_dict() for g in pp.gates]
        self._write_mark(
            j,
            self._mark(j, pp, arn, "good", gates=gates, image=img.ref, digest=img.digest, live_since=j.now()),
            self._definitions.get(arn),
        )
        j.event(
            K.PHASE_PASSED,
            f"phase {ph.name} passed its gates on {short_name(arn)}: marked good",
            revision=arn,
            image=img.ref,
            gates_hash=gates_hash(pp.gates),
        )

    def _register(
        self,
        j: Journal,
        pp: PhasePlan,
        desired: dict[str, Any],
        digest: str | None,
        service: ServiceView | None,
        base: str = "",
    ) -> str:
        """Register the phase's revision, or reuse an identical one (same spec hash and image): the service's
        current revision, the revisions release memory knows with this phase's spec (its good one: a promote of an
        unchanged phase), and the family's newest are the candidates. `base` is recorded on a new revision."""
        ph, spec = pp.phase, pp.spec_hash
        if pp.adopt and service is not None and service.task_definition == pp.adopt:  # plan's ADOPT: it runs this spec
            td, _tags = self.ecs.task_definition(pp.adopt)
            j.event(
                K.REVISION_REUSED,
                f"{short_name(pp.adopt)} already runs this spec (snail did not register it): adopted, not registered "
                "again",
                revision=pp.adopt,
            )
            self._definitions[pp.adopt] = td
            return pp.adopt
        image = (taskdef.container(desired, self.spec.container) or {}).get("image")
        candidates = []
        if service is not None and service.task_definition:
            candidates.append(service.task_definition)
        for arn in self._same_spec(pp):
            if arn not in candidates:
                candidates.append(arn)
        latest = self.ecs.latest_revision(desired["family"])
        if latest and latest not in candidates:
            candidates.append(latest)
        for arn in candidates:
            td, tags = self.ecs.task_definition(arn)
            cd = taskdef.container(td, self.spec.container)
            reusable = td.get("status", "ACTIVE") == "ACTIVE" and cd is not None and cd.get("image") == image
            if tags.get(taskdef.TAG_SPEC) == spec and reusable:
                j.event(K.REVISION_REUSED, f"identical revision {short_name(arn)} reused (spec {spec})", revision=arn)
                self._definitions[arn] = td
                return arn
        tags = {taskdef.TAG_PHASE: ph.name, taskdef.TAG_SPEC: spec, taskdef.TAG_RUN: j.run_id}
        if digest:
            tags[taskdef.TAG_DIGEST] = digest
        if base:
            tags[taskdef.TAG_BASE] = base
        with j.step("register", family=desired["family"], spec=spec, image=image) as r:
            arn = self.ecs.register_revision(desired, tags)
            r["revision"] = arn
        self._definitions[arn] = desired  # what the good mark's content hash is computed from (no describe)
        j.event(
            K.REVISION_REGISTERED,
            f"registered task definition revision {revision_of(arn)} ({short_name(arn)})",
            revision=arn,
        )
        return arn

    def _same_spec(self, pp: PhasePlan) -> list[str]:
        """Still-registered revisions that carried this phase's spec, newest first (from the marks: no AWS call)."""
        from orchestrator.state.base import current_marks

        marks = current_marks(self.store.marks(self.spec.name))
        found = [m.revision_arn for m in marks if m.phase == pp.phase.name and m.spec_hash == pp.spec_hash and m.active]
        if pp.good is not None and pp.good.spec_hash == pp.spec_hash and pp.good.revision_arn not in found:
            found.append(pp.good.revision_arn)
        return found

    # ---------------------------------------------------------------- manual rollback
    def rollback(self, to_revision: str | None = None, to_phase: str | None = None, reason: str = "") -> Outcome:
        """Manual rollback (engine/manual.py): decided before the run starts, acted under the lock."""
        self.replay_spool()
        service = self.ecs.require_service(self.spec.cluster, self.spec.name)
        self.sync(service.task_definition, force=True)
        marks = self.store.marks(self.spec.name)
        chosen = manual.ManualRollback.choose(
            self.spec.name, service, marks, self.pipeline.phase_names(), to_revision=to_revision, to_phase=to_phase
        )
        j = self._begin("rollback", [chosen.target.phase])
        outcome = Outcome.of("rollback_failed", "the rollback ended before it decided anything")
        try:
            with Heartbeat(self.store, self.spec.name, j.run_id, self.pipeline.state.lease) as hb:
                self._heartbeat, self.aws.fence = hb, self._fence
                outcome = chosen.act(j.at(chosen.target.phase), self.rollbacks, self._write_mark, reason)
        except KeyboardInterrupt:
            outcome = Outcome.of("rollback_failed", "interrupted while rolling back; the trail says where it stopped")
        finally:
            self._heartbeat = self.aws.fence = None
            outcome = self._finish(j, outcome)
        return outcome
