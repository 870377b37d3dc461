"""The command gate: a smoke-test script's exit status decides."""

from __future__ import annotations

import os
import shlex
import subprocess

from orchestrator.config.model import GateSpec
from orchestrator.gates.context import GateContext
from orchestrator.gates.endpoints import resolve
from orchestrator.gates.verdict import FAILED, PASSED, Verdict
from orchestrator.redact import mask_text


def evaluate(spec: GateSpec, ctx: GateContext) -> Verdict:
    """Run the command with SNAIL_* variables (service, revision, endpoints); exit 0 passes."""
    run = spec.params["run"]
    argv = run if isinstance(run, list) else ["/bin/sh", "-c", str(run)]
    try:
        endpoints = resolve(ctx, None, None) if ctx.ecs is not None or ctx.endpoint else []
    except Exception:  # endpoints are a convenience for the script, not a precondition
        endpoints = []
    env = {
        **os.environ,
        **{str(k): str(v) for k, v in (spec.params.get("env") or {}).items()},
        "SNAIL_CLUSTER": ctx.cluster,
        "SNAIL_SERVICE": ctx.service,
        "SNAIL_REVISION": ctx.revision_arn,
        "SNAIL_PHASE": ctx.phase,
        "SNAIL_ENDPOINTS": " ".join(endpoints),
        "SNAIL_ENDPOINT": endpoints[0] if endpoints else "",
    }
    timeout = spec.timeout or 300.0
    cwd = spec.params.get("cwd") or ctx.workdir
    try:
        proc = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, timeout=timeout, text=True)
    except subprocess.TimeoutExpired:
        return Verdict(spec.label, FAILED, f"command timed out after {timeout:.0f}s")
    except OSError as exc:
        return Verdict(spec.label, FAILED, f"command could not start: {exc}")
    out = mask_text((proc.stdout + proc.stderr)[-1000:])
    shown = " ".join(shlex.quote(a) for a in argv)
    if proc.returncode == 0:
        return Verdict(spec.label, PASSED, "exit 0", {"command": shown, "output": out})
    return Verdict(
        spec.label,
        FAILED,
        f"exit {proc.returncode}: {out.strip().splitlines()[-1] if out.strip() else ''}",
        {"command": shown, "exit_code": proc.returncode, "output": out},
    )
