"""IAM reads in the release engineer's words: what `doctor` needs to know about the roles ECS uses (the execution
role can pull and log; the infrastructure role trusts ECS and may shift the load balancer). snail never writes IAM."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from orchestrator.aws.errors import aws_call
from orchestrator.errors import NotFound

if TYPE_CHECKING:
    from orchestrator.aws.session import AwsContext


class IamClient:
    """Roles and the policies they hold."""

    def __init__(self, aws: AwsContext) -> None:
        self._iam = aws.client("iam")

    def require_role(self, name: str) -> dict[str, Any]:
        """A role as GetRole says it; NotFound when there is none."""
        with aws_call("iam:GetRole"):
            return dict(self._iam.get_role(RoleName=name)["Role"])

    def role(self, name: str) -> dict[str, Any] | None:
        """A role, or None when it does not exist."""
        try:
            return self.require_role(name)
        except NotFound:
            return None

    def attached_policies(self, role: str) -> list[dict[str, Any]]:
        """The managed policies attached to a role (ARN and name), every page."""
        with aws_call("iam:ListAttachedRolePolicies"):
            pages = self._iam.get_paginator("list_attached_role_policies").paginate(RoleName=role)
            return [p for page in pages for p in page.get("AttachedPolicies", [])]

    def inline_policies(self, role: str) -> list[tuple[str, dict[str, Any]]]:
        """A role's inline policies: (name, document)."""
        with aws_call("iam:ListRolePolicies"):
            pages = self._iam.get_paginator("list_role_policies").paginate(RoleName=role)
            names = [n for page in pages for n in page.get("PolicyNames", [])]
        inline = []
        for n in names:
            with aws_call("iam:GetRolePolicy"):
                inline.append(
                    (n, policy_document(self._iam.get_role_policy(RoleName=role, PolicyName=n)["PolicyDocument"]))
                )
        return inline

    def managed_policy_document(self, arn: str) -> dict[str, Any]:
        """The default version's document of a managed policy."""
        with aws_call("iam:GetPolicy"):
            version = self._iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
        with aws_call("iam:GetPolicyVersion"):
            return policy_document(
                self._iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
            )


def policy_document(document: Any) -> dict[str, Any]:
    """IAM returns documents as dicts (boto3 decodes them) or URL-encoded JSON strings."""
    if isinstance(document, dict):
        return document
    return dict(json.loads(unquote(document)))
