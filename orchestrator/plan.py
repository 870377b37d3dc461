"""The planner: read-only. Current service state + the pipeline -> ordered phase plans.

`snail plan` prints it, `run --dry-run` prints it and stops, and `run` executes exactly it: the CLI makes the
plan and hands it to the engine, which never plans again."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from orchestrator import ladder, taskdef
from orchestrator.aws.ecs import EcsClient, ServiceView, short_name
from orchestrator.config.gates import GateSpec, with_rollout
from orchestrator.config.model import Phase, Pipeline
from orchestrator.config.names import unpinned_warning
from orchestrator.config.strategy import hook_timeout_warnings, pause_stages, plan_lines
from orchestrator.errors import AwsError, NotFound
from orchestrator.gates import early
from orchestrator.images import Images
from orchestrator.release_memory import Block, blocked
from orchestrator.state.base import GoodRecord, StateStore

ROLLING = "rolling"  # the deployers (orchestrator/engine/rolling.py, traffic.py); the engine dispatches on the name
TRAFFIC = "traffic"
DEPLOYER_WORDS = {
    ROLLING: "ECS replaces the tasks, then snail judges the new ones",
    TRAFFIC: "ECS shifts traffic to green; snail judges at each PAUSE hook",
}
# The ladder's first phase already runs on a revision snail did not register (`init --from-service`): run gates
# the live revision and marks it good, with no deployment. The planner's case, not the ladder's: it needs content.
ADOPT = "adopt"


@dataclass(frozen=True)
class Base:
    """The task definition phases start from, and where it came from.

    Without a template the base is a revision snail did not register: the one the service ran before snail's
    first release (recorded as `snail:base` on every revision snail registers, and read back from the live
    revision's tags), never the live revision itself. So a phase's spec is a function of its files and that
    one immutable revision, whatever phase is live."""

    definition: dict[str, Any]
    origin: str  # template | service | legacy | empty
    revision_arn: str = ""  # the base revision (recorded on what snail registers); "" for a template or nothing

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
    skip: str | None = None  # why this run does not deploy the phase (the ladder's reason)
    diff: str = ""
    block: Block | None = None  # quarantined (failed its gates) or held (a human rolled back from it)
    case: str = ""  # the ladder's case: live | deliver | behind | changed-behind | passed (orchestrator/ladder.py)
    reason: str = ""  # why, in the words plan prints
    deployer: str = ROLLING  # who deploys it: rolling (ECS's rolling update) | traffic (ECS shifts, PAUSE hooks)
    adopt: str = ""  # ADOPT: the live revision (not snail's) that already runs this spec
    # rolling: per gate, judged early on the new tasks while the rollout is in progress, or why not (gates/early.py)
    early: tuple[dict[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain data for `plan --output json`."""
        return {
            "phase": self.phase.name,
            "image": self.image_action,
            "spec_hash": self.spec_hash,
            "skip": self.skip,
            "case": self.case,
            "reason": self.reason,
            "adopt": self.adopt or None,
            "approval": self.phase.approval,
            "gates": [g.label for g in self.gates],
            "bake_seconds": self.phase.bake,
            "deployer": self.deployer,
            "early": list(self.early),
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
    behind: list[str] = field(default_factory=list)  # changed phases behind the live one: reported, not deployed

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
                "base_revision": self.base.revision_arn or None,
            },
            "phases": [p.to_dict() for p in self.phases],
            "notes": self.notes,
            "behind": self.behind,
        }


def _as_base(definition: dict[str, Any], arn: str) -> Base:
    """A described revision (one snail did not register) as the base."""
    return Base(taskdef.strip_read_only(definition), "service", arn)


def _described(ecs: EcsClient, arn: str) -> tuple[dict[str, Any], dict[str, str]] | None:
    """A revision and its tags, or None when ECS no longer has it (deleted); other errors are raised: a base that
    could not be read must never be replaced by another one."""
    try:
        return ecs.task_definition(arn)
    except AwsError as exc:
        if isinstance(exc, NotFound) or exc.code == "ClientException":  # ECS: "Unable to describe task definition"
            return None
        raise


