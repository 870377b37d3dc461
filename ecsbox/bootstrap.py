"""The service's first revision in the sandbox: a tiny HTTP server that answers 200 on /health and /, so the first
phase starts from a healthy service as it would on AWS.

It is an image of its own (`ecsbox-bootstrap:<hash>`, built locally FROM a base image with python3), so the
revision that runs it is an ordinary one: no inline `command`, no environment, no tag. A client composing its next
revision over it inherits nothing the placeholder needed, and needs no way to tell it from any revision a service
ran before that client's first release.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from typing import Any

import structlog

from ecsbox.errors import DockerUnavailable

log = structlog.get_logger(__name__)

REPOSITORY = "ecsbox-bootstrap"

# Exits on SIGTERM: a Python PID 1 ignores it otherwise, and every drain would wait for SIGKILL.
SERVER = """\
import http.server, json, os, signal, sys
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ok = self.path.split('?')[0] in ('/', '/health')
        body = json.dumps({'status': 'healthy' if ok else 'not found', 'phase': 'bootstrap'}).encode()
        self.send_response(200 if ok else 404)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(('0.0.0.0', int(os.environ.get('PORT', '5000'))), H).serve_forever()
"""


def dockerfile(base: str, port: int) -> str:
    """The placeholder's Dockerfile: the server FROM `base`, listening on `port`."""
    return (
        f"FROM {base}\nCOPY server.py /ecsbox/bootstrap.py\nENV PORT={int(port)}\nEXPOSE {int(port)}\n"
        'CMD ["python3", "/ecsbox/bootstrap.py"]\n'
    )


def image_ref(base: str, port: int) -> str:
    """The placeholder image's name: the same base, port and server give the same name (built once)."""
    digest = hashlib.sha256(f"{dockerfile(base, port)}\0{SERVER}".encode()).hexdigest()[:12]
    return f"{REPOSITORY}:{digest}"


def ensure_image(client: Any, base: str, port: int) -> str:
    """The placeholder image, built if it is not here yet; DockerUnavailable saying what to do when it cannot be
    (its base image is neither here nor pullable)."""
    import docker.errors

    ref = image_ref(base, port)
    try:
        client.images.get(ref)
        return ref
    except docker.errors.ImageNotFound:
        pass
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        for name, text in (("Dockerfile", dockerfile(base, port)), ("server.py", SERVER)):
            data = text.encode()
            member = tarfile.TarInfo(name)
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    context.seek(0)
    try:
        client.images.build(fileobj=context, custom_context=True, tag=ref, rm=True, labels={REPOSITORY: "1"})
    except (docker.errors.BuildError, docker.errors.APIError) as exc:
        raise DockerUnavailable(
            f"the sandbox's first revision runs a small server built FROM {base}, which is not here and could "
            f"not be pulled ({str(exc)[:300]}). Set SNAIL_BASE_IMAGE to a local image that has python3 "
            "(`docker images` lists them), or make the base pullable.",
            base_image=base,
        ) from None
    log.info("sandbox_bootstrap_image_built", image=ref, base=base)
    return ref
