"""The least-privilege IAM policy for a pipeline, derived from ONE table of the AWS actions each command calls.

The table below is the only place that says which command needs which permission on which resource. Every
`aws_call("service:Action")` in the product code must appear in it (tests/unit/test_iam_table.py checks that), and
a functional test runs plan, run, rollback and status on moto with IAM enforcement on, holding exactly the
generated policy, then removes each statement in turn and expects an AccessDenied naming the permission."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

# Commands a CI pipeline runs; `state init` (creating the table) and `--create-service` are one-off admin steps
# and are only included when asked for.
CI_COMMANDS = ("plan", "run", "promote", "rollback", "status", "doctor", "history", "trail", "unlock", "state-show")
ALL_COMMANDS = (*CI_COMMANDS, "state-init", "state-sync", "release", "logs", "create-service")
_DEPLOY = frozenset({"run", "promote", "rollback"})
_FLEET = frozenset({"fleet"})  # `snail fleet run|stop|approve|status|trail`: the fleet runner's own calls
_FORWARD = frozenset({"run", "promote"})
_READS_SERVICE = frozenset({"plan", "run", "promote", "rollback", "status", "doctor", "release"})
# Commands that rebuild the local cache of verdict marks from AWS when it is empty or behind (a fresh checkout).
_SYNCS = frozenset({"plan", "run", "promote", "rollback", "status", "state-sync", "release"})
_STORE = frozenset(
    {"plan", "run", "promote", "rollback", "status", "history", "trail", "unlock", "release", "state-sync", "logs"}
)


@dataclass(frozen=True)
class Permission:
    """One row of the table: an IAM action, the resource it is granted on, the commands that call it and why."""

    action: str
    resource: str  # a key of resources(): cluster, service, task-definition, task, any, repository, ...
    commands: frozenset[str]
    why: str
    when: str | None = None  # a pipeline feature the call depends on (ecr, dynamodb, load_balancer, ...)
    sid: str = ""


def _p(action: str, resource: str, commands: Any, why: str, sid: str, when: str | None = None) -> Permission:
    return Permission(action, resource, frozenset(commands), why, when, sid)


TABLE: tuple[Permission, ...] = (
    # ECS: the service, its revisions and tasks
    _p("ecs:DescribeServices", "service", _READS_SERVICE, "the live revision and its deployments", "EcsService"),
    _p("ecs:UpdateService", "service", _DEPLOY, "deploy a phase's revision; roll back", "EcsService"),
    _p("ecs:CreateService", "service", {"create-service"}, "`run --create-service`", "EcsService"),
    _p("ecs:DescribeClusters", "cluster", {"doctor", "run", "promote"}, "doctor: the cluster is ACTIVE", "EcsCluster"),
    _p(
        "ecs:TagResource",
        "task-definition",
        {*_DEPLOY, "release"},
        "verdict marks (good/failed/held) as tags on the revision",
        "EcsRevisionTags",
    ),
    # These ECS actions take no resource-level permission (AWS documents Resource "*").
    _p(
        "ecs:DescribeTaskDefinition",
        "any",
        {*_SYNCS, "doctor", "logs"},
        "read revisions (and verify their marks)",
        "EcsAnyResource",
    ),
    _p(
        "ecs:ListTaskDefinitions",
        "any",
        _SYNCS,
        "find a revision to reuse; sync marks",
        "EcsAnyResource",
    ),
    _p("ecs:RegisterTaskDefinition", "any", _FORWARD, "register a phase's revision", "EcsAnyResource"),
    _p(
        "ecs:ListTasks",
        "any",
        {*_DEPLOY, "doctor", "logs"},
        "our revision's tasks (gates, diagnosis)",
        "EcsAnyResource",
    ),
    _p("ecs:DescribeTasks", "task", {*_DEPLOY, "doctor", "logs"}, "task addresses and stop reasons", "EcsTasks"),
    _p(
        "ecs:StopTask",
        "task",
        _DEPLOY,
        "a rollback caught during the rollout stops our new tasks (the old ones keep serving)",
        "EcsTasks",
    ),
    _p("iam:PassRole", "role", _FORWARD, "register a revision naming its execution/task roles", "PassRole"),
    # ECR (registry.ecr): the repository, and the push from `docker push` (the registry's data plane)
    _p("ecr:GetAuthorizationToken", "any", _FORWARD, "docker login to ECR for the push", "EcrAuth", "ecr"),
    _p(
        "ecr:DescribeRepositories",
        "repository",
        {"plan", *_FORWARD, "doctor"},
        "the repository exists",
        "EcrRepository",
        "ecr",
    ),
    _p(
        "ecr:DescribeImages",
        "repository",
        {"plan", *_FORWARD, "doctor"},
        "is the image pushed",
        "EcrRepository",
        "ecr",
    ),
    _p("ecr:CreateRepository", "repository", _FORWARD, "registry.create: true", "EcrRepository", "ecr-create"),
    *(
        _p(a, "repository", _FORWARD, "docker push", "EcrRepository", "ecr-build")
        for a in (
            "ecr:BatchCheckLayerAvailability",
            "ecr:InitiateLayerUpload",
            "ecr:UploadLayerPart",
            "ecr:CompleteLayerUpload",
            "ecr:PutImage",
            "ecr:BatchGetImage",
        )
    ),
    # EC2: Describe* has no resource-level permission
    *(
        _p(a, "any", {"doctor", "run", "promote"}, "doctor: subnets, routes, DNS, security groups", "NetworkRead")
        for a in (
            "ec2:DescribeSubnets",
            "ec2:DescribeRouteTables",
            "ec2:DescribeInternetGateways",
            "ec2:DescribeVpcAttribute",
            "ec2:DescribeSecurityGroups",
        )
    ),
    _p(
        "ec2:DescribeNetworkInterfaces",
        "any",
        {*_DEPLOY, "doctor"},
        "a task's address for http gates (awsvpc)",
        "NetworkRead",
    ),
    # ELBv2 (service.load_balancer or a target-health gate): Describe* has no resource-level permission
    _p(
        "elasticloadbalancing:DescribeTargetGroups",
        "any",
        {"doctor", *_DEPLOY},
        "doctor: target group; a target-health gate's group given by name (rollbacks verify with it too)",
        "LoadBalancerRead",
        "load_balancer",
    ),
    _p(
        "elasticloadbalancing:DescribeLoadBalancers",
        "any",
        {"doctor", *_FORWARD},
        "doctor: load balancer",
        "LoadBalancerRead",
        "load_balancer",
    ),
    _p(
        "elasticloadbalancing:DescribeTargetHealth",
        "any",
        {*_DEPLOY, "doctor"},
        "target-health gate, diagnosis",
        "LoadBalancerRead",
        "load_balancer",
    ),
    # Traffic strategies (blue-green, canary, linear): service deployments and their PAUSE hooks
    *(
        _p(a, "service-deployment", _DEPLOY, why, "EcsServiceDeployments", "strategy")
        for a, why in (
            ("ecs:DescribeServiceDeployments", "a strategy's stage and the hook awaiting action"),
            ("ecs:ContinueServiceDeployment", "CONTINUE or ROLLBACK at a PAUSE hook"),
            ("ecs:StopServiceDeployment", "traffic back to blue: a run stopped mid-way, a gate failed in the bake"),
        )
    ),
    _p("ecs:ListServiceDeployments", "service", _DEPLOY, "find a deployment left paused", "EcsService", "strategy"),
    _p("ecs:DescribeServiceRevisions", "any", _DEPLOY, "the revision a deployment targets", "EcsRead", "strategy"),
    *(
        _p(a, "any", {"doctor", *_DEPLOY}, "listener rules and their weights", "LoadBalancerRead", "load_balancer")
        for a in (
            "elasticloadbalancing:DescribeRules",
            "elasticloadbalancing:DescribeListeners",
            "elasticloadbalancing:DescribeTags",
        )
    ),
    _p("cloudwatch:GetMetricData", "any", _DEPLOY, "metrics gates (ALB metrics)", "Metrics", "metrics"),
    # CloudWatch alarms (alarm gates)
    _p("cloudwatch:DescribeAlarms", "alarm", _DEPLOY, "alarm gates", "Alarms", "alarm"),
    # CloudWatch Logs: doctor checks the log group; `snail logs` and the diagnosis read the last lines
    _p("logs:DescribeLogGroups", "any", {"doctor", "run", "promote"}, "doctor: the log group exists", "LogsRead"),
    _p("logs:GetLogEvents", "log-group", {*_DEPLOY, "logs"}, "the last log lines (diagnosis, logs)", "Logs"),
    _p("logs:FilterLogEvents", "log-group", {*_DEPLOY, "logs"}, "the last log lines (diagnosis, logs)", "Logs"),
    # IAM reads (doctor: the execution role can pull and log)
    *(
        _p(a, "role", {"doctor", "run", "promote"}, "doctor: the execution role's policies", "RolesRead")
        for a in ("iam:GetRole", "iam:ListAttachedRolePolicies", "iam:ListRolePolicies", "iam:GetRolePolicy")
    ),
    *(
        _p(a, "policy", {"doctor", "run", "promote"}, "doctor: managed policies of the role", "PoliciesRead")
        for a in ("iam:GetPolicy", "iam:GetPolicyVersion")
    ),
    # Verdict marks read back in one batched call (state sync, release)
    _p("tag:GetResources", "any", _SYNCS, "read verdict marks in pages (empty or stale cache)", "MarksRead"),
    # DynamoDB state (state.backend: dynamodb): runs, steps, trail, marks and the lock
    *(
        _p(a, "table", _STORE, "state: runs, trail, marks, lock", "StateTable", "dynamodb")
        for a in (
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
            "dynamodb:Query",
            "dynamodb:BatchGetItem",
            "dynamodb:BatchWriteItem",
            "dynamodb:TransactWriteItems",  # each item inside also needs its own Put/Update/Delete/ConditionCheck
            "dynamodb:ConditionCheckItem",
        )
    ),
    _p("dynamodb:DescribeTable", "table", {"state-show", "state-init"}, "table status", "StateTable", "dynamodb"),
    _p("dynamodb:CreateTable", "table", {"state-init"}, "`snail state init`", "StateTable", "dynamodb"),
    # Notifications (notify: - sns: ARN)
    _p("sns:Publish", "topic", _DEPLOY, "notify: sns", "Notify", "sns"),
    # Fleets (`snail iam-policy --fleet`): what the fleet runner itself calls, beside each target's own rows
    _p("sts:AssumeRole", "fleet-role", _FLEET, "a fleet target's role_arn (its account)", "FleetAssumeRole"),
    *(
        _p(a, "fleet-table", _FLEET, "fleet journal: run, quarantine, stop, lease", "FleetJournal", "fleet-dynamodb")
        for a in (
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
            "dynamodb:Query",
        )
    ),
)


# Actions the product's code names that the runner never calls against an account (doctor checks that a role has
# them).
NOT_RUNNER = {
    "logs:CreateLogStream": "doctor checks the EXECUTION role has it (ECS's awslogs driver writes with that role)",
    "logs:PutLogEvents": "doctor checks the EXECUTION role has it (ECS's awslogs driver writes with that role)",
    "ecr:GetDownloadUrlForLayer": "doctor checks the EXECUTION role has it (to pull); snail never pulls from ECR",
}


@dataclass
class PolicyReport:
    """The policy document plus what could not be known offline (said, never guessed silently)."""

    policy: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for --output json."""
        return {"policy": self.policy, "notes": self.notes}


