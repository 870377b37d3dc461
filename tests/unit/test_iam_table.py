"""The IAM table (orchestrator/iam.py) against the code: every AWS call the product makes is in the table, and
the generated policy names exact resources for this pipeline."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import botocore.session
import pytest

from orchestrator import iam
from orchestrator.config import load_pipeline

ROOT = Path(__file__).resolve().parents[2] / "orchestrator"
# The sandbox (ecsbox/, beside orchestrator/) plays AWS itself and is not scanned; iam.py is the table.
EXCLUDED = ("iam.py",)
# Files whose `self.client` is one AWS service's client.
SELF_CLIENT = {"orchestrator/aws/dynamodb.py": "dynamodb", "orchestrator/aws/logs.py": "logs"}
PREFIXES = "ecs|ecr|ec2|iam|logs|dynamodb|sns|elasticloadbalancing|cloudwatch|tag|sts"
# boto3 client names whose IAM prefix differs from the client name.
IAM_PREFIX = {"elbv2": "elasticloadbalancing", "resourcegroupstaggingapi": "tag"}


def _sources() -> list[Path]:
    return [p for p in ROOT.rglob("*.py") if not any(str(p.relative_to(ROOT)).startswith(x) for x in EXCLUDED)]


def _api_name(client: str, method: str) -> str:
    model = botocore.session.get_session().get_service_model(client)
    by_snake = {re.sub(r"(?<!^)(?=[A-Z])", "_", op).lower(): op for op in model.operation_names}
    return by_snake.get(method, method)


def calls_in_code() -> dict[str, list[str]]:
    """IAM action -> where the code calls it: aws_call("svc:Op") names and direct `.client("svc").op(` calls."""
    found: dict[str, list[str]] = {}
    for path in _sources():
        text = path.read_text()
        where = str(path.relative_to(ROOT.parent))
        for m in re.finditer(r'aws_call\(\s*"([a-z0-9-]+:[A-Za-z]+)"', text):
            found.setdefault(m.group(1), []).append(where)
        for m in re.finditer(r'client\("([a-z0-9]+)"\)\s*\.\s*([a-z_]+)\(', text):
            client, method = m.group(1), m.group(2)
            if method in ("get_paginator", "get_waiter"):
                continue
            action = f"{IAM_PREFIX.get(client, client)}:{_api_name(client, method)}"
            found.setdefault(action, []).append(where)
        for m in re.finditer(r"ecr_client\.([a-z_]+)\(", text):
            found.setdefault(f"ecr:{_api_name('ecr', m.group(1))}", []).append(where)
        for m in re.finditer(rf'"((?:{PREFIXES}):[A-Z][A-Za-z]+)"', text):  # action names passed around as data
            found.setdefault(m.group(1), []).append(where)
        if where in SELF_CLIENT:
            for m in re.finditer(r"self\.client\.([a-z_]+)\(", text):
                if m.group(1) not in ("get_paginator", "get_waiter", "exceptions"):
                    action = f"{SELF_CLIENT[where]}:{_api_name(SELF_CLIENT[where], m.group(1))}"
                    found.setdefault(action, []).append(where)
    return found


def test_every_aws_call_in_the_code_is_in_the_table() -> None:
    """A call the table does not know would be missing from `snail iam-policy`: AccessDenied in production."""
    known = iam.actions_in_table() | set(iam.NOT_RUNNER)
    missing = {a: w for a, w in calls_in_code().items() if a not in known}
    assert not missing, f"add these to orchestrator/iam.py TABLE: {missing}"


def test_the_scan_finds_the_calls_it_should() -> None:
    """The scan itself works: it sees the deploy call and a direct client call (else the test above is empty)."""
    found = calls_in_code()
    assert "ecs:UpdateService" in found and "ecs:RegisterTaskDefinition" in found
    assert "ecr:GetAuthorizationToken" in found  # aws/ecr.py names it for the push credentials
    assert "dynamodb:TransactWriteItems" in found  # passed as data to a helper, then aws_call(operation)


PIPELINE = """\
version: 1
service:
  cluster: shine
  name: shine-api-gateway
  region: eu-west-1
  container: api
  port: 5000
  task_definition: phases/taskdef.json
  load_balancer: {{target_group_arn: "arn:aws:elasticloadbalancing:eu-west-1:111122223333:targetgroup/tg/1"}}
