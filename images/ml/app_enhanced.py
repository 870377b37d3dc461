"""Phase enhanced: the ML service with structured JSON logs, Prometheus /metrics and an S3-backed model cache.

GET /health, GET /ml/status (reports model_source), POST /ml/predict, GET /metrics.
Dockerfile.enhanced ships it as /opt/app/app.py.
"""
import json
import logging
import os
import signal
import sys
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ml import FAILED
from model_store import CachedModelService

PHASE = os.environ.get("APP_PHASE", "enhanced")
VERSION = os.environ.get("APP_VERSION", "1.0.0")
PORT = int(os.environ.get("PORT", "5000"))
MAX_BODY = 1 << 20
ROUTES = {("GET", "/health"), ("GET", "/ml/status"), ("POST", "/ml/predict"), ("GET", "/metrics")}
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, event, phase, version and the record's `fields`."""

    def format(self, record):
        entry = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "event": record.getMessage(),
            "phase": PHASE,
            "version": VERSION,
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


_handler = logging.StreamHandler(sys.stdout)
_handler.setFormatter(JsonFormatter())
logging.basicConfig(level=logging.INFO, handlers=[_handler])
log = logging.getLogger(PHASE)


def event(name, level=logging.INFO, **fields):
    """Log a snake_case event with fields."""
    log.log(level, name, extra={"fields": fields})


class Metrics:
    """Request counts and a latency histogram per route, in Prometheus text exposition format."""

    def __init__(self):
        self._lock = threading.Lock()
        self.requests = {}  # (method, route, status) -> count
        self.latency = {}  # route -> [bucket counts..., +Inf count, sum]
        self.predictions = 0

    def observe(self, method, route, status, seconds, predictions=0):
        """Record one request."""
        with self._lock:
            key = (method, route, str(status))
            self.requests[key] = self.requests.get(key, 0) + 1
            h = self.latency.setdefault(route, [0] * (len(BUCKETS) + 1) + [0.0])
            for i, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    h[i] += 1
            h[len(BUCKETS)] += 1
            h[-1] += seconds
            self.predictions += predictions

    def render(self, ml_status, model_source):
        """The /metrics body."""
        out = [
            "# HELP snail_http_requests_total HTTP requests by method, route and status.",
            "# TYPE snail_http_requests_total counter",
        ]
        with self._lock:
            for (method, route, status), n in sorted(self.requests.items()):
                out.append(f'snail_http_requests_total{{method="{method}",route="{route}",status="{status}"}} {n}')
            out += [
                "# HELP snail_http_request_duration_seconds HTTP request latency by route.",
                "# TYPE snail_http_request_duration_seconds histogram",
            ]
            for route, h in sorted(self.latency.items()):
                for i, bound in enumerate(BUCKETS):
                    out.append(f'snail_http_request_duration_seconds_bucket{{route="{route}",le="{bound}"}} {h[i]}')
                out.append(f'snail_http_request_duration_seconds_bucket{{route="{route}",le="+Inf"}} {h[len(BUCKETS)]}')
                out.append(f'snail_http_request_duration_seconds_sum{{route="{route}"}} {h[-1]:.6f}')
                out.append(f'snail_http_request_duration_seconds_count{{route="{route}"}} {h[len(BUCKETS)]}')
            out += [
                "# HELP snail_ml_predictions_total Rows scored by /ml/predict.",
                "# TYPE snail_ml_predictions_total counter",
                f"snail_ml_predictions_total {self.predictions}",
            ]
        out += ["# HELP snail_ml_status 1 for the ML subsystem's current status.", "# TYPE snail_ml_status gauge"]
        for s in ("ready", "degraded", "failed"):
            out.append(f'snail_ml_status{{status="{s}",model_source="{model_source}"}} {int(s == ml_status)}')
        return "\n".join(out) + "\n"


class Handler(BaseHTTPRequestHandler):
    """Routes: /health, /ml/status, /ml/predict, /metrics; every request is timed, counted and logged."""

    server_version = f"snail-{PHASE}/{VERSION}"
    ml = None  # set in main()
    metrics = None

    def do_GET(self):
        """Health, ML status and metrics."""
        self._timed("GET")

    def do_POST(self):
        """Predictions."""
        self._timed("POST")

    def _timed(self, method):
        start = time.perf_counter()
        path = self.path.split("?", 1)[0]
        status, scored = self._route(method, path), 0
        if isinstance(status, tuple):
            status, scored = status
        elapsed = time.perf_counter() - start
        route = path if (method, path) in ROUTES else "other"
        self.metrics.observe(method, route, status, elapsed, scored)
        event("request", method=method, path=path, status=status, duration_ms=round(elapsed * 1000, 2),
              client=self.client_address[0])

    def _route(self, method, path):
        if (method, path) == ("GET", "/health"):
            return self._json(200, {"status": "ok", "phase": PHASE, "version": VERSION, "ml": self.ml.status})
        if (method, path) == ("GET", "/ml/status"):
            return self._json(503 if self.ml.status == FAILED else 200, self.ml.describe())
        if (method, path) == ("GET", "/metrics"):
            body = self.metrics.render(self.ml.status, self.ml.source).encode()
            return self._send(200, body, "text/plain; version=0.0.4; charset=utf-8")
        if (method, path) == ("POST", "/ml/predict"):
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                return self._json(413, {"error": "request body too large"})
            try:
                payload = json.loads(self.rfile.read(length) or b"null")
            except json.JSONDecodeError as e:
                return self._json(400, {"error": f"body is not JSON: {e}"})
            status, body = self.ml.predict(payload)
            return self._json(status, body), len(body.get("predictions", []))
        return self._json(404, {"error": "not found", "path": self.path})

    def _json(self, status, body):
        return self._send(status, json.dumps(body).encode(), "application/json")

    def _send(self, status, data, content_type):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        return status

    def log_request(self, code="-", size="-"):
        """Requests are logged once, as structured events, by _timed."""

    def log_message(self, fmt, *args):
        event("http_error", logging.WARNING, message=fmt % args, client=self.client_address[0])


def main():
    """Load the model (S3, cache or image), serve until SIGTERM/SIGINT, then finish and exit 0."""
    Handler.ml = CachedModelService()
    Handler.metrics = Metrics()
    event("ml_loaded", status=Handler.ml.status, engine=Handler.ml.engine, model_source=Handler.ml.source,
          reasons=Handler.ml.reasons)
    server = ThreadingHTTPServer(("0.0.0.0", PORT), Handler)
    server.daemon_threads = True

    def stop(signum, _frame):
        event("shutdown_requested", signal=signal.Signals(signum).name)
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    event("listening", port=PORT)
    server.serve_forever()
    server.server_close()
    event("stopped")


if __name__ == "__main__":
    main()
