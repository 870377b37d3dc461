"""Phases hybrid-ml and optimized: the API plus an ML path that degrades instead of taking the service down.

GET /health (200 while the process serves), GET /ml/status (200 ready|degraded, 503 failed),
POST /ml/predict (the release-risk model in model.json).
"""
import json
import logging
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ml import FAILED, MLService

PHASE = os.environ.get("APP_PHASE", "hybrid-ml")
VERSION = os.environ.get("APP_VERSION", "1.0.0")
PORT = int(os.environ.get("PORT", "5000"))
MAX_BODY = 1 << 20

logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
log = logging.getLogger(PHASE)


class Handler(BaseHTTPRequestHandler):
    """Routes: /health, /ml/status, /ml/predict."""

    server_version = f"snail-{PHASE}/{VERSION}"
    ml = None  # set in main()

    def do_GET(self):
        """Health and ML status."""
        path = self.path.split("?", 1)[0]
        if path == "/health":
            self._json(200, {"status": "ok", "phase": PHASE, "version": VERSION, "ml": self.ml.status})
        elif path == "/ml/status":
            self._json(503 if self.ml.status == FAILED else 200, self.ml.describe())
        else:
            self._json(404, {"error": "not found", "path": self.path})

    def do_POST(self):
        """Predictions."""
        if self.path.split("?", 1)[0] != "/ml/predict":
            return self._json(404, {"error": "not found", "path": self.path})
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            return self._json(413, {"error": "request body too large"})
        try:
            payload = json.loads(self.rfile.read(length) or b"null")
        except json.JSONDecodeError as e:
            return self._json(400, {"error": f"body is not JSON: {e}"})
        self._json(*self.ml.predict(payload))

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
    """Load the model, serve until SIGTERM/SIGINT, then stop accepting, finish and exit 0."""
    Handler.ml = MLService()
    log.info("ml status=%s engine=%s source=%s %s", Handler.ml.status, Handler.ml.engine, Handler.ml.source,
             "; ".join(Handler.ml.reasons))
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
