"""Gates: one module per type, each returning a Verdict; run_gate applies the retry policy."""

from __future__ import annotations

from collections.abc import Callable

import structlog

from orchestrator.config.model import GateSpec
from orchestrator.errors import SnailError
from orchestrator.gates.context import GateContext
from orchestrator.gates.retry import retrying
from orchestrator.gates.verdict import ERROR, Action, Verdict, decide

log = structlog.get_logger()


def _evaluator(gate_type: str) -> Callable[[GateSpec, GateContext], Verdict]:
    from orchestrator.gates import alarm, command, ecs_rollout, http, target_health

    return {
        "ecs-rollout": ecs_rollout.evaluate,
        "http": http.evaluate,
        "command": command.evaluate,
        "alarm": alarm.evaluate,
        "target-health": target_health.evaluate,
    }[gate_type]


def run_gate(spec: GateSpec, ctx: GateContext) -> Verdict:
    """Evaluate a gate with its retries (tenacity on ctx.clock) and return the final verdict."""
    evaluate = _evaluator(spec.type)
    attempts = {"n": 0}
    deadline = ctx.clock.monotonic() + spec.timeout if spec.timeout and spec.type != "ecs-rollout" else None

    def attempt() -> Verdict:
        attempts["n"] += 1
        ctx.progress("gate_attempt", {"gate": spec.label, "attempt": attempts["n"], "of": spec.retries.attempts})
        try:
            v = evaluate(spec, ctx)
        except SnailError as exc:  # an AWS call failed after botocore's retries: an error verdict, not a crash
            v = Verdict(spec.label, ERROR, str(exc), {"error": type(exc).__name__})
        return Verdict(v.gate, v.status, v.summary, v.evidence, v.terminal, max(v.attempts, attempts["n"]))

    def again(v: Verdict) -> bool:
        return decide(v, attempts_left=True) is Action.RETRY

    def before_sleep(state) -> None:  # type: ignore[no-untyped-def]
        v: Verdict = state.outcome.result()
        log.info("gate_retry", gate=spec.label, attempt=attempts["n"], status=v.status, summary=v.summary)
        ctx.progress(
            "gate_retry", {"gate": spec.label, "attempt": attempts["n"], "status": v.status, "summary": v.summary}
        )

    policy = retrying(spec.retries, ctx.clock, retry_if=again, deadline=deadline, on_retry=before_sleep)
    return policy(attempt)


__all__ = ["GateContext", "Verdict", "run_gate", "decide", "Action"]
