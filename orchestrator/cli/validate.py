"""snail validate: pipeline.yaml + phases/*.yaml are well-formed; every mistake with file:line and key."""

from __future__ import annotations

import click

from orchestrator.cli.app import App, pass_app
from orchestrator.errors import ConfigErrors, ExitCode


@click.command("validate")
@pass_app
def command(app: App) -> int:
    """Check the pipeline and every phase file; exit 2 listing each mistake, nothing touched."""
    try:
        p = app.pipeline
    except ConfigErrors as exc:
        app.emit(
            {
                "valid": False,
                "errors": [{"file": e.path, "line": e.line, "key": e.key, "message": e.message} for e in exc.errors],
            },
            "\n".join(f"error: {e}" for e in exc.errors),
        )
        return ExitCode.USAGE
    app.emit(
        {"valid": True, "file": str(p.path), "phases": p.phase_names()},
        f"ok: {p.path.name} and {len(p.phases)} phase file(s) are valid: {' -> '.join(p.phase_names())}",
    )
    return ExitCode.OK
