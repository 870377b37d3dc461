"""A request-counting HTTP proxy in front of an AWS endpoint (the sandbox's moto): every request a tool sends is
forwarded unchanged and counted by AWS service and operation (X-Amz-Target for JSON APIs, `Action=` for query
APIs such as EC2 and IAM, the method and path for REST APIs). Timestamps of chosen operations are kept so the
harness can say when a tool called UpdateService."""

from __future__ import annotations

import http.client
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


@dataclass
class Call:
    """One AWS API request as the proxy saw it."""

    service: str
    operation: str
    at: float  # time.monotonic() when the request arrived
    status: int = 0


@dataclass
class Recorder:
    """The calls seen since the last reset (thread-safe)."""

    calls: list[Call] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, call: Call) -> None:
        """Record one call."""
        with self.lock:
            self.calls.append(call)

    def reset(self) -> None:
        """Forget every call."""
        with self.lock:
            self.calls.clear()

    def snapshot(self) -> list[Call]:
        """A copy of the calls so far."""
        with self.lock:
            return list(self.calls)

    def by_operation(self) -> Counter[str]:
        """Calls counted as `service:Operation`."""
        return Counter(f"{c.service}:{c.operation}" for c in self.snapshot())

    def first(self, operation: str) -> float | None:
        """When `operation` (e.g. UpdateService) was first called, or None."""
        return next((c.at for c in self.snapshot() if c.operation == operation), None)


def operation_of(method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[str, str]:
    """(service, operation) of one AWS request."""
    auth = headers.get("authorization", "")
    m = _SCOPE.search(auth)
    service = m.group(1) if m else "?"
    target = headers.get("x-amz-target")
    if target:
        return service, target.rsplit(".", 1)[-1]
    query = urlsplit(path).query
    for source in (body.decode("utf-8", "replace") if body else "", query):
        action = parse_qs(source).get("Action")
        if action:
            return service, action[0]
    return service, f"{method} {urlsplit(path).path}"


def start_proxy(
    upstream: str, recorder: Recorder, host: str = "127.0.0.1", port: int = 0
) -> tuple[ThreadingHTTPServer, str]:
    """Serve a counting proxy to `upstream` (http://host:port) on loopback (`port` 0: a free one); (server, url)."""
    up = urlsplit(upstream)
    up_host, up_port = up.hostname or "127.0.0.1", up.port or 80

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            service, op = operation_of(self.command, self.path, headers, body)
            call = Call(service, op, time.monotonic())
            conn = http.client.HTTPConnection(up_host, up_port, timeout=60)
            try:
                fwd = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                conn.request(self.command, self.path, body=body, headers=fwd)
                resp = conn.getresponse()
                data = resp.read()
                call.status = resp.status
                self.send_response(resp.status, resp.reason)
                for k, v in resp.getheaders():
                    if k.lower() not in _HOP_BY_HOP and k.lower() != "content-length":
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            finally:
                conn.close()
                recorder.add(call)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _forward  # noqa: N815

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="counting-proxy", daemon=True).start()
    return server, f"http://{host}:{server.server_address[1]}"
