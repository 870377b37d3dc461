"""The ecs-rollout gate against the real AWS response shapes (botocore Stubber): moto never moves a deployment,
so COMPLETED, IN_PROGRESS, FAILED, circuit-breaker rollback and a foreign deployment are stubbed here."""

from __future__ import annotations

from datetime import datetime, timezone

import boto3
import pytest
from botocore.stub import ANY, Stubber

from orchestrator.aws.ecs import EcsClient
from orchestrator.config.gates import EcsRolloutGate
from orchestrator.gates import GateContext, run_gate

ACCT = "arn:aws:ecs:us-east-1:123456789012"
REV = {n: f"{ACCT}:task-definition/shine-api-gateway:{n}" for n in range(8, 14)}
T0 = datetime(2025, 8, 11, 22, 44, tzinfo=timezone.utc)


def dep(
    rev: int,
    status: str = "PRIMARY",
    rollout: str = "IN_PROGRESS",
    running: int = 0,
    desired: int = 2,
    failed: int = 0,
    reason: str = "",
) -> dict:
    """One deployment in describe_services' shape."""
    return {
        "id": f"ecs-svc/{rev}{status[:2]}",
        "status": status,
        "taskDefinition": REV[rev],
        "desiredCount": desired,
        "pendingCount": desired - running,
        "runningCount": running,
        "failedTasks": failed,
        "createdAt": T0,
        "updatedAt": T0,
        "launchType": "FARGATE",
        "rolloutState": rollout,
        "rolloutStateReason": reason or f"ECS deployment {rollout.lower()}.",
    }


def svc(deployments: list[dict], events: list[str] = ()) -> dict:
    """A describe_services response."""
    primary = next(d for d in deployments if d["status"] == "PRIMARY")
    return {
        "services": [
            {
                "serviceArn": f"{ACCT}:service/shine/shine-api-gateway",
                "serviceName": "shine-api-gateway",
                "clusterArn": f"{ACCT}:cluster/shine",
                "status": "ACTIVE",
                "taskDefinition": primary["taskDefinition"],
                "desiredCount": 2,
                "runningCount": primary["runningCount"],
                "pendingCount": primary["pendingCount"],
                "deployments": deployments,
                "events": [{"id": str(i), "createdAt": T0, "message": m} for i, m in enumerate(events)],
            }
        ],
        "failures": [],
    }


class _Aws:
    def __init__(self, client):  # noqa: ANN001
        self._c = client

    def client(self, name: str):  # noqa: ANN201
        return self._c


@pytest.fixture
def stubbed():
    """An ECS client whose responses the test scripts, in order."""
    client = boto3.client("ecs", region_name="us-east-1")
    with Stubber(client) as st:
        yield client, st


def gate(
    stubbed,
    clock,
    responses: list[dict],
    revision: int = 12,
    stopped: list[dict] | None = None,
    timeout: float = 600,
    stopped_after: int | None = None,
):
    """Run the gate over scripted describe_services responses, and the stopped tasks it lists (after the
    `stopped_after`-th describe: when a task of ours first fails; by default after the last one)."""
    client, st = stubbed
    at = len(responses) if stopped_after is None else stopped_after
    for i, r in enumerate(responses):
        st.add_response("describe_services", r, {"cluster": "shine", "services": ["shine-api-gateway"]})
        if i + 1 == at and stopped is not None:
            st.add_response(
                "list_tasks",
                {"taskArns": [t["taskArn"] for t in stopped]},
                {"cluster": "shine", "serviceName": "shine-api-gateway", "desiredStatus": "STOPPED"},
            )
            if stopped:
                st.add_response(
                    "describe_tasks", {"tasks": stopped, "failures": []}, {"cluster": "shine", "tasks": ANY}
                )
    ctx = GateContext(
        cluster="shine",
        service="shine-api-gateway",
        revision_arn=REV[revision],
        port=5000,
        ecs=EcsClient(_Aws(client)),
        clock=clock,
    )
    v = run_gate(EcsRolloutGate(poll=2, timeout=timeout), ctx)
    st.assert_no_pending_responses()
    return v


