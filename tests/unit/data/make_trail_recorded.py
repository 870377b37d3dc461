"""Writes trail_recorded.json next to this file: ten runs in the engine's own words that hold every EventKind (add a
line here when a kind is added; tests/unit/test_trail_render.py checks the coverage). Run: python make_trail_recorded.py"""

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

T0 = datetime(2026, 11, 29, 7, 8, 49, tzinfo=timezone.utc)
SVC = "shine-api-gateway"
TD = "arn:aws:ecs:us-east-1:123456789012:task-definition/shine-api-gateway:{}"
events: list[dict[str, Any]] = []
runs: list[dict[str, Any]] = []


def ev(rid_: str, sec: int, kind_: str, msg: str, phase: str | None = None, **data: Any) -> None:
    """Record one trail event `sec` seconds after T0."""
    events.append(
        {
            "run_id": rid_,
            "service": SVC,
            "at": (T0 + timedelta(seconds=sec)).isoformat(timespec="seconds"),
            "kind": kind_,
            "message": msg,
            "phase": phase,
            "data": data,
        }
    )


def run(rid: str, sec: int, end: int, command: str, status: str, code: int, msg: str, phases: list[str]) -> None:
    """Record one run record from `sec` to `end` seconds after T0."""
    runs.append(
        {
            "run_id": rid,
            "service": SVC,
            "command": command,
            "status": status,
            "started_at": (T0 + timedelta(seconds=sec)).isoformat(timespec="seconds"),
            "user": "oncall",
            "host": "ci-runner-7",
            "finished_at": (T0 + timedelta(seconds=end)).isoformat(timespec="seconds"),
            "exit_code": code,
            "message": msg,
            "phases": phases,
        }
    )


# run 1: two phases pass (service created, second one reuses a revision after a retry)
r = "r-20261129-070849-a001"
run(r, 0, 95, "run", "succeeded", 0, "done: health-only, hybrid-ml passed their gates", ["health-only", "hybrid-ml"])
ev(r, 0, "run_started", "run started by oncall@ci-runner-7: phases health-only, hybrid-ml", command="run")
ev(r, 1, "phase_started", "phase health-only started", "health-only", gates=["ecs-rollout", "http /health"])
ev(
    r,
    9,
    "image_ready",
    "image built and pushed: 123456789012.dkr.ecr.us-east-1.amazonaws.com/shine-api-gateway@sha256:aaaa",
    "health-only",
)
ev(
    r,
    10,
    "revision_registered",
    "registered task definition revision 2 (shine-api-gateway:2)",
    "health-only",
    revision=TD.format(2),
)
ev(r, 11, "service_created", "created missing ECS service 'shine-api-gateway' on shine-api-gateway:2", "health-only")
ev(
    r,
    30,
    "gate_passed",
    "[x] ecs-rollout: shine-api-gateway:2 COMPLETED, 1/1 running",
    "health-only",
    gate="ecs-rollout",
    status="passed",
    attempts=6,
    evidence={},
)
ev(
    r,
    36,
    "gate_passed",
    "[x] http /health: 1 endpoint(s) answered 2x as expected (after 3 attempts)",
    "health-only",
    gate="http /health",
    status="passed",
    attempts=3,
    evidence={"endpoints": ["http://127.0.0.1:32768/health"]},
)
ev(r, 38, "bake_done", "baked 2s: still ours and healthy", "health-only")
ev(
    r,
    38,
    "phase_passed",
    "phase health-only passed its gates on shine-api-gateway:2: marked good",
    "health-only",
    revision=TD.format(2),
)
ev(
    r,
    40,
    "phase_started",
    "phase hybrid-ml started",
    "hybrid-ml",
    gates=["ecs-rollout", "http /health", "http /ml/status"],
)
ev(
    r,
    41,
    "image_ready",
    "image reused: 123456789012.dkr.ecr.us-east-1.amazonaws.com/shine-api-gateway@sha256:bbbb",
    "hybrid-ml",
)
ev(
    r,
    42,
    "revision_reused",
    "identical revision shine-api-gateway:3 reused (spec abc123)",
    "hybrid-ml",
    revision=TD.format(3),
)
ev(
    r,
    43,
    "service_updated",
    "service shine-api-gateway -> shine-api-gateway:3",
    "hybrid-ml",
    previous=TD.format(2),
    revision=TD.format(3),
)
ev(r, 60, "traffic_shifted", "production traffic 10% green", "hybrid-ml", traffic={"blue": 90, "green": 10})
ev(r, 75, "traffic_shifted", "production traffic 100% green", "hybrid-ml", traffic={"blue": 0, "green": 100})
ev(
    r,
    80,
    "gate_passed",
    "[x] ecs-rollout: shine-api-gateway:3 COMPLETED, 1/1 running",
    "hybrid-ml",
    gate="ecs-rollout",
    status="passed",
    attempts=1,
    evidence={},
)
ev(
    r,
    85,
    "gate_passed",
    "[x] http /ml/status: 1 endpoint(s) answered 1x as expected",
    "hybrid-ml",
    gate="http /ml/status",
    status="passed",
    attempts=1,
    evidence={},
)
ev(r, 93, "bake_done", "baked 2s: still ours and healthy", "hybrid-ml")
ev(
    r,
    94,
    "phase_passed",
    "phase hybrid-ml passed its gates on shine-api-gateway:3: marked good",
    "hybrid-ml",
    revision=TD.format(3),
)
ev(r, 95, "run_finished", "done: health-only, hybrid-ml passed their gates", status="succeeded", exit_code=0)

