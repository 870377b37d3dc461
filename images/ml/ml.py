"""The ML path: a logistic regression shipped in the image (model.json); numpy when present, pure Python otherwise.

Status is `ready` (model loaded, numpy), `degraded` (the API keeps serving: numpy missing -> pure-Python
predictions; ML disabled or the model failed to load -> no predictions) or `failed` (forced with
ML_FORCE_FAIL=1, the broken release of the demo). `python3 ml.py --check model.json` validates a model file
against its own examples (the optimized image's builder stage runs it).
"""
import json
import math
import os
import sys

READY, DEGRADED, FAILED = "ready", "degraded", "failed"


class ModelError(Exception):
    """The model file is missing, malformed or inconsistent."""


class Model:
    """Standardize, dot, sigmoid: predictions from the weights in model.json."""

    def __init__(self, spec):
        try:
            self.name = spec.get("name", "model")
            self.version = str(spec.get("version", "?"))
            self.features = list(spec["features"])
            self.mean = [float(v) for v in spec["mean"]]
            self.scale = [float(v) or 1.0 for v in spec["scale"]]
            self.weights = [float(v) for v in spec["weights"]]
            self.bias = float(spec["bias"])
            self.threshold = float(spec.get("threshold", 0.5))
            self.examples = spec.get("examples", [])
        except (KeyError, TypeError, ValueError) as e:
            raise ModelError(f"malformed model: {e!r}") from e
        n = len(self.features)
        if not n or any(len(v) != n for v in (self.mean, self.scale, self.weights)):
            raise ModelError(f"model vectors do not match its {n} features")

    @classmethod
    def load(cls, path):
        """Read and validate a model file."""
        try:
            with open(path, encoding="utf-8") as f:
                return cls(json.load(f))
        except OSError as e:
            raise ModelError(f"cannot read {path}: {e.strerror}") from e
        except json.JSONDecodeError as e:
            raise ModelError(f"{path} is not JSON: {e}") from e

    def rows(self, payload):
        """Turn {"features": {...}|[...]} or {"instances": [...]} into rows of floats, in feature order."""
        if not isinstance(payload, dict) or not ("features" in payload or "instances" in payload):
            raise ValueError('expected {"features": {...}} or {"instances": [...]}')
        items = payload["instances"] if "instances" in payload else [payload["features"]]
        if not isinstance(items, list) or not items:
            raise ValueError("instances must be a non-empty list")
        rows = []
        for item in items:
            if isinstance(item, dict):
                missing = [f for f in self.features if f not in item]
                if missing:
                    raise ValueError(f"missing features: {', '.join(missing)}")
                item = [item[f] for f in self.features]
            if not isinstance(item, list) or len(item) != len(self.features):
                raise ValueError(f"each instance needs {len(self.features)} values: {', '.join(self.features)}")
            try:
                rows.append([float(v) for v in item])
            except (TypeError, ValueError):
                raise ValueError("feature values must be numbers") from None
        return rows

    def predict_numpy(self, rows):
        """Probabilities computed with numpy."""
        import numpy as np

        z = (np.asarray(rows, dtype=float) - np.asarray(self.mean)) / np.asarray(self.scale)
        return (1.0 / (1.0 + np.exp(-(z @ np.asarray(self.weights) + self.bias)))).tolist()

    def predict_python(self, rows):
        """The same probabilities without numpy."""
        out = []
        for row in rows:
            t = self.bias + sum(w * (x - m) / s for x, m, s, w in zip(row, self.mean, self.scale, self.weights))
            # Split by sign so math.exp never overflows on extreme inputs.
            out.append(1.0 / (1.0 + math.exp(-t)) if t >= 0 else math.exp(t) / (1.0 + math.exp(t)))
        return out

    def check(self, predict):
        """Raise ModelError unless the model reproduces its own examples (to 3 decimals)."""
        for ex in self.examples:
            got = predict([ex["features"]])[0]
            if abs(got - ex["probability"]) > 1e-3:
                raise ModelError(f"example {ex['features']} gives {got:.4f}, expected {ex['probability']}")


class MLService:
    """What /ml/status reports and /ml/predict does, decided once at start-up."""

    def __init__(self, env=None, model_path=None):
        env = os.environ if env is None else env
        self.model_path = model_path or env.get("MODEL_PATH") or os.path.join(os.path.dirname(__file__), "model.json")
        self.model = None
        self.engine = None
        self.source = f"image:{self.model_path}"
        self.reasons = []
        if env.get("ML_FORCE_FAIL") == "1":
            self.status = FAILED
            self.reasons.append("ML_FORCE_FAIL=1: ML subsystem forced to fail")
            return
        if env.get("ML_DISABLE") == "1":
            self.status = DEGRADED
            self.reasons.append("ML_DISABLE=1: predictions switched off, API serving")
            return
        self.status = READY
        try:
            import numpy  # noqa: F401

            self.engine = "numpy"
        except ImportError:
            self.engine = "python"
            self.status = DEGRADED
            self.reasons.append("numpy not installed: predictions use the pure-Python fallback")
        try:
            self.model = self.load_model()
            self.model.check(self._predictor())
        except ModelError as e:
            self.model = None
            self.status = DEGRADED
            self.reasons.append(f"model failed to load: {e}")

    def load_model(self):
        """Load the model bundled in the image (the enhanced image overrides where it comes from)."""
        return Model.load(self.model_path)

    def _predictor(self):
        return self.model.predict_numpy if self.engine == "numpy" else self.model.predict_python

    def describe(self):
        """The /ml/status body."""
        body = {"status": self.status, "engine": self.engine, "model_source": self.source, "reasons": self.reasons}
        if self.model:
            body["model"] = {"name": self.model.name, "version": self.model.version, "features": self.model.features}
        return body

    def predict(self, payload):
        """(http status, body) for a /ml/predict request."""
        if self.model is None:
            return 503, {"error": "predictions unavailable", "status": self.status, "reasons": self.reasons}
        try:
            rows = self.model.rows(payload)
        except ValueError as e:
            return 400, {"error": str(e)}
        probs = self._predictor()(rows)
        return 200, {
            "model": f"{self.model.name}/{self.model.version}",
            "engine": self.engine,
            "predictions": [
                {"probability": round(p, 6), "unhealthy": p >= self.model.threshold} for p in probs
            ],
        }


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        m = Model.load(sys.argv[2])
        m.check(m.predict_python)
        try:
            m.check(m.predict_numpy)
        except ImportError:
            pass
        print(f"model {m.name}/{m.version} ok: {len(m.features)} features, {len(m.examples)} examples reproduced")
    else:
        sys.exit("usage: ml.py --check MODEL.json")
