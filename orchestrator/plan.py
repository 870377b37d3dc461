"""The planner: read-only. Current service state + the pipeline -> ordered phase plans.

`snail plan` prints it, `run --dry-run` prints it and stops, and `run` executes exactly it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from orchestrator import taskdef
from orchestrator.aws.ecs import EcsClient, ServiceView
from orchestrator.config.model import Phase, Pipeline
from orchestrator.engine.images import Images
from orchestrator.state.base import GoodRecord, StateStore


@dataclass
class PhasePlan:
    """What running one phase would do."""

    phase: Phase
    identity: str  # content tag or prebuilt ref
    image_action: str  # "build images/x -> repo:tag" | "use ref"
    desired: dict[str, Any]  # the task definition (image as identity until the digest is known)
    spec_hash: str
    good: GoodRecord | None
    skip: str | None = None  # why the phase needs no work
    diff: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain data for `plan --output json`."""
        return {
            "phase": self.phase.name,
            "image": self.image_action,
            "spec_hash": self.spec_hash,
            "skip": self.skip,
            "approval": self.phase.approval,
            "gates": [g.label for g in self.phase.gates],
            "bake_seconds": self.phase.bake,
            "last_good_revision": self.good.revision_arn if self.good else None,
            "diff": self.diff,
        }


@dataclass
class Plan:
    """The whole run: the service as it is, and each phase's plan in order."""

    service: ServiceView | None
    base: dict[str, Any] | None
    phases: list[PhasePlan] = field(default_factory=list)
    live_good: GoodRecord | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def todo(self) -> list[PhasePlan]:
        """Phases that need work."""
        return [p for p in self.phases if not p.skip]

    def to_dict(self) -> dict[str, Any]:
        """Plain data for `plan --output json`."""
        return {
            "service": {
                "exists": self.service is not None,
                "revision": self.service.task_definition if self.service else None,
                "live_good_phase": self.live_good.phase if self.live_good else None,
            },
            "phases": [p.to_dict() for p in self.phases],
            "notes": self.notes,
        }


def base_definition(pipeline: Pipeline, ecs: EcsClient, svc: ServiceView | None) -> dict[str, Any] | None:
    """The task definition phases start from: the template file, else the service's current revision."""
    if pipeline.service.task_definition:
        return taskdef.load_template(pipeline.service.task_definition)
    if svc is not None and svc.task_definition:
        return taskdef.strip_read_only(ecs.task_definition(svc.task_definition)[0])
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
) -> Plan:
    """Plan `phases` (in order). Unless the start was named, a leading run of phases whose identical spec
    already passed its gates is skipped; if that covers every phase and the live revision is the last one's
    good revision, there is nothing to do."""
    svc = ecs.service(pipeline.service.cluster, pipeline.service.name)
    base = base_definition(pipeline, ecs, svc)
    plan = Plan(service=svc, base=base)
    live = svc.task_definition if svc else None
    history = store.good_history(pipeline.service.name)
    plan.live_good = next((g for g in history if g.revision_arn == live), None) if live else None
    current: dict[str, Any] | None = None
    if with_diff and live:
        current = ecs.task_definition(live)[0]
    for ph in phases:
        ident = images.identity(ph)
        action = images.planned_action(ph, ident) if with_diff else ident
        desired = taskdef.compose(base or _empty(pipeline), pipeline.service, ph, ident)
        spec = taskdef.spec_hash(desired)
        good = next((g for g in history if g.phase == ph.name), None)
        plan.phases.append(PhasePlan(ph, ident, action, desired, spec, good))
    if base is None:
        plan.notes.append("the service does not exist and service.task_definition is not set: nothing to start from")
    if not explicit_start:
        prefix = 0
        for pp in plan.phases:
            if pp.good is not None and pp.good.spec_hash == pp.spec_hash:
                prefix += 1
            else:
                break
        if prefix == len(plan.phases) and plan.phases and live == plan.phases[-1].good.revision_arn:  # type: ignore[union-attr]
            for pp in plan.phases:
                pp.skip = (
                    "already live and good" if pp is plan.phases[-1] else "passed earlier with the same image and spec"
                )
        else:
            # keep the last good phase of the prefix out of the skip set when the service left it
            keep = prefix if prefix < len(plan.phases) else prefix - 1
            for pp in plan.phases[:keep]:
                pp.skip = "passed earlier with the same image and spec"
    prev = current
    for pp in plan.todo:
        if with_diff:
            pp.diff = taskdef.diff(
                prev,
                pp.desired,
                live.rsplit("/", 1)[-1] if prev is current and live else "previous phase",
                f"{pp.phase.name} (new)",
            )
            prev = pp.desired
    return plan


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
            f"service {svc.name}: runs {svc.task_definition.rsplit('/', 1)[-1]} "
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
        lines.append(f"    image:    {pp.image_action}")
        lines.append(f"    register: revision of {pp.desired.get('family')} (spec {pp.spec_hash}; reused if identical)")
        lines.append(f"    update:   service {pipeline.service.name} -> that revision")
        lines.append(f"    gates:    {', '.join(g.label for g in pp.phase.gates) or '(none)'}")
        lines.append(f"    bake:     {pp.phase.bake:g}s, then mark good")
        if pp.diff:
            lines.extend("    " + d for d in pp.diff.rstrip("\n").splitlines())
    return "\n".join(lines)
