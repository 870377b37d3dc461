"""Secrets never leave the process: the one redaction layer every output path goes through.

Terminal (main() wraps stdout/stderr), JSON logs (a structlog processor), the trail (rendered from a masked
store, and masked again when written with -o), the state store (orchestrator.state.redacting wraps any store)
and notifications all call `mask_text` / `mask_data` here. Three kinds of rule:

- known secret VALUES, learned at start-up (`learn`, `learn_environment`, `learn_pipeline`): runner credentials,
  the registry password, values of secret-like names in the task environment, build args and gate env,
  `secrets[].valueFrom`, URL credentials found in pipeline.yaml. One compiled alternation, rebuilt on learn.
- NAME rules: a value whose name looks like a credential (STRIPE_KEY, MYSQL_PWD, JWT_SIGNING_KEY, SENTRY_DSN…),
  in data (`{"name": n, "value": v}`, `{n: v}`) and in text (`NAME=value`, `"password": "…"`).
- SHAPE rules: URL userinfo and credential query parameters, DSNs, bearer tokens, Stripe/GitHub/Slack tokens,
  AWS key ids and secret keys after their name, JWTs, PEM private keys, secret ARNs.

Values shorter than MIN_KNOWN characters are not learned (they would mask ordinary words); name and shape rules
still catch them in context.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

MASK = "****"
MIN_KNOWN = 8

# Runner credentials that are secret whatever their shape.
RUNNER_SECRETS = (
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "SNAIL_REGISTRY_PASSWORD",
)
# Names that look secret but hold nothing secret, and whose values (paths) are everywhere in our output.
_NOT_SECRET_NAMES = frozenset({"PWD", "OLDPWD", "SSH_AUTH_SOCK", "GPG_AGENT_INFO"})

_SECRET_WORDS = (
    r"passw(?:or)?d|passphrase|pass|pwd|secrets?|token|credentials?|api[_-]?key|apikey|private[_-]?key|"
    r"access[_-]?key|signing[_-]?key|key|dsn|auth|cookie"
)
# A name is secret-like when one of its _/-/. separated words (or a compound like api_key) is a secret word.
_SECRET_NAME = re.compile(rf"(?:^|[_.\-])(?:{_SECRET_WORDS})(?:$|[_.\-])", re.I)
# camelCase names from JSON/AWS (secretAccessKey, authToken, clientSecret).
_SECRET_CAMEL = re.compile(r"(?:Secret|Token|Password|Passwd|ApiKey|PrivateKey|AccessKey|Credentials?)(?:[A-Z]|$)")
# Keys inside data that are always secret whatever the name rule says.
_ALWAYS_SECRET_KEYS = frozenset({"valueFrom", "credentialsParameter", "authorizationToken", "password"})


def looks_secret_name(name: str) -> bool:
    """True when a variable or field name looks like it holds a credential (STRIPE_KEY, MYSQL_PWD, apiKey)."""
    if not name or name in _NOT_SECRET_NAMES:
        return False
    return bool(_SECRET_NAME.search(name) or _SECRET_CAMEL.search(name) or name in _ALWAYS_SECRET_KEYS)


# ---- shape rules on free text ------------------------------------------------------------------------------------

# A rule runs only when one of its triggers is in the text (checked on the lower-cased text when `lower`), so
# most lines cost a few substring tests. Patterns start with a literal where they can: Python's re then skips
# ahead with a fast search instead of trying every position.
_Rule = tuple[tuple[str, ...], bool, "re.Pattern[str]", str]  # repl: a template or a _CALLBACKS name
_QUERY_NAMES = (
    r"api[_-]?key|apikey|access[_-]?token|refresh[_-]?token|id[_-]?token|auth[_-]?token|token|signature|sig|"
    r"password|passwd|pwd|secret|client[_-]?secret|key|private[_-]?key|x-amz-signature|x-amz-credential|"
    r"x-amz-security-token"
)
_ENV_WORDS = r"PASSWORD|PASSWD|PASS|PWD|PASSPHRASE|SECRET|SECRETS|TOKEN|APIKEY|KEY|DSN|CREDENTIALS?|AUTH|COOKIE"
_KV_NAMES = (
    r"password|passwd|pwd|secret|client[_-]?secret|api[_-]?key|apikey|access[_-]?token|refresh[_-]?token|"
    r"auth[_-]?token|private[_-]?key|secret[_-]?key|signing[_-]?key|aws_secret_access_key|secret_?access_?key|"
    r"aws_session_token|session_?token|security_?token"
)
# A flag whose name holds a secret word: --db-password, --api-key, --auth-token, --client-secret, --dsn.
_FLAG_NAME = (
    r"(?:[a-z0-9]+[_\-])*(?:password|passwd|pwd|passphrase|secret|token|api[_\-]?key|apikey|private[_\-]?key|"
    r"access[_\-]?key|secret[_\-]?key|dsn|credentials?)(?:[_\-][a-z0-9]+)*"
)
_SECRET_FLAG = re.compile(rf"(?i)^--?{_FLAG_NAME}$")
_KV_TRIGGERS = (
    "passw",
    "pwd",
    "secret",
    "api_key",
    "apikey",
    "api-key",
    "token",
    "private_key",
    "private-key",
    "signing",
)


def _caseless(pattern: str) -> str:
    """`token` -> `[Tt][Oo][Kk][Ee][Nn]`: case-insensitive without re.I, which stops re from scanning ahead for
    the possible first characters (measured: 87 ms -> a few ms per MB). Letters inside [...] are left alone."""
    out, in_class = [], False
    for c in pattern:
        if c == "[":
            in_class = True
        elif c == "]":
            in_class = False
        out.append(f"[{c.upper()}{c.lower()}]" if c.isalpha() and not in_class else c)
    return "".join(out)


_RULES: list[_Rule] = [
    # PEM private keys, whole block (to the end of the text when it was cut).
    (
        ("private key",),
        True,
        re.compile(r"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----.*?(?:-----END \1PRIVATE KEY-----|(?=\\*[\"'])|\Z)", re.S),
        f"-----BEGIN PRIVATE KEY-----{MASK}-----END PRIVATE KEY-----",
    ),
    # scheme://user:pass@host and scheme://token@host (DSNs, Sentry DSN keys, registry and gate URLs).
    # A password may hold '#' or '?' (postgres://u:p#ss@h/db): the userinfo ends at '@', only '/' ends the authority.
    (("://",), False, re.compile(r"://[^\\\s/@'\"<>`]+@(?=[^\\\s@/])"), f"://{MASK}@"),
    # user:pass@host without a scheme (a registry url such as u:p@registry.example.com/repo).
    (("@",), False, re.compile(r"(?<![\w/:.\-])([\w.\-]+):[^\\\s/@:'\"<>`]+@(?=[\w\[])"), rf"\1:{MASK}@"),
    # credential-like query parameters.
    (
        ("key=", "token=", "sig=", "signature=", "password=", "passwd=", "pwd=", "secret=", "x-amz-"),
        True,
        re.compile(rf"(?i)([?&;](?:{_QUERY_NAMES})=)[^&#;\\\s'\"<>`]+"),
        rf"\1{MASK}",
    ),
    # Authorization headers and bearer tokens.
    (
        ("authorization",),
        True,
        re.compile(
            r"(?i)(\bauthorization(?:\\*[\"'])?\s*[:=]\s*(?:\\*[\"'])?)(?:(?:bearer|basic|token|digest)\s+)?[^\\\s\"',;`]+"
        ),
        rf"\1{MASK}",
    ),
    (("bearer",), True, re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/\-]{8,}=*"), rf"\1{MASK}"),
    # NAME=value where NAME is an environment-style secret name (MYSQL_PWD=…, STRIPE_KEY=…, SENTRY_DSN=…).
    (
        ("PASS", "PWD", "SECRET", "TOKEN", "KEY", "DSN", "CREDENTIAL", "AUTH", "COOKIE"),
        False,
        re.compile(rf"(?:{_ENV_WORDS})(?:_[A-Z0-9]+)*=(?:\\*[\"'])?(?![\s\\\"']|{re.escape(MASK)})[^\\\s\"'`]+"),
        "env",
    ),
    # "password": "…", password=…, secret_key: … (JSON, YAML, libpq DSNs, INI files).
    (
        _KV_TRIGGERS,
        True,
        re.compile(
            rf"(?:{_caseless(_KV_NAMES)})(?:\\*[\"'])?\s*[:=]\s*(?:\\*[\"'])?(?![\s\\\"']|{re.escape(MASK)})"
            r"[^\\\s\"',;&}\]`]+"
        ),
        "kv",
    ),
    # Azure connection strings: AccountKey=…; SharedAccessKey=…; SharedAccessSignature=… (storage, Service Bus).
    (
        ("accountkey=", "sharedaccesskey=", "sharedaccesssignature="),
        True,
        re.compile(r"(?i)\b((?:AccountKey|SharedAccessKey|SharedAccessSignature)=)[^;\\\s\"'`<>]+"),
        rf"\1{MASK}",
    ),
    # A command-line flag that names a secret and its value: `--db-password hunter2`, `--api-token=…`, and the
    # same argv as JSON (`"--db-password", "hunter2"`), as task commands and scripts are shown.
    (
        ("--",),
        False,
        re.compile(
            rf"(?<![\w\-])(--?{_caseless(_FLAG_NAME)})(=|[ \t]+|(?:\\*[\"'])\s*,\s*(?:\\*[\"']))"
            rf"(?!-|{re.escape(MASK)})[^\\\s\"',;`]+"
        ),
        rf"\1\2{MASK}",
    ),
    # Token shapes: Stripe secret/restricted keys and webhook secrets, GitHub, Slack, OpenAI, Google, npm, AWS.
    (
        ("sk_live_", "sk_test_", "rk_live_", "rk_test_"),
        False,
        re.compile(r"[sr]k_(?:live|test)_(?<![A-Za-z0-9][sr]k_live_)(?<![A-Za-z0-9][sr]k_test_)[A-Za-z0-9]{8,}"),
        MASK,
    ),
    (("whsec_",), False, re.compile(r"whsec_[A-Za-z0-9]{16,}"), MASK),
    (
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"),
        False,
        re.compile(r"gh[pousr]_(?<![A-Za-z0-9]gh[pousr]_)[A-Za-z0-9]{20,}"),
        MASK,
    ),
    (("github_pat_",), False, re.compile(r"github_pat_[A-Za-z0-9_]{20,}"), MASK),
    (("xox",), False, re.compile(r"xox[abposr]-[A-Za-z0-9\-]{10,}"), MASK),
    (
        ("hooks.slack.com",),
        False,
        re.compile(r"(hooks\.slack\.com/(?:services|workflows|triggers)/)[^\\\s'\"<>`]+"),
        rf"\1{MASK}",
    ),
    (("sk-",), False, re.compile(r"sk-(?<![A-Za-z0-9]sk-)(?:proj-)?[A-Za-z0-9_\-]{20,}"), MASK),
    (("AIza",), False, re.compile(r"AIza[0-9A-Za-z_\-]{35}"), MASK),
    (("npm_",), False, re.compile(r"npm_(?<![A-Za-z0-9]npm_)[A-Za-z0-9]{36}"), MASK),
    (("AKIA", "ASIA"), False, re.compile(r"A[KS]IA(?<![A-Z0-9]A[KS]IA)[A-Z0-9]{16}(?![A-Z0-9])"), MASK),
    # JWTs (header.payload.signature, both base64url JSON objects).
    (("eyJ",), False, re.compile(r"eyJ[A-Za-z0-9_\-]{5,}\.eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]*"), MASK),
    # secrets[].valueFrom: Secrets Manager and SSM parameter ARNs are never printed.
    (
        (":secretsmanager:", ":ssm:"),
        False,
        re.compile(
            r"arn:aws[a-z\-]*:(?:secretsmanager|ssm):[^\\\s'\"`,;)\]}]*(?::secret:|:parameter/)[^\\\s'\"`,;)\]}]+"
        ),
        MASK,
    ),
]


def _value_masked(m: re.Match[str], word_before_ok: bool) -> str:
    """Keep the name and separator of a NAME=value match, mask the value; leave it when the name is only the
    tail of a longer word (MONKEY=…, tokens_total: …)."""
    start = m.start()
    if start:
        before = m.string[start - 1]
        if before.isalnum() or (before == "_" and not word_before_ok) or before == "-":
            return m.group(0)
    body = m.group(0)
    i = min(j for j in (body.find("="), body.find(":"), len(body)) if j >= 0) + 1
    while i < len(body) and body[i] in " \t\"'\\":
        i += 1
    return body[:i] + MASK


_CALLBACKS: dict[str, Callable[[re.Match[str]], str]] = {
    "env": lambda m: _value_masked(m, word_before_ok=True),  # MYSQL_PWD: PWD after "_" is a secret word
    "kv": lambda m: _value_masked(m, word_before_ok=False),
}


def _lowercase_twin(rx: re.Pattern[str]) -> re.Pattern[str] | None:
    """The pattern that finds the name=value rule's matches in lower-cased text with plain lower-case names:
    re scans that fast, where case-insensitive names make it try ~18 alternatives at a third of all positions.
    (The other case-insensitive rules start with one word; re.I costs them little, a Python loop more.)"""
    if _caseless(_KV_NAMES) in rx.pattern:
        return re.compile(rx.pattern.replace(_caseless(_KV_NAMES), _KV_NAMES))
    return None


_FINDERS: dict[str, re.Pattern[str]] = {
    rx.pattern: twin for _t, lower, rx, _r in _RULES if lower and (twin := _lowercase_twin(rx)) is not None
}


class Redactor:
    """Known secret values plus the name and shape rules.

    Known values are kept longest first; a text is masked by testing each for presence (`in` is a fast
    substring search) and replacing only those present. Measured on 1 MB with 200 known values this is about
    10x faster than one compiled alternation, which Python's re tries at every position."""

    def __init__(self) -> None:
        self._known: set[str] = set()
        self._ordered: tuple[str, ...] = ()
        self._lock = threading.Lock()

    def learn(self, values: Iterable[Any]) -> int:
        """Register secret values to mask wherever they appear; returns how many were new."""
        new = set()
        for v in values:
            if not isinstance(v, str):
                continue
            v = v.strip()
            if len(v) < MIN_KNOWN or v == MASK:
                continue
            new.add(v)
            # The same value as it appears inside JSON output and URLs.
            escaped = json.dumps(v)[1:-1]
            if escaped != v:
                new.add(escaped)
        with self._lock:
            added = new - self._known
            if added:
                self._known |= added
                # Longest first: a value that contains another is masked whole, never half.
                self._ordered = tuple(sorted(self._known, key=len, reverse=True))
        return len(added)

    def forget(self) -> None:
        """Drop every learned value (tests)."""
        with self._lock:
            self._known.clear()
            self._ordered = ()

    @property
    def known(self) -> frozenset[str]:
        """The learned values (for tests and diagnostics; never print them)."""
        return frozenset(self._known)

    def mask_text(self, text: str, extra: Iterable[str] = ()) -> str:
        """Mask learned values, `extra` values, NAME=value pairs and token shapes in free text."""
        if not text:
            return text
        for s in extra:
            if s and len(s) >= 4:
                text = text.replace(s, MASK)
        for value in self._ordered:
            if value in text:
                text = text.replace(value, MASK)
        lowered = text.lower()
        for triggers, lower, rx, repl in _RULES:
            haystack = lowered if lower else text
            if any(t in haystack for t in triggers):
                finder = _FINDERS.get(rx.pattern)
                if finder is not None and len(lowered) == len(text):
                    text = _sub_found(text, lowered, finder, rx, repl)
                else:
                    text = rx.sub(_CALLBACKS.get(repl, repl), text)
                if lower:
                    lowered = text.lower()
        return text


