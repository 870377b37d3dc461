"""snail init: a working starting point in any repository, scaffolded, or written from a live ECS service.

`snail init` writes pipeline.yaml (commented), one phase, a minimal app and its Dockerfile, and `.snail/` in
.gitignore; `snail --sandbox run` then delivers it green with no edit. `snail init --from-service CLUSTER/SERVICE`
reads the service (ecspresso's init shape: the live task definition as a template without its read-only fields,
secrets kept as `valueFrom` references) and pins one phase to the live image by digest, so `snail plan` finds
nothing to do and the first `run` marks the live revision good instead of redeploying it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import click

from orchestrator.cli.app import App, pass_app
from orchestrator.errors import ExitCode, UsageError

NAME_RULE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,254}$")

PIPELINE = """\
# snail's pipeline: one ECS service, delivered phase by phase. `snail validate` checks it; the reference is
# docs/pipeline.md in snail-trail's repository.
version: 1
service:
  cluster: {cluster}
  name: {name}
  region: {region}
  # the container phases change, and the port its app listens on (doctor checks it everywhere)
  container: {container}
  port: {port}
  desired_count: 1
  # A base task definition (JSON). Without it, each phase is composed over the revision the service ran
  # before snail's first release (over nothing, for a service snail creates).
  # task_definition: phases/taskdef.json
registry:
  # an ECR repository, created when missing (or url: HOST/REPO for any OCI registry)
  ecr: {repository}
  create: true
state:
  backend: local  # .snail/state.db (dynamodb: shared by several runners)
defaults:
  build_args:
    # the image the Dockerfile builds FROM; set SNAIL_BASE_IMAGE where a local base image must stand in
    BASE_IMAGE: ${{SNAIL_BASE_IMAGE:-python:3.12-slim}}
  # every phase must pass these, or snail rolls back
  gates:
    - {{type: ecs-rollout, timeout: 5m}}
    - {{type: http, path: /health, expect: {{status: 200}}, consecutive: 2, retries: {{attempts: 10, wait: 1s}}}}
  bake: 2s  # traffic held this long after the rollout, then judged once more
# each is phases/NAME.yaml, delivered in order
phases: [{phase}]
"""

PHASE = """\
# Phase {phase}: the app in images/{name}/, built, probed on port {port}, pushed and rolled out.
name: {phase}
image: {{context: images/{name}}}
task: {{cpu: 256, memory: 512}}
"""

DOCKERFILE = """\
# The app snail builds for phase {phase}. BASE_IMAGE comes from pipeline.yaml (defaults.build_args).
ARG BASE_IMAGE=python:3.12-slim
FROM ${{BASE_IMAGE}}
ENV PYTHONUNBUFFERED=1 PORT={port}
WORKDIR /app
COPY app.py .
EXPOSE {port}
CMD ["python3", "app.py"]
"""

APP = '''\
"""A minimal service: 200 on /health and /, on $PORT. Replace it with yours."""

import http.server
import json
import os
import signal
import sys

signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # PID 1 ignores SIGTERM otherwise: ECS would wait to kill it


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ok = self.path.split("?")[0] in ("/", "/health")
        body = json.dumps({"status": "ok" if ok else "not found"}).encode()
        self.send_response(200 if ok else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("0.0.0.0", int(os.environ.get("PORT", "{port}"))), Handler).serve_forever()
'''


def _default_name(folder: Path) -> str:
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", folder.resolve().name).strip("-_") or "my-service"
    return slug[:64]


def _repository(name: str) -> str:
    """An ECR repository name for the service: ECR takes lowercase only, parts joined by '-' (Shop-API: shop-api)."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "app"
    return slug if len(slug) >= 2 else f"{slug}-app"


def _check_name(what: str, value: str) -> str:
    if not NAME_RULE.match(value):
        raise UsageError(
            f"--{what} {value!r}: letters, digits, - and _ only (ECS's rule), starting with a letter or digit"
        )
    return value


def _write_all(root: Path, files: dict[str, str], force: bool) -> list[str]:
    """Write every file, or none: an existing one is refused unless --force."""
    existing = sorted(rel for rel in files if (root / rel).exists())
    if existing and not force:
        raise UsageError(f"init would overwrite {', '.join(existing)}: nothing was written (add --force to replace)")
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return list(files)


def _ignore_state(root: Path) -> str | None:
    """`.snail/` in .gitignore (added once); the line written, or None if it was there."""
    path = root / ".gitignore"
    text = path.read_text() if path.exists() else ""
    if any(line.strip() in (".snail", ".snail/", "/.snail", "/.snail/") for line in text.splitlines()):
        return None
    path.write_text(text + ("" if not text or text.endswith("\n") else "\n") + ".snail/\n")
    return ".gitignore"


@click.command("init")
@click.option("--name", help="the ECS service's name (default: this folder's name)")
@click.option("--cluster", default="default", show_default=True, help="the ECS cluster")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True, help="the app's port")
@click.option("--container", default="app", show_default=True, help="the container phases change")
@click.option("--phase", help="the phase's name (default: first; with --from-service: live)")
@click.option(
    "--from-service",
    "from_service",
    metavar="CLUSTER/SERVICE",
    help="write the pipeline from a live ECS service (its task definition, image digest, network, load balancer)",
)
@click.option("--force", is_flag=True, help="overwrite files that exist")
@pass_app
def command(
    app: App,
    name: str | None,
    cluster: str,
    port: int,
    container: str,
    phase: str | None,
    from_service: str | None,
    force: bool,
) -> int:
    """Write pipeline.yaml, a phase and a minimal app here (or read them from a live service)."""
    phase = phase or ("live" if from_service else "first")
    root = Path(app.file).resolve().parent if app.file else Path.cwd()
    for what, value in (("cluster", cluster), ("container", container), ("phase", phase)):
        _check_name(what, value)
    if from_service:
        from orchestrator.cli.init_service import files_from_service

        files, summary = files_from_service(app, from_service, phase)
    else:
        name = _check_name("name", name or _default_name(root))
        fields = {
            "name": name,
            "repository": _repository(name),
            "cluster": cluster,
            "region": app.region or "us-east-1",
            "container": container,
            "port": port,
            "phase": phase,
        }
        files = {
            "pipeline.yaml": PIPELINE.format(**fields),
            f"phases/{phase}.yaml": PHASE.format(**fields),
            f"images/{name}/Dockerfile": DOCKERFILE.format(**fields),
            f"images/{name}/app.py": APP.replace("{port}", str(port)),
        }
        summary = f"service {cluster}/{name}, container {container} on port {port}, phase {phase}"
    written = _write_all(root, files, force)
    ignored = _ignore_state(root)
    if ignored:
        written.append(f"{ignored} (.snail/ added)")
    lines = [f"snail init: {summary}", *(f"  wrote {rel}" for rel in written)]
    lines.append(
        "next: snail plan   (or rehearse with no AWS account: snail sandbox up && snail --sandbox run)"
        if from_service
        else "next: snail sandbox up && snail --sandbox run   (on AWS: snail doctor, then snail run --create-service)"
    )
    app.emit({"written": written, "root": str(root), "summary": summary}, "\n".join(lines))
    return ExitCode.OK


def dumps_taskdef(definition: dict[str, Any]) -> str:
    """A task definition as the template file holds it: sorted keys, two-space indent, a final newline."""
    return json.dumps(definition, indent=2, sort_keys=True) + "\n"
