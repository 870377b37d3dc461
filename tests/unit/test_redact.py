"""The redaction layer: each masking rule, learning from the environment and the pipeline, data, streams, logs,
the state-store wrapper, the command gate's environment and private state files."""

from __future__ import annotations

import io
import json
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator import redact
from orchestrator.gates.command_env import command_environment
from orchestrator.redact import MASK, mask_data, mask_text
from orchestrator.state.base import GoodRecord, RunRecord, TrailEvent
from orchestrator.state.redacting import RedactingStore
from orchestrator.state.secure import private_sqlite, private_state, write_private
from orchestrator.state.sqlite import SqliteStore


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    """Each test starts with no learned values."""
    redact.forget()
    yield
    redact.forget()


# ---- shape and name rules on text ---------------------------------------------------------------------------------

SHAPES = [
    # (text with a secret, the secret, what must survive)
    ("DATABASE_URL=postgres://admin:Pg5ecretPass@db.internal:5432/app", "Pg5ecretPass", "db.internal:5432/app"),
    ("dsn mysql://root:My5qlRootPw@10.0.0.1/db", "My5qlRootPw", "10.0.0.1/db"),
    ("https://0123456789abcdef0123456789abcdef@o123.ingest.sentry.io/456", "0123456789abcdef", "ingest.sentry.io/456"),
    ("GET https://api.example.com/health?api_key=Ak123456789&x=1", "Ak123456789", "x=1"),
    ("GET https://h/p?access_token=tok987654321", "tok987654321", "https://h/p?access_token="),
    ("GET https://h/p?X-Amz-Signature=abcdef0123456789&X-Amz-Date=1", "abcdef0123456789", "X-Amz-Date=1"),
    ("https://h/p?token=T0kenValue99;other", "T0kenValue99", "other"),
    ("url https://user:Url5ecretPw@example.com/x", "Url5ecretPw", "example.com/x"),
    ("registry u:Reg1stryPass@registry.example.com/repo", "Reg1stryPass", "registry.example.com/repo"),
    ("Authorization: Bearer abc.def.ghi12345", "abc.def.ghi12345", "Authorization"),
    ("authorization=Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA==", "authorization"),
    ("sent bearer eyJraWQiOiIxIn0abcdefgh to", "eyJraWQiOiIxIn0abcdefgh", "to"),
    ("key sk_live_51HabcdefGHIJKLmnop used", "sk_live_51HabcdefGHIJKLmnop", "used"),
    ("key rk_test_51HabcdefGHIJKLmnop used", "rk_test_51HabcdefGHIJKLmnop", "used"),
    ("webhook whsec_abcdefghijklmnop1234", "whsec_abcdefghijklmnop1234", "webhook"),
    ("AKIAIOSFODNN7EXAMPLE is the id", "AKIAIOSFODNN7EXAMPLE", "is the id"),
    (
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "wJalrXUtnFEMI/K7MDENG",
        "aws_secret_access_key",
    ),
    ('{"SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCY"}', "wJalrXUtnFEMI", "SecretAccessKey"),
    ("token ghp_abcdefghijklmnopqrstuvwxyz0123456789", "ghp_abcdefghijklmnopqrstuvwxyz0123456789", "token"),
    ("pat github_pat_11ABCDEFG0123456789_abcdefghijklmnop", "github_pat_11ABCDEFG0123456789", "pat"),
    ("slack xoxb-123456789012-abcdefghijkl", "xoxb-123456789012-abcdefghijkl", "slack"),
    ("https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXX", "T000/B000/XXXXXXXXXXXX", "hooks.slack.com"),
    ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.abc_DEF-ghi", "eyJzdWIiOiIxMjM0In0", "jwt"),
    (
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY----- after",
        "MIIEowIBAAKCAQEA",
        "after",
    ),
    ("cut -----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkq", "MIIEvQIBADANBgkq", "cut"),
    (
        "valueFrom arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf here",
        "prod/db-AbCdEf",
        "here",
    ),
    ("from arn:aws:ssm:us-east-1:123456789012:parameter/prod/stripe", "parameter/prod/stripe", "from"),
    ("MYSQL_PWD=hunter2x MONKEY=banana", "hunter2x", "MONKEY=banana"),
    ("STRIPE_KEY=anything-at-all", "anything-at-all", "STRIPE_KEY="),
    ("SENTRY_DSN=https://k3y@o1.ingest.sentry.io/1", "o1.ingest.sentry.io", "SENTRY_DSN="),
    ("JWT_SIGNING_KEY='s1gning-secret'", "s1gning-secret", "JWT_SIGNING_KEY="),
    ("export AWS_SECRET_ACCESS_KEY=abc/def+ghi", "abc/def+ghi", "export"),
    ('{"password": "hunter2", "user": "bob"}', "hunter2", '"user": "bob"'),
    ("host=db password=pg-secret user=x", "pg-secret", "user=x"),
    ("client_secret: cl1entS3cret", "cl1entS3cret", "client_secret"),
    ("Api-Key: k-123456", "k-123456", "Api-Key"),
    # issue 25: a DSN password with '#', a secret command-line flag's value, an Azure connection string's key
    ("DATABASE_URL=postgres://u:p#ss@h/db", "p#ss", "@h/db"),
    ('{"READ_REPLICA_URL": "postgres://app:Hash#Pass?99@replica:5432/db"}', "Hash#Pass", "@replica:5432/db"),
    ("log: connecting to postgres://svc:pw#1x@db.internal/app", "pw#1x", "@db.internal/app"),
    ("serve --db-password hunter2-db --port 5000", "hunter2-db", "--port 5000"),
    ("app --api-token=tok-3141592 -v", "tok-3141592", "--api-token="),
    ('"command": ["serve", "--db-password", "hunter2-db", "--port", "5000"]', "hunter2-db", '"--port", "5000"'),
    (
        "AZURE_STORAGE_CONNECTION_STRING=DefaultEndpointsProtocol=https;AccountName=shine;"
        "AccountKey=bXlBenVyZUtleQ+/x==;EndpointSuffix=core.windows.net",
        "bXlBenVyZUtleQ",
        "AccountName=shine;",
    ),
    ("Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=root;SharedAccessKey=c2FzS2V5", "c2FzS2V5", "root"),
]