# run 2: optimized fails with hostile ECS text, auto rollback to hybrid-ml
r = "r-20261129-071500-b002"
B = 371
run(
    r,
    B,
    B + 70,
    "run",
    "rolled_back",
    1,
    "phase optimized failed: gate http /health failed; rolled back to shine-api-gateway:3 (phase hybrid-ml), verified by its gates",
    ["health-only", "hybrid-ml", "optimized"],
)
ev(r, B, "run_started", "run started by oncall@ci-runner-7: phases optimized", command="run")
ev(
    r,
    B,
    "lock_taken_over",
    "took over the lock of run r-x (its process 4242 is gone; oncall@ci-runner-7, run since 2026-11-29T07:14:00+00:00)",
    previous={"run_id": "r-x"},
)
ev(
    r,
    B,
    "reconciled",
    "run r-x was interrupted during update_service (optimized); the service runs shine-api-gateway:3",
    run="r-x",
)
ev(r, B + 1, "phase_skipped", "health-only: already live and good", "health-only")
ev(r, B + 1, "phase_skipped", "hybrid-ml: already live and good", "hybrid-ml")
ev(r, B + 2, "phase_started", "phase optimized started", "optimized", gates=["ecs-rollout", "http /health"])
ev(r, B + 5, "image_ready", "image built and pushed: x@sha256:cccc", "optimized")
ev(
    r,
    B + 6,
    "revision_registered",
    "registered task definition revision 4 (shine-api-gateway:4)",
    "optimized",
    revision=TD.format(4),
)
ev(
    r,
    B + 7,
    "service_updated",
    "service shine-api-gateway -> shine-api-gateway:4",
    "optimized",
    previous=TD.format(3),
    revision=TD.format(4),
)
ev(
    r,
    B + 20,
    "gate_passed",
    "[x] ecs-rollout: shine-api-gateway:4 COMPLETED, 1/1 running",
    "optimized",
    gate="ecs-rollout",
    status="passed",
    attempts=4,
    evidence={},
)
ev(
    r,
    B + 38,
    "gate_failed",
    "[ ] http /health: failed: status 500, expected 200 <script>alert('x')</script>\x1b[31mRED\x1b[0m",
    "optimized",
    gate="http /health",
    status="failed",
    attempts=10,
    attempts_at=[(T0 + timedelta(seconds=B + 21 + 2 * i)).isoformat(timespec="seconds") for i in range(10)],
    evidence={
        "status": 500,
        "body": "<img src=x onerror=alert(1)>",
        "stopped_tasks": [{"task": "abc123", "stopped_reason": "Essential container in task exited \x1b]0;pwned\x07"}],
        "log_lines": ["Traceback (most recent call last):", "RuntimeError: model file missing"],
    },
)
ev(
    r,
    B + 40,
    "decision",
    "rolling back to shine-api-gateway:3 (phase hybrid-ml, last good) because gate http /health failed",
    "optimized",
    reason="gate http /health failed",
    target=TD.format(3),
    evidence={},
)
ev(
    r,
    B + 41,
    "rollback_started",
    "service shine-api-gateway -> shine-api-gateway:3",
    "hybrid-ml",
    revision=TD.format(3),
)
DIAG = "container api answers HTTP 500 on /health; last log line: RuntimeError: model file missing <b>bold</b>"
ev(
    r,
    B + 42,
    "diagnosis",
    "diagnosis: " + DIAG,
    "hybrid-ml",
    diagnosis=DIAG,
    log_lines=["loading model", "RuntimeError: model file missing"],
)
ev(
    r,
    B + 60,
    "gate_passed",
    "[x] ecs-rollout: shine-api-gateway:3 COMPLETED, 1/1 running",
    "hybrid-ml",
    gate="ecs-rollout",
    status="passed",
    attempts=5,
    evidence={},
)
ev(
    r,
    B + 65,
    "gate_passed",
    "[x] http /health: 1 endpoint(s) answered 2x as expected",
    "hybrid-ml",
    gate="http /health",
    status="passed",
    attempts=1,
    evidence={},
)
ev(
    r,
    B + 68,
    "marked",
    "shine-api-gateway:4 marked failed: gate http /health failed",
    "hybrid-ml",
    revision=TD.format(4),
    verdict="failed",
)
ev(
    r,
    B + 68,
    "warning",
    "could not tag shine-api-gateway:4 (AccessDenied): the failed mark lives in the local state only",
    "hybrid-ml",
)
ev(
    r,
    B + 69,
    "rollback_verified",
    "rolled back to shine-api-gateway:3 (phase hybrid-ml): gates passed",
    "hybrid-ml",
    revision=TD.format(3),
)
ev(r, B + 70, "run_finished", "phase optimized failed; rolled back", status="rolled_back", exit_code=1)