def _sub_found(text: str, lowered: str, finder: re.Pattern[str], rx: re.Pattern[str], repl: str) -> str:
    """rx.sub(repl, text), found fast: `finder` (rx's lower-case twin, no re.I) scans the lower-cased text, and
    rx itself only confirms and expands at each hit (same result; 1 MB dense with secrets: 334 ms -> 156 ms, and
    a text with a trigger word but few matches costs a fast scan instead of a slow one)."""
    callback = _CALLBACKS.get(repl)
    out: list[str] = []
    last = 0
    for hit in finder.finditer(lowered):
        if hit.start() < last:
            continue
        m = rx.match(text, hit.start())
        if m is None or m.end() == m.start():
            continue
        out.append(text[last : m.start()])
        out.append(callback(m) if callback else m.expand(repl))
        last = m.end()
    if not out:
        return text
    out.append(text[last:])
    return "".join(out)


_REDACTOR = Redactor()


def learn(values: Iterable[Any]) -> int:
    """Register known secret values (runner credentials, secret env values, build args, valueFrom ARNs)."""
    return _REDACTOR.learn(values)


def forget() -> None:
    """Forget every learned value (for tests)."""
    _REDACTOR.forget()


def known() -> frozenset[str]:
    """The learned secret values (tests only)."""
    return _REDACTOR.known


