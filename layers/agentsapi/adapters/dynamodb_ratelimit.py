"""DynamoDB adapter of the rate limiter's WindowCounter: one conditional UpdateItem per request.

``ADD n 1`` only while ``n < limit`` keeps the count exact across every concurrent Lambda. Counter
items carry the table's TTL attribute (``expires_at``) and vanish a few minutes after their window.

| item    | PK                 | SK                      |
|---------|--------------------|-------------------------|
| counter | ``RATE#<ws>``      | ``<window start epoch>``|
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError


class DynamoDBWindowCounter:
    def __init__(self, client: Any, table_name: str) -> None:
        self.client = client
        self.table = table_name

    def count(self, workspace: str, window_start: int, limit: int, expires_at: int) -> bool:
        try:
            self.client.update_item(
                TableName=self.table, Key={"PK": {"S": f"RATE#{workspace}"}, "SK": {"S": str(window_start)}},
                UpdateExpression="ADD n :one SET expires_at = if_not_exists(expires_at, :exp)",
                ConditionExpression="attribute_not_exists(n) OR n < :limit",
                ExpressionAttributeValues={":one": {"N": "1"}, ":limit": {"N": str(limit)}, ":exp": {"N": str(expires_at)}})
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True
