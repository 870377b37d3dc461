"""The phase images on the real Docker Engine and local registry: build, probe, push, digest, degrade.

Each phase is built from what its phases/NAME.yaml says (context + dockerfile): the three ML phases share one
context, images/ml, with a Dockerfile per phase."""

from __future__ import annotations

import hashlib
import importlib
import json
import sys
import time

import pytest
import requests

from tests.e2e.conftest import IMAGES, PHASES, REPO_ROOT

ML = IMAGES / "ml"
ML_PHASES = ("hybrid-ml", "optimized", "enhanced")
MANIFEST_ACCEPT = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"


def load_reference_pipeline():  # noqa: ANN201
    """The repository's own pipeline.yaml, loaded as snail loads it."""
    from orchestrator.config import load_pipeline

    return load_pipeline(REPO_ROOT / "pipeline.yaml")


def phase_images() -> dict:
    """Each reference phase's ImageSpec (build context, dockerfile) as the repository's pipeline.yaml loads it."""
    return {phase.name: phase.image for phase in load_reference_pipeline().phases}


@pytest.fixture(scope="module")
def pushed(builder, target, build_args):
    """The four phase images built as their phase files say, probed on port 5000, pushed to a fresh repository."""
    from orchestrator.build import ProbeSpec

    specs = phase_images()
    return {
        phase: builder.build_and_push(
            phase,
            specs[phase].context,
            target,
            build_args,
            dockerfile=specs[phase].dockerfile,
            probe=ProbeSpec(port=5000, timeout=30),
        )
        for phase in PHASES
    }


def test_four_phase_images_are_built_probed_and_pushed(pushed):
    """Each phase image is built under `<phase>-<12 hex>`, pushed, and pinned by a sha256 digest."""
    for phase, image in pushed.items():
        assert (image.built, image.pushed) == (True, True), phase
        assert image.tag.startswith(f"{phase}-") and len(image.tag) == len(phase) + 13
        assert image.digest and image.digest.startswith("sha256:") and len(image.digest) == 71
        assert image.ref == f"{image.repository}@{image.digest}"


def test_pushed_digest_is_what_the_registry_serves(pushed, target):
    """GET /v2/<name>/manifests/<tag> answers Docker-Content-Digest equal to the pushed digest and its body's sha256."""
    for image in pushed.values():
        resp = requests.get(
            f"http://{target.registry}/v2/{target.name}/manifests/{image.tag}",
            headers={"Accept": MANIFEST_ACCEPT},
            timeout=10,
        )
        assert resp.status_code == 200, resp.text
        assert resp.headers["Docker-Content-Digest"] == image.digest
        assert "sha256:" + hashlib.sha256(resp.content).hexdigest() == image.digest
        assert json.loads(resp.content)["schemaVersion"] == 2


def test_second_build_with_unchanged_sources_builds_and_pushes_nothing(
    pushed, builder, target, build_args, progress_events
):
    """Re-running with the same sources finds the content tag in the registry: built=False, pushed=False, same digest."""
    from orchestrator.build import ProbeSpec

    specs = phase_images()
    before = len(progress_events)
    started = time.monotonic()
    for phase in PHASES:
        spec = specs[phase]
        again = builder.build_and_push(
            phase, spec.context, target, build_args, dockerfile=spec.dockerfile, probe=ProbeSpec()
        )
        assert (again.built, again.pushed, again.digest, again.tag) == (
            False,
            False,
            pushed[phase].digest,
            pushed[phase].tag,
        )
    new = progress_events[before:]
    assert [e["event"] for e in new] == ["build_skipped"] * len(PHASES)
    assert time.monotonic() - started < 5


def test_build_progress_reports_steps_and_layer_cache_hits(
    pushed, builder, registry, build_args, progress_events, docker_client
):
    """A build streams `build_step` events numbered N/M, and a rebuild of the same context reports cache hits."""
    from orchestrator.build import RegistryTarget, content_tag

    other = RegistryTarget.from_url(f"{registry}/snail-e2e/cache-probe-{time.monotonic_ns()}", env={})
    before = len(progress_events)
    try:
        image = builder.build("health-only", IMAGES / "health-only", other, build_args)
    finally:
        docker_client.images.remove(
            f"{other.repository}:{content_tag('health-only', IMAGES / 'health-only', build_args)}", noprune=True
        )
    steps = [e for e in progress_events[before:] if e["event"] == "build_step"]
    assert image.built and not image.pushed and image.digest is None
    assert [e["step"] for e in steps] == [f"{n}/{len(steps)}" for n in range(1, len(steps) + 1)]
    assert any(e["line"].startswith("COPY app.py") and e["cached"] for e in steps)


