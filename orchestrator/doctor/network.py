"""Can traffic and image pulls reach the tasks: security groups, public IP, each subnet's route, VPC DNS."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orchestrator.doctor.context import DoctorContext, Skip
from orchestrator.doctor.model import FAILED, PASSED, WARNING, Check
from orchestrator.doctor.runner import Result, check, run_checks


def admits(permission: dict[str, Any], port: int) -> bool:
    """True when one IpPermissions entry lets tcp `port` in."""
    proto = str(permission.get("IpProtocol", ""))
    if proto == "-1":
        return True
    if proto not in ("tcp", "6"):
        return False
    return int(permission.get("FromPort", -1)) <= port <= int(permission.get("ToPort", -1))


def sources(permission: dict[str, Any]) -> list[str]:
    """Where an IpPermissions entry admits traffic from."""
    out = [r.get("CidrIp", "") for r in permission.get("IpRanges", [])]
    out += [r.get("CidrIpv6", "") for r in permission.get("Ipv6Ranges", [])]
    out += [g.get("GroupId", "") for g in permission.get("UserIdGroupPairs", [])]
    out += [p.get("PrefixListId", "") for p in permission.get("PrefixListIds", [])]
    return [s for s in out if s]


@check("network.security-groups", "security groups allow service.port in")
def security_groups(ctx: DoctorContext) -> Result:
    """The field log's missing port-5000 rule: the tasks' groups must admit the container port."""
    s = ctx.spec
    port = s.port
    cfg, where = ctx.awsvpc()
    task_sgs = list(cfg.get("securityGroups") or [])
    groups = ctx.security_groups()
    lb_sgs = [g for lb in ctx.load_balancers() for g in lb.get("SecurityGroups", [])]
    if not task_sgs:
        return Result(
            WARNING,
            f"{where} names no security groups: tasks get the VPC's default group, which admits only its own members",
            f"list a group that allows tcp {port} in service.network.security_groups",
        )
    allowed: list[str] = []
    lines = []
    for gid in task_sgs:
        g = groups.get(gid, {})
        src = [x for perm in g.get("IpPermissions", []) if admits(perm, port) for x in sources(perm)]
        allowed += src
        lines.append(f"{gid} ({g.get('GroupName', '?')}): tcp {port} from {', '.join(src) if src else 'nowhere'}")
    for gid in lb_sgs:
        g = groups.get(gid, {})
        ports = sorted(
            {
                f"{p.get('FromPort')}-{p.get('ToPort')}"
                if p.get("FromPort") != p.get("ToPort")
                else str(p.get("FromPort"))
                for p in g.get("IpPermissions", [])
                if p.get("IpProtocol") != "-1"
            }
        )
        lines.append(f"load balancer group {gid}: admits tcp {', '.join(ports) or 'all' if g else '?'}")
    first = task_sgs[0]
    region = f"--region {s.region}"
    if lb_sgs:
        if any(x in allowed for x in lb_sgs) or any("/" in x for x in allowed):
            return Result(PASSED, f"tasks admit tcp {port} from the load balancer\n" + "\n".join(lines))
        return Result(
            FAILED,
            f"no task security group admits tcp {port} from the load balancer's group {lb_sgs[0]}: "
            "health checks and traffic cannot reach the tasks\n" + "\n".join(lines),
            f"aws ec2 authorize-security-group-ingress --group-id {first} --protocol tcp --port {port} "
            f"--source-group {lb_sgs[0]} {region}",
        )
    fix = (
        f"aws ec2 authorize-security-group-ingress --group-id {first} --protocol tcp --port {port} "
        f"--cidr 0.0.0.0/0 {region}   (narrow --cidr to where the gates and clients run)"
    )
    if not allowed:
        return Result(
            FAILED,
            f"no security group of the tasks admits tcp {port}: the gates and clients time out "
            "even when the container is healthy\n" + "\n".join(lines),
            fix,
        )
    if not any("/" in x or x.startswith("pl-") for x in allowed):
        return Result(
            WARNING,
            f"tcp {port} is admitted only from other security groups: gates running outside "
            "the VPC cannot reach the tasks\n" + "\n".join(lines),
            fix,
        )
    return Result(PASSED, f"tasks admit tcp {port}\n" + "\n".join(lines))


def _update_network_cmd(ctx: DoctorContext, cfg: dict[str, Any]) -> str:
    s = ctx.spec
    return (
        f"aws ecs update-service --cluster {s.cluster} --service {s.name} --network-configuration "
        f"'awsvpcConfiguration={{subnets=[{','.join(cfg.get('subnets') or [])}],"
        f"securityGroups=[{','.join(cfg.get('securityGroups') or [])}],assignPublicIp=ENABLED}}' --region {s.region}"
    )


@check("network.public-ip", "tasks get a public IP (no load balancer in front)")
def public_ip(ctx: DoctorContext) -> Result:
    """Fargate tasks get a public IP only from the service's assignPublicIp — never from the subnet's setting."""
    s = ctx.spec
    cfg, where = ctx.awsvpc()
    flag = cfg.get("assignPublicIp", "DISABLED")
    subnets = ctx.subnets()
    notes = [
        f"{sid}: MapPublicIpOnLaunch={subnets.get(sid, {}).get('MapPublicIpOnLaunch')} "
        "(applies to EC2 instances only; Fargate tasks ignore it)"
        for sid in cfg.get("subnets") or []
    ]
    head = f"assignPublicIp is {flag} in {where}"
    if s.load_balancer is not None:
        return Result(
            PASSED, f"{head}; tasks behind a load balancer need no public IP (image pulls: see network.routes)"
        )
    if flag == "ENABLED":
        return Result(PASSED, f"{head}: each task gets a public IP the gates can reach\n" + "\n".join(notes))
    fix = f"set service.network.assign_public_ip: true in pipeline.yaml; for the running service: {_update_network_cmd(ctx, cfg)}"
    if s.endpoint:
        return Result(
            WARNING,
            f"{head}: tasks have no public IP; the gates use service.endpoint {s.endpoint} instead\n"
            + "\n".join(notes),
            fix,
        )
    return Result(
        FAILED,
        f"{head}: tasks get no public IP, there is no load balancer, so nothing outside the VPC can "
        "reach them — this is a service setting, not a VPC or subnet setting\n" + "\n".join(notes),
        fix,
    )


@dataclass(frozen=True)
class SubnetPath:
    """How one subnet reaches the internet: its effective route table and default route."""

    subnet: str
    vpc: str
    table: dict[str, Any] | None
    explicit_association: str | None
    target: str | None

    @property
    def table_id(self) -> str:
        """The effective route table's id (or 'none')."""
        return (self.table or {}).get("RouteTableId", "none")

    @property
    def kind(self) -> str:
        """igw, nat, other or none."""
        if not self.target:
            return "none"
        if self.target.startswith("igw-"):
            return "igw"
        if self.target.startswith("nat-"):
            return "nat"
        return "other"


