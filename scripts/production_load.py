"""Steady GET traffic on a URL until a stop file appears; prints how many requests failed (for `make demo`).

Usage: python scripts/production_load.py URL STOP_FILE [RATE_PER_SECOND]
A request fails when it gets no answer, or a status of 500 or more (what a user of production would see)."""

from __future__ import annotations

import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


def main() -> int:
    """Send RATE requests per second to URL until STOP_FILE exists; print the totals."""
    url, stop = sys.argv[1], Path(sys.argv[2])
    rate = float(sys.argv[3]) if len(sys.argv) > 3 else 20.0
    sent = failed = 0
    first_failure = ""
    next_at = time.monotonic()
    while not stop.exists():
        sent += 1
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                r.read()
        except urllib.error.HTTPError as exc:
            if exc.code >= 500:
                failed += 1
                first_failure = first_failure or f"HTTP {exc.code}"
        except OSError as exc:
            failed += 1
            first_failure = first_failure or str(exc)
        next_at += 1.0 / rate
        time.sleep(max(0.0, next_at - time.monotonic()))
    detail = f" (first: {first_failure})" if first_failure else ""
    print(f"production requests during the release: {sent}, failed: {failed}{detail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