def test_port_probe_names_the_port_the_app_really_listens_on(builder, target, build_args, docker_client):
    """The field log's image (listens on 8080) fails the probe on 5000 with a message naming 8080; nothing is pushed."""
    from orchestrator.build import ProbeSpec
    from orchestrator.build.registry import registry_digest
    from orchestrator.errors import PortProbeFailed

    with pytest.raises(PortProbeFailed) as failed:
        builder.build_and_push(
            "broken-port", IMAGES / "broken-port", target, build_args, probe=ProbeSpec(port=5000, timeout=6)
        )
    message = str(failed.value)
    assert "does not answer /health on port 5000" in message and "it listens on 8080" in message
    assert failed.value.data["result"].listening_ports == (8080,)
    assert not docker_client.containers.list(all=True, filters={"label": "snail-trail.role=port-probe"})
    from orchestrator.build import content_tag

    assert registry_digest(target, content_tag("broken-port", IMAGES / "broken-port", build_args)) is None


def test_port_probe_passes_when_the_app_answers(pushed, builder):
    """The probe of a good image returns the 2xx answer and the host port it used on 127.0.0.1."""
    result = builder.probe(pushed["health-only"].ref, 5000, "/health", timeout=20)
    assert result.ok and result.status == 200 and json.loads(result.body)["phase"] == "health-only"
    assert isinstance(result.host_port, int) and result.host_port > 0


def test_failing_dockerfile_raises_build_error_with_the_step(builder, target, build_args, tmp_path):
    """A RUN that exits 3 gives BuildError naming step 4/4, the instruction and the engine's error."""
    from orchestrator.errors import BuildError

    (tmp_path / "Dockerfile").write_text(
        "ARG BASE_IMAGE=python:3.11-slim\nFROM ${BASE_IMAGE}\nRUN echo preparing\nRUN echo broken >&2 && exit 3\n"
    )
    with pytest.raises(BuildError) as failed:
        builder.build("broken-build", tmp_path, target, build_args)
    message = str(failed.value)
    assert "step 4/4 (RUN echo broken >&2 && exit 3)" in message
    assert "returned a non-zero code: 3" in message
    assert failed.value.data["step"] == "4/4"


def test_unknown_instruction_raises_build_error(builder, target, build_args, tmp_path):
    """A Dockerfile the engine cannot parse is a BuildError, not a crash."""
    from orchestrator.errors import BuildError

    (tmp_path / "Dockerfile").write_text("FROM scratch\nFOO bar\n")
    with pytest.raises(BuildError, match="unknown instruction"):
        builder.build("unparsable", tmp_path, target, build_args)


def test_unreachable_daemon_says_how_to_start_one(monkeypatch):
    """A client pointed at a socket that does not exist gives DockerUnavailable with the way to start an engine."""
    from orchestrator.build import ImageBuilder
    from orchestrator.errors import DockerUnavailable

    with pytest.raises(DockerUnavailable) as failed:
        ImageBuilder(base_url="unix:///nonexistent")
    assert "unix:///nonexistent" in str(failed.value) and "sudo systemctl start docker" in str(failed.value)
    assert "scripts/" not in str(failed.value)  # a user has no checkout of snail: the hint says what they do
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent")
    with pytest.raises(DockerUnavailable, match="sudo dockerd"):
        ImageBuilder()


