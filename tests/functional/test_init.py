"""`snail init` scaffolds a pipeline that validates, refuses to overwrite without --force, and lists what it
wrote. No AWS and no Docker: the sandbox run of the same scaffold is tests/e2e/test_init_sandbox.py."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.harness.cli import snail


def test_init_scaffolds_a_pipeline_that_validates(tmp_path: Path) -> None:
    """pipeline.yaml (commented), one phase, a Dockerfile with ARG BASE_IMAGE and an app, .snail/ ignored."""
    root = tmp_path / "Shop API"
    root.mkdir()
    (root / ".gitignore").write_text("*.pyc")
    r = snail(root, "init", "--port", "9000", "--container", "web", "--cluster", "prod")
    assert r.returncode == 0, r.stderr
    wanted = ["pipeline.yaml", "phases/first.yaml", "images/Shop-API/Dockerfile", "images/Shop-API/app.py"]
    assert [line.split("wrote ", 1)[1] for line in r.stdout.splitlines() if "wrote " in line] == [
        *wanted,
        ".gitignore (.snail/ added)",
    ]
    text = (root / "pipeline.yaml").read_text()
    assert "# " in text and "${SNAIL_BASE_IMAGE:-python:3.12-slim}" in text
    p = yaml.safe_load(text)
    assert p["service"] == {
        "cluster": "prod",
        "name": "Shop-API",
        "region": "us-east-1",
        "container": "web",
        "port": 9000,
        "desired_count": 1,
    }
    dockerfile = (root / "images/Shop-API/Dockerfile").read_text()
    assert "ARG BASE_IMAGE=python:3.12-slim" in dockerfile and "FROM ${BASE_IMAGE}" in dockerfile
    assert "9000" in (root / "images/Shop-API/app.py").read_text()
    assert (root / ".gitignore").read_text() == "*.pyc\n.snail/\n"
    v = snail(root, "validate")
    assert v.returncode == 0, v.stdout + v.stderr


def test_init_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    """A second init writes nothing and names the files (exit 2); --force replaces them; .snail/ is added once."""
    assert snail(tmp_path, "init").returncode == 0
    (tmp_path / "pipeline.yaml").write_text("# mine\n")
    again = snail(tmp_path, "init", "--port", "7000")
    assert again.returncode == 2
    assert "init would overwrite" in again.stderr and "pipeline.yaml" in again.stderr
    assert (tmp_path / "pipeline.yaml").read_text() == "# mine\n"
    forced = snail(tmp_path, "init", "--port", "7000", "--force")
    assert forced.returncode == 0, forced.stderr
    assert "port: 7000" in (tmp_path / "pipeline.yaml").read_text()
    assert (tmp_path / ".gitignore").read_text().count(".snail/") == 1


def test_init_refuses_a_name_ecs_would_refuse(tmp_path: Path) -> None:
    """ECS names: letters, digits, - and _; anything else is exit 2 before a file is written."""
    r = snail(tmp_path, "init", "--name", "my service!")
    assert r.returncode == 2 and "--name" in r.stderr
    assert not (tmp_path / "pipeline.yaml").exists()


def _live_service(url: str) -> str:
    """On moto's server, as the AWS CLI would make it: an ECR image, a revision naming it by tag with a secret,
    a cluster and an awsvpc service. Returns the image's digest."""
    import json

    import boto3
    import requests

    requests.post(f"{url}/moto-api/reset", timeout=10)
    kw = {"endpoint_url": url, "region_name": "us-east-1", "aws_access_key_id": "t", "aws_secret_access_key": "t"}
    ecr, ecs, ec2 = (boto3.client(s, **kw) for s in ("ecr", "ecs", "ec2"))
    repo = ecr.create_repository(repositoryName="shop")["repository"]["repositoryUri"]
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": 1,
            "digest": "sha256:" + "1" * 64,
        },
        "layers": [],
    }
    image = ecr.put_image(repositoryName="shop", imageManifest=json.dumps(manifest), imageTag="v7")["image"]
    ecs.create_cluster(clusterName="prod")
    td = ecs.register_task_definition(
        family="shop",
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        containerDefinitions=[
            {"name": "sidecar", "image": "public.ecr.aws/xray/aws-xray-daemon:3", "essential": False},
            {
                "name": "web",
                "image": f"{repo}:v7",
                "essential": True,
                "portMappings": [{"containerPort": 8080, "protocol": "tcp"}],
                "secrets": [
                    {"name": "DB_PASSWORD", "valueFrom": "arn:aws:ssm:us-east-1:123456789012:parameter/shop/db"}
                ],
            },
        ],
    )["taskDefinition"]["taskDefinitionArn"]
    subnets = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"][:2]]
    sg = ec2.describe_security_groups()["SecurityGroups"][0]["GroupId"]
    ecs.create_service(
        cluster="prod",
        serviceName="shop",
        taskDefinition=td,
        desiredCount=2,
        launchType="FARGATE",
        networkConfiguration={
            "awsvpcConfiguration": {"subnets": subnets, "securityGroups": [sg], "assignPublicIp": "ENABLED"}
        },
    )
    return image["imageId"]["imageDigest"]


