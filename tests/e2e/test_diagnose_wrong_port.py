"""The runtime diagnosis looks inside the sandbox's real container: a release whose app listens on 8080 while
service.port is 5000 is diagnosed as such after the deploy, as the pre-push probe would."""

from __future__ import annotations

import time

import pytest
from moto import mock_aws
from moto.moto_api import state_manager

from orchestrator.doctor import diagnose
from orchestrator.gates.verdict import Verdict
from tests.doctor_env import aws_context, good_env
from tests.functional.test_doctor_diagnose import run_tasks

pytestmark = pytest.mark.e2e


def test_refused_endpoint_names_the_port_the_container_listens_on(docker_client, build_args, tmp_path) -> None:
    """A container labelled as the task's `api` container serves on 8080: the summary says so and how to fix it."""
    with mock_aws():
        state_manager.set_transition(model_name="ecs::task", transition={"progression": "manual", "times": 10**9})
        env = good_env(aws_context(), tmp_path)
        (task_arn,) = run_tasks(env, count=1)
        task_id = task_arn.rsplit("/", 1)[-1]
        container = docker_client.containers.run(
            build_args["BASE_IMAGE"],
            ["python3", "-m", "http.server", "8080"],
            detach=True,
            labels={"snail-task": task_id, "snail-container": "api", "snail-trail.role": "e2e-test"},
        )
        try:
            deadline = time.monotonic() + 10
            from orchestrator.build.probe import container_listening_ports

            while container_listening_ports(container) != (8080,) and time.monotonic() < deadline:
                time.sleep(0.1)
            url = "http://127.0.0.1:32768/health"
            cause = Verdict(
                "http /health",
                "failed",
                f"{url}: ConnectionResetError: [Errno 104] Connection reset by peer",
                {"responses": [{"url": url, "status": None, "body": "", "problems": ["ConnectionResetError: 104"]}]},
            )
            d = diagnose(env.pipeline, env.aws, None, env.taskdef_arn, cause=cause, docker_client=docker_client)
        finally:
            container.remove(force=True)
    assert d.listening == ({"task": task_id, "container": "api", "ports": [8080]},)
    assert d.summary().startswith(
        f"the endpoint refuses connections (ConnectionResetError: 104): container api of task {task_id[:8]} "
        "listens on 8080, not on 5000 (service.port): make the app listen on 5000"
    )
