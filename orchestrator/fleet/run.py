"""The local fleet executor: decide, act, record, until the line is through, waits, or stops.

Each target's work is the per-service engine (its own plan, lock, journal, marks, rollback), reached through the
`Targets` port, so this loop can be tested without AWS and a durable engine can replace it without touching the
decisions in `decide`."""

from __future__ import annotations

import functools
import hashlib
import json
import secrets
import threading
import time as _time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, as_completed, wait
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from orchestrator.clock import Clock, SystemClock
from orchestrator.errors import ExitCode
from orchestrator.fleet import decide as d
from orchestrator.fleet.barrier import TestTrafficBarrier
from orchestrator.fleet.goback import Recall
from orchestrator.fleet.journal import FleetJournal
from orchestrator.fleet.model import Fleet, Target


@dataclass(frozen=True)
class TargetResult:
    """How one target's part ended, in the fleet's words."""

    status: str  # a decide.* target status
    message: str
    exit_code: int
    revision: str | None = None
    run_id: str | None = None
    delivered: bool = True  # False when the target was already live and good (a no-op)


class Targets(Protocol):
    """What the fleet needs of its targets: the per-service engine, one target at a time."""

    def release_of(self, fleet: Fleet, to_phase: str | None) -> str: ...
    def plan(self, target: Target, to_phase: str | None) -> dict[str, Any]: ...
    def deliver(self, target: Target, to_phase: str | None, retry_failed: bool, recall: Recall) -> TargetResult: ...
    def give_back(self, target: Target, reason: str) -> TargetResult: ...
    def look(self, target: Target, revision: str | None) -> str | None: ...  # None: still ours and running


@dataclass
class FleetOptions:
    """What `snail fleet run` was asked for."""

    to_phase: str | None = None
    resume: bool = False
    approve: frozenset[str] = frozenset()
    retry_failed: bool = False
    ignore_window: bool = False
    reason: str = ""
    by: str = ""


@dataclass
class FleetOutcome:
    """How a fleet command ended."""

    status: str  # succeeded | noop | waiting_approval | waiting_window | frozen | stopped | needs_human | quarantined
    message: str
    run: d.FleetRun | None = None

    @property
    def exit_code(self) -> int:
        """0 done or waiting by design, 1 the line stopped with every target on a good revision, 3 a human."""
        if self.status in ("stopped", "quarantined"):
            return ExitCode.ROLLED_BACK
        if self.status == "needs_human":
            return ExitCode.HUMAN_NEEDED
        return ExitCode.OK

    def to_dict(self) -> dict[str, Any]:
        """Plain data for `--output json`."""
        return {
            "exit_code": self.exit_code,
            "status": self.status,
            "message": self.message,
            "fleet_run": self.run.to_dict() if self.run else None,
        }


def release_key(parts: dict[str, list[tuple[str, str]]]) -> str:
    """A short name for what is released: every pipeline's phases and their image identities."""
    blob = json.dumps({k: parts[k] for k in sorted(parts)}, sort_keys=True)
    return "rel-" + hashlib.sha256(blob.encode()).hexdigest()[:12]


def new_run_id(now: datetime) -> str:
    """f-YYYYMMDD-HHMMSS-<32 random bits>: sorts by time, and two fleets started in one second never collide."""
    return f"f-{now:%Y%m%d-%H%M%S}-{secrets.token_hex(4)}"


