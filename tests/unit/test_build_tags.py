"""Content tags, image references, registry targets (masking, ECR auth with moto) and probe parsing."""

from __future__ import annotations

import base64
import os
import re
import shutil
from pathlib import Path

import pytest

from orchestrator.aws.ecr import EcrClient
from orchestrator.build import BuiltImage, RegistryTarget, content_tag, context_files
from orchestrator.build.probe import listening_ports
from orchestrator.build.registry import registry_digest
from orchestrator.errors import NotFound, UsageError

ARGS = {"BASE_IMAGE": "snail-base/python:3.11"}


@pytest.fixture
def context(tmp_path: Path) -> Path:
    """A small build context: Dockerfile, an app and a data file in a subdirectory."""
    (tmp_path / "Dockerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY . /app\n")
    (tmp_path / "app.py").write_text("print('hello')\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "model.json").write_text('{"weights": [1, 2]}')
    return tmp_path


def test_content_tag_is_phase_dash_12_hex_and_stable(context):
    """Same inputs give the same `<phase>-<12 hex>` tag, call after call."""
    tag = content_tag("hybrid-ml", context, ARGS)
    assert re.fullmatch(r"hybrid-ml-[0-9a-f]{12}", tag)
    assert content_tag("hybrid-ml", context, dict(ARGS)) == tag


def test_content_tag_does_not_depend_on_where_the_context_lives(context, tmp_path_factory):
    """A copy of the context elsewhere (another checkout, another machine) has the same tag."""
    elsewhere = tmp_path_factory.mktemp("checkout") / "ctx"
    shutil.copytree(context, elsewhere)
    os.utime(elsewhere / "app.py", (0, 0))  # mtimes do not count
    assert content_tag("p", elsewhere, ARGS) == content_tag("p", context, ARGS)


@pytest.mark.parametrize(
    "change",
    [
        lambda c: (c / "app.py").write_text("print('hello!')\n"),
        lambda c: (c / "data" / "extra.txt").write_text("x"),
        lambda c: (c / "data" / "model.json").unlink(),
        lambda c: (c / "data" / "model.json").rename(c / "data" / "model2.json"),
        lambda c: (c / "app.py").chmod(0o755),
    ],
    ids=["file-bytes", "file-added", "file-removed", "file-renamed", "mode-executable"],
)
def test_content_tag_changes_with_the_context(context, change):
    """Any change to what Docker would receive gives a new tag."""
    before = content_tag("p", context, ARGS)
    change(context)
    assert content_tag("p", context, ARGS) != before


def test_content_tag_changes_with_build_args_dockerfile_and_phase(context):
    """Build arguments, the Dockerfile name and the phase are part of the tag."""
    base = content_tag("p", context, ARGS)
    assert content_tag("p", context, {"BASE_IMAGE": "python:3.11-slim"}) != base
    assert content_tag("p", context, {**ARGS, "EXTRA": "1"}) != base
    assert content_tag("p", context, ARGS, dockerfile="Dockerfile.alt") != base
    assert content_tag("p", context, ARGS, dockerfile=str(context / "Dockerfile")) == base
    assert content_tag("q", context, ARGS).split("-")[-1] == base.split("-")[-1]
    assert content_tag("q", context, ARGS) != base


def test_dockerignored_files_do_not_change_the_tag(context):
    """Files excluded by .dockerignore (with `**` and `!` negation) are not sent, so they do not count."""
    (context / ".dockerignore").write_text("# comment\n**/__pycache__\n*.log\ndata\n!data/model.json\n")
    before = content_tag("p", context, ARGS)
    (context / "debug.log").write_text("noise")
    (context / "data" / "scratch.bin").write_bytes(b"\0" * 10)
    (context / "data" / "__pycache__").mkdir()
    (context / "data" / "__pycache__" / "m.pyc").write_bytes(b"pyc")
    assert content_tag("p", context, ARGS) == before
    assert context_files(context) == [".dockerignore", "Dockerfile", "app.py", "data/model.json"]
    (context / "data" / "model.json").write_text("{}")
    assert content_tag("p", context, ARGS) != before


def test_a_shared_context_tags_each_phase_by_its_own_dockerfile(context):
    """With `Dockerfile.*` ignored, the named Dockerfile still counts (Docker sends it); the others do not."""
    (context / ".dockerignore").write_text("Dockerfile.*\n")
    (context / "Dockerfile.a").write_text("FROM scratch\nCOPY app.py /\n")
    (context / "Dockerfile.b").write_text("FROM scratch\nCOPY data /data\n")
    assert context_files(context, "Dockerfile.a") == [".dockerignore", "Dockerfile", "Dockerfile.a", "app.py"] + [
        "data/model.json"
    ]
    a, b = content_tag("a", context, ARGS, "Dockerfile.a"), content_tag("b", context, ARGS, "Dockerfile.b")
    (context / "Dockerfile.b").write_text("FROM scratch\nCOPY data /srv/data\n")
    assert content_tag("a", context, ARGS, "Dockerfile.a") == a
    assert content_tag("b", context, ARGS, "Dockerfile.b") != b
    (context / "Dockerfile.a").write_text("FROM scratch\nCOPY app.py /srv/\n")
    assert content_tag("a", context, ARGS, "Dockerfile.a") != a


def test_phase_names_are_made_tag_safe(context):
    """A phase name with characters Docker tags do not allow still gives a valid tag."""
    assert re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", content_tag("ML phase/2", context, ARGS))


def test_built_image_ref_prefers_the_digest():
    """ref pins by digest once known, else uses the tag."""
    unpushed = BuiltImage("health-only", "127.0.0.1:5055/app", "health-only-0123456789ab", None, True, False)
    assert unpushed.ref == "127.0.0.1:5055/app:health-only-0123456789ab"
    pushed = BuiltImage(
        "health-only", "127.0.0.1:5055/app", "health-only-0123456789ab", "sha256:" + "a" * 64, True, True
    )
    assert pushed.ref == "127.0.0.1:5055/app@sha256:" + "a" * 64
    assert pushed.tagged == "127.0.0.1:5055/app:health-only-0123456789ab"


def test_registry_target_never_shows_its_password():
    """repr and str of a target mask the password; auth_config still carries it for the engine."""
    target = RegistryTarget("reg.example.com/team/app", username="ci", password="s3cr3t-t0ken")
    for text in (repr(target), str(target), f"{target}", repr([target])):
        assert "s3cr3t-t0ken" not in text and "'***'" in text
    assert target.auth_config() == {"username": "ci", "password": "s3cr3t-t0ken", "serveraddress": "reg.example.com"}
    assert "password=None" in repr(RegistryTarget("reg.example.com/app"))
    assert RegistryTarget("reg.example.com/app").auth_config() is None


def test_registry_target_from_url_reads_credentials_from_the_environment():
    """from_url splits host and name, takes SNAIL_REGISTRY_USERNAME/PASSWORD, and picks http for loopback."""
    env = {"SNAIL_REGISTRY_USERNAME": "robot", "SNAIL_REGISTRY_PASSWORD": "pw"}
    target = RegistryTarget.from_url("127.0.0.1:5055/shine-api-gateway", env=env)
    assert (target.registry, target.name, target.username, target.password) == (
        "127.0.0.1:5055",
        "shine-api-gateway",
        "robot",
        "pw",
    )
    assert target.api_base == "http://127.0.0.1:5055/v2"
    assert RegistryTarget.from_url("localhost:5000/a/b", env={}).api_base == "http://localhost:5000/v2"
    assert RegistryTarget.from_url("ghcr.io/org/app", env={}).api_base == "https://ghcr.io/v2"
    insecure = RegistryTarget.from_url("http://registry.lan:5000/app", env={})
    assert (insecure.repository, insecure.api_base) == ("registry.lan:5000/app", "http://registry.lan:5000/v2")
    assert RegistryTarget.from_url("https://ghcr.io/org/app/", env={}).repository == "ghcr.io/org/app"


@pytest.mark.parametrize("url", ["shine-api-gateway", "127.0.0.1:5055", "127.0.0.1:5055/Shine", "reg.io/a//b"])
def test_registry_target_from_url_rejects_what_docker_would(url):
    """A URL without a registry host or with an invalid repository name is a usage error."""
    with pytest.raises(UsageError):
        RegistryTarget.from_url(url, env={})


@pytest.fixture
def ecr(monkeypatch):
    """A moto ECR client in us-east-1."""
    boto3 = pytest.importorskip("boto3")
    from moto import mock_aws

    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        yield boto3.client("ecr", region_name="us-east-1")


def test_from_ecr_uses_the_repository_uri_and_the_authorization_token(ecr):
    """An existing repository: its URI, and user/password decoded from get_authorization_token."""
    uri = ecr.create_repository(repositoryName="shine-api-gateway")["repository"]["repositoryUri"]
    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    user, password = base64.b64decode(token).decode().split(":", 1)
    target = RegistryTarget.from_ecr(EcrClient(client=ecr), "shine-api-gateway")
    assert (target.repository, target.username, target.password) == (uri, user, password)
    assert target.registry.endswith(".amazonaws.com") and target.name == "shine-api-gateway"
    assert password not in repr(target)


def test_from_ecr_missing_repository_is_not_found_unless_create(ecr):
    """A missing repository raises NotFound; with create=True it is created (immutable tags) and used."""
    with pytest.raises(NotFound, match="shine-api-gateway"):
        RegistryTarget.from_ecr(EcrClient(client=ecr), "shine-api-gateway")
    assert ecr.describe_repositories()["repositories"] == []
    target = RegistryTarget.from_ecr(EcrClient(client=ecr), "shine-api-gateway", create=True)
    repo = ecr.describe_repositories(repositoryNames=["shine-api-gateway"])["repositories"][0]
    assert target.repository == repo["repositoryUri"]
    assert repo["imageTagMutability"] == "IMMUTABLE"
    assert RegistryTarget.from_ecr(EcrClient(client=ecr), "shine-api-gateway").repository == target.repository


PROC_NET_TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 0100007F:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0 100 0 0 10 0
   2: 0200A8C0:1F90 0100A8C0:D431 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0 100 0 0 10 0
  sl  local_address                         remote_address                        st tx_queue rx_queue
   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000
"""


def test_listening_ports_reads_listen_sockets_only():
    """LISTEN entries of /proc/net/tcp and tcp6 give the ports (8080, 3306); established connections do not."""
    assert listening_ports(PROC_NET_TCP) == (3306, 8080)
    assert listening_ports("") == ()


class _Response:
    def __init__(self, status, headers=None, body=b""):
        self.status_code, self.headers, self.content = status, headers or {}, body
        self.ok = 200 <= status < 300

    def json(self):
        import json

        return json.loads(self.content)


class _Session:
    """Plays a token-authenticated registry: HEAD without token -> 401 Bearer challenge."""

    def __init__(self):
        self.calls = []

    def head(self, url, headers=None, auth=None, timeout=None):
        self.calls.append(("HEAD", url, dict(headers or {}), auth))
        if headers.get("Authorization") != "Bearer tok":
            return _Response(
                401,
                {
                    "WWW-Authenticate": 'Bearer realm="https://auth.example/token",service="reg",scope="repository:app:pull"'
                },
            )
        if url.endswith("/missing"):
            return _Response(404)
        return _Response(200, {"Docker-Content-Digest": "sha256:" + "b" * 64})

    def get(self, url, params=None, auth=None, headers=None, timeout=None):
        self.calls.append(("GET", url, params, auth))
        return _Response(200, body=b'{"token": "tok"}')


def test_registry_digest_follows_a_bearer_challenge():
    """A 401 Bearer challenge is answered with a token fetched with the basic credentials; 404 means absent."""
    target = RegistryTarget("reg.example.com/app", username="u", password="p")
    session = _Session()
    assert registry_digest(target, "present", session=session) == "sha256:" + "b" * 64
    token_call = session.calls[1]
    assert token_call[:4] == (
        "GET",
        "https://auth.example/token",
        {"service": "reg", "scope": "repository:app:pull"},
        ("u", "p"),
    )
    assert session.calls[0][1] == "https://reg.example.com/v2/app/manifests/present"
    assert "manifest.v2+json" in session.calls[0][2]["Accept"]
    assert registry_digest(target, "missing", session=_Session()) is None


@pytest.mark.process
def test_importing_the_build_package_does_not_import_docker():
    """`snail --help` stays fast: orchestrator.build imports the docker SDK only when it talks to the engine."""
    import subprocess
    import sys

    code = "import sys, orchestrator.build; assert 'docker' not in sys.modules and 'requests' not in sys.modules"
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root, env={**os.environ, "PYTHONPATH": str(root)})


def test_build_secret_names_are_in_the_content_tag_and_their_values_never(tmp_path) -> None:  # noqa: ANN001
    """A build secret's name changes the content tag; no value is ever an input (a tag is public)."""
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    plain = content_tag("p", tmp_path)
    named = content_tag("p", tmp_path, secret_names=("NPM_TOKEN",))
    assert plain != named and named == content_tag("p", tmp_path, secret_names=("NPM_TOKEN",))
