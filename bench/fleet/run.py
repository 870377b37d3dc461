"""The fleet benchmark (`make bench-fleet`): 50 targets in 3 waves against moto's server with instant tasks.

Measures, each `snail fleet run` a separate process (as a user runs it; `--skip-preflight`, bake 0 unless said):
- a good fleet run: wall time, AWS API calls (total and per target), peak RSS of the snail process;
- a no-op fleet run (the release live and good everywhere): calls and wall time (the issue's target: <= 50);
- stopping the line: a broken release fails in the last wave while its 47 siblings bake; the time from the
  failing gate verdict to "every in-flight target told to go back" (the issue's target: within 2 s), and to
  "every target back on its good revision".
Prints a Markdown table and writes bench/fleet/results.json; figures are copied into bench/README.md. Not a test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")

N = 50
REGIONS = ("us-east-1", "eu-west-1")
SERVICE = "shine-api-gateway"
# BENCH_FLEET_TEMPLATE=0: no task-definition template (each phase composed over the recorded base revision: a
# no-op plan reads two more revisions per target).
TEMPLATE = os.environ.get("BENCH_FLEET_TEMPLATE", "1") != "0"
TASKDEF = {
    "family": "shine-api-gateway",
    "networkMode": "bridge",
    "containerDefinitions": [
        {
            "name": "api",
            "image": "PLACEHOLDER",
            "memory": 256,
            "essential": True,
            "portMappings": [{"containerPort": 5000}],
        }
    ],
}
PIPELINE = """\
version: 1
service: {{cluster: shine, name: shine-api-gateway, region: us-east-1, container: api, port: 5000{template}}}
registry: {{url: 127.0.0.1:5055/shine-api-gateway}}
defaults:
  gates:
    - {{type: ecs-rollout, timeout: 1m, poll: 0.2s}}
    - {{type: http, path: /health, expect: {{status: 200}}, retries: {{attempts: 2, wait: 0.2s}}}}
  bake: {bake}
