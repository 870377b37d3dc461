"""The planner: read-only. Current service state + the pipeline -> ordered phase plans.

`snail plan` prints it, `run --dry-run` prints it and stops, and `run` executes exactly it: the CLI makes the
plan and hands it to the engine, which never plans again."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from orchestrator import taskdef
from orchestrator.aws.ecs import EcsClient, ServiceView, short_name
from orchestrator.config.gates import GateSpec, with_rollout
from orchestrator.config.model import Phase, Pipeline
from orchestrator.config.names import unpinned_warning
from orchestrator.config.strategy import hook_timeout_warnings, pause_stages, plan_lines
from orchestrator.images import Images
from orchestrator.release_memory import Block, blocked
from orchestrator.state.base import GoodRecord, StateStore


@dataclass(frozen=True)
class Base:
    """The task definition phases start from, and where it came from."""

    definition: dict[str, Any]
    origin: str  # template | service | bootstrap | empty

    @property
    def from_template(self) -> bool:
        """True when the user's own template file is the base (its command/entryPoint are theirs)."""
        return self.origin == "template"


@dataclass
class PhasePlan:
    """What running one phase would do."""

    phase: Phase
    identity: str  # content tag or prebuilt ref
    image_action: str  # "build images/x -> repo:tag" | "use ref"
    desired: dict[str, Any]  # the task definition (image as identity until the digest is known)
    spec_hash: str
    good: GoodRecord | None
    gates: tuple[GateSpec, ...] = ()  # what the phase is judged by: ecs-rollout first, always
    skip: str | None = None  # why the phase needs no work
    diff: str = ""
    block: Block | None = None  # quarantined (failed its gates) or held (a human rolled back from it)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for `plan --output json`."""
        return {
            "phase": self.phase.name,
            "image": self.image_action,
            "spec_hash": self.spec_hash,
            "skip": self.skip,
            "approval": self.phase.approval,
            "gates": [g.label for g in self.gates],
            "bake_seconds": self.phase.bake,
            "strategy": {
                **self.phase.strategy.to_dict(),
                "pauses": pause_stages(self.phase.strategy, self.gates),
                "warnings": hook_timeout_warnings(self.phase.strategy, self.gates),
            },
            "last_good_revision": self.good.revision_arn if self.good else None,
            "diff": self.diff,
            "blocked": {"kind": self.block.kind, "message": self.block.message()} if self.block else None,
            "warnings": self.warnings,
        }

    @property
    def warnings(self) -> list[str]:
        """What a person should know before running this phase: a build arg that looks secret (its history), an
        image.ref not pinned by digest (a tag can move)."""
        from orchestrator.build.buildkit import build_arg_warnings

        unpinned = unpinned_warning(self.phase.image.ref)
        return (build_arg_warnings(self.phase.image.build_args) if self.phase.image.context else []) + (
            [unpinned] if unpinned else []
        )


@dataclass
class Plan:
    """The whole run: the service as it is, and each phase's plan in order."""

    service: ServiceView | None
    base: Base  # what phases start from (origin "empty" when there is nothing)
    phases: list[PhasePlan] = field(default_factory=list)
    live_good: GoodRecord | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def todo(self) -> list[PhasePlan]:
        """Phases that need work."""
        return [p for p in self.phases if not p.skip]

    @property
    def live_revision(self) -> str | None:
        """The revision the service ran when the plan was made."""
        return self.service.task_definition if self.service else None

    def to_dict(self) -> dict[str, Any]:
        """Plain data for `plan --output json`."""
        return {
            "service": {
                "exists": self.service is not None,
                "revision": self.live_revision,
                "live_good_phase": self.live_good.phase if self.live_good else None,
                "base": self.base.origin,
            },
            "phases": [p.to_dict() for p in self.phases],
            "notes": self.notes,
        }


def base_definition(pipeline: Pipeline, ecs: EcsClient, svc: ServiceView | None) -> Base | None:
    """The task definition phases start from: the template file, else the service's current revision.

    A revision tagged `snail:bootstrap` (taskdef.TAG_BOOTSTRAP: a placeholder, such as the one the sandbox seeds)
    is never a release: its inline `command` never reaches one."""
    if pipeline.service.task_definition:
        return Base(taskdef.load_template(pipeline.service.task_definition), "template")
    if svc is not None and svc.task_definition:
        definition, tags = ecs.task_definition(svc.task_definition)
        base = taskdef.strip_read_only(definition)
        if tags.get(taskdef.TAG_BOOTSTRAP):
            for cd in base.get("containerDefinitions", []):
                for key in taskdef.RUN_OVERRIDES:
                    cd.pop(key, None)
            return Base(base, "bootstrap")
        return Base(base, "service")
    return None