@pytest.mark.parametrize(("text", "secret", "kept"), SHAPES, ids=[s[1][:20] for s in SHAPES])
def test_shape_and_name_rules_mask_the_secret_and_keep_the_context(text: str, secret: str, kept: str) -> None:
    """Each rule masks its secret and leaves the surrounding words readable."""
    out = mask_text(text)
    assert secret not in out
    assert MASK in out
    assert kept in out


@pytest.mark.parametrize(("text", "secret", "kept"), SHAPES, ids=[s[1][:20] for s in SHAPES])
def test_masking_json_text_keeps_it_valid_json(text: str, secret: str, kept: str) -> None:
    """The terminal masks JSON output as text: a masked document still parses, and the secret is gone."""
    doc = json.dumps({"message": text, "nested": json.dumps({"v": text})}, indent=2)
    out = mask_text(doc)
    parsed = json.loads(out)
    assert secret not in out
    assert MASK in parsed["message"]


ORDINARY = [
    "rolled back to shine-api-gateway:2 (phase health-only), verified",
    "image 127.0.0.1:5055/shine-api-gateway@sha256:" + "a" * 64,
    "arn:aws:ecs:us-east-1:123456789012:task-definition/shine-api-gateway:3",
    "status 500, expected 200; latency 12ms > 10ms",
    "snail sandbox up; `snail --sandbox run`; MONKEY=banana; tokens_total: 5",
    "http://127.0.0.1:5000/health?verbose=1",
    "ssh git@github.com:org/repo.git",
    "spec a1b2c3d4e5f60718, digest sha256:" + "0" * 64,
    "the phase passed: secrets are masked",
    "snail --output json plan --to two -- --verbose; docker build --build-arg BASE_IMAGE=x",
    "https://example.com/docs#section-2 and http://h/a?next=/b",
    "max-tokens --max-tokens 100",
]


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_text_is_left_alone(text: str) -> None:
    """Revisions, images, digests, local URLs and plain words are not masked."""
    assert mask_text(text) == text


def test_known_values_are_masked_anywhere_longest_first() -> None:
    """A learned value is masked wherever it appears, in JSON escaping too; a contained value never half-shows."""
    redact.learn(["Sup3rS3cretValue", "Sup3rS3cretValue-extended", 'quo"te\\Secret1'])
    out = mask_text("a Sup3rS3cretValue-extended b Sup3rS3cretValue c")
    assert out == f"a {MASK} b {MASK} c"
    assert "quo" not in mask_text(json.dumps({"v": 'quo"te\\Secret1'}))


