"""DoctorContext: the pipeline, the AWS context, and every describe doctor needs, made once and cached."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from orchestrator.aws.ec2 import Ec2Client
from orchestrator.aws.ecr import EcrClient
from orchestrator.aws.ecs import EcsClient
from orchestrator.aws.elbv2 import Elbv2Client
from orchestrator.aws.iam import IamClient
from orchestrator.aws.logs import LogsClient
from orchestrator.aws.session import AwsContext
from orchestrator.aws.tagging import RevisionTags
from orchestrator.config.model import Pipeline
from orchestrator.errors import NotFound, SnailError

# How old a still valid passed preflight of this service and pipeline is (None: none), given the service as
# described: doctor/preflight.py's `lookup`, handed in by the diagnosis (the context never imports the preflight).
PreflightAge = Callable[[Pipeline, AwsContext, "dict[str, Any] | None"], "float | None"]


class Skip(Exception):
    """A check cannot be made because something it needs is missing; the message says what."""


class DoctorContext:
    """What the checks read. Each describe runs at most once (errors are cached too, so every
    dependent check reports the same cause without asking AWS again)."""

    def __init__(self, pipeline: Pipeline, aws: AwsContext, trust_preflight: PreflightAge | None = None) -> None:
        self.pipeline = pipeline
        self.aws = aws
        self.spec = pipeline.service
        self.trust_preflight = trust_preflight
        self._cache: dict[Any, tuple[bool, Any]] = {}
        self._preflight_age: float | None = None
        self._preflight_looked = False
        self._tags: dict[str, str] = {}

    def preflight_age(self) -> float | None:
        """With `trust_preflight` (the diagnosis after a rollback): the age of a still valid passed preflight
        for this service and pipeline, whose infrastructure checks need not be made again; else None."""
        if self.trust_preflight is None:
            return None
        if not self._preflight_looked:
            self._preflight_looked = True
            try:
                service = self.service()
            except SnailError:
                service = None
            self._preflight_age = self.trust_preflight(self.pipeline, self.aws, service)
        return self._preflight_age

    def _once(self, key: Any, fn: Callable[[], Any]) -> Any:
        if key not in self._cache:
            try:
                self._cache[key] = (True, fn())
            except SnailError as exc:
                self._cache[key] = (False, exc)
        ok, value = self._cache[key]
        if ok:
            return value
        raise value

    def know_service(self, service: dict[str, Any]) -> None:
        """Reuse a DescribeServices answer made just before (the preflight's) instead of asking again.
        Only an ACTIVE service is taken: it also proves its cluster exists (an INACTIVE cluster has none)."""
        if service.get("status") == "ACTIVE":
            self._cache.setdefault("service", (True, service))

    def ecs(self) -> EcsClient:
        """The same ECS adapter the engine reads through."""
        return EcsClient(self.aws)

    def revisions(self) -> RevisionTags:
        """Revision tags, as the engine writes verdict marks."""
        return RevisionTags.of(self.aws, tagging=False)

    def elbv2(self) -> Elbv2Client:
        """Target groups, load balancers, target health."""
        return Elbv2Client(self.aws)

    def iam(self) -> IamClient:
        """Role reads."""
        return IamClient(self.aws)

    # --- ECS -------------------------------------------------------------------------------------
    def cluster(self) -> dict[str, Any] | None:
        """The cluster as described, or None when ECS says it is MISSING."""

        return self._once("cluster", lambda: self.ecs().cluster(self.spec.cluster))

    def service(self) -> dict[str, Any] | None:
        """The service as described (raw), or None when it is MISSING or INACTIVE (deleted)."""

        def load() -> dict[str, Any] | None:
            cl = self.cluster()
            if cl is None or cl.get("status") != "ACTIVE":
                return None
            return self.ecs().service_record(self.spec.cluster, self.spec.name)

        return self._once("service", load)

    def require_service(self) -> dict[str, Any]:
        """The service, or Skip naming why it cannot be read."""
        cl = self.cluster()
        if cl is None or cl.get("status") != "ACTIVE":
            raise Skip(f"cluster {self.spec.cluster!r} is missing or not ACTIVE")
        svc = self.service()
        if svc is None:
            raise Skip(f"service {self.spec.name!r} does not exist in cluster {self.spec.cluster!r}")
        return svc

    def current_taskdef(self) -> dict[str, Any] | None:
        """The task definition revision the service currently runs (None when there is no service)."""

        def load() -> dict[str, Any] | None:
            svc = self.service()
            if svc is None or not svc.get("taskDefinition"):
                return None
            definition, self._tags = self.revisions().describe(svc["taskDefinition"])
            return definition

        return self._once("current_taskdef", load)

    def current_tags(self) -> dict[str, str]:
        """The live revision's resource tags (read with it, no extra call)."""
        self.current_taskdef()
        return dict(self._tags)

    def template(self) -> dict[str, Any] | None:
        """The pipeline's task-definition template JSON (None when the pipeline names none)."""

        def load() -> dict[str, Any] | None:
            if self.spec.task_definition is None:
                return None
            from orchestrator.taskdef import load_template

            return load_template(self.spec.task_definition)

        return self._once("template", load)

    def effective_taskdef(self) -> tuple[dict[str, Any], str]:
        """The definition tasks will run: the service's revision, else the template; Skip if neither."""
        cur = self.current_taskdef()
        if cur is not None:
            return cur, f"revision {cur.get('family')}:{cur.get('revision')}"
        tpl = self.template()
        if tpl is not None:
            return tpl, f"template {self.rel(self.spec.task_definition)}"
        raise Skip(
            "no task definition to read: the service is missing and the pipeline names no task_definition template"
        )

    def container(self, definition: dict[str, Any]) -> dict[str, Any] | None:
        """The pipeline's container (`service.container`) in a task definition."""
        return next(
            (c for c in definition.get("containerDefinitions", []) if c.get("name") == self.spec.container), None
        )

    def running_tasks(self) -> list[dict[str, Any]]:
        """The service's RUNNING tasks (list + batched describe)."""
        return self._once("running_tasks", lambda: self.tasks("RUNNING"))

    def tasks(self, desired_status: str) -> list[dict[str, Any]]:
        """The service's tasks with this desired status, described in batches of 100 (not cached)."""
        return self.ecs().task_records(self.spec.cluster, self.spec.name, desired_status)

    # --- networking ------------------------------------------------------------------------------
    def awsvpc(self) -> tuple[dict[str, Any], str]:
        """The awsvpcConfiguration tasks get: the service's, else the pipeline's `service.network`."""
        svc = self.service()
        if svc is not None:
            cfg = (svc.get("networkConfiguration") or {}).get("awsvpcConfiguration")
            if cfg:
                return cfg, f"service {self.spec.name}"
            raise Skip(f"service {self.spec.name} has no awsvpc networkConfiguration (not awsvpc network mode)")
        net = self.spec.network
        if net is not None and net.subnets:
            return {
                "subnets": list(net.subnets),
                "securityGroups": list(net.security_groups),
                "assignPublicIp": "ENABLED" if net.assign_public_ip else "DISABLED",
            }, "pipeline service.network"
        raise Skip("no network to check: the service is missing and pipeline.yaml has no service.network")

    def subnets(self) -> dict[str, dict[str, Any]]:
        """The tasks' subnets by id (one batched describe)."""

        def load() -> dict[str, dict[str, Any]]:
            ids = list(self.awsvpc()[0].get("subnets") or [])
            if not ids:
                return {}
            return Ec2Client(self.aws).subnets(ids)

        return self._once("subnets", load)

    def vpc_ids(self) -> list[str]:
        """The VPCs the tasks' subnets are in."""
        return sorted({s["VpcId"] for s in self.subnets().values()})

    def route_tables(self) -> list[dict[str, Any]]:
        """Every route table of the tasks' VPCs (one describe)."""

        def load() -> list[dict[str, Any]]:
            vpcs = self.vpc_ids()
            if not vpcs:
                return []
            return Ec2Client(self.aws).route_tables(vpcs)

        return self._once("route_tables", load)

    def internet_gateways(self) -> list[dict[str, Any]]:
        """Internet gateways attached to the tasks' VPCs (one describe)."""

        def load() -> list[dict[str, Any]]:
            vpcs = self.vpc_ids()
            if not vpcs:
                return []
            return Ec2Client(self.aws).internet_gateways(vpcs)

        return self._once("igws", load)

    def vpc_attribute(self, vpc_id: str, attribute: str) -> bool:
        """enableDnsSupport / enableDnsHostnames of a VPC (AWS answers one attribute per call)."""

        return self._once(("vpc_attr", vpc_id, attribute), lambda: Ec2Client(self.aws).vpc_attribute(vpc_id, attribute))

    def security_groups(self) -> dict[str, dict[str, Any]]:
        """The tasks' and the load balancer's security groups by id (one batched describe)."""

        def load() -> dict[str, dict[str, Any]]:
            ids = list(self.awsvpc()[0].get("securityGroups") or [])
            for lb in self.load_balancers():
                ids.extend(g for g in lb.get("SecurityGroups", []) if g not in ids)
            if not ids:
                return {}
            return Ec2Client(self.aws).security_groups(ids)

        return self._once("sgs", load)

    # --- load balancer ---------------------------------------------------------------------------
    def target_group(self) -> dict[str, Any] | None:
        """The pipeline's target group (None when the pipeline has no load balancer)."""

        def load() -> dict[str, Any] | None:
            lb = self.spec.load_balancer
            if lb is None:
                return None
            name = lb.target_group_arn  # an ARN, or (in the sandbox, which seeds by name) a name
            by = {"TargetGroupArns": [name]} if name.startswith("arn:") else {"Names": [name]}
            tgs = self.elbv2().target_group_records(**by)
            if not tgs:
                raise NotFound("elasticloadbalancing:DescribeTargetGroups", "TargetGroupNotFound", lb.target_group_arn)
            return tgs[0]

        return self._once("tg", load)

    def load_balancers(self) -> list[dict[str, Any]]:
        """The load balancers in front of the target group (one describe)."""

        def load() -> list[dict[str, Any]]:
            tg = self.target_group()
            arns = (tg or {}).get("LoadBalancerArns") or []
            if not arns:
                return []
            return self.elbv2().load_balancers(arns)

        return self._once("lbs", load)

    # --- image pull path -------------------------------------------------------------------------
    def repository(self) -> dict[str, Any] | None:
        """The ECR repository, or None when it does not exist."""

        return self._once("repo", lambda: EcrClient(self.aws).repository(self.pipeline.registry.repository_name))

    def image_count(self) -> int:
        """How many images the repository holds (first page only: 0, or at least 1)."""

        def load() -> int:
            return len(EcrClient(self.aws).images(self.pipeline.registry.repository_name))

        return self._once("image_count", load)

    def image_exists(self, image_id: dict[str, str]) -> bool:
        """True when the repository holds this tag or digest."""

        def load() -> bool:
            try:
                return bool(EcrClient(self.aws).images(self.pipeline.registry.repository_name, [image_id]))
            except NotFound:
                return False

        return self._once(("image", tuple(sorted(image_id.items()))), load)

    def role(self, name: str) -> dict[str, Any] | None:
        """An IAM role, or None when it does not exist."""

        return self._once(("role", name), lambda: self.iam().role(name))

    def role_policies(self, name: str) -> tuple[list[dict[str, Any]], list[tuple[str, dict[str, Any]]]]:
        """A role's attached policies (ARN, name) and its inline policy documents (name, document)."""

        def load() -> tuple[list[dict[str, Any]], list[tuple[str, dict[str, Any]]]]:
            iam = self.iam()
            return iam.attached_policies(name), iam.inline_policies(name)

        return self._once(("role_policies", name), load)

    def managed_policy_document(self, arn: str) -> dict[str, Any]:
        """The default version's document of a managed policy."""

        return self._once(("policy", arn), lambda: self.iam().managed_policy_document(arn))

    def log_group_exists(self, name: str) -> bool:
        """True when the CloudWatch Logs group exists (exact name)."""

        return self._once(("log_group", name), lambda: LogsClient(self.aws).group_exists(name))

    def rel(self, path: Any) -> str:
        """A path relative to the pipeline folder, for messages."""
        try:
            return str(path.relative_to(self.pipeline.root))
        except (ValueError, AttributeError):
            return str(path)
