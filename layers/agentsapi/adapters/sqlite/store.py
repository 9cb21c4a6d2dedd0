"""SQLite adapter of the Store port, with the DynamoDB adapter's semantics (the contract suite checks both).

Conditional writes are single ``UPDATE ... WHERE latest/count = ?`` statements inside the
database's ``BEGIN IMMEDIATE`` transactions: the writer lock is taken before the condition is
read, so of two concurrent appends exactly one matches and the other raises the same Conflict
DynamoDB's ``TransactionCanceledException`` becomes. A turn's entries land in the same transaction
as the head's new count (DynamoDB needs one transaction per 99 entries; one here is simply atomic).
"""

from __future__ import annotations

import base64
import binascii
import json
import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

from ...errors import Conflict, InvalidRequest
from ...models.agents import AgentAlias, AgentHead, AgentVersion
from ...models.conversations import Conversation
from ...models.entries import Entry, StoredEntry
from ...models.files import FileRecord
from ...store import Page
from .db import Database
from .schema import STORE_MIGRATIONS

T = TypeVar("T")

# The same messages as the DynamoDB adapter: they reach clients in 409 bodies.
AGENT_EXISTS = "agent already exists"
AGENT_VERSION_RACE = "the agent was updated concurrently; retry the update"
AGENT_ACTIVE_RACE = "the agent was updated concurrently; retry"
CONVERSATION_EXISTS = "conversation already exists"
CONVERSATION_RACE = "the conversation was changed by a concurrent request; retry"
FILE_EXISTS = "file already exists"
BAD_TOKEN = "page_token is not a token this API returned"

INSERT_VERSION = "INSERT INTO agent_versions (ws, agent_id, version, data) VALUES (?, ?, ?, ?)"
INSERT_ENTRY = "INSERT INTO entries (ws, conversation_id, seq, entry_id, data) VALUES (?, ?, ?, ?, ?)"

# Listings: (table, DynamoDB's GSI1PK suffix). The suffix also names the listing inside a token.
AGENTS, CONVERSATIONS, FILES = ("agents", "AGENTS"), ("conversations", "CONVS"), ("files", "FILES")


def encode_token(ws: str, listing: str, sort_key: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"ws": ws, "list": listing, "after": sort_key}).encode()).decode()


def decode_token(token: str, ws: str, listing: str) -> str:
    """The sort key to continue after; a token is only good for the listing and workspace that issued it."""
    try:
        key = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (binascii.Error, ValueError, UnicodeError) as exc:
        raise InvalidRequest(BAD_TOKEN, param="page_token") from exc
    if not isinstance(key, dict) or key.get("ws") != ws or key.get("list") != listing or not isinstance(key.get("after"), str):
        raise InvalidRequest(BAD_TOKEN, param="page_token")
    return str(key["after"])


class SqliteStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- helpers ------------------------------------------------------------------------------
    def _one(self, sql: str, args: tuple[Any, ...], load: Callable[[str], T]) -> T | None:
        # fetchall, not fetchone: an unfinished statement would keep its read snapshot open.
        rows = self.db.connection().execute(sql, args).fetchall()
        return load(rows[0][0]) if rows else None

    def _all(self, sql: str, args: tuple[Any, ...], load: Callable[[str], T]) -> list[T]:
        return [load(row[0]) for row in self.db.connection().execute(sql, args).fetchall()]

    def _listing(self, ws: str, listing: tuple[str, str], limit: int, token: str | None) -> tuple[list[str], str | None]:
        """Newest first, ``limit`` at a time; a next token only when more items follow (as moto's GSI Query)."""
        if limit < 1:  # DynamoDB refuses a Limit below 1 too; the API bounds page sizes before this
            raise ValueError("limit must be at least 1")
        table, name = listing
        if token:
            after = decode_token(token, ws, name)
            sql, args = f"SELECT data, sort_key FROM {table} WHERE ws = ? AND sort_key < ? ORDER BY sort_key DESC LIMIT ?", \
                (ws, after, limit + 1)
        else:
            sql, args = f"SELECT data, sort_key FROM {table} WHERE ws = ? ORDER BY sort_key DESC LIMIT ?", (ws, limit + 1)
        rows = self.db.connection().execute(sql, args).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        return [row[0] for row in rows], encode_token(ws, name, rows[-1][1]) if more else None

    # -- agents -------------------------------------------------------------------------------
    # Rows are serialized before a write transaction begins: the writer lock is held only for SQL.
    @staticmethod
    def _head_row(ws: str, head: AgentHead) -> tuple[Any, ...]:
        return head.latest_version, f"{head.created_at.isoformat()}#{head.id}", head.model_dump_json(), ws, head.id

    @staticmethod
    def _version_row(ws: str, version: AgentVersion) -> tuple[Any, ...]:
        return ws, version.id, version.version, version.model_dump_json(by_alias=True)

    def create_agent(self, ws: str, head: AgentHead, version: AgentVersion) -> None:
        head_row, version_row = self._head_row(ws, head), self._version_row(ws, version)
        try:
            with self.db.write() as c:
                c.execute("INSERT INTO agents (latest, sort_key, data, ws, id) VALUES (?, ?, ?, ?, ?)", head_row)
                c.execute(INSERT_VERSION, version_row)
        except sqlite3.IntegrityError as exc:
            raise Conflict(AGENT_EXISTS) from exc

    def add_agent_version(self, ws: str, head: AgentHead, version: AgentVersion, expected_latest: int) -> None:
        head_row, version_row = self._head_row(ws, head), self._version_row(ws, version)
        try:
            with self.db.write() as c:
                updated = c.execute("UPDATE agents SET latest = ?, sort_key = ?, data = ? WHERE ws = ? AND id = ? AND latest = ?",
                                    (*head_row, expected_latest))
                if updated.rowcount != 1:
                    raise Conflict(AGENT_VERSION_RACE)
                c.execute(INSERT_VERSION, version_row)
        except sqlite3.IntegrityError as exc:
            raise Conflict(AGENT_VERSION_RACE) from exc

    def set_active_version(self, ws: str, head: AgentHead) -> None:
        updated = self.db.connection().execute(
            "UPDATE agents SET latest = ?, sort_key = ?, data = ? WHERE ws = ? AND id = ? AND latest = ?",
            (*self._head_row(ws, head), head.latest_version))
        if updated.rowcount != 1:  # one statement: atomic on its own
            raise Conflict(AGENT_ACTIVE_RACE)

    def get_agent_head(self, ws: str, agent_id: str) -> AgentHead | None:
        return self._one("SELECT data FROM agents WHERE ws = ? AND id = ?", (ws, agent_id), AgentHead.model_validate_json)

    def get_agent_version(self, ws: str, agent_id: str, version: int) -> AgentVersion | None:
        return self._one("SELECT data FROM agent_versions WHERE ws = ? AND agent_id = ? AND version = ?",
                         (ws, agent_id, version), AgentVersion.model_validate_json)

    def list_agent_versions(self, ws: str, agent_id: str) -> list[AgentVersion]:
        return self._all("SELECT data FROM agent_versions WHERE ws = ? AND agent_id = ? ORDER BY version",
                         (ws, agent_id), AgentVersion.model_validate_json)

    def list_agents(self, ws: str, limit: int, token: str | None) -> Page:
        items, next_token = self._listing(ws, AGENTS, limit, token)
        return Page([AgentHead.model_validate_json(data) for data in items], next_token)

    def delete_agent(self, ws: str, agent_id: str) -> None:
        # The whole DynamoDB partition: head, versions and aliases.
        with self.db.write() as c:
            c.execute("DELETE FROM agents WHERE ws = ? AND id = ?", (ws, agent_id))
            c.execute("DELETE FROM agent_versions WHERE ws = ? AND agent_id = ?", (ws, agent_id))
            c.execute("DELETE FROM agent_aliases WHERE ws = ? AND agent_id = ?", (ws, agent_id))

    def put_alias(self, ws: str, agent_id: str, alias: AgentAlias) -> None:
        self.db.connection().execute("INSERT OR REPLACE INTO agent_aliases (ws, agent_id, name, data) VALUES (?, ?, ?, ?)",
                                     (ws, agent_id, alias.alias, alias.model_dump_json()))

    def get_alias(self, ws: str, agent_id: str, name: str) -> AgentAlias | None:
        return self._one("SELECT data FROM agent_aliases WHERE ws = ? AND agent_id = ? AND name = ?",
                         (ws, agent_id, name), AgentAlias.model_validate_json)

    def list_aliases(self, ws: str, agent_id: str) -> list[AgentAlias]:
        return self._all("SELECT data FROM agent_aliases WHERE ws = ? AND agent_id = ? ORDER BY name",
                         (ws, agent_id), AgentAlias.model_validate_json)

    def delete_alias(self, ws: str, agent_id: str, name: str) -> bool:
        deleted = self.db.connection().execute("DELETE FROM agent_aliases WHERE ws = ? AND agent_id = ? AND name = ?",
                                               (ws, agent_id, name))
        return deleted.rowcount == 1

    # -- conversations ------------------------------------------------------------------------
    @staticmethod
    def _entry_rows(ws: str, conversation_id: str, entries: list[Entry], first: int) -> list[tuple[Any, ...]]:
        return [(ws, conversation_id, first + offset, entry.id or "", StoredEntry(entry=entry).model_dump_json(by_alias=True))
                for offset, entry in enumerate(entries)]

    def create_conversation(self, ws: str, conversation: Conversation, entries: list[Entry]) -> None:
        head = conversation.model_copy(update={"entry_count": len(entries)})
        head_row = (ws, head.id, head.entry_count, f"{head.created_at.isoformat()}#{head.id}",
                    head.model_dump_json(by_alias=True))
        entry_rows = self._entry_rows(ws, head.id, entries, 0)
        try:
            with self.db.write() as c:
                c.execute("INSERT INTO conversations (ws, id, count, sort_key, data) VALUES (?, ?, ?, ?, ?)", head_row)
                c.executemany(INSERT_ENTRY, entry_rows)
        except sqlite3.IntegrityError as exc:
            raise Conflict(CONVERSATION_EXISTS) from exc

    def append_entries(self, ws: str, conversation: Conversation, entries: list[Entry], expected_count: int) -> None:
        count = expected_count + len(entries)
        head_data = conversation.model_copy(update={"entry_count": count}).model_dump_json(by_alias=True)
        entry_rows = self._entry_rows(ws, conversation.id, entries, expected_count)
        try:
            with self.db.write() as c:
                updated = c.execute("UPDATE conversations SET count = ?, data = ? WHERE ws = ? AND id = ? AND count = ?",
                                    (count, head_data, ws, conversation.id, expected_count))
                if updated.rowcount != 1:
                    raise Conflict(CONVERSATION_RACE)
                c.executemany(INSERT_ENTRY, entry_rows)
        except sqlite3.IntegrityError as exc:
            raise Conflict(CONVERSATION_RACE) from exc

    def get_conversation(self, ws: str, conversation_id: str) -> Conversation | None:
        return self._one("SELECT data FROM conversations WHERE ws = ? AND id = ?", (ws, conversation_id),
                         Conversation.model_validate_json)

    def list_conversations(self, ws: str, limit: int, token: str | None) -> Page:
        items, next_token = self._listing(ws, CONVERSATIONS, limit, token)
        return Page([Conversation.model_validate_json(data) for data in items], next_token)

    def get_entries(self, ws: str, conversation_id: str) -> list[Entry]:
        return self._all("SELECT data FROM entries WHERE ws = ? AND conversation_id = ? ORDER BY seq", (ws, conversation_id),
                         lambda data: StoredEntry.model_validate_json(data).entry)

    def delete_conversation(self, ws: str, conversation_id: str) -> bool:
        with self.db.write() as c:
            if c.execute("DELETE FROM conversations WHERE ws = ? AND id = ?", (ws, conversation_id)).rowcount != 1:
                return False
            c.execute("DELETE FROM entries WHERE ws = ? AND conversation_id = ?", (ws, conversation_id))
        return True

    # -- files --------------------------------------------------------------------------------
    def put_file(self, ws: str, record: FileRecord) -> None:
        try:
            self.db.connection().execute("INSERT INTO files (ws, id, sort_key, data) VALUES (?, ?, ?, ?)",
                                         (ws, record.id, f"{record.created_at:012d}#{record.id}", record.model_dump_json()))
        except sqlite3.IntegrityError as exc:
            raise Conflict(FILE_EXISTS) from exc

    def get_file(self, ws: str, file_id: str) -> FileRecord | None:
        return self._one("SELECT data FROM files WHERE ws = ? AND id = ?", (ws, file_id), FileRecord.model_validate_json)

    def list_files(self, ws: str, limit: int, token: str | None) -> Page:
        items, next_token = self._listing(ws, FILES, limit, token)
        return Page([FileRecord.model_validate_json(data) for data in items], next_token)  # type: ignore[arg-type]

    def delete_file(self, ws: str, file_id: str) -> bool:
        return self.db.connection().execute("DELETE FROM files WHERE ws = ? AND id = ?", (ws, file_id)).rowcount == 1


__all__ = ["STORE_MIGRATIONS", "SqliteStore"]
