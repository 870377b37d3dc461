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
# One attempt's bound: connect + read. A gate's calls get less when less is left of its timeout (aws/bounds.py).
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 30.0
READS = ("Describe", "List", "Get", "BatchGet", "Query", "Scan", "Head", "Search", "Lookup", "Filter", "Validate")


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
    # One attempt of one call lasts at most connect + read (`call_bound`): what a lock holder's late write is
    # bounded by, and what a takeover waits out before its first change (docs/locks.md).
    connect_timeout: float = CONNECT_TIMEOUT
    read_timeout: float = READ_TIMEOUT
    # Called before each attempt of a call that changes something (not a Describe/List/Get, not the state store):
    # the engine's lock fence, which waits out a takeover and raises LockLost once the lease may have expired.
    fence: Callable[[str], None] | None = field(default=None, repr=False)
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
            from orchestrator.aws import bounds

            cfg = Config(
                retries=retries,
                connect_timeout=self.connect_timeout,
                read_timeout=self.read_timeout,
                user_agent_extra="snail-trail",
            )
            client = self.session().client(service, endpoint_url=self.endpoint_url, config=cfg)
            if service != "dynamodb":  # the state store's writes are conditional: they fence themselves
                # first: before any other before-send handler (moto's in-process one acts as it answers)
                client.meta.events.register_first(f"before-send.{service}", self._fenced)
            self._clients[service] = bounds.install(client, self.connect_timeout, self.read_timeout)
        return self._clients[service]

    @property
    def call_bound(self) -> float:
        """The longest one attempt of one call can last (its connect and read timeouts)."""
        return self.connect_timeout + self.read_timeout

    def _fenced(self, event_name: str = "", **_: Any) -> None:
        """Before each attempt (botocore's retries included) of a call that changes something: the fence."""
        fence = self.fence
        operation = event_name.rsplit(".", 1)[-1]
        if fence is not None and not operation.startswith(READS):
            fence(operation)

    def assumed(self, role_arn: str, session_name: str) -> AwsContext:
        """A context in another account: this one's credentials assume `role_arn` (a fleet target's `role_arn`)."""
        from orchestrator.aws.errors import aws_call

        with aws_call("sts:AssumeRole"):
            creds = self.client("sts").assume_role(RoleArn=role_arn, RoleSessionName=session_name[:64])["Credentials"]
        return AwsContext(
            region=self.region,
            endpoint_url=self.endpoint_url,
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
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