def _template(pipeline: Any) -> dict[str, Any]:
    path = getattr(pipeline.service, "task_definition", None)
    if not path:
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _features(pipeline: Any) -> set[str]:
    on: set[str] = set()
    reg = pipeline.registry
    if reg.ecr:
        on.add("ecr")
        if reg.create:
            on.add("ecr-create")
        if any(ph.image.context for ph in pipeline.phases):
            on.add("ecr-build")
    if pipeline.state.backend == "dynamodb":
        on.add("dynamodb")
    gates = [g for ph in pipeline.phases for g in ph.gates]
    if pipeline.service.load_balancer or any(g.type == "target-health" for g in gates):
        on.add("load_balancer")
    if any(g.type == "alarm" for g in gates):
        on.add("alarm")
    if any(g.type == "metrics" for g in gates):
        on.add("metrics")
    if any(getattr(getattr(ph, "strategy", None), "uses_traffic", False) for ph in pipeline.phases):
        on.add("strategy")
    if any(getattr(n, "kind", None) == "sns" for n in getattr(pipeline, "notify", ())):
        on.add("sns")
    return on


def resources(
    pipeline: Any, region: str, account: str, partition: str = "aws"
) -> tuple[dict[str, list[str]], list[str]]:
    """The exact ARNs each resource kind stands for in this pipeline, and notes on what had to be assumed."""
    svc = pipeline.service
    notes: list[str] = []
    tpl = _template(pipeline)
    family = str(tpl.get("family") or svc.name)
    if not tpl.get("family"):
        notes.append(f"task-definition family assumed to be {family!r} (no `family` in a template)")
    roles = sorted({str(tpl[k]) for k in ("executionRoleArn", "taskRoleArn") if tpl.get(k)})
    role_arns = [r if r.startswith("arn:") else f"arn:{partition}:iam::{account}:role/{r}" for r in roles]
    if not role_arns:
        role_arns = [f"arn:{partition}:iam::{account}:role/ecsTaskExecutionRole"]
        notes.append(
            "no executionRoleArn/taskRoleArn in service.task_definition: PassRole and role reads are limited to "
            "ecsTaskExecutionRole; name your roles in the template to pin them"
        )
    log_groups = sorted(
        {
            str(c.get("logConfiguration", {}).get("options", {}).get("awslogs-group"))
            for c in tpl.get("containerDefinitions", [])
            if isinstance(c, dict) and c.get("logConfiguration", {}).get("options", {}).get("awslogs-group")
        }
    ) or [f"/ecs/{svc.name}"]
    alarms = sorted({a for ph in pipeline.phases for g in ph.gates if g.type == "alarm" for a in _alarm_names(g)})
    ecs = f"arn:{partition}:ecs:{region}:{account}"
    table = pipeline.state.table or "snail-state"
    out = {
        "any": ["*"],
        "cluster": [f"{ecs}:cluster/{svc.cluster}"],
        "service": [f"{ecs}:service/{svc.cluster}/{svc.name}"],
        "task-definition": [f"{ecs}:task-definition/{family}:*"],
        "task": [f"{ecs}:task/{svc.cluster}/*"],
        "service-deployment": [f"{ecs}:service-deployment/{svc.cluster}/{svc.name}/*"],
        "role": role_arns,
        "policy": [f"arn:{partition}:iam::aws:policy/*", f"arn:{partition}:iam::{account}:policy/*"],
        "repository": [f"arn:{partition}:ecr:{region}:{account}:repository/{pipeline.registry.repository_name}"],
        "alarm": [f"arn:{partition}:cloudwatch:{region}:{account}:alarm:{a}" for a in alarms],
        "log-group": [f"arn:{partition}:logs:{region}:{account}:log-group:{g}:*" for g in log_groups],
        "table": [
            f"arn:{partition}:dynamodb:{region}:{account}:table/{table}",
            f"arn:{partition}:dynamodb:{region}:{account}:table/{table}/index/*",
        ],
        "topic": [n.target for n in getattr(pipeline, "notify", ()) if getattr(n, "kind", None) == "sns"],
    }
    return out, notes


