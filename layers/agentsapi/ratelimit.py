"""Per-workspace rate limits: a fixed one-minute window counted in DynamoDB.

One conditional UpdateItem per request (``ADD n 1`` only while ``n < limit``) keeps the count
exact across every concurrent Lambda, which an in-memory counter could not. Counter items carry
the table's TTL attribute and vanish a few minutes after their window. API Gateway's stage
throttling stays in front as the coarse, account-wide guard.

| item    | PK                 | SK                      |
|---------|--------------------|-------------------------|
| counter | ``RATE#<ws>``      | ``<window start epoch>``|
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from .errors import RateLimited

WINDOW_S = 60


class RateLimiter:
    def __init__(self, client: Any, table_name: str, default_per_minute: int,
                 clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.table = table_name
        self.default_per_minute = default_per_minute
        self.clock = clock

    def check(self, workspace: str, per_minute: int | None = None) -> None:
        """Count one request; raise RateLimited when the workspace's allowance is spent. 0 = no limit."""
        limit = per_minute if per_minute is not None else self.default_per_minute
        if limit <= 0:
            return
        now = self.clock()
        window = int(now) - int(now) % WINDOW_S
        try:
            self.client.update_item(
                TableName=self.table, Key={"PK": {"S": f"RATE#{workspace}"}, "SK": {"S": str(window)}},
                UpdateExpression="ADD n :one SET expires_at = if_not_exists(expires_at, :exp)",
                ConditionExpression="attribute_not_exists(n) OR n < :limit",
                ExpressionAttributeValues={":one": {"N": "1"}, ":limit": {"N": str(limit)},
                                           ":exp": {"N": str(window + 5 * WINDOW_S)}})
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            retry_after = max(1, window + WINDOW_S - int(now))
            raise RateLimited(f"Rate limit exceeded: {limit} requests per minute for this workspace; "
                              f"retry in {retry_after} s", retry_after_s=retry_after) from exc
