"""The command gate's environment: explicit, never the runner's whole environment.

A smoke-test script gets:

1. from the runner, only the names in RUNNER_ALLOWLIST, which a script needs to find programs and behave
   the same everywhere: PATH, HOME, USER, LOGNAME, SHELL, LANG, LANGUAGE, LC_ALL, LC_CTYPE, TZ, TMPDIR, the CA
   bundle settings (SSL_CERT_FILE, SSL_CERT_DIR, REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE) and the proxy settings
   (HTTP_PROXY, HTTPS_PROXY, NO_PROXY, lower case too) — a proxy URL that carries credentials
   (`http://user:pass@proxy`) is dropped;
2. the gate's own `env:` from pipeline.yaml, which may name anything, credentials included
   (`env: {AWS_PROFILE: smoke, API_TOKEN: "${API_TOKEN}"}`): naming it is the explicit opt-in;
3. the SNAIL_* variables describing the rollout (SNAIL_SERVICE, SNAIL_REVISION, SNAIL_PHASE, SNAIL_ENDPOINT(S)…),
   which win over both.

PYTHONPATH, VIRTUAL_ENV and the like are NOT passed: they describe snail's own Python, not the script's; a
gate that needs them names them in `env:`. AWS_* credentials, SNAIL_REGISTRY_PASSWORD and every other runner
variable never reach the script unless `env:` names them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

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
    env.update({str(k): str(v) for k, v in gate_env.items()})
    env.update({str(k): str(v) for k, v in snail_vars.items()})
    return env
