"""Start, seed, inspect and stop the sandbox: what `snail sandbox up|down|status` and `--sandbox` call.

The sandbox is one detached process (`daemon.py`) whose moto answers on 127.0.0.1; its pid and endpoint
are kept in `<state_dir>/sandbox.json`. Seeding goes through boto3 against that endpoint, the same way the
product talks to AWS, and is idempotent: `up` on a running sandbox only adds what is missing.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import structlog

from ecsbox import bootstrap
from ecsbox._util import pid_alive, private_file, write_private
from ecsbox.daemon import DEFAULT_ACCOUNT_ID, sandbox_id_for
from ecsbox.docker_setup import RegistryChoice
from ecsbox.errors import SandboxError
from ecsbox.lb_seed import LoadBalancerSeed, seed_load_balancer

log = structlog.get_logger(__name__)

INFO_FILE = "sandbox.json"
LOG_FILE = "daemon.log"
# moto's port when none is asked for: not LocalStack's 4566 (a LocalStack, or another emulator, may be running),
# and below Linux's ephemeral range (32768-60999), so a client's outgoing connection never holds it.
DEFAULT_PORT = 4577
CREDENTIALS = {"aws_access_key_id": "sandbox", "aws_secret_access_key": "sandbox"}
BOOTSTRAP_IMAGE = "python:3.12-slim"  # any image with python3; SandboxSpec.bootstrap_image overrides it


def default_bootstrap_image() -> str:
    """The base of the bootstrap revision's image: $SNAIL_BASE_IMAGE (where a local base image stands in for a
    public one, as for the pipeline's builds), else python:3.12-slim."""
    return os.environ.get("SNAIL_BASE_IMAGE") or BOOTSTRAP_IMAGE


EXECUTION_ROLE = "ecsTaskExecutionRole"
EXECUTION_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
NAME_TAG = "snail-sandbox"
VPC_CIDR = "10.42.0.0/16"
SUBNETS = (("10.42.1.0/24", "a"), ("10.42.2.0/24", "b"))


@dataclass(frozen=True)
class SandboxSpec:
    """What the sandbox must hold for one pipeline: its cluster, service, container port and repository."""

    cluster: str
    service: str
    region: str = "us-east-1"
    container: str = "api"
    port: int = 5000
    repository: str | None = None
    desired_count: int = 1
    create_service: bool = True
    circuit_breaker: bool = True
    load_balancer: LoadBalancerSeed | None = None  # service.load_balancer: seeded when pipeline.yaml has one
    # the base (with python3) of the image the service's first revision runs (ecsbox.bootstrap)
    bootstrap_image: str = field(default_factory=default_bootstrap_image)

    def key(self) -> str:
        """What seeding depends on (create_service aside: a --no-service sandbox stays without its service)."""
        return (
            f"{self.region}|{self.cluster}|{self.service}|{self.container}|{self.port}|{self.repository}|"
            f"{self.desired_count}|{self.circuit_breaker}|{self.load_balancer}"
        )