def mask_text(text: str, secrets: Iterable[str] = ()) -> str:
    """Replace known secret values, credential names' values and token shapes in free text."""
    if not isinstance(text, str):
        text = str(text)
    return _REDACTOR.mask_text(text, secrets)


def mask_data(data: Any, name: str = "") -> Any:
    """A copy of JSON-like data with secrets masked: by key name, by {name, value} pairs, and in every string."""
    if isinstance(data, str):
        if name and looks_secret_name(name) and data:
            return MASK
        return mask_text(data)
    if isinstance(data, Mapping):
        pair_name = data.get("name") if isinstance(data.get("name"), str) else None
        out: dict[Any, Any] = {}
        for k, v in data.items():
            key = str(k)
            if pair_name is not None and key == "value" and looks_secret_name(pair_name):
                out[k] = MASK if v else v
            elif looks_secret_name(key) and isinstance(v, (Mapping, list, tuple)):
                out[k] = _mask_all(v)
            else:
                out[k] = mask_data(v, key)
        return out
    if isinstance(data, (list, tuple)):
        # an argv (a task's command, a gate's run): the argument after `--db-password` is the secret
        masked = [
            MASK if i and v and isinstance(v, str) and is_secret_flag(data[i - 1]) else mask_data(v, name)
            for i, v in enumerate(data)
        ]
        return masked if isinstance(data, list) else tuple(masked)
    return data


