"""snail completion bash|zsh|fish: the shell completion script (click's), completing commands, options,
phase names (--from/--to/--to-phase/--approve, promote) and run ids (--run)."""

from __future__ import annotations

import click

from orchestrator.cli.app import App
from orchestrator.errors import ExitCode

INSTALL = {
    "bash": 'eval "$(snail completion bash)"            # in ~/.bashrc',
    "zsh": 'eval "$(snail completion zsh)"             # in ~/.zshrc (after compinit)',
    "fish": "snail completion fish > ~/.config/fish/completions/snail.fish",
}


@click.command("completion")
@click.argument("shell", type=click.Choice(sorted(INSTALL)))
@click.pass_context
def command(ctx: click.Context, shell: str) -> int:
    """Print the completion script for SHELL; install it with the line shown by --help."""
    from click.shell_completion import get_completion_class

    cls = get_completion_class(shell)
    assert cls is not None  # the Choice above only lets through shells click supports
    script = cls(ctx.find_root().command, {}, "snail", "_SNAIL_COMPLETE").source()
    app = ctx.find_object(App)
    if app is None:  # called outside `snail` (a test's CliRunner on this command alone)
        click.echo(script)
    else:
        app.emit({"shell": shell, "script": script, "install": INSTALL[shell]}, script)
    return ExitCode.OK


command.help = (command.help or "") + "\n\n" + "\n".join(f"  {s}: {line}" for s, line in INSTALL.items())
