"""Measure a load-balancer data plane on 127.0.0.1: requests per second and the split by weight.

    python bench/lb/measure.py [--proxy asyncio|haproxy] [--requests 20000] [--concurrency 32] [--split 90,10]

Two upstream HTTP servers (one process, keep-alive, answering "blue" or "green") stand behind the proxy (its own
process); a load generator (this process, asyncio, keep-alive connections) sends `--requests` GETs and counts
which upstream answered. `asyncio` is the sandbox's own data plane (ecsbox/lb.py) with a fixed
snapshot: one listener, one rule forwarding to two target groups by weight. `haproxy` is Debian's HAProxy with
the same split as two weighted servers of one backend (roundrobin), the closest HAProxy gets to one ALB rule.
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

UPSTREAM = r"""
import asyncio, sys
async def serve(name, port):
    body = name.encode()
    resp = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    async def handle(r, w):
        try:
            while True:
                head = await r.readuntil(b"\r\n\r\n")
                w.write(resp)
                await w.drain()
        except Exception:
            pass
        finally:
            w.close()
    server = await asyncio.start_server(handle, "127.0.0.1", port)
    await server.serve_forever()
async def main():
    await asyncio.gather(serve("blue", int(sys.argv[1])), serve("green", int(sys.argv[2])))
asyncio.run(main())
"""

PLANE = r"""
import sys, time, signal
from ecsbox import lb
port, blue, green, wb, wg = (int(x) for x in sys.argv[1:6])
groups = {
    "arn:tg/blue": lb.TargetGroup("arn:tg/blue", "targetgroup/blue/1", ["app/bench/1"], [lb.Target("10.0.0.1", 5000, ("127.0.0.1", blue))], health_enabled=False),
    "arn:tg/green": lb.TargetGroup("arn:tg/green", "targetgroup/green/1", ["app/bench/1"], [lb.Target("10.0.0.2", 5000, ("127.0.0.1", green))], health_enabled=False),
}
action = {"Type": "forward", "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": "arn:tg/blue", "Weight": wb}, {"TargetGroupArn": "arn:tg/green", "Weight": wg}]}}
snap = lb.Snapshot({port: lb.Listener(port, "app/bench/1", [lb.Rule(float("inf"), (), action, "arn:rule/default")])}, groups)
plane = lb.DataPlane(snapshot=lambda: snap, refresh=1.0, metrics_period=3600)
plane.start()
print("ready", flush=True)
signal.sigwait({signal.SIGTERM, signal.SIGINT})
plane.stop()
"""

HAPROXY_CFG = """
global
    maxconn 4096
    stats socket {sock} mode 600 level admin
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    option http-keep-alive
frontend fe
    bind 127.0.0.1:{port}
    default_backend be
backend be
    balance roundrobin
    server blue 127.0.0.1:{blue} weight {wb}
    server green 127.0.0.1:{green} weight {wg}
"""


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 10.0) -> None:
    """Wait until something accepts on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


async def load(port: int, total: int, concurrency: int) -> dict[str, object]:
    """Send `total` GETs over `concurrency` keep-alive connections; count answers by body."""
    counts: dict[str, int] = {}
    errors = 0
    latencies: list[float] = []
    per_conn = [total // concurrency + (1 if i < total % concurrency else 0) for i in range(concurrency)]
    request = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"

    async def worker(n: int) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(n):
            t0 = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            body = (await reader.readexactly(length)).decode()
            latencies.append(time.perf_counter() - t0)
            if not head.startswith(b"HTTP/1.1 200"):
                errors += 1
            counts[body] = counts.get(body, 0) + 1
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in per_conn))
    seconds = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": total,
        "seconds": round(seconds, 3),
        "rps": round(total / seconds),
        "counts": counts,
        "errors": errors,
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 2),
    }


async def split_check(port: int, n: int = 1000) -> dict[str, int]:
    """The split over exactly `n` sequential requests on one connection."""
    return (await load(port, n, 1))["counts"]  # type: ignore[return-value]


def main() -> int:
    """Start upstreams and the proxy, measure, print JSON."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--proxy", choices=["asyncio", "haproxy"], default="asyncio")
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--split", default="90,10")
    args = parser.parse_args()
    wb, wg = (int(x) for x in args.split.split(","))
    blue, green, port = free_port(), free_port(), free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", UPSTREAM, str(blue), str(green)])]
    tmp = tempfile.mkdtemp(prefix="snail-lb-bench-")
    try:
        wait_port(blue)
        wait_port(green)
        if args.proxy == "asyncio":
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-c", PLANE, str(port), str(blue), str(green), str(wb), str(wg)],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        else:
            haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
            cfg = Path(tmp) / "haproxy.cfg"
            cfg.write_text(
                HAPROXY_CFG.format(sock=Path(tmp) / "admin.sock", port=port, blue=blue, green=green, wb=wb, wg=wg)
            )
            procs.append(subprocess.Popen([haproxy, "-f", str(cfg), "-db"], stdout=subprocess.DEVNULL))
        wait_port(port)
        asyncio.run(load(port, 500, 8))  # warm up
        cpu_before = cpu_seconds(procs[-1].pid)
        result = asyncio.run(load(port, args.requests, args.concurrency))
        proxy_cpu = cpu_seconds(procs[-1].pid) - cpu_before
        split = asyncio.run(split_check(port))
        green_share = split.get("green", 0) / max(1, sum(split.values())) * 100
        print(
            json.dumps(
                {
                    "proxy": args.proxy,
                    "weights": [wb, wg],
                    **result,
                    "split_1000": split,
                    "green_percent_1000": round(green_share, 2),
                    "proxy_cpu_ms_per_1k": round(proxy_cpu / args.requests * 1e6, 1),
                    "cpus": os.cpu_count(),
                }
            )
        )
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
