"""Before the first AWS call: the profile, region, endpoint and credentials make sense, or exit 2 with a hint.

A CI job without credentials, a typo in --profile or --region, or an endpoint nobody listens on is a usage
mistake (nothing was changed), not a "human needed" (exit 3) found after 20 s of retries."""

from __future__ import annotations

import os
import re
import socket
from urllib.parse import urlparse
from urllib.request import getproxies, proxy_bypass

from orchestrator.aws.session import AwsContext
from orchestrator.errors import UsageError

_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
CREDENTIALS_HINT = (
    "no AWS credentials found: pass --profile NAME (or set AWS_PROFILE), export AWS_ACCESS_KEY_ID and "
    "AWS_SECRET_ACCESS_KEY, assume a role (in GitHub Actions: aws-actions/configure-aws-credentials with OIDC), "
    "or rehearse without an account: `snail --sandbox run`"
)
CONNECT_TIMEOUT = 2.0


def checked_context(
    region: str, profile: str | None, endpoint_url: str | None, region_given: bool = True
) -> AwsContext:
    """An AwsContext whose profile exists, region is real, endpoint answers and credentials are found."""
    where = "--region" if region_given else "service.region"
    if not _REGION.match(region or ""):
        raise UsageError(f"{where} {region!r} is not an AWS region name (e.g. us-east-1)")
    if endpoint_url:
        check_endpoint(endpoint_url)
    aws = AwsContext(region=region, profile=profile, endpoint_url=endpoint_url)
    from botocore.exceptions import BotoCoreError, ProfileNotFound

    try:
        session = aws.session()
        session.get_credentials  # noqa: B018 - touch: a missing profile raises here or on the first lookup
    except ProfileNotFound:
        raise UsageError(_no_profile(profile)) from None
    if not endpoint_url and region not in session.get_available_regions("ecs"):
        raise UsageError(
            f"{where} {region!r}: ECS is not known in this region (regions: "
            f"{', '.join(session.get_available_regions('ecs')[:6])}, …; upgrade boto3 if the region is new)"
        )
    try:
        creds = session.get_credentials()
    except ProfileNotFound:
        raise UsageError(_no_profile(profile)) from None
    except BotoCoreError as exc:
        raise UsageError(f"AWS credentials could not be loaded: {exc}; {CREDENTIALS_HINT}") from None
    if creds is None:
        raise UsageError(CREDENTIALS_HINT)
    if not endpoint_url:
        # botocore would retry an unreachable AWS endpoint for 10-30 s (six attempts, 5 s connect timeout each):
        # one quick TCP connect to the endpoint the ECS client will use says it in seconds. The client is cached.
        from orchestrator.aws.ecs import EcsClient

        check_endpoint(EcsClient(aws).endpoint_url(), what=f"the AWS endpoint for {region}")
    return aws


def _no_profile(profile: str | None) -> str:
    name = profile or os.environ.get("AWS_PROFILE") or os.environ.get("AWS_DEFAULT_PROFILE")
    given = "--profile" if profile else "AWS_PROFILE"
    return (
        f"{given} {name!r}: no such profile in ~/.aws/config or ~/.aws/credentials (`aws configure "
        "list-profiles` lists them; in CI use role credentials instead of a profile, or `snail --sandbox …`)"
    )


def check_endpoint(
    endpoint_url: str, timeout: float = CONNECT_TIMEOUT, tries: int = 2, what: str = "--endpoint-url"
) -> None:
    """An http(s) URL whose host accepts a TCP connection (two quick tries), else exit 2 with a hint."""
    url = urlparse(endpoint_url)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise UsageError(
            f"--endpoint-url {endpoint_url!r} is not an http(s) URL (e.g. http://127.0.0.1:4566 for a moto server)"
        )
    if url.scheme in getproxies() and not proxy_bypass(url.hostname):
        return  # a proxy carries the connection: only the real call can tell
    port = url.port or (443 if url.scheme == "https" else 80)
    last: OSError | None = None
    for _ in range(tries):
        try:
            with socket.create_connection((url.hostname, port), timeout=timeout):
                return
        except OSError as exc:
            last = exc
    if what != "--endpoint-url":
        raise UsageError(
            f"{what} ({url.hostname}:{port}) cannot be reached ({last}): check the network (a proxy goes in "
            "HTTPS_PROXY), --region, or rehearse offline with `snail --sandbox …`"
        )
    raise UsageError(
        f"--endpoint-url {endpoint_url}: nothing answers on {url.hostname}:{port} ({last}); is the server "
        "running? (`snail sandbox up` starts the local one; then use `snail --sandbox …`)"
    )
