"""Builds with secrets (`image.build_secrets`): BuildKit secret mounts, driven through the docker CLI.

The docker SDK's low-level build (`APIClient.build`) speaks the classic builder's API only: it has no `secrets`
argument, and BuildKit's session protocol (gRPC over a hijacked /session connection, which is how the CLI hands a
secret to the builder) is not in it. So a build that has secrets runs `docker buildx build --load --secret
id=NAME,env=VAR` or, with a docker CLI that still has BuildKit built in (20.10 to 22.x, Debian's docker.io),
`DOCKER_BUILDKIT=1 docker build --secret ...`. Builds without secrets stay on the SDK.

Secret values and build-arg values reach the CLI through its environment, never its argv (`ps` shows argv).
BuildKit mounts each secret at /run/secrets/NAME for the RUN lines that ask for it
(`RUN --mount=type=secret,id=NAME ...`): it is in no layer, no image config and no `docker history` line."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

from orchestrator.errors import BuildError

HOW_TO_GET_BUILDKIT = (
    "build_secrets need BuildKit: install the docker buildx plugin (Debian/Ubuntu: apt-get install docker-buildx, "
    "or docker-buildx-plugin from Docker's packages), or use a docker CLI older than 23 with BuildKit built in"
)
SECRET_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")  # what `--secret id=` takes (no ',' or '=')
_STEP = re.compile(r"^#(\d+) \[(?!internal\])([^\]]+)\] (.*)$")
_CACHED = re.compile(r"^#(\d+) CACHED$")
_OUTPUT = re.compile(r"^#(\d+) \d+\.\d+ (.*)$")
_ERROR = re.compile(r"^(?:#\d+ )?ERROR:? (.*)$")


def build_arg_warnings(build_args: Mapping[str, str]) -> list[str]:
    """One warning per build arg that looks secret (by its name or its value): a build arg is kept in the image's
    config and `docker history` for anyone who can pull it. The value is never part of the warning."""
    from orchestrator.redact import looks_secret

    return [
        f"build arg {name} looks secret: build args are readable in the pushed image's history; "
        f"move it to image.build_secrets (a BuildKit secret mount: RUN --mount=type=secret,id={name} ...)"
        for name, value in build_args.items()
        if looks_secret(name, value)
    ]


def _client_version(docker: str) -> tuple[int, ...] | None:
    try:
        out = subprocess.run(
            [docker, "version", "--format", "{{.Client.Version}}"], capture_output=True, text=True, timeout=30
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.match(r"(\d+)\.(\d+)", out)
    return (int(m.group(1)), int(m.group(2))) if m else None


def _has_buildx(docker: str) -> bool:
    try:
        return subprocess.run([docker, "buildx", "version"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _docker_clis() -> list[str]:
    """Every docker CLI on PATH, first one first (a machine may have a plugin-less new CLI before an old one)."""
    seen: set[str] = set()
    out: list[str] = []
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        found = shutil.which("docker", path=folder) if folder else None
        if found and os.path.realpath(found) not in seen:
            seen.add(os.path.realpath(found))
            out.append(found)
    return out


def buildkit_command() -> tuple[list[str], dict[str, str]]:
    """The argv prefix and extra environment of a docker CLI build that can mount secrets."""
    clis = _docker_clis()
    for docker in clis:
        if _has_buildx(docker):
            return [docker, "buildx", "build", "--load"], {}
    for docker in clis:
        version = _client_version(docker)
        if version is not None and version < (23, 0):
            return [docker, "build"], {"DOCKER_BUILDKIT": "1"}
    raise BuildError(HOW_TO_GET_BUILDKIT if clis else f"no docker CLI on PATH: {HOW_TO_GET_BUILDKIT}")


def build_with_secrets(
    context: Path,
    ref: str,
    build_args: Mapping[str, str],
    secrets: Mapping[str, str],
    dockerfile: str | None,
    *,
    docker_host: str | None = None,
    on_step: Callable[[str, str, bool], None] = lambda step, line, cached: None,
    on_output: Callable[[str, str], None] = lambda step, line: None,
) -> tuple[str, int, int, str, str, list[str]]:
    """Build `ref` with BuildKit; returns (image id, steps, cached steps, last step, its line, last output lines).
    A failed build raises BuildError carrying (step, step line, error, output) in its message parts."""
    prefix, extra = buildkit_command()
    env = {**os.environ, **extra}
    if docker_host:
        env["DOCKER_HOST"] = docker_host
    argv = [*prefix, "--progress=plain", "-t", ref]
    if dockerfile:
        path = Path(dockerfile)
        argv += ["-f", str(path if path.is_absolute() else Path(context) / path)]
    for name, value in build_args.items():
        env[name] = value
        argv += ["--build-arg", name]  # no value: the CLI takes it from its environment
    for i, (name, value) in enumerate(sorted(secrets.items())):
        if not SECRET_ID.match(name):
            raise BuildError(f"build secret name {name!r}: letters, digits, '_', '.', '-' only")
        var = f"SNAIL_BUILD_SECRET_{i}"
        env[var] = value
        argv += ["--secret", f"id={name},env={var}"]
    steps: dict[str, str] = {}
    cached: set[str] = set()
    output: list[str] = []
    step, step_line, error = "", "", ""
    with tempfile.TemporaryDirectory(prefix="snail-build-") as tmp:
        iidfile = Path(tmp) / "iid"
        argv += ["--iidfile", str(iidfile), str(context)]
        proc = subprocess.Popen(  # noqa: S603 - our own argv; values travel in env
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.rstrip()
            if m := _STEP.match(line):
                num, step, step_line = m.group(1), m.group(2), m.group(3)
                if num not in steps:
                    steps[num] = step
                    on_step(step, step_line, False)
            elif (m := _CACHED.match(line)) and m.group(1) in steps:
                cached.add(m.group(1))
            elif m := _OUTPUT.match(line):
                output.append(m.group(2))
                del output[:-30]
                on_output(step, m.group(2))
            elif m := _ERROR.match(line):
                error = m.group(1)
        code = proc.wait()
        image_id = iidfile.read_text().strip() if iidfile.is_file() else ""
    if code != 0 or not image_id:
        raise _Failed(step, step_line, error or f"docker build exited {code}", output)
    return image_id, len(steps), len(cached), step, step_line, output


class _Failed(BuildError):
    """A failed BuildKit build, with where it failed (the builder words the message)."""

    def __init__(self, step: str, step_line: str, error: str, output: list[str]) -> None:
        super().__init__(error)
        self.where = (step, step_line, error, output)