def test_short_values_are_not_learned_but_names_still_mask_them() -> None:
    """A value under 8 characters is not learned (it would mask ordinary words); NAME=value still masks it."""
    redact.learn(["sandbox", "testing"])
    assert mask_text("snail sandbox up") == "snail sandbox up"
    assert mask_text("MYSQL_PWD=short") == f"MYSQL_PWD={MASK}"


def test_learn_environment_takes_runner_credentials_not_the_working_directory() -> None:
    """AWS secret key, session token, registry password and secret-named variables are learned; PWD is not."""
    env = {
        "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY",
        "AWS_SESSION_TOKEN": "FwoGZXIvYXdzEJr//////////wEaDH",
        "SNAIL_REGISTRY_PASSWORD": "regpass-123456",
        "GITHUB_TOKEN": "ghs_notalwaysashape123",
        "HTTPS_PROXY": "http://proxyuser:Pr0xyPassw0rd@proxy:3128",
        "PWD": "/work/checkout",
        "HOME": "/root",
    }
    redact.learn_environment(env)
    text = " ".join(env.values())
    out = mask_text(text)
    for name in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "SNAIL_REGISTRY_PASSWORD", "GITHUB_TOKEN"):
        assert env[name] not in out
    assert "Pr0xyPassw0rd" not in out
    assert "/work/checkout" in out and "/root" in out


def test_learn_pipeline_takes_secret_env_build_args_value_from_and_url_credentials(make_pipeline) -> None:  # noqa: ANN001
    """A loaded pipeline teaches: secret-named env values, build args, valueFrom, gate URL and query credentials."""
    from orchestrator.config import load_pipeline

    path = make_pipeline(
        phases={
            "one": """\
                name: one
                image:
                  context: .
                  build_args: {NPM_TOKEN: npm-build-token-123}
                task:
                  environment: {STRIPE_KEY: stripe-value-123, JWT_SIGNING_KEY: jwt-value-1234, MODE: production}
                  secrets: {DB_PASSWORD: "arn:aws:ssm:us-east-1:123456789012:parameter/prod/db"}
                gates:
                  - {type: http, url: "http://gateuser:gate-pass-123@127.0.0.1:9/h?api_key=gate-query-123"}
                """,
            "two": 'name: two\nimage: {ref: "127.0.0.1:5055/shine-api-gateway@sha256:' + "b" * 64 + '"}\n',
        }
    )
    (path.parent / "Dockerfile").write_text("FROM scratch\n")
    redact.learn_pipeline(load_pipeline(path))
    known = redact.known()
    for value in (
        "npm-build-token-123",
        "stripe-value-123",
        "jwt-value-1234",
        "arn:aws:ssm:us-east-1:123456789012:parameter/prod/db",
        "gate-pass-123",
        "gate-query-123",
    ):
        assert value in known
    assert "production" not in known


# ---- data ---------------------------------------------------------------------------------------------------------


def test_an_argv_masks_the_argument_after_a_secret_flag_and_learns_it() -> None:
    """A task command `[serve, --db-password, VALUE]` shows `****` for VALUE (diffs show argv one item a line), and
    the value is learned from the task definition, so it is masked wherever else it turns up (a container log)."""
    td = {"containerDefinitions": [{"name": "api", "command": ["serve", "--db-password", "Argv-Leak-Pass-1", "-v"]}]}
    masked = redact.mask_taskdef(td)
    assert masked["containerDefinitions"][0]["command"] == ["serve", "--db-password", MASK, "-v"]
    assert mask_text("db login with Argv-Leak-Pass-1 failed") == f"db login with {MASK} failed"
    assert redact.flag_secrets(["run", "--token=Flag-Eq-Token-2", "--name", "x"]) == ["Flag-Eq-Token-2"]


def test_url_and_connection_string_credentials_are_learned() -> None:
    """A DSN password holding '#' and an Azure AccountKey are learned from a setting's value whatever its name."""
    assert "Hash#Pass-Long-77" in redact.url_credentials("postgres://app:Hash#Pass-Long-77@db/x")
    conn = "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=QWNjb3VudEtleQ+/==;EndpointSuffix=x"
    assert redact.url_credentials(conn) == ["QWNjb3VudEtleQ+/=="]


