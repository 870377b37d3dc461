"""The sandbox process: moto's server on 127.0.0.1, the ECS extension, and the agent running real containers.

    python -m ecsbox.daemon --state-dir DIR --port P [--registry 127.0.0.1:5055]

Runs until SIGTERM or SIGINT, then stops every container it started. `control.up()` starts it detached;
`control.down()` stops it.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

import structlog

log = structlog.get_logger(__name__)

DEFAULT_ACCOUNT_ID = "123456789012"  # moto's default account: what any access key without a mapping gets


def sandbox_id_for(state_dir: Path) -> str:
    """A short id naming one sandbox (its state directory), used to label its containers."""
    return hashlib.sha1(str(Path(state_dir).resolve()).encode()).hexdigest()[:10]


def run(
    state_dir: Path,
    port: int,
    region: str = "us-east-1",
    account_id: str = DEFAULT_ACCOUNT_ID,
    registry: str | None = "127.0.0.1:5055",
    interval: float = 0.5,
    launcher: Any = None,
    stop_event: threading.Event | None = None,
    metrics_period: float = 10.0,
) -> int:
    """Serve until `stop_event` is set (the signal handlers set it); return the process exit status."""
    from moto.server import ThreadedMotoServer

    from ecsbox import extension
    from ecsbox.agent import EcsAgent
    from ecsbox.launchers import DockerLauncher

    # The execution role needs AmazonECSTaskExecutionRolePolicy; moto only knows AWS managed policies if asked.
    os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
    stop_event = stop_event or threading.Event()
    sandbox_id = sandbox_id_for(state_dir)
    started = time.monotonic()
    extension.install()
    if launcher is None:
        launcher = DockerLauncher(registry=registry, extra_labels={"snail-sandbox-id": sandbox_id})
        # A sandbox that died left its containers behind; this moto knows nothing of them.
        removed = _remove_own_containers(launcher, sandbox_id)
        if removed:
            log.info("sandbox_stale_containers_removed", count=removed)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    if not _start_server(server, port):
        log.error("sandbox_daemon_bind_failed", port=port, hint="the port is taken: `snail sandbox up --port N`")
        _close_launcher(launcher)
        return 2
    host, bound = server.get_host_and_port()
    # Every region: a pipeline may name any region, the same sandbox serves them all.
    # SNAIL_SANDBOX_MINUTE: seconds per ECS minute (bake times, hook timeouts), e.g. 1 to rehearse a timeout fast.
    minute = float(os.environ.get("SNAIL_SANDBOX_MINUTE") or 60)
    agent = EcsAgent(launcher, account_id=account_id, region=None, interval=interval, minute=minute)
    agent.start()
    # The load balancers' data plane: a port per listener of whatever ELBv2 state moto holds.
    plane = start_load_balancers(f"http://{host}:{bound}", region, account_id, metrics_period)
    from ecsbox.alarms import AlarmEvaluator

    evaluator = AlarmEvaluator(account_id, interval=metrics_period)  # CloudWatch evaluates alarms; moto does not
    evaluator.start()
    log.info(
        "sandbox_daemon_ready",
        endpoint_url=f"http://{host}:{bound}",
        region=region,
        sandbox_id=sandbox_id,
        seconds=round(time.monotonic() - started, 3),
    )
    try:
        while not stop_event.wait(1.0):
            pass
    finally:
        log.info("sandbox_daemon_stopping")
        evaluator.stop()
        plane.stop()
        agent.stop(stop_tasks=True)
        close = getattr(launcher, "close", None)
        if close:
            close()
        if isinstance(launcher, DockerLauncher):
            _remove_own_containers(launcher, sandbox_id)
        server.stop()
        log.info("sandbox_daemon_stopped")
    return 0


def start_load_balancers(endpoint_url: str, region: str, account_id: str, metrics_period: float) -> Any:
    """Start the load-balancer data plane (ecsbox/lb.py), publishing ALB metrics to moto."""
    import boto3

    from ecsbox.lb import DataPlane, cloudwatch_publisher

    cloudwatch = boto3.client(
        "cloudwatch",
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id="sandbox",
        aws_secret_access_key="sandbox",
    )
    plane = DataPlane(account_id=account_id, metrics_period=metrics_period, publish=cloudwatch_publisher(cloudwatch))
    plane.start()
    return plane


def _start_server(server: Any, port: int, timeout: float = 10.0) -> bool:
    """ThreadedMotoServer.start() waits forever when the port is taken (the bind fails in its thread and the
    ready event is never set): start its thread ourselves and give up after `timeout`."""
    import threading

    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as werkzeug binds: TIME_WAIT is no conflict
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    server._thread = threading.Thread(target=server._server_entry, daemon=True)
    server._thread.start()
    return bool(server._server_ready_event.wait(timeout))


def _close_launcher(launcher: Any) -> None:
    """Release what was opened for an agent that will not run (the Docker client)."""
    close = getattr(launcher, "close", None)
    if close:
        close()


def _remove_own_containers(launcher: Any, sandbox_id: str) -> int:
    from ecsbox.launchers import remove_sandbox_containers

    try:
        return remove_sandbox_containers(launcher.client, sandbox_id)
    except Exception as exc:  # noqa: BLE001 - Docker down: nothing we can remove
        log.warning("sandbox_docker_unreachable", error=str(exc))
        return 0


def _load_processor(ref: str) -> Any:
    """`module:function` -> the function (the host's masking processor for this log)."""
    import importlib

    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


def _configure_logging(log_processor: str | None = None) -> None:
    """JSON lines; with `log_processor` (the host's redaction, e.g. `orchestrator.redact:structlog_processor`) every
    event passes it before it is written: the log lives in the host's state folder, masked like its other output."""
    masking = [_load_processor(log_processor)] if log_processor else []
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            *masking,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
    )


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, install signal handlers, serve."""
    parser = argparse.ArgumentParser(prog="python -m ecsbox.daemon", description=__doc__)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--account-id", default=DEFAULT_ACCOUNT_ID)
    parser.add_argument("--registry", default="127.0.0.1:5055")
    parser.add_argument("--interval", type=float, default=0.5)
    parser.add_argument("--log-processor", help="module:function, a structlog processor every log event passes")
    parser.add_argument("--metrics-period", type=float, default=10.0, help="seconds between ALB metric publications")
    args = parser.parse_args(argv)
    _configure_logging(args.log_processor)
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("sandbox_daemon_signal", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    args.state_dir.mkdir(parents=True, exist_ok=True)
    return run(
        args.state_dir,
        args.port,
        region=args.region,
        account_id=args.account_id,
        registry=args.registry or None,
        interval=args.interval,
        stop_event=stop,
        metrics_period=args.metrics_period,
    )


if __name__ == "__main__":
    code = main()
    # Everything the sandbox owns was stopped and removed above. Leave now instead of letting the interpreter
    # join leftover worker threads (Docker client pools, log shippers) for seconds: that made `down` slow.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
