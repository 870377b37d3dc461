"""Turn botocore's ClientError into our own errors, inside the adapters and nowhere above them."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from orchestrator.errors import AccessDenied, AwsError, CredentialsExpired, NotFound

_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnrecognizedClientException"}
_EXPIRED = {"ExpiredToken", "ExpiredTokenException", "RequestExpired", "TokenRefreshRequired"}
_MISSING = {
    "ServiceNotFoundException",
    "ClusterNotFoundException",
    "RepositoryNotFoundException",
    "ImageNotFoundException",
    "ResourceNotFoundException",
    "NoSuchEntity",
    "TargetGroupNotFound",
}


@contextlib.contextmanager
def aws_call(operation: str) -> Iterator[None]:
    """Run one AWS call; ClientError and connection failures become AwsError / AccessDenied / NotFound."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        err = exc.response.get("Error", {})
        code = err.get("Code", "Unknown")
        msg = err.get("Message", str(exc))
        if code in _DENIED:
            raise AccessDenied(operation, code, f"{msg} (the caller needs permission for {operation})") from None
        if code in _EXPIRED:
            raise CredentialsExpired(
                operation, code, f"{msg} (the AWS credentials expired: renew them, e.g. `aws sso login`)"
            ) from None
        if code in _MISSING:
            raise NotFound(operation, code, msg) from None
        raise AwsError(operation, code, msg) from None
    except BotoCoreError as exc:
        raise AwsError(operation, type(exc).__name__, str(exc)) from None
