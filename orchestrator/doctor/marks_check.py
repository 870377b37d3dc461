"""Release memory: snail may write its verdicts on the service's task-definition revisions (ecs:TagResource)."""

from __future__ import annotations

from orchestrator.doctor.context import DoctorContext, Skip
from orchestrator.doctor.model import PASSED, WARNING, Check
from orchestrator.doctor.runner import Result, check, run_checks


@check("marks.tagging", "verdicts can be written on the revisions (ecs:TagResource)")
def tagging(ctx: DoctorContext) -> Result:
    """Without ecs:TagResource a run still completes, but other checkouts and CI runners never see its verdicts."""
    from orchestrator.arns import family_of, short_name
    from orchestrator.errors import AccessDenied

    svc = ctx.require_service()
    live = svc.get("taskDefinition")
    if not live or ctx.current_taskdef() is None:
        raise Skip("the service has no task definition yet")
    tags = ctx.current_tags()
    if not tags:
        raise Skip(f"{short_name(live)} has no tags to write back unchanged: ecs:TagResource not probed")
    key = sorted(tags)[0]
    try:  # TagResource is idempotent: writing a tag back unchanged proves the permission and changes nothing
        ctx.revisions().tag(live, {key: tags[key]})
    except AccessDenied:
        return Result(
            WARNING,
            f"ecs:TagResource is denied on {short_name(live)}: good/failed/held verdicts would stay in this "
            "checkout's local state, so other checkouts and CI runners would not know them",
            f"allow ecs:TagResource on arn:aws:ecs:{ctx.spec.region}:*:task-definition/{family_of(live)}:* "
            "(`snail iam-policy` prints the whole policy)",
        )
    return Result(PASSED, f"ecs:TagResource allowed on {short_name(live)} (its {key} tag written back unchanged)")


def checks(ctx: DoctorContext) -> list[Check]:
    """Release-memory checks."""
    return run_checks(ctx, (tagging,))
