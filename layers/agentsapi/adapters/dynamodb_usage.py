"""DynamoDB adapter of the quota's UsageLedger: one item per workspace.

| item  | PK                 | SK      | GSI1PK / GSI1SK    | attributes                    |
|-------|--------------------|---------|--------------------|-------------------------------|
| usage | ``WS#<ws>#USAGE``  | ``USAGE`` | ``USAGE`` / ``<ws>`` | ``files``, ``sessions``, ``total`` |

A condition expression cannot add attributes, so the item keeps ``total`` beside the kinds: a
charge is one UpdateItem that ADDs to both while ``total <= quota - n`` held before it, exact
across every concurrent function. The GSI lists the workspaces for the scheduled recount.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from ..quota import KINDS

SK = "USAGE"
LISTING = "USAGE"


def usage_pk(ws: str) -> str:
    return f"WS#{ws}#USAGE"


def _kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"unknown usage kind {kind!r}")
    return kind


def _failed_condition(exc: ClientError) -> bool:
    return exc.response["Error"]["Code"] == "ConditionalCheckFailedException"


class DynamoDBUsageLedger:
    def __init__(self, client: Any, table_name: str) -> None:
        self.client = client
        self.table = table_name

    def _key(self, ws: str) -> dict[str, Any]:
        return {"PK": {"S": usage_pk(ws)}, "SK": {"S": SK}}

    def charge(self, ws: str, kind: str, nbytes: int, quota: int | None) -> bool:
        _kind(kind)
        if quota is not None and nbytes > quota:
            return False
        condition: dict[str, Any] = {}
        if quota is not None:
            condition = {"ConditionExpression": "attribute_not_exists(#total) OR #total <= :room"}
        values: dict[str, Any] = {":n": {"N": str(nbytes)}, ":listing": {"S": LISTING}, ":ws": {"S": ws}}
        if quota is not None:
            values[":room"] = {"N": str(quota - nbytes)}
        try:
            self.client.update_item(
                TableName=self.table, Key=self._key(ws),
                UpdateExpression="ADD #kind :n, #total :n SET GSI1PK = :listing, GSI1SK = :ws",
                ExpressionAttributeNames={"#kind": kind, "#total": "total"},
                ExpressionAttributeValues=values, **condition)
        except ClientError as exc:
            if _failed_condition(exc):
                return False
            raise
        return True

    def credit(self, ws: str, kind: str, nbytes: int) -> None:
        _kind(kind)
        try:
            self.client.update_item(
                TableName=self.table, Key=self._key(ws), UpdateExpression="ADD #kind :minus, #total :minus",
                ConditionExpression="#kind >= :n", ExpressionAttributeNames={"#kind": kind, "#total": "total"},
                ExpressionAttributeValues={":n": {"N": str(nbytes)}, ":minus": {"N": str(-nbytes)}})
        except ClientError as exc:
            if not _failed_condition(exc):
                raise
            # Less was counted than is credited (a recount came in between): that kind is empty now.
            held = self.usage(ws)
            held[kind] = 0
            self.set_usage(ws, held)

    def usage(self, ws: str) -> dict[str, int]:
        item = self.client.get_item(TableName=self.table, Key=self._key(ws), ConsistentRead=True).get("Item") or {}
        return {kind: max(0, int(item[kind]["N"])) if kind in item else 0 for kind in KINDS}

    def set_usage(self, ws: str, held: dict[str, int]) -> None:
        values = {kind: max(0, int(held.get(kind, 0))) for kind in KINDS}
        self.client.put_item(TableName=self.table, Item={
            **self._key(ws), "GSI1PK": {"S": LISTING}, "GSI1SK": {"S": ws},
            **{kind: {"N": str(value)} for kind, value in values.items()},
            "total": {"N": str(sum(values.values()))}})

    def workspaces(self) -> list[str]:
        paginator = self.client.get_paginator("query")
        found: list[str] = []
        for page in paginator.paginate(TableName=self.table, IndexName="GSI1",
                                       KeyConditionExpression="GSI1PK = :listing",
                                       ExpressionAttributeValues={":listing": {"S": LISTING}}):
            found.extend(item["GSI1SK"]["S"] for item in page.get("Items", []))
        return found
