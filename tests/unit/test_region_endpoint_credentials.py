"""Before the first AWS call: region, endpoint and credentials are checked in seconds, as usage errors."""

from __future__ import annotations

import socket
import time

import pytest

from orchestrator.cli.reach import check_endpoint, checked_context
from orchestrator.errors import UsageError


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_endpoint_is_a_quick_usage_error() -> None:
    """Nothing listening: two 2 s connects at most, then exit 2 naming host and port (not botocore's retries)."""
    port = _closed_port()
    started = time.monotonic()
    with pytest.raises(UsageError, match=f"nothing answers on 127.0.0.1:{port}"):
        check_endpoint(f"http://127.0.0.1:{port}")
    assert time.monotonic() - started < 5
    with pytest.raises(UsageError, match="the AWS endpoint for us-east-1 .* cannot be reached"):
        check_endpoint(f"https://127.0.0.1:{port}", what="the AWS endpoint for us-east-1")


def test_bad_region_and_url_shapes() -> None:
    """A region that is not one, or an endpoint without a scheme, is refused before any client exists."""
    with pytest.raises(UsageError, match="is not an AWS region name"):
        checked_context("moon-1", None, None)
    with pytest.raises(UsageError, match="is not an http"):
        checked_context("us-east-1", None, "localhost:4566")


def test_missing_credentials_say_how_to_get_some(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # noqa: ANN001
    """No keys, no profile, no metadata service: exit 2 naming --profile, OIDC and --sandbox."""
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    try:
        with pytest.raises(UsageError) as err:
            checked_context("us-east-1", None, f"http://127.0.0.1:{srv.getsockname()[1]}")
    finally:
        srv.close()
    assert "--profile" in str(err.value) and "OIDC" in str(err.value) and "--sandbox" in str(err.value)