def _alarm_names(gate: Any) -> list[str]:
    names = getattr(gate, "alarms", None)
    if names is None:
        names = getattr(gate, "params", {}).get("alarms", [])
    return [str(n) for n in names or ()]


def permissions(pipeline: Any, commands: tuple[str, ...] | list[str] = CI_COMMANDS) -> list[Permission]:
    """The table's rows this pipeline needs for these commands."""
    on = _features(pipeline)
    wanted = set(commands)
    return [p for p in TABLE if p.commands & wanted and (p.when is None or p.when in on)]


def policy(
    pipeline: Any,
    commands: tuple[str, ...] | list[str] = CI_COMMANDS,
    region: str | None = None,
    account: str = "*",
    partition: str = "aws",
) -> PolicyReport:
    """The IAM policy document: one statement per resource group, sorted actions, exact resources."""
    region = region or pipeline.service.region
    res, notes = resources(pipeline, region, account, partition)
    statements: dict[str, dict[str, Any]] = {}
    for p in permissions(pipeline, commands):
        arns = res[p.resource]
        if not arns:
            continue
        st = statements.setdefault(p.sid, {"Sid": p.sid, "Effect": "Allow", "Action": [], "Resource": []})
        if p.action not in st["Action"]:
            st["Action"].append(p.action)
        for arn in arns:
            if arn not in st["Resource"]:
                st["Resource"].append(arn)
        if p.action == "iam:PassRole":
            st["Condition"] = {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}
    out = []
    for st in statements.values():
        st["Action"] = sorted(st["Action"])
        st["Resource"] = st["Resource"][0] if len(st["Resource"]) == 1 else st["Resource"]
        out.append(st)
    if account == "*":
        notes.append("account is '*' in the ARNs: pass --account ID to pin it")
    return PolicyReport({"Version": "2012-10-17", "Statement": out}, notes)


