"""The sandbox for a fleet: one sandbox (in fleet.yaml's state folder) seeded with every target's cluster, service,
repository and load balancer, in every region the targets name; each target's engine is pointed at it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from orchestrator.cli.app import App, forget_sandbox_state
from orchestrator.cli.sandboxing import LOG_PROCESSOR, ecsbox, requested_port, spec_for, translated


def fleet_file(option: str | None) -> str | None:
    """`--fleet` given bare (the nearest fleet.yaml, or SNAIL_FLEET) or with a FILE."""
    return option or os.environ.get("SNAIL_FLEET") or None


def sandbox_dir(fleet: Any) -> Path:
    """Where the fleet's sandbox is recorded: fleet.yaml's state folder (a pipeline.yaml beside it shares it)."""
    return Path(fleet.state_dir())


def seed(app: App, fleet: Any, pipelines: dict[str, Any], port: int | None = None, start: bool = True) -> Any:
    """Start the sandbox if needed and seed every target (idempotent: a target seeded already costs nothing)."""
    import click

    box = ecsbox()
    where = sandbox_dir(fleet)
    with translated():
        info = box.status(where)
        if info is None or not info.healthy:
            if not start:
                from orchestrator.cli.app import SANDBOX_NOT_RUNNING
                from orchestrator.errors import UsageError

                raise UsageError(SANDBOX_NOT_RUNNING.replace("snail sandbox up", "snail sandbox up --fleet"))
            for p in pipelines.values():
                forget_sandbox_state(p)  # a new world: what the targets recorded for the old one means nothing here
            info = None
        for t in fleet.targets:
            spec = spec_for(pipelines[t.name])
            if info is not None and info.healthy and spec.key() in info.seeded_for:
                continue
            if not app.quiet:
                what = "starting the sandbox and seeding" if info is None else "seeding the sandbox for"
                click.echo(f"{what} {t.name} ({spec.region}/{spec.cluster}/{spec.service})", err=True)
            info = box.ensure_up(spec, where, port=port or requested_port(), log_processor=LOG_PROCESSOR)
    return info


def attach(target_app: App, info: Any, region: str, endpoint_url: str | None = None) -> None:
    """Point one target's App at the fleet's sandbox (not at a sandbox of its own pipeline's folder), in the
    target's own region (the sandbox serves every region at one endpoint)."""
    from orchestrator.aws.session import AwsContext

    target_app._sandbox_info = info
    ends = info.endpoints()
    target_app._aws = AwsContext(
        region=region,
        endpoint_url=endpoint_url or ends["endpoint_url"],
        credentials=ends["credentials"],
        test_url=ends.get("test_url") if region == ends.get("region") else None,
    )