@dataclass
class SandboxInfo:
    """A sandbox as recorded in sandbox.json, plus what `status` found."""

    pid: int
    endpoint_url: str
    registry: str
    region: str
    account_id: str = DEFAULT_ACCOUNT_ID
    started_at: str = ""
    state_dir: str = ""
    sandbox_id: str = ""
    registry_started: bool = False
    registry_how: str = ""  # RegistryChoice.how: env | running | binary | container
    registry_ref: str = ""  # the pid or container id of a registry we started
    seeded: dict[str, Any] = field(default_factory=dict)
    seeded_for: list[str] = field(default_factory=list)  # SandboxSpec.key() of every service seeded (at `up`)
    alive: bool | None = None
    answering: bool | None = None
    services: list[dict[str, Any]] = field(default_factory=list)

    def client_kwargs(self, region: str | None = None) -> dict[str, str]:
        """boto3 client/session arguments that reach the sandbox (endpoint, region, dummy credentials)."""
        return {"endpoint_url": self.endpoint_url, "region_name": region or self.region, **CREDENTIALS}

    def client(self, service: str, region: str | None = None) -> Any:
        """A boto3 client for the sandbox."""
        import boto3

        return boto3.client(service, **self.client_kwargs(region))

    def endpoints(self) -> dict[str, Any]:
        """What a client needs to use this sandbox: the AWS endpoint, the registry to push to, dummy credentials,
        and, when seeded with a load balancer, the production and test listeners' URLs."""
        return {
            "endpoint_url": self.endpoint_url,
            "region": self.region,
            "registry": self.registry,
            "credentials": dict(CREDENTIALS),
            "production_url": self.seeded.get("production_url"),
            "test_url": self.seeded.get("test_url"),
        }

    def registry_description(self) -> str:
        """Which registry pushes go to, and how it came to be (from SNAIL_REGISTRY, already running, started)."""
        return RegistryChoice(self.registry, self.registry_how, self.registry_ref).describe()

    @property
    def healthy(self) -> bool:
        """The daemon process is alive and its endpoint answers."""
        return bool(self.alive and self.answering)

    def to_json(self) -> dict[str, Any]:
        """What sandbox.json holds (runtime observations left out)."""
        data = asdict(self)
        for key in ("alive", "answering", "services"):
            data.pop(key)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SandboxInfo:
        """Read sandbox.json's content."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


# ------------------------------------------------------------------------------------------------ public


def up(
    spec: SandboxSpec | None,
    state_dir: Path,
    port: int | None = None,
    registry_port: int = 5055,
    manage_docker: bool = True,
    wait_steady: float = 90.0,
    log_processor: str | None = None,
) -> SandboxInfo:
    """Start the sandbox if it is not up (cleaning up a dead one first), then seed what `spec` needs.

    `port` is moto's port on 127.0.0.1 (a taken one is refused; None: DEFAULT_PORT if free, else any free one).
    `log_processor` (`module:function`, a structlog processor) masks the daemon's log, e.g. the host's redaction.
    """
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    info = status(state_dir)
    if info is not None and not info.healthy:
        log.warning("sandbox_dead_found", pid=info.pid, alive=info.alive, answering=info.answering)
        _stop_daemon(info)
        _remove_containers(sandbox_id_for(state_dir))
        (state_dir / INFO_FILE).unlink(missing_ok=True)
        info = None
    if info is None and port:
        _refuse_taken_port(port)  # before anything starts: a taken port is the user's to resolve
    if spec is not None and manage_docker:
        _ensure_bootstrap_image(spec)  # before anything starts: a base image that cannot be had is the user's too
    if info is None:
        choice = _ensure_docker(state_dir, registry_port) if manage_docker else None
        registry = choice.address if choice else f"127.0.0.1:{registry_port}"
        try:
            info = _start_daemon(state_dir, port, spec.region if spec else "us-east-1", registry, log_processor)
        except BaseException:
            if choice is not None and choice.started:
                from ecsbox.docker_setup import stop_registry

                stop_registry(choice)
            raise
        if choice is not None:
            info.registry_started, info.registry_how, info.registry_ref = choice.started, choice.how, choice.ref
        _write_info(state_dir, info)
    else:
        log.info("sandbox_already_up", pid=info.pid, endpoint_url=info.endpoint_url)
    if spec is not None:
        started = time.monotonic()
        info.seeded = {**info.seeded, **seed(info, spec)}
        info.seeded_for = sorted({*info.seeded_for, spec.key()})
        _write_info(state_dir, info)
        log.info("sandbox_seeded", seconds=round(time.monotonic() - started, 2), service=spec.service)
        if spec.create_service and wait_steady:
            wait_for_steady(info, spec, wait_steady)
    info.alive = info.answering = True
    return info


def ensure_up(spec: SandboxSpec, state_dir: Path, **kwargs: Any) -> SandboxInfo:
    """For `snail --sandbox run`: the running sandbox as it is when `up` already seeded it for this service
    (no AWS call: seeding is ~17 calls with 5 writes, done once); otherwise started and seeded, like `up`."""
    info = status(state_dir)
    if info is not None and info.healthy and spec.key() in info.seeded_for:
        return info
    return up(spec, state_dir, **kwargs)


def down(state_dir: Path, all_containers: bool = False, stop_registry: bool = True) -> dict[str, Any]:
    """Stop the daemon, remove its containers (every snail-sandbox one with `all_containers`), forget it."""
    state_dir = Path(state_dir)
    info = _read_info(state_dir)
    result: dict[str, Any] = {"daemon": None, "containers_removed": 0, "registry_stopped": False}
    if info is not None:
        result["daemon"] = _stop_daemon(info)
    label = None if all_containers else sandbox_id_for(state_dir)
    result["containers_removed"] = _remove_containers(label)
    if info is not None and info.registry_started and stop_registry:
        from ecsbox.docker_setup import stop_registry as stop

        result["registry_stopped"] = stop(RegistryChoice(info.registry, info.registry_how, info.registry_ref))
    (state_dir / INFO_FILE).unlink(missing_ok=True)
    log.info("sandbox_down", **result)
    return result


def status(state_dir: Path, with_services: bool = False) -> SandboxInfo | None:
    """The recorded sandbox with `alive`/`answering` checked, or None if there is none."""
    info = _read_info(Path(state_dir))
    if info is None:
        return None
    info.alive = pid_alive(info.pid)
    info.answering = info.alive and _answering(info.endpoint_url)
    if info.healthy and with_services:
        info.services = services_summary(info)
    return info


def services_summary(info: SandboxInfo) -> list[dict[str, Any]]:
    """Every service in the sandbox's region with its deployments and tasks (for `sandbox status`)."""
    ecs = info.client("ecs")
    out = []
    for cluster_arn in ecs.list_clusters()["clusterArns"]:
        arns = ecs.list_services(cluster=cluster_arn)["serviceArns"]
        if not arns:
            continue
        for svc in ecs.describe_services(cluster=cluster_arn, services=arns[:10])["services"]:
            task_arns = ecs.list_tasks(cluster=cluster_arn, serviceName=svc["serviceName"])["taskArns"]
            tasks = ecs.describe_tasks(cluster=cluster_arn, tasks=task_arns)["tasks"] if task_arns else []
            out.append(
                {
                    "cluster": cluster_arn.rsplit("/", 1)[-1],
                    "service": svc["serviceName"],
                    "status": svc["status"],
                    "task_definition": svc.get("taskDefinition"),
                    "desired": svc["desiredCount"],
                    "running": svc["runningCount"],
                    "pending": svc["pendingCount"],
                    "deployments": [
                        {
                            k: d.get(k)
                            for k in ("id", "status", "rolloutState", "taskDefinition", "runningCount", "failedTasks")
                        }
                        for d in svc.get("deployments", [])
                    ],
                    "service_deployment": _current_service_deployment(ecs, svc.get("currentServiceDeployment")),
                    "tasks": [
                        {
                            "id": t["taskArn"].rsplit("/", 1)[-1],
                            "last_status": t["lastStatus"],
                            "task_definition": t["taskDefinitionArn"].rsplit("/", 1)[-1],
                            "endpoints": [
                                f"{b['bindIP']}:{b['hostPort']}"
                                for c in t.get("containers", [])
                                for b in c.get("networkBindings", [])
                            ],
                        }
                        for t in tasks
                    ],
                }
            )
    return out


