"""Each incident of the field log (docs/field-log.md), rebuilt in moto and named by doctor."""

from __future__ import annotations

from orchestrator.doctor import render_text, run_doctor
from tests.doctor_env import CLUSTER, SERVICE, good_env
from tests.harness.moto import pin_tasks


def test_field_log_service_missing(aws, tmp_path):
    """18:19 'ECS service was MISSING': service.exists fails naming --create-service; dependants skip, network still checked."""
    env = good_env(aws, tmp_path, create=False)
    report = run_doctor(env.pipeline, aws)
    chk = report.get("service.exists")
    assert chk.status == "failed"
    assert "does not exist in cluster 'shine'" in chk.evidence and "MISSING" in chk.evidence
    assert chk.fix.startswith("snail run --create-service")
    assert f"aws ecs create-service --cluster {CLUSTER} --service-name {SERVICE}" in chk.fix
    assert f"subnets=[{env.subnets[0]},{env.subnets[1]}]" in chk.fix and env.security_group in chk.fix
    for dependant in ("service.desired-count", "service.deployment-config", "ports.task-definition"):
        assert report.get(dependant).status == "skipped"
        assert "does not exist" in report.get(dependant).evidence
    assert report.get("network.routes").status == "passed"  # read from pipeline.yaml's service.network
    assert [c.id for c in report.failed] == ["service.exists"]


def test_field_log_port_8080_instead_of_5000(env):
    """18:39 container on 8080, not 5000: the running revision's port mapping is named, with the JSON fix."""
    env.point_service_at(env.register(portMappings=[{"containerPort": 8080, "protocol": "tcp"}]))
    chk = run_doctor(env.pipeline, env.aws).get("ports.task-definition")
    assert chk.status == "failed"
    assert "revision shine-api-gateway:2: container api maps port 8080, but service.port is 5000" in chk.evidence
    assert '"containerPort": 8080 to "containerPort": 5000' in chk.fix
    assert "phases/taskdef.json" in chk.fix


def test_field_log_missing_port_5000_security_group_rule(env):
    """19:40 'Port 5000 security group rule missing': the exact authorize-security-group-ingress command."""
    env.client("ec2").revoke_security_group_ingress(
        GroupId=env.security_group,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 5000, "ToPort": 5000, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
    )
    chk = run_doctor(env.pipeline, env.aws).get("network.security-groups")
    assert chk.status == "failed"
    assert "no security group of the tasks admits tcp 5000" in chk.evidence
    assert f"{env.security_group} (shine-api): tcp 5000 from nowhere" in chk.evidence
    assert chk.fix.startswith(
        f"aws ec2 authorize-security-group-ingress --group-id {env.security_group} "
        "--protocol tcp --port 5000 --cidr 0.0.0.0/0 --region us-east-1"
    )


def test_field_log_no_public_ip(env):
    """20:50 'no public IP': the service's assignPublicIp is the cause — not the subnet's MapPublicIpOnLaunch."""
    cfg = {"subnets": list(env.subnets), "securityGroups": [env.security_group], "assignPublicIp": "DISABLED"}
    env.client("ecs").update_service(
        cluster=CLUSTER, service=SERVICE, networkConfiguration={"awsvpcConfiguration": cfg}
    )
    report = run_doctor(env.pipeline, env.aws)
    pub = report.get("network.public-ip")
    assert pub.status == "failed"
    assert pub.cause.startswith("assignPublicIp is DISABLED in service shine-api-gateway: tasks get no public IP")
    assert "this is a service setting, not a VPC or subnet setting" in pub.evidence
    assert f"{env.subnets[0]}: MapPublicIpOnLaunch=" in pub.evidence and "Fargate tasks ignore it" in pub.evidence
    assert "assign_public_ip: true" in pub.fix and "assignPublicIp=ENABLED" in pub.fix
    assert f"subnets=[{env.subnets[0]},{env.subnets[1]}]" in pub.fix
    routes = report.get("network.routes")
    assert routes.status == "failed"
    assert routes.cause == (
        f"{env.subnets[0]} routes to internet gateway {env.igw} but assignPublicIp is DISABLED: "
        "tasks have no public IP, so they cannot pull images (CannotPullContainerError)"
    )


def test_field_log_subnet_not_on_route_table_with_igw(env):
    """22:05 'Subnet not associated with the route table with the IGW': the whole chain and the re-association."""
    ec2 = env.client("ec2")
    private = ec2.create_route_table(VpcId=env.vpc)["RouteTable"]["RouteTableId"]
    assoc = next(
        a["RouteTableAssociationId"]
        for a in ec2.describe_route_tables(RouteTableIds=[env.route_table])["RouteTables"][0]["Associations"]
        if a.get("SubnetId") == env.subnets[1]
    )
    new_assoc = ec2.replace_route_table_association(AssociationId=assoc, RouteTableId=private)["NewAssociationId"]
    chk = run_doctor(env.pipeline, env.aws).get("network.routes")
    assert chk.status == "failed"
    assert chk.cause == f"{env.subnets[1]} has no route to an internet gateway and assignPublicIp is ENABLED"
    assert (
        f"{env.subnets[1]} ({env.vpc}): explicitly associated with {private}; 0.0.0.0/0 -> no route; "
        "assignPublicIp ENABLED: FAILS"
    ) in chk.evidence
    assert (
        f"{env.subnets[0]} ({env.vpc}): explicitly associated with {env.route_table}; 0.0.0.0/0 -> {env.igw}"
        in chk.evidence
    )
    assert chk.fix == (
        f"aws ec2 replace-route-table-association --association-id {new_assoc} "
        f"--route-table-id {env.route_table} --region us-east-1"
    )


def test_field_log_network_bindings_not_trusted(env):
    """19:00 'healthy but networkBindings empty': a standing check that reports the bindings and trusts the gates."""
    pin_tasks()  # the env fixture's plain_moto() unpins them afterwards
    env.client("ecs").run_task(
        cluster=CLUSTER,
        taskDefinition=env.taskdef_arn,
        count=1,
        launchType="FARGATE",
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": [env.subnets[0]],
                "securityGroups": [env.security_group],
                "assignPublicIp": "ENABLED",
            }
        },
    )
    report = run_doctor(env.pipeline, env.aws)
    chk = report.get("health.network-bindings")
    assert chk.status == "passed"
    assert chk.title == "networkBindings are not used as proof of health — health comes from the gates"
    assert "1 running task(s), networkBindings empty on 1 of 1 container(s)" in chk.evidence
    assert "container api: networkBindings [] (normal for awsvpc/Fargate: the task's ENI 10." in chk.evidence
    assert "networkBindings are not used as proof of health" in render_text(report)