def test_hybrid_ml_degrades_and_fails_as_told(pushed, run_container):
    """hybrid-ml: ready with numpy; ML_DISABLE=1 degraded and ML_FORCE_FAIL=1 failed, while /health stays 200."""
    ref = pushed["hybrid-ml"].ref
    url, _ = run_container(ref)
    assert requests.get(url + "/ml/status", timeout=5).json()["status"] == "ready"
    answer = requests.post(url + "/ml/predict", json={"instances": [[900, 6, 95, 97], [120, 0.2, 35, 40]]}, timeout=5)
    assert answer.status_code == 200 and [p["unhealthy"] for p in answer.json()["predictions"]] == [True, False]
    assert answer.json()["engine"] == "numpy"
    assert requests.post(url + "/ml/predict", json={"features": {"cpu_pct": 1}}, timeout=5).status_code == 400

    url, _ = run_container(ref, env={"ML_DISABLE": "1"})
    status = requests.get(url + "/ml/status", timeout=5)
    assert status.status_code == 200 and status.json()["status"] == "degraded"
    assert requests.get(url + "/health", timeout=5).status_code == 200
    assert requests.post(url + "/ml/predict", json={"instances": [[1, 1, 1, 1]]}, timeout=5).status_code == 503

    url, _ = run_container(ref, env={"ML_FORCE_FAIL": "1"})
    status = requests.get(url + "/ml/status", timeout=5)
    assert status.status_code == 503 and status.json()["status"] == "failed"
    assert requests.get(url + "/health", timeout=5).json() == {
        "status": "ok",
        "phase": "hybrid-ml",
        "version": "1.0.0",
        "ml": "failed",
    }


def test_optimized_runs_as_non_root_with_a_healthcheck(pushed, run_container, docker_client):
    """optimized: a non-root user, a HEALTHCHECK the engine reports healthy, and the same ML endpoints."""
    image = docker_client.images.get(pushed["optimized"].ref)
    assert image.attrs["Config"]["User"] == "app"
    assert "urllib" in " ".join(image.attrs["Config"]["Healthcheck"]["Test"])
    url, container = run_container(pushed["optimized"].ref)
    assert container.exec_run(["id", "-u"]).output.strip() == b"10001"
    assert requests.get(url + "/ml/status", timeout=5).json()["status"] == "ready"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        container.reload()
        if container.attrs["State"].get("Health", {}).get("Status") == "healthy":
            break
        time.sleep(0.5)
    assert container.attrs["State"]["Health"]["Status"] == "healthy"


def test_enhanced_logs_json_exports_metrics_and_reports_model_source(pushed, run_container):
    """enhanced: JSON log lines, Prometheus counters, and a clear status when S3 cannot be used (no boto3)."""
    url, container = run_container(pushed["enhanced"].ref, env={"MODEL_S3_URI": "s3://models/release-risk.json"})
    status = requests.get(url + "/ml/status", timeout=5).json()
    assert status["status"] == "degraded" and status["model_source"].startswith("image:")
    assert any("s3 unavailable" in r and "using local cache dir /var/cache/snail-model" in r for r in status["reasons"])
    assert requests.post(url + "/ml/predict", json={"instances": [[1, 1, 1, 1]]}, timeout=5).status_code == 200
    metrics = requests.get(url + "/metrics", timeout=5).text
    assert 'snail_http_requests_total{method="POST",route="/ml/predict",status="200"} 1' in metrics
    assert 'snail_http_request_duration_seconds_count{route="/ml/status"} 1' in metrics
    assert "snail_ml_predictions_total 1" in metrics
    lines = [json.loads(line) for line in container.logs(stdout=True, stderr=False).decode().splitlines() if line]
    assert {"ml_loaded", "listening", "request"} <= {line["event"] for line in lines}


def test_images_stop_gracefully_on_sigterm(pushed, run_container):
    """Every phase image exits 0 promptly on SIGTERM (ECS stops tasks that way)."""
    for phase in PHASES:
        _, container = run_container(pushed[phase].ref)
        started = time.monotonic()
        container.stop(timeout=10)
        assert container.wait(timeout=15)["StatusCode"] == 0, phase
        assert time.monotonic() - started < 5, phase


# -- the apps' ML code in-process (no engine needed) ------------------------------------------------------


@pytest.fixture
def image_module(monkeypatch):
    """Import a module from the ML build context (its siblings importable), without leaving bytecode there."""
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    names = ("ml", "model_store", "app", "app_enhanced")

    def load(name: str):
        for n in names:
            monkeypatch.delitem(sys.modules, n, raising=False)
        monkeypatch.syspath_prepend(str(ML))
        return importlib.import_module(name)

    yield load
    for n in names:
        sys.modules.pop(n, None)


