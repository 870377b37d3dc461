"""DynamoDB in the state store's words: one table of string keys `pk`/`sk`, its items as plain values (boto3's
TypeSerializer/TypeDeserializer marshal them), strongly consistent reads, atomic counters, conditional and
all-or-nothing writes, batches that retry what DynamoDB left unprocessed; and creating the table."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from orchestrator.aws.errors import aws_call
from orchestrator.errors import NotFound, UsageError

if TYPE_CHECKING:
    from orchestrator.aws.session import AwsContext

KEY_SCHEMA = [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
ATTRIBUTES = [{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}]
BATCH_GET = 100  # BatchGetItem's limit per request
BATCH_WRITE = 25  # BatchWriteItem's limit per request
CONDITION_FAILED = "ConditionalCheckFailedException"


# ---------------------------------------------------------------- typed attribute values
def value(v: Any) -> dict[str, Any]:
    """One plain value (str, bool, int, float) as a typed attribute value."""
    from boto3.dynamodb.types import TypeSerializer

    if isinstance(v, float):
        # TypeSerializer refuses floats (inexact): their shortest repr is the decimal the caller meant, written
        # without an exponent (repr(1e16) is '1e+16', which would read back as a float, not as the int it is).
        v = Decimal(format(Decimal(repr(v)), "f"))
    elif not isinstance(v, (str, bool, int)):
        raise TypeError(f"cannot store {type(v).__name__} in the state table")
    return dict(TypeSerializer().serialize(v))


def item(**attrs: Any) -> dict[str, Any]:
    """A typed item; None values are left out (read back as None)."""
    return {k: value(v) for k, v in attrs.items() if v is not None}


def plain(typed: dict[str, Any]) -> dict[str, Any]:
    """A typed item as plain values: numbers as int when integral in form, else float."""
    from boto3.dynamodb.types import TypeDeserializer

    out: dict[str, Any] = {}
    for k, tv in typed.items():
        v = TypeDeserializer().deserialize(tv)
        if isinstance(v, Decimal):
            v = int(v) if str(v).lstrip("-").isdigit() else float(v)
        out[k] = v
    return out


def key(pk: str, sk: str) -> dict[str, Any]:
    """The typed primary key of an item."""
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def _code(exc: Exception) -> str:
    return getattr(exc, "response", {}).get("Error", {}).get("Code", "")


def _cancelled_by_condition(exc: Exception) -> bool:
    if _code(exc) == CONDITION_FAILED:
        return True
    reasons = getattr(exc, "response", {}).get("CancellationReasons", [])
    return _code(exc) == "TransactionCanceledException" and any(
        r.get("Code") == "ConditionalCheckFailed" for r in reasons
    )


class DynamoTable:
    """One table: items by key, queries by key prefix, counters, conditional and transactional writes."""

    def __init__(self, client: Any, name: str) -> None:
        self.client = client
        self.name = name

    @classmethod
    def of(cls, aws: AwsContext, name: str) -> DynamoTable:
        """The table through the context's DynamoDB client."""
        return cls(aws.client("dynamodb"), name)

    def get(self, pk: str, sk: str) -> dict[str, Any] | None:
        """One item (strongly consistent), or None."""
        with aws_call("dynamodb:GetItem"):
            found = self.client.get_item(TableName=self.name, Key=key(pk, sk), ConsistentRead=True).get("Item")
        return plain(found) if found else None

    def query(
        self,
        pk: str,
        prefix: str,
        newest_first: bool = False,
        limit: int | None = None,
        filters: dict[str, str] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Items of a partition whose sort key starts with prefix, every page, stopping after `limit` matches."""
        kw: dict[str, Any] = {
            "TableName": self.name,
            "ConsistentRead": True,
            "ScanIndexForward": not newest_first,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {":pk": {"S": pk}, ":prefix": {"S": prefix}},
        }
        if filters:
            kw["FilterExpression"] = " AND ".join(f"#f{i} = :f{i}" for i in range(len(filters)))
            kw["ExpressionAttributeNames"] = {f"#f{i}": name for i, name in enumerate(filters)}
            kw["ExpressionAttributeValues"].update({f":f{i}": {"S": v} for i, v in enumerate(filters.values())})
        if limit is not None and not filters:
            kw["Limit"] = limit
        seen = 0
        while True:
            with aws_call("dynamodb:Query"):
                page = self.client.query(**kw)
            for found in page.get("Items", []):
                yield plain(found)
                seen += 1
                if limit is not None and seen >= limit:
                    return
            if "LastEvaluatedKey" not in page:
                return
            kw["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def batch_get(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
        """Items by key (missing ones are absent), every chunk, retrying unprocessed keys."""
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for i in range(0, len(keys), BATCH_GET):
            request = {self.name: {"Keys": [key(pk, sk) for pk, sk in keys[i : i + BATCH_GET]], "ConsistentRead": True}}
            while request:
                with aws_call("dynamodb:BatchGetItem"):
                    resp = self.client.batch_get_item(RequestItems=request)
                for typed in resp.get("Responses", {}).get(self.name, []):
                    d = plain(typed)
                    found[(d["pk"], d["sk"])] = d
                request = resp.get("UnprocessedKeys") or {}
        return found

    def next(self, pk: str, sk: str) -> int:
        """The next value of an atomic counter: unique across every writer of the table."""
        with aws_call("dynamodb:UpdateItem"):
            resp = self.client.update_item(
                TableName=self.name,
                Key=key(pk, sk),
                UpdateExpression="ADD #n :one",
                ExpressionAttributeNames={"#n": "n"},
                ExpressionAttributeValues={":one": {"N": "1"}},
                ReturnValues="UPDATED_NEW",
            )
        return int(resp["Attributes"]["n"]["N"])

    def transact(self, operation: str, items: list[dict[str, Any]]) -> bool:
        """One all-or-nothing write; False if a condition failed (nothing was written)."""
        from botocore.exceptions import ClientError

        with aws_call(operation):
            try:
                self.client.transact_write_items(TransactItems=items)
            except ClientError as exc:
                if _cancelled_by_condition(exc):
                    return False
                raise
        return True

    def conditional(self, operation: str, **request: Any) -> tuple[bool, dict[str, Any]]:
        """One conditional write (`operation`: UpdateItem, PutItem or DeleteItem on this table): (True, its
        response), or (False, the error's response) when its condition did not hold. Any other error is raised."""
        from botocore.exceptions import ClientError

        call = {"UpdateItem": self.client.update_item, "PutItem": self.client.put_item}.get(
            operation, self.client.delete_item
        )
        with aws_call(f"dynamodb:{operation}"):
            try:
                return True, call(TableName=self.name, **request)
            except ClientError as exc:
                if _code(exc) != CONDITION_FAILED:
                    raise
                return False, dict(exc.response)

    def put(self, typed: dict[str, Any], **request: Any) -> None:
        """Write one item (PutItem), with the request's condition if any."""
        with aws_call("dynamodb:PutItem"):
            self.client.put_item(TableName=self.name, Item=typed, **request)

    def batch_put(self, items: list[dict[str, Any]]) -> None:
        """Write items, 25 per BatchWriteItem, retrying what DynamoDB left unprocessed."""
        puts = [{"PutRequest": {"Item": typed}} for typed in items]
        for i in range(0, len(puts), BATCH_WRITE):
            request: dict[str, Any] = {self.name: puts[i : i + BATCH_WRITE]}
            while request:
                with aws_call("dynamodb:BatchWriteItem"):
                    resp = self.client.batch_write_item(RequestItems=request)
                request = resp.get("UnprocessedItems") or {}

    # ---------------------------------------------------------------- the table itself
    def create(self, wait_delay: float = 2.0, wait_attempts: int = 150) -> dict[str, Any]:
        """Create the table if it does not exist (idempotent) and wait until it is ACTIVE."""
        from botocore.exceptions import ClientError

        created = True
        with aws_call("dynamodb:CreateTable"):
            try:
                self.client.create_table(
                    TableName=self.name,
                    KeySchema=KEY_SCHEMA,
                    AttributeDefinitions=ATTRIBUTES,
                    BillingMode="PAY_PER_REQUEST",
                )
            except ClientError as exc:
                if _code(exc) != "ResourceInUseException":
                    raise
                created = False  # it exists already (or is being created by someone else): wait for it all the same
        with aws_call("dynamodb:DescribeTable"):
            self.client.get_waiter("table_exists").wait(
                TableName=self.name, WaiterConfig={"Delay": wait_delay, "MaxAttempts": wait_attempts}
            )
            desc = self.client.describe_table(TableName=self.name)["Table"]
        keys = sorted((k["AttributeName"], k["KeyType"]) for k in desc.get("KeySchema", []))
        if keys != [("pk", "HASH"), ("sk", "RANGE")]:
            raise UsageError(
                f"DynamoDB table {self.name} exists but its key is {keys}, not pk (HASH) + sk (RANGE) strings: "
                "it is not a snail state table; choose another state.table"
            )
        return {"table": self.name, "created": created, "status": desc.get("TableStatus"), "arn": desc.get("TableArn")}

    def status(self) -> str | None:
        """The table's status (ACTIVE, CREATING, ...), or None if it does not exist."""
        try:
            with aws_call("dynamodb:DescribeTable"):
                return self.client.describe_table(TableName=self.name)["Table"].get("TableStatus")
        except NotFound:
            return None