def make_plan(
    pipeline: Pipeline,
    ecs: EcsClient,
    store: StateStore,
    images: Images,
    phases: list[Phase],
    *,
    explicit_start: bool = False,
    with_diff: bool = True,
    allow_failed: bool = False,
    sync: Callable[[str | None], None] | None = None,
) -> Plan:
    """Plan `phases` (in order). Unless the start was named, a leading run of phases whose identical spec
    already passed its gates is skipped; if that covers every phase and the live revision is the last one's
    good revision, there is nothing to do."""
    svc = ecs.service(pipeline.service.cluster, pipeline.service.name)
    if sync is not None:  # the local marks are a cache of the revisions' tags: rebuilt when empty or behind
        sync(svc.task_definition if svc else None)
    base = base_definition(pipeline, ecs, svc)
    start = base or Base(_empty(pipeline), "empty")
    plan = Plan(service=svc, base=start)
    live = svc.task_definition if svc else None
    history = store.good_history(pipeline.service.name)
    plan.live_good = next((g for g in history if g.revision_arn == live), None) if live else None
    current: dict[str, Any] | None = None
    if with_diff and live:
        current = ecs.task_definition(live)[0]
    for ph in phases:
        ident = images.identity(ph)
        action = images.planned_action(ph, ident) if with_diff else ident
        desired = taskdef.compose(start.definition, pipeline.service, ph, ident, from_template=start.from_template)
        spec = taskdef.spec_hash(desired)
        good = next((g for g in history if g.phase == ph.name), None)
        plan.phases.append(PhasePlan(ph, ident, action, desired, spec, good, with_rollout(ph.gates)))
    if base is None:
        plan.notes.append("the service does not exist and service.task_definition is not set: nothing to start from")
    elif base.origin == "bootstrap":
        plan.notes.append(
            f"starting from the sandbox's bootstrap revision {short_name(live or '')}: its placeholder command is "
            "dropped, each image runs as built"
        )
    elif base.origin == "service":
        plan.notes.append(
            f"no service.task_definition: starting from the live revision {short_name(live or '')} (a phase that "
            "builds its image drops the old command/entryPoint and runs the image as built)"
        )
    if not explicit_start:
        _skip_done(plan, live)
    marks = store.marks(pipeline.service.name)
    for pp in plan.todo:
        pp.block = blocked(marks, pp.spec_hash, pp.phase.name, allow_failed=allow_failed)
    prev = current
    for pp in plan.todo:
        if with_diff:
            label = short_name(live) if prev is current and live else "previous phase"
            pp.diff = taskdef.diff(prev, pp.desired, label, f"{pp.phase.name} (new)")
            prev = pp.desired
    return plan


def _skip_done(plan: Plan, live: str | None) -> None:
    """Skip the leading phases whose identical spec already passed (all of them when the last one is live)."""
    prefix = 0
    for pp in plan.phases:
        if pp.good is not None and pp.good.spec_hash == pp.spec_hash:
            prefix += 1
        else:
            break
    last = plan.phases[-1] if plan.phases else None
    if prefix == len(plan.phases) and last is not None and last.good is not None and live == last.good.revision_arn:
        for pp in plan.phases:
            pp.skip = "already live and good" if pp is last else "passed earlier with the same image and spec"
        return
    # keep the last good phase of the prefix out of the skip set when the service left it
    keep = prefix if prefix < len(plan.phases) else prefix - 1
    for pp in plan.phases[:keep]:
        pp.skip = "passed earlier with the same image and spec"


def _empty(pipeline: Pipeline) -> dict[str, Any]:
    return {
        "family": pipeline.service.name,
        "containerDefinitions": [
            {
                "name": pipeline.service.container,
                "essential": True,
                "portMappings": [{"containerPort": pipeline.service.port, "protocol": "tcp"}],
            }
        ],
    }


def render_plan(plan: Plan, pipeline: Pipeline) -> str:
    """Plan as text a release engineer reads before running."""
    lines = []
    svc = plan.service
    if svc is None:
        lines.append(
            f"service {pipeline.service.name}: MISSING in cluster {pipeline.service.cluster} (run with --create-service)"
        )
    else:
        lines.append(
            f"service {svc.name}: runs {short_name(svc.task_definition)} "
            f"({svc.running}/{svc.desired} running)"
            + (
                f", last good phase {plan.live_good.phase}"
                if plan.live_good
                else ", not a revision that passed our gates"
            )
        )
    for n in plan.notes:
        lines.append(f"note: {n}")
    if not plan.todo:
        lines.append("nothing to do: every phase already passed its gates with the same image and spec")
    for pp in plan.phases:
        head = f"phase {pp.phase.name}" + (" [manual approval]" if pp.phase.manual else "")
        if pp.skip:
            lines.append(f"- {head}: skip ({pp.skip})")
            continue
        lines.append(f"- {head}")
        if pp.block:
            lines.append(f"    BLOCKED:  {pp.block.message()}")
        lines.append(f"    image:    {pp.image_action}")
        lines.extend(f"    warning:  {w}" for w in pp.warnings)
        lines.append(f"    register: revision of {pp.desired.get('family')} (spec {pp.spec_hash}; reused if identical)")
        lines.append(f"    update:   service {pipeline.service.name} -> that revision")
        lines.extend(plan_lines(pp.phase.strategy, pp.gates))  # blue-green / canary / linear (issue 13)
        lines.append(f"    gates:    {', '.join(g.label for g in pp.gates) or '(none)'}")
        lines.append(f"    bake:     {pp.phase.bake:g}s, then mark good")
        if pp.diff:
            lines.extend("    " + d for d in pp.diff.rstrip("\n").splitlines())
    return "\n".join(lines)
