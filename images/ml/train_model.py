"""Train the small model shipped in the ML images and write model.json (run by hand; not part of the image).

A logistic regression that estimates the probability that a release is unhealthy from four signals a
release engineer watches. The training data is synthetic but deterministic (seeded), so the weights in
model.json are reproducible: `python3 train_model.py > model.json`.
"""
import json

import numpy as np

FEATURES = ["latency_p95_ms", "error_rate_pct", "cpu_pct", "memory_pct"]


def make_data(n=2000, seed=11):
    """Synthetic releases: unhealthy ones have slow tails, errors and saturated resources."""
    rng = np.random.default_rng(seed)
    latency = rng.gamma(4.0, 60.0, n)
    errors = rng.gamma(1.2, 1.0, n)
    cpu = np.clip(rng.normal(55, 20, n), 1, 100)
    memory = np.clip(rng.normal(60, 18, n), 1, 100)
    logit = 0.012 * (latency - 300) + 0.9 * (errors - 2.0) + 0.04 * (cpu - 80) + 0.05 * (memory - 85)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    return np.column_stack([latency, errors, cpu, memory]), y


def fit(x, y, steps=3000, lr=0.5):
    """Batch gradient descent on standardized features."""
    mean, scale = x.mean(axis=0), x.std(axis=0)
    z = (x - mean) / scale
    w, b = np.zeros(z.shape[1]), 0.0
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(z @ w + b)))
        w -= lr * z.T @ (p - y) / len(y)
        b -= lr * float(np.mean(p - y))
    accuracy = float(np.mean(((1 / (1 + np.exp(-(z @ w + b)))) > 0.5) == y))
    return mean, scale, w, b, accuracy


def main():
    """Print model.json: features, standardization, weights, bias, accuracy and self-test examples."""
    x, y = make_data()
    mean, scale, w, b, accuracy = fit(x, y)
    examples = [[120.0, 0.2, 35.0, 40.0], [900.0, 6.0, 95.0, 97.0], [310.0, 2.1, 70.0, 75.0]]
    z = (np.array(examples) - mean) / scale
    probs = 1 / (1 + np.exp(-(z @ w + b)))
    model = {
        "name": "release-risk",
        "version": "1",
        "kind": "logistic_regression",
        "features": FEATURES,
        "mean": [round(v, 6) for v in mean.tolist()],
        "scale": [round(v, 6) for v in scale.tolist()],
        "weights": [round(v, 6) for v in w.tolist()],
        "bias": round(b, 6),
        "threshold": 0.5,
        "training": {"rows": len(y), "accuracy": round(accuracy, 4), "seed": 11},
        "examples": [{"features": e, "probability": round(float(p), 4)} for e, p in zip(examples, probs)],
    }
    print(json.dumps(model, indent=2))


if __name__ == "__main__":
    main()