def is_secret_flag(arg: Any) -> bool:
    """True for a command-line flag that names a secret and takes the next argument: --db-password, --api-key."""
    return isinstance(arg, str) and bool(_SECRET_FLAG.match(arg))


def flag_secrets(argv: Iterable[Any]) -> list[str]:
    """The values an argv gives secret flags: `--db-password VALUE` and `--db-password=VALUE`."""
    out: list[str] = []
    prev: Any = None
    for arg in argv:
        if isinstance(arg, str):
            if is_secret_flag(prev):
                out.append(arg)
            flag, eq, value = arg.partition("=")
            if eq and value and is_secret_flag(flag):
                out.append(value)
        prev = arg
    return out


def _mask_all(data: Any) -> Any:
    """Under a secret-named key (secrets, credentials, auth): every string value is masked, names are kept."""
    if isinstance(data, str):
        return MASK if data else data
    if isinstance(data, Mapping):
        return {k: (v if k == "name" else _mask_all(v)) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_mask_all(v) for v in data]
    return data


def excerpt(text: str | bytes, limit: int = 300, tail: bool = False) -> str:
    """Evidence text (an HTTP body, command output): masked first, then cut to `limit` characters — the head,
    or with `tail` the end (a script's last lines say why it failed)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    # Mask a little past the cut, so a secret straddling it is masked whole rather than half shown.
    window = text[-(limit + 4096) :] if tail else text[: limit + 4096]
    masked = mask_text(window)
    if len(masked) <= limit and len(window) == len(text):
        return masked
    return "…" + masked[-limit:].lstrip() if tail else masked[:limit].rstrip() + "…"


def restore(masked: Any, candidates: Iterable[Any]) -> Any:
    """The candidate whose masked form equals `masked` (e.g. a recorded gate spec matched to today's config, so
    a rollback is verified with real credentials); `masked` itself when none matches."""
    for c in candidates:
        if mask_data(c) == masked:
            return c
    return masked


# ---- learning --------------------------------------------------------------------------------------------------


def url_credentials(value: str) -> list[str]:
    """The secret parts of a URL-like string: userinfo (password, or a lone token) and credential query values."""
    out: list[str] = []
    hashed = re.match(r"[A-Za-z][A-Za-z0-9+.\-]*://([^/\s@]*[#?][^/\s@]*)@[^\s@/]", value)
    if hashed:  # a password with '#' or '?' (postgres://u:p#ss@h/db): urlsplit would cut the netloc there
        user, sep, password = hashed.group(1).partition(":")
        out += [password, unquote(password), hashed.group(1)] if sep else [user, unquote(user)]
    elif "@" in value:
        candidate = value if "://" in value else "//" + value
        try:
            parts = urlsplit(candidate)
        except ValueError:
            parts = None
        if parts is not None and parts.netloc and "@" in parts.netloc:
            userinfo = parts.netloc.rsplit("@", 1)[0]
            user, sep, password = userinfo.partition(":")
            if sep:
                out += [password, unquote(password), userinfo]
            elif "://" in value:  # https://TOKEN@host: a lone userinfo is a token (Sentry DSN keys)
                out += [user, unquote(user)]
    if "?" in value:
        query = value.split("?", 1)[1].split("#", 1)[0]
        try:
            pairs = parse_qsl(query, keep_blank_values=False)
        except ValueError:
            pairs = []
        qnames = re.compile(rf"(?i)^(?:{_QUERY_NAMES})$")
        for k, v in pairs:
            if qnames.match(k):
                out.append(v)
                raw = re.search(rf"[?&;]{re.escape(k)}=([^&#\s]+)", value)
                if raw:
                    out.append(raw.group(1))
    out += _AZURE_KEY.findall(value)
    return [s for s in out if s]


_AZURE_KEY = re.compile(r"(?i)\b(?:AccountKey|SharedAccessKey|SharedAccessSignature)=([^;\s\"'`<>]+)")


def looks_secret(name: str, value: Any = "") -> bool:
    """True when an environment variable's name or value looks like a credential."""
    text = str(value or "")
    return looks_secret_name(name or "") or (bool(text) and mask_text(text) != text)


