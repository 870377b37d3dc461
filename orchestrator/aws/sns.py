"""SNS: publish a notification to a topic (notify: - sns: ARN), in the topic's own region."""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchestrator.aws.errors import aws_call

if TYPE_CHECKING:
    from orchestrator.aws.session import AwsContext


class SnsClient:
    """One topic region's SNS, with a short timeout and a single attempt (notify retries on its own terms)."""

    def __init__(self, aws: AwsContext, region: str, timeout: float) -> None:
        from botocore.config import Config

        self._sns = aws.session().client(
            "sns",
            region_name=region,
            endpoint_url=aws.endpoint_url,
            config=Config(connect_timeout=timeout, read_timeout=timeout, retries={"total_max_attempts": 1}),
        )

    def publish(self, topic_arn: str, subject: str, message: str, attributes: dict[str, str]) -> str:
        """Publish one message; its MessageId ("?" when SNS names none)."""
        with aws_call("sns:Publish"):
            out = self._sns.publish(
                TopicArn=topic_arn,
                Subject=subject,
                Message=message,
                MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
            )
        return str(out.get("MessageId", "?"))
