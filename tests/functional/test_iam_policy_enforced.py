"""`snail iam-policy` is enough and every statement is needed: plan, run, rollback and status against moto's
server with IAM enforcement on, as a user holding exactly the generated policy; then without each statement.

moto checks the action of every request but not its resource (it evaluates each request against Resource "*"),
so the user here holds the policy's statements with their Resource widened to "*", and the test checks the
exact ARNs separately: every ARN the run touched matches the generated statement's Resource patterns."""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from tests.harness.cli import snail
from tests.harness.pipeline import write_pipeline

COMMANDS = ("plan", "run", "rollback", "status")
# Statements the generated policy holds that this moto world cannot exercise, and why (each is still in the
# table because the code calls it; tests/unit/test_iam_table.py checks that).
NOT_EXERCISED_HERE = {
    "PassRole": "moto does not check iam:PassRole on RegisterTaskDefinition",
    "NetworkRead": "the world's service is bridge mode: no subnets/ENIs for doctor or the http gate to read",
    "RolesRead": "the world's revisions name no execution role for doctor to read",
    "PoliciesRead": "idem: no role, no attached policies",
    "LogsRead": "the world's containers use no awslogs driver: doctor skips the log-group check",
    "Logs": "no rollback with a diagnosis in this sequence (nothing fails)",
    "EcsRevisionTags": "verdict marks: a denied ecs:TagResource is a warning by design (MarkWriter), not a failure",
}


def _setup(w: Any) -> tuple[Path, dict[str, Any]]:
    write_pipeline(
        w["root"], {"health-only": "a", "hybrid-ml": "b"}, state={"backend": "dynamodb", "table": "snail-ci"}
    )
    w["serve"]("a"), w["serve"]("b")
    assert snail(w, "state", "init").returncode == 0
    out = snail(w, "--output", "json", "iam-policy", "--account", "123456789012", *_cmd_args())
    assert out.returncode == 0, out.stderr
    return w["root"] / "pipeline.yaml", json.loads(out.stdout)["policy"]


def _cmd_args() -> list[str]:
    return [a for c in COMMANDS for a in ("--command", c)]


# moto names an action by the request's signing name, which differs from the IAM prefix for these services.
MOTO_PREFIX = {"tag:": "tagging:", "cloudwatch:": "monitoring:"}


def _moto_names(actions: list[str]) -> list[str]:
    """The same actions as moto spells them (tag:GetResources is checked as tagging:GetResources)."""
    return [m + a.split(":", 1)[1] for a in actions for i, m in MOTO_PREFIX.items() if a.startswith(i)]


def _moto_view(policy: dict[str, Any], without: str | None = None) -> dict[str, Any]:
    """The policy as moto can evaluate it: same statements and actions (plus moto's spelling of the same
    action), Resource "*" (see the module doc)."""
    statements = [
        {**st, "Action": [*st["Action"], *_moto_names(st["Action"])], "Resource": "*"}
        for st in policy["Statement"]
        if st["Sid"] != without
    ]
    return {"Version": policy["Version"], "Statement": statements}


def _user(url: str, policy: dict[str, Any]) -> dict[str, str]:
    iam = boto3.client("iam", region_name="us-east-1", endpoint_url=url)
    iam.create_user(UserName="snail-ci")
    iam.put_user_policy(UserName="snail-ci", PolicyName="snail", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName="snail-ci")["AccessKey"]
    return {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}


@contextmanager
def enforced(url: str) -> Iterator[None]:
    """IAM enforcement on for every request to moto's server, off again afterwards (other tests share it)."""
    requests.post(f"{url}/moto-api/reset-auth", data=b"0", timeout=10)
    try:
        yield
    finally:
        requests.post(f"{url}/moto-api/reset-auth", data=b"inf", timeout=10)


def _sequence(w: Any, env: dict[str, str]) -> list[Any]:
    """plan, run (doctor's preflight included), status, rollback: stop at the first failure."""
    done = []
    for args in (("plan",), ("run",), ("--output", "json", "status"), ("rollback",)):
        r = snail(w, *args, env=env)
        done.append((args, r))
        if r.returncode != 0:
            break
    return done


def _matches(arn: str, resource: str | list[str]) -> bool:
    patterns = resource if isinstance(resource, list) else [resource]
    return any(fnmatch.fnmatchcase(arn, p) for p in patterns)


def test_the_generated_policy_is_enough(world) -> None:
    """As a user holding exactly the policy: plan, run, status and rollback all exit 0, no AccessDenied; the ARNs
    they touched match the statements' exact resources."""
    _, policy = _setup(world)
    env = _user(world["url"], _moto_view(policy))
    with enforced(world["url"]):
        done = _sequence(world, env)
        denied = boto3.client("ecs", region_name="us-east-1", endpoint_url=world["url"])
        with pytest.raises(Exception, match="not authorized|AccessDenied|InvalidClientTokenId|UnrecognizedClient"):
            denied.list_clusters()  # enforcement really is on: the test's own default credentials are refused
    for args, r in done:
        assert r.returncode == 0, (args, r.stdout, r.stderr[-1500:])
        assert "AccessDenied" not in r.stderr and "not authorized" not in r.stderr, (args, r.stderr[-1500:])
    assert len(done) == 4
    ecs = world["ecs"]
    svc = ecs.describe_services(cluster="shine", services=["shine-api-gateway"])["services"][0]
    assert svc["taskDefinition"].endswith("shine-api-gateway:2")  # rolled back from hybrid-ml (:3)
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert _matches(svc["serviceArn"], by_sid["EcsService"]["Resource"])
    for arn in ecs.list_task_definitions()["taskDefinitionArns"]:
        assert _matches(arn, by_sid["EcsRevisionTags"]["Resource"])
    assert _matches("arn:aws:dynamodb:us-east-1:123456789012:table/snail-ci", by_sid["StateTable"]["Resource"])
    assert set(by_sid) - set(NOT_EXERCISED_HERE) == set(EXERCISED)


EXERCISED = ("EcsService", "EcsCluster", "EcsAnyResource", "EcsTasks", "StateTable", "MarksRead")


@pytest.mark.parametrize("sid", EXERCISED)
def test_each_statement_is_needed(world, sid: str) -> None:
    """Without statement `sid`, some command of the sequence is refused and says which permission it lacked."""
    _, policy = _setup(world)
    statement = next(s for s in policy["Statement"] if s["Sid"] == sid)
    env = _user(world["url"], _moto_view(policy, without=sid))
    with enforced(world["url"]):
        done = _sequence(world, env)
    text = "\n".join(r.stdout + r.stderr for _, r in done)
    named = [a for a in [*statement["Action"], *_moto_names(statement["Action"])] if a in text]
    assert ("AccessDenied" in text or "not authorized" in text) and named, (sid, text[-3000:])
