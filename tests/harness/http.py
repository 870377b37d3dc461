"""Real HTTP servers on 127.0.0.1 in a daemon thread."""

from __future__ import annotations

import threading
from socketserver import BaseServer

# serve_forever() looks for shutdown() this often; its default (0.5 s) made every server's teardown cost 0.5 s
SHUTDOWN_POLL = 0.05


def serve_in_thread(server: BaseServer) -> BaseServer:
    """Serve `server` in a daemon thread until `server.shutdown()`; returns it."""
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": SHUTDOWN_POLL}, daemon=True).start()
    return server
