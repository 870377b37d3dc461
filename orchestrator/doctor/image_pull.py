"""The image pull path: the ECR repository and image, the execution role's permissions, the log group."""

from __future__ import annotations

import fnmatch
from typing import Any

from orchestrator.arns import short_name
from orchestrator.doctor.context import DoctorContext, Skip
from orchestrator.doctor.model import FAILED, PASSED, WARNING, Check
from orchestrator.doctor.runner import Result, check, run_checks

EXECUTION_POLICY_ARN = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
ECR_PULL = ("ecr:GetAuthorizationToken", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer")
LOGS_WRITE = ("logs:CreateLogStream", "logs:PutLogEvents")


def _require_ecr(ctx: DoctorContext) -> str:
    reg = ctx.pipeline.registry
    if not reg.ecr:
        raise Skip(f"the registry is {reg.url}, not ECR: the build step checks it when it pushes")
    return reg.ecr


def split_image(ref: str) -> tuple[str, str, dict[str, str]]:
    """'host/repo:tag' or 'host/repo@sha256:…' -> (host, repo, imageId for describe_images)."""
    host, _, rest = ref.partition("/") if "/" in ref else ("", "", ref)
    if "@" in rest:
        repo, digest = rest.split("@", 1)
        return host, repo, {"imageDigest": digest}
    repo, _, tag = rest.rpartition(":") if ":" in rest else (rest, "", "latest")
    return host, repo, {"imageTag": tag}


@check("image.repository", "the ECR repository exists and holds images")
def repository(ctx: DoctorContext) -> Result:
    """Tasks cannot pull from a repository that does not exist."""
    name = _require_ecr(ctx)
    s = ctx.spec
    repo = ctx.repository()
    if repo is None:
        fix = f"aws ecr create-repository --repository-name {name} --region {s.region}"
        if ctx.pipeline.registry.create:
            return Result(
                WARNING,
                f"ECR repository {name} does not exist yet; `snail run` creates it (registry.create: true)",
                fix,
            )
        return Result(
            FAILED,
            f"ECR repository {name} does not exist in {s.region}: nothing can be pushed or pulled",
            f"{fix}   (or set registry.create: true in pipeline.yaml)",
        )
    n = ctx.image_count()
    if n == 0:
        return Result(
            WARNING,
            f"ECR repository {name} exists but holds no images yet ({repo.get('repositoryUri')}); "
            "the first phase must build and push one",
        )
    more = "+" if n >= 100 else ""
    return Result(PASSED, f"ECR repository {repo.get('repositoryUri')} holds {n}{more} image(s)")


@check("image.current", "the image the service runs exists in the registry")
def current_image(ctx: DoctorContext) -> Result:
    """A revision whose image tag was deleted fails every new task with CannotPullContainerError."""
    name = _require_ecr(ctx)
    definition, label = ctx.effective_taskdef()
    cd = ctx.container(definition)
    if cd is None:
        raise Skip(f"{label} has no container {ctx.spec.container!r} (see the ports checks)")
    ref = str(cd.get("image", ""))
    host, repo, image_id = split_image(ref)
    if ".dkr.ecr." not in host or repo != name:
        raise Skip(f"{label} runs {ref}, which is not in ECR repository {name}")
    if ctx.repository() is None:
        raise Skip(f"ECR repository {name} does not exist (see image.repository)")
    what = image_id.get("imageTag") or image_id.get("imageDigest")
    if not ctx.image_exists(image_id):
        return Result(
            FAILED,
            f"{label} runs {ref}, but {name} has no image {what}: new tasks stop with CannotPullContainerError",
            f"push {ref} again, or roll back: snail rollback",
        )
    return Result(PASSED, f"{label} runs {ref}: present in ECR")


def _allowed_actions(doc: dict[str, Any]) -> list[str]:
    stmts = doc.get("Statement", [])
    if isinstance(stmts, dict):
        stmts = [stmts]
    out: list[str] = []
    for st in stmts:
        if st.get("Effect") != "Allow":
            continue
        acts = st.get("Action", [])
        out.extend([acts] if isinstance(acts, str) else acts)
    return out


def grants(patterns: list[str], action: str) -> bool:
    """True when one of the policy's Action patterns (wildcards allowed) covers `action`."""
    return any(fnmatch.fnmatchcase(action.lower(), p.lower()) for p in patterns)


@check("image.execution-role", "the task execution role exists and may pull from ECR and write logs")
def execution_role(ctx: DoctorContext) -> Result:
    """The agent pulls the image and ships logs as the execution role; without it tasks never start."""
    definition, label = ctx.effective_taskdef()
    cd = ctx.container(definition) or {}
    uses_ecr = ".dkr.ecr." in str(cd.get("image", "")) or bool(ctx.pipeline.registry.ecr)
    uses_logs = (cd.get("logConfiguration") or {}).get("logDriver") == "awslogs"
    needed = (ECR_PULL if uses_ecr else ()) + (LOGS_WRITE if uses_logs else ())
    arn = definition.get("executionRoleArn")
    if not arn:
        if not needed:
            return Result(PASSED, f"{label} has no executionRoleArn and needs none (no ECR image, no awslogs)")
        return Result(
            FAILED,
            f"{label} has no executionRoleArn, but the agent needs one to "
            + " and ".join(x for x, on in (("pull from ECR", uses_ecr), ("write awslogs", uses_logs)) if on),
            '"executionRoleArn": "arn:aws:iam::<account>:role/ecsTaskExecutionRole" in the task-definition template',
        )
    role_name = short_name(arn)
    role = ctx.role(role_name)
    attach = f"aws iam attach-role-policy --role-name {role_name} --policy-arn {EXECUTION_POLICY_ARN}"
    if role is None:
        return Result(
            FAILED,
            f"execution role {role_name} ({arn}, from {label}) does not exist: tasks stop before the image is pulled",
            f"aws iam create-role --role-name {role_name} --assume-role-policy-document "
            '\'{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":'
            '{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}\'; ' + attach,
        )
    attached, inline = ctx.role_policies(role_name)
    patterns: list[str] = []
    names = []
    for p in attached:
        names.append(p.get("PolicyName", p.get("PolicyArn", "?")))
        if p.get("PolicyArn") == EXECUTION_POLICY_ARN:
            patterns.extend(ECR_PULL + LOGS_WRITE)  # AWS's managed policy: exactly these, on every resource
        else:
            patterns.extend(_allowed_actions(ctx.managed_policy_document(p["PolicyArn"])))
    for n, doc in inline:
        names.append(f"{n} (inline)")
        patterns.extend(_allowed_actions(doc))
    missing = [a for a in needed if not grants(patterns, a)]
    seen = f"role {role_name}: policies {', '.join(names) or 'none'}"
    if missing:
        return Result(
            FAILED,
            f"execution role {role_name} lacks {', '.join(missing)}: tasks stop with "
            f"{'CannotPullContainerError' if any(m.startswith('ecr:') for m in missing) else 'ResourceInitializationError'}"
            f"\n{seen}",
            attach,
        )
    return Result(
        PASSED,
        f"execution role {role_name} allows {', '.join(needed) or 'everything it needs'}\n{seen}"
        "\n(Allow statements only; resource scoping and Deny statements are not evaluated)",
    )


@check("image.log-group", "the container's awslogs log group exists")
def log_group(ctx: DoctorContext) -> Result:
    """An awslogs container whose group does not exist never starts (ResourceInitializationError)."""
    definition, label = ctx.effective_taskdef()
    cd = ctx.container(definition) or {}
    lc = cd.get("logConfiguration") or {}
    if lc.get("logDriver") != "awslogs":
        raise Skip(f"container {ctx.spec.container} in {label} does not use the awslogs driver")
    opts = lc.get("options") or {}
    group = opts.get("awslogs-group")
    region = opts.get("awslogs-region", ctx.spec.region)
    if not group:
        return Result(
            FAILED,
            f"container {ctx.spec.container} in {label} uses awslogs without awslogs-group",
            '"options": {"awslogs-group": "/ecs/' + ctx.spec.name + '", ...} in the task-definition template',
        )
    if ctx.log_group_exists(group):
        return Result(PASSED, f"log group {group} exists ({region})")
    if str(opts.get("awslogs-create-group", "")).lower() == "true":
        return Result(
            WARNING,
            f"log group {group} does not exist; awslogs-create-group is true, so the execution role "
            "also needs logs:CreateLogGroup",
            f"aws logs create-log-group --log-group-name {group} --region {region}",
        )
    return Result(
        FAILED,
        f"log group {group} does not exist: tasks stop with ResourceInitializationError before the container starts",
        f"aws logs create-log-group --log-group-name {group} --region {region}",
    )


CHECKS = (repository, current_image, execution_role, log_group)


def checks(ctx: DoctorContext) -> list[Check]:
    """Image pull path checks."""
    return run_checks(ctx, CHECKS)
