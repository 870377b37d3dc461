"""Deliberately broken health app: listens on 8080 whatever the service port is (the field log's incident)."""
import json
import logging
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PHASE = "broken-port"
VERSION = os.environ.get("APP_VERSION", "1.0.0")
# The bug being reproduced: a hard-coded port that ignores $PORT and the service port (5000).
PORT = 8080

logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
log = logging.getLogger(PHASE)


class Handler(BaseHTTPRequestHandler):
    """Routes: /health only."""

    server_version = f"snail-{PHASE}/{VERSION}"

    def do_GET(self):
        """Answer /health; everything else is 404."""
        if self.path.split("?", 1)[0] == "/health":
            self._json(200, {"status": "ok", "phase": PHASE, "version": VERSION})
        else:
            self._json(404, {"error": "not found", "path": self.path})

    def _json(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt, *args):
        log.info("%s %s", self.address_string(), fmt % args)


def main():
    """Serve until SIGTERM/SIGINT, then stop accepting, finish and exit 0 (ECS stops tasks with SIGTERM)."""
    server = ThreadingHTTPServer(("0.0.0.0", PORT), Handler)
    server.daemon_threads = True

    def stop(signum, _frame):
        log.info("received %s, shutting down", signal.Signals(signum).name)
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("%s %s listening on 0.0.0.0:%d", PHASE, VERSION, PORT)
    server.serve_forever()
    server.server_close()
    log.info("stopped")


if __name__ == "__main__":
    main()