def test_the_three_ml_phases_build_from_one_context():
    """hybrid-ml, optimized and enhanced build from images/ml with Dockerfile.<phase>; no copy of the ML code elsewhere."""
    from orchestrator.build import content_tag, context_files

    specs = phase_images()
    for phase in ML_PHASES:
        assert (specs[phase].context, specs[phase].dockerfile) == (ML, f"Dockerfile.{phase}"), phase
        sent = context_files(ML, specs[phase].dockerfile)
        assert [f for f in sent if f.startswith("Dockerfile")] == [f"Dockerfile.{phase}"], phase
        assert {"app.py", "ml.py", "model.json", "requirements.txt"} <= set(sent) and "train_model.py" not in sent
    tags = {content_tag(p, ML, specs[p].build_args, specs[p].dockerfile).split("-")[-1] for p in ML_PHASES}
    assert len(tags) == 3
    copies = [p.relative_to(IMAGES) for name in ("ml.py", "model.json") for p in IMAGES.rglob(name)]
    assert sorted(map(str, copies)) == ["ml/ml.py", "ml/model.json"]


def test_plan_names_the_dockerfile_of_a_shared_context():
    """`plan` says which Dockerfile of images/ml each ML phase builds (registry unreachable: not checked)."""
    from orchestrator.images import Images

    specs = {p.name: p for p in load_reference_pipeline().phases}
    images = Images(load_reference_pipeline(), aws=None, registry_url="127.0.0.1:9")  # type: ignore[arg-type]
    for phase in ML_PHASES:
        action = images.planned_action(specs[phase], images.identity(specs[phase]))
        assert action.startswith(f"build ml/Dockerfile.{phase} -> 127.0.0.1:9/shine-api-gateway:{phase}-"), action
    assert images.planned_action(specs["health-only"], "t").startswith("build health-only -> ")


def test_pure_python_predictions_match_numpy(image_module):
    """The pure-Python fallback gives the numpy probabilities, and both reproduce the model's own examples."""
    ml = image_module("ml")
    model = ml.Model.load(ML / "model.json")
    rows = [e["features"] for e in model.examples] + [[0, 0, 0, 0], [5000, 50, 100, 100]]
    assert model.predict_python(rows) == pytest.approx(model.predict_numpy(rows), abs=1e-12)
    model.check(model.predict_python)


def test_without_numpy_the_service_degrades_but_predicts(image_module, monkeypatch):
    """No numpy: status degraded with the reason, engine python, predictions still served."""
    ml = image_module("ml")
    monkeypatch.setitem(sys.modules, "numpy", None)
    service = ml.MLService(env={}, model_path=str(ML / "model.json"))
    assert (service.status, service.engine) == ("degraded", "python")
    assert "numpy not installed" in service.reasons[0]
    code, body = service.predict(
        {"features": {"latency_p95_ms": 900, "error_rate_pct": 6, "cpu_pct": 95, "memory_pct": 97}}
    )
    assert code == 200 and body["predictions"][0]["unhealthy"] is True


def test_a_broken_model_file_degrades_instead_of_crashing(image_module, tmp_path):
    """A model that does not load leaves the API serving: degraded, predictions 503 with the reason."""
    ml = image_module("ml")
    (tmp_path / "model.json").write_text('{"features": ["a"], "mean": [0, 1]}')
    service = ml.MLService(env={}, model_path=str(tmp_path / "model.json"))
    assert service.status == "degraded" and "model failed to load" in service.reasons[-1]
    assert service.predict({"features": {"a": 1}})[0] == 503


def test_enhanced_model_cache_from_s3_then_cache_dir(image_module, monkeypatch, tmp_path):
    """enhanced: the model comes from S3 into MODEL_CACHE_DIR; when S3 then fails, from the cache, and it says so."""
    boto3 = pytest.importorskip("boto3")
    from moto import mock_aws

    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    store = image_module("model_store")
    env = {"MODEL_S3_URI": "s3://models/release-risk.json", "MODEL_CACHE_DIR": str(tmp_path / "cache")}
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="models")
        s3.put_object(Bucket="models", Key="release-risk.json", Body=(ML / "model.json").read_bytes())
        fresh = store.CachedModelService(env=env, s3_client=s3)
        assert (fresh.status, fresh.source) == ("ready", "s3://models/release-risk.json")
        assert (tmp_path / "cache" / "model.json").is_file()
        s3.delete_object(Bucket="models", Key="release-risk.json")
        cached = store.CachedModelService(env=env, s3_client=s3)
    assert cached.status == "degraded" and cached.source == f"cache:{tmp_path / 'cache' / 'model.json'}"
    assert "s3 unreachable (NoSuchKey" in cached.reasons[0] and str(tmp_path / "cache") in cached.reasons[0]
    assert cached.predict({"instances": [[1, 1, 1, 1]]})[0] == 200
