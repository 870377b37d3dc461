"""snail iam-policy: the least-privilege IAM policy this pipeline needs, from the one table in orchestrator/iam.py."""

from __future__ import annotations

import json
import os

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
@click.option(
    "--fleet",
    "fleet_file",
    is_flag=False,
    flag_value="",
    default=None,
    metavar="[FILE]",
    help="what a fleet run needs, per account (FILE, or the nearest fleet.yaml, or SNAIL_FLEET)",
)
@pass_app
def command(app: App, commands: tuple[str, ...], account: str, partition: str, fleet_file: str | None) -> int:
    """Print the IAM policy (JSON) for run/promote/rollback/plan/status/doctor/... on this pipeline's resources."""
    from orchestrator import iam

    if fleet_file is not None:
        return _fleet(app, fleet_file or os.environ.get("SNAIL_FLEET") or None, account, partition)

    wanted = iam.ALL_COMMANDS if "all" in commands else (commands or iam.CI_COMMANDS)
    report = iam.policy(app.pipeline, wanted, region=app.region, account=account, partition=partition)
    for note in report.notes:
        app.note(note)
    app.emit(report.to_dict(), json.dumps(report.policy, indent=2))
    return ExitCode.OK


def _fleet(app: App, fleet_file: str | None, account: str, partition: str) -> int:
    """Per set of credentials a fleet run uses (the runner's, a profile, a target's role_arn): its policy."""
    from orchestrator import iam
    from orchestrator.fleet.loader import load_fleet, validate_fleet

    fleet = load_fleet(fleet_file)
    groups, notes = iam.fleet_policies(fleet, validate_fleet(fleet), account=account, partition=partition)
    for note in notes:
        app.note(note)
    text = []
    for g in groups:
        who = "the fleet runner's own credentials" if g.credentials == "runner" else g.credentials
        text.append(f"# account {g.account} ({who}): {', '.join(g.targets) or 'the fleet itself'}")
        text.append(json.dumps(g.policy, indent=2))
    app.emit({"accounts": [g.to_dict() for g in groups], "notes": notes}, "\n".join(text))
    return ExitCode.OK
