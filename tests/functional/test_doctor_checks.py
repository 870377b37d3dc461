"""Every doctor check against a moto environment with exactly one thing broken (and one where nothing is)."""

from __future__ import annotations

import json
from dataclasses import replace

from botocore.awsrequest import AWSResponse
from moto import mock_aws

from orchestrator.config.gates import HttpGate
from orchestrator.config.model import LoadBalancerSpec, NetworkSpec, RegistrySpec
from orchestrator.doctor import render_text, run_doctor
from tests.doctor_env import CLUSTER, LOG_GROUP, ROLE, SERVICE, aws_context, good_env


def check(env, check_id, pipeline=None):
    """Run doctor and return one check."""
    return run_doctor(pipeline or env.pipeline, env.aws).get(check_id)


def update(env, **kwargs):
    """update_service on the good service."""
    env.client("ecs").update_service(cluster=CLUSTER, service=SERVICE, **kwargs)


# --- the correct environment --------------------------------------------------------------------


def test_good_environment_passes_every_check(env):
    """Nothing broken: every check passes, the LB check is skipped (no LB), strict mode is ok."""
    report = run_doctor(env.pipeline, env.aws)
    assert {c.id: c.status for c in report.checks if c.status != "passed"} == {"ports.load-balancer": "skipped"}
    assert report.ok(strict=True)
    assert len(report.checks) == 19


def test_good_environment_with_the_aws_managed_execution_policy(tmp_path):
    """The AmazonECSTaskExecutionRolePolicy attachment alone satisfies the execution-role check."""
    with mock_aws(config={"iam": {"load_aws_managed_policies": True}}):
        aws = aws_context()
        env = good_env(aws, tmp_path, managed_policy=True)
        chk = check(env, "image.execution-role")
    assert chk.status == "passed"
    assert "AmazonECSTaskExecutionRolePolicy" in chk.evidence


# --- cluster and service ------------------------------------------------------------------------


def test_cluster_missing(env):
    """A wrong cluster name fails cluster.active with create-cluster, and the service check is skipped."""
    p = env.with_service(cluster="shiny")
    report = run_doctor(p, env.aws)
    assert report.get("cluster.active").status == "failed"
    assert "cluster 'shiny' does not exist in us-east-1" in report.get("cluster.active").evidence
    assert report.get("cluster.active").fix.startswith("aws ecs create-cluster --cluster-name shiny --region us-east-1")
    assert report.get("service.exists").status == "skipped"
    assert "cluster 'shiny' is missing" in report.get("service.exists").evidence


def test_deleted_service_counts_as_missing(env):
    """An INACTIVE (deleted) service is reported like a missing one."""
    env.client("ecs").delete_service(cluster=CLUSTER, service=SERVICE, force=True)
    chk = check(env, "service.exists")
    assert chk.status == "failed" and "snail run --create-service" in chk.fix


def test_desired_count_zero(env):
    """desiredCount 0 fails with the update-service command restoring the pipeline's count."""
    update(env, desiredCount=0)
    chk = check(env, "service.desired-count")
    assert chk.status == "failed"
    assert "desiredCount 0" in chk.evidence
    assert (
        chk.fix
        == f"aws ecs update-service --cluster {CLUSTER} --service {SERVICE} --desired-count 1 --region us-east-1"
    )


def test_deployment_configuration_that_cannot_roll(env):
    """max 100 / min 100 with one task can neither start nor stop a task: failed, with the 200/100 fix."""
    update(env, deploymentConfiguration={"maximumPercent": 100, "minimumHealthyPercent": 100})
    chk = check(env, "service.deployment-config")
    assert chk.status == "failed"
    assert chk.cause.startswith("a rolling update cannot proceed")
    assert "maximumPercent 100, minimumHealthyPercent 100, desiredCount 1" in chk.evidence
    assert "'maximumPercent=200,minimumHealthyPercent=100'" in chk.fix