def test_init_from_service_writes_a_template_and_a_pinned_phase(tmp_path: Path, moto_server: str) -> None:
    """ecspresso's init shape: the live revision as phases/taskdef.json without read-only fields, the secret kept
    as its valueFrom reference, the main container and its port found, one phase pinned to the live image's digest
    (read from ECR for the tag); the pipeline validates, and a second init refuses to overwrite it."""
    import json

    digest = _live_service(moto_server)
    env = {"AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t", "SNAIL_ENDPOINT_URL": moto_server}
    r = snail(tmp_path, "init", "--from-service", "prod/shop", env=env)
    assert r.returncode == 0, r.stderr
    assert [line.split("wrote ", 1)[1] for line in r.stdout.splitlines() if "wrote " in line] == [
        "pipeline.yaml",
        "phases/taskdef.json",
        "phases/live.yaml",
        ".gitignore (.snail/ added)",
    ]
    p = yaml.safe_load((tmp_path / "pipeline.yaml").read_text())
    assert {k: p["service"][k] for k in ("cluster", "name", "container", "port", "task_definition")} == {
        "cluster": "prod",
        "name": "shop",
        "container": "web",
        "port": 8080,
        "task_definition": "phases/taskdef.json",
    }
    assert p["service"]["desired_count"] == 2 and p["service"]["network"]["assign_public_ip"] is True
    assert p["registry"] == {"ecr": "shop"} and p["phases"] == ["live"]
    template = json.loads((tmp_path / "phases/taskdef.json").read_text())
    assert not {"taskDefinitionArn", "revision", "status", "registeredAt", "requiresAttributes"} & set(template)
    web = next(c for c in template["containerDefinitions"] if c["name"] == "web")
    assert web["secrets"] == [
        {"name": "DB_PASSWORD", "valueFrom": "arn:aws:ssm:us-east-1:123456789012:parameter/shop/db"}
    ]
    phase = yaml.safe_load((tmp_path / "phases/live.yaml").read_text())
    assert phase["image"]["ref"].endswith(f"/shop@{digest}")
    v = snail(tmp_path, "validate", env=env)
    assert v.returncode == 0, v.stdout + v.stderr
    again = snail(tmp_path, "init", "--from-service", "prod/shop", env=env)
    assert again.returncode == 2 and "pipeline.yaml" in again.stderr
    missing = snail(tmp_path / "phases", "init", "--from-service", "prod/nope", env=env)
    assert missing.returncode == 2 and "no ACTIVE service 'nope'" in missing.stderr


def test_the_plan_after_init_from_service_has_nothing_to_deploy(tmp_path: Path, moto_server: str) -> None:
    """The live revision, which snail never registered, already runs the written phase's spec (its image by tag,
    the phase by the digest the tag names): plan says nothing to deploy and that run would adopt it (gate it where
    it runs and mark it good), registers nothing and changes nothing."""
    import json

    import boto3

    _live_service(moto_server)
    env = {"AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t", "SNAIL_ENDPOINT_URL": moto_server}
    assert snail(tmp_path, "init", "--from-service", "prod/shop", env=env).returncode == 0
    plan = snail(tmp_path, "plan", env=env)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert "nothing to deploy: the service already runs phase live's spec" in plan.stdout
    assert "- phase live: already live: shop:1" in plan.stdout and "+++" not in plan.stdout  # no diff: no change
    data = json.loads(snail(tmp_path, "--output", "json", "plan", env=env).stdout)
    [live] = data["plan"]["phases"] if "plan" in data else data["phases"]
    assert (live["case"], live["adopt"].rsplit("/", 1)[-1]) == ("adopt", "shop:1")
    ecs = boto3.client(
        "ecs", endpoint_url=moto_server, region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t"
    )
    assert ecs.list_task_definitions(familyPrefix="shop")["taskDefinitionArns"][-1].endswith("shop:1")


def test_a_changed_phase_after_init_from_service_is_delivered(tmp_path: Path, moto_server: str) -> None:
    """Adoption needs the very spec: a phase that changes anything (here an environment variable) is a release."""
    _live_service(moto_server)
    env = {"AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t", "SNAIL_ENDPOINT_URL": moto_server}
    assert snail(tmp_path, "init", "--from-service", "prod/shop", env=env).returncode == 0
    phase = tmp_path / "phases" / "live.yaml"
    phase.write_text(phase.read_text() + "task: {environment: {FEATURE: 'on'}}\n")
    plan = snail(tmp_path, "plan", env=env)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert "nothing to deploy" not in plan.stdout and "already live" not in plan.stdout
    assert "FEATURE" in plan.stdout
