"""Secrets stay secret: 19 kinds of secret planted in a pipeline, its runner's environment and the answers it
gets; validate / plan / run / trail (md, json, html -o) / history / status run as a separate process against
moto's server, then stdout, stderr and every file under .snail/ are searched for each planted value."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from tests.conftest import Behaviour
from tests.harness.cli import snail
from tests.harness.pipeline import REPO, image, pipeline_text

# Each value is unique and long enough that finding it anywhere is a leak, never a coincidence.
PLANTED = {
    "env DATABASE_URL password": "Pg-leak-pass-7f3a91",
    "env STRIPE_KEY": "sk_live_51LeakTestAbCdEf0123456789",
    "env SENTRY_DSN key": "9f8e7d6c5b4a39281706f5e4d3c2b1a0",
    "env MYSQL_PWD": "mysql-leak-pwd-55aa",
    "env JWT_SIGNING_KEY": "jwt-leak-signing-key-c0ffee",
    "valueFrom Secrets Manager ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/leak-db-AbCdEf",
    "valueFrom SSM parameter ARN": "arn:aws:ssm:us-east-1:123456789012:parameter/prod/leak-stripe",
    "gate URL userinfo password": "gate-userinfo-pass-31337",
    "gate URL ?api_key=": "gate-query-apikey-8d8d8d",
    "registry.url userinfo password": "registry-userinfo-pass-4242",
    "build-arg token in a build failure": "npm-build-arg-token-6e6e6e",
    "HTTP body echoing a token": "Zq8bodyEchoedBearer0123456789abcdef",
    "command gate env: AWS_SECRET_ACCESS_KEY": "runner-aws-secret-key-77Xy/+Zz",
    "command gate env: AWS_SESSION_TOKEN": "runner-aws-session-token-FwoGZXIvYXdz",
    "command gate env: SNAIL_REGISTRY_PASSWORD": "runner-registry-password-99qq",
    "command gate env: a token its env: names": "ghp_LeakTestGateEnvToken0123456789abcdef",
    "env DSN password with '#'": "p#ss-leak-dsn-31a7",
    "task command argument after --db-password": "argv-leak-db-pass-9c9c",
    "env Azure connection string AccountKey": "QXp1cmVMZWFrS2V5MDEyMzQ1Njc4OQ+/==",
}

TIMING = {"bake": "0s", "poll": "1s"}  # the base pipeline with only its ecs-rollout gate

PHASE_ONE = """\
name: health-only
image: {{ref: "{image}"}}
task:
  environment:
    DATABASE_URL: "postgres://admin:{db_pass}@db.internal:5432/app"
    STRIPE_KEY: "{stripe}"
    SENTRY_DSN: "https://{sentry}@o123.ingest.sentry.io/456"
    MYSQL_PWD: "{mysql}"
    JWT_SIGNING_KEY: "{jwt}"
    MODE: production
    READ_REPLICA_URL: "postgres://replica:{hash_dsn}@replica.internal:5432/app"
    AZURE_STORAGE_CONNECTION_STRING: "DefaultEndpointsProtocol=https;AccountName=shine;AccountKey={azure}"
  command: [serve, --db-password, "{argv_pass}", --port, "5000"]
  secrets:
    DB_PASSWORD: "{sm_arn}"
    STRIPE_WEBHOOK: "{ssm_arn}"
gates:
  - {{type: http, url: "{echo_url}/health?api_key={api_key}", expect: {{status: 200}}}}
  - type: command
    run: "env; echo aws=$AWS_SECRET_ACCESS_KEY session=$AWS_SESSION_TOKEN registry=$SNAIL_REGISTRY_PASSWORD"
    env: {{GITHUB_TOKEN: "{gate_token}"}}
"""

PHASE_TWO = """\
name: hybrid-ml
image: {{ref: "{image}"}}
task:
  environment: {{ML_ENABLED: "true", STRIPE_KEY: "{stripe}"}}
gates:
  - {{type: http, url: "http://gateuser:{userinfo}@127.0.0.1:9/health", retries: {{attempts: 1}}}}
"""

PHASE_THREE = """\
name: optimized
image:
  context: images/optimized
  build_args: {{NPM_TOKEN: "{npm}", BASE_IMAGE: "snail-base/python:3.11"}}
  probe: false
