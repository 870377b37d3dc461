"""Early judgment's logic (gates/early.py) with a fake ECS: which gates are judged early, when a poll lists the
tasks (at most once, only when a task of ours may be new), which tasks a look judges, and what it hands on."""

from __future__ import annotations

from typing import Any

from orchestrator.aws.ecs import ServiceView, TaskView
from orchestrator.config.gates import AlarmGate, CommandGate, EcsRolloutGate, HttpGate
from orchestrator.engine import bake
from orchestrator.gates.context import GateContext
from orchestrator.gates.early import EarlyLook, early, early_gates, judged_early, plan_data, why_not_early
from orchestrator.gates.verdict import FAILED, Verdict

OURS = "arn:aws:ecs:us-east-1:1:task-definition/svc:3"
OLD = "arn:aws:ecs:us-east-1:1:task-definition/svc:2"


def _task(n: int, revision: str = OURS, status: str = "RUNNING", port: int | None = 5000) -> TaskView:
    bindings = [{"containerPort": 5000, "hostPort": 40000 + n, "bindIP": "127.0.0.1"}] if port else []
    return TaskView.from_api(
        {
            "taskArn": f"arn:aws:ecs:us-east-1:1:task/shine/{n:032x}",
            "taskDefinitionArn": revision,
            "lastStatus": status,
            "desiredStatus": "RUNNING",
            "containers": [{"name": "api", "networkBindings": bindings}],
        }
    )


def _svc(running: int, failed: int = 0, state: str = "IN_PROGRESS", revision: str = OURS) -> ServiceView:
    primary = {
        "id": "ecs-svc/new",
        "status": "PRIMARY",
        "taskDefinition": revision,
        "rolloutState": state,
        "desiredCount": 2,
        "runningCount": running,
        "failedTasks": failed,
    }
    old = {"id": "ecs-svc/old", "status": "ACTIVE", "taskDefinition": OLD, "runningCount": 2, "desiredCount": 2}
    return ServiceView.from_api({"serviceName": "svc", "taskDefinition": revision, "deployments": [primary, old]})


class FakeEcs:
    """ListTasks + DescribeTasks of the service, counted."""

    def __init__(self, tasks: list[TaskView]) -> None:
        self.listed = tasks
        self.calls = 0

    def tasks(self, cluster: str, service: str, desired_status: str = "RUNNING") -> list[TaskView]:
        self.calls += 1
        return list(self.listed)


class FakeJudge:
    """Judges the gates by the endpoints it is handed: a URL in `bad` fails."""

    def __init__(self, bad: tuple[str, ...] = ()) -> None:
        self.bad = bad
        self.seen: list[dict[int, list[str]]] = []
        self.notes: list[str] = []

    def __call__(self, gates: Any, ctx: GateContext, note: str) -> Verdict | None:
        self.seen.append({p: list(u) for p, u in ctx.endpoints.items()})
        self.notes.append(note)
        urls = ctx.endpoints.get(5000, [])
        if any(u in self.bad for u in urls):
            return Verdict("http /health", FAILED, "status 500, expected 200", definitive=True)
        return None


def _ctx(ecs: FakeEcs) -> GateContext:
    return GateContext(cluster="shine", service="svc", revision_arn=OURS, port=5000, ecs=ecs)  # type: ignore[arg-type]


HEALTH = HttpGate(path="/health")


def test_task_gates_are_judged_early_and_the_others_wait_for_the_rollout() -> None:
    """http on the tasks and commands naming SNAIL_ENDPOINT are early; a fixed URL, service.endpoint, a command that
    does not name the task, alarms and the rollout itself are not, each with plan's reason."""
    named = CommandGate(run=("sh", "-c", 'curl "$SNAIL_ENDPOINT/x"'))
    by_env = CommandGate(run="./smoke.sh", env={"TARGET": "${SNAIL_ENDPOINTS}"})
    fixed = HttpGate(url="https://lb.example/health")
    blind = CommandGate(run="./smoke.sh")
    gates = (EcsRolloutGate(), HEALTH, named, by_env, fixed, blind, AlarmGate(alarms=("a",)))
    assert early_gates(gates, None) == (HEALTH, named, by_env)
    assert early_gates(gates, "https://lb.example") == ()  # service.endpoint: the old tasks answer there too
    assert "fixed URL" in why_not_early(fixed, None)
    assert "service.endpoint" in why_not_early(HEALTH, "https://lb.example")
    assert "does not name the task" in why_not_early(blind, None)
    assert why_not_early(HEALTH, None) == "" and judged_early(HEALTH, None)
    assert [d["early"] for d in plan_data(gates, None)] == [False, True, True, True, False, False, False]