def _current_service_deployment(ecs: Any, arn: str | None) -> dict[str, Any] | None:
    """The service deployment in a few words: status, stage, traffic on the new revision, hooks waiting."""
    if not arn:
        return None
    found = ecs.describe_service_deployments(serviceDeploymentArns=[arn])["serviceDeployments"]
    if not found:
        return None
    dep = found[0]
    target = dep.get("targetServiceRevision") or {}
    return {
        "id": arn.rsplit("/", 1)[-1],
        "status": dep["status"],
        "strategy": (dep.get("deploymentConfiguration") or {}).get("strategy", "ROLLING"),
        "stage": dep.get("lifecycleStage"),
        "production_percent": target.get("requestedProductionTrafficWeight"),
        "test_percent": target.get("requestedTestTrafficWeight"),
        "awaiting_hooks": [
            h["hookId"] for h in dep.get("lifecycleHookDetails", []) if h["status"] == "AWAITING_ACTION"
        ],
    }


# ------------------------------------------------------------------------------------------------ seeding


def seed(info: SandboxInfo, spec: SandboxSpec) -> dict[str, Any]:
    """Create (idempotently) what the pipeline needs in the sandbox; return the ids."""
    c = {name: info.client(name, spec.region) for name in ("ecs", "ec2", "ecr", "logs", "iam")}
    seeded: dict[str, Any] = {}
    seeded["cluster_arn"] = _seed_cluster(c["ecs"], spec.cluster)
    seeded.update(_seed_network(c["ec2"], spec.port))
    seeded["repository_uri"] = _seed_repository(c["ecr"], spec.repository or spec.service)
    seeded["log_group"] = _seed_log_group(c["logs"], f"/ecs/{spec.service}")
    seeded["execution_role_arn"] = _seed_execution_role(c["iam"])
    seeded["task_definition_arn"] = _seed_task_definition(c["ecs"], spec, seeded)
    if spec.load_balancer is not None:
        seeded.update(seed_load_balancer({**c, "elbv2": info.client("elbv2", spec.region)}, spec, seeded))
    seeded["service_arn"] = _seed_service(c["ecs"], spec, seeded) if spec.create_service else None
    seeded["registry"] = info.registry
    for key, value in seeded.items():
        log.debug("sandbox_seed", key=key, value=value)
    return seeded


