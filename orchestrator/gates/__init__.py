"""Gates: one module per type, each returning a Verdict; run_gate applies the retry policy."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import structlog
import tenacity

from orchestrator.aws.bounds import bounded
from orchestrator.config.gates import EcsRolloutGate, GateSpec, HttpGate
from orchestrator.gates.context import GateContext
from orchestrator.gates.retry import retrying
from orchestrator.gates.verdict import ERROR, Action, Verdict, decide

log = structlog.get_logger()


def _evaluator(gate_type: str) -> Callable[[Any, GateContext], Verdict]:
    from orchestrator.gates import alarm, command, ecs_rollout, http, metrics, target_health

    table: dict[str, Callable[[Any, GateContext], Verdict]] = {
        "ecs-rollout": ecs_rollout.evaluate,
        "http": http.evaluate,
        "command": command.evaluate,
        "alarm": alarm.evaluate,
        "target-health": target_health.evaluate,
        "metrics": metrics.evaluate,
    }
    return table[gate_type]


def run_gate(spec: GateSpec, ctx: GateContext) -> Verdict:
    """Evaluate a gate with its retries (tenacity on ctx.clock) and return the final verdict.

    Retried: answers that can change (no endpoint yet, refused, timed out, a proxy's 502/503 without a body).
    Not retried past the threshold: definitive answers (a task that is up says it failed), terminal verdicts
    (ECS failed our deployment), or ECS failing/replacing our deployment while we wait (ctx.watch)."""
    evaluate = _evaluator(spec.type)
    attempts = {"n": 0, "definitive": 0}
    threshold = spec.consecutive if isinstance(spec, HttpGate) else 1
    deadline = ctx.clock.monotonic() + spec.timeout if spec.timeout and spec.type != "ecs-rollout" else None
    gated = dataclasses.replace(ctx, deadline=deadline)  # the gate's own requests and commands see what is left
    watched: dict[str, Verdict] = {}
    at: list[str] = []  # when each attempt happened (the trail's timeline draws them as ticks)

    def attempt() -> Verdict:
        attempts["n"] += 1
        at.append(ctx.clock.now().isoformat(timespec="seconds"))
        if attempts["n"] > 1 and ctx.watch is not None:
            stop = ctx.watch(ctx)
            if stop is not None:
                watched["v"] = stop
                return Verdict(spec.label, stop.status, stop.summary, stop.evidence, terminal=True).after(attempts["n"])
        ctx.progress("gate_attempt", {"gate": spec.label, "attempt": attempts["n"], "of": spec.retries.attempts})
        try:
            v = evaluate(spec, gated)
        except Exception as exc:  # an AWS or OS failure inside a gate is an error verdict, never a crash
            v = Verdict(spec.label, ERROR, f"{type(exc).__name__}: {exc}", {"error": type(exc).__name__})
        attempts["definitive"] = attempts["definitive"] + 1 if (v.definitive and not v.passed) else 0
        if not v.passed:
            ctx.endpoints.clear()  # the tasks may have changed: the next attempt (or gate) lists them again
        return v.after(max(v.attempts, attempts["n"]))

    def again(v: Verdict) -> bool:
        return decide(v, True, attempts["definitive"], threshold) is Action.RETRY

    def before_sleep(state: tenacity.RetryCallState) -> None:
        v: Verdict = state.outcome.result() if state.outcome else Verdict(spec.label, ERROR, "no result")
        wait = state.upcoming_sleep
        log.debug("gate_retry", gate=spec.label, attempt=attempts["n"], status=v.status, summary=v.summary)
        ctx.progress(
            "gate_retry",
            {
                "gate": spec.label,
                "attempt": attempts["n"],
                "of": spec.retries.attempts,
                "status": v.status,
                "summary": v.summary,
                "next_in": wait,
            },
        )
        if ctx.checkpoint is not None:
            ctx.checkpoint()

    policy = retrying(spec.retries, ctx.clock, retry_if=again, deadline=deadline, on_retry=before_sleep)
    # the gate's AWS calls are bounded by what is left of its timeout (ecs-rollout: the timeout of its polls)
    rollout = spec.timeout or EcsRolloutGate.timeout or 600.0
    budget = ctx.clock.monotonic() + rollout if spec.type == "ecs-rollout" else deadline
    with bounded(lambda: None if budget is None else budget - ctx.clock.monotonic()):
        v: Verdict = policy(attempt)
    return Verdict(
        v.gate, v.status, v.summary, {**v.evidence, "attempts_at": at[-50:]}, v.terminal, v.attempts, v.definitive
    )


__all__ = ["Action", "GateContext", "Verdict", "decide", "run_gate"]
