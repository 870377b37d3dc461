"""`snail iam-policy --fleet`: one policy per set of credentials a fleet run uses, with the fleet's own needs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.harness.cli import snail

DIGEST = "sha256:" + "a" * 64
PIPELINE = """\
version: 1
service: {cluster: shine, name: shine-api-gateway, region: us-east-1, container: api, port: 5000}
registry: {ecr: shine-api-gateway}
phases: [v1]
"""
FLEET = """\
version: 1
targets:
  staging: {cluster: shine-staging}
  cell1:   {cluster: shine-cell1, profile: prod}
  euw1:    {region: eu-west-1, cluster: shine, role_arn: "arn:aws:iam::210987654321:role/snail-deployer"}
waves:
  - {name: staging, targets: [staging]}
  - {name: rest, targets: [cell1, euw1]}
"""


def _policy(root: Path, *args: str) -> dict[str, Any]:
    """`snail --output json iam-policy --fleet ...` in `root` (no AWS is called)."""
    r = snail(root, "--output", "json", "iam-policy", "--fleet", *args, hermetic=True)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


def _fleet(root: Path, extra: str = "") -> Path:
    (root / "phases").mkdir(parents=True)
    (root / "pipeline.yaml").write_text(PIPELINE)
    (root / "phases" / "v1.yaml").write_text(f'name: v1\nimage: {{ref: "127.0.0.1:5055/shine@{DIGEST}"}}\n')
    (root / "fleet.yaml").write_text(FLEET + extra)
    return root


def _statement(group: dict[str, Any], sid: str) -> dict[str, Any] | None:
    return next((s for s in group["policy"]["Statement"] if s["Sid"] == sid), None)


def test_each_account_gets_its_targets_policy_and_the_runner_assumes_the_roles(tmp_path: Path) -> None:
    """The runner's credentials: staging's resources, the fleet table and sts:AssumeRole on euw1's role; the
    role's account (read from its ARN): euw1's resources in eu-west-1; the profile: cell1's resources."""
    root = _fleet(tmp_path, "state: {backend: dynamodb, table: snail-fleet, region: us-east-1}\n")
    doc = _policy(root, "--account", "123456789012")
    by = {g["credentials"]: g for g in doc["accounts"]}
    assert set(by) == {"runner", "profile prod", "role arn:aws:iam::210987654321:role/snail-deployer"}
    runner, prod = by["runner"], by["profile prod"]
    role = by["role arn:aws:iam::210987654321:role/snail-deployer"]
    assert runner["targets"] == ["staging"] and prod["targets"] == ["cell1"] and role["targets"] == ["euw1"]
    assume = _statement(runner, "FleetAssumeRole")
    assert assume == {
        "Sid": "FleetAssumeRole",
        "Effect": "Allow",
        "Action": ["sts:AssumeRole"],
        "Resource": "arn:aws:iam::210987654321:role/snail-deployer",
    }
    journal = _statement(runner, "FleetJournal")
    assert journal is not None and journal["Resource"] == "arn:aws:dynamodb:us-east-1:123456789012:table/snail-fleet"
    assert {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:Query"} <= set(journal["Action"])
    assert _statement(role, "FleetJournal") is None and _statement(role, "FleetAssumeRole") is None
    service = _statement(role, "EcsService")
    assert (
        service is not None
        and service["Resource"] == "arn:aws:ecs:eu-west-1:210987654321:service/shine/shine-api-gateway"
    )
    assert "ecs:UpdateService" in service["Action"]
    cell1 = _statement(prod, "EcsService")
    assert (
        cell1 is not None
        and cell1["Resource"] == "arn:aws:ecs:us-east-1:123456789012:service/shine-cell1/shine-api-gateway"
    )
    assert any("must trust the runner" in n for n in doc["notes"])


def test_a_local_fleet_journal_needs_no_table(tmp_path: Path) -> None:
    """state: local (the default): no FleetJournal statement anywhere; the account stays '*' and a note says so."""
    doc = _policy(_fleet(tmp_path))
    assert all(_statement(g, "FleetJournal") is None for g in doc["accounts"])
    runner = next(g for g in doc["accounts"] if g["credentials"] == "runner")
    assert runner["account"] == "*" and any("--account" in n for n in doc["notes"])
