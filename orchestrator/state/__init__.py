"""State: runs, steps, good revisions per phase, trail events and the lock, behind one protocol."""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchestrator.state.base import GoodRecord, RunRecord, StateStore, StepRecord, TrailEvent

if TYPE_CHECKING:
    from orchestrator.aws.session import AwsContext
    from orchestrator.config.model import Pipeline


def open_store(pipeline: Pipeline, aws: AwsContext | None = None) -> StateStore:
    """The store pipeline.yaml asks for: SQLite under state.path, or DynamoDB."""
    if pipeline.state.backend == "dynamodb":
        from orchestrator.aws.dynamodb import DynamoTable
        from orchestrator.state.dynamodb import DynamoStore

        assert aws is not None and pipeline.state.table
        table = DynamoTable.of(aws, pipeline.state.table)
        return DynamoStore(table.client, table.name)
    from orchestrator.state.sqlite import SqliteStore

    return SqliteStore(pipeline.state_dir() / "state.db")


__all__ = ["GoodRecord", "RunRecord", "StateStore", "StepRecord", "TrailEvent", "open_store"]