def base_definition(
    pipeline: Pipeline, ecs: EcsClient, live: tuple[str, dict[str, Any], dict[str, str]] | None
) -> tuple[Base | None, str]:
    """The task definition phases start from, and the plan's note about it.

    The template file, if set. Else the revision the live one records as its base (`snail:base`), else the live
    revision itself when snail did not register it (the service as it was before snail: it becomes the base of
    what snail registers). A revision snail registered before it recorded bases is the base as a last resort
    (and says so). `live`: the live revision's ARN, definition and tags, or None."""
    if pipeline.service.task_definition:
        return Base(taskdef.load_template(pipeline.service.task_definition), "template"), ""
    if live is None:
        return None, "the service does not exist and service.task_definition is not set: nothing to start from"
    arn, definition, tags = live
    recorded = tags.get(taskdef.TAG_BASE)
    if recorded and recorded != arn:
        found = _described(ecs, recorded)
        if found is not None:
            base = _as_base(found[0], recorded)
            return base, (
                f"no service.task_definition: each phase is composed over the revision {short_name(recorded)}, which "
                f"the service ran before snail's first release (recorded on {short_name(arn)}), not over the live "
                "revision"
            )
        base = Base(taskdef.strip_read_only(definition), "legacy", "")
        return base, (
            f"no service.task_definition: the base {short_name(recorded)} recorded on {short_name(arn)} is gone; "
            f"composing over the live revision {short_name(arn)} (set service.task_definition for stable specs)"
        )
    if tags.get(taskdef.TAG_PHASE) and not recorded:
        base = Base(taskdef.strip_read_only(definition), "legacy", arn)
        return base, (
            f"no service.task_definition: the live revision {short_name(arn)} was registered by a snail that did "
            "not record its base; composing over it, and recording it as the base from now on (specs change once)"
        )
    base = _as_base(definition, arn)
    return base, (
        f"no service.task_definition: starting from the live revision {short_name(arn)} (not registered by snail), "
        "recorded as the base of every revision snail registers, so later runs compose over it again whatever is "
        "live (a phase that builds its image drops the old command/entryPoint and runs the image as built)"
    )


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
    """Plan `phases` (in order) as the ladder decides (orchestrator/ladder.py): once a phase is live, its new spec
    is delivered directly and phases behind it are not deployed; before that the ladder is climbed in order. A
    named start (`--from`, `promote`) delivers every selected phase."""
    svc = ecs.service(pipeline.service.cluster, pipeline.service.name)
    if sync is not None:  # the local marks are a cache of the revisions' tags: rebuilt when empty or behind
        sync(svc.task_definition if svc else None)
    live = svc.task_definition if svc else None
    described: tuple[str, dict[str, Any], dict[str, str]] | None = None
    if live and (with_diff or not pipeline.service.task_definition):
        definition, tags = ecs.task_definition(live)
        described = (live, definition, tags)
    base, note = base_definition(pipeline, ecs, described)
    start = base or Base(_empty(pipeline), "empty")
    plan = Plan(service=svc, base=start)
    if note:
        plan.notes.append(note)
    history = store.good_history(pipeline.service.name)
    plan.live_good = next((g for g in history if g.revision_arn == live), None) if live else None
    current = described[1] if with_diff and described else None
    for ph in phases:
        ident = images.identity(ph)
        action = images.planned_action(ph, ident) if with_diff else ident
        desired = taskdef.compose(start.definition, pipeline.service, ph, ident, from_template=start.from_template)
        spec = taskdef.spec_hash(desired)
        good = next((g for g in history if g.phase == ph.name), None)
        deployer = TRAFFIC if ph.strategy.uses_traffic else ROLLING  # chosen once, here; the engine dispatches on it
        gates = with_rollout(ph.gates)
        judged = tuple(early.plan_data(gates, pipeline.service.endpoint)) if deployer == ROLLING else ()
        plan.phases.append(PhasePlan(ph, ident, action, desired, spec, good, gates, deployer=deployer, early=judged))
    steps = ladder.climb(
        pipeline.phase_names(),
        [
            ladder.Rung(pp.phase.name, pp.spec_hash, pp.good.spec_hash if pp.good else "", _rev(pp.good))
            for pp in plan.phases
        ],
        live_phase=plan.live_good.phase if plan.live_good else None,
        live_spec=plan.live_good.spec_hash if plan.live_good else "",
        explicit_start=explicit_start,
    )
    for pp, step in zip(plan.phases, steps, strict=True):
        pp.case, pp.reason = step.case, step.reason
        if not step.delivers:
            pp.skip = step.reason
    plan.behind = ladder.behind_notes(steps)
    if live and plan.live_good is None and start.from_template and not explicit_start:
        _adopt(plan, pipeline, ecs, images, live, described)
    marks = store.marks(pipeline.service.name)
    for pp in plan.todo:
        pp.block = blocked(marks, pp.spec_hash, pp.phase.name, allow_failed=allow_failed)
    prev = current
    for pp in plan.todo:
        if with_diff and pp.case != ADOPT:
            label = short_name(live) if prev is current and live else "previous phase"
            pp.diff = taskdef.diff(prev, pp.desired, label, f"{pp.phase.name} (new)")
            prev = pp.desired
    return plan


