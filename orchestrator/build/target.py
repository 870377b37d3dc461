"""Where images go: a registry repository and its (masked) credentials, from a URL or from ECR."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from orchestrator.errors import UsageError


class EcrRepositories(Protocol):
    """What a push to ECR needs of it (orchestrator/aws/ecr.py's EcrClient): the repository and a login."""

    def require_repository(self, name: str, create: bool = False) -> dict[str, Any]: ...

    def push_credentials(self, registry_id: str) -> tuple[str, str]: ...


_NAME = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")


@dataclass(frozen=True, repr=False)
class RegistryTarget:
    """A repository such as 127.0.0.1:5055/shine-api-gateway, with optional credentials (never shown)."""

    repository: str
    username: str | None = None
    password: str | None = None
    insecure: bool = False  # plain HTTP; implied for loopback registries (as Docker does)

    def __repr__(self) -> str:
        secret = "'***'" if self.password else "None"
        return (
            f"RegistryTarget(repository={self.repository!r}, username={self.username!r}, "
            f"password={secret}, insecure={self.insecure!r})"
        )

    __str__ = __repr__

    @property
    def registry(self) -> str:
        """host[:port] of the registry."""
        return self.repository.split("/", 1)[0]

    @property
    def name(self) -> str:
        """The repository path inside the registry (shine-api-gateway, team/app)."""
        return self.repository.split("/", 1)[1]

    @property
    def api_base(self) -> str:
        """Base URL of the registry HTTP API v2."""
        return f"{'http' if self.insecure or _is_loopback(self.registry) else 'https'}://{self.registry}/v2"

    def auth_config(self) -> dict[str, str] | None:
        """Credentials for the Docker Engine's push/pull; None for anonymous registries."""
        if not self.username:
            return None
        return {"username": self.username, "password": self.password or "", "serveraddress": self.registry}

    @classmethod
    def from_url(cls, url: str, env: Mapping[str, str] = os.environ) -> RegistryTarget:
        """Parse [http(s)://]host[:port]/name; credentials from SNAIL_REGISTRY_USERNAME / SNAIL_REGISTRY_PASSWORD."""
        raw = url.strip()
        insecure = raw.startswith("http://")
        repository = re.sub(r"^https?://", "", raw).rstrip("/")
        # user:pass@host/name: the userinfo is the credentials, never part of the repository (which is printed).
        userinfo, at, rest = repository.partition("@")
        if at and "/" not in userinfo:
            repository = rest
            user, _, password = userinfo.partition(":")
            from urllib.parse import unquote

            env = {**env, "SNAIL_REGISTRY_USERNAME": unquote(user), "SNAIL_REGISTRY_PASSWORD": unquote(password)}
        host, _, name = repository.partition("/")
        if not name or not ("." in host or ":" in host or host == "localhost"):
            raise UsageError(
                f"registry url {_shown(url)!r} must be HOST[:PORT]/NAME, e.g. 127.0.0.1:5055/shine-api-gateway"
            )
        if not _NAME.match(name):
            raise UsageError(
                f"registry url {_shown(url)!r}: {name!r} is not a valid repository name (lowercase, digits, . _ - /)"
            )
        return cls(
            repository=repository,
            username=env.get("SNAIL_REGISTRY_USERNAME") or None,
            password=env.get("SNAIL_REGISTRY_PASSWORD") or None,
            insecure=insecure,
        )

    @classmethod
    def from_ecr(cls, ecr: EcrRepositories, repository_name: str, create: bool = False) -> RegistryTarget:
        """The ECR repository's URI and a push token (get_authorization_token); create it if missing and asked to."""
        repo = ecr.require_repository(repository_name, create=create)
        username, password = ecr.push_credentials(repo["registryId"])
        return cls(repository=repo["repositoryUri"], username=username, password=password)


def _shown(url: str) -> str:
    from orchestrator.redact import mask_text

    return mask_text(url)


def _is_loopback(registry: str) -> bool:
    if registry.startswith("["):
        host = registry[1 : registry.find("]")]
    else:
        host = registry.rsplit(":", 1)[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
