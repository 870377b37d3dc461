"""A delaying HTTP proxy in front of moto's server: the network between one runner and AWS, made slow on purpose.

Each request is held `delay(operation)` seconds before it is forwarded (an operation is its X-Amz-Target, e.g.
"DescribeServices", or its Action= for query APIs). A request whose client hung up while it was held is dropped,
never forwarded: that is what a cut-off TCP connection does (the bytes that did not get through before the client
closed its socket never arrive). `release()` ends every hold at once (test teardown)."""

from __future__ import annotations

import select
import socket
import threading
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.error import HTTPError


def operation_of(headers: object, body: bytes) -> str:
    """The AWS operation a request calls: X-Amz-Target's last part, or the query API's Action."""
    target = getattr(headers, "get", lambda _k, _d=None: None)("X-Amz-Target") or ""
    if target:
        return str(target).rsplit(".", 1)[-1]
    for part in body.decode(errors="replace").split("&"):
        if part.startswith("Action="):
            return part.split("=", 1)[1]
    return ""


def _hung_up(sock: socket.socket) -> bool:
    """True when the client closed its end (readable, and a peek reads nothing)."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


class SlowProxy:
    """Forwards to `upstream`; `delay` says how long to hold each operation (0: not held)."""

    def __init__(self, upstream: str, delay: Callable[[str], float] | None = None) -> None:
        self.upstream = upstream.rstrip("/")
        self.delay = delay or (lambda _op: 0.0)
        self.released = threading.Event()
        self.forwarded: list[str] = []  # operations that reached the upstream, in order
        self.dropped: list[str] = []  # operations whose client hung up while they were held
        self.held: list[str] = []  # operations that were held (at the start of the hold)
        self.holding = threading.Event()  # set when a hold starts
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                """Hold, then forward (or drop, if the client is gone)."""
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                op = operation_of(self.headers, body)
                seconds = proxy.delay(op)
                if seconds > 0:
                    proxy.held.append(op)
                    proxy.holding.set()
                    end = threading.Event()
                    waited = 0.0
                    while waited < seconds and not proxy.released.is_set():  # look at the client every 50 ms
                        end.wait(min(0.05, seconds - waited))
                        waited += 0.05
                        if _hung_up(self.connection):
                            proxy.dropped.append(op)
                            self.close_connection = True
                            return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                req = urllib.request.Request(f"{proxy.upstream}{self.path}", data=body, headers=headers, method="POST")
                try:
                    with urllib.request.urlopen(req, timeout=60) as resp:  # noqa: S310 - the test's moto server
                        status, out, rheaders = resp.status, resp.read(), resp.headers
                except HTTPError as err:
                    status, out, rheaders = err.code, err.read(), err.headers
                proxy.forwarded.append(op)
                try:
                    self.send_response(status)
                    for k, v in rheaders.items():
                        if k.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date"):
                            self.send_header(k, v)
                    self.send_header("Content-Length", str(len(out)))
                    self.end_headers()
                    self.wfile.write(out)
                except OSError:  # the client gave up after the call took effect: a late write, as on a real network
                    self.close_connection = True

            def log_message(self, *args: object) -> None:
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="slow-proxy", daemon=True)

    def __enter__(self) -> SlowProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def release(self) -> None:
        """End every hold, and stop serving."""
        self.released.set()
        self.server.shutdown()
        self.server.server_close()