phases: [release]
"""


def image(tag: str) -> str:
    """A pinned image whose digest is made from one character."""
    return f"127.0.0.1:5055/shine-api-gateway@sha256:{tag * 64}"


class _Answer(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:  # noqa: N802
        body = b'{"status": "ok"}'
        self.send_response(self.status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a: object) -> None:
        pass


class _Broken(_Answer):
    status = 500


def _serve(handler: type) -> ThreadingHTTPServer:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def _targets() -> list[tuple[str, str, str]]:
    """(name, region, cluster) of every target: half in each region."""
    return [(f"t{i:02d}", REGIONS[i % 2], f"shine-{i:02d}") for i in range(N)]


def _fleet_yaml(broken: str | None = None) -> str:
    lines = ["version: 1", "pipeline: pipeline.yaml", "targets:"]
    for name, region, cluster in _targets():
        own = ", pipeline: broken/pipeline.yaml" if name == broken else ""
        lines.append(f"  {name}: {{region: {region}, cluster: {cluster}{own}}}")
    rest = ", ".join(n for n, _, _ in _targets()[2:])
    lines += [
        "waves:",
        "  - {name: staging, targets: [t00]}",
        "  - {name: one-box, targets: [t01]}",
        f"  - {{name: rest, targets: [{rest}], max_parallel: {N - 2}}}",
        "",
    ]
    return "\n".join(lines)


def _write_pipeline(folder: Path, tag: str, bake: str = "0s") -> None:
    (folder / "phases").mkdir(parents=True, exist_ok=True)
    template = ", task_definition: phases/taskdef.json" if TEMPLATE else ""
    (folder / "phases" / "taskdef.json").write_text(json.dumps(TASKDEF))
    (folder / "pipeline.yaml").write_text(PIPELINE.format(bake=bake, template=template))
    (folder / "phases" / "release.yaml").write_text(f'name: release\nimage: {{ref: "{image(tag)}"}}\n')


def _fleet_run(root: Path, env: dict[str, str], calls: Counter, name: str) -> dict[str, Any]:
    """One `snail fleet run` process: exit code, wall time, AWS calls, peak RSS."""
    calls.clear()
    rss = root / f"{name}.rss"
    t = time.perf_counter()
    r = subprocess.run(
        ["/usr/bin/time", "-f", "%M", "-o", str(rss), sys.executable, "-m", "orchestrator", "-q"]
        + ["fleet", "run", "--skip-preflight"],
        env=env,
        capture_output=True,
        text=True,
        cwd=root,
    )
    wall = time.perf_counter() - t
    return {
        "exit_code": r.returncode,
        "wall_s": round(wall, 2),
        "aws_calls": sum(calls.values()),
        "aws_calls_per_target": round(sum(calls.values()) / N, 1),
        "by_operation": dict(calls.most_common()),
        "peak_rss_mb": round(int(rss.read_text().split()[-1]) / 1024),
        "stderr_tail": r.stderr.strip().splitlines()[-3:],
    }


def main() -> None:
    """Set up moto + the agent, run the three fleet runs, print the table."""
    import logging

    import boto3
    import structlog
    from moto.core import responses as moto_responses
    from moto.server import ThreadedMotoServer

    from ecsbox.agent import EcsAgent
    from ecsbox.launchers import InstantLauncher

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    good, bad = _serve(_Answer), _serve(_Broken)
    ports = {image("0"): good.server_address[1], image("a"): good.server_address[1]}
    ports |= {image("b"): good.server_address[1], image("e"): bad.server_address[1]}
    srv = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    srv.start()
    host, port = srv.get_host_and_port()
    url = f"http://{host}:{port}"
    calls: Counter = Counter()
    orig = moto_responses.BaseResponse._dispatch

    def counting(self: Any, request: Any, full_url: str, headers: Any) -> Any:
        target = headers.get("X-Amz-Target") or headers.get("x-amz-target") or ""
        calls[target.split(".")[-1] or "other"] += 1
        return orig(self, request, full_url, headers)

    moto_responses.BaseResponse._dispatch = counting  # type: ignore[method-assign]
    agent = EcsAgent(InstantLauncher(host_port_for=ports.get), account_id="123456789012", region=None)
    agent.interval, agent.steady_after = 0.1, 0.2
    agent.start()
    out: dict[str, Any] = {"targets": N, "waves": 3, "regions": list(REGIONS), "template": TEMPLATE}
    try:
        with tempfile.TemporaryDirectory() as d:
            root = Path(d) / "fleet"
            root.mkdir()
            for _name, region, cluster in _targets():
                ecs = boto3.client("ecs", region_name=region, endpoint_url=url)
                ecs.create_cluster(clusterName=cluster)
                td = ecs.register_task_definition(
                    family=SERVICE,
                    networkMode="bridge",
                    containerDefinitions=[
                        {"name": "api", "image": image("0"), "memory": 256, "portMappings": [{"containerPort": 5000}]}
                    ],
                )["taskDefinition"]["taskDefinitionArn"]
                ecs.create_service(cluster=cluster, serviceName=SERVICE, taskDefinition=td, desiredCount=1)
            env = {**os.environ, "SNAIL_ENDPOINT_URL": url, "SNAIL_FLEET_POLL": "0.2", "PYTHONPATH": str(ROOT)}
            env.pop("SNAIL_FILE", None)
            _write_pipeline(root, "a")
            (root / "fleet.yaml").write_text(_fleet_yaml())
            out["good_fleet_run"] = _fleet_run(root, env, calls, "good")
            out["noop_fleet_run"] = _fleet_run(root, env, calls, "noop")
            # A broken release: t49 (its own pipeline, image e answers 500) fails in the last wave while the other 47
            # (image b, bake 30 s) are in flight, baking.
            _write_pipeline(root, "b", bake="30s")
            _write_pipeline(root / "broken", "e")
            (root / "fleet.yaml").write_text(_fleet_yaml(broken="t49"))
            stopped = _fleet_run(root, env, calls, "stop")
            doc = json.loads((root / ".snail" / "fleet" / "journal.json").read_text())["current"]
            told = [e for e in doc["events"] if e["kind"] == "targets_told"]
            ended = [e for e in doc["events"] if e["kind"] == "target_ended"]
            first = told[0] if told else None
            stopped["in_flight_told"] = len(first["targets"]) if first else 0
            stopped["verdict_to_all_told_s"] = first.get("after_verdict_s") if first else None
            if first:
                back = [e["at"] for e in ended if e["target"] in first["targets"]]
                stopped["told_to_all_back_s"] = round(max(back) - first["at"], 2) if back else None
            stopped["statuses"] = dict(Counter(t["status"] for t in doc["targets"].values()))
            out["stop_the_line"] = stopped
    finally:
        agent.stop(stop_tasks=True)
        srv.stop()
        good.shutdown()
        bad.shutdown()
        moto_responses.BaseResponse._dispatch = orig  # type: ignore[method-assign]
    name = "results.json" if TEMPLATE else "results-no-template.json"
    (Path(__file__).parent / name).write_text(json.dumps(out, indent=1) + "\n")
    g, n, s = out["good_fleet_run"], out["noop_fleet_run"], out["stop_the_line"]
    print("| fleet benchmark (50 targets, 3 waves, 2 regions, moto + instant tasks) | figure |\n|---|---|")
    print(
        f"| good fleet run: wall / AWS calls (per target) / peak RSS | {g['wall_s']} s / {g['aws_calls']} "
        f"({g['aws_calls_per_target']}) / {g['peak_rss_mb']} MB (exit {g['exit_code']}) |"
    )
    print(f"| no-op fleet run: wall / AWS calls | {n['wall_s']} s / {n['aws_calls']} (exit {n['exit_code']}) |")
    print(
        f"| stop the line: failing verdict -> all {s['in_flight_told']} in-flight targets told | "
        f"{s['verdict_to_all_told_s']} s |"
    )
    print(
        f"| stop the line: told -> every one back on its good revision | {s.get('told_to_all_back_s')} s "
        f"(exit {s['exit_code']}, {s['statuses']}) |"
    )


if __name__ == "__main__":
    main()