def actions_in_table() -> set[str]:
    """Every IAM action the table knows."""
    return {p.action for p in TABLE}


# ------------------------------------------------------------------------------------------------ fleets
# What a fleet run calls on each target: plan, deliver (run), give back (rollback), look (status), preflight.
FLEET_TARGET_COMMANDS = ("plan", "run", "rollback", "status", "doctor")


@dataclass
class AccountPolicy:
    """One set of credentials a fleet run uses (the runner's own, a profile, an assumed role) and its policy."""

    account: str  # the account id, or "*" when it cannot be known offline (a profile, the runner's own)
    credentials: str  # "runner" | "profile NAME" | "role ARN"
    targets: list[str]
    policy: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """Plain data for --output json."""
        return {
            "account": self.account,
            "credentials": self.credentials,
            "targets": self.targets,
            "policy": self.policy,
        }


def _merge(into: dict[str, dict[str, Any]], statements: list[dict[str, Any]]) -> None:
    """Statements of one Sid are one statement: their actions and resources united."""
    for st in statements:
        have = into.setdefault(st["Sid"], {**st, "Action": [], "Resource": []})
        for key in ("Action", "Resource"):
            values = st[key] if isinstance(st[key], list) else [st[key]]
            have[key] += [v for v in values if v not in have[key]]


