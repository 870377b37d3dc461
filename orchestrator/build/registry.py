"""The registry's HTTP API v2, read-only: is this tag there, and under which manifest digest?

Used before building (an existing content tag means nothing to build or push) and by `plan`, which must not
need a Docker Engine. Basic auth, and the Bearer token challenge of Docker Hub-style registries.
"""

from __future__ import annotations

import hashlib
import re

import structlog

from orchestrator.build.target import RegistryTarget
from orchestrator.errors import PushError

log = structlog.get_logger()

MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    ]
)


class RegistryUnreachable(PushError):
    """The registry could not be asked (connection refused, TLS, 5xx)."""


def registry_digest(target: RegistryTarget, tag: str, timeout: float = 10.0, session=None) -> str | None:
    """The manifest digest (sha256:...) of target:tag, None when the tag does not exist."""
    import requests

    http = session or requests.Session()
    url = f"{target.api_base}/{target.name}/manifests/{tag}"
    headers = {"Accept": MANIFEST_TYPES}
    auth = (target.username, target.password or "") if target.username else None
    try:
        resp = http.head(url, headers=headers, auth=auth, timeout=timeout)
        if resp.status_code == 401 and "bearer" in resp.headers.get("WWW-Authenticate", "").lower():
            headers["Authorization"] = f"Bearer {_bearer_token(http, resp.headers['WWW-Authenticate'], auth, timeout)}"
            auth = None
            resp = http.head(url, headers=headers, auth=auth, timeout=timeout)
        if resp.status_code == 404:
            return None
        digest = resp.headers.get("Docker-Content-Digest")
        if resp.ok and digest:
            return digest
        if resp.status_code in (200, 405):  # no HEAD support, or no digest header: GET and hash the bytes
            resp = http.get(url, headers=headers, auth=auth, timeout=timeout)
            if resp.status_code == 404:
                return None
            if resp.ok:
                return resp.headers.get("Docker-Content-Digest") or "sha256:" + hashlib.sha256(resp.content).hexdigest()
    except requests.RequestException as e:
        raise RegistryUnreachable(
            f"registry {target.registry} unreachable: {type(e).__name__}", registry=target.registry
        ) from None
    if resp.status_code in (401, 403):
        raise PushError(
            f"registry {target.registry} refused {target.name}:{tag} (HTTP {resp.status_code}): check the credentials"
            " (SNAIL_REGISTRY_USERNAME/SNAIL_REGISTRY_PASSWORD, or the ECR token)",
            registry=target.registry,
        )
    raise RegistryUnreachable(
        f"registry {target.registry} answered HTTP {resp.status_code} for {target.name}:{tag}", registry=target.registry
    )


def _bearer_token(http, challenge: str, auth, timeout: float) -> str:
    params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
    realm = params.pop("realm", None)
    if not realm:
        raise RegistryUnreachable(f"registry sent a Bearer challenge without realm: {challenge[:80]}")
    resp = http.get(realm, params=params, auth=auth, timeout=timeout)
    if not resp.ok:
        raise PushError(f"registry token endpoint {realm} answered HTTP {resp.status_code}: check the credentials")
    body = resp.json()
    return body.get("token") or body.get("access_token") or ""