def _seed_cluster(ecs: Any, name: str) -> str:
    found = ecs.describe_clusters(clusters=[name])["clusters"]
    if found and found[0]["status"] == "ACTIVE":
        return found[0]["clusterArn"]
    return ecs.create_cluster(clusterName=name)["cluster"]["clusterArn"]


def _tag_filter(vpc_id: str | None = None) -> list[dict[str, Any]]:
    filters = [{"Name": "tag:Name", "Values": [NAME_TAG]}]
    if vpc_id:
        filters.append({"Name": "vpc-id", "Values": [vpc_id]})
    return filters


def _name_tags(resource: str) -> list[dict[str, Any]]:
    return [{"ResourceType": resource, "Tags": [{"Key": "Name", "Value": NAME_TAG}]}]


def _seed_network(ec2: Any, port: int) -> dict[str, Any]:
    """A VPC like a public Fargate service needs: DNS on, 2 public subnets, IGW route, an open SG port."""
    vpcs = ec2.describe_vpcs(Filters=_tag_filter())["Vpcs"]
    if vpcs:
        vpc_id = vpcs[0]["VpcId"]
    else:
        vpc_id = ec2.create_vpc(CidrBlock=VPC_CIDR, TagSpecifications=_name_tags("vpc"))["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsSupport={"Value": True})
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": True})

    region = ec2.meta.region_name
    existing = {s["CidrBlock"]: s["SubnetId"] for s in ec2.describe_subnets(Filters=_tag_filter(vpc_id))["Subnets"]}
    subnet_ids = []
    for cidr, az in SUBNETS:
        subnet_id = (
            existing.get(cidr)
            or ec2.create_subnet(
                VpcId=vpc_id, CidrBlock=cidr, AvailabilityZone=f"{region}{az}", TagSpecifications=_name_tags("subnet")
            )["Subnet"]["SubnetId"]
        )
        ec2.modify_subnet_attribute(SubnetId=subnet_id, MapPublicIpOnLaunch={"Value": True})
        subnet_ids.append(subnet_id)

    igws = ec2.describe_internet_gateways(Filters=[{"Name": "attachment.vpc-id", "Values": [vpc_id]}])[
        "InternetGateways"
    ]
    if igws:
        igw_id = igws[0]["InternetGatewayId"]
    else:
        igw_id = ec2.create_internet_gateway(TagSpecifications=_name_tags("internet-gateway"))["InternetGateway"][
            "InternetGatewayId"
        ]
        ec2.attach_internet_gateway(InternetGatewayId=igw_id, VpcId=vpc_id)

    tables = ec2.describe_route_tables(Filters=_tag_filter(vpc_id))["RouteTables"]
    if tables:
        table = tables[0]
    else:
        table = ec2.create_route_table(VpcId=vpc_id, TagSpecifications=_name_tags("route-table"))["RouteTable"]
    table_id = table["RouteTableId"]
    if not any(r.get("DestinationCidrBlock") == "0.0.0.0/0" for r in table.get("Routes", [])):
        ec2.create_route(RouteTableId=table_id, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw_id)
    associated = {a.get("SubnetId") for a in table.get("Associations", [])}
    for subnet_id in subnet_ids:
        if subnet_id not in associated:
            ec2.associate_route_table(RouteTableId=table_id, SubnetId=subnet_id)

    groups = ec2.describe_security_groups(
        Filters=[{"Name": "group-name", "Values": [NAME_TAG]}, {"Name": "vpc-id", "Values": [vpc_id]}]
    )["SecurityGroups"]
    if groups:
        group = groups[0]
    else:
        group_id = ec2.create_security_group(
            GroupName=NAME_TAG, Description="snail-trail sandbox service", VpcId=vpc_id
        )["GroupId"]
        group = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    open_ports = {
        (p.get("FromPort"), p.get("ToPort"))
        for p in group.get("IpPermissions", [])
        if any(r.get("CidrIp") == "0.0.0.0/0" for r in p.get("IpRanges", []))
    }
    if (port, port) not in open_ports:
        ec2.authorize_security_group_ingress(
            GroupId=group["GroupId"],
            IpPermissions=[
                {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
            ],
        )
    return {
        "vpc_id": vpc_id,
        "subnet_ids": subnet_ids,
        "internet_gateway_id": igw_id,
        "route_table_id": table_id,
        "security_group_id": group["GroupId"],
    }


def _seed_repository(ecr: Any, name: str) -> str:
    try:
        return ecr.describe_repositories(repositoryNames=[name])["repositories"][0]["repositoryUri"]
    except ecr.exceptions.RepositoryNotFoundException:
        return ecr.create_repository(repositoryName=name)["repository"]["repositoryUri"]


def _seed_log_group(logs: Any, name: str) -> str:
    try:
        logs.create_log_group(logGroupName=name)
    except logs.exceptions.ResourceAlreadyExistsException:
        pass
    return name


def _seed_execution_role(iam: Any) -> str:
    try:
        arn = iam.get_role(RoleName=EXECUTION_ROLE)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}
            ],
        }
        arn = iam.create_role(RoleName=EXECUTION_ROLE, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    attached = iam.list_attached_role_policies(RoleName=EXECUTION_ROLE)["AttachedPolicies"]
    if not any(p["PolicyArn"] == EXECUTION_POLICY for p in attached):
        iam.attach_role_policy(RoleName=EXECUTION_ROLE, PolicyArn=EXECUTION_POLICY)
    return arn


def _seed_task_definition(ecs: Any, spec: SandboxSpec, seeded: dict[str, Any]) -> str:
    """The bootstrap revision, only if the family has none yet (never a new revision on a second `up`)."""
    existing = ecs.list_task_definitions(familyPrefix=spec.service, status="ACTIVE")["taskDefinitionArns"]
    existing = [a for a in existing if a.rsplit("/", 1)[-1].rsplit(":", 1)[0] == spec.service]
    if existing:
        return max(existing, key=lambda a: int(a.rsplit(":", 1)[-1]))
    container = {
        "name": spec.container,
        "image": bootstrap.image_ref(spec.bootstrap_image, spec.port),
        "essential": True,
        "portMappings": [{"containerPort": spec.port, "hostPort": spec.port, "protocol": "tcp"}],
        "memory": 512,
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": seeded["log_group"],
                "awslogs-region": spec.region,
                "awslogs-stream-prefix": "ecs",
            },
        },
    }
    # An ordinary revision, as a service has before anyone's first release: no command, environment or tag that
    # a client would have to recognise and strip (the image itself is the placeholder).
    return ecs.register_task_definition(
        family=spec.service,
        containerDefinitions=[container],
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        executionRoleArn=seeded["execution_role_arn"],
    )["taskDefinition"]["taskDefinitionArn"]


