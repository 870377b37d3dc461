"""ImageBuilder: build a phase's image under its content tag, probe it locally, push it, report the digest.

Nothing is built or pushed when the content tag is already in the registry: a scheduled run with unchanged
sources costs one HEAD request per phase.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import structlog

from orchestrator.build.image import BuiltImage, ProbeResult, ProbeSpec
from orchestrator.build.registry import RegistryUnreachable, registry_digest
from orchestrator.build.tags import content_tag
from orchestrator.build.target import RegistryTarget
from orchestrator.clock import Clock, SystemClock
from orchestrator.errors import BuildError, DockerUnavailable, PushError

log = structlog.get_logger()

HOW_TO_START = "start the Docker Engine (`sudo systemctl start docker`, or `sudo dockerd &`), then check `docker info`"
_STEP = re.compile(r"^Step (\d+/\d+) : (.*)$")
_SUCCESS = re.compile(r"^Successfully built ([0-9a-f]+)$")
_PUSH_NEWS = {"Pushed", "Layer already exists", "Mounted from"}


class ImageBuilder:
    """Builds, probes and pushes phase images through the Docker Engine (docker SDK)."""

    def __init__(
        self,
        client: Any = None,
        progress: Callable[[dict], None] | None = None,
        *,
        base_url: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.progress = progress or (lambda event: None)
        self.clock = clock or SystemClock()
        self.base_url = base_url
        self.client = client if client is not None else _connect(base_url)
        try:
            self.client.ping()
        except Exception as e:
            raise DockerUnavailable(_unreachable(base_url or _base_url(self.client), e)) from None

    # -- build -------------------------------------------------------------------------------------------

    def build(
        self,
        phase: str,
        context: Path,
        target: RegistryTarget,
        build_args: Mapping[str, str] | None = None,
        dockerfile: str | None = None,
        build_secrets: Mapping[str, str] | None = None,
    ) -> BuiltImage:
        """Build repository:<content tag>; when the registry already has that tag, build nothing (built=False).
        With `build_secrets` the build goes through BuildKit secret mounts (orchestrator.build.buildkit); their
        names are part of the content tag, their values never are."""
        context = Path(context)
        if not context.is_dir():
            raise BuildError(f"phase {phase}: build context {context} is not a directory", phase=phase)
        build_args = dict(build_args or {})
        secrets = dict(build_secrets or {})
        tag = content_tag(phase, context, build_args, dockerfile, secret_names=tuple(secrets))
        bound = log.bind(phase=phase, image=f"{target.repository}:{tag}")
        try:
            digest = registry_digest(target, tag)
        except RegistryUnreachable as e:
            bound.warning("registry_unreachable", error=str(e))
            digest = None
        if digest:
            bound.info("image_build_skipped", reason="tag already in registry", digest=digest)
            self.progress({"event": "build_skipped", "phase": phase, "tag": tag, "digest": digest})
            return BuiltImage(phase, target.repository, tag, digest, built=False, pushed=False)
        bound.info("image_build_started", context=str(context), dockerfile=dockerfile or "Dockerfile")
        started = self.clock.monotonic()
        ref = f"{target.repository}:{tag}"
        image_id: str | None
        if secrets:
            image_id, steps, cached = self._buildkit_build(phase, context, ref, build_args, secrets, dockerfile)
        else:
            image_id, steps, cached = self._stream_build(phase, context, ref, build_args, dockerfile)
        elapsed = self.clock.monotonic() - started
        bound.info("image_built", image_id=image_id, steps=steps, cached_steps=cached, seconds=round(elapsed, 1))
        self.progress(
            {
                "event": "build_done",
                "phase": phase,
                "tag": tag,
                "image_id": image_id,
                "steps": steps,
                "cached_steps": cached,
                "seconds": elapsed,
            }
        )
        return BuiltImage(phase, target.repository, tag, None, built=True, pushed=False)

    def _stream_build(self, phase, context, ref, build_args, dockerfile) -> tuple[str | None, int, int]:
        from docker.errors import APIError

        step, step_line, step_reported = "0/0", "", True
        image_id, steps, cached = None, 0, 0
        output: list[str] = []
        try:
            stream = self.client.api.build(
                path=str(context),
                tag=ref,
                buildargs=build_args,
                dockerfile=dockerfile,
                rm=True,
                forcerm=True,
                pull=False,
                decode=True,
            )
            for chunk in stream:
                if "error" in chunk:
                    detail = (chunk.get("errorDetail") or {}).get("message") or chunk["error"]
                    raise BuildError(_build_failure(phase, step, step_line, detail, output), phase=phase, step=step)
                if "aux" in chunk and isinstance(chunk["aux"], dict) and chunk["aux"].get("ID"):
                    image_id = chunk["aux"]["ID"]
                for line in (chunk.get("stream") or "").splitlines():
                    line = line.rstrip()
                    if not line:
                        continue
                    m = _STEP.match(line)
                    if m:
                        if not step_reported:  # a step without output (ARG before FROM)
                            self._step(phase, step, step_line, False)
                        step, step_line, step_reported = m.group(1), m.group(2), False
                        steps += 1
                        continue
                    if not step_reported:
                        # The first line after "Step N/M" says whether the layer cache answered.
                        is_cached = line.strip() == "---> Using cache"
                        cached += is_cached
                        step_reported = True
                        self._step(phase, step, step_line, is_cached)
                        if is_cached:
                            continue
                    m = _SUCCESS.match(line)
                    if m:
                        image_id = image_id or m.group(1)
                    output.append(line)
                    del output[:-30]
                    log.debug("image_build_output", phase=phase, step=step, line=line)
                    self.progress({"event": "build_output", "phase": phase, "step": step, "line": line})
        except APIError as e:
            raise BuildError(
                _build_failure(phase, step, step_line, _explain(e), output), phase=phase, step=step
            ) from None
        except BuildError:
            raise
        except Exception as e:  # the engine went away mid-build: a failed build (exit 1), nothing was deployed
            if _is_connection_error(e):
                raise BuildError(
                    _went_away(phase, "build", _base_url(self.client), e), phase=phase, step=step
                ) from None
            raise
        if image_id is None:
            raise BuildError(
                _build_failure(phase, step, step_line, "the engine reported no image", output), phase=phase
            )
        return image_id, steps, cached

    def _buildkit_build(
        self,
        phase: str,
        context: Path,
        ref: str,
        build_args: Mapping[str, str],
        secrets: Mapping[str, str],
        dockerfile: str | None,
    ) -> tuple[str, int, int]:
        """The build through the docker CLI's BuildKit, secrets mounted (the SDK cannot pass them)."""
        from orchestrator.build.buildkit import build_with_secrets

        def output(step: str, line: str) -> None:
            log.debug("image_build_output", phase=phase, step=step, line=line)
            self.progress({"event": "build_output", "phase": phase, "step": step, "line": line})

        try:
            image_id, steps, cached, *_ = build_with_secrets(
                context,
                ref,
                build_args,
                secrets,
                dockerfile,
                docker_host=self.base_url,
                on_step=lambda step, line, hit: self._step(phase, step, line, hit),
                on_output=output,
            )
        except BuildError as e:
            step, step_line, error, lines = getattr(e, "where", ("", "", str(e), []))
            raise BuildError(
                _build_failure(phase, step, step_line, error, lines, list(secrets.values())), phase=phase, step=step
            ) from None
        return image_id, steps, cached

    def _step(self, phase: str, step: str, line: str, cached: bool) -> None:
        log.debug("image_build_step", phase=phase, step=step, line=line, cached=cached)
        self.progress({"event": "build_step", "phase": phase, "step": step, "line": line, "cached": cached})

    # -- push --------------------------------------------------------------------------------------------

    def push(self, image: BuiltImage, target: RegistryTarget) -> BuiltImage:
        """Push repository:tag; returns the image with its registry digest and pushed=True (skipped if already there)."""
        bound = log.bind(phase=image.phase, image=image.tagged)
        if image.pushed or (not image.built and image.digest):
            bound.info("image_push_skipped", reason="already in registry", digest=image.digest)
            return image
        bound.info("image_push_started", registry=target.registry)
        digest = None
        seen: set[tuple[str, str]] = set()
        shown = 0.0
        try:
            stream = self.client.api.push(
                target.repository, tag=image.tag, stream=True, decode=True, auth_config=target.auth_config()
            )
            for chunk in stream:
                if "error" in chunk:
                    raise PushError(
                        _push_failure(image, target, (chunk.get("errorDetail") or {}).get("message") or chunk["error"]),
                        phase=image.phase,
                    )
                aux = chunk.get("aux")
                if isinstance(aux, dict) and aux.get("Digest"):
                    digest = aux["Digest"]
                status, layer = chunk.get("status", ""), chunk.get("id", "")
                detail = chunk.get("progressDetail") or {}
                if layer and detail.get("total") and time.monotonic() >= shown + 0.25:  # bytes, 4 a second at most
                    shown = time.monotonic()
                    self.progress(
                        {
                            "event": "push_progress",
                            "phase": image.phase,
                            "layer": layer,
                            "current": detail.get("current", 0),
                            "total": detail["total"],
                        }
                    )
                if layer and any(status.startswith(s) for s in _PUSH_NEWS) and (layer, status) not in seen:
                    seen.add((layer, status))
                    self.progress({"event": "push_layer", "phase": image.phase, "layer": layer, "status": status})
                    log.debug("image_push_layer", phase=image.phase, layer=layer, status=status)
        except PushError:
            raise
        except Exception as e:
            if _is_connection_error(e):
                raise PushError(_went_away(image.phase, "push", _base_url(self.client), e), phase=image.phase) from None
            raise PushError(_push_failure(image, target, _explain(e)), phase=image.phase) from None
        if digest is None:  # old engines: ask the registry
            digest = registry_digest(target, image.tag)
        if not digest:
            raise PushError(f"pushed {image.tagged} but the registry does not show it", phase=image.phase)
        bound.info("image_pushed", digest=digest, layers=len({layer for layer, _ in seen}))
        self.progress({"event": "push_done", "phase": image.phase, "tag": image.tag, "digest": digest})
        return replace(image, digest=digest, pushed=True)

    # -- probe -------------------------------------------------------------------------------------------

    def probe(
        self,
        image_ref: str,
        port: int,
        path: str = "/health",
        timeout: float = 30.0,
        env: Mapping[str, str] | None = None,
        *,
        command: tuple[str, ...] | None = None,
        entrypoint: tuple[str, ...] | None = None,
        phase: str | None = None,
    ) -> ProbeResult:
        """Run the image (with the task's command/entryPoint, if it sets them) with `port` on 127.0.0.1 and expect
        2xx on `path`; PortProbeFailed naming the real port."""
        from orchestrator.build.probe import run_probe

        return run_probe(
            self.client,
            image_ref,
            port,
            path,
            timeout,
            env,
            clock=self.clock,
            progress=self.progress,
            command=command,
            entrypoint=entrypoint,
            phase=phase,
        )

    def build_and_push(
        self,
        phase: str,
        context: Path,
        target: RegistryTarget,
        build_args: Mapping[str, str] | None = None,
        dockerfile: str | None = None,
        probe: ProbeSpec | None = None,
        build_secrets: Mapping[str, str] | None = None,
    ) -> BuiltImage:
        """build -> probe (when asked and something was built) -> push."""
        image = self.build(phase, context, target, build_args, dockerfile, build_secrets)
        if probe is not None and image.built:
            self.probe(
                image.tagged,
                probe.port,
                probe.path,
                probe.timeout,
                probe.env,
                command=probe.command,
                entrypoint=probe.entrypoint,
                phase=phase,
            )
        return self.push(image, target)