def test_a_poll_lists_the_tasks_only_when_one_of_ours_may_be_new() -> None:
    """No listing while no task of ours runs, none once every running one was judged, none when the rollout is not
    ours or not in progress; a failed task (a replacement is coming) lists again."""
    ecs = FakeEcs([_task(1), _task(9, OLD)])
    look = EarlyLook((HEALTH,), FakeJudge())
    ctx = _ctx(ecs)
    assert look.look(ctx, _svc(running=0)) is None and ecs.calls == 0
    assert look.look(ctx, _svc(running=1)) is None and ecs.calls == 1
    assert look.look(ctx, _svc(running=1)) is None and ecs.calls == 1  # judged already: no call
    assert look.look(ctx, _svc(running=2, state="COMPLETED")) is None and ecs.calls == 1
    assert look.look(ctx, _svc(running=2, revision=OLD)) is None and ecs.calls == 1
    assert look.look(ctx, _svc(running=1, failed=1)) is None and ecs.calls == 2


def test_a_look_judges_only_our_new_tasks_with_an_endpoint() -> None:
    """Old tasks, our tasks still PENDING or without an endpoint, and tasks judged before are not asked."""
    judge = FakeJudge()
    look = EarlyLook((HEALTH,), judge)
    ecs = FakeEcs([_task(1), _task(2, status="PENDING"), _task(3, port=None), _task(9, OLD)])
    assert look.look(_ctx(ecs), _svc(running=1)) is None
    assert judge.seen == [{5000: ["http://127.0.0.1:40001"]}]
    assert "new task 00000000000000000000000000000001" in judge.notes[0]
    ecs.listed.append(_task(4))
    assert look.look(_ctx(ecs), _svc(running=2)) is None
    assert judge.seen[-1] == {5000: ["http://127.0.0.1:40004"]}


def test_a_failing_look_is_the_phases_failure_with_the_tasks_it_saw() -> None:
    """The failing verdict is marked early and names our new tasks and the old ones still running then."""
    look = EarlyLook((HEALTH,), FakeJudge(bad=("http://127.0.0.1:40001",)))
    v = look.look(_ctx(FakeEcs([_task(1), _task(9, OLD)])), _svc(running=1))
    assert v is not None and v.status == FAILED and early(v) and look.failure is v
    assert v.evidence["new_tasks"] == [_task(1).arn] and v.evidence["old_tasks"] == [_task(9, OLD).arn]
    assert bake.reason(v).startswith("gate http /health failed early, on our new tasks while the rollout was")


def test_the_completed_rollout_is_handed_the_tasks_judged_early_when_ecs_counts_say_they_are_the_same() -> None:
    """As many running as judged and none failed since: the gates after the rollout ask those tasks without
    listing them; otherwise (one more task, or a failure since) they list the tasks again."""
    look = EarlyLook((HEALTH,), FakeJudge())
    ecs = FakeEcs([_task(1), _task(2)])
    ctx = _ctx(ecs)
    look.look(ctx, _svc(running=2))
    said = look.completed(ctx, _svc(running=2, state="COMPLETED"))
    assert ctx.endpoints == {5000: ["http://127.0.0.1:40001", "http://127.0.0.1:40002"]}
    assert ctx.task_arns == (_task(1).arn, _task(2).arn)
    assert said.startswith("; judged early: http /health passed on new task(s)")
    for svc in (_svc(running=3, state="COMPLETED"), _svc(running=2, failed=1, state="COMPLETED")):
        fresh = _ctx(ecs)
        look.completed(fresh, svc)
        assert fresh.endpoints == {} and fresh.task_arns == ()


def test_a_look_asks_the_gates_that_conclude_in_one_answer_first() -> None:
    """The early look's order is by answers needed (then the phase's): a `/ml/status` that fails on its first answer
    is asked before `/health`'s `consecutive: 2`; the trail's words keep the phase's order."""
    twice = HttpGate(path="/health", consecutive=2)
    ml = HttpGate(path="/ml/status")
    smoke = CommandGate(run='curl "$SNAIL_ENDPOINT"')
    asked: list[tuple[str, ...]] = []

    def judge(gates: Any, ctx: GateContext, note: str) -> Verdict | None:
        asked.append(tuple(g.label for g in gates))
        return None

    look = EarlyLook((twice, ml, smoke), judge)
    look.look(_ctx(FakeEcs([_task(1)])), _svc(running=1))
    assert asked == [(ml.label, smoke.label, twice.label)]
    assert look.passes == [f"{twice.label}, {ml.label}, {smoke.label} passed on new task(s) {_task(1).short_id}"]
