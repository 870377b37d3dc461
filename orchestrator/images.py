"""A phase's image: a prebuilt reference, or a build context built, probed and pushed (orchestrator.build).

Used by the planner (identity, planned action: read-only) and the engine (resolve: build, probe, push)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orchestrator.aws.session import AwsContext
from orchestrator.config.model import Phase, Pipeline


@dataclass(frozen=True)
class ResolvedImage:
    """What the task definition will run."""

    ref: str  # repo@sha256:… when a digest is known, else repo:tag
    digest: str | None
    built: bool = False
    pushed: bool = False


def digest_of(ref: str) -> str | None:
    """The sha256 digest pinned in a reference, if any."""
    return ref.split("@", 1)[1] if "@" in ref else None


# An image in ECR: ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPO[:TAG|@DIGEST]
ECR_IMAGE = re.compile(r"^(?P<registry>\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?)/(?P<repo>[^:@]+)")


class Images:
    """Resolves each phase's image; Docker and the registry are only touched for build contexts."""

    def __init__(
        self,
        pipeline: Pipeline,
        aws: AwsContext,
        registry_url: str | None = None,
        progress: Callable[[dict[str, Any]], None] | None = None,
        publish: Callable[[Any, Any], str] | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.aws = aws
        self.registry_url = registry_url  # the sandbox's local registry stands in for ECR's data plane
        self.progress = progress
        # How a pushed image is named in the task definition when that is not its registry ref: the sandbox
        # records the manifest in its (moto) ECR and names the image by the ECR URI, as AWS would.
        self.publish = publish
        self._builder: Any = None
        self._target: Any = None

    def identity(self, phase: Phase) -> str:
        """What the image *is*, computable without Docker: the content tag of a build, or the ref."""
        if phase.image.ref:
            return phase.image.ref
        from orchestrator.build import content_tag

        assert phase.image.context is not None
        return content_tag(
            phase.name,
            phase.image.context,
            phase.image.build_args,
            phase.image.dockerfile,
            secret_names=tuple(phase.image.build_secrets),
        )

    def repository(self) -> str:
        """Where built images go, for display (no AWS call for a URL registry or the sandbox)."""
        if self.registry_url:
            return f"{self.registry_url.rstrip('/')}/{self.pipeline.registry.repository_name}"
        if self.pipeline.registry.url:
            return self.pipeline.registry.url
        return f"<ecr>/{self.pipeline.registry.ecr}"

    def planned_action(self, phase: Phase, identity: str) -> str:
        """What `plan` says about the image: use a ref, reuse a pushed content tag, or build (one HEAD request)."""
        if phase.image.ref:
            return f"use {identity}"
        ctx = phase.image.context.name if phase.image.context else "?"
        if phase.image.dockerfile:  # a context shared by several phases: say which Dockerfile
            ctx = f"{ctx}/{phase.image.dockerfile}"
        try:
            from orchestrator.aws.ecr import EcrClient
            from orchestrator.build import RegistryTarget, registry_digest
            from orchestrator.errors import NotFound

            if self._target is None and self.pipeline.registry.ecr and not self.registry_url:
                try:  # read-only: plan never creates the repository, even with registry.create
                    target = RegistryTarget.from_ecr(EcrClient(self.aws), self.pipeline.registry.ecr, create=False)
                except NotFound:
                    return (
                        f"build {ctx} -> {self.repository()}:{identity} (repository "
                        f"{self.pipeline.registry.ecr} does not exist yet: run creates it)"
                    )
            else:
                target = self.target()
            digest = registry_digest(target, identity, timeout=5)
        except Exception as exc:  # the plan must not fail because the registry is away; say so instead
            return f"build {ctx} -> {self.repository()}:{identity} (registry not checked: {type(exc).__name__})"
        if digest:
            return f"reuse {self.repository()}:{identity} (already pushed, {digest[:19]}…): nothing to build"
        return f"build {ctx} -> {self.repository()}:{identity}, probe :{self.pipeline.service.port}, push"

    def target(self) -> Any:
        """The registry target (ECR auth is fetched once)."""
        if self._target is None:
            from orchestrator.aws.ecr import EcrClient
            from orchestrator.build import RegistryTarget

            if self.registry_url:
                self._target = RegistryTarget.from_url(self.repository())
            elif self.pipeline.registry.url:
                self._target = RegistryTarget.from_url(self.pipeline.registry.url)
            else:
                self._target = RegistryTarget.from_ecr(
                    EcrClient(self.aws), self.pipeline.registry.repository_name, create=self.pipeline.registry.create
                )
        return self._target

    def run_overrides(self, phase: Phase) -> tuple[tuple[str, ...] | None, tuple[str, ...] | None]:
        """(entryPoint, command) the phase's task runs instead of the image's own: the phase's `task.command`, and
        what the template's container sets (a built image never inherits them from the live revision)."""
        container: dict = {}
        if self.pipeline.service.task_definition:
            from orchestrator import taskdef

            try:
                template = taskdef.load_template(self.pipeline.service.task_definition)
            except Exception:  # noqa: BLE001 - the plan reports a broken template; the probe runs the image as built
                template = {}
            wanted = self.pipeline.service.container
            container = next((c for c in template.get("containerDefinitions", []) if c.get("name") == wanted), {})

        def listed(value: object) -> tuple[str, ...] | None:
            return tuple(str(v) for v in value) if isinstance(value, list) and value else None

        command = tuple(phase.task.command) if phase.task.command else listed(container.get("command"))
        return listed(container.get("entryPoint")), command

    def same_image(self, ref: str, pinned: str) -> bool:
        """True when `ref` (REPO:TAG in ECR) names the image `pinned` (REPO@sha256:...) names: ECR says which
        digest the tag points at. Anything else, or ECR not answering, is not the same image."""
        if "@" not in pinned or "@" in ref or ":" not in ref.rsplit("/", 1)[-1]:
            return False
        repo, tag = ref.rsplit(":", 1)
        name, digest = pinned.split("@", 1)
        found = ECR_IMAGE.match(repo)
        if repo != name or found is None:
            return False
        try:
            from orchestrator.aws.ecr import EcrClient

            details = EcrClient(self.aws).images(found.group("repo"), [{"imageTag": tag}])
        except Exception:  # noqa: BLE001 - cannot tell: not the same image (the phase is delivered as planned)
            return False
        return bool(details) and details[0].get("imageDigest") == digest

    def resolve(self, phase: Phase) -> ResolvedImage:
        """Build, probe and push when needed; a prebuilt ref is used as it is."""
        if phase.image.ref:
            return ResolvedImage(phase.image.ref, digest_of(phase.image.ref))
        from orchestrator.build import ImageBuilder

        if self._builder is None:
            self._builder = ImageBuilder(progress=self.progress)
        assert phase.image.context is not None
        probe = None
        if phase.image.probe is not None:
            from orchestrator.build import ProbeSpec as BuildProbe

            entrypoint, command = self.run_overrides(phase)
            probe = BuildProbe(
                port=self.pipeline.service.port,
                path=phase.image.probe.path,
                timeout=phase.image.probe.timeout,
                command=command,
                entrypoint=entrypoint,
            )
        built = self._builder.build_and_push(
            phase.name,
            phase.image.context,
            self.target(),
            build_args=dict(phase.image.build_args),
            dockerfile=phase.image.dockerfile,
            probe=probe,
            build_secrets=dict(phase.image.build_secrets),
        )
        if self.publish is not None and built.digest:
            return ResolvedImage(self.publish(built, self.target()), built.digest, built.built, built.pushed)
        return ResolvedImage(built.ref, built.digest, built.built, built.pushed)
