"""DynamoDB adapter of the Store port: one table, single-table keys, conditional writes.

Key schema (also in the README):

| item                | PK                       | SK           | GSI1PK / GSI1SK                      |
|---------------------|--------------------------|--------------|--------------------------------------|
| agent head          | ``WS#<ws>#AGENT#<id>``   | ``HEAD``     | ``WS#<ws>#AGENTS`` / ``<created>#<id>`` |
| agent version       | ``WS#<ws>#AGENT#<id>``   | ``V#000003`` |                                      |
| agent alias         | ``WS#<ws>#AGENT#<id>``   | ``ALIAS#<n>``|                                      |
| conversation head   | ``WS#<ws>#CONV#<id>``    | ``HEAD``     | ``WS#<ws>#CONVS`` / ``<created>#<id>``  |
| conversation entry  | ``WS#<ws>#CONV#<id>``    | ``E#000042`` |                                      |

Each item keeps its model as JSON in ``data`` (re-validated on every read) plus the few numeric
attributes that conditions need (``latest`` on agent heads, ``count`` on conversation heads).
A turn's entries go in one TransactWriteItems guarded by ``count = :expected``: two concurrent
appends cannot both win, and neither can lose or interleave entries.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from botocore.exceptions import ClientError

from ..errors import Conflict, InvalidRequest
from ..models.agents import AgentAlias, AgentHead, AgentVersion
from ..models.conversations import Conversation
from ..models.entries import Entry, StoredEntry
from ..models.files import FileRecord
from ..store import Page

HEAD = "HEAD"
GSI1 = "GSI1"
TOKEN_ATTRIBUTES = {"PK", "SK", "GSI1PK", "GSI1SK"}  # a GSI1 LastEvaluatedKey
MAX_TRANSACTION_ITEMS = 100


def agent_pk(ws: str, agent_id: str) -> str:
    return f"WS#{ws}#AGENT#{agent_id}"


def conversation_pk(ws: str, conversation_id: str) -> str:
    return f"WS#{ws}#CONV#{conversation_id}"


def version_sk(version: int) -> str:
    return f"V#{version:06d}"


def entry_sk(sequence: int) -> str:
    return f"E#{sequence:06d}"


def query_all(client: Any, **kwargs: Any) -> list[dict[str, Any]]:
    """Every item a Query matches, following LastEvaluatedKey (boto3's paginator)."""
    return [item for page in client.get_paginator("query").paginate(**kwargs) for item in page.get("Items", [])]


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


class DynamoDBStore:
    def __init__(self, client: Any, table_name: str) -> None:
        self.client = client
        self.table = table_name
        self.requests = 0
        client.meta.events.register("before-call.dynamodb", self._count)

    def _count(self, **_: Any) -> None:
        self.requests += 1

    # -- helpers ------------------------------------------------------------------------------
    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        response = self.client.get_item(TableName=self.table, Key={"PK": _s(pk), "SK": _s(sk)}, ConsistentRead=True)
        return response.get("Item")

    def _query_all(self, pk: str, prefix: str, keys_only: bool = False) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "PK = :pk",
            "ExpressionAttributeValues": {":pk": _s(pk)},
            "ConsistentRead": True,
        }
        if prefix:
            kwargs["KeyConditionExpression"] += " AND begins_with(SK, :prefix)"
            kwargs["ExpressionAttributeValues"][":prefix"] = _s(prefix)
        if keys_only:
            kwargs["ProjectionExpression"] = "PK, SK"
        return query_all(self.client, **kwargs)

    def _transact(self, actions: list[dict[str, Any]], conflict_message: str) -> None:
        try:
            self.client.transact_write_items(TransactItems=actions)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("TransactionCanceledException", "ConditionalCheckFailedException"):
                raise Conflict(conflict_message) from exc
            raise

    def _delete_partition(self, pk: str) -> None:
        keys = self._query_all(pk, "", keys_only=True)
        # The head goes first so readers see the object as gone at once.
        keys.sort(key=lambda k: k["SK"]["S"] != HEAD)
        if keys and keys[0]["SK"]["S"] == HEAD:
            self.client.delete_item(TableName=self.table, Key=keys.pop(0))
        for start in range(0, len(keys), 25):
            requests = [{"DeleteRequest": {"Key": key}} for key in keys[start : start + 25]]
            pending: dict[str, Any] = {self.table: requests}
            while pending:
                pending = self.client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}

    def _listing(self, gsi_pk: str, limit: int, token: str | None) -> tuple[list[dict[str, Any]], str | None]:
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": GSI1,
            "KeyConditionExpression": "GSI1PK = :pk",
            "ExpressionAttributeValues": {":pk": _s(gsi_pk)},
            "ScanIndexForward": False,  # newest first
            "Limit": limit,
        }
        if token:
            kwargs["ExclusiveStartKey"] = _decode_token(token, gsi_pk)
        response = self.client.query(**kwargs)
        last = response.get("LastEvaluatedKey")
        return response.get("Items", []), _encode_token(last) if last else None

    # -- agents -------------------------------------------------------------------------------
    def _agent_head_item(self, ws: str, head: AgentHead) -> dict[str, Any]:
        return {
            "PK": _s(agent_pk(ws, head.id)),
            "SK": _s(HEAD),
            "GSI1PK": _s(f"WS#{ws}#AGENTS"),
            "GSI1SK": _s(f"{head.created_at.isoformat()}#{head.id}"),
            "latest": _n(head.latest_version),
            "data": _s(head.model_dump_json()),
        }

    def _version_item(self, ws: str, version: AgentVersion) -> dict[str, Any]:
        return {
            "PK": _s(agent_pk(ws, version.id)),
            "SK": _s(version_sk(version.version)),
            "data": _s(version.model_dump_json(by_alias=True)),
        }

    def create_agent(self, ws: str, head: AgentHead, version: AgentVersion) -> None:
        self._transact(
            [
                {"Put": {"TableName": self.table, "Item": self._agent_head_item(ws, head),
                         "ConditionExpression": "attribute_not_exists(PK)"}},
                {"Put": {"TableName": self.table, "Item": self._version_item(ws, version),
                         "ConditionExpression": "attribute_not_exists(PK)"}},
            ],
            "agent already exists",
        )

    def add_agent_version(self, ws: str, head: AgentHead, version: AgentVersion, expected_latest: int) -> None:
        self._transact(
            [
                {"Put": {"TableName": self.table, "Item": self._agent_head_item(ws, head),
                         "ConditionExpression": "latest = :expected",
                         "ExpressionAttributeValues": {":expected": _n(expected_latest)}}},
                {"Put": {"TableName": self.table, "Item": self._version_item(ws, version),
                         "ConditionExpression": "attribute_not_exists(PK)"}},
            ],
            "the agent was updated concurrently; retry the update",
        )

    def set_active_version(self, ws: str, head: AgentHead) -> None:
        try:
            self.client.put_item(TableName=self.table, Item=self._agent_head_item(ws, head),
                                 ConditionExpression="latest = :expected",
                                 ExpressionAttributeValues={":expected": _n(head.latest_version)})
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise Conflict("the agent was updated concurrently; retry") from exc
            raise

    def get_agent_head(self, ws: str, agent_id: str) -> AgentHead | None:
        item = self._get(agent_pk(ws, agent_id), HEAD)
        return AgentHead.model_validate_json(item["data"]["S"]) if item else None

    def get_agent_version(self, ws: str, agent_id: str, version: int) -> AgentVersion | None:
        item = self._get(agent_pk(ws, agent_id), version_sk(version))
        return AgentVersion.model_validate_json(item["data"]["S"]) if item else None

    def list_agent_versions(self, ws: str, agent_id: str) -> list[AgentVersion]:
        items = self._query_all(agent_pk(ws, agent_id), "V#")
        return [AgentVersion.model_validate_json(i["data"]["S"]) for i in items]

    def list_agents(self, ws: str, limit: int, token: str | None) -> Page:
        items, next_token = self._listing(f"WS#{ws}#AGENTS", limit, token)
        return Page([AgentHead.model_validate_json(i["data"]["S"]) for i in items], next_token)

    def delete_agent(self, ws: str, agent_id: str) -> None:
        self._delete_partition(agent_pk(ws, agent_id))

    def put_alias(self, ws: str, agent_id: str, alias: AgentAlias) -> None:
        self.client.put_item(
            TableName=self.table,
            Item={"PK": _s(agent_pk(ws, agent_id)), "SK": _s(f"ALIAS#{alias.alias}"), "data": _s(alias.model_dump_json())},
        )

    def get_alias(self, ws: str, agent_id: str, name: str) -> AgentAlias | None:
        item = self._get(agent_pk(ws, agent_id), f"ALIAS#{name}")
        return AgentAlias.model_validate_json(item["data"]["S"]) if item else None

    def list_aliases(self, ws: str, agent_id: str) -> list[AgentAlias]:
        return [AgentAlias.model_validate_json(i["data"]["S"]) for i in self._query_all(agent_pk(ws, agent_id), "ALIAS#")]

    def delete_alias(self, ws: str, agent_id: str, name: str) -> bool:
        response = self.client.delete_item(
            TableName=self.table, Key={"PK": _s(agent_pk(ws, agent_id)), "SK": _s(f"ALIAS#{name}")}, ReturnValues="ALL_OLD"
        )
        return "Attributes" in response

    # -- conversations ------------------------------------------------------------------------
    def _conversation_head_item(self, ws: str, conversation: Conversation) -> dict[str, Any]:
        return {
            "PK": _s(conversation_pk(ws, conversation.id)),
            "SK": _s(HEAD),
            "GSI1PK": _s(f"WS#{ws}#CONVS"),
            "GSI1SK": _s(f"{conversation.created_at.isoformat()}#{conversation.id}"),
            "count": _n(conversation.entry_count),
            "data": _s(conversation.model_dump_json(by_alias=True)),
        }

    def _entry_puts(self, ws: str, conversation_id: str, entries: list[Entry], first_sequence: int) -> list[dict[str, Any]]:
        return [
            {"Put": {"TableName": self.table, "ConditionExpression": "attribute_not_exists(PK)", "Item": {
                "PK": _s(conversation_pk(ws, conversation_id)),
                "SK": _s(entry_sk(first_sequence + offset)),
                "entry_id": _s(entry.id or ""),
                "data": _s(StoredEntry(entry=entry).model_dump_json(by_alias=True)),
            }}}
            for offset, entry in enumerate(entries)
        ]

    def create_conversation(self, ws: str, conversation: Conversation, entries: list[Entry]) -> None:
        first = entries[: MAX_TRANSACTION_ITEMS - 1]
        head = conversation.model_copy(update={"entry_count": len(first)})
        actions = [{"Put": {"TableName": self.table, "Item": self._conversation_head_item(ws, head),
                            "ConditionExpression": "attribute_not_exists(PK)"}}]
        self._transact(actions + self._entry_puts(ws, conversation.id, first, 0), "conversation already exists")
        if len(entries) > len(first):
            self.append_entries(ws, conversation, entries[len(first):], expected_count=len(first))

    def append_entries(self, ws: str, conversation: Conversation, entries: list[Entry], expected_count: int) -> None:
        done = 0
        while True:
            chunk = entries[done : done + MAX_TRANSACTION_ITEMS - 1]
            count = expected_count + done + len(chunk)
            last_chunk = done + len(chunk) >= len(entries)
            # The head carries the new count only; its other fields change with the last chunk.
            head = conversation.model_copy(update={"entry_count": count}) if last_chunk else None
            update = {"TableName": self.table, "Key": {"PK": _s(conversation_pk(ws, conversation.id)), "SK": _s(HEAD)},
                      "ConditionExpression": "#count = :expected",
                      "ExpressionAttributeNames": {"#count": "count"},
                      "ExpressionAttributeValues": {":expected": _n(expected_count + done), ":count": _n(count)}}
            if head is not None:
                update["UpdateExpression"] = "SET #count = :count, #data = :data"
                update["ExpressionAttributeNames"]["#data"] = "data"
                update["ExpressionAttributeValues"][":data"] = _s(head.model_dump_json(by_alias=True))
            else:
                update["UpdateExpression"] = "SET #count = :count"
            self._transact(
                [{"Update": update}, *self._entry_puts(ws, conversation.id, chunk, expected_count + done)],
                "the conversation was changed by a concurrent request; retry",
            )
            done += len(chunk)
            if last_chunk:
                return

    def get_conversation(self, ws: str, conversation_id: str) -> Conversation | None:
        item = self._get(conversation_pk(ws, conversation_id), HEAD)
        return Conversation.model_validate_json(item["data"]["S"]) if item else None

    def list_conversations(self, ws: str, limit: int, token: str | None) -> Page:
        items, next_token = self._listing(f"WS#{ws}#CONVS", limit, token)
        return Page([Conversation.model_validate_json(i["data"]["S"]) for i in items], next_token)

    def get_entries(self, ws: str, conversation_id: str) -> list[Entry]:
        items = self._query_all(conversation_pk(ws, conversation_id), "E#")
        return [StoredEntry.model_validate_json(i["data"]["S"]).entry for i in items]

    # -- files --------------------------------------------------------------------------------
    def put_file(self, ws: str, record: FileRecord) -> None:
        try:
            self.client.put_item(TableName=self.table, Item={
                "PK": _s(file_pk(ws, record.id)), "SK": _s(HEAD), "GSI1PK": _s(f"WS#{ws}#FILES"),
                "GSI1SK": _s(f"{record.created_at:012d}#{record.id}"), "data": _s(record.model_dump_json()),
            }, ConditionExpression="attribute_not_exists(PK)")
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise Conflict("file already exists") from exc
            raise

    def get_file(self, ws: str, file_id: str) -> FileRecord | None:
        item = self._get(file_pk(ws, file_id), HEAD)
        return FileRecord.model_validate_json(item["data"]["S"]) if item else None

    def list_files(self, ws: str, limit: int, token: str | None) -> Page:
        items, next_token = self._listing(f"WS#{ws}#FILES", limit, token)
        return Page([FileRecord.model_validate_json(i["data"]["S"]) for i in items], next_token)  # type: ignore[arg-type]

    def delete_file(self, ws: str, file_id: str) -> bool:
        response = self.client.delete_item(TableName=self.table, Key={"PK": _s(file_pk(ws, file_id)), "SK": _s(HEAD)},
                                           ReturnValues="ALL_OLD")
        return "Attributes" in response

    def delete_conversation(self, ws: str, conversation_id: str) -> bool:
        if self._get(conversation_pk(ws, conversation_id), HEAD) is None:
            return False
        self._delete_partition(conversation_pk(ws, conversation_id))
        return True


def file_pk(ws: str, file_id: str) -> str:
    return f"WS#{ws}#FILE#{file_id}"


def _encode_token(key: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, sort_keys=True).encode()).decode()


def _decode_token(token: str, expected_gsi_pk: str) -> dict[str, Any]:
    try:
        key = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (binascii.Error, ValueError, UnicodeError) as exc:
        raise InvalidRequest("page_token is not a token this API returned", param="page_token") from exc
    # A token is only good for the listing (and workspace) that issued it, and must be a whole
    # GSI key: a partial one is a ValidationException from DynamoDB (and silently ends moto's listing).
    if (not isinstance(key, dict) or key.get("GSI1PK") != {"S": expected_gsi_pk} or set(key) != TOKEN_ATTRIBUTES
            or not all(isinstance(value, dict) and list(value) == ["S"] and isinstance(value["S"], str)
                       for value in key.values())):
        raise InvalidRequest("page_token is not a token this API returned", param="page_token")
    return key


__all__ = ["DynamoDBStore"]
