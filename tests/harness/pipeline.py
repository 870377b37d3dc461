"""The base pipeline every world test starts from: one service (shine/shine-api-gateway) pinned to images of the
local registry, the ecs-rollout and /health gates, state in the test's folder.

Its defaults are for the real-time world (the CLI as a process): it does not bake and polls briefly, so a run
takes as long as its API calls. A test about baking, polling or timing says so in its own pipeline (`timing=`,
or `bake: 4s` in a phase file)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

REPO = "127.0.0.1:5055/shine-api-gateway"


def image(tag: str) -> str:
    """A pinned image reference whose digest is derived from a short tag."""
    return f"{REPO}@sha256:{tag * (64 // len(tag))}{'0' * (64 % len(tag))}"


PIPELINE = """\
version: 1
service:
  cluster: shine
  name: shine-api-gateway
  region: us-east-1
  container: api
  port: 5000
{service}registry:
  url: {registry}
state:
{state}{sections}defaults:
  gates:
{gates}  bake: {bake}
{defaults}phases: [{phases}]
"""

GATES = {
    "ecs-rollout": "    - {{type: ecs-rollout, timeout: 2m, poll: {poll}}}\n",
    "http": "    - {{type: http, path: /health, expect: {{status: 200}}, retries: {{attempts: 3, wait: {wait}}}}}\n",
    # /health must also say {"status": "ok"} (the tests' servers do; a load balancer's fixed response does not)
    "http-ok": (
        "    - {{type: http, path: /health, expect: {{status: 200, json: {{status: ok}}}}, "
        "retries: {{attempts: 3, wait: {wait}}}}}\n"
    ),
}

REAL_TIME = {"bake": "0s", "poll": "0.1s", "wait": "0.1s"}
# On the injected clock (AgentClock) time costs nothing real: a 5 s bake and 1 s polls are a few agent steps,
# and the engine tests fault inside that bake.
INJECTED_CLOCK = {"bake": "5s", "poll": "1s", "wait": "1s"}


def _block(keys: Mapping[str, object]) -> str:
    """`  key: value` lines; a mapping or list value is written as JSON (YAML's flow style)."""
    return "".join(
        f"  {key}: {json.dumps(value, default=str) if isinstance(value, (Mapping, list)) else value}\n"
        for key, value in keys.items()
    )


def pipeline_text(
    root: Path,
    phases: Sequence[str],
    timing: Mapping[str, str] = REAL_TIME,
    *,
    state: Mapping[str, object] | None = None,
    service: Mapping[str, object] | None = None,
    registry: str = REPO,
    gates: Sequence[str] = ("ecs-rollout", "http"),
    sections: Mapping[str, Mapping[str, object]] | None = None,
    defaults: Mapping[str, object] | None = None,
) -> str:
    """The base pipeline.yaml: `state` replaces the state block (default: a SQLite store under root/.snail),
    `service` adds keys to the service block, `gates` picks the default gates by name (GATES), `sections` adds
    top-level sections (e.g. rollback) and `defaults` keys to the defaults block (e.g. strategy)."""
    return PIPELINE.format(
        service=_block(service or {}),
        registry=registry,
        state=_block(state if state is not None else {"path": root / ".snail"}),
        sections="".join(f"{name}:\n{_block(keys)}" for name, keys in (sections or {}).items()),
        gates="".join(GATES[g].format(**timing) for g in gates),
        bake=timing["bake"],
        defaults=_block(defaults or {}),
        phases=", ".join(phases),
    )


def write_pipeline(
    root: Path,
    phases: dict[str, str],
    extra: dict[str, str] | None = None,
    timing: Mapping[str, str] = REAL_TIME,
    **base: object,
) -> Path:
    """pipeline.yaml + one phase file per (name -> image tag) in order; `timing` sets bake, poll and retry wait,
    `extra` adds text to a phase's file, `base` goes to pipeline_text (state, service, registry, gates)."""
    (root / "phases").mkdir(parents=True, exist_ok=True)
    (root / "pipeline.yaml").write_text(pipeline_text(root, list(phases), timing, **base))  # type: ignore[arg-type]
    for name, tag in phases.items():
        text = f'name: {name}\nimage: {{ref: "{image(tag)}"}}\n' + (extra or {}).get(name, "")
        (root / "phases" / f"{name}.yaml").write_text(text)
    return root / "pipeline.yaml"
