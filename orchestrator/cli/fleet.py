"""snail fleet ...: one release promoted in waves across targets, the line stopped on failure."""

from __future__ import annotations

import getpass
import os
import socket
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from orchestrator.cli.app import App, pass_app
from orchestrator.errors import ExitCode


def _fleet_option(f: Any) -> Any:
    return click.option(
        "--fleet",
        "fleet_file",
        envvar="SNAIL_FLEET",
        type=click.Path(dir_okay=False),
        help="fleet.yaml (default: the nearest in this folder or above) [SNAIL_FLEET]",
    )(f)


class CliTargets:
    """The fleet's targets reached through the per-service engine, one App (options, AWS, store) per target."""

    def __init__(
        self, app: App, fleet: Any, pipelines: dict[str, Any], skip_preflight: bool = False, clock: Any = None
    ) -> None:
        self.app = app
        self.clock = clock  # the engines' base time (None: the system clock); each target's is interruptible over it
        self.fleet = fleet
        self.pipelines = pipelines
        self.skip_preflight = skip_preflight
        self._apps: dict[str, App] = {}
        self._sandbox: Any = None
        self._making = threading.Lock()  # a wave's targets ask for their Apps from several threads at once

    def _app(self, target: Any) -> App:
        with self._making:
            return self._make_app(target)

    def _make_app(self, target: Any) -> App:
        if target.name not in self._apps:
            from orchestrator.redact import learn_pipeline

            pipeline = self.pipelines[target.name]
            learn_pipeline(pipeline)
            a = App(
                file=str(target.pipeline),
                region=target.region or pipeline.service.region,
                profile=target.profile or self.app.profile,
                endpoint_url=self.app.endpoint_url,
                sandbox=self.app.sandbox,
                output="json",  # the per-target engine prints nothing of its own; the fleet says what happened
                log_format=self.app.log_format,
                quiet=True,
                wait_lock=self.app.wait_lock,
                command="fleet",
            )
            # told to go back, a target always rolls back (rollback.on_interrupt: record is for a person's Ctrl-C,
            # to resume later; a stopped line must leave every target on a good revision)
            a._pipeline = replace(pipeline, on_interrupt="rollback")
            if self.app.sandbox:  # one sandbox for the whole fleet (fleet.yaml's), seeded for every target
                from orchestrator.cli import fleet_sandbox

                if self._sandbox is None:
                    self._sandbox = fleet_sandbox.seed(self.app, self.fleet, self.pipelines)
                fleet_sandbox.attach(a, self._sandbox, pipeline.service.region, self.app.endpoint_url)
            if target.role_arn:
                a._aws = a.aws().assumed(target.role_arn, f"snail-fleet-{target.name}")
            self._apps[target.name] = a
        return self._apps[target.name]

    def release_of(self, fleet: Any, to_phase: str | None) -> str:
        """Every pipeline's phases (up to --to) and their image identities: the same release everywhere."""
        from orchestrator.fleet.run import release_key
        from orchestrator.images import Images

        parts: dict[str, list[tuple[str, str]]] = {}
        for t in fleet.targets:
            p = self.pipelines[t.name]
            # relative to fleet.yaml: two checkouts (two CI runners sharing a DynamoDB journal) name one release alike
            where = os.path.relpath(t.pipeline, fleet.root)
            if where in parts:
                continue
            names = p.phase_names()
            upto = names[: names.index(to_phase) + 1] if to_phase in names else names
            images = Images(p, None)  # type: ignore[arg-type]  # identity needs neither AWS nor Docker
            parts[where] = [(n, f"{images.identity(p.phase(n))}|{_phase_spec(p.phase(n))}") for n in upto]
        return release_key(parts)

    def registry(self, target: Any) -> Any:
        """The target's registry repository (read-only: None when its ECR repository does not exist yet)."""
        from orchestrator.aws.ecr import EcrClient
        from orchestrator.build import RegistryTarget
        from orchestrator.errors import NotFound
        from orchestrator.images import Images

        app = self._app(target)
        url = app.registry_url()
        p = app.pipeline
        if url or p.registry.url:
            return Images(p, None, registry_url=url).target()  # type: ignore[arg-type]  # a URL needs no AWS
        try:
            return RegistryTarget.from_ecr(EcrClient(app.aws()), p.registry.repository_name, create=False)
        except NotFound:
            return None

    def release_images(self, fleet: Any, to_phase: str | None, tolerant: bool = False) -> list[Any]:
        """Each built phase's image (its content tag) and the digest each target's registry holds under it."""
        from orchestrator.fleet.release_images import PhaseImage, digests
        from orchestrator.images import Images

        tags: dict[str, tuple[str, list[Any]]] = {}  # content tag -> (phase, targets that run it)
        for t in fleet.targets:
            p = self.pipelines[t.name]
            names = p.phase_names()
            for n in names[: names.index(to_phase) + 1] if to_phase in names else names:
                ph = p.phase(n)
                if ph.image.ref:
                    continue  # a prebuilt ref is one reference everywhere; nothing is built or copied
                tag = Images(p, None).identity(ph)  # type: ignore[arg-type]  # identity needs neither AWS nor Docker
                tags.setdefault(tag, (n, []))[1].append(t)
        out = []
        for tag, (phase, targets) in tags.items():
            regs = {t.name: self.registry(t) for t in targets}
            shown = {name: (r.repository if r is not None else "(no repository yet)") for name, r in regs.items()}
            out.append(PhaseImage(phase, tag, digests(tag, regs, tolerant=tolerant), shown))
        return out

    def one_release(self, fleet: Any, to_phase: str | None, say: Any = None) -> list[Any]:
        """Before any wave: refuse a target whose registry holds another digest under a release's tag (exit 2,
        nothing changed); build each phase's image once (in the first target's registry) when no registry has it,
        then copy it, same digest, to every target's registry that lacks it. Each target's engine then finds its
        tag pushed and reuses it: never rebuilt per target."""
        from orchestrator.fleet.release_images import PhaseImage, agreed, copy_image

        images = self.release_images(fleet, to_phase)
        agreed(images)
        done = []
        for im in images:
            if not im.missing():
                done.append(im)
                continue
            found = dict(im.found)
            holder = next((t for t, d in found.items() if d), None)
            if holder is None:  # built nowhere yet: build, probe and push once, through the first target's engine
                holder = next(iter(found))
                t = fleet.target(holder)
                engine = self._app(t).engine()
                resolved = engine.images.resolve(self.pipelines[holder].phase(im.phase))
                found[holder] = resolved.digest
                if say:
                    say(f"phase {im.phase}: built {im.tag} once ({resolved.digest}) in {holder}'s registry")
            src = self.registry(fleet.target(holder))
            for name in [n for n, d in found.items() if not d]:
                dst = self.registry(fleet.target(name))
                if dst is None:  # an ECR repository that does not exist yet: the target's pipeline may create it
                    t = fleet.target(name)
                    dst = self._app(t).engine().images.target()
                found[name] = copy_image(src, dst, im.tag)
                if say:
                    say(f"phase {im.phase}: copied {im.tag} ({found[name]}) to {name}'s registry {dst.repository}")
            done.append(PhaseImage(im.phase, im.tag, found, im.registries))
        agreed(done)
        return done

    def _opts(self, target: Any, to_phase: str | None, retry_failed: bool = False) -> Any:
        from orchestrator.engine.executor import RunOptions

        names = self.pipelines[target.name].phase_names()
        # In a fleet, approval is per wave: a phase's own `approval: manual` is taken as given by the wave's.
        return RunOptions(
            to_phase=to_phase if to_phase in names else None,
            approved=set(names),
            command="fleet run",
            retry_failed=retry_failed,
        )

    def plan(self, target: Any, to_phase: str | None) -> dict[str, Any]:
        """What `snail run` would do on this target, per phase."""
        plan = self._app(target).engine().plan(self._opts(target, to_phase), with_diff=False)
        phases = []
        for pp in plan.phases:
            action = "blocked" if pp.block else ("skip" if pp.skip else "deliver")
            why = pp.block.message() if pp.block else (pp.skip or pp.image_action)
            phases.append({"phase": pp.phase.name, "action": action, "why": why, "image": pp.identity})
        live = plan.service.task_definition if plan.service else None
        return {"target": target.name, "live": live, "phases": phases}

    def deliver(self, target: Any, to_phase: str | None, retry_failed: bool, recall: Any = None) -> Any:
        """`snail run` on this target; its outcome in the fleet's words. Told to go back (`recall.told`) while in
        flight, the engine stops at its next wait and goes back (its interrupt path): RETURNED, on a known revision."""
        from orchestrator.cli.common import preflight
        from orchestrator.fleet import decide as d
        from orchestrator.fleet.goback import GoBack, GoBackClock, Recall
        from orchestrator.fleet.run import TargetResult

        recall = recall or Recall()
        app = self._app(target)
        clock = GoBackClock(recall.told, self.clock)
        engine = app.engine(clock=clock, watch=recall.watch)
        if recall.hold is not None:
            hold = recall.hold
            engine.test_traffic_hold = lambda: hold(clock)
        opts = self._opts(target, to_phase, retry_failed)
        try:
            plan = engine.plan(opts, with_diff=False)
            if not self.skip_preflight:
                try:
                    preflight(app, described=plan.service.raw if plan.service is not None else None)
                except Exception as exc:
                    code = getattr(exc, "exit_code", ExitCode.PREFLIGHT)
                    return TargetResult(d.FAILED, f"{exc}", code, delivered=False)
            if recall.told.is_set():
                raise GoBack("told before it started")
            out = engine.execute(plan, opts)
        except GoBack:  # told while it waited before changing anything (a lock, a poll): it stays where it was
            live = self.live(target)
            where = f"; it stays on {live.rsplit('/', 1)[-1]}" if live else ""
            return TargetResult(d.RETURNED, f"told to go back before it changed anything{where}", 0, revision=live)
        plan = out.plan or plan  # a run that waited for the lock planned again
        live = plan.service.task_definition if plan.service is not None else None
        if out.status == "noop":
            return TargetResult(d.PASSED, "live and good", 0, revision=live, run_id=out.run_id, delivered=False)
        if out.exit_code == ExitCode.OK:
            view = engine.ecs.service(app.pipeline.service.cluster, app.pipeline.service.name)
            revision = view.task_definition if view else None
            return TargetResult(d.PASSED, out.message, 0, revision=revision, run_id=out.run_id)
        if recall.told.is_set() and out.status == "interrupted":  # went back as told: nothing deployed, or verified
            now = self.live(target)
            return TargetResult(d.RETURNED, f"told to go back: {out.message}", 0, revision=now, run_id=out.run_id)
        status = (
            d.FAILED if out.exit_code in (ExitCode.ROLLED_BACK, ExitCode.USAGE, ExitCode.PREFLIGHT) else d.NEEDS_HUMAN
        )
        try:
            now = self.live(target)  # the message names what every target is on
        except Exception:  # noqa: BLE001 - AWS itself may be the fault: the engine's message says what it knows
            now = None
        return TargetResult(status, out.message, out.exit_code, revision=now, run_id=out.run_id)

    def holds_at_test_traffic(self, target: Any, to_phase: str | None) -> bool:
        """Does this target deliver with a traffic strategy (a test-traffic hook a barrier can hold it at)?"""
        p = self.pipelines[target.name]
        names = p.phase_names()
        upto = names[: names.index(to_phase) + 1] if to_phase in names else names
        return any(p.phase(n).strategy.uses_traffic for n in upto)

    def give_back(self, target: Any, reason: str) -> Any:
        """`snail rollback` on this target: back to the good revision live before this release, verified."""
        from orchestrator.fleet import decide as d
        from orchestrator.fleet.run import TargetResult

        app = self._app(target)
        out = app.engine().rollback(reason=f"fleet: {reason}")
        if out.exit_code == ExitCode.OK:
            view = app.engine().ecs.service(app.pipeline.service.cluster, app.pipeline.service.name)
            return TargetResult(d.RETURNED, out.message, 0, revision=view.task_definition if view else None)
        return TargetResult(d.NEEDS_HUMAN, out.message, out.exit_code)

    def look(self, target: Any, revision: str | None) -> str | None:
        """During a wave's bake: None while the service is still on our revision with a task running."""
        app = self._app(target)
        view = app.engine().ecs.service(app.pipeline.service.cluster, app.pipeline.service.name)
        if view is None:
            return "the service is gone"
        if revision and view.task_definition != revision:
            return f"it is no longer on {revision.rsplit('/', 1)[-1]} (live: {view.task_definition.rsplit('/', 1)[-1]})"
        if view.running < 1:
            return f"no task is running ({view.running}/{view.desired})"
        return None

    def live(self, target: Any) -> str | None:
        """The target's live revision, as ECS says now."""
        app = self._app(target)
        view = app.engine().ecs.service(app.pipeline.service.cluster, app.pipeline.service.name)
        return view.task_definition if view else None


