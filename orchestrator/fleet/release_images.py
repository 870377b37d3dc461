"""One release, identical everywhere: each built phase's image (its content tag) is one manifest digest in every
target's registry.

`digests()` asks each target's registry for the tag (one HEAD each, read-only: `fleet plan`); `agreed()` says the
release's digest or refuses a target whose registry holds another one under that tag; `copy_image()` copies the
manifest and its blobs byte for byte from one registry to another over the registry HTTP API v2, so a copy has the
same digest (an image is built once, never rebuilt per target)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.build.registry import MANIFEST_TYPES, RegistryUnreachable, _bearer_token
from orchestrator.build.target import RegistryTarget
from orchestrator.errors import PushError, UsageError

_INDEX_TYPES = (
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
)


class DigestMismatch(UsageError):
    """A target's registry holds another image under the release's content tag: that target is refused (exit 2)."""


@dataclass(frozen=True)
class PhaseImage:
    """A built phase's image across the fleet: its content tag and, per target, the digest its registry holds."""

    phase: str
    tag: str
    found: Mapping[str, str | None] = field(default_factory=dict)  # target -> digest under `tag` (None: not there)
    registries: Mapping[str, str] = field(default_factory=dict)  # target -> repository (for messages)

    @property
    def digest(self) -> str | None:
        """The release's digest: the one the first target (in fleet order) holding the tag has."""
        return next((d for d in self.found.values() if d), None)

    def missing(self) -> list[str]:
        """Targets whose registry does not hold the tag yet."""
        return [t for t, d in self.found.items() if not d]

    def to_dict(self) -> dict[str, Any]:
        """Plain data (`fleet plan --output json`)."""
        return {"phase": self.phase, "tag": self.tag, "digest": self.digest, "registries": dict(self.found)}


def agreed(images: Iterable[PhaseImage]) -> None:
    """Refuse (DigestMismatch, exit 2, before anything changed) a target whose registry holds a different digest
    under a release's content tag; the message names each such target, the tag and both digests."""
    problems = []
    for im in images:
        want = im.digest
        first = next((t for t, d in im.found.items() if d), None)
        for target, got in im.found.items():
            if got and want and got != want:
                problems.append(
                    f"target {target}: its registry {im.registries.get(target, '?')} holds {im.tag} as {got}, but the "
                    f"release (phase {im.phase}) is {want} (as in {first}'s registry {im.registries.get(first or '', '?')})"
                )
    if problems:
        raise DigestMismatch(
            "refused, one release must be identical everywhere (nothing changed):\n  "
            + "\n  ".join(problems)
            + "\n  a content tag never changes meaning: remove the stray image from that registry, or change the build"
        )


def digests(
    tag: str, registries: Mapping[str, RegistryTarget | None], timeout: float = 5.0, tolerant: bool = False
) -> dict[str, str | None]:
    """Per target, the digest its registry holds under `tag` (one HEAD per distinct repository); `tolerant` (plan)
    takes an unreachable registry as not holding it instead of failing."""
    from orchestrator.build import registry_digest

    seen: dict[str, str | None] = {}
    out: dict[str, str | None] = {}
    for target, reg in registries.items():
        if reg is None:  # the repository does not exist yet (ECR): nothing is there
            out[target] = None
            continue
        if reg.repository not in seen:
            try:
                seen[reg.repository] = registry_digest(reg, tag, timeout=timeout)
            except RegistryUnreachable:
                if not tolerant:
                    raise
                seen[reg.repository] = None
        out[target] = seen[reg.repository]
    return out