def secret_values(name: str, value: Any) -> list[str]:
    """What to learn from one named setting: the whole value when the name looks secret, else its URL credentials."""
    if not isinstance(value, str) or not value:
        return []
    if looks_secret_name(name):
        return [value, *url_credentials(value)]
    return url_credentials(value)


def learn_environment(env: Mapping[str, str] | None = None) -> int:
    """Learn the runner's credentials: AWS secret keys, session tokens, the registry password, secret-named vars."""
    env = os.environ if env is None else env
    values: list[str] = []
    for k, v in env.items():
        if k in RUNNER_SECRETS:
            values.append(v)
        else:
            values += secret_values(k, v)
    return learn(values)


def learn_pipeline(pipeline: Any) -> int:
    """Learn every secret a loaded pipeline carries: secret-named env/build args/gate env values, `secrets`
    valueFrom, and credentials inside any URL (gates, registry.url, endpoint, notify webhooks)."""
    values: list[str] = []
    _walk(pipeline, "", False, values, 0)
    return learn(values)


def _walk(obj: Any, name: str, secret_parent: bool, out: list[str], depth: int) -> None:
    if depth > 40:
        return
    if isinstance(obj, str):
        if secret_parent:
            out.append(obj)
        out.extend(secret_values(name, obj))
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            _walk(getattr(obj, f.name, None), f.name, secret_parent, out, depth + 1)
    elif isinstance(obj, Mapping):
        under_secret = secret_parent or looks_secret_name(name)
        for k, v in obj.items():
            _walk(v, str(k), under_secret, out, depth + 1)
    elif isinstance(obj, (list, tuple, set, frozenset)):
        if isinstance(obj, (list, tuple)):
            out.extend(flag_secrets(obj))
        for v in obj:
            _walk(v, name, secret_parent, out, depth + 1)


