"""snail state init|show: create the shared DynamoDB state table; say where state lives and in what shape."""

from __future__ import annotations

import click

from orchestrator.cli.app import App, pass_app
from orchestrator.errors import ExitCode, UsageError


@click.group("state")
def group() -> None:
    """Where runs, steps, marks and the lock live (local SQLite or a DynamoDB table); sync the marks from AWS."""


@group.command("init")
@pass_app
def init(app: App) -> int:
    """Create the DynamoDB table named by state.table (idempotent) and wait until it is ACTIVE."""
    from orchestrator.aws.dynamodb import DynamoTable
    from orchestrator.state.dynamodb import create_table_cli

    p = app.pipeline
    if p.state.backend != "dynamodb":
        raise UsageError(
            f"{p.path}: state.backend is {p.state.backend!r}; `snail state init` creates a DynamoDB "
            "table — set `state: {backend: dynamodb, table: NAME}` first (the local backend needs no setup)"
        )
    assert p.state.table  # the schema requires it for the dynamodb backend
    aws = app.aws()
    result = DynamoTable.of(aws, p.state.table).create()
    cli = create_table_cli(p.state.table, aws.region)
    verb = "created" if result["created"] else "already exists"
    text = "\n".join(
        [
            f"state table {p.state.table} {verb}: {result['status']} ({aws.region}"
            + (f", {aws.endpoint_url}" if aws.endpoint_url else "")
            + ")",
            "the same with the AWS CLI:",
            *(f"  {line}" for line in cli.splitlines()),
        ]
    )
    app.emit({**result, "region": aws.region, "aws_cli": cli}, text)
    return ExitCode.OK


@group.command("sync")
@click.option("--full", is_flag=True, help="describe every revision again, not only those not cached yet")
@pass_app
def sync(app: App, full: bool) -> int:
    """Rebuild the local cache of verdict marks from the task-definition revisions' tags on AWS."""
    from orchestrator.aws.ecs import EcsClient
    from orchestrator.aws.tagging import RevisionTags
    from orchestrator.marks import family_for
    from orchestrator.marks import sync as sync_marks
    from orchestrator.release_memory import blocks
    from orchestrator.state.base import current_marks

    p = app.pipeline
    aws = app.aws()
    svc = EcsClient(aws).service(p.service.cluster, p.service.name)
    family = family_for(p, svc.task_definition if svc else None)
    report = sync_marks(
        app.store,
        RevisionTags.of(aws),
        p.service.name,
        family,
        full=full,
        container=p.service.container,
    )
    marks = current_marks(app.store.marks(p.service.name))
    lines = [report.summary()]
    lines += [f"  {m.short}: {m.verdict} ({m.phase or '-'})" + ("" if m.active else " — deregistered") for m in marks]
    lines += [f"  {b.message()}" for b in blocks(app.store.marks(p.service.name))]
    app.emit({**report.to_dict(), "marks": [m.to_dict() for m in marks]}, "\n".join(lines))
    return ExitCode.OK


@group.command("show")
@pass_app
def show(app: App) -> int:
    """Show the state backend, where it keeps its data and whether that is ready."""
    p = app.pipeline
    if p.state.backend == "dynamodb":
        from orchestrator.aws.dynamodb import DynamoTable

        aws = app.aws()
        status = DynamoTable.of(aws, p.state.table or "").status()
        data = {
            "backend": "dynamodb",
            "table": p.state.table,
            "region": aws.region,
            "endpoint_url": aws.endpoint_url,
            "status": status or "MISSING",
            "lease": p.state.lease,
        }
        text = (
            f"state: dynamodb table {p.state.table} in {aws.region}"
            + (f" ({aws.endpoint_url})" if aws.endpoint_url else "")
            + f": {status or 'MISSING — create it with `snail state init`'}; lease {p.state.lease:g}s"
        )
    else:
        from orchestrator.cli.app import sandbox_store_path
        from orchestrator.state.sqlite import inspect_state_file

        # --sandbox: the sandbox keeps its own store, which lives and dies with it (App.store uses the same path).
        db = sandbox_store_path(p) if app.sandbox else p.state_dir() / "state.db"
        data = {
            "backend": "local",
            "sandbox": app.sandbox,
            "path": str(db),
            "status": inspect_state_file(db),  # an unreadable file is StateCorrupt (exit 2), never "present"
            "lease": p.state.lease,
        }
        if data["status"] == "present":
            from orchestrator.state.sqlite import SqliteStore

            store = SqliteStore(db)  # its shape checked on open, and every page read here
            store.verify()
            store.close()
        where = "the sandbox's SQLite" if app.sandbox else "local SQLite"
        text = (
            f"state: {where} {db}: "
            + ("present" if data["status"] == "present" else "absent (created by the first run)")
            + f"; lease {p.state.lease:g}s"
        )
    app.emit(data, text)
    return ExitCode.OK
