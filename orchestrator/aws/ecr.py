"""ECR in the release engineer's words: the repository (found, or created with immutable tags), its images by tag
or digest, and the push credentials `docker push` needs (GetAuthorizationToken)."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from orchestrator.aws.errors import aws_call
from orchestrator.errors import NotFound

if TYPE_CHECKING:
    from orchestrator.aws.session import AwsContext


class EcrClient:
    """One region's ECR: repositories, images, push credentials."""

    def __init__(self, aws: AwsContext | None = None, client: Any = None) -> None:
        if client is None and aws is None:
            raise ValueError("EcrClient needs an AwsContext or an ECR client")
        self._ecr: Any = client if client is not None else aws.client("ecr")  # type: ignore[union-attr]

    def repository(self, name: str) -> dict[str, Any] | None:
        """The repository as DescribeRepositories says it, or None when it does not exist."""
        try:
            with aws_call("ecr:DescribeRepositories"):
                out = self._ecr.describe_repositories(repositoryNames=[name])
        except NotFound:
            return None
        return (out.get("repositories") or [None])[0]

    def require_repository(self, name: str, create: bool = False) -> dict[str, Any]:
        """The repository; with `create`, made when missing; else NotFound saying how to fix it."""
        repo = self.repository(name)
        if repo is not None:
            return repo
        if not create:
            raise NotFound(
                "ecr:DescribeRepositories",
                "RepositoryNotFoundException",
                f"ECR repository {name!r} does not exist (create it, or allow snail to)",
            )
        # Content tags never change meaning, so immutable tags cost nothing and stop overwrites.
        with aws_call("ecr:CreateRepository"):
            return dict(self._ecr.create_repository(repositoryName=name, imageTagMutability="IMMUTABLE")["repository"])

    def push_credentials(self, registry_id: str) -> tuple[str, str]:
        """(username, password) for `docker login` to this registry."""
        with aws_call("ecr:GetAuthorizationToken"):
            auth = self._ecr.get_authorization_token(registryIds=[registry_id])["authorizationData"][0]
        username, _, password = base64.b64decode(auth["authorizationToken"]).decode().partition(":")
        return username, password

    def images(self, repository: str, image_ids: list[dict[str, str]] | None = None) -> list[dict[str, Any]]:
        """imageDetails of these tags/digests (NotFound when one is missing), or the first page of the repository's."""
        kwargs: dict[str, Any] = {"repositoryName": repository}
        if image_ids:
            kwargs["imageIds"] = image_ids
        else:
            kwargs["maxResults"] = 100
        with aws_call("ecr:DescribeImages"):
            return list(self._ecr.describe_images(**kwargs).get("imageDetails") or [])

    def repository_uri(self, name: str) -> str:
        """The repository's URI (DescribeRepositories)."""
        with aws_call("ecr:DescribeRepositories"):
            return str(self._ecr.describe_repositories(repositoryNames=[name])["repositories"][0]["repositoryUri"])

    def record_image(self, **kwargs: Any) -> None:
        """Record a manifest under a tag and digest (PutImage); an image already recorded is not an error."""
        try:
            with aws_call("ecr:PutImage"):
                self._ecr.put_image(**kwargs)
        except Exception as exc:  # already recorded (same tag and digest): nothing to do
            if "AlreadyExists" not in str(exc):
                raise