# ---- task definitions ---------------------------------------------------------------------------------------------


def learn_taskdef(definition: Mapping[str, Any]) -> int:
    """Learn a task definition's secrets (a template's or a described revision's): secret-named environment
    values, URL credentials in any environment value, `secrets[].valueFrom`, repository credentials."""
    values: list[str] = []
    for cd in definition.get("containerDefinitions") or []:
        if not isinstance(cd, Mapping):
            continue
        for env in cd.get("environment") or []:
            if isinstance(env, Mapping):
                values += secret_values(str(env.get("name", "")), env.get("value"))
        for argv in (cd.get("command"), cd.get("entryPoint")):
            if isinstance(argv, list):
                values += flag_secrets(argv)
        for sec in cd.get("secrets") or []:
            if isinstance(sec, Mapping) and isinstance(sec.get("valueFrom"), str):
                values.append(sec["valueFrom"])
        creds = cd.get("repositoryCredentials")
        if isinstance(creds, Mapping) and isinstance(creds.get("credentialsParameter"), str):
            values.append(creds["credentialsParameter"])
    return learn(values)


def mask_taskdef(definition: dict[str, Any]) -> dict[str, Any]:
    """A copy of a task definition with secrets masked: secret-like environment values, URL credentials in any
    value, `secrets[].valueFrom` and repository credentials. Its secrets are learned too, so they stay masked
    wherever else they turn up (a template's or a live revision's values are not in pipeline.yaml)."""
    learn_taskdef(definition)
    masked = mask_data(definition)
    assert isinstance(masked, dict)
    return masked