def _seed_service(ecs: Any, spec: SandboxSpec, seeded: dict[str, Any]) -> str:
    found = ecs.describe_services(cluster=spec.cluster, services=[spec.service])["services"]
    if found and found[0]["status"] == "ACTIVE":
        wanted = seeded.get("service_load_balancers")
        if wanted and found[0].get("loadBalancers") != wanted:  # pipeline.yaml gained a load balancer since
            ecs.update_service(cluster=spec.cluster, service=spec.service, loadBalancers=wanted)
        return found[0]["serviceArn"]
    return ecs.create_service(
        cluster=spec.cluster,
        serviceName=spec.service,
        taskDefinition=seeded["task_definition_arn"],
        desiredCount=spec.desired_count,
        launchType="FARGATE",
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": seeded["subnet_ids"],
                "securityGroups": [seeded["security_group_id"]],
                "assignPublicIp": "ENABLED",
            }
        },
        deploymentConfiguration={
            "deploymentCircuitBreaker": {"enable": spec.circuit_breaker, "rollback": False},
            "maximumPercent": 200,
            "minimumHealthyPercent": 100,
        },
        loadBalancers=seeded.get("service_load_balancers") or [],
    )["service"]["serviceArn"]


def wait_for_steady(info: SandboxInfo, spec: SandboxSpec, timeout: float) -> dict[str, Any]:
    """Wait until the service's PRIMARY deployment is COMPLETED; raise SandboxError after `timeout`."""
    ecs = info.client("ecs", spec.region)
    deadline = time.monotonic() + timeout
    service: dict[str, Any] = {}
    while time.monotonic() < deadline:
        found = ecs.describe_services(cluster=spec.cluster, services=[spec.service])["services"]
        service = found[0] if found else {}
        deps = service.get("deployments", [])
        if len(deps) == 1 and deps[0].get("rolloutState") == "COMPLETED":
            return service
        if deps and deps[0].get("rolloutState") == "FAILED":
            break
        time.sleep(0.25)
    events = [e["message"] for e in service.get("events", [])[:5]]
    stopped = _last_stopped_reason(ecs, spec)
    failed = bool(service.get("deployments")) and service["deployments"][0].get("rolloutState") == "FAILED"
    raise SandboxError(
        f"sandbox service {spec.service} "
        + ("failed its deployment" if failed else f"did not reach a steady state in {timeout:.0f}s")
        + (f"; its tasks stopped: {stopped}" if stopped else "")
        + f"; latest events: {events}",
        service=spec.service,
    )