def test_completed_after_progress(stubbed, clock) -> None:
    """IN_PROGRESS with the old deployment draining, then COMPLETED with it gone: passed."""
    v = gate(
        stubbed,
        clock,
        [
            svc([dep(12, running=0), dep(11, "ACTIVE", "COMPLETED", running=2)]),
            svc([dep(12, running=2), dep(11, "ACTIVE", "COMPLETED", running=1)]),
            svc([dep(12, rollout="COMPLETED", running=2)]),
        ],
    )
    assert v.passed and v.attempts == 3
    assert clock.sleeps == [2.0, 2.0]  # a steady poll while the rollout moves: no backoff


def test_completed_but_old_deployment_still_draining_is_not_success(stubbed, clock) -> None:
    """PRIMARY COMPLETED while an old deployment is still listed is not yet success."""
    v = gate(
        stubbed,
        clock,
        [
            svc([dep(12, rollout="COMPLETED", running=2), dep(11, "ACTIVE", "COMPLETED", running=1)]),
            svc([dep(12, rollout="COMPLETED", running=2)]),
        ],
    )
    assert v.passed and v.attempts == 2


def test_failed_with_failed_tasks(stubbed, clock) -> None:
    """FAILED rollout (tasks failing) is a terminal failure carrying the stopped tasks' reasons."""
    stopped = [
        {
            "taskArn": f"{ACCT}:task/shine/abc123",
            "taskDefinitionArn": REV[12],
            "lastStatus": "STOPPED",
            "desiredStatus": "STOPPED",
            "stoppedReason": "Essential container in task exited",
            "containers": [{"name": "api", "exitCode": 1, "lastStatus": "STOPPED"}],
        }
    ]
    v = gate(
        stubbed,
        clock,
        [
            svc([dep(12, running=0, failed=2), dep(11, "ACTIVE", "COMPLETED", running=2)]),
            svc(
                [
                    dep(
                        12, rollout="FAILED", failed=3, reason="ECS deployment circuit breaker: tasks failed to start."
                    ),
                    dep(11, "ACTIVE", "COMPLETED", running=2),
                ]
            ),
        ],
        stopped=stopped,
        stopped_after=1,
    )
    assert v.status == "failed" and v.terminal
    assert "circuit breaker" in v.summary
    assert v.evidence["stopped_tasks"][0]["stopped_reason"] == "Essential container in task exited"
    assert v.evidence["stopped_tasks"][0]["containers"][0]["exit_code"] == 1


def test_circuit_breaker_rollback_to_old_revision_is_failure(stubbed, clock) -> None:
    """The breaker rolled back: PRIMARY is the old revision and COMPLETED — that is never our success."""
    v = gate(
        stubbed,
        clock,
        [
            svc(
                [
                    dep(11, rollout="IN_PROGRESS", running=1),
                    dep(
                        12,
                        "ACTIVE",
                        "FAILED",
                        failed=3,
                        reason="ECS deployment circuit breaker: rolling back to deploymentId ecs-svc/11PR.",
                    ),
                ]
            ),
        ],
        stopped=[],
    )
    assert v.status == "failed" and v.terminal
    assert "rolled shine-api-gateway:12 back to shine-api-gateway:11" in v.summary


def test_completed_rollback_to_old_revision_is_failure(stubbed, clock) -> None:
    """Even a COMPLETED primary is a failure when it runs another revision than ours (moto quirk included)."""
    v = gate(stubbed, clock, [svc([dep(11, rollout="COMPLETED", running=2)])], stopped=[])
    assert v.status == "failed" and v.terminal
    assert "not our revision shine-api-gateway:12" in v.summary


def test_replaced_by_someone_else(stubbed, clock) -> None:
    """Another actor's deployment (revision 13) started while ours was rolling: superseded, not failed (no stopped
    tasks fetched as a failure's evidence); the verdict names what replaced ours and what is live."""
    v = gate(
        stubbed,
        clock,
        [
            svc([dep(12, running=1), dep(11, "ACTIVE", "COMPLETED", running=2)]),
            svc([dep(13, running=0), dep(12, "ACTIVE", "IN_PROGRESS", running=1)]),
        ],
    )
    assert v.status == "superseded" and v.terminal
    assert "superseded by another actor: deployment ecs-svc/13PR of shine-api-gateway:13" in v.summary
    assert "live: shine-api-gateway:13" in v.summary
    assert v.evidence["superseded_by"]["revision"] == REV[13]


