"""Benchmarks: CLI cold start, a two-phase run and a no-op re-run against moto's server (wall time, AWS API
calls, peak memory), both NORMAL runs (doctor's preflight on: the first checks everything, the re-run finds its
pass cached). Prints a Markdown table; figures are copied into bench/README.md. Not a test.
`make bench-compare` (bench/compare/run.py) is the side-by-side with ecs-deploy on a real sandbox."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")


def cold_start(n: int = 10) -> dict:
    """`snail --help` in a fresh interpreter, n times: median and worst wall time."""
    times = []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "orchestrator", "--help"], capture_output=True, check=True)
        times.append(time.perf_counter() - t)
    heavy = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, orchestrator.cli.main; print(sorted(m for m in ('boto3','botocore','docker','moto') if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return {"median_s": statistics.median(times), "max_s": max(times), "heavy_imports": heavy}


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        body = b'{"status": "ok"}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a: object) -> None:
        pass


PIPELINE = """\
version: 1
service:
  cluster: shine
  name: shine-api-gateway
  region: us-east-1
  container: api
  port: 5000
  task_definition: phases/taskdef.json
  network: {{subnets: [{subnets}], security_groups: [{sg}], assign_public_ip: true}}
registry:
  ecr: shine-api-gateway
defaults:
  gates:
    - {{type: ecs-rollout, timeout: 1m, poll: 0.2s}}
    - {{type: http, path: /health, expect: {{status: 200}}, retries: {{attempts: 5, wait: 0.2s}}}}
  bake: 0s
phases: [health-only, hybrid-ml]
"""


def pipeline_runs() -> dict:
    """A two-phase `snail run` and a no-op re-run, each a separate process and a NORMAL run (preflight on),
    against moto's server + the agent, in an environment doctor passes (tests/doctor_env.py's good_env)."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    from ecsbox.agent import EcsAgent
    from ecsbox.launchers import InstantLauncher
    from orchestrator.aws.session import AwsContext
    from tests.doctor_env import MANIFEST, good_env

    health = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=health.serve_forever, daemon=True).start()
    srv = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    srv.start()
    host, port = srv.get_host_and_port()
    url = f"http://{host}:{port}"
    calls: Counter = Counter()
    from moto.core import responses as moto_responses

    orig = moto_responses.BaseResponse._dispatch

    def counting(self, request, full_url, headers):  # type: ignore[no-untyped-def]
        if threading.current_thread().name != "sandbox-agent":
            target = headers.get("X-Amz-Target") or headers.get("x-amz-target") or ""
            action = target.split(".")[-1]
            if not action:  # query protocol (EC2, IAM): the action is a form field
                form = getattr(request, "form", None) or {}
                action = form.get("Action") or getattr(request, "args", {}).get("Action") or "other"
            calls[action] += 1
        return orig(self, request, full_url, headers)

    moto_responses.BaseResponse._dispatch = counting  # type: ignore[method-assign]
    agent = EcsAgent(
        InstantLauncher(host_port_for=lambda img: health.server_address[1]),
        account_id="123456789012",
        region="us-east-1",
        interval=0.1,
        steady_after=0.2,
    )
    agent.start()
    out = {}
    try:
        with tempfile.TemporaryDirectory() as d:
            root = Path(d)
            ctx = AwsContext(
                region="us-east-1",
                endpoint_url=url,
                credentials={"aws_access_key_id": "testing", "aws_secret_access_key": "testing"},
            )
            env_ids = good_env(ctx, root)
            refs = {}
            for phase, c in (("health-only", "b"), ("hybrid-ml", "c")):
                pushed = ctx.client("ecr").put_image(
                    repositoryName="shine-api-gateway", imageManifest=MANIFEST.replace("a" * 64, c * 64), imageTag=phase
                )
                refs[phase] = f"{env_ids.repository_uri}@{pushed['image']['imageId']['imageDigest']}"
                (root / "phases" / f"{phase}.yaml").write_text(f'name: {phase}\nimage: {{ref: "{refs[phase]}"}}\n')
            (root / "pipeline.yaml").write_text(
                PIPELINE.format(subnets=", ".join(env_ids.subnets), sg=env_ids.security_group)
            )
            env = {**os.environ, "SNAIL_ENDPOINT_URL": url, "SNAIL_FILE": str(root / "pipeline.yaml")}
            for name in ("two_phase_run", "noop_rerun"):
                calls.clear()
                rss_file = root / f"{name}.rss"
                t = time.perf_counter()
                r = subprocess.run(
                    ["/usr/bin/time", "-f", "%M", "-o", str(rss_file), sys.executable, "-m", "orchestrator", "run"],
                    env=env,
                    capture_output=True,
                    text=True,
                    cwd=root,
                )
                wall = time.perf_counter() - t
                assert r.returncode == 0, r.stdout + r.stderr
                out[name] = {
                    "wall_s": wall,
                    "aws_calls": sum(calls.values()),
                    "by_operation": dict(calls.most_common()),
                    "peak_rss_mb": int(rss_file.read_text().split()[-1]) / 1024,
                    "stdout": r.stdout.strip().splitlines()[0],
                }
    finally:
        agent.stop(stop_tasks=True)
        srv.stop()
        health.shutdown()
        moto_responses.BaseResponse._dispatch = orig  # type: ignore[method-assign]
    return out


def main() -> None:
    """Run every benchmark and print the table."""
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))  # the agent's chatter
    cs = cold_start()
    runs = pipeline_runs()
    print("| benchmark | figure |\n|---|---|")
    print(
        f"| `snail --help` cold start (median of 10 / worst) | {cs['median_s'] * 1000:.0f} ms / {cs['max_s'] * 1000:.0f} ms |"
    )
    print(f"| heavy modules imported by the CLI entry point | {cs['heavy_imports']} |")
    for name, r in runs.items():
        print(f"| {name}: wall time | {r['wall_s']:.2f} s |")
        print(f"| {name}: AWS API calls | {r['aws_calls']} |")
        print(f"| {name}: peak RSS of the snail process | {r['peak_rss_mb']:.0f} MB |")
    print()
    print(json.dumps({k: v["by_operation"] for k, v in runs.items()}, indent=1))


if __name__ == "__main__":
    main()