def _last_stopped_reason(ecs: Any, spec: SandboxSpec) -> str:
    """Why the service's newest stopped task stopped (e.g. CannotPullContainerError ...), or ""."""
    arns = ecs.list_tasks(cluster=spec.cluster, serviceName=spec.service, desiredStatus="STOPPED")["taskArns"]
    if not arns:
        return ""
    tasks = ecs.describe_tasks(cluster=spec.cluster, tasks=arns[:20])["tasks"]
    tasks.sort(key=lambda t: str(t.get("stoppedAt") or t.get("createdAt") or ""), reverse=True)
    return next((str(t["stoppedReason"]) for t in tasks if t.get("stoppedReason")), "")


# ------------------------------------------------------------------------------------------------ process


def _start_daemon(
    state_dir: Path, port: int | None, region: str, registry: str, log_processor: str | None = None
) -> SandboxInfo:
    port = port or _pick_port()
    log_path = state_dir / LOG_FILE
    # The daemon imports this very copy of ecsbox (and of the host's log processor): its folder goes first on
    # PYTHONPATH, and the daemon runs in the state folder, so a project folder holding another ecsbox/ (a fork,
    # a vendored checkout) is never the one that runs.
    package_root = Path(__file__).resolve().parents[1]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(package_root), env.get("PYTHONPATH", "")) if p)
    cmd = [
        sys.executable,
        "-m",
        "ecsbox.daemon",
        "--state-dir",
        str(Path(state_dir).resolve()),
        "--port",
        str(port),
        "--region",
        region,
        "--registry",
        registry,
        *(["--log-processor", log_processor] if log_processor else []),
    ]
    started = time.monotonic()
    private_file(log_path)  # the daemon's log: 0600 in a 0700 folder, like every state file
    with open(log_path, "ab") as out:
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
            cwd=str(Path(state_dir).resolve()),
        )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SandboxError(f"sandbox daemon exited with {proc.returncode}: {_tail(log_path)}", log=str(log_path))
        if _answering(endpoint):
            holder = port_holder(port)
            if holder is not None and holder.pid not in (None, proc.pid):
                # someone else answers there (a race with another `up`): never seed into another project's moto
                proc.terminate()
                raise SandboxError(f"port {port} on 127.0.0.1 is taken by {holder.describe()}")
            break
        time.sleep(0.1)
    else:
        proc.terminate()
        raise SandboxError(f"sandbox daemon did not answer on {endpoint} within 30s: {_tail(log_path)}")
    log.info(
        "sandbox_daemon_started", pid=proc.pid, endpoint_url=endpoint, seconds=round(time.monotonic() - started, 2)
    )
    return SandboxInfo(
        pid=proc.pid,
        endpoint_url=endpoint,
        registry=registry,
        region=region,
        started_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        state_dir=str(state_dir),
        sandbox_id=sandbox_id_for(state_dir),
    )