def _connect(base_url: str | None) -> Any:
    try:
        import docker
    except ImportError:
        raise DockerUnavailable("the docker Python package is not installed (pip install docker)") from None
    try:
        return docker.DockerClient(base_url=base_url) if base_url else docker.from_env()
    except Exception as e:  # DockerException wraps connection errors while negotiating the API version
        raise DockerUnavailable(_unreachable(base_url, e)) from None


def _base_url(client: Any) -> str | None:
    return getattr(getattr(client, "api", None), "base_url", None)


def _unreachable(where: str | None, error: Exception) -> str:
    import os

    where = where or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    reason = str(error).split(": ", 1)[-1] if "Error while fetching server API version" in str(error) else str(error)
    return f"Docker Engine not reachable at {where} ({reason[:200]}): {HOW_TO_START}"


def _went_away(phase: str, what: str, where: str | None, error: Exception) -> str:
    where = where or "its socket"
    return (
        f"phase {phase}: the Docker Engine at {where} went away during the {what} "
        f"({type(error).__name__}: {str(error)[:200]}): is dockerd still running? `docker info` says"
    )


def _is_connection_error(e: Exception) -> bool:
    import requests
    from urllib3.exceptions import ProtocolError

    # a connection cut mid-stream surfaces as urllib3's ProtocolError ("Connection broken") inside the SDK's
    # reader, or as requests' ChunkedEncodingError, not as a ConnectionError
    return isinstance(
        e, (requests.ConnectionError, requests.exceptions.ChunkedEncodingError, ConnectionError, ProtocolError)
    )


