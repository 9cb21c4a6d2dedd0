"""Schema version 1: the tables of the Store, KeyStore and rate-limit adapters (batch tables are version 2+).

One table per access path of the DynamoDB single-table design, keyed by workspace first so that
every statement names its workspace and no query can cross into another one. Each row keeps its
model as JSON in ``data`` (the same dump the DynamoDB adapter writes, re-validated on read) plus
the few columns that conditions and ordering need:

- ``latest`` / ``count`` are the DynamoDB condition attributes (agent head, conversation head);
- ``sort_key`` is DynamoDB's GSI1SK string (``<created>#<id>``), so listings order exactly as the
  GSI does (SQLite's BINARY collation and DynamoDB both compare the UTF-8 bytes).

Data-bearing tables are ordinary rowid tables (rows can be hundreds of KB; WITHOUT ROWID suits
small rows only); the small counter and key tables are WITHOUT ROWID. Every listing has an index
that serves its ``WHERE ws = ? ORDER BY sort_key`` without a sort step.
"""

from __future__ import annotations

from .db import Migration

_TABLES = [
    """CREATE TABLE agents (
        ws TEXT NOT NULL, id TEXT NOT NULL, latest INTEGER NOT NULL, sort_key TEXT NOT NULL, data TEXT NOT NULL,
        PRIMARY KEY (ws, id))""",
    "CREATE INDEX agents_listing ON agents (ws, sort_key)",
    """CREATE TABLE agent_versions (
        ws TEXT NOT NULL, agent_id TEXT NOT NULL, version INTEGER NOT NULL, data TEXT NOT NULL,
        PRIMARY KEY (ws, agent_id, version))""",
    """CREATE TABLE agent_aliases (
        ws TEXT NOT NULL, agent_id TEXT NOT NULL, name TEXT NOT NULL, data TEXT NOT NULL,
        PRIMARY KEY (ws, agent_id, name))""",
    """CREATE TABLE conversations (
        ws TEXT NOT NULL, id TEXT NOT NULL, count INTEGER NOT NULL, sort_key TEXT NOT NULL, data TEXT NOT NULL,
        PRIMARY KEY (ws, id))""",
    "CREATE INDEX conversations_listing ON conversations (ws, sort_key)",
    """CREATE TABLE entries (
        ws TEXT NOT NULL, conversation_id TEXT NOT NULL, seq INTEGER NOT NULL, entry_id TEXT NOT NULL,
        data TEXT NOT NULL,
        PRIMARY KEY (ws, conversation_id, seq))""",
    """CREATE TABLE files (
        ws TEXT NOT NULL, id TEXT NOT NULL, sort_key TEXT NOT NULL, data TEXT NOT NULL,
        PRIMARY KEY (ws, id))""",
    "CREATE INDEX files_listing ON files (ws, sort_key)",
    # API keys are global (a key names its workspace), looked up by hash, listed oldest first,
    # revoked by id.
    """CREATE TABLE api_keys (
        key_hash TEXT NOT NULL PRIMARY KEY, key_id TEXT NOT NULL, sort_key TEXT NOT NULL, data TEXT NOT NULL
    ) WITHOUT ROWID""",
    "CREATE INDEX api_keys_listing ON api_keys (sort_key)",
    "CREATE INDEX api_keys_by_id ON api_keys (key_id, sort_key)",
    # One row per workspace and minute; the expiry index lets old windows go in a range delete.
    """CREATE TABLE rate_windows (
        ws TEXT NOT NULL, window_start INTEGER NOT NULL, n INTEGER NOT NULL, expires_at INTEGER NOT NULL,
        PRIMARY KEY (ws, window_start)
    ) WITHOUT ROWID""",
    "CREATE INDEX rate_windows_expiry ON rate_windows (expires_at)",
]

STORE_MIGRATIONS: list[Migration] = [Migration(1, "agents, conversations, entries, files, api keys, rate windows", _TABLES)]