def test_gone_after_a_rollout_in_progress_is_still_a_failure(stubbed, clock) -> None:
    """Ours gone from the list while it was rolling (ECS's breaker may have taken it back and drained it): a
    failure, never superseded on a guess."""
    v = gate(
        stubbed,
        clock,
        [svc([dep(12, running=1), dep(11, "ACTIVE", "COMPLETED", running=2)]), svc([dep(13, running=0)])],
        stopped=[],
    )
    assert v.status == "failed" and v.terminal


def test_timeout_is_failure_not_success(stubbed, clock) -> None:
    """A rollout stuck IN_PROGRESS past the timeout fails with the last state (the field log's 'stuck' deploy)."""
    stuck = svc(
        [dep(12, running=1), dep(11, "ACTIVE", "COMPLETED", running=2)],
        events=["(service shine-api-gateway) has started 1 tasks: (task abc)."],
    )
    v = gate(stubbed, clock, [stuck] * 16, timeout=30, stopped=[])  # polls every 2s: 0, 2, ..., 28 and 30
    assert v.status == "failed" and "timed out after 30s" in v.summary
    assert "1/2 running" in v.summary and "1 old deployment(s) draining" in v.summary
    assert v.evidence["events"] == ["(service shine-api-gateway) has started 1 tasks: (task abc)."]


def test_service_deleted_mid_rollout(stubbed, clock) -> None:
    """A service that disappears is a terminal failure."""
    missing = {"services": [], "failures": [{"arn": f"{ACCT}:service/shine-api-gateway", "reason": "MISSING"}]}
    v = gate(stubbed, clock, [missing], stopped=None)
    assert v.status == "failed" and v.terminal and "no longer exists" in v.summary


STOPPED_PULL = {
    "taskArn": f"{ACCT}:task/shine/pull1",
    "taskDefinitionArn": REV[12],
    "lastStatus": "STOPPED",
    "desiredStatus": "STOPPED",
    "stoppedReason": "CannotPullContainerError: pull image manifest has been retried 5 time(s): not found",
    "containers": [{"name": "api", "lastStatus": "STOPPED"}],
}
STOPPED_CRASH = {
    **STOPPED_PULL,
    "taskArn": f"{ACCT}:task/shine/crash1",
    "stoppedReason": "Essential container in task exited",
}


def test_crash_loop_with_breaker_off_fails_at_the_threshold_poll(stubbed, clock) -> None:
    """Breaker off: ECS would retry forever; 3 failed tasks of ours is a verdict on the poll that shows them."""
    v = gate(
        stubbed,
        clock,
        [
            svc([dep(12, failed=1), dep(11, "ACTIVE", "COMPLETED", running=2)]),
            svc([dep(12, failed=3), dep(11, "ACTIVE", "COMPLETED", running=2)]),
        ],
        stopped=[STOPPED_CRASH],
        stopped_after=1,
    )
    assert v.status == "failed" and v.terminal and v.attempts == 2
    assert "3 tasks of shine-api-gateway:12 failed to start" in v.summary
    assert v.evidence["stopped_tasks"][0]["stopped_reason"] == "Essential container in task exited"


def test_unable_to_place_event_fails_on_the_poll_that_shows_it(stubbed, clock) -> None:
    """A service event saying tasks cannot be placed ends the wait at once (the deployment that looked stuck)."""
    event = "(service shine-api-gateway) was unable to place a task because no container instance met all of its requirements."
    v = gate(
        stubbed,
        clock,
        [svc([dep(12), dep(11, "ACTIVE", "COMPLETED", running=2)], events=[event])],
        stopped=[],
    )
    assert v.status == "failed" and v.terminal and v.attempts == 1 and "unable to place a task" in v.summary


def test_image_that_cannot_be_pulled_fails_on_the_first_stopped_task(stubbed, clock) -> None:
    """CannotPullContainerError is not cured by waiting: the first stopped task ends the rollout gate."""
    v = gate(
        stubbed, clock, [svc([dep(12, failed=1), dep(11, "ACTIVE", "COMPLETED", running=2)])], stopped=[STOPPED_PULL]
    )
    assert v.status == "failed" and v.attempts == 1 and "CannotPullContainerError" in v.summary