def test_deployment_configuration_that_drops_capacity_warns(env):
    """max 100 / min 0 rolls only by stopping first: a warning."""
    update(env, deploymentConfiguration={"maximumPercent": 100, "minimumHealthyPercent": 0})
    assert check(env, "service.deployment-config").status == "warning"


def test_circuit_breaker_disabled_warns(env):
    """A disabled circuit breaker is reported as a warning with the command to enable it."""
    update(
        env,
        deploymentConfiguration={
            "maximumPercent": 200,
            "minimumHealthyPercent": 100,
            "deploymentCircuitBreaker": {"enable": False, "rollback": False},
        },
    )
    chk = check(env, "service.circuit-breaker")
    assert chk.status == "warning"
    assert "enable=false rollback=false" in chk.evidence
    assert "deploymentCircuitBreaker={enable=true,rollback=true}" in chk.fix


def test_circuit_breaker_disabled_on_purpose_passes(env):
    """When pipeline.yaml turns the circuit breaker off, a disabled one is as configured."""
    update(
        env,
        deploymentConfiguration={
            "maximumPercent": 200,
            "minimumHealthyPercent": 100,
            "deploymentCircuitBreaker": {"enable": False, "rollback": False},
        },
    )
    chk = check(env, "service.circuit-breaker", env.with_service(circuit_breaker=False))
    assert chk.status == "passed" and "as pipeline.yaml says" in chk.evidence


# --- ports --------------------------------------------------------------------------------------


def test_template_port_differs(env):
    """The task-definition template mapping 8080 fails ports.template with the file to change."""
    tpl = env.pipeline.service.task_definition
    data = json.loads(tpl.read_text())
    data["containerDefinitions"][0]["portMappings"] = [{"containerPort": 8080}]
    tpl.write_text(json.dumps(data))
    chk = check(env, "ports.template")
    assert chk.status == "failed"
    assert "template phases/taskdef.json: container api maps port 8080, but service.port is 5000" in chk.evidence
    assert chk.fix.startswith('change "containerPort": 8080 to "containerPort": 5000 in phases/taskdef.json')


def test_container_name_not_in_task_definition(env):
    """service.container naming no container fails and lists the containers there are."""
    chk = check(env, "ports.task-definition", env.with_service(container="web"))
    assert chk.status == "failed"
    assert "has no container named 'web' (containers: api)" in chk.evidence
    assert chk.fix == "set service.container in pipeline.yaml to one of: api"


def test_no_port_mapping(env):
    """A container without portMappings fails with the JSON to add."""
    env.point_service_at(env.register(portMappings=[]))
    chk = check(env, "ports.task-definition")
    assert chk.status == "failed" and "maps no port" in chk.evidence
    assert '"portMappings": [{"containerPort": 5000, "protocol": "tcp"}]' in chk.fix


def test_http_gate_on_another_port(env):
    """An http gate with `port: 8080` fails ports.gates naming the file and line to change."""
    phase = env.pipeline.phases[0]
    bad = HttpGate(path="/ml/status", port=8080, source="phases/health-only.yaml:7")
    p = replace(env.pipeline, phases=(replace(phase, gates=phase.gates + (bad,)),))
    chk = check(env, "ports.gates", p)
    assert chk.status == "failed"
    assert "http /ml/status (phases/health-only.yaml:7) probes port 8080, service.port is 5000" in chk.evidence
    assert chk.fix.startswith("phases/health-only.yaml:7: change `port: 8080` to `port: 5000`")


def _with_lb(env, tg_port=5000, health_port="traffic-port", lb_sg=None):
    elb = env.client("elbv2")
    kwargs = {"SecurityGroups": [lb_sg]} if lb_sg else {}
    lb = elb.create_load_balancer(Name="shine-alb", Subnets=list(env.subnets), **kwargs)["LoadBalancers"][0]
    tg = elb.create_target_group(
        Name="shine-tg",
        Protocol="HTTP",
        Port=tg_port,
        VpcId=env.vpc,
        TargetType="ip",
        HealthCheckPort=health_port,
        HealthCheckPath="/health",
    )["TargetGroups"][0]
    elb.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"],
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}],
    )
    return env.with_service(load_balancer=LoadBalancerSpec(tg["TargetGroupArn"], 5000)), tg["TargetGroupArn"]