registry:
  ecr: shine-api-gateway
{state}
phases: [one]
notify:
  - sns: arn:aws:sns:eu-west-1:111122223333:deploys
"""
TASKDEF = {
    "family": "shine",
    "executionRoleArn": "arn:aws:iam::111122223333:role/shine-exec",
    "taskRoleArn": "arn:aws:iam::111122223333:role/shine-task",
    "containerDefinitions": [
        {
            "name": "api",
            "image": "x",
            "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/ecs/shine"}},
        }
    ],
}
PHASE = """\
name: one
image: {context: images/one}
gates:
  - {type: alarm, alarms: [shine-5xx]}
"""


@pytest.fixture
def pipeline_dir(tmp_path: Path) -> Path:
    """A pipeline using ECR (built images), DynamoDB state, a load balancer, an alarm gate and SNS notify."""
    (tmp_path / "phases").mkdir()
    (tmp_path / "images" / "one").mkdir(parents=True)
    (tmp_path / "images" / "one" / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "phases" / "taskdef.json").write_text(json.dumps(TASKDEF))
    (tmp_path / "phases" / "one.yaml").write_text(PHASE)
    state = "state: {backend: dynamodb, table: snail-ci}"
    (tmp_path / "pipeline.yaml").write_text(PIPELINE.format(state=state))
    return tmp_path


def _statement(policy: dict, sid: str) -> dict:
    return next(s for s in policy["Statement"] if s["Sid"] == sid)


def test_policy_names_exact_resources(pipeline_dir: Path) -> None:
    """Service, cluster, family, roles (PassRole to ECS tasks only), table, repository, alarm, topic: exact ARNs."""
    p = load_pipeline(pipeline_dir / "pipeline.yaml")
    pol = iam.policy(p, iam.CI_COMMANDS, account="111122223333").policy
    arn = "arn:aws:ecs:eu-west-1:111122223333"
    assert _statement(pol, "EcsService")["Resource"] == f"{arn}:service/shine/shine-api-gateway"
    assert _statement(pol, "EcsRevisionTags")["Resource"] == f"{arn}:task-definition/shine:*"
    pr = _statement(pol, "PassRole")
    assert pr["Action"] == ["iam:PassRole"]
    assert pr["Resource"] == ["arn:aws:iam::111122223333:role/shine-exec", "arn:aws:iam::111122223333:role/shine-task"]
    assert pr["Condition"] == {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}
    table = _statement(pol, "StateTable")
    assert "arn:aws:dynamodb:eu-west-1:111122223333:table/snail-ci" in table["Resource"]
    assert "dynamodb:CreateTable" not in table["Action"]  # `state init` is an admin step, asked for explicitly
    assert _statement(pol, "EcrRepository")["Resource"] == (
        "arn:aws:ecr:eu-west-1:111122223333:repository/shine-api-gateway"
    )
    assert "ecr:PutImage" in _statement(pol, "EcrRepository")["Action"]
    assert _statement(pol, "Alarms")["Resource"] == "arn:aws:cloudwatch:eu-west-1:111122223333:alarm:shine-5xx"
    assert _statement(pol, "Notify")["Resource"] == "arn:aws:sns:eu-west-1:111122223333:deploys"
    assert _statement(pol, "Logs")["Resource"] == "arn:aws:logs:eu-west-1:111122223333:log-group:/ecs/shine:*"
    assert "ecs:CreateService" not in _statement(pol, "EcsService")["Action"]
    every = [a for s in pol["Statement"] for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])]
    assert "*" not in every and not any(a.endswith(":*") for a in every)


def test_local_state_and_no_features_drop_their_statements(pipeline_dir: Path) -> None:
    """Local SQLite state needs no DynamoDB; plan alone never deploys (no UpdateService, no PassRole)."""
    text = (pipeline_dir / "pipeline.yaml").read_text().replace("state: {backend: dynamodb, table: snail-ci}", "")
    (pipeline_dir / "pipeline.yaml").write_text(text)
    p = load_pipeline(pipeline_dir / "pipeline.yaml")
    sids = {s["Sid"] for s in iam.policy(p, iam.CI_COMMANDS).policy["Statement"]}
    assert "StateTable" not in sids
    plan_only = iam.policy(p, ["plan"]).policy
    actions = {a for s in plan_only["Statement"] for a in s["Action"]}
    assert "ecs:DescribeServices" in actions and "ecs:UpdateService" not in actions and "iam:PassRole" not in actions
    init = iam.policy(load_pipeline(pipeline_dir / "pipeline.yaml"), ["state-init"]).policy
    assert init["Statement"] == []  # no dynamodb backend: nothing to create


# ------------------------------------------------------------------ the adapters against the table
ADAPTERS = ROOT / "aws"
# boto3 client names of the services the adapters call (their operations, snake_case, are what a call looks like).
SERVICES = ("ecs", "ecr", "ec2", "elbv2", "cloudwatch", "logs", "iam", "dynamodb", "sns", "resourcegroupstaggingapi")
CLIENT_OF = {**{s: s for s in SERVICES}, "elasticloadbalancing": "elbv2", "tag": "resourcegroupstaggingapi"}


def _operations() -> dict[str, set[str]]:
    """snake_case operation name -> the boto3 clients that have it."""
    out: dict[str, set[str]] = {}
    session = botocore.session.get_session()
    for client in SERVICES:
        for op in session.get_service_model(client).operation_names:
            out.setdefault(re.sub(r"(?<!^)(?=[A-Z])", "_", op).lower(), set()).add(client)
    return out


def adapter_calls(sources: dict[str, str] | None = None) -> tuple[list[str], list[str]]:
    """(calls of an AWS operation outside any `with aws_call(...)`, calls inside one that name another operation),
    over every module of orchestrator/aws/ (or the given {name: source}). A paginator counts as its operation."""
    ops = _operations()
    unwrapped: list[str] = []
    misnamed: list[str] = []

    def operation(call: ast.Call) -> str | None:
        if not isinstance(call.func, ast.Attribute):
            return None
        name = call.func.attr
        if name == "get_paginator" and call.args and isinstance(call.args[0], ast.Constant):
            name = str(call.args[0].value)
        return name if name in ops else None

    def visit(node: ast.AST, named: str | None, where: str) -> None:
        if isinstance(node, ast.With):
            for item in node.items:
                ctx = item.context_expr
                if isinstance(ctx, ast.Call) and getattr(ctx.func, "id", None) == "aws_call":
                    arg = ctx.args[0] if ctx.args else None
                    named = str(arg.value) if isinstance(arg, ast.Constant) else "?"  # a name passed in: unchecked
        if isinstance(node, ast.Call) and (op := operation(node)) is not None:
            line = f"{where}:{node.lineno} {op}"
            if named is None:
                unwrapped.append(line)
            elif named != "?":
                prefix, _, action = named.rpartition(":")
                clients = {CLIENT_OF[prefix]} if prefix in CLIENT_OF else ops[op]
                if not any(_api_name(c, op) == action for c in clients & ops[op]):
                    misnamed.append(f"{line} inside aws_call({named!r})")
        for child in ast.iter_child_nodes(node):
            visit(child, named, where)

    if sources is None:
        sources = {path.name: path.read_text() for path in sorted(ADAPTERS.glob("*.py"))}
    for name, text in sources.items():
        visit(ast.parse(text), None, name)
    return unwrapped, misnamed


def test_every_call_in_the_adapters_is_named_by_its_aws_call() -> None:
    """Inside orchestrator/aws/ (where every client lives) each AWS operation is called inside an aws_call naming
    exactly it: the names the table is checked against are the calls the product makes, with one error translation."""
    unwrapped, misnamed = adapter_calls()
    assert not unwrapped, f"AWS calls outside aws_call: {unwrapped}"
    assert not misnamed, f"aws_call names another operation than the call it wraps: {misnamed}"


def test_the_adapter_scan_sees_the_calls() -> None:
    """The scan itself works: a call of an operation outside aws_call, and a misnamed one, are both found."""
    src = 'def f(c):\n    c.describe_services()\n    with aws_call("ecs:DescribeClusters"):\n        c.list_tasks()\n'
    unwrapped, misnamed = adapter_calls({"probe.py": src})
    assert unwrapped == ["probe.py:2 describe_services"]
    assert misnamed == ["probe.py:4 list_tasks inside aws_call('ecs:DescribeClusters')"]