# ---- streams and logs ------------------------------------------------------------------------------------------


class MaskingStream:
    """A text stream that masks every write before it reaches the real one (stdout/stderr, wrapped once in main)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    @property
    def wrapped(self) -> Any:
        """The real stream."""
        return self._stream

    def write(self, text: str | bytes) -> int:
        """Mask, then write; returns len(text) as a text stream does. A reader that went away is not an error.
        Bytes (click writes them when a stream has no `buffer`) are decoded as UTF-8 first."""
        if isinstance(text, (bytes, bytearray)):
            text = bytes(text).decode("utf-8", "replace")
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str or bytes, not {type(text).__name__}")
        try:
            self._stream.write(mask_text(text))
        except BrokenPipeError:
            _to_devnull(self._stream)
        return len(text)

    def flush(self) -> None:
        """Flush the real stream (a reader that went away is not an error)."""
        try:
            self._stream.flush()
        except BrokenPipeError:
            _to_devnull(self._stream)

    def writelines(self, lines: Iterable[str]) -> None:
        """Write each line, masked."""
        for line in lines:
            self.write(line)

    def __getattr__(self, attr: str) -> Any:
        # No `buffer`: click would write bytes to it, around the masking.
        if attr == "buffer":
            raise AttributeError(attr)
        return getattr(self._stream, attr)


def _to_devnull(stream: Any) -> None:
    """The reader of this stream left (`snail run 2>&1 | head -3`): point its file descriptor at /dev/null, so the
    run goes on, later writes and the flush at exit succeed, and the exit code stays the run's."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, stream.fileno())
        finally:
            os.close(devnull)
    except (OSError, ValueError, AttributeError):  # not a file (a test's StringIO): nothing to redirect
        pass


def wrap_std_streams() -> None:
    """Route sys.stdout and sys.stderr through the masking layer (idempotent)."""
    import sys

    if not isinstance(sys.stdout, MaskingStream):
        sys.stdout = MaskingStream(sys.stdout)
    if not isinstance(sys.stderr, MaskingStream):
        sys.stderr = MaskingStream(sys.stderr)


def structlog_processor(logger: Any, method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: mask every value of the event (names and shapes), before any renderer."""
    masked = mask_data(event_dict)
    assert isinstance(masked, dict)
    return masked
