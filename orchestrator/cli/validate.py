"""snail validate: pipeline.yaml + phases/*.yaml are well-formed; every mistake with file:line and key."""

from __future__ import annotations

import click

from orchestrator.build.buildkit import build_arg_warnings
from orchestrator.cli.app import App, pass_app
from orchestrator.config.gates import with_rollout
from orchestrator.config.names import unpinned_warning
from orchestrator.config.strategy import hook_timeout_warnings
from orchestrator.config.yamlio import neutralise
from orchestrator.errors import ConfigError, ConfigErrors, ExitCode


@click.command("validate")
@pass_app
def command(app: App) -> int:
    """Check the pipeline and every phase file offline; exit 2 listing each mistake, nothing touched."""
    try:
        p = app.pipeline
    except ConfigErrors as exc:
        return _invalid(app, exc.errors)
    except Exception as exc:
        # validate survives any input: a checker we got wrong still gives a clean "invalid" and exit 2 (nothing
        # was changed), never a traceback; the message asks for a bug report
        where = app.file or "pipeline.yaml"
        what = f"cannot check this file ({type(exc).__name__}: {exc}); this is a bug in snail, please report it"
        return _invalid(app, [ConfigError(where, None, what)])
    warnings = [  # valid, but a person should know (gates slower than a PAUSE hook's timeout)
        f"phase {ph.name}: {w}" for ph in p.phases for w in hook_timeout_warnings(ph.strategy, with_rollout(ph.gates))
    ]
    warnings += [  # a secret build arg ends up in the image's history
        f"phase {ph.name}: {w}" for ph in p.phases if ph.image.context for w in build_arg_warnings(ph.image.build_args)
    ]
    warnings += [f"phase {ph.name}: {w}" for ph in p.phases if (w := unpinned_warning(ph.image.ref))]  # a tag moves
    app.emit(
        {"valid": True, "file": str(p.path), "phases": p.phase_names(), "warnings": warnings},
        f"ok: {p.path.name} and {len(p.phases)} phase file(s) are valid: {' -> '.join(p.phase_names())}"
        + "".join(f"\nwarning: {neutralise(w)}" for w in warnings),
    )
    return ExitCode.OK


def _invalid(app: App, errors: list[ConfigError]) -> int:
    """Report every mistake, one `file:line: key: message` line each (terminal escapes neutralised)."""
    app.emit(
        {
            "valid": False,
            "errors": [
                {
                    "file": neutralise(e.path),
                    "line": e.line,
                    "key": neutralise(e.key) if e.key else None,
                    "message": neutralise(e.message),
                }
                for e in errors
            ],
        },
        "\n".join(f"error: {neutralise(str(e))}" for e in errors),
    )
    return ExitCode.USAGE
