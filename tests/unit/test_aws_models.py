"""The lean botocore models (orchestrator/aws/models.py) change memory, never where a request goes or how it is
signed: each client snail makes resolves the same real-AWS endpoint and signing scope as stock boto3."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from orchestrator.aws.session import AwsContext

SERVICES = ("ecs", "ec2", "ecr", "iam", "logs", "elbv2", "cloudwatch", "dynamodb", "resourcegroupstaggingapi", "sts")
CREDS = {"aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": "secret"}


class _Sent(Exception):
    """Raised by the before-send hook: the request was built and signed, nothing leaves the machine."""


def _signed(client: Any, call: str, **params: Any) -> tuple[str, str]:
    """(URL, credential scope) of the request the client would send."""
    seen: dict[str, str] = {}

    def grab(request: Any, **_: Any) -> None:
        seen["url"] = request.url
        seen["scope"] = request.headers["Authorization"].decode().split("Credential=")[1].split(",")[0]
        raise _Sent

    client.meta.events.register("before-send", grab)
    with pytest.raises(_Sent):
        getattr(client, call)(**params)
    return seen["url"].split("?")[0], seen["scope"].split("/", 2)[2]  # drop the key id and the date


CALLS = {
    "ecs": ("list_clusters", {}),
    "ec2": ("describe_subnets", {}),
    "ecr": ("describe_repositories", {}),
    "iam": ("get_role", {"RoleName": "r"}),
    "logs": ("describe_log_groups", {}),
    "elbv2": ("describe_target_groups", {}),
    "cloudwatch": ("describe_alarms", {}),
    "dynamodb": ("list_tables", {}),
    "resourcegroupstaggingapi": ("get_resources", {}),
    "sts": ("get_caller_identity", {}),
}


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1", "cn-north-1"])
@pytest.mark.parametrize("service", SERVICES)
def test_lean_client_sends_where_stock_boto3_sends(service: str, region: str) -> None:
    """Same URL and signing scope (region/service) as boto3 as shipped, in a standard, EU and China region."""
    lean = AwsContext(region=region, credentials=CREDS).client(service)
    stock = boto3.session.Session(region_name=region, **CREDS).client(service)
    call, params = CALLS[service]
    assert _signed(lean, call, **params) == _signed(stock, call, **params)


def test_lean_model_keeps_members_named_documentation() -> None:
    """Only documentation *strings* are dropped: a structure member called `documentation` stays."""
    from orchestrator.aws.models import _lean_object

    member = {"shape": "String"}
    obj = _lean_object([("documentation", "words"), ("members", {"documentation": member})])
    assert obj == {"members": {"documentation": member}}
    assert _lean_object([("documentation", member)]) == {"documentation": member}