def default_target(table: dict[str, Any] | None) -> str | None:
    """Where a route table sends 0.0.0.0/0 (None when nowhere or blackholed)."""
    for r in (table or {}).get("Routes", []):
        if r.get("DestinationCidrBlock") == "0.0.0.0/0" and r.get("State", "active") != "blackhole":
            for key in (
                "GatewayId",
                "NatGatewayId",
                "TransitGatewayId",
                "NetworkInterfaceId",
                "VpcPeeringConnectionId",
                "InstanceId",
            ):
                if r.get(key):
                    return str(r[key])
    return None


def subnet_path(ctx: DoctorContext, subnet_id: str) -> SubnetPath:
    """A subnet's effective route table: its explicit association, else its VPC's main table."""
    sub = ctx.subnets().get(subnet_id)
    if sub is None:
        return SubnetPath(subnet_id, "?", None, None, None)
    vpc = sub["VpcId"]
    tables = [t for t in ctx.route_tables() if t.get("VpcId") == vpc]
    for t in tables:
        for a in t.get("Associations", []):
            if a.get("SubnetId") == subnet_id:
                return SubnetPath(subnet_id, vpc, t, a.get("RouteTableAssociationId"), default_target(t))
    main = next((t for t in tables if any(a.get("Main") for a in t.get("Associations", []))), None)
    return SubnetPath(subnet_id, vpc, main, None, default_target(main))


def _route_fix(ctx: DoctorContext, p: SubnetPath) -> str:
    region = f"--region {ctx.spec.region}"
    igw_tables = [
        t for t in ctx.route_tables() if t.get("VpcId") == p.vpc and (default_target(t) or "").startswith("igw-")
    ]
    if igw_tables:
        good = igw_tables[0]["RouteTableId"]
        if p.explicit_association:
            return (
                f"aws ec2 replace-route-table-association --association-id {p.explicit_association} "
                f"--route-table-id {good} {region}"
            )
        return f"aws ec2 associate-route-table --route-table-id {good} --subnet-id {p.subnet} {region}"
    igws = [
        g["InternetGatewayId"]
        for g in ctx.internet_gateways()
        if any(a.get("VpcId") == p.vpc for a in g.get("Attachments", []))
    ]
    if igws:
        return (
            f"aws ec2 create-route --route-table-id {p.table_id} --destination-cidr-block 0.0.0.0/0 "
            f"--gateway-id {igws[0]} {region}"
        )
    return (
        f"aws ec2 create-internet-gateway {region}; aws ec2 attach-internet-gateway --vpc-id {p.vpc} "
        f"--internet-gateway-id <igw-id> {region}; aws ec2 create-route --route-table-id {p.table_id} "
        f"--destination-cidr-block 0.0.0.0/0 --gateway-id <igw-id> {region}"
    )