# run 3: a no-op, then enhanced paused
r = "r-20261129-072000-c003"
C = 671
run(
    r,
    C,
    C + 3,
    "run",
    "paused",
    0,
    "phase enhanced needs manual approval: run `snail promote enhanced` to continue",
    ["enhanced"],
)
ev(r, C, "run_started", "run started by oncall@ci-runner-7: phases enhanced", command="run")
ev(r, C + 1, "paused", "phase enhanced needs manual approval: run `snail promote enhanced` to continue", "enhanced")
ev(r, C + 3, "run_finished", "paused", status="paused", exit_code=0)
r = "r-20261129-072100-c004"
C = 731
run(r, C, C + 1, "run", "noop", 0, "nothing to do: phase hybrid-ml is already live and good", [])
ev(r, C, "run_started", "run started by oncall@ci-runner-7: phases -", command="run")
ev(r, C, "noop", "nothing to do: phase hybrid-ml is already live and good")
ev(r, C + 1, "run_finished", "nothing to do", status="noop", exit_code=0)

# run 5: a manual rollback to health-only
r = "r-20261129-073000-d005"
D = 1271
run(
    r,
    D,
    D + 30,
    "rollback",
    "succeeded",
    0,
    "rolled back to shine-api-gateway:2 (phase health-only), verified by its gates",
    ["health-only"],
)
ev(r, D, "run_started", "rollback started by oncall@ci-runner-7: phases health-only", command="rollback")
ev(
    r,
    D + 1,
    "decision",
    "manual rollback to shine-api-gateway:2 (phase health-only) from shine-api-gateway:3",
    target=TD.format(2),
)
ev(
    r,
    D + 2,
    "rollback_started",
    "service shine-api-gateway -> shine-api-gateway:2",
    "health-only",
    revision=TD.format(2),
)
ev(
    r,
    D + 25,
    "gate_passed",
    "[x] ecs-rollout: shine-api-gateway:2 COMPLETED, 1/1 running",
    "health-only",
    gate="ecs-rollout",
    status="passed",
    attempts=3,
    evidence={},
)
ev(
    r,
    D + 29,
    "rollback_verified",
    "rolled back to shine-api-gateway:2 (phase health-only): gates passed",
    "health-only",
    revision=TD.format(2),
)
ev(r, D + 30, "run_finished", "rolled back", status="succeeded", exit_code=0)

