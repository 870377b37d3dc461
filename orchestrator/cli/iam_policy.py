"""snail iam-policy: the least-privilege IAM policy this pipeline needs, from the one table in orchestrator/iam.py."""

from __future__ import annotations

import json

import click

from orchestrator.cli.app import App, pass_app
from orchestrator.errors import ExitCode


@click.command("iam-policy")
@click.option(
    "--command",
    "commands",
    multiple=True,
    type=click.Choice(["all", *__import__("orchestrator.iam", fromlist=["ALL_COMMANDS"]).ALL_COMMANDS]),
    help="only what these commands need (repeatable; default: what a CI pipeline runs)",
)
@click.option("--account", default="*", show_default=True, help="AWS account id for the ARNs")
@click.option("--partition", default="aws", show_default=True, help="aws, aws-cn or aws-us-gov")
@pass_app
def command(app: App, commands: tuple[str, ...], account: str, partition: str) -> int:
    """Print the IAM policy (JSON) for run/promote/rollback/plan/status/doctor/... on this pipeline's resources."""
    from orchestrator import iam

    wanted = iam.ALL_COMMANDS if "all" in commands else (commands or iam.CI_COMMANDS)
    report = iam.policy(app.pipeline, wanted, region=app.region, account=account, partition=partition)
    for note in report.notes:
        app.note(note)
    app.emit(report.to_dict(), json.dumps(report.policy, indent=2))
    return ExitCode.OK