def test_load_balancer_ports_agree(env):
    """A target group on 5000 with a traffic-port health check passes and shows its settings."""
    p, _ = _with_lb(env)
    chk = check(env, "ports.load-balancer", p)
    assert chk.status == "passed"
    assert (
        "target group shine-tg: port 5000, target type ip, health check HTTP port traffic-port path /health"
        in chk.evidence
    )


def test_load_balancer_health_check_on_another_port(env):
    """A health check probing 8080 fails with the modify-target-group command."""
    p, arn = _with_lb(env, health_port="8080")
    chk = check(env, "ports.load-balancer", p)
    assert chk.status == "failed"
    assert chk.cause == "health check probes port 8080, service.port is 5000"
    assert (
        chk.fix
        == f"aws elbv2 modify-target-group --target-group-arn {arn} --health-check-port traffic-port --region us-east-1"
    )


def test_load_balancer_container_port_differs(env):
    """pipeline load_balancer.container_port other than service.port fails with the YAML change."""
    p, arn = _with_lb(env)
    p = replace(p, service=replace(p.service, load_balancer=LoadBalancerSpec(arn, 8080)))
    chk = check(env, "ports.load-balancer", p)
    assert chk.status == "failed"
    assert "set service.load_balancer.container_port: 5000" in chk.fix


# --- network ------------------------------------------------------------------------------------


def test_security_group_admitting_only_another_group_warns(env):
    """Port 5000 open only to another security group: gates outside the VPC cannot reach it (warning)."""
    ec2 = env.client("ec2")
    other = ec2.create_security_group(GroupName="bastion", Description="b", VpcId=env.vpc)["GroupId"]
    ec2.revoke_security_group_ingress(
        GroupId=env.security_group,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 5000, "ToPort": 5000, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
    )
    ec2.authorize_security_group_ingress(
        GroupId=env.security_group,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 5000, "ToPort": 5000, "UserIdGroupPairs": [{"GroupId": other}]}
        ],
    )
    chk = check(env, "network.security-groups")
    assert chk.status == "warning"
    assert f"tcp 5000 from {other}" in chk.evidence


def test_security_group_port_range_counts(env):
    """A rule for a port range covering 5000 admits it."""
    ec2 = env.client("ec2")
    ec2.revoke_security_group_ingress(
        GroupId=env.security_group,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 5000, "ToPort": 5000, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
    )
    ec2.authorize_security_group_ingress(
        GroupId=env.security_group,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 4000, "ToPort": 6000, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}],
    )
    chk = check(env, "network.security-groups")
    assert chk.status == "passed" and "tcp 5000 from 10.0.0.0/8" in chk.evidence


def test_security_group_behind_load_balancer_must_admit_the_lb(env):
    """Behind an LB, tasks must admit 5000 from the LB's group: the fix uses --source-group."""
    ec2 = env.client("ec2")
    lb_sg = ec2.create_security_group(GroupName="alb", Description="alb", VpcId=env.vpc)["GroupId"]
    other = ec2.create_security_group(GroupName="other", Description="o", VpcId=env.vpc)["GroupId"]
    ec2.revoke_security_group_ingress(
        GroupId=env.security_group,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 5000, "ToPort": 5000, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
    )
    ec2.authorize_security_group_ingress(
        GroupId=env.security_group,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 5000, "ToPort": 5000, "UserIdGroupPairs": [{"GroupId": other}]}
        ],
    )
    p, _ = _with_lb(env, lb_sg=lb_sg)
    chk = check(env, "network.security-groups", p)
    assert chk.status == "failed"
    assert f"from the load balancer's group {lb_sg}" in chk.cause
    assert chk.fix == (
        f"aws ec2 authorize-security-group-ingress --group-id {env.security_group} --protocol tcp "
        f"--port 5000 --source-group {lb_sg} --region us-east-1"
    )
    ec2.authorize_security_group_ingress(
        GroupId=env.security_group,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 5000, "ToPort": 5000, "UserIdGroupPairs": [{"GroupId": lb_sg}]}
        ],
    )
    assert check(env, "network.security-groups", p).status == "passed"


