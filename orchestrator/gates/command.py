"""The command gate: a smoke-test script's exit status decides. It runs with an explicit environment (an
allowlist of the runner's, the gate's own `env:`, and the SNAIL_* variables), never the runner's credentials."""

from __future__ import annotations

import shlex
import subprocess

from orchestrator.config.gates import CommandGate
from orchestrator.gates.context import GateContext
from orchestrator.gates.endpoints import resolve
from orchestrator.gates.verdict import FAILED, PASSED, Verdict
from orchestrator.redact import excerpt, mask_text


def _environment(spec: CommandGate, snail_vars: dict[str, str]) -> dict[str, str]:
    from orchestrator.gates.command_env import command_environment

    return command_environment(spec.env, snail_vars)


def evaluate(spec: CommandGate, ctx: GateContext) -> Verdict:
    """Run the command with SNAIL_* variables (service, revision, endpoints); exit 0 passes."""
    argv = list(spec.run) if isinstance(spec.run, tuple) else ["/bin/sh", "-c", spec.run]
    try:
        endpoints = resolve(ctx, None, None) if ctx.ecs is not None or ctx.endpoint else []
    except Exception:  # endpoints are a convenience for the script, not a precondition
        endpoints = []
    env = _environment(
        spec,
        {
            "SNAIL_CLUSTER": ctx.cluster,
            "SNAIL_SERVICE": ctx.service,
            "SNAIL_REVISION": ctx.revision_arn,
            "SNAIL_PHASE": ctx.phase,
            "SNAIL_ENDPOINTS": " ".join(endpoints),
            "SNAIL_ENDPOINT": endpoints[0] if endpoints else "",
        },
    )
    timeout = spec.timeout or CommandGate.timeout or 300.0
    shown = mask_text(" ".join(shlex.quote(a) for a in argv))
    try:
        proc = subprocess.run(
            argv,
            env=env,
            cwd=spec.cwd or ctx.workdir,
            capture_output=True,
            timeout=timeout,
            text=True,
            errors="replace",
        )
    except subprocess.TimeoutExpired:
        return Verdict(spec.label, FAILED, f"command timed out after {timeout:.0f}s", {"command": shown})
    except (OSError, ValueError) as exc:
        return Verdict(spec.label, FAILED, f"command could not start: {exc}", {"command": shown}, definitive=True)
    out = excerpt(proc.stdout + proc.stderr, 1000, tail=True)
    if proc.returncode == 0:
        return Verdict(spec.label, PASSED, "exit 0", {"command": shown, "output": out})
    last = out.strip().splitlines()[-1] if out.strip() else ""
    return Verdict(
        spec.label,
        FAILED,
        f"exit {proc.returncode}: {last}",
        {"command": shown, "exit_code": proc.returncode, "output": out},
        definitive=True,
    )
