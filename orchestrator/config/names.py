"""AWS's own naming rules, checked by `validate` so that AWS never refuses a name, an image or a region mid-run.

Each rule is the one the API reference states (quoted in botocore's service models, which is where these were
read from):
- ECS CreateCluster `clusterName`, CreateService `serviceName`, RegisterTaskDefinition `family` and
  ContainerDefinition `name`: "Up to 255 letters (uppercase and lowercase), numbers, underscores, and hyphens are
  allowed." https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_CreateCluster.html (and
  API_CreateService.html, API_RegisterTaskDefinition.html, API_ContainerDefinition.html)
- ECR CreateRepository `repositoryName`: length 2 to 256, pattern
  `[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*(\\/[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*)*`.
  https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_CreateRepository.html
- ContainerDefinition `image`: "For images using tags (repository-url/image:tag), up to 255 characters total are
  allowed, including letters (uppercase and lowercase), numbers, hyphens, underscores, colons, periods, forward
  slashes, and number signs (#). For images using digests (repository-url/image@digest), the 255 character limit
  applies only to the repository URL and image name (everything before the @ sign). The only supported hash
  function is sha256, and the hash value after sha256: must be exactly 64 characters (only letters A-F, a-f, and
  numbers 0-9 are allowed)."
- DynamoDB CreateTable `TableName`: length 3 to 255, pattern `[a-zA-Z0-9_.-]+`.
  https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_CreateTable.html
- Regions are named like us-east-1, eu-central-2, us-gov-west-1, ap-southeast-4: letters, dashes, a number.
"""

from __future__ import annotations

import re

from orchestrator.config.yamlio import describe_char, neutralise

MAX_ECS_NAME = 255
_ECS_NAME = re.compile(r"[A-Za-z0-9_-]+", re.ASCII)
_ECR_REPOSITORY = re.compile(r"[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*", re.ASCII)
_IMAGE_CHARS = re.compile(r"[A-Za-z0-9_:./#-]+", re.ASCII)
_DIGEST = re.compile(r"sha256:[0-9A-Fa-f]{64}", re.ASCII)
_HEX = re.compile(r"[0-9A-Fa-f]*", re.ASCII)
_TABLE = re.compile(r"[A-Za-z0-9_.-]+", re.ASCII)
REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]{1,2}", re.ASCII)
MAX_IMAGE = 255


def _first_bad(text: str, allowed: re.Pattern[str]) -> str:
    """The first character of `text` outside `allowed`, named for a message ('/', a space, U+000A ...)."""
    for ch in text:
        if not allowed.fullmatch(ch):
            return repr(ch) if ch.isprintable() and not ch.isspace() else describe_char(ch)
    return ""


def ecs_name_problem(name: str, what: str) -> str | None:
    """Why ECS refuses `name` as a cluster, service, family or container name (None if it takes it)."""
    if not name.strip():
        return f"the {what} name is empty"
    if name.startswith("arn:") and "/" in name and what in ("cluster", "service"):
        short = name.rsplit("/", 1)[-1]
        return f"give the {what}'s name, not its ARN (here: {neutralise(short)!r})"
    if len(name) > MAX_ECS_NAME:
        return f"the {what} name has {len(name)} characters; ECS takes at most {MAX_ECS_NAME}"
    if not _ECS_NAME.fullmatch(name):
        return (
            f"the {what} name {neutralise(name[:80])!r} has {_first_bad(name, _ECS_NAME)}: ECS takes letters, "
            "digits, '-' and '_' only (no '/', spaces or line breaks)"
        )
    return None


def ecr_repository_problem(name: str) -> str | None:
    """Why ECR refuses `name` as a repository name (None if it takes it)."""
    first = name.split("/", 1)[0]
    if "/" in name and ("." in first or ":" in first or first == "localhost"):
        return (
            f"registry.ecr takes the repository name, not its URI: {neutralise(first)!r} is a host (the registry comes "
            f"from your account and region; write ecr: {neutralise(name.split('/', 1)[1])!r}, or use `url:` "
            "for another registry)"
        )
    if not 2 <= len(name) <= 256:
        return f"an ECR repository name has 2 to 256 characters, this one {len(name)}"
    if not _ECR_REPOSITORY.fullmatch(name):
        lower = name.lower()
        hint = f" (write {neutralise(lower)!r})" if lower != name and _ECR_REPOSITORY.fullmatch(lower) else ""
        return (
            f"{neutralise(name[:80])!r} is not an ECR repository name: lowercase letters and digits, separated by "
            f"'.', '_', '__' or '-', and '/' between parts{hint}"
        )
    return None


def image_ref_problem(ref: str) -> str | None:
    """Why ECS refuses `ref` as a container image (None if it takes it): the digest is sha256 and 64 hex digits."""
    if not ref.strip():
        return "the image reference is empty"
    name, at, digest = ref.partition("@")
    if not name:
        return f"{neutralise(ref[:80])!r} has no repository before the '@'"
    if len(name) > MAX_IMAGE:
        return f"the image name has {len(name)} characters; ECS takes at most {MAX_IMAGE} (before any '@')"
    if not _IMAGE_CHARS.fullmatch(name):
        return (
            f"the image reference has {_first_bad(name, _IMAGE_CHARS)}: ECS takes letters, digits, '-', '_', ':', "
            "'.', '/' and '#'"
        )
    if not at:
        return None
    if not _DIGEST.fullmatch(digest):
        algorithm, colon, value = digest.partition(":")
        if not colon or algorithm != "sha256":
            return f"the digest {neutralise(digest[:80])!r} is not sha256:…: sha256 is the only hash ECS takes"
        if not _HEX.fullmatch(value):
            return f"the digest after sha256: has {_first_bad(value, re.compile('[0-9A-Fa-f]'))}: 64 hex digits only"
        return f"the digest after sha256: has {len(value)} hex digit{'' if len(value) == 1 else 's'}, not 64"
    return None


def unpinned_warning(ref: str | None) -> str | None:
    """A warning when a phase's `image.ref` names its image by tag only (None when pinned by digest or built).

    Valid (ECS runs tags), but a tag can be moved to other bytes between `plan`, `run` and a rollback: what passed
    the gates is then not what runs."""
    if ref is None or "@" in ref:
        return None
    return (
        f"image.ref {neutralise(ref[:120])} is not pinned by digest: the tag can be moved to other "
        "bytes; pin it as REPOSITORY@sha256:…"
    )


def region_problem(region: str) -> str | None:
    """Why `region` is not an AWS region name (None if it is shaped like one)."""
    if REGION.fullmatch(region):
        return None
    return f"{neutralise(region[:80])!r} is not an AWS region name (e.g. us-east-1, eu-central-2, us-gov-west-1)"


def dynamodb_table_problem(name: str) -> str | None:
    """Why DynamoDB refuses `name` as a table name (None if it takes it)."""
    if not 3 <= len(name) <= 255:
        return f"a DynamoDB table name has 3 to 255 characters, this one {len(name)}"
    if not _TABLE.fullmatch(name):
        return f"the table name has {_first_bad(name, _TABLE)}: DynamoDB takes letters, digits, '_', '-' and '.'"
    return None
