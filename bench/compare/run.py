"""snail and ecs-deploy side by side on one sandbox (issue 10): `make bench-compare`.

Installs ecs-deploy (pinned) into bench/compare/.venv, starts a sandbox of its own (state in bench/compare/.work),
and runs both tools, alternately, against the same cluster through a request-counting proxy in front of the
sandbox's moto (proxy.py). Each tool has its own service in that cluster, built from the same container
definition with the same deployment configuration (desired 1, min 100 %, max 200 %, breaker on), so neither sees
the other's revisions. While a tool runs, a sampler asks the service's containers every 0.25 s, over HTTP,
whether they serve (GET /ml/status answers 200 with status ready|degraded) and reads the service's deployments
straight from moto (not through the proxy, so it is not counted). Scenarios: a good release, a broken release
(/ml/status 503 "failed"), a crash on start with the circuit breaker on and off, and a no-op. Results go to
bench/compare/results.json and, as a table of medians and ratios, into bench/README.md.

Not a test: figures depend on the machine. Nothing here is imported by the product.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

from proxy import Recorder, start_proxy  # noqa: E402

VENV = HERE / ".venv"
WORK = HERE / ".work"
ECS_DEPLOY = "ecs-deploy==1.17.0"
CLUSTER = "bench"
SNAIL_SERVICE = "bench-snail"
ECSD_SERVICE = "bench-ecsdeploy"
SAMPLE_EVERY = 0.25
WATCH = 30.0  # broken release: serving capacity is compared over the same 30 s after each tool starts
CRASH = ["python3", "-c", "import sys; print('crash on start', flush=True); sys.exit(1)"]
SCENARIOS = ("good", "broken", "crash", "crash-no-breaker", "noop")
TOOLS = ("snail", "ecs-deploy")
README = ROOT / "bench" / "README.md"
START, END = "<!-- bench-compare:start -->", "<!-- bench-compare:end -->"

PIPELINE = """\
# bench/compare's pipeline: the reference pipeline's defaults, one phase on the hybrid-ml image.
version: 1
service:
  cluster: {cluster}
  name: {service}
  region: us-east-1
  container: api
  port: 5000
  task_definition: phases/taskdef.json
  desired_count: 1
registry:
  ecr: shine-api-gateway
  create: true
state:
  backend: local
defaults:
  build_args:
    BASE_IMAGE: ${{SNAIL_BASE_IMAGE:-snail-base/python:3.11}}
  gates:
    - {{type: ecs-rollout, timeout: 5m}}
    - {{type: http, path: /health, expect: {{status: 200}}, consecutive: 2, retries: {{attempts: 10, wait: 1s}}}}
  bake: 2s
