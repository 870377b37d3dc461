"""`snail`: the command group, global options (each with an environment variable) and the one error boundary."""

from __future__ import annotations

import signal
import sys
from typing import Any

import click

from orchestrator.cli.app import App
from orchestrator.cli.boundary import ended_from_error, ended_from_result, report

COMMANDS = {
    "init": "orchestrator.cli.init:command",
    "validate": "orchestrator.cli.validate:command",
    "doctor": "orchestrator.cli.doctor:command",
    "plan": "orchestrator.cli.plan:command",
    "run": "orchestrator.cli.run:command",
    "promote": "orchestrator.cli.promote:command",
    "rollback": "orchestrator.cli.rollback:command",
    "release": "orchestrator.cli.release:command",
    "status": "orchestrator.cli.status:command",
    "history": "orchestrator.cli.history:command",
    "trail": "orchestrator.cli.trail:command",
    "logs": "orchestrator.cli.logs:command",
    "unlock": "orchestrator.cli.unlock:command",
    "state": "orchestrator.cli.state:group",
    "sandbox": "orchestrator.cli.sandbox:group",
    "fleet": "orchestrator.cli.fleet:group",
    "iam-policy": "orchestrator.cli.iam_policy:command",
    "completion": "orchestrator.cli.completion:command",
}
HELP = {
    "init": "Start a pipeline here: scaffold one, or write it from a live service.",
    "validate": "Check pipeline.yaml and phases/*.yaml (file:line errors).",
    "doctor": "Preflight: catch the field log's incidents before a rollout.",
    "plan": "Show what run would do: images, task-definition diff, update, gates.",
    "run": "Run the pipeline; roll back automatically on any failure.",
    "promote": "Run exactly the next phase (or the one named).",
    "rollback": "Roll back to a good revision, verified by its gates.",
    "release": "Lift the hold a manual rollback put on a revision or phase.",
    "status": "Current revision and phase, last good per phase, lock holder.",
    "history": "Runs, newest first.",
    "trail": "The journal as the field log (Markdown), JSON or an HTML page.",
    "logs": "The containers' CloudWatch Logs (a phase, a revision, a run; --follow).",
    "unlock": "Remove a stuck lock (recorded).",
    "state": "Sync the verdict marks from AWS; create the DynamoDB state table; show where state lives.",
    "sandbox": "ECS in a box: the embedded default, no AWS account needed.",
    "fleet": "One release in waves across targets (fleet.yaml): validate, plan, run, approve, stop, status, trail.",
    "iam-policy": "The least-privilege IAM policy this pipeline needs (JSON).",
    "completion": "Shell completion script: bash, zsh or fish.",
}


class LazyGroup(click.Group):
    """Commands are imported only when used, so `snail --help` does not import boto3 or docker."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        import importlib

        mod, attr = COMMANDS[name].split(":")
        return getattr(importlib.import_module(mod), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(n, HELP[n]) for n in COMMANDS])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option(
    "-f",
    "--file",
    default=None,
    envvar="SNAIL_FILE",
    help="pipeline.yaml to use (default: the nearest pipeline.yaml here or in a folder above) [SNAIL_FILE]",
)
@click.option("--region", envvar="SNAIL_REGION", help="AWS region (default: service.region) [SNAIL_REGION]")
@click.option("--profile", envvar="SNAIL_PROFILE", help="AWS profile [SNAIL_PROFILE]")
@click.option(
    "--endpoint-url", envvar="SNAIL_ENDPOINT_URL", help="AWS endpoint, e.g. a moto server [SNAIL_ENDPOINT_URL]"
)
@click.option(
    "--sandbox/--no-sandbox", default=False, envvar="SNAIL_SANDBOX", help="use the local sandbox [SNAIL_SANDBOX]"
)
@click.option(
    "--output",
    type=click.Choice(["text", "json"]),
    default="text",
    envvar="SNAIL_OUTPUT",
    help="result format [SNAIL_OUTPUT]",
)
@click.option(
    "--log-format",
    type=click.Choice(["console", "json"]),
    default="console",
    envvar="SNAIL_LOG_FORMAT",
    help="log format on stderr [SNAIL_LOG_FORMAT]",
)
@click.option("-v", "--verbose", count=True, envvar="SNAIL_VERBOSE", help="more logs (-vv for debug) [SNAIL_VERBOSE]")
@click.option(
    "-q",
    "--quiet",
    is_flag=True,
    envvar="SNAIL_QUIET",
    help="no progress; a no-op prints nothing (cron) [SNAIL_QUIET]",
)
@click.version_option(package_name="snail-trail", prog_name="snail")
@click.pass_context
def cli(ctx: click.Context, **opts: Any) -> None:
    """🐌 snail-trail: progressive delivery for Amazon ECS, with a trail of what happened.

    Exit codes: 0 done, 1 rolled back, 2 usage/config error, 3 human needed,
    4 locked, 5 preflight failed, 130 interrupted."""
    from orchestrator.log import configure

    configure(opts["log_format"], opts["verbose"])
    if opts["quiet"]:
        import logging

        import structlog

        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    app = ctx.ensure_object(App)
    for key, value in opts.items():
        setattr(app, key, value)
    app.command = ctx.invoked_subcommand
    App.current = app


def _on_term(signum: int, frame: Any) -> None:
    # SIGTERM behaves like Ctrl-C: the engine rolls back what is in flight, then exits 130.
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI and turn every result and error into one report and its exit code, here only."""
    signal.signal(signal.SIGTERM, _on_term)
    from orchestrator import redact

    # Every line to the terminal (results, progress, logs, tracebacks) passes the redaction layer; the runner's
    # credentials are known from the start.
    redact.wrap_std_streams()
    redact.learn_environment()
    args = list(sys.argv[1:] if argv is None else argv)
    App.current = None
    try:
        rv = cli.main(args=args, prog_name="snail", standalone_mode=False)
        ended = ended_from_result(App.current, rv if isinstance(rv, int) else 0)
    except click.exceptions.Exit as exc:  # --help, --version, completion: click printed what was asked
        sys.exit(exc.exit_code)
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - the one boundary: every error has a class and a code
        ended = ended_from_error(exc)
    sys.exit(report(ended, App.current, args))