def test_subnet_on_main_route_table_without_igw(env):
    """A subnet with no explicit association uses the main table; without an IGW route the fix associates it."""
    ec2 = env.client("ec2")
    assoc = next(
        a["RouteTableAssociationId"]
        for a in ec2.describe_route_tables(RouteTableIds=[env.route_table])["RouteTables"][0]["Associations"]
        if a.get("SubnetId") == env.subnets[0]
    )
    ec2.disassociate_route_table(AssociationId=assoc)
    chk = check(env, "network.routes")
    assert chk.status == "failed"
    assert (
        f"{env.subnets[0]} ({env.vpc}): no explicit association, so it uses the VPC's main route table "
        f"{env.main_route_table}; 0.0.0.0/0 -> no route"
    ) in chk.evidence
    assert (
        chk.fix
        == f"aws ec2 associate-route-table --route-table-id {env.route_table} --subnet-id {env.subnets[0]} --region us-east-1"
    )


def test_no_default_route_anywhere_but_igw_attached(env):
    """No table routes to the attached IGW: the fix is create-route with the real IGW id."""
    env.client("ec2").delete_route(RouteTableId=env.route_table, DestinationCidrBlock="0.0.0.0/0")
    chk = check(env, "network.routes")
    assert chk.status == "failed"
    assert chk.fix == (
        f"aws ec2 create-route --route-table-id {env.route_table} --destination-cidr-block 0.0.0.0/0 "
        f"--gateway-id {env.igw} --region us-east-1"
    )


def test_no_internet_gateway_at_all(env):
    """Without any IGW in the VPC the fix creates and attaches one first."""
    ec2 = env.client("ec2")
    ec2.delete_route(RouteTableId=env.route_table, DestinationCidrBlock="0.0.0.0/0")
    ec2.detach_internet_gateway(InternetGatewayId=env.igw, VpcId=env.vpc)
    chk = check(env, "network.routes")
    assert chk.status == "failed"
    assert chk.fix.startswith(
        f"aws ec2 create-internet-gateway --region us-east-1; aws ec2 attach-internet-gateway --vpc-id {env.vpc}"
    )


def test_nat_route_without_public_ip_warns(env):
    """0.0.0.0/0 via NAT and no public IP: 'no public IP, image pulls via NAT' (warning), public-ip fails."""
    ec2 = env.client("ec2")
    alloc = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = ec2.create_nat_gateway(SubnetId=env.subnets[0], AllocationId=alloc)["NatGateway"]["NatGatewayId"]
    ec2.replace_route(RouteTableId=env.route_table, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)
    update(
        env,
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": list(env.subnets),
                "securityGroups": [env.security_group],
                "assignPublicIp": "DISABLED",
            }
        },
    )
    report = run_doctor(env.pipeline, env.aws)
    routes = report.get("network.routes")
    assert routes.status == "warning"
    assert routes.cause.startswith(f"{env.subnets[0]}: no public IP, image pulls via NAT {nat}")
    assert report.get("network.public-ip").status == "failed"


def test_behind_load_balancer_no_public_ip_needed(env):
    """Behind a load balancer a NAT route is fine and no public IP is needed."""
    ec2 = env.client("ec2")
    alloc = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = ec2.create_nat_gateway(SubnetId=env.subnets[0], AllocationId=alloc)["NatGateway"]["NatGatewayId"]
    ec2.replace_route(RouteTableId=env.route_table, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)
    update(
        env,
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": list(env.subnets),
                "securityGroups": [env.security_group],
                "assignPublicIp": "DISABLED",
            }
        },
    )
    p, _ = _with_lb(env)
    report = run_doctor(p, env.aws)
    assert report.get("network.public-ip").status == "passed"
    assert report.get("network.routes").status == "passed"
    assert f"image pulls via NAT {nat}" in report.get("network.routes").evidence