def _stop_daemon(info: SandboxInfo, timeout: float = 10.0) -> str:
    """SIGTERM (it stops its containers), then SIGKILL if it does not exit in time."""
    if not pid_alive(info.pid):
        return "not running"
    os.kill(info.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(info.pid):
            return "stopped"
        time.sleep(0.1)
    os.kill(info.pid, signal.SIGKILL)
    return "killed"


def _answering(endpoint: str, timeout: float = 2.0) -> bool:
    """moto answers an ECS ListClusters on `endpoint`."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        endpoint,
        data=b"{}",
        headers={
            "X-Amz-Target": "AmazonEC2ContainerServiceV20141113.ListClusters",
            "Content-Type": "application/x-amz-json-1.1",
            "Authorization": "AWS4-HMAC-SHA256 Credential=sandbox/20250101/us-east-1/ecs/aws4_request, "
            "SignedHeaders=host, Signature=0",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status == 200 and b"clusterArns" in response.read()
    except (urllib.error.URLError, OSError, ValueError):
        return False


@dataclass(frozen=True)
class PortHolder:
    """Who listens on a TCP port of 127.0.0.1: the process (when /proc says) and its command line."""

    port: int
    pid: int | None
    cmdline: str

    def describe(self) -> str:
        """`pid 123 (python -m ecsbox.daemon --state-dir /x/.snail …)` or `an unknown process`."""
        if self.pid is None:
            return "a process this user cannot see"
        return f"pid {self.pid} ({self.cmdline[:160]})"


def port_holder(port: int, proc: Path = Path("/proc")) -> PortHolder | None:
    """The process listening on `port` (IPv4/IPv6), found as `ss -ltnp` does: the LISTEN socket's inode in
    /proc/net/tcp*, then the process whose /proc/PID/fd links to socket:[inode]. None if nobody listens."""
    inodes = set()
    for table in ("net/tcp", "net/tcp6"):
        try:
            lines = (proc / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if len(cols) > 9 and cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:  # 0A = LISTEN
                inodes.add(cols[9])
    if not inodes:
        return None
    wanted = {f"socket:[{i}]" for i in inodes}
    for pid_dir in proc.iterdir():
        if not pid_dir.name.isdigit():
            continue
        try:
            fds = list((pid_dir / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd) in wanted:
                    raw = (pid_dir / "cmdline").read_bytes()
                    return PortHolder(
                        port, int(pid_dir.name), raw.replace(b"\0", b" ").decode(errors="replace").strip()
                    )
            except OSError:
                continue
    return PortHolder(port, None, "")


def _refuse_taken_port(port: int) -> None:
    """`sandbox up --port P` on a taken port is refused (exit 2), naming who holds it: never "sandbox up" over
    another project's moto."""
    holder = port_holder(port)
    if holder is None:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
                return
            except OSError:
                holder = PortHolder(port, None, "")
    hint = "choose another with --port (or leave it out: snail picks a free one)"
    if "ecsbox.daemon" in holder.cmdline:
        state = holder.cmdline.split("--state-dir", 1)[-1].split()[0] if "--state-dir" in holder.cmdline else "?"
        hint = f"it is another snail sandbox (state dir {state}): stop it with `snail sandbox down` there, or {hint}"
    raise SandboxError(f"port {port} on 127.0.0.1 is taken by {holder.describe()}; {hint}", port=port)


def _pick_port() -> int:
    """DEFAULT_PORT if free, else any free loopback port."""
    for candidate in (DEFAULT_PORT, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return s.getsockname()[1]
    raise SandboxError("no free port on 127.0.0.1")


def _read_info(state_dir: Path) -> SandboxInfo | None:
    path = state_dir / INFO_FILE
    try:
        return SandboxInfo.from_json(json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError) as exc:
        log.warning("sandbox_info_unreadable", path=str(path), error=str(exc))
        return None


def _write_info(state_dir: Path, info: SandboxInfo) -> None:
    write_private(state_dir / INFO_FILE, json.dumps(info.to_json(), indent=2, sort_keys=True))  # 0600 in 0700


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# ------------------------------------------------------------------------------------------------ docker


def _ensure_docker(state_dir: Path, registry_port: int) -> RegistryChoice:
    """A Docker Engine that answers and the registry to push to (ecsbox.docker_setup says which, and why)."""
    from ecsbox.docker_setup import docker_client, ensure_registry

    started = time.monotonic()
    client = docker_client()
    try:
        choice = ensure_registry(state_dir, registry_port, client=client)
    finally:
        client.close()
    log.info("sandbox_docker_ready", registry=choice.describe(), seconds=round(time.monotonic() - started, 2))
    return choice


def _ensure_bootstrap_image(spec: SandboxSpec) -> str:
    """The image the service's first revision runs, built here from the spec's base if it is not yet."""
    from ecsbox.docker_setup import docker_client

    client = docker_client()
    try:
        return bootstrap.ensure_image(client, spec.bootstrap_image, spec.port)
    finally:
        client.close()


def _remove_containers(sandbox_id: str | None) -> int:
    """Remove the sandbox's containers (all snail-sandbox ones when `sandbox_id` is None)."""
    try:
        import docker

        from ecsbox.launchers import remove_sandbox_containers

        return remove_sandbox_containers(docker.from_env(), sandbox_id)
    except Exception as exc:  # noqa: BLE001 - no Docker: there is nothing to remove
        log.warning("sandbox_containers_not_removed", error=str(exc))
        return 0
