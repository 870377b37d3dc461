"""One place that makes boto3 clients: region, profile, endpoint and the retry policy for throttling.

Clients are made lazily, one per AWS service, all from ONE boto3 session, so its loader parses each service
model once, without the parts snail never reads (models.py): a client costs 1-10 MB (ec2's model is the
largest), so a command only makes the clients it calls."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# Throttling, 5xx and connection errors are retried here, by botocore, and nowhere else in the engine.
# `total_max_attempts` counts requests (botocore's `max_attempts` counts retries — see notes/moto-and-docker.md).
RETRY_CONFIG = {"mode": "standard", "total_max_attempts": 6}


@dataclass
class AwsContext:
    """How to reach AWS (or moto, or the sandbox): one cached client per service."""

    region: str = "us-east-1"
    profile: str | None = None
    endpoint_url: str | None = None
    credentials: dict[str, str] | None = None
    # Where the test listener answers when its DNS name is not the way, as an emulator hands it out (the
    # sandbox's endpoint info); pipeline.yaml's service.load_balancer.test_url wins over it.
    test_url: str | None = None
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)
    _session: Any = field(default=None, repr=False)

    def session(self) -> Any:
        """The boto3 session (imported lazily so `snail --help` stays fast)."""
        if self._session is None:
            import boto3

            kwargs: dict[str, Any] = {"region_name": self.region}
            if self.profile:
                kwargs["profile_name"] = self.profile
            if self.credentials:
                kwargs.update(self.credentials)
            from orchestrator.aws.models import lean_botocore_session

            self._session = boto3.session.Session(botocore_session=lean_botocore_session(), **kwargs)
        return self._session

    def client(self, service: str) -> Any:
        """A boto3 client with our retry policy and endpoint."""
        if service not in self._clients:
            from botocore.config import Config

            retries: Any = dict(RETRY_CONFIG)  # botocore types it as a TypedDict
            cfg = Config(retries=retries, connect_timeout=5, read_timeout=30, user_agent_extra="snail-trail")
            self._clients[service] = self.session().client(service, endpoint_url=self.endpoint_url, config=cfg)
        return self._clients[service]

    def assumed(self, role_arn: str, session_name: str) -> AwsContext:
        """A context in another account: this one's credentials assume `role_arn` (a fleet target's `role_arn`)."""
        from orchestrator.aws.errors import aws_call

        with aws_call("sts:AssumeRole"):
            creds = self.client("sts").assume_role(RoleArn=role_arn, RoleSessionName=session_name[:64])["Credentials"]
        return AwsContext(
            region=self.region,
            endpoint_url=self.endpoint_url,
            credentials={
                "aws_access_key_id": creds["AccessKeyId"],
                "aws_secret_access_key": creds["SecretAccessKey"],
                "aws_session_token": creds["SessionToken"],
            },
        )

    def record_calls(self, sink: list[str]) -> Callable[[], None]:
        """Append `service:Operation` to `sink` for every API call this context's clients make, those made
        already and those made later (a botocore before-call hook); returns the function that stops it."""

        def hook(model: Any = None, **_: Any) -> None:
            if model is not None:
                sink.append(f"{model.service_model.service_name}:{model.name}")

        uid = f"snail-record-calls-{id(sink)}"
        emitters = [self.session().events, *(c.meta.events for c in self._clients.values())]
        for emitter in emitters:
            emitter.register("before-call", hook, unique_id=uid)

        def stop() -> None:
            for emitter in [*emitters, *(c.meta.events for c in self._clients.values())]:
                emitter.unregister("before-call", hook, unique_id=uid)

        return stop