class _Http:
    """A registry's v2 API with its credentials (Basic, or a Bearer token got from its challenge)."""

    def __init__(self, target: RegistryTarget, session: Any, timeout: float) -> None:
        self.t = target
        self.http = session
        self.timeout = timeout
        self.auth = (target.username, target.password or "") if target.username else None
        self.headers: dict[str, str] = {}

    def call(self, method: str, url: str, **kw: Any) -> Any:
        import requests

        if not url.startswith("http"):
            url = f"{self.t.api_base[: -len('/v2')]}{url}"
        headers = {**self.headers, **kw.pop("headers", {})}
        try:
            resp = self.http.request(method, url, headers=headers, auth=self.auth, timeout=self.timeout, **kw)
            challenge = resp.headers.get("WWW-Authenticate", "")
            if resp.status_code == 401 and "bearer" in challenge.lower():
                token = _bearer_token(self.http, challenge, self.auth, self.timeout)
                self.headers["Authorization"] = f"Bearer {token}"
                self.auth = None
                headers["Authorization"] = self.headers["Authorization"]
                resp = self.http.request(method, url, headers=headers, timeout=self.timeout, **kw)
        except requests.RequestException as e:
            raise RegistryUnreachable(
                f"registry {self.t.registry} unreachable: {type(e).__name__}", registry=self.t.registry
            ) from None
        return resp

    def base(self) -> str:
        return f"{self.t.api_base}/{self.t.name}"


def copy_image(src: RegistryTarget, dst: RegistryTarget, tag: str, timeout: float = 120.0, session: Any = None) -> str:
    """Copy src:tag to dst:tag byte for byte (blobs, child manifests of an index, then the manifest): the same
    digest in both. Returns that digest."""
    import hashlib

    import requests

    http = session or requests.Session()
    a, b = _Http(src, http, timeout), _Http(dst, http, timeout)

    def manifest(ref: str) -> tuple[bytes, str]:
        resp = a.call("GET", f"{a.base()}/manifests/{ref}", headers={"Accept": MANIFEST_TYPES})
        if not resp.ok:
            raise PushError(f"registry {src.registry}: {src.name}:{ref} answered HTTP {resp.status_code}")
        return resp.content, resp.headers.get("Content-Type", "").split(";")[0]

    def blob(digest: str) -> None:
        if b.call("HEAD", f"{b.base()}/blobs/{digest}").status_code == 200:
            return
        got = a.call("GET", f"{a.base()}/blobs/{digest}")
        if not got.ok:
            raise PushError(f"registry {src.registry}: blob {digest[:19]}… answered HTTP {got.status_code}")
        start = b.call("POST", f"{b.base()}/blobs/uploads/")
        where = start.headers.get("Location")
        if start.status_code != 202 or not where:
            raise PushError(f"registry {dst.registry} refused an upload to {dst.name} (HTTP {start.status_code})")
        sep = "&" if "?" in where else "?"
        done = b.call(
            "PUT",
            f"{where}{sep}digest={digest}",
            data=got.content,
            headers={"Content-Type": "application/octet-stream"},
        )
        if done.status_code not in (201, 204):
            raise PushError(f"registry {dst.registry} refused blob {digest[:19]}… (HTTP {done.status_code})")

    def put(ref: str, body: bytes, ctype: str) -> None:
        resp = b.call("PUT", f"{b.base()}/manifests/{ref}", data=body, headers={"Content-Type": ctype})
        if resp.status_code not in (200, 201, 202):
            raise PushError(f"registry {dst.registry} refused {dst.name}:{ref} (HTTP {resp.status_code})")

    def tree(body: bytes, ctype: str) -> None:
        doc = json.loads(body)
        if ctype in _INDEX_TYPES or "manifests" in doc:
            for child in doc.get("manifests", []):
                cbody, ctype2 = manifest(child["digest"])
                tree(cbody, ctype2 or child.get("mediaType", ""))
                put(child["digest"], cbody, ctype2 or child.get("mediaType", ""))
            return
        for d in [doc.get("config", {}).get("digest"), *(layer.get("digest") for layer in doc.get("layers", []))]:
            if d:
                blob(d)

    body, ctype = manifest(tag)
    tree(body, ctype)
    put(tag, body, ctype)
    return "sha256:" + hashlib.sha256(body).hexdigest()