def test_vpc_dns_support_disabled(env):
    """DNS support off fails network.dns with the modify-vpc-attribute command."""
    env.client("ec2").modify_vpc_attribute(VpcId=env.vpc, EnableDnsSupport={"Value": False})
    chk = check(env, "network.dns")
    assert chk.status == "failed"
    assert f"{env.vpc}: enableDnsSupport=false enableDnsHostnames=true" in chk.evidence
    assert (
        chk.fix
        == f"aws ec2 modify-vpc-attribute --vpc-id {env.vpc} --enable-dns-support '{{\"Value\":true}}' --region us-east-1"
    )


def test_vpc_dns_hostnames_disabled_warns(env):
    """DNS hostnames off is a warning (the log's 21:55 step), with its fix."""
    env.client("ec2").modify_vpc_attribute(VpcId=env.vpc, EnableDnsHostnames={"Value": False})
    chk = check(env, "network.dns")
    assert chk.status == "warning"
    assert "--enable-dns-hostnames" in chk.fix


def test_network_checks_skip_without_any_network(aws, tmp_path):
    """Service missing and no service.network in pipeline.yaml: network checks skip with the reason."""
    env = good_env(aws, tmp_path, create=False)
    report = run_doctor(env.with_service(network=None), aws)
    for cid in ("network.security-groups", "network.public-ip", "network.routes", "network.dns"):
        assert report.get(cid).status == "skipped"
        assert "no service.network" in report.get(cid).evidence


# --- image pull path ----------------------------------------------------------------------------


def test_ecr_repository_missing(env):
    """A missing repository fails with create-repository; the current-image check is skipped."""
    env.client("ecr").delete_repository(repositoryName=SERVICE, force=True)
    report = run_doctor(env.pipeline, env.aws)
    chk = report.get("image.repository")
    assert chk.status == "failed"
    assert chk.fix.startswith(f"aws ecr create-repository --repository-name {SERVICE} --region us-east-1")
    assert report.get("image.current").status == "skipped"


def test_ecr_repository_missing_but_created_by_run_warns(env):
    """registry.create: true turns a missing repository into a warning."""
    env.client("ecr").delete_repository(repositoryName=SERVICE, force=True)
    p = replace(env.pipeline, registry=RegistrySpec(ecr=SERVICE, create=True))
    assert check(env, "image.repository", p).status == "warning"


def test_ecr_repository_empty_warns_and_current_image_fails(env):
    """An empty repository warns; the revision's image tag being gone fails image.current."""
    env.client("ecr").batch_delete_image(repositoryName=SERVICE, imageIds=[{"imageTag": "health-only"}])
    report = run_doctor(env.pipeline, env.aws)
    assert report.get("image.repository").status == "warning"
    assert "holds no images" in report.get("image.repository").evidence
    cur = report.get("image.current")
    assert cur.status == "failed"
    assert f"runs {env.image}, but {SERVICE} has no image health-only" in cur.evidence
    assert "CannotPullContainerError" in cur.evidence


def test_non_ecr_registry_skips_ecr_checks(env):
    """A url registry skips the ECR checks with the reason."""
    p = replace(env.pipeline, registry=RegistrySpec(url="127.0.0.1:5055/shine-api-gateway"))
    report = run_doctor(p, env.aws)
    assert report.get("image.repository").status == "skipped"
    assert "not ECR" in report.get("image.repository").evidence


def test_execution_role_missing(env):
    """A missing execution role fails with create-role and attach-role-policy."""
    iam = env.client("iam")
    iam.delete_role_policy(RoleName=ROLE, PolicyName="ecs-pull-and-log")
    iam.delete_role(RoleName=ROLE)
    chk = check(env, "image.execution-role")
    assert chk.status == "failed"
    assert f"execution role {ROLE} ({env.role_arn}" in chk.evidence and "does not exist" in chk.evidence
    assert f"aws iam create-role --role-name {ROLE}" in chk.fix
    assert "ecs-tasks.amazonaws.com" in chk.fix and "AmazonECSTaskExecutionRolePolicy" in chk.fix


