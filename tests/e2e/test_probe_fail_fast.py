"""The port probe fails fast on real containers: an exit, a failing answer, or the app listening on another port
(the field log's 8080 image) ends the probe in seconds, not at its 30 s timeout; a silent app waits it out."""

from __future__ import annotations

import io
import time
import uuid

import pytest

from orchestrator.build.probe import run_probe
from orchestrator.errors import PortProbeFailed
from tests.e2e.conftest import IMAGES

pytestmark = pytest.mark.e2e

SERVE_500 = (
    "import http.server as h\n"
    "class H(h.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        self.send_response(500); self.end_headers(); self.wfile.write(b'model failed to load')\n"
    "h.HTTPServer(('0.0.0.0', 5000), H).serve_forever()\n"
)


@pytest.fixture(scope="module")
def images(docker_client, build_args):
    """Small images on the offline base: one that exits 3, one that answers 500, one that never listens, and
    the repository's broken-port image (listens on 8080); removed afterwards."""
    tag = uuid.uuid4().hex[:8]
    apps = {
        "exits": "import sys; print('config missing: DATABASE_URL', flush=True); sys.exit(3)",
        "answers-500": SERVE_500,
        "silent": "import time; time.sleep(600)",
    }
    built = {}
    for name, code in apps.items():
        dockerfile = f'FROM {build_args["BASE_IMAGE"]}\nCMD ["python3", "-c", "exec(__import__(\'base64\').b64decode(\'{_b64(code)}\'))"]\n'
        ref = f"snail-e2e/probe-{name}:{tag}"
        docker_client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=ref, rm=True)
        built[name] = ref
    ref = f"snail-e2e/probe-broken-port:{tag}"
    docker_client.images.build(path=str(IMAGES / "broken-port"), tag=ref, buildargs=build_args, rm=True)
    built["broken-port"] = ref
    yield built
    for ref in built.values():
        docker_client.images.remove(ref, noprune=True)


def _b64(code: str) -> str:
    import base64

    return base64.b64encode(code.encode()).decode()


def _probe(docker_client, ref: str, timeout: float = 30.0) -> tuple[PortProbeFailed, float, list[dict]]:  # noqa: ANN001
    events: list[dict] = []
    start = time.monotonic()
    with pytest.raises(PortProbeFailed) as failed:
        run_probe(docker_client, ref, 5000, "/health", timeout=timeout, progress=events.append)
    return failed.value, time.monotonic() - start, events


def test_probe_stops_when_the_container_exits(docker_client, images) -> None:
    """Exit code 3 and the container's last lines, seconds after the start."""
    exc, took, _ = _probe(docker_client, images["exits"])
    assert took < 6, took
    assert "the container exited with code 3 before answering" in str(exc)
    assert "config missing: DATABASE_URL" in str(exc) and exc.data["result"].exit_code == 3


def test_probe_stops_on_a_failing_answer(docker_client, images) -> None:
    """HTTP 500 on /health three times in a row fails the probe at once, with the body."""
    exc, took, _ = _probe(docker_client, images["answers-500"])
    assert took < 8, took
    assert "it answers on port 5000 but with HTTP 500: model failed to load" in str(exc)
    assert exc.data["result"].status == 500


def test_probe_stops_when_the_app_listens_on_another_port(docker_client, images) -> None:
    """The field log's image: seen listening only on 8080 twice, a second apart: fails in seconds, names 8080."""
    exc, took, events = _probe(docker_client, images["broken-port"])
    assert took < 8, took
    assert "it listens on 8080" in str(exc) and exc.data["result"].listening_ports == (8080,)
    waiting = [e for e in events if e["event"] == "probe_waiting"]
    assert waiting and waiting[-1]["listening"] == [8080]  # the display saw what the probe saw
    assert not docker_client.containers.list(all=True, filters={"label": "snail-trail.role=port-probe"})


def test_a_silent_app_waits_for_the_timeout_with_progress(docker_client, images) -> None:
    """Nothing listening and no exit: the probe waits its timeout, reporting every poll, then says so."""
    exc, took, events = _probe(docker_client, images["silent"], timeout=3)
    assert 3 <= took < 8, took
    assert "it listens on no TCP port at all" in str(exc)
    assert len([e for e in events if e["event"] == "probe_waiting"]) >= 3  # every second: never silent