def _adopt(
    plan: Plan,
    pipeline: Pipeline,
    ecs: EcsClient,
    images: Images,
    live: str,
    described: tuple[str, dict[str, Any], dict[str, str]] | None,
) -> None:
    """The climb's first phase, pinned to an image (`init --from-service`), whose spec the live revision already
    runs while snail never registered that revision: it is adopted (gated and marked good where it runs) instead
    of registered again and rolled out. Only the first phase of the pipeline, with a template as the base."""
    first = plan.phases[0] if plan.phases else None
    if first is None or first.case != ladder.DELIVER or not first.phase.image.ref:
        return
    if first.phase.name != pipeline.phase_names()[0]:
        return
    definition, tags = (described[1], described[2]) if described else ecs.task_definition(live)
    if tags.get(taskdef.TAG_PHASE):  # snail's own revision: release memory knows it, nothing to adopt
        return
    if not taskdef.runs_as(definition, first.desired, pipeline.service.container, images.same_image):
        return
    first.case, first.adopt = ADOPT, live
    first.reason = (
        f"already live: {short_name(live)}, which snail did not register, runs this spec; run gates it there and "
        "marks it good, with no deployment"
    )


def _rev(good: GoodRecord | None) -> str:
    return good.revision_arn if good else ""


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
    if plan.todo and all(pp.case == ADOPT for pp in plan.todo):
        lines.append(f"nothing to deploy: the service already runs phase {plan.todo[0].phase.name}'s spec")
    if not plan.todo:
        live = f": phase {plan.live_good.phase} is live and good" if plan.live_good else ""
        tail = "; a changed phase behind it is not deployed (below)" if plan.behind else ""
        lines.append(f"nothing to do{live}{tail}")
    for pp in plan.phases:
        head = f"phase {pp.phase.name}" + (" [manual approval]" if pp.phase.manual else "")
        if pp.case == ladder.LIVE:
            lines.append(f"- {head}: skip (live and good on {short_name(plan.live_revision or '')})")
            continue
        if pp.case == ADOPT:
            lines.append(f"- {head}: {pp.reason}")
            continue
        if pp.case == ladder.CHANGED_BEHIND:
            lines.append(f"- {head}: NOT DEPLOYED: {pp.reason}")
            continue
        if pp.skip:
            lines.append(f"- {head}: {pp.reason or pp.skip}")
            continue
        if pp.reason:
            head += f" ({pp.reason})"
        lines.append(f"- {head}")
        if pp.block:
            lines.append(f"    BLOCKED:  {pp.block.message()}")
        lines.append(f"    image:    {pp.image_action}")
        lines.extend(f"    warning:  {w}" for w in pp.warnings)
        lines.append(f"    register: revision of {pp.desired.get('family')} (spec {pp.spec_hash}; reused if identical)")
        lines.append(f"    update:   service {pipeline.service.name} -> that revision")
        lines.append(f"    deployer: {pp.deployer} ({DEPLOYER_WORDS[pp.deployer]})")
        lines.extend(plan_lines(pp.phase.strategy, pp.gates))  # blue-green / canary / linear
        lines.append(f"    gates:    {', '.join(g.label for g in pp.gates) or '(none)'}")
        lines.extend(early_lines(pp.early))
        lines.append(f"    bake:     {pp.phase.bake:g}s, then mark good")
        if pp.diff:
            lines.extend("    " + d for d in pp.diff.rstrip("\n").splitlines())
    return "\n".join(lines)


def early_lines(judged: tuple[dict[str, Any], ...]) -> list[str]:
    """plan's words for a rolling phase: which gates are judged early on the new tasks, which wait for the rollout."""
    on = [d["gate"] for d in judged if d["early"]]
    off = [f"{d['gate']} ({d['why_not']})" for d in judged if not d["early"] and d["gate"] != "ecs-rollout"]
    if not judged:
        return []
    lines = [
        "    early:    "
        + (f"{', '.join(on)}: judged on each new task while the rollout is in progress" if on else "(none)")
    ]
    if off:
        lines.append(f"    not early: {'; '.join(off)}")
    return lines