"""

DOCKERFILE = """\
ARG BASE_IMAGE=snail-base/python:3.11
FROM ${BASE_IMAGE}
ARG NPM_TOKEN
RUN echo "installing with token $NPM_TOKEN" && echo "npm ERR! 401 for NPM_TOKEN=$NPM_TOKEN" && exit 1
"""


def _write(root: Path, echo_url: str) -> None:
    p = PLANTED
    registry = f'"leakuser:{p["registry.url userinfo password"]}@{REPO}"'
    (root / "phases").mkdir(parents=True, exist_ok=True)
    phases = ["health-only", "hybrid-ml", "optimized"]
    (root / "pipeline.yaml").write_text(pipeline_text(root, phases, TIMING, registry=registry, gates=["ecs-rollout"]))
    (root / "phases" / "health-only.yaml").write_text(
        PHASE_ONE.format(
            image=image("a"),
            db_pass=p["env DATABASE_URL password"],
            stripe=p["env STRIPE_KEY"],
            sentry=p["env SENTRY_DSN key"],
            mysql=p["env MYSQL_PWD"],
            jwt=p["env JWT_SIGNING_KEY"],
            sm_arn=p["valueFrom Secrets Manager ARN"],
            ssm_arn=p["valueFrom SSM parameter ARN"],
            echo_url=echo_url,
            api_key=p["gate URL ?api_key="],
            gate_token=p["command gate env: a token its env: names"],
            hash_dsn=p["env DSN password with '#'"],
            azure=p["env Azure connection string AccountKey"],
            argv_pass=p["task command argument after --db-password"],
        )
    )
    (root / "phases" / "hybrid-ml.yaml").write_text(
        PHASE_TWO.format(
            image=image("b"),
            stripe=p["env STRIPE_KEY"],
            userinfo=p["gate URL userinfo password"],
        )
    )
    (root / "phases" / "optimized.yaml").write_text(PHASE_THREE.format(npm=p["build-arg token in a build failure"]))
    ctx = root / "images" / "optimized"
    ctx.mkdir(parents=True, exist_ok=True)
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    (ctx / "app.py").write_text("print('never built')\n")


def test_no_planted_secret_leaks_to_any_output_or_state_file(world, http_server) -> None:  # noqa: ANN001
    """19 kinds of secret, every command and format: 0 leaks in stdout, stderr and .snail/, files private."""
    root: Path = world["root"]
    echo_url, _ = http_server(
        Behaviour(200, {"status": "ok", "debug": f"Authorization: Bearer {PLANTED['HTTP body echoing a token']}"})
    )
    world["serve"]("a"), world["serve"]("b")
    _write(root, echo_url)
    runner = {
        "AWS_SECRET_ACCESS_KEY": PLANTED["command gate env: AWS_SECRET_ACCESS_KEY"],
        "AWS_SESSION_TOKEN": PLANTED["command gate env: AWS_SESSION_TOKEN"],
        "SNAIL_REGISTRY_PASSWORD": PLANTED["command gate env: SNAIL_REGISTRY_PASSWORD"],
    }
    html = root / ".snail" / "trail.html"
    commands = [
        ("validate",),
        ("plan",),
        ("-vv", "plan"),
        ("--output", "json", "plan"),
        ("run", "--skip-preflight", "--to", "hybrid-ml"),
        ("-vv", "--log-format", "json", "run", "--skip-preflight", "--from", "optimized"),
        ("trail",),
        ("--output", "json", "trail"),
        ("trail", "--format", "html", "-o", str(html)),
        ("history",),
        ("--output", "json", "history"),
        ("status",),
        ("--output", "json", "status"),
    ]
    outputs: dict[str, str] = {}
    for args in commands:
        r = snail(world, *args, env=runner)
        assert "Traceback" not in r.stderr, (args, r.stderr[-3000:])
        outputs[" ".join(args) + " [stdout]"] = r.stdout
        outputs[" ".join(args) + " [stderr]"] = r.stderr
    for path in sorted((root / ".snail").rglob("*")):
        if path.is_file():
            outputs[str(path.relative_to(root))] = path.read_bytes().decode("utf-8", "replace")

    if os.environ.get("SNAIL_LEAK_DUMP"):  # for debugging: every output as a file
        dump = Path(os.environ["SNAIL_LEAK_DUMP"])
        dump.mkdir(parents=True, exist_ok=True)
        for i, (where, text) in enumerate(outputs.items()):
            (dump / f"{i:02d}.txt").write_text(f"{where}\n{text}")
    # The scenario really happened: phase one passed with its evidence, phase two failed and was rolled back,
    # the build failed on its RUN line (so the token was in the build output snail saw).
    trail = json.loads(outputs["--output json trail [stdout]"])
    kinds = [e["kind"] for e in trail["events"]]
    assert "gate_passed" in kinds and "gate_failed" in kinds and "rollback_started" in kinds, kinds
    everything = "\n".join(outputs.values())
    # NPM_TOKEN as a plain build arg would be in the image's history: validate and plan say so (by name)
    for where in ("validate [stdout]", "plan [stdout]", "--output json plan [stdout]"):
        assert "build arg NPM_TOKEN looks secret" in outputs[where], where
    assert "installing with token" in everything  # the failing build's output reached snail (and was masked)

    leaks = {kind: [where for where, text in outputs.items() if value in text] for kind, value in PLANTED.items()}
    leaked = {kind: where for kind, where in leaks.items() if where}
    print(f"secrets leaked {len(leaked)}/{len(PLANTED)}")
    assert not leaked, json.dumps(leaked, indent=2)
    assert "****" in everything

    # State files are private: the folder 0700, the SQLite file and its sidecars 0600.
    snail_dir = root / ".snail"
    assert stat.S_IMODE(os.stat(snail_dir).st_mode) == 0o700
    for path in snail_dir.glob("state.db*"):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path


def test_dynamodb_state_holds_no_planted_secret() -> None:
    """Through the redaction wrapper, no item of the DynamoDB state table holds a secret (moto, in process)."""
    import boto3
    from moto import mock_aws

    from orchestrator import redact
    from orchestrator.state.base import GoodRecord, RunRecord, TrailEvent
    from orchestrator.state.dynamodb import DynamoStore, create_table
    from orchestrator.state.redacting import RedactingStore

    token = PLANTED["command gate env: a token its env: names"]
    api_key = PLANTED["gate URL ?api_key="]
    stripe = PLANTED["env STRIPE_KEY"]
    redact.learn([token])
    try:
        with mock_aws():
            ddb = boto3.client("dynamodb", region_name="us-east-1")
            create_table(ddb, "snail-state", wait_delay=0)
            store = RedactingStore(DynamoStore(ddb, "snail-state"))
            store.start_run(RunRecord("r-1", "svc", "run", "running", "2026-11-29T06:00:00"))
            step = store.begin_step("r-1", "p", "register", {"environment": {"STRIPE_KEY": stripe}}, "t")
            store.end_step(step, "ok", {"output": f"GITHUB_TOKEN={token}"}, "t")
            store.append_event(TrailEvent("r-1", "svc", "t", "gate_passed", f"[x] http /h?api_key={api_key}", "p"))
            gate = {"type": "http", "url": f"http://127.0.0.1:9/h?api_key={api_key}"}
            arn = "arn:aws:ecs:us-east-1:123456789012:task-definition/svc:2"
            store.mark_good(GoodRecord("svc", "p", arn, "img", None, "r-1", "t", "h", gates=[gate]))
            store.finish_run("r-1", "succeeded", 0, f"done with {token}", "t")
            items = json.dumps(ddb.scan(TableName="snail-state")["Items"])
    finally:
        redact.forget()
    assert "gate_passed" in items and "svc:2" in items
    for secret in (token, api_key, stripe):
        assert secret not in items


LOG_DSN_PASS = "p#ss-log-dsn-8e1f"
LOG_LINE = f"connecting to postgres://app:{LOG_DSN_PASS}@db.internal:5432/app (pool 5)"


def test_a_container_log_line_with_a_dsn_stays_masked_in_logs_trail_and_state(world) -> None:  # noqa: ANN001
    """A task logs a DSN whose password holds '#': `logs` (text, JSON), the trail that carries it as a failed
    gate's evidence (Markdown, JSON, HTML -o), the SQLite state file and DynamoDB items all show it masked."""
    import time

    import boto3
    from moto import mock_aws

    from orchestrator.state.base import TrailEvent
    from orchestrator.state.dynamodb import DynamoStore, create_table
    from orchestrator.state.redacting import RedactingStore
    from orchestrator.state.sqlite import SqliteStore
    from tests.functional.world import REGION
    from tests.harness.pipeline import write_pipeline

    root: Path = world["root"]
    write_pipeline(root, {"health-only": "a"})
    ecs = world["ecs"]
    group = "/ecs/shine-api-gateway"
    container = {
        "name": "api",
        "image": image("0"),
        "memory": 256,
        "essential": True,
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {"awslogs-group": group, "awslogs-region": REGION, "awslogs-stream-prefix": "ecs"},
        },
    }
    arn = ecs.register_task_definition(
        family="shine-api-gateway", networkMode="bridge", containerDefinitions=[container]
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.update_service(cluster="shine", service="shine-api-gateway", taskDefinition=arn)
    deadline = time.monotonic() + 20
    task = ""
    while not task and time.monotonic() < deadline:  # the agent starts the revision's task
        arns = ecs.list_tasks(cluster="shine", serviceName="shine-api-gateway")["taskArns"]
        described = ecs.describe_tasks(cluster="shine", tasks=arns).get("tasks", []) if arns else []
        running = [t for t in described if t["taskDefinitionArn"] == arn and t["lastStatus"] == "RUNNING"]
        task = running[0]["taskArn"].rsplit("/", 1)[-1] if running else ""
        time.sleep(0.2)
    assert task, "the agent started no task on the awslogs revision"
    logs = boto3.client("logs", region_name=REGION, endpoint_url=world["url"])
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=f"ecs/api/{task}")
    logs.put_log_events(
        logGroupName=group,
        logStreamName=f"ecs/api/{task}",
        logEvents=[{"timestamp": int(time.time() * 1000), "message": LOG_LINE}],
    )
    # The trail holds the line as a failed gate's evidence, written through the redaction layer as the engine does.
    event = TrailEvent(
        "r-dsn-1",
        "shine-api-gateway",
        "2026-12-07T02:00:00+00:00",
        "gate_failed",
        f"[ ] http /health: status 500; last log line: {LOG_LINE}",
        "health-only",
        {"evidence": {"log_lines": [LOG_LINE]}, "revision": arn},
    )
    from orchestrator.state.base import RunRecord

    run = RunRecord("r-dsn-1", "shine-api-gateway", "run", "running", "2026-12-07T02:00:00+00:00")
    store = RedactingStore(SqliteStore(root / ".snail" / "state.db"))
    store.start_run(run)
    store.append_event(event)
    store.finish_run("r-dsn-1", "rolled_back", 1, f"gate failed: {LOG_LINE}", "2026-12-07T02:01:00+00:00")

    html = root / "trail.html"
    md = root / "trail.md"
    outputs: dict[str, str] = {}
    for args in (
        ("logs",),
        ("--output", "json", "logs"),
        ("trail", "--run", "r-dsn-1"),
        ("--output", "json", "trail", "--run", "r-dsn-1"),
        ("trail", "--run", "r-dsn-1", "--format", "html", "-o", str(html)),
        ("trail", "--run", "r-dsn-1", "-o", str(md)),
    ):
        r = snail(world, *args)
        assert r.returncode == 0, (args, r.stderr[-2000:])
        outputs[" ".join(args)] = r.stdout + r.stderr
    outputs["trail.html"] = html.read_text()
    outputs["trail.md"] = md.read_text()
    for path in (root / ".snail").glob("state.db*"):
        outputs[path.name] = path.read_bytes().decode("utf-8", "replace")
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        create_table(ddb, "snail-state", wait_delay=0)
        dynamo = RedactingStore(DynamoStore(ddb, "snail-state"))
        dynamo.start_run(run)
        dynamo.append_event(event)
        outputs["dynamodb items"] = json.dumps(ddb.scan(TableName="snail-state")["Items"])

    leaked = [where for where, text in outputs.items() if LOG_DSN_PASS in text or "p#ss-log" in text]
    assert not leaked, leaked
    assert "db.internal:5432/app" in outputs["logs"] and "gate_failed" in outputs["dynamodb items"]
    assert "db.internal:5432/app" in outputs["trail.html"] and "****" in outputs["trail.md"]