def test_execution_role_without_pull_permissions(env):
    """A role without ECR/logs permissions fails naming each missing action."""
    env.client("iam").delete_role_policy(RoleName=ROLE, PolicyName="ecs-pull-and-log")
    chk = check(env, "image.execution-role")
    assert chk.status == "failed"
    assert (
        "lacks ecr:GetAuthorizationToken, ecr:BatchGetImage, ecr:GetDownloadUrlForLayer, "
        "logs:CreateLogStream, logs:PutLogEvents"
    ) in chk.evidence
    assert chk.fix == (
        f"aws iam attach-role-policy --role-name {ROLE} --policy-arn "
        "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
    )


def test_execution_role_with_logs_but_no_ecr(env):
    """Only the logs actions granted: the ECR ones are named missing."""
    iam = env.client("iam")
    iam.put_role_policy(
        RoleName=ROLE,
        PolicyName="ecs-pull-and-log",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "logs:*", "Resource": "*"}]}
        ),
    )
    chk = check(env, "image.execution-role")
    assert chk.status == "failed"
    assert "lacks ecr:GetAuthorizationToken, ecr:BatchGetImage, ecr:GetDownloadUrlForLayer:" in chk.evidence


def test_execution_role_customer_managed_policy_with_wildcards(env):
    """An attached customer-managed policy with ecr:* and logs:Put*/Create* passes."""
    iam = env.client("iam")
    iam.delete_role_policy(RoleName=ROLE, PolicyName="ecs-pull-and-log")
    arn = iam.create_policy(
        PolicyName="pull",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": ["ecr:*", "logs:Create*", "logs:PutLogEvents"], "Resource": "*"}
                ],
            }
        ),
    )["Policy"]["Arn"]
    iam.attach_role_policy(RoleName=ROLE, PolicyArn=arn)
    chk = check(env, "image.execution-role")
    assert chk.status == "passed" and "policies pull" in chk.evidence


def test_log_group_missing(env):
    """A missing awslogs group fails with create-log-group."""
    env.client("logs").delete_log_group(logGroupName=LOG_GROUP)
    chk = check(env, "image.log-group")
    assert chk.status == "failed"
    assert f"log group {LOG_GROUP} does not exist" in chk.evidence and "ResourceInitializationError" in chk.evidence
    assert chk.fix == f"aws logs create-log-group --log-group-name {LOG_GROUP} --region us-east-1"


# --- how doctor behaves -------------------------------------------------------------------------


def _deny(request, **_):
    """A before-send hook answering like AWS does when the caller lacks an EC2 permission."""
    body = (
        b"<Response><Errors><Error><Code>UnauthorizedOperation</Code><Message>You are not authorized "
        b"to perform this operation.</Message></Error></Errors></Response>"
    )
    return AWSResponse(request.url, 403, {}, _Raw(body))


class _Raw:
    def __init__(self, body):
        self.body = body

    def stream(self, **_):
        yield self.body


def test_access_denied_becomes_a_failed_check_naming_the_permission(env):
    """An UnauthorizedOperation on DescribeSecurityGroups fails that check (no traceback); others still run."""
    env.client("ec2").meta.events.register_first("before-send.ec2.DescribeSecurityGroups", _deny)
    report = run_doctor(env.pipeline, env.aws)
    chk = report.get("network.security-groups")
    assert chk.status == "failed"
    assert "AWS refused ec2:DescribeSecurityGroups (UnauthorizedOperation)" in chk.evidence
    assert '"Action": "ec2:DescribeSecurityGroups"' in chk.fix
    assert report.get("network.routes").status == "passed"


