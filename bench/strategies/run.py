"""A broken release under steady production load, per deployment strategy and with ecs-deploy (issue 13):
`make bench-strategies`.

Starts a sandbox of its own (state in bench/strategies/.work) whose pipeline wires the sandbox load balancer
(production and test listener rules, two target groups, the infrastructure role), deploys a good release of the
hybrid-ml image, then, for each of rolling, canary 10 %, linear (3 steps), blue-green and ecs-deploy 1.17.0
(`ecs deploy … --rollback --timeout 120`), deploys a BROKEN release (ML_FORCE_FAIL=1: /ml/status answers 503
`{"status": "failed"}`, /health 200, as `make demo`'s DEMO_BREAK_ML=1) while a bounded load generator sends 50
GET /ml/status per second to the PRODUCTION listener. Every release sets APP_VERSION (`good-N` / `broken-N`),
which the app puts in its `Server` header, so each production response says which revision answered. After each
run the service is put back on the good revision (directly, not measured) before the next one starts.

Reuses bench/compare (the ecs-deploy venv, the sandbox and process helpers, the request-counting proxy through
which ecs-deploy's rollback UpdateService is seen). Figures: bench/strategies/figures.py (unit-tested). Results
go to bench/strategies/results.json and, as a table, into bench/README.md. Not a test: figures depend on the
machine. Nothing here is imported by the product.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import http.client
import importlib.util
import json
import shutil
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

import figures as fig  # noqa: E402


def _load_compare() -> Any:
    """bench/compare/run.py as a module (its name `run` is this file's too, so it is loaded by path)."""
    spec = importlib.util.spec_from_file_location("bench_compare", ROOT / "bench" / "compare" / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_compare"] = module
    spec.loader.exec_module(module)
    return module


compare = _load_compare()
WORK = HERE / ".work"
compare.WORK = WORK  # the compare helpers (snail(), snail_env(), teardown()) run in this bench's own state dir

SERVICE = "bench-strategies"
CLUSTER = compare.CLUSTER
RATE = 50.0  # production requests per second
WORKERS = 32  # the load generator's bound: at most this many requests in flight
REQUEST_TIMEOUT = 2.0
LEAD_IN = 2.0  # seconds of load before the tool starts
TAIL = 3.0  # seconds of load after the tool exits
WATCH = 30.0  # the load runs at least this long after the tool starts (ecs-deploy exits early)
ECS_DEPLOY_TIMEOUT = 120  # `ecs deploy --timeout`: seconds it waits for the deployment before --rollback acts
GATE_WINDOW = 10.0  # one gate window: the /ml/status gate's retry budget (10 attempts, 1 s apart)
TOOLS = ("rolling", "canary", "canary-metrics", "linear", "blue-green", "ecs-deploy")
STRATEGY = {
    "rolling": "rolling",
    "canary": "{type: canary, percent: 10, step_bake: 1m, bake: 0, hook_timeout: 10m}",
    "canary-metrics": "{type: canary, percent: 10, step_bake: 1m, bake: 0, hook_timeout: 10m}",
    "linear": "{type: linear, percent: 34, step_bake: 1m, bake: 0, hook_timeout: 10m}",
    "blue-green": "{type: blue-green, bake: 0, hook_timeout: 10m}",
}
LABELS = {
    "canary": "canary 10 %",
    "canary-metrics": "canary 10 %, judged on production only (metrics gate)",
    "linear": "linear, 34 % steps",
    "ecs-deploy": f"ecs-deploy {compare.ECS_DEPLOY.split('==')[1]} --rollback",
}
# canary-metrics: the phase judges on production only (the 10 % slice's 5xx ratio in CloudWatch, which the sandbox's
# load balancer publishes every 10 s), instead of the reference /ml/status gate that catches it on the test listener
PRODUCTION_GATE = (
    "  - {type: metrics, max_5xx_ratio: 0.01, min_requests: 20, window: 1m, retries: {attempts: 120, wait: 1s}}"
)
ROLLING_CONFIG = {
    "strategy": "ROLLING",
    "lifecycleHooks": [],
    "deploymentCircuitBreaker": {"enable": True, "rollback": False},
    "maximumPercent": 200,
    "minimumHealthyPercent": 100,
}
LOAD_BALANCER = """\
  load_balancer:
    target_group_arn: bench-blue
    target_groups: [bench-blue, bench-green]
    production_listener_rule: production
    test_listener_rule: test
    infrastructure_role: ecsInfrastructureRole
"""
START, END = "<!-- bench-strategies:start -->", "<!-- bench-strategies:end -->"
log = compare.log


class LoadGenerator:
    """`RATE` GETs per second on one URL from a pool of `WORKERS` threads; each answer kept as a fig.Response."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port, self.path = parts.hostname or "127.0.0.1", parts.port or 80, parts.path or "/"
        self.responses: list[fig.Response] = []
        self.started = self.stopped = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def one(self) -> fig.Response:
        """One request on a fresh connection (as a browser or a client without a pool)."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=REQUEST_TIMEOUT)
        try:
            conn.request("GET", self.path)
            resp = conn.getresponse()
            resp.read()
            return fig.Response(time.time(), resp.status, fig.version_of(resp.getheader("Server")))
        except (OSError, http.client.HTTPException):
            return fig.Response(time.time(), None, None)
        finally:
            conn.close()

    def _record(self, future: concurrent.futures.Future[fig.Response]) -> None:
        with self._lock:
            self.responses.append(future.result())

    def _run(self) -> None:
        with concurrent.futures.ThreadPoolExecutor(max_workers=WORKERS) as pool:
            next_at = time.monotonic()
            while not self._stop.is_set():
                pool.submit(self.one).add_done_callback(self._record)
                next_at += 1.0 / RATE
                self._stop.wait(max(0.0, next_at - time.monotonic()))

    def start(self) -> None:
        """Start sending."""
        self.started = time.time()
        self._thread.start()

    def stop(self) -> list[fig.Response]:
        """Stop sending, wait for the requests in flight, return every response in order of answer."""
        self._stop.set()
        self._thread.join()
        self.stopped = time.time()
        with self._lock:
            return sorted(self.responses, key=lambda r: r.at)


class TaskWatcher(threading.Thread):
    """Every 0.5 s, the service's task ARNs (running and stopped) straight from moto."""

    def __init__(self, bench: StrategyBench) -> None:
        super().__init__(daemon=True)
        self.ecs = bench.client("ecs")
        self.seen: set[str] = set()
        self._stop_event = threading.Event()
        self.before = self.tasks()

    def tasks(self) -> set[str]:
        """The service's tasks now, whatever their state."""
        arns: set[str] = set()
        for status in ("RUNNING", "STOPPED"):
            arns.update(self.ecs.list_tasks(cluster=CLUSTER, serviceName=SERVICE, desiredStatus=status)["taskArns"])
        return arns

    def run(self) -> None:
        """Watch until stopped."""
        while not self._stop_event.is_set():
            self.seen |= self.tasks()
            self._stop_event.wait(0.5)

    def stop(self) -> int:
        """Stop watching; the number of tasks started since the watch began."""
        self._stop_event.set()
        self.join()
        self.seen |= self.tasks()
        return fig.tasks_started(self.before, self.seen)


class StrategyBench(compare.Bench):  # type: ignore[name-defined]
    """bench/compare's Bench, on one load-balanced service, deploying broken releases with each strategy."""

    def __init__(self, src: Path, ecs: Path) -> None:
        super().__init__(src, ecs)
        self.good = ""
        self.production_url = ""
        self.good_version = "good-0"

    # ------------------------------------------------------------------ setup
    def write_release(
        self, version: str, broken: bool, strategy: str, image: str | None = None, gate: str | None = None
    ) -> None:
        """phases/release.yaml: compare's phase (the /ml/status gate, or `gate`) with this APP_VERSION and
        `strategy:`."""
        env = {"APP_VERSION": version, **({"ML_FORCE_FAIL": "1"} if broken else {})}
        self.write_phase(image or json.dumps({"ref": self.image}), env)
        phase = WORK / "phases" / "release.yaml"
        text = phase.read_text()
        if gate:
            text = text.split("gates:\n", 1)[0] + f"gates:\n{gate}\n"
        phase.write_text(text + f"strategy: {strategy}\n")

    def setup(self) -> None:
        """Sandbox up with the load balancer, hybrid-ml built and deployed good by snail (rolling), steady."""
        if WORK.exists():
            self.teardown()
            shutil.rmtree(WORK)
        (WORK / "phases").mkdir(parents=True)
        pipeline = compare.PIPELINE.format(cluster=CLUSTER, service=SERVICE)
        (WORK / "pipeline.yaml").write_text(
            pipeline.replace("  desired_count: 1\n", "  desired_count: 1\n" + LOAD_BALANCER)
        )
        template = json.loads((ROOT / "phases" / "taskdef.json").read_text())
        template["family"] = SERVICE
        template["containerDefinitions"][0]["logConfiguration"]["options"]["awslogs-group"] = f"/ecs/{SERVICE}"
        (WORK / "phases" / "taskdef.json").write_text(json.dumps(template, indent=2))
        shutil.copytree(ROOT / "images" / "ml", WORK / "images" / "ml")
        self.write_release(
            self.good_version,
            False,
            "rolling",
            json.dumps({"context": "images/ml", "dockerfile": "Dockerfile.hybrid-ml"}),
        )
        log("sandbox up (with the load balancer)")
        self.snail("sandbox", "up")
        self.endpoint = json.loads((WORK / ".snail" / "sandbox.json").read_text())["endpoint_url"]
        self._proxy, self.proxy_url = compare.start_proxy(self.endpoint, self.recorder)
        status = json.loads(self.snail("--output", "json", "sandbox", "status").stdout)
        self.production_url = (status.get("seeded") or {}).get("production_url") or ""
        if not self.production_url:
            raise SystemExit(f"the sandbox seeded no production listener: {status}")
        log(f"production {self.production_url}; building and deploying hybrid-ml {self.good_version} with snail")
        self.snail("--sandbox", "run")
        live = self.service(SERVICE)["taskDefinition"]
        td = self.client("ecs").describe_task_definition(taskDefinition=live)["taskDefinition"]
        self.image = td["containerDefinitions"][0]["image"]
        self.good = live
        self.ensure_good()
        log(f"good revision {self.good} ({self.good_version}) serves production")

    # ------------------------------------------------------------------ between runs (not measured)
    def production_good(self, seconds: float = 1.0) -> bool:
        """Production answers only from the good revision for `seconds` (checked at ~10 req/s)."""
        probe = LoadGenerator(self.production_url + "/ml/status")
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if not fig.is_good(probe.one()):
                return False
            time.sleep(0.1)
        return True

    def ensure_good(self, timeout: float = 180) -> None:
        """The service on the good revision (re-deployed directly, rolling, if a tool left it elsewhere), steady,
        and production answering only from it."""
        svc = self.service(SERVICE)
        deps = svc.get("deployments", [])
        if svc["taskDefinition"] != self.good or len(deps) != 1 or deps[0].get("rolloutState") != "COMPLETED":
            log(f"putting {SERVICE} back on {self.good}")
            self.client("ecs").update_service(
                cluster=CLUSTER, service=SERVICE, taskDefinition=self.good, deploymentConfiguration=ROLLING_CONFIG
            )
        self.wait_steady(SERVICE, self.good, timeout)  # compare's: one COMPLETED deployment, its tasks serving
        deadline = time.monotonic() + timeout
        while not self.production_good():
            if time.monotonic() > deadline:
                raise SystemExit(f"production is not answering only from {self.good} after {timeout}s")
            time.sleep(0.5)

    def use_rolling(self) -> None:
        """ecs-deploy's service is a plain rolling one (a user of ecs-deploy has no strategy or hooks)."""
        self.client("ecs").update_service(cluster=CLUSTER, service=SERVICE, deploymentConfiguration=ROLLING_CONFIG)

    # ------------------------------------------------------------------ one measured run
    def journal_events(self) -> list[dict[str, Any]]:
        """The last run's trail events (kind, at) as snail's JSON trail gives them."""
        r = self.snail("--sandbox", "trail", "--last", "1", "--format", "json", check=False)
        try:
            doc = json.loads(r.stdout)
        except ValueError:
            return []
        return list(_events(doc))

    def measure(self, tool: str, n: int) -> dict[str, Any]:
        """Deploy broken release n with `tool` under production load; what production saw."""
        self.ensure_good()
        version = f"broken-{n}"
        if tool == "ecs-deploy":
            self.use_rolling()
            cmd = [
                str(self.ecs),
                "deploy",
                CLUSTER,
                SERVICE,
                "--image",
                "api",
                self.image,
                "-e",
                "api",
                "APP_VERSION",
                version,
                "-e",
                "api",
                "ML_FORCE_FAIL",
                "1",
                "--timeout",
                str(ECS_DEPLOY_TIMEOUT),
                "--rollback",
            ]
            env = self.ecs_env()
        else:
            self.write_release(
                version, True, STRATEGY[tool], gate=PRODUCTION_GATE if tool == "canary-metrics" else None
            )
            cmd = [sys.executable, "-m", "orchestrator", "--sandbox", "run"]
            env = self.snail_env()
        load = LoadGenerator(self.production_url + "/ml/status")
        tasks = TaskWatcher(self)
        offset = time.time() - time.monotonic()  # the proxy stamps calls with time.monotonic()
        self.recorder.reset()
        tasks.start()
        load.start()
        time.sleep(LEAD_IN)
        t0 = time.time()
        r = subprocess.run(cmd, cwd=WORK, env=env, capture_output=True, text=True)
        t_exit = time.time()
        time.sleep(max(TAIL, t0 + WATCH - time.time()))
        responses = load.stop()
        started = tasks.stop()
        calls = [(c.operation, c.at + offset) for c in self.recorder.snapshot()]
        updates = [at for op, at in calls if op == "UpdateService"]
        journal = None
        if tool == "ecs-deploy":
            decision = updates[1] if len(updates) > 1 else None  # its rollback is its second UpdateService
        else:
            # the journal's decision has whole-second times: the rollback call it made, seen by the proxy, is exact
            journal = fig.decision_time(self.journal_events(), since=int(t0))
            decision = fig.decision_call(calls, journal)
        sent, failed = fig.counts(responses)
        n_broken, first, last = fig.broken_served(responses)
        out: dict[str, Any] = {
            "tool": tool,
            "strategy": STRATEGY.get(tool, f"ecs-deploy --rollback --timeout {ECS_DEPLOY_TIMEOUT}"),
            "release": version,
            "exit_code": r.returncode,
            "wall_s": t_exit - t0,
            "sent": sent,
            "failed": failed,
            "load_seconds": load.stopped - load.started,
            "broken_responses": n_broken,
            "broken_first_s": None if first is None else first - t0,
            "broken_last_s": None if last is None else last - t0,
            "seconds_broken": fig.seconds_broken(responses),
            "broken_at_end": bool(responses) and fig.is_broken(responses[-1].version),
            "update_at_s": updates[0] - t0 if updates else None,
            "decision_journal_at_s": None if journal is None else journal - t0,
            "decision_at_s": None if decision is None else decision - t0,
            "decision_to_good_s": fig.back_to_good(responses, decision),
            "tasks_started": started,
            "last_line": (r.stdout.strip().splitlines() or [""])[-1][:200],
            "stderr_tail": r.stderr.strip()[-400:] if r.returncode not in (0, 1) else "",
        }
        log(
            f"{tool:<10} {version:<9} exit {r.returncode}  {out['wall_s']:5.1f} s  sent {sent} failed {failed}  "
            f"broken served {out['seconds_broken']:.1f} s ({n_broken})  decision->good "
            f"{fig.fmt_s(out['decision_to_good_s'])}  tasks {started}"
        )
        return out


def _events(doc: Any) -> Any:
    """Every dict with `kind` and `at` in snail's JSON trail, however it nests them."""
    if isinstance(doc, dict):
        if "kind" in doc and "at" in doc:
            yield doc
        for v in doc.values():
            yield from _events(v)
    elif isinstance(doc, list):
        for v in doc:
            yield from _events(v)


# ------------------------------------------------------------------------------------------------ report


def table(results: list[dict[str, Any]]) -> str:
    """Medians per tool, every run's figures, and the issue's targets."""
    by = {t: [r for r in results if r["tool"] == t] for t in TOOLS}

    def m(t: str, key: str, digits: int = 1, unit: str = " s") -> str:
        rows = by[t]
        values = [r.get(key) for r in rows]
        if not rows:
            return "not run"
        if all(v is None for v in values):
            return "never"
        v = fig.median_of(rows, key)
        text = f"{v:.{digits}f}{unit}"
        return text + (f" ({sum(x is None for x in values)} of {len(values)} never)" if None in values else "")

    def exits(t: str) -> str:
        return " / ".join(str(r["exit_code"]) for r in by[t])

    def to_good(t: str) -> str:
        text = m(t, "decision_to_good_s", 2)
        if by[t] and all(r["broken_responses"] == 0 and r["failed"] == 0 for r in by[t]):
            text += " (production never left good)"
        return text

    lines = [
        "| tool (median of runs) | production sent / failed | broken version served production | "
        "decision -> 100 % production on good | tasks started | exit codes (every run) |",
        "|---|---|---|---|---|---|",
    ]
    for t in TOOLS:
        rows = by[t]
        if not rows:
            continue
        label = LABELS.get(t, t)
        broken = m(t, "seconds_broken")
        if any(r["broken_at_end"] for r in rows):
            broken = f">= {broken} (still serving when the {WATCH:.0f} s watch ended)"
        lines.append(
            f"| {label} | {m(t, 'sent', 0, '')} / {m(t, 'failed', 0, '')} | {broken} "
            f"({m(t, 'broken_responses', 0, '')} responses) | {to_good(t)} | "
            f"{m(t, 'tasks_started', 0, '')} | {exits(t)} |"
        )
    lines += ["", "| target (issue 13), judged on every run | met | |", "|---|---|---|"]
    for name, (ok, why) in fig.targets({t: by[t] for t in TOOLS}, GATE_WINDOW).items():
        lines.append(f"| {name} | {'yes' if ok else '**no**'} | {why} |")
    lines += [
        "",
        "Every run (seconds from the tool's start; `decision at`: the call that carried out the rollback decision, "
        "seen by the request-counting proxy: snail's ContinueServiceDeployment ROLLBACK or rollback UpdateService "
        "after its journaled gate_failed, ecs-deploy's second UpdateService):",
        "",
        "| tool | release | exit | sent / failed | broken responses, first–last | decision at | decision -> good | "
        "tasks |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        span = (
            f"{r['broken_responses']}, {r['broken_first_s']:.1f}–{r['broken_last_s']:.1f} s"
            if r["broken_responses"]
            else "0"
        )
        lines.append(
            f"| {r['tool']} | {r['release']} | {r['exit_code']} | {r['sent']} / {r['failed']} | {span} | "
            f"{fig.fmt_s(r['decision_at_s'])} | {fig.fmt_s(r['decision_to_good_s'])} | {r['tasks_started']} |"
        )
    return "\n".join(lines)


def main() -> None:
    """Set up, deploy a broken release with every tool `--runs` times (alternating order), write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tools", default=",".join(TOOLS))
    parser.add_argument("--src", type=Path, default=ROOT, help="the snail source to measure (default: this checkout)")
    parser.add_argument("--commit", help="measure this commit of the checkout (git archive into a temp dir)")
    parser.add_argument("--keep", action="store_true", help="leave the bench sandbox running")
    parser.add_argument("--no-readme", action="store_true")
    args = parser.parse_args()
    tools = [t for t in args.tools.split(",") if t]
    unknown = set(tools) - set(TOOLS)
    if unknown:
        raise SystemExit(f"unknown tools {sorted(unknown)}; choose from {', '.join(TOOLS)}")
    ecs = compare.ensure_ecs_deploy()
    if args.commit:
        args.src = compare.archive(args.commit)
    bench = StrategyBench(args.src.resolve(), ecs)
    started = datetime.now(timezone.utc)
    results: list[dict[str, Any]] = []
    n = 0
    try:
        bench.setup()
        for i in range(args.runs):
            for tool in tools if i % 2 == 0 else tools[::-1]:
                n += 1
                results.append(bench.measure(tool, n))
        bench.ensure_good()
        commit = compare.git_state(bench.src)
    finally:
        compare.cleanup(bench, args.keep, bool(args.commit))
    meta = {**compare.run_meta(started, commit, args.runs), "rate_per_s": RATE, "gate_window_s": GATE_WINDOW}
    (HERE / "results.json").write_text(json.dumps({"meta": meta, "runs": results}, indent=1, default=str))
    text = (
        f"Measured {meta['measured_at']} on snail commit {meta['snail_commit']} ({args.runs} run(s) per tool, "
        f"order alternating; {RATE:.0f} req/s on the production listener; Python {meta['python']}, "
        f"{meta['machine']}). Raw runs: `bench/strategies/results.json`.\n\n" + table(results)
    )
    print(text)
    if not args.no_readme:
        compare.write_readme(text, START, END)


if __name__ == "__main__":
    main()