def test_mask_data_by_key_pair_and_value() -> None:
    """Data is masked by key name, by {name, value} pairs, under secret keys, and in every string."""
    td: dict[str, Any] = {
        "containerDefinitions": [
            {
                "name": "api",
                "image": "127.0.0.1:5055/x@sha256:" + "a" * 64,
                "environment": [
                    {"name": "STRIPE_KEY", "value": "plain-looking"},
                    {"name": "MODE", "value": "production"},
                    {"name": "DATABASE_URL", "value": "postgres://u:Pw123456@db/app"},
                ],
                "secrets": [{"name": "DB", "valueFrom": "arn:aws:ssm:us-east-1:1:parameter/db"}],
                "repositoryCredentials": {"credentialsParameter": "arn:aws:secretsmanager:us-east-1:1:secret:r"},
            }
        ],
        "cpu": "256",
    }
    out = redact.mask_taskdef(td)
    cd = out["containerDefinitions"][0]
    env = {e["name"]: e["value"] for e in cd["environment"]}
    assert env == {"STRIPE_KEY": MASK, "MODE": "production", "DATABASE_URL": f"postgres://{MASK}@db/app"}
    assert cd["secrets"] == [{"name": "DB", "valueFrom": MASK}]
    assert cd["repositoryCredentials"] == {"credentialsParameter": MASK}
    assert cd["image"] == td["containerDefinitions"][0]["image"] and out["cpu"] == "256"
    assert td["containerDefinitions"][0]["environment"][0]["value"] == "plain-looking"  # a copy, not in place
    assert mask_text("echo plain-looking Pw123456") == f"echo {MASK} {MASK}"  # learned: masked anywhere now
    assert mask_data({"env": {"API_TOKEN": "x"}, "run": ["curl", "-H", "Authorization: Bearer abcdefghij"]}) == {
        "env": {"API_TOKEN": MASK},
        "run": ["curl", "-H", f"Authorization: {MASK}"],
    }


def test_restore_finds_the_spec_a_masked_record_came_from() -> None:
    """A recorded (masked) gate spec is matched back to today's spec with the real credentials."""
    real = {"type": "http", "url": "http://127.0.0.1:9/h?api_key=real-key-123"}
    other = {"type": "http", "url": "http://127.0.0.1:9/other"}
    recorded = mask_data(real)
    assert recorded != real
    assert redact.restore(recorded, [other, real]) == real
    assert redact.restore(recorded, [other]) == recorded


def test_excerpt_masks_before_cutting() -> None:
    """Evidence is masked first (a secret across the cut is masked whole), then cut with an ellipsis."""
    redact.learn(["echoed-token-0123456789"])
    body = "x" * 290 + "echoed-token-0123456789" + "y" * 1000
    out = redact.excerpt(body.encode(), limit=300)
    assert "echoed" not in out and "0123456789" not in out
    assert len(out) <= 301 and out.endswith("…")
    assert redact.excerpt("short") == "short"
    tail = redact.excerpt("z" * 5000 + "echoed-token-0123456789" + "w" * 290, limit=300, tail=True)
    assert "0123456789" not in tail and tail.startswith("…") and tail.endswith("w")


# ---- streams, logs, files ----------------------------------------------------------------------------------------


def test_masking_stream_masks_each_write_and_bytes_too() -> None:
    """The wrapped stream masks what it writes (bytes decoded first: click's shell completion writes bytes),
    reports the caller's length, and hides `buffer` from click."""
    redact.learn(["stream-secret-123"])
    raw = io.StringIO()
    stream = redact.MaskingStream(raw)
    assert stream.write("a stream-secret-123 b\n") == len("a stream-secret-123 b\n")
    assert raw.getvalue() == f"a {MASK} b\n"
    stream.write(b"x stream-secret-123 y\n")
    assert raw.getvalue().endswith(f"x {MASK} y\n")
    with pytest.raises(TypeError):
        stream.write(42)  # type: ignore[arg-type]
    assert not hasattr(stream, "buffer")