# run 6: enhanced fails before deploy, then an interrupted run, a failed rollback, an impossible one, an unlock
r = "r-20261129-074000-e006"
E = 1871
run(
    r,
    E,
    E + 10,
    "promote",
    "failed",
    1,
    "phase enhanced failed before it changed the service: image build failed; nothing was deployed",
    ["enhanced"],
)
ev(r, E, "run_started", "promote started by oncall@ci-runner-7: phases enhanced", command="promote")
ev(r, E + 1, "phase_started", "phase enhanced started", "enhanced", gates=["ecs-rollout"])
ev(
    r,
    E + 9,
    "phase_failed",
    "phase enhanced failed before it changed the service: image build failed; nothing was deployed, the service stays on shine-api-gateway:2",
    "enhanced",
    error="BuildFailed",
)
ev(r, E + 10, "run_finished", "failed", status="failed", exit_code=1)
r = "r-20261129-075000-f007"
F = 2471
run(r, F, F + 40, "run", "rollback_failed", 3, "rollback to shine-api-gateway:2 failed", ["enhanced"])
ev(r, F, "run_started", "run started by oncall@ci-runner-7: phases enhanced", command="run")
ev(r, F + 1, "phase_started", "phase enhanced started", "enhanced", gates=["ecs-rollout"])
ev(r, F + 3, "service_unchanged", "service already runs shine-api-gateway:5; gating it again", "enhanced")
ev(
    r,
    F + 10,
    "gate_failed",
    "[ ] ecs-rollout: failed: deployment FAILED (circuit breaker)",
    "enhanced",
    gate="ecs-rollout",
    status="failed",
    attempts=3,
    evidence={"stopped_tasks": [{"task": "t1", "stopped_reason": "Essential container in task exited"}]},
)
ev(
    r,
    F + 11,
    "decision",
    "rolling back to shine-api-gateway:2 (phase health-only, last good) because gate ecs-rollout failed",
    "enhanced",
    reason="gate ecs-rollout failed",
    target=TD.format(2),
    diagnosis="container api exited with code 1",
)
ev(
    r,
    F + 12,
    "rollback_started",
    "service shine-api-gateway -> shine-api-gateway:2",
    "health-only",
    revision=TD.format(2),
)
ev(
    r,
    F + 39,
    "rollback_failed",
    "rollback to shine-api-gateway:2 could not be verified: timeout. A human is needed.",
    "health-only",
)
ev(r, F + 40, "run_finished", "rollback failed", status="rollback_failed", exit_code=3)
r = "r-20261129-080000-g008"
G = 3071
run(r, G, G + 20, "run", "interrupted", 130, "interrupted during phase enhanced", ["enhanced"])
ev(r, G, "run_started", "run started by oncall@ci-runner-7: phases enhanced", command="run")
ev(r, G + 1, "phase_started", "phase enhanced started", "enhanced", gates=["ecs-rollout"])
ev(
    r,
    G + 5,
    "service_updated",
    "service shine-api-gateway -> shine-api-gateway:6",
    "enhanced",
    previous=TD.format(2),
    revision=TD.format(6),
)
ev(
    r,
    G + 19,
    "interrupted",
    "interrupted during phase enhanced; the service was left on shine-api-gateway:6, which has NOT passed its gates",
    "enhanced",
    revision=TD.format(6),
)
ev(r, G + 20, "run_finished", "interrupted", status="interrupted", exit_code=130)
r = "r-20261129-081000-h009"
H = 3671
run(r, H, H + 5, "run", "rollback_failed", 3, "no revision has passed its gates yet", ["enhanced"])
ev(r, H, "run_started", "run started by oncall@ci-runner-7: phases enhanced", command="run")
ev(
    r,
    H + 4,
    "rollback_impossible",
    "phase enhanced failed (x) and no revision has passed its gates yet, so there is nothing to roll back to",
    "enhanced",
    reason="x",
    evidence={},
    diagnosis="",
)
ev(r, H + 5, "run_finished", "rollback impossible", status="rollback_failed", exit_code=3)
r = "r-20261129-081500-i010"
J = 3971
run(
    r,
    J,
    J + 1,
    "run",
    "quarantined",
    1,
    "not deployed: shine-api-gateway:6 failed its gates in run r-20261129-080000-g008",
    ["enhanced"],
)
ev(r, J, "run_started", "run started by oncall@ci-runner-7: phases enhanced", command="run")
ev(
    r,
    J + 1,
    "blocked",
    "not deployed: shine-api-gateway:6 failed its gates in run r-20261129-080000-g008 (snail run --retry-failed to deploy it anyway)",
    "enhanced",
    kind="quarantined",
    revision=TD.format(6),
)
ev(r, J + 1, "run_finished", "not deployed", status="quarantined", exit_code=1)
ev(r, J + 2, "notified", "notified slack: failed", target="slack", ok=True)
ev(
    r,
    J + 2,
    "notify_failed",
    "notification to https://hooks.example/x failed: HTTP 500",
    target="webhook",
    ok=False,
    error="HTTP 500",
)
ev(
    "release-1",
    H + 20,
    "released",
    "hold on shine-api-gateway:6 (phase enhanced) lifted by oncall@ci-runner-7",
    revision=TD.format(6),
)
ev(
    r,
    J + 1,
    "superseded",
    "superseded by another actor while its gates were judged: phase enhanced stopped judging shine-api-gateway:7",
    phase="enhanced",
    revision=TD.format(7),
    live=TD.format(8),
    superseded_by="ecs-svc/9121",
)
ev("unlock-1", H + 30, "unlocked", "lock of run r-y removed by oncall@ci-runner-7 (--force)")

with open(Path(__file__).with_name("trail_recorded.json"), "w") as out:
    json.dump(
        {"service": SVC, "cluster": "shine", "region": "us-east-1", "runs": runs, "events": events},
        out,
        indent=1,
        ensure_ascii=True,
    )
print(len(events), "events", len({e["kind"] for e in events}), "kinds")
