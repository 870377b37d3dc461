"""The command gate's environment: explicit, never the runner's whole environment.

A smoke-test script gets:

1. from the runner, only the names in RUNNER_ALLOWLIST, which a script needs to find programs and behave
   the same everywhere: PATH, HOME, USER, LOGNAME, SHELL, LANG, LANGUAGE, LC_ALL, LC_CTYPE, TZ, TMPDIR, the CA
   bundle settings (SSL_CERT_FILE, SSL_CERT_DIR, REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE) and the proxy settings
   (HTTP_PROXY, HTTPS_PROXY, NO_PROXY, lower case too) — a proxy URL that carries credentials
   (`http://user:pass@proxy`) is dropped;
2. the gate's own `env:` from pipeline.yaml, which may name anything, credentials included
   (`env: {AWS_PROFILE: smoke, API_TOKEN: "${API_TOKEN}"}`): naming it is the explicit opt-in;
3. the SNAIL_* variables describing the rollout (RUN_TIME_VARIABLES: SNAIL_CLUSTER, SNAIL_SERVICE, SNAIL_REVISION,
   SNAIL_PHASE, SNAIL_ENDPOINT, SNAIL_ENDPOINTS), which win over both.

`${SNAIL_ENDPOINT}` and the rest, written in the gate's `run:` (argv form), `env:` values or `cwd:`, are expanded
here, when the gate runs, against that environment (the loader kept them as written: at load time the endpoint is
not known). A shell line reads them from its environment itself.

PYTHONPATH, VIRTUAL_ENV and the like are NOT passed: they describe snail's own Python, not the script's; a
gate that needs them names them in `env:`. AWS_* credentials, SNAIL_REGISTRY_PASSWORD and every other runner
variable never reach the script unless `env:` names them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from orchestrator.config.interpolation import RUN_TIME_VARIABLES, expand

__all__ = ["RUN_TIME_VARIABLES", "at_run_time", "command_argv", "command_environment"]

RUNNER_ALLOWLIST = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
)
_PROXIES = frozenset({"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"})
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"


def command_environment(
    gate_env: Mapping[str, str],
    snail_vars: Mapping[str, str],
    runner_env: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment a command gate runs with: the allowlisted runner variables, the gate's `env:`, then the
    SNAIL_* variables (see the module docstring for the list and why)."""
    runner = os.environ if runner_env is None else runner_env
    env: dict[str, str] = {}
    for name in RUNNER_ALLOWLIST:
        value = runner.get(name)
        if value is None:
            continue
        if name in _PROXIES and "@" in value.split("://", 1)[-1].split("/", 1)[0]:
            continue  # a proxy URL with user:pass@ is a credential
        env[name] = value
    env.setdefault("PATH", DEFAULT_PATH)
    known = {**env, **{str(k): str(v) for k, v in snail_vars.items()}}
    env.update({str(k): at_run_time(str(v), known) for k, v in gate_env.items()})
    env.update({str(k): str(v) for k, v in snail_vars.items()})
    return env


def at_run_time(text: str, env: Mapping[str, str]) -> str:
    """The second pass over a command gate's value: the ${SNAIL_*} references the loader kept, expanded from the
    gate's environment (unset: empty, as a shell does), and `$${` made a literal `${`."""
    try:
        return expand(text, env)[0]
    except ValueError:  # a value recorded before the loader refused malformed references: as written, as then
        return text


def command_argv(run: tuple[str, ...] | str, env: Mapping[str, str]) -> list[str]:
    """What to execute: an argv list with its ${SNAIL_*} expanded (no shell), or a shell line as written (the
    shell expands them from `env`)."""
    if isinstance(run, str):
        return ["/bin/sh", "-c", run]
    return [at_run_time(a, env) for a in run]