def test_click_echo_through_wrapped_streams_is_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    """click.echo to stdout and stderr goes through the wrapper (click does not bypass it through .buffer)."""
    import sys

    import click

    redact.learn(["echo-secret-1234"])
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")  # real text streams, with a .buffer click could use
    err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    redact.wrap_std_streams()
    click.echo("result echo-secret-1234")
    click.echo("progress echo-secret-1234", err=True)
    print("print echo-secret-1234")
    out.flush()
    err.flush()
    stdout, stderr = out.buffer.getvalue().decode(), err.buffer.getvalue().decode()
    assert "echo-secret" not in stdout + stderr
    assert stdout.count(MASK) == 2 and stderr.count(MASK) == 1


def test_structlog_json_lines_are_masked(capsys: pytest.CaptureFixture[str]) -> None:
    """A JSON log event carrying a secret (value, URL credentials, secret-named field) is masked."""
    import structlog

    from orchestrator.log import configure

    redact.learn(["log-secret-12345"])
    configure("json")
    structlog.get_logger().warning(
        "probe", url="http://u:p4ssw0rd@h/x", note="has log-secret-12345", api_token="raw-token"
    )
    line = capsys.readouterr().err.strip().splitlines()[-1]
    event = json.loads(line)
    assert "p4ssw0rd" not in line and "log-secret" not in line and "raw-token" not in line
    assert event["api_token"] == MASK and event["url"] == f"http://{MASK}@h/x"


def test_redacting_store_masks_runs_steps_events_and_gates(tmp_path: Path) -> None:
    """Through the wrapper, nothing secret reaches the SQLite file; reads and the lock still work."""
    redact.learn(["store-secret-123"])
    inner = SqliteStore(tmp_path / ".snail" / "state.db")
    store = RedactingStore(inner)
    store.start_run(RunRecord("r-1", "svc", "run", "running", "2026-01-01T00:00:00"))
    step = store.begin_step("r-1", "p", "register", {"env": {"STRIPE_KEY": "sk_live_abcdefgh1234"}}, "t")
    store.end_step(step, "ok", {"output": "echo store-secret-123"}, "t")
    store.append_event(
        TrailEvent("r-1", "svc", "t", "gate_failed", "got store-secret-123", "p", {"body": "MYSQL_PWD=hunter2x"})
    )
    store.mark_good(
        GoodRecord("svc", "p", "arn:aws:ecs:us-east-1:1:task-definition/svc:2", "img", None, "r-1", "t", "h")
    )
    store.finish_run("r-1", "failed", 1, "failed: store-secret-123", "t")
    assert store.acquire_lock("svc", {"run_id": "r-2"}, 60, time.time()) is None
    store.release_lock("svc", "r-2")
    inner.close()
    raw = b"".join(p.read_bytes() for p in (tmp_path / ".snail").iterdir() if p.is_file())
    for secret in (b"store-secret-123", b"sk_live_abcdefgh1234", b"hunter2x"):
        assert secret not in raw
    assert store.get_run("r-1").message == f"failed: {MASK}"
    assert store.events("svc")[0].data == {"body": f"MYSQL_PWD={MASK}"}
    assert store.last_good("svc", "p").revision_arn.endswith("svc:2")


def test_recorded_gates_are_stored_masked_and_read_back_with_todays_credentials(tmp_path: Path) -> None:
    """A good record's gate specs hit the file masked; read through the wrapper they carry the real key again."""
    real = {"type": "http", "url": "http://127.0.0.1:9/h?api_key=gate-real-key-123", "name": None}
    inner = SqliteStore(tmp_path / "state.db")
    store = RedactingStore(inner, gate_specs=lambda: [{"type": "ecs-rollout"}, real])
    arn = "arn:aws:ecs:us-east-1:1:task-definition/svc:2"
    store.mark_good(GoodRecord("svc", "p", arn, "img", None, "r-1", "t", "h", gates=[real]))
    stored = inner.last_good("svc", "p")
    assert stored is not None and stored.gates == [mask_data(real)]  # what the file holds
    assert store.last_good("svc", "p").gates == [real]  # what a rollback verifies with
    assert store.good_history("svc")[0].gates == [real]
    assert b"gate-real-key-123" not in (tmp_path / "state.db").read_bytes()
    unmatched = RedactingStore(inner, gate_specs=lambda: [])
    assert unmatched.last_good("svc", "p").gates == [mask_data(real)]
    inner.close()