def _pinned(ref: str | None) -> str | None:
    """The digest a prebuilt ref pins (repo@sha256:...), if it pins one."""
    from orchestrator.images import digest_of

    return digest_of(ref) if ref else None


def _phase_spec(phase: Any) -> str:
    """What a phase changes besides its image (task settings, environment, gates, strategy, bake): a release whose
    environment changed is another release (a hash: secret references never leave as text)."""
    import dataclasses
    import hashlib
    import json

    from orchestrator.config.gates import gates_hash

    doc = {
        "task": dataclasses.asdict(phase.task),
        "gates": gates_hash(phase.gates),
        "strategy": repr(phase.strategy),
        "bake": phase.bake,
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _load(app: App, fleet_file: str | None) -> tuple[Any, dict[str, Any]]:
    from orchestrator.fleet.loader import load_fleet, validate_fleet

    fleet = load_fleet(fleet_file)
    return fleet, validate_fleet(fleet)


def _by() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


def _journal(app: App, fleet: Any) -> Any:
    """The fleet journal fleet.yaml's `state:` asks for: a local file, or a DynamoDB table shared by runners."""
    from orchestrator.fleet.journal import FleetJournal

    if fleet.state.backend != "dynamodb":
        return FleetJournal(fleet)
    from orchestrator.aws.dynamodb import DynamoTable
    from orchestrator.aws.session import AwsContext
    from orchestrator.fleet.journal_dynamodb import DynamoFleetJournal

    region = fleet.state.region or app.region or _first_region(fleet)
    if app.sandbox:
        from orchestrator.cli import fleet_sandbox
        from orchestrator.fleet.loader import validate_fleet

        ends = fleet_sandbox.seed(app, fleet, validate_fleet(fleet)).endpoints()
        ctx = AwsContext(
            region=region, endpoint_url=app.endpoint_url or ends["endpoint_url"], credentials=ends["credentials"]
        )
    else:
        ctx = AwsContext(region=region, profile=app.profile, endpoint_url=app.endpoint_url)
    assert fleet.state.table, "the loader requires state.table with backend: dynamodb"
    return DynamoFleetJournal(fleet, DynamoTable.of(ctx, fleet.state.table).client)


def _first_region(fleet: Any) -> str:
    from orchestrator.config import load_pipeline

    for t in fleet.targets:
        if t.region:
            return str(t.region)
    return str(load_pipeline(fleet.pipeline).service.region)


def _executor(app: App, fleet: Any, pipelines: dict[str, Any], skip_preflight: bool = False) -> Any:
    from orchestrator.fleet.run import FleetExecutor

    say = (lambda _t: None) if app.quiet or app.output == "json" else (lambda t: click.echo(t, err=True))
    poll = float(os.environ.get("SNAIL_FLEET_POLL", "5"))
    return FleetExecutor(
        fleet,
        _journal(app, fleet),
        CliTargets(app, fleet, pipelines, skip_preflight),
        say=say,
        poll=poll,
        stop_poll=min(1.0, poll),
    )


@click.group("fleet")
def group() -> None:
    """One release promoted in waves across targets (fleet.yaml); the line stops on any failure."""


@group.command("validate")
@_fleet_option
@pass_app
def validate(app: App, fleet_file: str | None) -> int:
    """Check fleet.yaml and every target's pipeline (file:line errors, exit 2)."""
    fleet, pipelines = _load(app, fleet_file)
    text = f"{fleet.path}: ok ({len(fleet.targets)} targets in {len(fleet.waves)} waves)"
    app.emit({"fleet": fleet.to_dict(), "ok": True}, text)
    return 0


@group.command("plan")
@_fleet_option
@click.option("--to", "to_phase", help="deliver up to this phase")
@pass_app
def plan(app: App, fleet_file: str | None, to_phase: str | None) -> int:
    """Per wave, per target: what `fleet run` would do (deliver / skip / blocked)."""
    fleet, pipelines = _load(app, fleet_file)
    targets = CliTargets(app, fleet, pipelines)
    release = targets.release_of(fleet, to_phase)
    from orchestrator.fleet.release_images import agreed

    images = targets.release_images(fleet, to_phase, tolerant=True)
    agreed(images)  # a target whose registry holds another image under a release's tag: refused, exit 2
    digest_of = {(t, im.phase): im.digest for im in images for t in im.found}
    waves = []
    lines = [f"release {release}"]
    for im in images:
        have = len(im.found) - len(im.missing())
        state = f"{im.digest} in {have}/{len(im.found)} registries" if im.digest else "not built yet: built once by run"
        lines.append(f"image {im.phase} {im.tag}: {state}")
    for w in fleet.waves:
        extra = [f"bake {w.bake:g}s"] + ([f"max {w.max_parallel} at once"] if w.max_parallel > 1 else [])
        extra += ["manual approval"] if w.approval == "manual" else []
        extra += ["barrier: test-traffic"] if w.barrier != "none" else []
        lines.append(f"wave {w.name} ({', '.join(extra)})")
        rows = []
        for name in w.targets:
            t = fleet.target(name)
            p = pipelines[name]
            row = targets.plan(t, to_phase)
            for ph in row["phases"]:
                ph["digest"] = digest_of.get((name, ph["phase"])) or _pinned(ph["image"])
            rows.append(row)
            where = f"{p.service.region}/{p.service.cluster}/{p.service.name}"
            todo = [ph for ph in row["phases"] if ph["action"] != "skip"]
            what = (
                ", ".join(f"{ph['phase']}: {ph['action']}" for ph in todo) if todo else "nothing to do (live and good)"
            )
            lines.append(f"  {name} ({where}): {what}")
        waves.append({**w.to_dict(), "plan": rows})
    app.emit({"release": release, "images": [im.to_dict() for im in images], "waves": waves}, "\n".join(lines))
    return 0


@group.command("run")
@_fleet_option
@click.option("--to", "to_phase", help="deliver up to this phase")
@click.option("--resume", is_flag=True, help="continue the unfinished fleet run (the default for the same release)")
@click.option("--approve", multiple=True, help="approve a manual wave (repeatable)")
@click.option("--retry-failed", is_flag=True, help="release a fleet-quarantined release again, on purpose")
@click.option("--ignore-window", is_flag=True, help="start a wave outside the deployment windows (needs --reason)")
@click.option("--reason", default="", help="why (recorded with --ignore-window and --approve)")
@click.option("--skip-preflight", is_flag=True, help="do not run `doctor` per target first")
@click.option("--dry-run", is_flag=True, help="print the fleet plan and change nothing")
@pass_app
def run(
    app: App,
    fleet_file: str | None,
    to_phase: str | None,
    resume: bool,
    approve: tuple[str, ...],
    retry_failed: bool,
    ignore_window: bool,
    reason: str,
    skip_preflight: bool,
    dry_run: bool,
) -> int:
    """Release wave by wave; exit 0 done or waiting, 1 the line stopped (all on good revisions), 3 a human."""
    from orchestrator.errors import UsageError
    from orchestrator.fleet.run import FleetOptions

    if dry_run:
        return click.get_current_context().invoke(plan, fleet_file=fleet_file, to_phase=to_phase)
    if ignore_window and not reason:
        raise UsageError("--ignore-window needs --reason TEXT (it is recorded in the trail)")
    fleet, pipelines = _load(app, fleet_file)
    for w in approve:
        if w not in {x.name for x in fleet.waves}:
            raise UsageError(f"no wave named {w!r} (waves: {', '.join(x.name for x in fleet.waves)})")
    ex = _executor(app, fleet, pipelines, skip_preflight)
    ex.journal.lock()
    try:
        say = (lambda _t: None) if app.quiet or app.output == "json" else (lambda t: click.echo(t, err=True))
        ex.targets.one_release(fleet, to_phase, say)  # refused (exit 2) before any wave, or one digest everywhere
        out = ex.run(
            FleetOptions(
                to_phase=to_phase,
                resume=resume,
                approve=frozenset(approve),
                retry_failed=retry_failed,
                ignore_window=ignore_window,
                reason=reason,
                by=_by(),
            )
        )
    finally:
        ex.journal.unlock()
    return _finish(app, out)


@group.command("approve")
@_fleet_option
@click.argument("wave")
@click.option("--reason", default="", help="why, recorded in the trail")
@pass_app
def approve(app: App, fleet_file: str | None, wave: str, reason: str) -> int:
    """Approve a manual wave of the current fleet run (then `snail fleet run` continues)."""
    from orchestrator.errors import UsageError
    from orchestrator.fleet.loader import load_fleet

    fleet = load_fleet(fleet_file)
    journal = _journal(app, fleet)
    cur = journal.current()
    if cur is None or cur.finished:
        raise UsageError("no fleet run is waiting: start one with `snail fleet run`")
    if wave not in cur.waves:
        raise UsageError(f"no wave named {wave!r} (waves: {', '.join(cur.waves)})")
    import time

    cur = cur.with_wave(wave, approved_by=_by()).with_event(
        time.time(), "wave_approved", wave=wave, by=_by(), reason=reason
    )
    journal.save(cur)
    app.emit({"approved": wave, "run_id": cur.run_id}, f"wave {wave} approved; continue with `snail fleet run`")
    return 0


@group.command("stop")
@_fleet_option
@click.option("--reason", default="", help="why, recorded in the trail")
@pass_app
def stop(app: App, fleet_file: str | None, reason: str) -> int:
    """Stop the line by hand: what is in flight goes back, later waves are cancelled (never blocked by a freeze)."""
    from orchestrator.fleet.journal import FleetLocked

    fleet, pipelines = _load(app, fleet_file)
    ex = _executor(app, fleet, pipelines)
    try:
        ex.journal.lock()
    except FleetLocked:
        ex.journal.request_stop(reason, _by())
        app.emit({"requested": True}, "a fleet run is in progress: it stops the line at its next step")
        return 0
    try:
        out = ex.stop(reason, _by())
    finally:
        ex.journal.unlock()
    return _finish(app, out)


@group.command("status")
@_fleet_option
@click.option("--live", is_flag=True, help="also ask ECS for each target's live revision (one call per target)")
@pass_app
def status(app: App, fleet_file: str | None, live: bool) -> int:
    """Per wave and per target: status, revision, message of the current fleet run."""
    from orchestrator.fleet.render import status_table

    fleet, pipelines = _load(app, fleet_file)
    cur = _journal(app, fleet).current()
    lives: dict[str, str | None] = {}
    if live:
        targets = CliTargets(app, fleet, pipelines)
        lives = {t.name: targets.live(t) for t in fleet.targets}
    data = {"fleet_run": cur.to_dict() if cur else None, "live": lives or None}
    app.emit(data, status_table(fleet, cur, lives, width=_width()))
    return 0


@group.command("trail")
@_fleet_option
@click.option("--format", "fmt", type=click.Choice(["md", "json", "html"]), default="md")
@click.option("-o", "out", type=click.Path(dir_okay=False), help="write to this file instead of stdout")
@pass_app
def trail(app: App, fleet_file: str | None, fmt: str, out: str | None) -> int:
    """The current fleet run as Markdown, JSON or one self-contained HTML page with a timeline."""
    import json

    from orchestrator.errors import UsageError
    from orchestrator.fleet.loader import load_fleet
    from orchestrator.fleet.render import html_page, markdown

    fleet = load_fleet(fleet_file)
    cur = _journal(app, fleet).current()
    if cur is None:
        raise UsageError("no fleet run recorded yet: start one with `snail fleet run`")
    if fmt == "json":
        text = json.dumps(cur.to_dict(), indent=2, default=str)
    elif fmt == "html":
        text = html_page(fleet, cur)
    else:
        text = markdown(fleet, cur)
    from orchestrator.redact import mask_text as mask

    text = mask(text)
    if out:
        Path(out).write_text(text, encoding="utf-8")
        app.emit({"written": out}, f"wrote {out}")
    else:
        app.emit({"trail": text} if fmt != "json" else json.loads(text), text)
    return 0


def _width() -> int:
    import shutil

    return shutil.get_terminal_size((100, 24)).columns


def _finish(app: App, out: Any) -> int:
    """Print how a fleet command ended (nothing with -q for a no-op) and return its exit code."""
    from orchestrator.redact import mask_text as mask

    app.emit(out.to_dict(), mask(out.message), routine=out.status in ("noop",))
    return int(out.exit_code)