def test_describes_are_made_once(env):
    """One doctor run describes the service, task definition, subnets, route tables and SGs once each."""
    calls: list[str] = []
    for svc in ("ecs", "ec2", "ecr", "iam", "logs"):
        env.client(svc).meta.events.register("before-call", lambda model, **_: calls.append(model.name))
    run_doctor(env.pipeline, env.aws)
    for op in (
        "DescribeClusters",
        "DescribeServices",
        "DescribeTaskDefinition",
        "DescribeSubnets",
        "DescribeRouteTables",
        "DescribeSecurityGroups",
        "DescribeInternetGateways",
        "GetRole",
    ):
        assert calls.count(op) <= 1, (op, calls)
    assert calls.count("DescribeVpcAttribute") == 2  # one per attribute: AWS has no batch form


def test_secrets_never_appear_in_the_report(env):
    """Task-definition secrets and credential-like env values never reach the text or JSON report."""
    env.point_service_at(
        env.register(
            environment=[
                {"name": "AWS_SECRET_ACCESS_KEY", "value": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzzzSECRET"},
                {"name": "DEPLOY_KEY", "value": "AKIAABCDEFGHIJKLMNOP"},
            ],
            secrets=[
                {"name": "DB_PASSWORD", "valueFrom": "arn:aws:ssm:us-east-1:123456789012:parameter/db-password-value"}
            ],
            portMappings=[{"containerPort": 8080}],  # make the taskdef checks print their evidence
        )
    )
    report = run_doctor(env.pipeline, env.aws)
    out = render_text(report) + json.dumps(report.to_dict())
    assert report.get("ports.task-definition").status == "failed"
    for secret in ("wJalrXUtnFEMI", "AKIAABCDEFGHIJKLMNOP", "db-password-value"):
        assert secret not in out


def test_render_text_is_a_checklist(env):
    """The text report: a count line, one marked line per check, evidence and `fix:` under failures."""
    update(env, desiredCount=0)
    text = render_text(run_doctor(env.pipeline, env.aws))
    lines = text.splitlines()
    assert lines[0] == "doctor: 17 passed, 0 warning(s), 1 failed, 1 skipped"
    i = lines.index("✘ desiredCount is above 0 [service.desired-count]")
    assert lines[i + 1].startswith("    service shine-api-gateway has desiredCount 0")
    assert lines[i + 2].startswith("    fix: aws ecs update-service")
    assert any(line.startswith("- the target group's port") for line in lines)
    assert sum(line.startswith("✔ ") for line in lines) == 17


def test_pipeline_network_used_when_service_missing(aws, tmp_path):
    """Before --create-service, the network checks read pipeline.yaml's service.network and catch its mistakes."""
    env = good_env(aws, tmp_path, create=False)
    p = env.with_service(network=NetworkSpec(env.subnets, (env.security_group,), False))
    report = run_doctor(p, aws)
    assert report.get("network.public-ip").status == "failed"
    assert "pipeline service.network" in report.get("network.public-ip").evidence


def _deny_tagging(request, **_):
    """A before-send hook answering like ECS does when the caller lacks ecs:TagResource."""
    body = b'{"__type": "AccessDeniedException", "message": "User is not authorized to perform: ecs:TagResource"}'
    return AWSResponse(request.url, 400, {}, _Raw(body))


def test_tagging_denied_is_a_warning_naming_the_permission(env):
    """Without ecs:TagResource a run still completes, so doctor warns (strict fails) and names the permission."""
    env.client("ecs").meta.events.register_first("before-send.ecs.TagResource", _deny_tagging)
    chk = check(env, "marks.tagging")
    assert chk.status == "warning" and "ecs:TagResource is denied" in chk.evidence
    assert "task-definition/" in chk.fix and "snail iam-policy" in chk.fix


def test_tagging_allowed_changes_nothing(env):
    """The probe writes a tag back unchanged: the revision's tags are the same after doctor."""
    ecs = env.client("ecs")
    arn = ecs.describe_services(cluster=CLUSTER, services=[SERVICE])["services"][0]["taskDefinition"]
    before = ecs.describe_task_definition(taskDefinition=arn, include=["TAGS"])["tags"]
    assert check(env, "marks.tagging").status == "passed"
    assert ecs.describe_task_definition(taskDefinition=arn, include=["TAGS"])["tags"] == before