def test_state_files_are_private(tmp_path: Path) -> None:
    """A new store is 0600 (its -wal/-shm too) in a 0700 folder; an old world-readable one is tightened."""
    path = tmp_path / ".snail" / "state.db"
    store = SqliteStore(path)
    store.runs("svc")
    private_state(tmp_path / ".snail", path)
    mode = lambda p: stat.S_IMODE(os.stat(p).st_mode)  # noqa: E731
    assert mode(tmp_path / ".snail") == 0o700
    for suffix in ("", "-wal", "-shm"):
        assert mode(str(path) + suffix) == 0o600
    store.close()
    old = tmp_path / "old" / "state.db"
    old.parent.mkdir(mode=0o755)
    old.write_bytes(b"")
    old.chmod(0o644)
    private_sqlite(old)
    assert mode(old) == 0o600 and mode(old.parent) == 0o700
    info = write_private(tmp_path / "sb" / "info.json", "{}")
    assert mode(info) == 0o600 and mode(info.parent) == 0o700


# ---- the command gate's environment ------------------------------------------------------------------------------


def test_command_environment_is_an_allowlist_plus_gate_env_plus_snail_vars() -> None:
    """The runner's credentials never reach a command gate unless its `env:` names them; SNAIL_* win."""
    runner = {
        "PATH": "/usr/bin",
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "AWS_SECRET_ACCESS_KEY": "runner-secret",
        "AWS_ACCESS_KEY_ID": "AKIA",
        "AWS_PROFILE": "prod",
        "SNAIL_REGISTRY_PASSWORD": "reg",
        "PYTHONPATH": "/work/main",
        "HTTPS_PROXY": "http://u:p@proxy:3128",
        "NO_PROXY": "127.0.0.1",
        "SNAIL_PHASE": "runner's",
    }
    env = command_environment({"API_TOKEN": "explicit", "SNAIL_PHASE": "gate's"}, {"SNAIL_PHASE": "p1"}, runner)
    assert env == {
        "PATH": "/usr/bin",
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "NO_PROXY": "127.0.0.1",
        "API_TOKEN": "explicit",
        "SNAIL_PHASE": "p1",
    }
    named = command_environment({"AWS_PROFILE": "smoke"}, {}, runner)
    assert named["AWS_PROFILE"] == "smoke" and "AWS_SECRET_ACCESS_KEY" not in named
    assert command_environment({}, {}, {})["PATH"]  # a script can always find /bin/sh


def test_masking_a_megabyte_is_fast() -> None:
    """1 MB of log text with 200 learned values is masked in well under a second (measured ~50 ms)."""
    import random
    import string

    rng = random.Random(1)
    redact.learn(["".join(rng.choices(string.ascii_letters + string.digits, k=24)) for _ in range(200)])
    words = ["deployment", "phase", "gate", "passed", "status=200", "http://127.0.0.1:5000/health", "key: v"]
    text = "\n".join(" ".join(rng.choices(words, k=12)) for _ in range(12_000))[:1_000_000]
    text = text[:500_000] + " STRIPE_KEY=sk_live_abcdefghijkl1234 " + text[500_000:]
    started = time.perf_counter()
    out = mask_text(text)
    elapsed = time.perf_counter() - started
    assert "sk_live_abcdefghijkl1234" not in out
    assert elapsed < 1.0, elapsed


def test_fast_name_value_scan_equals_the_plain_substitution() -> None:
    """The lower-case scan for `password: …` gives exactly what the case-insensitive pattern gives, and text
    whose lower-casing changes length (İ) still gets masked (by the plain path)."""
    from orchestrator.redact import _CALLBACKS, _FINDERS, _RULES, _sub_found

    text = "\n".join(
        [
            'PassWord: "Abc123xyz" then Secret_Key=QQ then "api-key": \\"k\\" and x_token: no',
            "Client_Secret = 'cs' ; AUTH_TOKEN:at1 ; password: **** ; tokens_total: 5",
            '{"AWS_SESSION_TOKEN": "FwoG", "nested": "{\\\\"password\\\\": \\\\"p\\\\"}"}',
        ]
        * 50
    )
    (rx, repl) = next((rx, repl) for _t, _l, rx, repl in _RULES if rx.pattern in _FINDERS)
    plain = rx.sub(_CALLBACKS[repl], text)
    assert _sub_found(text, text.lower(), _FINDERS[rx.pattern], rx, repl) == plain
    assert "Abc123xyz" not in plain and "tokens_total: 5" in plain
    assert mask_text("İstanbul password=Abc123xyz") == f"İstanbul password={MASK}"