@dataclass
class FleetExecutor:
    """Runs one fleet's waves through the decisions in `decide`, recording every transition first."""

    fleet: Fleet
    journal: FleetJournal
    targets: Targets
    clock: Clock = field(default_factory=SystemClock)
    say: Callable[[str], None] = field(default=lambda _text: None)
    poll: float = 5.0  # how often a wave's bake looks at its targets
    stop_poll: float = 1.0  # while targets are in flight: how often to look for a `snail fleet stop` from elsewhere
    _mutex: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _t(self) -> float:
        """Wall-clock seconds: the journal outlives the process (resume after kill -9), so no monotonic time."""
        return self.clock.now().timestamp()

    # ---------------------------------------------------------------- entry points
    def run(self, opts: FleetOptions) -> FleetOutcome:
        """Start or continue the fleet run for this release, until it is through, waits, or the line stops."""
        release = self.targets.release_of(self.fleet, opts.to_phase)
        quarantined = self.journal.quarantined()
        if release in quarantined and not opts.retry_failed:
            return FleetOutcome(
                "quarantined",
                f"release {release} is quarantined for the whole fleet ({quarantined[release]}); nothing was "
                "deployed. Change it, or `snail fleet run --retry-failed`",
            )
        if release in quarantined:
            self.journal.lift(release)
        run = self.journal.current()
        if run is not None and not run.finished and run.release == release:  # resume: after a kill, a wait
            run = replace(run, status="running").with_event(self._t(), "fleet_resumed", by=opts.by)
        else:  # a new release, or the last run ended: a fresh run (an unfinished older release is superseded)
            run = d.FleetRun.new(self.fleet, new_run_id(self.clock.now()), release, opts.to_phase, self._t())
            run = run.with_event(self._t(), "fleet_started", release=release, by=opts.by)
        self._save(run)
        allow = d.Permissions(approved=opts.approve, ignore_window=opts.ignore_window)
        for wave in opts.approve:
            if wave in run.waves and run.waves[wave].approved_by is None:
                run = run.with_wave(wave, approved_by=opts.by or "cli").with_event(
                    self._t(), "wave_approved", wave=wave, by=opts.by, reason=opts.reason
                )
        return self._loop(run, allow, opts)

    def stop(self, reason: str, by: str) -> FleetOutcome:
        """Stop the line by hand: the running wave's targets that passed go back, the rest never start."""
        run = self.journal.current()
        if run is None or run.finished:
            return FleetOutcome("noop", "no fleet run is in progress: nothing to stop", run)
        run = run.with_event(self._t(), "line_stopped_by_hand", by=by, reason=reason)
        wave = next((w for w in self.fleet.waves if run.waves[w.name].status != "passed"), None)
        if wave is None:
            return FleetOutcome("noop", "every wave has passed: nothing to stop", run)
        in_wave = [t for t in wave.targets if run.targets[t].status in (d.PASSED, d.RUNNING)]
        earlier: list[str] = []
        if self.fleet.on_failure.earlier_waves == "rollback":
            for w in self.fleet.waves[: self.fleet.waves.index(wave)]:
                earlier += [t for t in w.targets if run.targets[t].status == d.PASSED]
        cancel = tuple(t for w in self.fleet.waves for t in w.targets if run.targets[t].status == d.PENDING)
        action = d.StopLine(wave.name, (), (*in_wave, *earlier), cancel, f"stopped by hand: {reason or 'no reason'}")
        run = self._stop_line(run, action, quarantine=False)
        return self._ended(run)

    # ---------------------------------------------------------------- the loop
    def _loop(self, run: d.FleetRun, allow: d.Permissions, opts: FleetOptions) -> FleetOutcome:
        while True:
            asked = self.journal.stop_requested()
            if asked is not None:
                self.journal.clear_stop()
                self._save(run)
                return self.stop(asked.get("reason") or "asked by `snail fleet stop`", by=asked.get("by") or "")
            action = d.decide(self.fleet, run, self._t(), self.clock.now(), allow)
            if isinstance(action, d.Finish):
                run = replace(run, status=action.status)
                self._save(run)
                return self._ended(run)
            if isinstance(action, d.WaitApproval):
                run = replace(run, status="waiting_approval")
                self._save(run)
                cmd = f"snail fleet approve {action.wave}"
                return FleetOutcome(
                    "waiting_approval", f"wave {action.wave} waits for approval: `{cmd}`, then `snail fleet run`", run
                )
            if isinstance(action, d.WaitWindow):
                run = replace(run, status="waiting_window")
                self._save(run)
                when = f"; the next window opens {action.opens_at:%Y-%m-%d %H:%M} UTC" if action.opens_at else ""
                return FleetOutcome(
                    "waiting_window",
                    f"wave {action.wave} may not start outside the deployment windows{when} "
                    "(override: --ignore-window --reason TEXT)",
                    run,
                )
            if isinstance(action, d.Frozen):
                run = replace(run, status="frozen")
                self._save(run)
                f = action.freeze
                return FleetOutcome(
                    "frozen",
                    f"wave {action.wave} not started: freeze {f.start}..{f.end}"
                    + (f" ({f.reason})" if f.reason else "")
                    + "; rollbacks and `snail fleet stop` still work",
                    run,
                )
            if isinstance(action, d.Deliver):
                run = self._deliver(run, action, opts, allow)
            elif isinstance(action, d.Bake):
                run = self._bake(run, action)
            elif isinstance(action, d.CloseWave):
                run = run.with_wave(action.wave, status="passed", ended_at=self._t()).with_event(
                    self._t(), "wave_passed", wave=action.wave
                )
                self.say(f"wave {action.wave}: passed")
                self._save(run)
            elif isinstance(action, d.StopLine):
                run = self._stop_line(run, action, quarantine=True)

    def _deliver(self, run: d.FleetRun, action: d.Deliver, opts: FleetOptions, allow: d.Permissions) -> d.FleetRun:
        now = self._t()
        if run.waves[action.wave].status == d.PENDING:
            override = f"{opts.reason}" if allow.ignore_window and opts.reason else None
            run = run.with_wave(action.wave, status="running", started_at=now, override=override).with_event(
                now, "wave_started", wave=action.wave, targets=list(action.targets), override=override
            )
            self.say(f"wave {action.wave}: starting {', '.join(action.targets)}")
        for t in action.targets:  # intent first: a kill -9 from here on finds them running and reconciles
            run = run.with_target(t, status=d.RUNNING, started_at=now).with_event(now, "target_started", target=t)
        self._save(run)
        holder = {"run": run}
        ended: set[str] = set()
        recalls: dict[str, Recall] = {}

        def tell_all(reason: str, by: str | None) -> None:
            """Tell every target of this batch still in flight to go back (under the mutex)."""
            told = [n for n, r in recalls.items() if n not in ended and n != by and r.tell(reason)]
            if told:
                verdict = recalls[by].verdict_at if by in recalls else None
                after = {"after_verdict_s": round(_time.monotonic() - verdict, 3)} if verdict is not None else {}
                holder["run"] = holder["run"].with_event(
                    self._t(), "targets_told", targets=told, reason=reason, by=by, **after
                )
                self.say(f"  told to go back now: {', '.join(told)} ({reason})")
                self._save(holder["run"])

        def tell_locked(reason: str, by: str | None) -> None:
            with self._mutex:
                tell_all(reason, by=by)

        def record(kind: str, data: dict[str, Any]) -> None:
            with self._mutex:
                holder["run"] = holder["run"].with_event(self._t(), kind, wave=action.wave, **data)
                self._save(holder["run"])
            if kind == "barrier_opened":
                self.say(f"wave {action.wave}: every target passed on test traffic: CONTINUE together")

        wave = next(w for w in self.fleet.waves if w.name == action.wave)
        barrier = None
        if wave.barrier == "test-traffic":
            members = {n for n in action.targets if self._holds_at_test_traffic(n, run.to_phase)}
            barrier = TestTrafficBarrier(members, tell_locked, record) if members else None

        def failing(name: str, reason: str) -> None:
            """`name` decided to roll back: with this_wave: rollback its siblings go back now, not after its rollback;
            before a barrier opened, every member goes back whatever on_failure says."""
            if barrier is not None:
                barrier.fail(name, reason)
            if self.fleet.on_failure.this_wave == "rollback":
                tell_locked(f"{name} failed: {reason}", by=name)

        for n in action.targets:
            hold = functools.partial(barrier.hold, n) if barrier is not None and n in barrier.members else None
            recalls[n] = Recall(failing=functools.partial(failing, n), hold=hold)
        if barrier is not None:
            holder["run"] = holder["run"].with_event(
                self._t(), "barrier_set", wave=wave.name, targets=sorted(barrier.members)
            )
            self._save(holder["run"])
            self.say(f"wave {wave.name}: held at test traffic until all pass: {', '.join(sorted(barrier.members))}")

        def one(name: str) -> tuple[str, TargetResult]:
            try:
                return name, self.targets.deliver(
                    self.fleet.target(name), run.to_phase, opts.retry_failed, recalls[name]
                )
            except Exception as exc:  # the per-target engine rolls back itself; this is what it could not say
                return name, TargetResult(d.NEEDS_HUMAN, f"{type(exc).__name__}: {exc}", ExitCode.HUMAN_NEEDED)

        pool = ThreadPoolExecutor(max_workers=max(1, len(action.targets)))
        interrupted = False
        try:
            pending = {pool.submit(one, n) for n in action.targets}
            while pending:
                try:
                    done, pending = wait(pending, timeout=self.stop_poll, return_when=FIRST_COMPLETED)
                except KeyboardInterrupt:  # Ctrl-C / SIGTERM on the fleet: in flight goes back, the run resumes later
                    interrupted = True
                    with self._mutex:
                        tell_all("the fleet run was interrupted", by=None)
                    continue
                for fut in done:
                    name, res = fut.result()
                    with self._mutex:
                        ended.add(name)
                        requeue = interrupted and recalls[name].told.is_set()
                        holder["run"] = self._record_target(holder["run"], name, res, requeue)
                        self._save(holder["run"])
                        if res.status in (d.FAILED, d.NEEDS_HUMAN) and self.fleet.on_failure.this_wave == "rollback":
                            tell_all(f"{name} failed: {res.message}", by=name)
                    if barrier is not None and name in barrier.members:
                        barrier.leave(name, failed=res.status != d.PASSED, reason=res.message)
                if pending and self.journal.stop_requested() is not None:  # `snail fleet stop` from elsewhere
                    with self._mutex:
                        tell_all("the line was stopped by `snail fleet stop`", by=None)
        finally:
            if len(ended) < len(action.targets):  # leaving early (an error, a second Ctrl-C): nothing left running
                with self._mutex:
                    tell_all("the fleet run ended while it was in flight", by=None)
            pool.shutdown(wait=True)
        if interrupted:
            raise KeyboardInterrupt
        return holder["run"]

    def _holds_at_test_traffic(self, name: str, to_phase: str | None) -> bool:
        """Is `name` held by a test-traffic barrier (does it deliver with a traffic strategy)? Targets that cannot
        say are held: a target that ends without reaching a hook leaves the barrier when its delivery ends."""
        ask = getattr(self.targets, "holds_at_test_traffic", None)
        return True if ask is None else bool(ask(self.fleet.target(name), to_phase))

    def _record_target(self, run: d.FleetRun, name: str, res: TargetResult, requeue: bool = False) -> d.FleetRun:
        now = self._t()
        if requeue and res.status == d.RETURNED:  # went back because the fleet run was interrupted: deliver it again
            res = replace(res, status=d.PENDING, message=f"{res.message}; `snail fleet run --resume` delivers it again")
        run = run.with_target(
            name,
            status=res.status,
            message=res.message,
            exit_code=res.exit_code,
            revision=res.revision,
            run_id=res.run_id,
            ended_at=now,
            delivered=res.delivered,
        ).with_event(now, "target_ended", target=name, status=res.status, message=res.message, revision=res.revision)
        self.say(f"  {name}: {res.status}: {res.message}")
        wave = self.fleet.wave_of(name)
        if all(run.targets[t].status == d.PASSED for t in wave.targets):
            delivered = any(run.targets[t].delivered for t in wave.targets)
            # a wave whose every target was already live and good has nothing to bake
            run = run.with_wave(wave.name, status="baking", bake_from=now if delivered else now - wave.bake)
        return run

    def _bake(self, run: d.FleetRun, action: d.Bake) -> d.FleetRun:
        wave = next(w for w in self.fleet.waves if w.name == action.wave)
        self.say(f"wave {wave.name}: baking {max(0.0, action.until - self._t()):.0f}s")
        run = run.with_event(self._t(), "wave_baking", wave=wave.name, until=action.until)
        self._save(run)
        while True:
            for t in wave.targets:
                problem = self.targets.look(self.fleet.target(t), run.targets[t].revision)
                if problem is not None:
                    res = self.targets.give_back(self.fleet.target(t), f"wave {wave.name} bake: {problem}")
                    status = d.FAILED if res.status == d.RETURNED else d.NEEDS_HUMAN
                    run = run.with_target(t, status=status, message=f"bake: {problem}; {res.message}").with_event(
                        self._t(), "bake_failed", wave=wave.name, target=t, problem=problem
                    )
                    self._save(run)
                    return run
            if self.journal.stop_requested():
                return run
            left = action.until - self._t()
            if left <= 0:
                return run
            self.clock.sleep(min(self.poll, left))

    def _stop_line(self, run: d.FleetRun, action: d.StopLine, quarantine: bool) -> d.FleetRun:
        now = self._t()
        t0 = _time.monotonic()
        run = run.with_event(
            now,
            "line_stopped",
            wave=action.wave,
            failed=list(action.failed),
            reason=action.reason,
            give_back=list(action.give_back),
            cancel=list(action.cancel),
        )
        self.say(f"line stopped at wave {action.wave}: {action.reason}")
        for t in action.cancel:
            run = run.with_target(t, status=d.CANCELLED, message="the line stopped before it started")
        run = replace(run, stopped=action.reason)
        self._save(run)
        holder = {"run": run}

        def one(name: str) -> tuple[str, TargetResult]:
            try:
                return name, self.targets.give_back(self.fleet.target(name), action.reason)
            except Exception as exc:
                return name, TargetResult(d.NEEDS_HUMAN, f"{type(exc).__name__}: {exc}", ExitCode.HUMAN_NEEDED)

        if action.give_back:
            with ThreadPoolExecutor(max_workers=len(action.give_back)) as pool:
                for fut in as_completed([pool.submit(one, n) for n in action.give_back]):
                    name, res = fut.result()
                    with self._mutex:
                        holder["run"] = (
                            holder["run"]
                            .with_target(name, status=res.status, message=res.message, revision=res.revision)
                            .with_event(self._t(), "target_returned", target=name, status=res.status)
                        )
                        self.say(f"  {name}: {res.status}: {res.message}")
                        self._save(holder["run"])
        run = holder["run"]
        for w in self.fleet.waves:
            untouched = all(run.targets[t].status == d.CANCELLED for t in w.targets)
            if run.waves[w.name].status != "passed" and w.name != action.wave and untouched:
                run = run.with_wave(w.name, status="cancelled")
        run = run.with_wave(action.wave, status="stopped", ended_at=self._t())
        human = any(r.status == d.NEEDS_HUMAN for r in run.targets.values())
        run = replace(run, status="needs_human" if human else "stopped").with_event(
            self._t(), "line_stop_done", seconds=round(_time.monotonic() - t0, 3)
        )
        self._save(run)
        if quarantine and action.failed:
            self.journal.quarantine(run.release, action.reason)
        return run

    def _ended(self, run: d.FleetRun) -> FleetOutcome:
        if run.status == "succeeded":
            delivered = [t for t, r in run.targets.items() if r.delivered]
            if not delivered:
                return FleetOutcome("noop", f"release {run.release} is live and good on every target", run)
            return FleetOutcome(
                "succeeded", f"release {run.release} passed on every target ({len(delivered)} delivered)", run
            )
        order = [t for w in self.fleet.waves for t in w.targets]  # wave order (the journal keeps names sorted)
        lines = []
        for t in sorted(run.targets, key=lambda n: order.index(n) if n in order else len(order)):
            r = run.targets[t]
            lines.append(f"{t}: {r.status}" + (f" (on {r.revision.rsplit('/', 1)[-1]})" if r.revision else ""))
        head = "the line stopped; a human is needed" if run.status == "needs_human" else "the line stopped"
        return FleetOutcome(run.status, f"{head}: {run.stopped}\n  " + "\n  ".join(lines), run)

    def _save(self, run: d.FleetRun) -> None:
        self.journal.save(run)