phases: [release]
"""


def log(msg: str) -> None:
    """Progress on stderr."""
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------ tools


def ensure_ecs_deploy() -> Path:
    """ecs-deploy in its own venv (created once); returns its `ecs` entry point."""
    ecs = VENV / "bin" / "ecs"
    version = ""
    if ecs.exists():
        version = subprocess.run(
            [str(VENV / "bin" / "python"), "-c", "import importlib.metadata as m; print(m.version('ecs-deploy'))"],
            capture_output=True,
            text=True,
        ).stdout.strip()
    if version != ECS_DEPLOY.split("==")[1]:
        log(f"installing {ECS_DEPLOY} into {VENV}")
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
        subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", ECS_DEPLOY], check=True)
    return ecs


def git_state(src: Path) -> str:
    """The commit measured, and whether the tree had uncommitted changes."""
    if (src / ".bench-commit").exists():
        return (src / ".bench-commit").read_text().strip()
    try:
        commit = subprocess.run(
            ["git", "-C", str(src), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(src), "status", "--porcelain", "--untracked-files=no", "--", "orchestrator"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        return commit + (" (+ uncommitted changes in orchestrator/)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return (src / ".bench-commit").read_text().strip() if (src / ".bench-commit").exists() else "unknown"


def archive(ref: str) -> Path:
    """A clean copy of commit `ref` (what `--commit` measures), with the commit noted in .bench-commit."""
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", ref], capture_output=True, text=True, check=True
    ).stdout.strip()
    dest = Path(tempfile.mkdtemp(prefix=f"snail-{commit}-"))
    tar = subprocess.run(["git", "-C", str(ROOT), "archive", commit], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=tar, check=True)
    (dest / ".bench-commit").write_text(commit)
    return dest


class Bench:
    """The sandbox, the proxy, the two services and the scenario runner."""

    def __init__(self, src: Path, ecs: Path) -> None:
        self.src = src
        self.ecs = ecs
        self.recorder = Recorder()
        self.release = 0
        self.base: dict[str, str] = {}
        self.image = ""
        self.proxy_url = ""
        self.endpoint = ""
        self._proxy: Any = None

    # ------------------------------------------------------------------ processes
    def snail_env(self) -> dict[str, str]:
        """How snail is started: the measured source on PYTHONPATH, the bench pipeline, the proxy as endpoint."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SNAIL_", "AWS_"))}
        env.update(
            PYTHONPATH=str(self.src),
            SNAIL_FILE=str(WORK / "pipeline.yaml"),
            SNAIL_BASE_IMAGE=os.environ.get("SNAIL_BASE_IMAGE", "snail-base/python:3.11"),
        )
        if self.proxy_url:
            env["SNAIL_ENDPOINT_URL"] = self.proxy_url
        return env

    def snail(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """`snail ARGS` (not measured)."""
        r = subprocess.run(
            [sys.executable, "-m", "orchestrator", *args],
            cwd=WORK,
            env=self.snail_env(),
            capture_output=True,
            text=True,
        )
        if check and r.returncode != 0:
            raise SystemExit(f"snail {' '.join(args)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
        return r

    def ecs_env(self) -> dict[str, str]:
        """ecs-deploy reaches the proxy through botocore's AWS_ENDPOINT_URL (it has no endpoint option)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SNAIL_", "AWS_"))}
        env.update(
            AWS_ENDPOINT_URL=self.proxy_url,
            AWS_ACCESS_KEY_ID="sandbox",
            AWS_SECRET_ACCESS_KEY="sandbox",
            AWS_DEFAULT_REGION="us-east-1",
        )
        return env

    # ------------------------------------------------------------------ direct AWS (not counted)
    def client(self, name: str) -> Any:
        """A boto3 client straight to the sandbox's moto (setup, resets and the sampler; never counted)."""
        import boto3

        return boto3.client(
            name,
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="sandbox",
            aws_secret_access_key="sandbox",
        )

    def service(self, name: str) -> dict[str, Any]:
        """The service as moto describes it."""
        return self.client("ecs").describe_services(cluster=CLUSTER, services=[name])["services"][0]

    def wait_steady(self, name: str, revision: str | None = None, timeout: float = 120) -> None:
        """One COMPLETED deployment (of `revision` if given), running == desired, and the tasks serving."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            svc = self.service(name)
            deps = svc.get("deployments", [])
            if (
                len(deps) == 1
                and deps[0].get("rolloutState") == "COMPLETED"
                and svc["runningCount"] == svc["desiredCount"]
                and (revision is None or deps[0]["taskDefinition"] == revision)
                and serving(name) >= svc["desiredCount"]
            ):
                return
            time.sleep(0.25)
        raise SystemExit(
            f"{name} did not become steady on {revision} in {timeout}s: {self.service(name)['events'][:3]}"
        )

    def reset(self, tool: str) -> None:
        """Put the tool's service back on its base revision (direct update_service, not counted), steady."""
        name = SNAIL_SERVICE if tool == "snail" else ECSD_SERVICE
        svc = self.service(name)
        if svc["taskDefinition"] != self.base[tool] or len(svc.get("deployments", [])) != 1:
            self.client("ecs").update_service(cluster=CLUSTER, service=name, taskDefinition=self.base[tool])
        self.wait_steady(name, self.base[tool])

    def set_breaker(self, enable: bool) -> None:
        """Turn both services' circuit breaker on or off (rollback stays off, as the issue measured)."""
        for name in (SNAIL_SERVICE, ECSD_SERVICE):
            self.client("ecs").update_service(
                cluster=CLUSTER,
                service=name,
                deploymentConfiguration={
                    "deploymentCircuitBreaker": {"enable": enable, "rollback": False},
                    "maximumPercent": 200,
                    "minimumHealthyPercent": 100,
                },
            )
        # the service configuration is part of snail's preflight cache key: check it once, outside the measurement
        self.snail("--sandbox", "doctor", check=False)

    # ------------------------------------------------------------------ setup
    def write_phase(self, image: str, environment: dict[str, str], command: list[str] | None = None) -> None:
        """phases/release.yaml: the hybrid-ml image (a build context or a pinned ref) with these task changes."""
        env = {"ML_ENABLED": "true", **environment}
        lines = [
            "name: release",
            f"image: {image}",
            "task:",
            "  cpu: 1024",
            "  memory: 2048",
            f"  environment: {json.dumps(env)}",
        ]
        if command:
            lines.append(f"  command: {json.dumps(command)}")
        lines += [
            "gates:",
            "  - {type: http, path: /ml/status, expect: {status: 200, json: {status: [ready, degraded]}}, "
            "retries: {attempts: 10, wait: 1s}}",
        ]
        (WORK / "phases" / "release.yaml").write_text("\n".join(lines) + "\n")

    def setup(self) -> None:
        """Sandbox up, hybrid-ml built and deployed by snail, ecs-deploy's twin service created; all steady."""
        if WORK.exists():
            self.teardown()
            shutil.rmtree(WORK)
        (WORK / "phases").mkdir(parents=True)
        (WORK / "pipeline.yaml").write_text(PIPELINE.format(cluster=CLUSTER, service=SNAIL_SERVICE))
        template = json.loads((ROOT / "phases" / "taskdef.json").read_text())
        template["family"] = SNAIL_SERVICE
        template["containerDefinitions"][0]["logConfiguration"]["options"]["awslogs-group"] = f"/ecs/{SNAIL_SERVICE}"
        (WORK / "phases" / "taskdef.json").write_text(json.dumps(template, indent=2))
        shutil.copytree(ROOT / "images" / "ml", WORK / "images" / "ml")  # snail reads only its repo
        self.write_phase(
            json.dumps({"context": "images/ml", "dockerfile": "Dockerfile.hybrid-ml"}), {"BENCH_RELEASE": "0"}
        )
        log("sandbox up")
        self.snail("sandbox", "up")
        self.endpoint = json.loads((WORK / ".snail" / "sandbox.json").read_text())["endpoint_url"]
        self._proxy, self.proxy_url = start_proxy(self.endpoint, self.recorder)
        log(f"proxy {self.proxy_url} -> {self.endpoint}; building and deploying hybrid-ml with snail")
        self.snail("--sandbox", "run")
        live = self.service(SNAIL_SERVICE)["taskDefinition"]
        td = self.client("ecs").describe_task_definition(taskDefinition=live)["taskDefinition"]
        self.image = td["containerDefinitions"][0]["image"]
        self.write_phase(json.dumps({"ref": self.image}), {"BENCH_RELEASE": "0"})
        self.snail("--sandbox", "run")
        self.base["snail"] = self.service(SNAIL_SERVICE)["taskDefinition"]
        log(f"snail's base revision {self.base['snail']} runs {self.image}")
        base_td = self.client("ecs").describe_task_definition(taskDefinition=self.base["snail"])["taskDefinition"]
        twin = {
            k: base_td[k]
            for k in ("containerDefinitions", "networkMode", "requiresCompatibilities", "cpu", "memory")
            if k in base_td
        }
        twin["executionRoleArn"] = base_td.get("executionRoleArn", "")
        twin["containerDefinitions"][0]["logConfiguration"]["options"]["awslogs-group"] = f"/ecs/{SNAIL_SERVICE}"
        arn = self.client("ecs").register_task_definition(family=ECSD_SERVICE, **twin)["taskDefinition"]
        self.base["ecs-deploy"] = arn["taskDefinitionArn"]
        snail_svc = self.service(SNAIL_SERVICE)
        self.client("ecs").create_service(
            cluster=CLUSTER,
            serviceName=ECSD_SERVICE,
            taskDefinition=self.base["ecs-deploy"],
            desiredCount=1,
            launchType="FARGATE",
            networkConfiguration=snail_svc["networkConfiguration"],
            deploymentConfiguration={
                "deploymentCircuitBreaker": {"enable": True, "rollback": False},
                "maximumPercent": 200,
                "minimumHealthyPercent": 100,
            },
        )
        self.set_breaker(True)
        for tool in TOOLS:
            self.reset(tool)
        log(f"ecs-deploy's twin service {ECSD_SERVICE} on {self.base['ecs-deploy']}; both steady")

    def teardown(self) -> None:
        """Stop the bench's sandbox (its containers go with it; the shared registry stays)."""
        if (WORK / "pipeline.yaml").exists():
            down = self.snail("sandbox", "down", check=False)
            info = WORK / ".snail" / "sandbox.json"
            if down.returncode != 0 and info.exists():  # the measured source cannot even stop it: stop our daemon
                import signal

                try:
                    os.kill(int(json.loads(info.read_text())["pid"]), signal.SIGTERM)
                except (OSError, ValueError, KeyError):
                    pass
        if self._proxy is not None:
            self._proxy.shutdown()

    # ------------------------------------------------------------------ one measured run
    def command(self, tool: str, scenario: str) -> list[str]:
        """What the tool is asked to do for a scenario (snail reads the phase file written here)."""
        self.release += 1
        env: dict[str, str] = {} if scenario == "noop" else {"BENCH_RELEASE": str(self.release)}
        if scenario == "broken":
            env["ML_FORCE_FAIL"] = "1"
        command = CRASH if scenario.startswith("crash") else None
        if tool == "snail":
            self.write_phase(json.dumps({"ref": self.image}), env or {"BENCH_RELEASE": "0"}, command)
            return [sys.executable, "-m", "orchestrator", "--sandbox", "run"]
        args = [str(self.ecs), "deploy", CLUSTER, ECSD_SERVICE, "--image", "api", self.image]
        for k, v in env.items():
            args += ["-e", "api", k, v]
        if command:
            args += ["-c", "api", json.dumps(command)]
        return [*args, "--rollback", "--no-deregister"]

    def measure(self, tool: str, scenario: str) -> dict[str, Any]:
        """Run the tool once from a steady base; what it did, when, at what cost."""
        self.reset(tool)
        name = SNAIL_SERVICE if tool == "snail" else ECSD_SERVICE
        cmd = self.command(tool, scenario)
        env = self.snail_env() if tool == "snail" else self.ecs_env()
        if tool == "snail" and scenario == "noop":
            # the reset put the base revision back from outside; the scheduled run before this one re-proves it
            # (not measured), so the measured run finds it live and good, as cron finds it after a delivery
            self.snail("--sandbox", "run")
        sampler = Sampler(self, name, self.base[tool])
        with tempfile.NamedTemporaryFile(suffix=".rss") as rss:
            self.recorder.reset()
            sampler.start()
            t0 = time.monotonic()
            r = subprocess.run(
                ["/usr/bin/time", "-f", "%M", "-o", rss.name, *cmd], cwd=WORK, env=env, capture_output=True, text=True
            )
            t_exit = time.monotonic()
            if scenario == "broken":  # keep watching after a tool that exits early: what does it leave behind?
                time.sleep(max(0.0, t0 + WATCH - time.monotonic()))
            sampler.stop()
            peak_kb = int(Path(rss.name).read_text().split()[-1])
        calls = self.recorder.snapshot()
        updates = [c.at - t0 for c in calls if c.operation == "UpdateService"]
        out: dict[str, Any] = {
            "tool": tool,
            "scenario": scenario,
            "exit_code": r.returncode,
            "wall_s": t_exit - t0,
            "aws_calls": len(calls),
            "by_operation": dict(self.recorder.by_operation().most_common()),
            "peak_rss_mb": peak_kb / 1024,
            "update_at_s": updates[0] if updates else None,
            "rollback_update_at_s": updates[1] if len(updates) > 1 else None,
            "registered": sum(1 for c in calls if c.operation == "RegisterTaskDefinition"),
            "calls": [f"{c.at - t0:.2f} {c.operation}" for c in calls],  # the sequence, to see where calls go
            **sampler.summary(t0, t_exit, t0 + WATCH if scenario == "broken" else t_exit),
            "last_line": (r.stdout.strip().splitlines() or [""])[-1][:200],
            "stderr_tail": r.stderr.strip()[-400:] if r.returncode not in (0, 1) else "",
        }
        if out["completed_at_s"] is not None:
            out["completed_to_exit_s"] = out["wall_s"] - out["completed_at_s"]
        if out["update_at_s"] is not None and out["rollback_update_at_s"] is not None:
            out["rollback_after_update_s"] = out["rollback_update_at_s"] - out["update_at_s"]
        if out["new_task_answers_at_s"] is not None and out["rollback_update_at_s"] is not None:
            out["rollback_after_new_task_answers_s"] = out["rollback_update_at_s"] - out["new_task_answers_at_s"]
        if out["failed_at_s"] is not None:
            react = out["rollback_update_at_s"] if out["rollback_update_at_s"] is not None else out["wall_s"]
            out["breaker_to_reaction_s"] = react - out["failed_at_s"]
        log(
            f"{scenario:<17} {tool:<10} exit {r.returncode}  {out['wall_s']:6.1f} s  {len(calls):3d} calls  "
            f"{out['peak_rss_mb']:5.0f} MB  serving at exit {out['serving_at_exit']}"
        )
        return out


def serving(family: str, answered: set[str] | None = None) -> int:
    """How many of the service's containers answer GET /ml/status 200 with status ready|degraded, now. `answered`
    collects the ids of the containers that gave any HTTP answer at all (a broken release's 503 included)."""
    import docker

    n = 0
    try:
        containers = docker.from_env().containers.list(filters={"label": f"snail-family={family}", "status": "running"})
    except Exception:  # noqa: BLE001 - Docker busy: count nothing this round
        return 0
    for c in containers:
        ports = (c.attrs.get("NetworkSettings") or {}).get("Ports") or {}
        host = next((b["HostPort"] for b in ports.get("5000/tcp") or [] if b.get("HostPort")), None)
        if not host:
            continue
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{host}/ml/status", timeout=0.5) as resp:
                body = json.loads(resp.read() or b"{}")
                n += resp.status == 200 and body.get("status") in ("ready", "degraded")
            if answered is not None:
                answered.add(c.id)
        except urllib.error.HTTPError:  # an answer, not a good one
            if answered is not None:
                answered.add(c.id)
        except (OSError, ValueError):
            pass
    return n


def running_containers(family: str) -> set[str]:
    """The ids of the service's running containers, now (the old tasks', when taken before the tool starts)."""
    import docker

    try:
        return {c.id for c in docker.from_env().containers.list(filters={"label": f"snail-family={family}"})}
    except Exception:  # noqa: BLE001 - Docker busy: nothing known
        return set()


@dataclass
class Sample:
    """One look at the service: when, how many containers serve, the deployments' states."""

    at: float
    serving: int
    deployments: list[dict[str, Any]] = field(default_factory=list)
    new_answered: bool = False  # a container started after the tool began answered HTTP (any status)


class Sampler(threading.Thread):
    """Every 0.25 s: serving capacity over HTTP, and the service's deployments straight from moto."""

    def __init__(self, bench: Bench, name: str, base: str) -> None:
        super().__init__(daemon=True)
        self.bench, self.name, self.base = bench, name, base
        self.samples: list[Sample] = []
        self._stop_event = threading.Event()
        self.ecs = bench.client("ecs")
        self.old = running_containers(name)  # the base's containers, before the tool starts

    def run(self) -> None:
        """Sample until stopped."""
        while not self._stop_event.is_set():
            t = time.monotonic()
            deps = self.ecs.describe_services(cluster=CLUSTER, services=[self.name])["services"][0]["deployments"]
            answered: set[str] = set()
            self.samples.append(
                Sample(
                    t,
                    serving(self.name, answered),
                    [{k: d.get(k) for k in ("status", "rolloutState", "taskDefinition")} for d in deps],
                    bool(answered - self.old),
                )
            )
            self._stop_event.wait(max(0.0, SAMPLE_EVERY - (time.monotonic() - t)))

    def stop(self) -> None:
        """Stop sampling (one last sample is taken after the tool exits)."""
        self._stop_event.set()
        self.join()

    def summary(self, t0: float, t_exit: float, watch_until: float) -> dict[str, Any]:
        """When our new deployment COMPLETED or FAILED, and the serving capacity until `watch_until`."""
        completed = failed = None
        for s in self.samples:
            for d in s.deployments:
                if d["taskDefinition"] == self.base:
                    continue
                if completed is None and d["rolloutState"] == "COMPLETED":
                    completed = s.at - t0
                if failed is None and d["rolloutState"] == "FAILED":
                    failed = s.at - t0
        during = [s for s in self.samples if s.at <= watch_until]
        below = sum(SAMPLE_EVERY for s in during if s.serving < 1)
        after = [s for s in self.samples if s.at >= t_exit]
        first = next((s.at - t0 for s in self.samples if s.new_answered), None)
        return {
            "new_task_answers_at_s": first,
            "completed_at_s": completed,
            "failed_at_s": failed,
            "min_serving": min((s.serving for s in during), default=0),
            "seconds_not_serving": below,
            "watched_s": watch_until - t0,
            "serving_at_exit": (after[0] if after else self.samples[-1]).serving if self.samples else 0,
            "samples": len(self.samples),
        }


# ------------------------------------------------------------------------------------------------ report


def median(rows: list[dict[str, Any]], key: str) -> float | None:
    """The median of a figure over runs that have it (None when no run has it)."""
    values = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(values) if values else None


def fmt(v: float | None, unit: str = " s", digits: int = 1) -> str:
    """A figure, or 'never'."""
    return "never" if v is None else f"{v:.{digits}f}{unit}"


def ratio(a: float | None, b: float | None) -> str:
    """snail / ecs-deploy, when both exist."""
    if a is None or b is None or b == 0:
        return "–"
    return f"{a / b:.2f}×"


def cold_start(ecs: Path, src: Path, n: int = 10) -> dict[str, float]:
    """`--help` in a fresh interpreter, n times each, alternating: median seconds per tool."""
    times: dict[str, list[float]] = {"snail": [], "ecs-deploy": []}
    env = {**os.environ, "PYTHONPATH": str(src)}
    for _ in range(n):
        for tool, cmd in (
            ("snail", [sys.executable, "-m", "orchestrator", "--help"]),
            ("ecs-deploy", [str(ecs), "--help"]),
        ):
            t = time.perf_counter()
            subprocess.run(cmd, capture_output=True, check=True, env=env, cwd=tempfile.gettempdir())
            times[tool].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def table(results: list[dict[str, Any]], cold: dict[str, float]) -> str:
    """The issue's table from the runs: medians per tool, snail/ecs-deploy ratios."""
    by = {(s, t): [r for r in results if r["scenario"] == s and r["tool"] == t] for s in SCENARIOS for t in TOOLS}

    def m(s: str, t: str, k: str) -> float | None:
        return median(by[(s, t)], k)

    def exits(s: str, t: str) -> str:
        codes = sorted({r["exit_code"] for r in by[(s, t)]})
        return "exit " + "/".join(str(c) for c in codes) if codes else ""

    def outcome(s: str, t: str) -> str:
        rows = by[(s, t)]
        if not rows:
            return "not run"
        at_exit = statistics.median(r["serving_at_exit"] for r in rows)
        rolled = any(r.get("rollback_update_at_s") is not None for r in rows)
        return f"{exits(s, t)}, {'rolled back' if rolled else 'no rollback'}, serving at exit {at_exit:.0f}/1"

    rows = []

    def add(label: str, s_val: float | None, e_val: float | None, unit: str = " s", digits: int = 1) -> None:
        rows.append(f"| {label} | {fmt(s_val, unit, digits)} | {fmt(e_val, unit, digits)} | {ratio(s_val, e_val)} |")

    add("good release: wall", m("good", "snail", "wall_s"), m("good", "ecs-deploy", "wall_s"))
    add("good release: AWS calls", m("good", "snail", "aws_calls"), m("good", "ecs-deploy", "aws_calls"), "", 0)
    add("good release: peak RSS", m("good", "snail", "peak_rss_mb"), m("good", "ecs-deploy", "peak_rss_mb"), " MB", 0)
    add("tool start -> UpdateService", m("good", "snail", "update_at_s"), m("good", "ecs-deploy", "update_at_s"))
    add(
        "COMPLETED (seen by the sampler) -> tool exits (snail: includes its 2 s bake)",
        m("good", "snail", "completed_to_exit_s"),
        m("good", "ecs-deploy", "completed_to_exit_s"),
    )
    add(
        "broken release (/ml/status 503): rollback begun after update",
        m("broken", "snail", "rollback_after_update_s"),
        m("broken", "ecs-deploy", "rollback_after_update_s"),
    )
    add(
        "broken release: rollback begun after the new task first answers (any status, seen by the sampler)",
        m("broken", "snail", "rollback_after_new_task_answers_s"),
        m("broken", "ecs-deploy", "rollback_after_new_task_answers_s"),
    )
    add(
        f"broken release: seconds with no good version answering, in the {WATCH:.0f} s after the tool started",
        m("broken", "snail", "seconds_not_serving"),
        m("broken", "ecs-deploy", "seconds_not_serving"),
    )
    add(
        "crash on start, breaker on: breaker FAILED -> tool reacts",
        m("crash", "snail", "breaker_to_reaction_s"),
        m("crash", "ecs-deploy", "breaker_to_reaction_s"),
    )
    add(
        "crash on start, breaker OFF: rollback begun after update",
        m("crash-no-breaker", "snail", "rollback_after_update_s"),
        m("crash-no-breaker", "ecs-deploy", "rollback_after_update_s"),
    )
    add(
        "crash on start, breaker OFF: wall",
        m("crash-no-breaker", "snail", "wall_s"),
        m("crash-no-breaker", "ecs-deploy", "wall_s"),
    )
    add("no-op scheduled run: wall", m("noop", "snail", "wall_s"), m("noop", "ecs-deploy", "wall_s"))
    add("no-op scheduled run: AWS calls", m("noop", "snail", "aws_calls"), m("noop", "ecs-deploy", "aws_calls"), "", 0)
    add(
        "no-op scheduled run: peak RSS",
        m("noop", "snail", "peak_rss_mb"),
        m("noop", "ecs-deploy", "peak_rss_mb"),
        " MB",
        0,
    )
    add(
        "no-op: revisions registered",
        m("noop", "snail", "registered"),
        m("noop", "ecs-deploy", "registered"),
        "",
        0,
    )
    add("`--help` cold start (median of 10)", cold.get("snail"), cold.get("ecs-deploy"), " s", 2)
    outcomes = [f"| {s} | {outcome(s, 'snail')} | {outcome(s, 'ecs-deploy')} |" for s in SCENARIOS if by[(s, "snail")]]

    def ops(s: str, t: str) -> str:
        rows_ = sorted(by[(s, t)], key=lambda r: r["aws_calls"])
        if not rows_:
            return "not run"
        mid = rows_[len(rows_) // 2]
        return ", ".join(f"{k.split(':', 1)[1]} {v}" for k, v in mid["by_operation"].items())

    breakdown = [
        "",
        "AWS calls of the median run, by operation:",
        "",
        *(f"- {t}, {s}: {ops(s, t)}" for s in ("good", "broken", "noop") for t in TOOLS),
    ]
    return "\n".join(
        [
            "| scenario (median) | snail | ecs-deploy | snail / ecs-deploy |",
            "|---|---|---|---|",
            *rows,
            "",
            "| scenario | snail: how it ended (all runs) | ecs-deploy: how it ended |",
            "|---|---|---|",
            *outcomes,
            *breakdown,
        ]
    )


def write_readme(text: str, start: str = START, end: str = END) -> None:
    """Replace a generated section of bench/README.md (between the markers, bench-compare's by default), or append
    it (bench/strategies/run.py writes its own section through this too)."""
    body = README.read_text() if README.exists() else "# Benchmarks\n"
    if start in body and end in body:
        head, rest = body.split(start, 1)
        _, tail = rest.split(end, 1)
        body = f"{head}{start}\n{text}\n{end}{tail}"
    else:
        body = f"{body.rstrip()}\n\n{start}\n{text}\n{end}\n"
    README.write_text(body)


def cleanup(bench: Bench, keep: bool, archived: bool) -> None:
    """Stop the bench's sandbox (unless kept) and remove the archived source `--commit` made (if it made one)."""
    if not keep:
        bench.teardown()
    if archived:
        shutil.rmtree(bench.src, ignore_errors=True)


def run_meta(started: datetime, commit: str, runs: int) -> dict[str, Any]:
    """What results.json says about a measurement: when, which snail commit, against what, on which machine."""
    return {
        "measured_at": started.isoformat(timespec="seconds"),
        "snail_commit": commit,
        "ecs_deploy": ECS_DEPLOY,
        "python": platform.python_version(),
        "machine": f"{os.cpu_count()} cores, {platform.system()} {platform.release()}",
        "runs": runs,
    }


def main() -> None:
    """Set up, run every scenario `--runs` times alternating the tools, write results.json and the README table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--runs-crash-no-breaker", type=int, default=None, help="fewer runs for the slow scenario")
    parser.add_argument("--src", type=Path, default=ROOT, help="the snail source to measure (default: this checkout)")
    parser.add_argument("--commit", help="measure this commit of the checkout (git archive into a temp dir)")
    parser.add_argument("--keep", action="store_true", help="leave the bench sandbox running")
    parser.add_argument("--no-readme", action="store_true")
    args = parser.parse_args()
    ecs = ensure_ecs_deploy()
    scenarios = [s for s in args.scenarios.split(",") if s]
    if args.commit:
        args.src = archive(args.commit)
    bench = Bench(args.src.resolve(), ecs)
    started = datetime.now(timezone.utc)
    results: list[dict[str, Any]] = []
    try:
        bench.setup()
        for scenario in scenarios:
            if scenario == "crash-no-breaker":
                bench.set_breaker(False)
            runs = (
                args.runs_crash_no_breaker
                if scenario == "crash-no-breaker" and args.runs_crash_no_breaker
                else args.runs
            )
            for i in range(runs):
                order = TOOLS if i % 2 == 0 else TOOLS[::-1]
                for tool in order:
                    results.append(bench.measure(tool, scenario))
            if scenario == "crash-no-breaker":
                bench.set_breaker(True)
        cold = cold_start(ecs, bench.src)
        commit = git_state(bench.src)
    finally:
        cleanup(bench, args.keep, bool(args.commit))
    meta = run_meta(started, commit, args.runs)
    (HERE / "results.json").write_text(
        json.dumps({"meta": meta, "cold_start_s": cold, "runs": results}, indent=1, default=str)
    )
    text = (
        f"Measured {meta['measured_at']} on snail commit {meta['snail_commit']} against {ECS_DEPLOY}, "
        f"{args.runs} alternating runs per scenario (Python {meta['python']}, {meta['machine']}). "
        "Raw runs: `bench/compare/results.json`.\n\n" + table(results, cold)
    )
    print(text)
    if not args.no_readme:
        write_readme(text)


if __name__ == "__main__":
    main()
