"""DynamoDB adapter of the KeyStore port, in the API's table.

| item    | PK                     | SK    | GSI1PK / GSI1SK                    |
|---------|------------------------|-------|------------------------------------|
| API key | ``APIKEY#<sha256 hex>``| ``KEY``| ``APIKEYS`` / ``<created>#<key_id>`` |

The authorizer's role may only GetItem items whose key begins with ``APIKEY#`` (an IAM
``dynamodb:LeadingKeys`` condition in template.yaml), so it can read nothing else.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from ..errors import Conflict
from ..models.api_keys import ApiKeyRecord
from .dynamodb_store import query_all

KEY_SK = "KEY"
KEYS_INDEX_PK = "APIKEYS"


def key_pk(key_hash: str) -> str:
    return f"APIKEY#{key_hash}"


class DynamoDBKeyStore:
    def __init__(self, client: Any, table_name: str) -> None:
        self.client = client
        self.table = table_name

    def get_key(self, key_hash: str) -> ApiKeyRecord | None:
        item = self.client.get_item(TableName=self.table, Key={"PK": {"S": key_pk(key_hash)}, "SK": {"S": KEY_SK}},
                                    ConsistentRead=True).get("Item")
        return ApiKeyRecord.model_validate_json(item["data"]["S"]) if item else None

    def put_key(self, key_hash: str, record: ApiKeyRecord) -> None:
        try:
            self.client.put_item(TableName=self.table, ConditionExpression="attribute_not_exists(PK)", Item={
                "PK": {"S": key_pk(key_hash)}, "SK": {"S": KEY_SK}, "key_id": {"S": record.key_id},
                "GSI1PK": {"S": KEYS_INDEX_PK}, "GSI1SK": {"S": f"{record.created_at:012d}#{record.key_id}"},
                "data": {"S": record.model_dump_json()},
            })
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise Conflict("an API key with this hash already exists") from exc
            raise

    def _items(self) -> list[dict[str, Any]]:
        return query_all(self.client, TableName=self.table, IndexName="GSI1", KeyConditionExpression="GSI1PK = :pk",
                         ExpressionAttributeValues={":pk": {"S": KEYS_INDEX_PK}})

    def list_keys(self) -> list[ApiKeyRecord]:
        return [ApiKeyRecord.model_validate_json(item["data"]["S"]) for item in self._items()]

    def revoke_key(self, key_id: str, now: int) -> ApiKeyRecord | None:
        for item in self._items():
            if item["key_id"]["S"] != key_id:
                continue
            record = ApiKeyRecord.model_validate_json(item["data"]["S"])
            if record.revoked_at is None:
                record = record.model_copy(update={"revoked_at": now})
            try:
                self.client.update_item(TableName=self.table, Key={"PK": item["PK"], "SK": item["SK"]},
                                        UpdateExpression="SET #d = :d", ConditionExpression="attribute_exists(PK)",
                                        ExpressionAttributeNames={"#d": "data"},
                                        ExpressionAttributeValues={":d": {"S": record.model_dump_json()}})
            except ClientError as exc:
                if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                    return None
                raise
            return record
        return None
