"""Revision tags in the release engineer's words: the tags a task-definition revision carries, writing them, the
family's ACTIVE revisions, and every revision carrying a tag read in pages (the Resource Groups Tagging API, the
batched read ECS itself lacks). Verdict marks (orchestrator/marks.py) are written and read through this adapter."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from orchestrator.arns import family_of
from orchestrator.aws.errors import aws_call

if TYPE_CHECKING:
    from orchestrator.aws.session import AwsContext


class RevisionTags:
    """A revision's tags through ECS, and tagged revisions through tag:GetResources when `tagging` is given."""

    def __init__(self, ecs: Any, tagging: Any = None) -> None:
        self._ecs = ecs
        self._tagging = tagging

    @classmethod
    def of(cls, aws: AwsContext, tagging: bool = True) -> RevisionTags:
        """Clients from one AWS context (the tagging client is made only when a sync reads it)."""
        return _Lazy(aws, tagging)

    @property
    def batched(self) -> bool:
        """Whether tagged revisions can be read in pages (else every revision is described)."""
        return self._tagging_client() is not None

    def _ecs_client(self) -> Any:
        return self._ecs

    def _tagging_client(self) -> Any:
        return self._tagging

    def describe(self, revision_arn: str) -> tuple[dict[str, Any], dict[str, str]]:
        """A revision's definition and its tags (DescribeTaskDefinition with TAGS)."""
        with aws_call("ecs:DescribeTaskDefinition"):
            out = self._ecs_client().describe_task_definition(taskDefinition=revision_arn, include=["TAGS"])
        return out["taskDefinition"], {t["key"]: t["value"] for t in out.get("tags", [])}

    def tag(self, revision_arn: str, tags: dict[str, str]) -> None:
        """Write these tags on a revision (TagResource: idempotent, other tags untouched)."""
        with aws_call("ecs:TagResource"):
            self._ecs_client().tag_resource(
                resourceArn=revision_arn, tags=[{"key": k, "value": v} for k, v in tags.items()]
            )

    def list_active(self, family: str) -> tuple[list[str], int]:
        """Every ACTIVE revision ARN of exactly this family (familyPrefix also matches longer names), and the pages
        read."""
        arns: list[str] = []
        pages = 0
        with aws_call("ecs:ListTaskDefinitions"):
            pager = self._ecs_client().get_paginator("list_task_definitions")
            for page in pager.paginate(familyPrefix=family, status="ACTIVE"):
                pages += 1
                arns.extend(a for a in page.get("taskDefinitionArns", []) if family_of(a) == family)
        return arns, pages

    def tagged(self, key: str, family: str) -> tuple[dict[str, dict[str, str]], int]:
        """Every revision of this family carrying the tag `key`, with all its tags, and the pages read."""
        found: dict[str, dict[str, str]] = {}
        pages = 0
        with aws_call("tag:GetResources"):
            paginator = self._tagging_client().get_paginator("get_resources")
            # Pages are cut at TagsPerPage tags too (a marked revision carries ~12): ask for the most, 500.
            for page in paginator.paginate(
                TagFilters=[{"Key": key}], ResourceTypeFilters=["ecs:task-definition"], TagsPerPage=500
            ):
                pages += 1
                for r in page.get("ResourceTagMappingList", []):
                    if family_of(r["ResourceARN"]) == family:
                        found[r["ResourceARN"]] = {t["Key"]: t["Value"] for t in r.get("Tags", [])}
        return found, pages


class _Lazy(RevisionTags):
    """RevisionTags whose clients are made on first use (a scheduled no-op run makes none)."""

    def __init__(self, aws: AwsContext, tagging: bool) -> None:
        super().__init__(None)
        self._aws = aws
        self._with_tagging = tagging

    def _ecs_client(self) -> Any:
        return self._aws.client("ecs")

    def _tagging_client(self) -> Any:
        return self._aws.client("resourcegroupstaggingapi") if self._with_tagging else None
