"""A known-good AWS environment for a pipeline, built through boto3 (moto in tests, the sandbox in demos).

moto's default VPC has no internet gateway (notes/moto-and-docker.md), so anything that wants doctor to pass
must build its own network: this is that network, plus everything else doctor checks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import boto3
import pytest

from orchestrator.aws.ecs import EcsClient
from orchestrator.aws.session import AwsContext
from orchestrator.config.gates import EcsRolloutGate, HttpGate
from orchestrator.config.model import (
    ImageSpec,
    NetworkSpec,
    Phase,
    Pipeline,
    RegistrySpec,
    ServiceSpec,
    StateSpec,
    TaskSpec,
)
from tests.harness.moto import plain_moto

CLUSTER = "shine"
SERVICE = "shine-api-gateway"
CONTAINER = "api"
PORT = 5000
LOG_GROUP = "/ecs/shine-api-gateway"
ROLE = "ecsTaskExecutionRole"
EXECUTION_POLICY_ARN = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
INLINE_PULL_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": [
                "ecr:GetAuthorizationToken",
                "ecr:BatchCheckLayerAvailability",
                "ecr:GetDownloadUrlForLayer",
                "ecr:BatchGetImage",
                "logs:CreateLogStream",
                "logs:PutLogEvents",
            ],
            "Resource": "*",
        }
    ],
}
TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}
MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": 2,
            "digest": "sha256:" + "a" * 64,
        },
        "layers": [],
    }
)


@dataclass
class Env:
    """Ids of everything good_env() built, and the pipeline that points at them."""

    aws: AwsContext
    pipeline: Pipeline
    vpc: str
    subnets: tuple[str, str]
    igw: str
    route_table: str
    main_route_table: str
    security_group: str
    repository_uri: str
    image: str
    role_arn: str
    log_group: str
    taskdef_arn: str
    service_arn: str

    def client(self, name: str) -> Any:
        """A client from the same AwsContext doctor uses."""
        return self.aws.client(name)

    def with_service(self, **changes: Any) -> Pipeline:
        """The pipeline with some service.* settings changed."""
        return replace(self.pipeline, service=replace(self.pipeline.service, **changes))

    def register(self, **container_changes: Any) -> str:
        """Register a new revision of the good task definition with container changes; returns its ARN."""
        td = taskdef(self.image, self.role_arn)
        td["containerDefinitions"][0].update(container_changes)
        return self.client("ecs").register_task_definition(**td)["taskDefinition"]["taskDefinitionArn"]

    def point_service_at(self, revision_arn: str) -> None:
        """Make the service run another revision."""
        self.client("ecs").update_service(cluster=CLUSTER, service=SERVICE, taskDefinition=revision_arn)


def taskdef(image: str, role_arn: str, port: int = PORT) -> dict[str, Any]:
    """The good task definition: awsvpc/Fargate, container `api` on `port`, awslogs, execution role."""
    return {
        "family": SERVICE,
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "cpu": "256",
        "memory": "512",
        "executionRoleArn": role_arn,
        "containerDefinitions": [
            {
                "name": CONTAINER,
                "image": image,
                "essential": True,
                "memory": 512,  # moto's run_task needs container-level memory
                "portMappings": [{"containerPort": port, "protocol": "tcp"}],
                "environment": [{"name": "PORT", "value": str(port)}],
                "logConfiguration": {
                    "logDriver": "awslogs",
                    "options": {
                        "awslogs-group": LOG_GROUP,
                        "awslogs-region": "us-east-1",
                        "awslogs-stream-prefix": CONTAINER,
                    },
                },
            }
        ],
    }


def pipeline_for(root: Path, network: NetworkSpec | None, template: Path | None) -> Pipeline:
    """A one-phase pipeline for the good environment, rooted at `root`."""
    gates = (
        EcsRolloutGate(source="pipeline.yaml:20"),
        HttpGate(path="/health", source="pipeline.yaml:21"),
    )
    phase = Phase(
        name="health-only",
        image=ImageSpec(context=root / "images" / "health-only"),
        task=TaskSpec(),
        gates=gates,
        bake=0.0,
        path=root / "phases" / "health-only.yaml",
    )
    return Pipeline(
        version=1,
        service=ServiceSpec(
            cluster=CLUSTER,
            name=SERVICE,
            region="us-east-1",
            container=CONTAINER,
            port=PORT,
            task_definition=template,
            desired_count=1,
            network=network,
            circuit_breaker=True,
        ),
        registry=RegistrySpec(ecr=SERVICE),
        state=StateSpec(),
        phases=(phase,),
        path=root / "pipeline.yaml",
        defaults_gates=gates,
    )


def good_env(aws: AwsContext, root: Path, *, managed_policy: bool = False, create: bool = True) -> Env:
    """Build cluster, VPC (DNS on), IGW routed to 2 subnets, SG admitting 5000, ECR repo with an image,
    execution role, log group, task definition and (unless create=False) the service with a public IP."""
    ec2, ecs, ecr, iam, logs = (aws.client(n) for n in ("ec2", "ecs", "ecr", "iam", "logs"))
    ecs.create_cluster(clusterName=CLUSTER)
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsSupport={"Value": True})
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    rt = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=rt, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    main = ec2.describe_route_tables(
        Filters=[{"Name": "vpc-id", "Values": [vpc]}, {"Name": "association.main", "Values": ["true"]}]
    )["RouteTables"][0]["RouteTableId"]
    subnets = []
    for i, az in enumerate(("us-east-1a", "us-east-1b")):
        sid = ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{i}.0/24", AvailabilityZone=az)["Subnet"]["SubnetId"]
        ec2.associate_route_table(RouteTableId=rt, SubnetId=sid)
        subnets.append(sid)
    sg = ec2.create_security_group(GroupName="shine-api", Description="shine api tasks", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=sg,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": PORT, "ToPort": PORT, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
    )
    repo_uri = ecr.create_repository(repositoryName=SERVICE)["repository"]["repositoryUri"]
    ecr.put_image(repositoryName=SERVICE, imageManifest=MANIFEST, imageTag="health-only")
    image = f"{repo_uri}:health-only"
    role_arn = iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
    if managed_policy:
        iam.attach_role_policy(RoleName=ROLE, PolicyArn=EXECUTION_POLICY_ARN)
    else:
        iam.put_role_policy(RoleName=ROLE, PolicyName="ecs-pull-and-log", PolicyDocument=json.dumps(INLINE_PULL_POLICY))
    logs.create_log_group(logGroupName=LOG_GROUP)
    td = taskdef(image, role_arn)
    template = root / "phases" / "taskdef.json"
    template.parent.mkdir(parents=True, exist_ok=True)
    template.write_text(
        json.dumps(
            {**td, "containerDefinitions": [{**td["containerDefinitions"][0], "image": "PLACEHOLDER"}]}, indent=2
        )
    )
    td_arn = ecs.register_task_definition(**td, tags=[{"key": "snail:phase", "value": "health-only"}])[
        "taskDefinition"
    ]["taskDefinitionArn"]
    pipeline = pipeline_for(root, NetworkSpec(tuple(subnets), (sg,), True), template)
    service_arn = EcsClient(aws).create_service(pipeline.service, td_arn) if create else ""
    return Env(
        aws=aws,
        pipeline=pipeline,
        vpc=vpc,
        subnets=(subnets[0], subnets[1]),
        igw=igw,
        route_table=rt,
        main_route_table=main,
        security_group=sg,
        repository_uri=repo_uri,
        image=image,
        role_arn=role_arn,
        log_group=LOG_GROUP,
        taskdef_arn=td_arn,
        service_arn=service_arn,
    )


SESSION = boto3.session.Session(
    region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
)  # one session: service models load once


def aws_context() -> AwsContext:
    """A fresh AwsContext (own clients) on the shared boto3 session."""
    return AwsContext(region="us-east-1", _session=SESSION)


@pytest.fixture
def aws():
    """An AwsContext on in-process moto (plain moto, whatever the test before left installed)."""
    with plain_moto():
        yield aws_context()


@pytest.fixture
def env(aws, tmp_path):
    """The known-good environment every test breaks one thing of."""
    return good_env(aws, tmp_path)