def _explain(e: Exception) -> str:
    return str(getattr(e, "explanation", None) or e)


def _build_failure(
    phase: str, step: str, step_line: str, error: str, output: list[str], secrets: list[str] | None = None
) -> str:
    where = f"step {step} ({step_line})" if step_line else "before the first step"
    hint = ""
    if re.search(
        r"pull access denied|manifest unknown|not found: manifest|no such host|dial tcp", error
    ) and "FROM" in (step_line or "FROM"):
        words = (step_line or "").split()
        named = words[1] if len(words) > 1 and words[0].upper() == "FROM" and "$" not in words[1] else None
        found = re.search(r"(?:pull access denied for|manifest for) ([^\s,]+)", error)
        named = named or (found.group(1) if found else None)
        base = f"`docker pull {named}`" if named else "`docker pull` it"
        hint = (
            f"\nhint: this Docker Engine cannot fetch the Dockerfile's base image: {base} (or `docker load` it) on "
            "a machine that reaches its registry, or build FROM an image it has (`docker images`); a Dockerfile "
            "that takes `ARG BASE_IMAGE` gets it from the phase's build_args (e.g. BASE_IMAGE: ${SNAIL_BASE_IMAGE})"
        )
    tail = "\n".join(output[-10:])
    from orchestrator.redact import mask_text  # build output may echo a build arg (a token): never carry it

    message = f"phase {phase}: build failed at {where}: {error.strip()}" + (
        f"\n--- last output ---\n{tail}" if tail else ""
    )
    return mask_text(message, secrets or []) + hint


def _push_failure(image: BuiltImage, target: RegistryTarget, error: str) -> str:
    from orchestrator.redact import mask_text

    message = mask_text(f"push of {image.tagged} failed: {error}", [target.password] if target.password else [])
    if "immutable" in error or "cannot be overwritten" in error:
        message += " (the repository has immutable tags and this tag exists with other content)"
    elif "unauthorized" in error.lower() or "denied" in error.lower():
        message += " (check SNAIL_REGISTRY_USERNAME/SNAIL_REGISTRY_PASSWORD, or the ECR token)"
    return message