@check("network.routes", "each subnet routes 0.0.0.0/0 to an internet gateway (or a NAT for pulls)")
def routes(ctx: DoctorContext) -> Result:
    """The whole chain per subnet — association, table, default route, public IP — that the log never found."""
    cfg, where = ctx.awsvpc()
    public = cfg.get("assignPublicIp") == "ENABLED"
    behind_lb = ctx.spec.load_balancer is not None
    ip = "ENABLED" if public else "DISABLED"
    failed, warned, lines, fixes = [], [], [], []
    for sid in cfg.get("subnets") or []:
        p = subnet_path(ctx, sid)
        if p.table is None:
            failed.append(f"{sid} does not exist or its VPC has no route table")
            lines.append(f"{sid}: not found")
            continue
        how = (
            f"explicitly associated with {p.table_id}"
            if p.explicit_association
            else f"no explicit association, so it uses the VPC's main route table {p.table_id}"
        )
        chain = f"{sid} ({p.vpc}): {how}; 0.0.0.0/0 -> {p.target or 'no route'}; assignPublicIp {ip}"
        if p.kind == "igw" and public:
            lines.append(f"{chain}: ok, tasks pull images and are reachable over their public IP")
        elif p.kind == "igw":
            failed.append(
                f"{sid} routes to internet gateway {p.target} but assignPublicIp is DISABLED: tasks have no "
                "public IP, so they cannot pull images (CannotPullContainerError)"
            )
            lines.append(f"{chain}: FAILS, an internet gateway only serves addresses that have a public IP")
            fixes.append(
                f"set service.network.assign_public_ip: true (or route {sid} through a NAT gateway): "
                f"{_update_network_cmd(ctx, cfg)}"
            )
        elif p.kind == "nat":
            if behind_lb:
                lines.append(f"{chain}: ok, image pulls via NAT {p.target}")
            else:
                warned.append(
                    f"{sid}: no public IP, image pulls via NAT {p.target}; the gates cannot reach tasks from "
                    "outside the VPC"
                )
                lines.append(f"{chain}: image pulls via NAT; no inbound path without a load balancer")
        elif p.kind == "other":
            warned.append(f"{sid} sends 0.0.0.0/0 to {p.target}: doctor cannot tell whether image pulls get out")
            lines.append(chain)
        else:
            failed.append(f"{sid} has no route to an internet gateway and assignPublicIp is {ip}")
            lines.append(f"{chain}: FAILS, no image pull, no inbound traffic")
            fixes.append(_route_fix(ctx, p))
    if failed:
        return Result(FAILED, "\n".join([failed[0]] + lines), "; ".join(dict.fromkeys(fixes)) or None)
    if warned:
        return Result(WARNING, "\n".join([warned[0]] + lines))
    return Result(PASSED, "\n".join([f"every subnet reaches the internet ({where})"] + lines))


@check("network.dns", "VPC DNS support and DNS hostnames are enabled")
def dns(ctx: DoctorContext) -> Result:
    """Without DNS support tasks cannot resolve ECR or CloudWatch endpoints."""
    ctx.awsvpc()
    vpcs = ctx.vpc_ids()
    if not vpcs:
        raise Skip("no subnets found, so no VPC to check")
    region = f"--region {ctx.spec.region}"
    lines, fail, warn, fixes = [], [], [], []
    for vpc in vpcs:
        support = ctx.vpc_attribute(vpc, "enableDnsSupport")
        hostnames = ctx.vpc_attribute(vpc, "enableDnsHostnames")
        lines.append(f"{vpc}: enableDnsSupport={str(support).lower()} enableDnsHostnames={str(hostnames).lower()}")
        if not support:
            fail.append(f"{vpc} has DNS support disabled: tasks cannot resolve ECR, so image pulls fail")
            fixes.append(
                f"aws ec2 modify-vpc-attribute --vpc-id {vpc} --enable-dns-support '{{\"Value\":true}}' {region}"
            )
        if not hostnames:
            warn.append(
                f"{vpc} has DNS hostnames disabled: tasks get no public DNS name (and ECR interface endpoints need it)"
            )
            fixes.append(
                f"aws ec2 modify-vpc-attribute --vpc-id {vpc} --enable-dns-hostnames '{{\"Value\":true}}' {region}"
            )
    fix = "; ".join(fixes) or None
    if fail:
        return Result(FAILED, "\n".join([fail[0]] + lines), fix)
    if warn:
        return Result(WARNING, "\n".join([warn[0]] + lines), fix)
    return Result(PASSED, "\n".join(["DNS support and hostnames are on"] + lines))


CHECKS = (security_groups, public_ip, routes, dns)


def checks(ctx: DoctorContext) -> list[Check]:
    """Network reachability checks."""
    return run_checks(ctx, CHECKS)