def _document(statements: dict[str, dict[str, Any]]) -> dict[str, Any]:
    out = []
    for st in statements.values():
        res = st["Resource"]
        out.append({**st, "Action": sorted(st["Action"]), "Resource": res[0] if len(res) == 1 else res})
    return {"Version": "2012-10-17", "Statement": out}


def fleet_policies(
    fleet: Any, pipelines: dict[str, Any], account: str = "*", partition: str = "aws"
) -> tuple[list[AccountPolicy], list[str]]:
    """Per set of credentials a fleet run uses: the policy its targets need (each target's pipeline policy for
    what a fleet run calls on it, in its region and account), plus, for the runner's own credentials, the fleet
    journal's table and sts:AssumeRole on every target's role_arn. Notes say what had to be assumed."""
    groups: dict[str, tuple[str, list[str], dict[str, dict[str, Any]]]] = {}
    said: dict[str, list[str]] = {}  # a pipeline's note -> the targets it holds for (said once)
    for t in fleet.targets:
        p = pipelines[t.name]
        if t.role_arn:
            who, acct = f"role {t.role_arn}", t.role_arn.split(":")[4] or account
        elif t.profile:
            who, acct = f"profile {t.profile}", account
        else:
            who, acct = "runner", account
        report = policy(
            p, FLEET_TARGET_COMMANDS, region=t.region or p.service.region, account=acct, partition=partition
        )
        _, names, statements = groups.setdefault(who, (acct, [], {}))
        names.append(t.name)
        _merge(statements, report.policy["Statement"])
        for n in report.notes:
            if not n.startswith("account is '*'"):
                said.setdefault(n, []).append(t.name)
    notes = [f"{', '.join(names)}: {n}" for n, names in said.items()]
    runner = groups.setdefault("runner", (account, [], {}))[2]
    roles = [t.role_arn for t in fleet.targets if t.role_arn]
    on = {"fleet-dynamodb"} if fleet.state.backend == "dynamodb" else set()
    region = fleet.state.region or next((t.region for t in fleet.targets if t.region), None)
    region = region or next(iter(pipelines.values())).service.region
    table = f"arn:{partition}:dynamodb:{region}:{account}:table/{fleet.state.table}"
    where = {"fleet-role": roles, "fleet-table": [table]}
    fleet_rows = [r for r in TABLE if r.commands & _FLEET and (r.when is None or r.when in on) and where[r.resource]]
    _merge(
        runner,
        [{"Sid": r.sid, "Effect": "Allow", "Action": [r.action], "Resource": where[r.resource]} for r in fleet_rows],
    )
    for arn in roles:
        notes.append(f"{arn} must trust the runner's principal (its trust policy allows sts:AssumeRole from it)")
    if account == "*":
        notes.append("account is '*' where it cannot be read from a role_arn: pass --account ID to pin it")
    out = [AccountPolicy(acct, who, names, _document(st)) for who, (acct, names, st) in groups.items() if st]
    return out, notes
