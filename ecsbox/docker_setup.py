"""What the sandbox needs from the host: a running Docker Engine and an OCI registry for pushes (ECR's data plane).

Used by `up()` and, for `make`, by scripts/docker-up.sh (`python -m ecsbox registry`). It never
installs packages and writes only under the state folder it is given (the registry's storage, pid and log):

- the Docker Engine must already answer; otherwise DockerUnavailable says how to get one;
- the registry is `$SNAIL_REGISTRY` when set (used as it is), else whatever already answers on 127.0.0.1:PORT,
  else one we start: the `docker-registry` (distribution) binary where it is installed, otherwise the
  `registry:2` image where it can be pulled. The choice is logged and recorded, so `down` stops only what we
  started.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from ecsbox._util import pid_alive, private_dir
from ecsbox.errors import DockerUnavailable

log = structlog.get_logger(__name__)

REGISTRY_IMAGE = "registry:2"
REGISTRY_LABEL = "snail-sandbox-registry"
GET_DOCKER = (
    "no Docker Engine answers (DOCKER_HOST or /var/run/docker.sock). On Debian/Ubuntu: "
    "sudo apt-get install -y docker.io && sudo systemctl start docker (or: sudo dockerd &), then add yourself to "
    "the docker group; on macOS or Windows: install and start Docker Desktop."
)


@dataclass(frozen=True)
class RegistryChoice:
    """The registry the sandbox pushes to, and how it came to be: `env` ($SNAIL_REGISTRY), `running` (found
    answering), `binary` (we started docker-registry: `ref` is its pid) or `container` (we started registry:2:
    `ref` is the container id)."""

    address: str
    how: str
    ref: str = ""

    @property
    def started(self) -> bool:
        """We started it, so `down` stops it."""
        return self.how in ("binary", "container")

    def describe(self) -> str:
        """One line for the user."""
        return {
            "env": f"registry {self.address} (from SNAIL_REGISTRY)",
            "running": f"registry {self.address} (already running)",
            "binary": f"registry {self.address} (started the docker-registry binary, pid {self.ref})",
            "container": f"registry {self.address} (started a {REGISTRY_IMAGE} container {self.ref[:12]})",
        }.get(self.how, self.address)


def docker_client() -> Any:
    """A Docker SDK client that answers, or DockerUnavailable saying how to get an engine."""
    try:
        import docker
    except ImportError:
        raise DockerUnavailable(
            "the Docker SDK is not installed: pip install 'snail-trail[sandbox]' (or: pip install docker)"
        ) from None
    try:
        client = docker.from_env(timeout=10)
        client.ping()
    except Exception as exc:  # noqa: BLE001 - whatever the SDK raises, the engine is not there
        raise DockerUnavailable(f"{GET_DOCKER} ({type(exc).__name__}: {str(exc)[:200]})") from None
    return client


def registry_answering(address: str, timeout: float = 2.0) -> bool:
    """`GET /v2/` answers 200, or 401 behind auth."""
    try:
        with urllib.request.urlopen(f"http://{address}/v2/", timeout=timeout):
            return True
    except urllib.error.HTTPError as exc:
        return exc.code == 401
    except (urllib.error.URLError, OSError, ValueError):
        return False


def ensure_registry(state_dir: Path, port: int = 5055, client: Any = None, wait: float = 30.0) -> RegistryChoice:
    """The registry to push to (see the module's docstring), started if needed."""
    env = os.environ.get("SNAIL_REGISTRY", "").strip()
    if env:
        choice = RegistryChoice(env, "env")
    else:
        address = f"127.0.0.1:{port}"
        if registry_answering(address):
            choice = RegistryChoice(address, "running")
        elif shutil.which("docker-registry"):
            choice = _start_binary(Path(state_dir) / "registry", port, wait)
        else:
            choice = _start_container(client or docker_client(), Path(state_dir), port, wait)
    log.info("sandbox_registry", address=choice.address, how=choice.how, ref=choice.ref)
    return choice


def stop_registry(choice: RegistryChoice, client: Any = None) -> bool:
    """Stop a registry we started (by its pid or container id); anything else is left alone."""
    if choice.how == "binary" and choice.ref.isdigit():
        pid = int(choice.ref)
        if pid_alive(pid):
            os.kill(pid, 15)
            deadline = time.monotonic() + 10
            while pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if pid_alive(pid):
                os.kill(pid, 9)
        return True
    if choice.how == "container":
        try:
            (client or docker_client()).containers.get(choice.ref).remove(force=True)
        except Exception as exc:  # noqa: BLE001 - already gone, or no engine: nothing to stop
            log.warning("sandbox_registry_not_removed", error=str(exc))
            return False
        return True
    return False


def _wait_answering(address: str, wait: float, alive: Any) -> bool:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if registry_answering(address, timeout=1.0):
            return True
        if not alive():
            return False
        time.sleep(0.25)
    return False


def _start_binary(reg_dir: Path, port: int, wait: float) -> RegistryChoice:
    """docker-registry (the distribution binary, Debian's `docker-registry` package) on 127.0.0.1:PORT, its storage
    in `reg_dir`."""
    private_dir(reg_dir / "data")
    config = reg_dir / "config.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: warn\n  fields: {service: registry}\nstorage:\n"
        f"  filesystem: {{rootdirectory: {reg_dir / 'data'}}}\n  delete: {{enabled: true}}\n"
        f"  cache: {{blobdescriptor: inmemory}}\nhttp:\n  addr: 127.0.0.1:{port}\n"
    )
    binary = shutil.which("docker-registry") or "docker-registry"
    with open(reg_dir / "registry.log", "ab") as out:
        # a new session: the registry outlives whoever asked for it (a shell job, a test run)
        proc = subprocess.Popen(
            [binary, "serve", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=str(reg_dir),
        )
    (reg_dir / "registry.pid").write_text(f"{proc.pid}\n")
    address = f"127.0.0.1:{port}"
    if not _wait_answering(address, wait, lambda: proc.poll() is None):
        proc.terminate()
        tail = (reg_dir / "registry.log").read_text(errors="replace")[-400:]
        raise DockerUnavailable(f"docker-registry did not answer on {address} within {wait:.0f}s: {tail}")
    return RegistryChoice(address, "binary", str(proc.pid))


def _start_container(client: Any, state_dir: Path, port: int, wait: float) -> RegistryChoice:
    """registry:2 with its port published on 127.0.0.1:PORT (pulled if missing)."""
    from ecsbox.daemon import sandbox_id_for

    address = f"127.0.0.1:{port}"
    try:
        try:
            client.images.get(REGISTRY_IMAGE)
        except Exception:  # noqa: BLE001 - not here yet: pull it
            client.images.pull(REGISTRY_IMAGE)
        container = client.containers.run(
            REGISTRY_IMAGE,
            detach=True,
            ports={"5000/tcp": ("127.0.0.1", port)},
            labels={REGISTRY_LABEL: sandbox_id_for(state_dir)},
            name=f"snail-registry-{port}",
        )
    except Exception as exc:  # noqa: BLE001 - no image and no way to pull it, or the port is taken
        raise DockerUnavailable(
            f"no registry answers on {address}, docker-registry is not installed and {REGISTRY_IMAGE} could not be "
            f"started ({str(exc)[:300]}). Set SNAIL_REGISTRY=HOST:PORT to a registry you run, or install one "
            "(Debian/Ubuntu: sudo apt-get install -y docker-registry)."
        ) from None

    def alive() -> bool:
        container.reload()
        return bool(container.status in ("created", "running"))

    if not _wait_answering(address, wait, alive):
        container.remove(force=True)
        raise DockerUnavailable(f"the {REGISTRY_IMAGE} container did not answer on {address} within {wait:.0f}s")
    return RegistryChoice(address, "container", container.id)
