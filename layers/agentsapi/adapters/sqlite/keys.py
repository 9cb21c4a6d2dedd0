"""SQLite adapter of the KeyStore port, as ``DynamoDBKeyStore`` behaves.

Keys are global rows (the record names its workspace), found by hash (the primary key), listed
oldest first by ``<created>#<key_id>`` (DynamoDB's GSI1SK, so the order is the same), revoked by
id through an index rather than a walk over every key.
"""

from __future__ import annotations

import sqlite3

from ...errors import Conflict
from ...models.api_keys import ApiKeyRecord
from .db import Database

KEY_EXISTS = "an API key with this hash already exists"


class SqliteKeyStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def get_key(self, key_hash: str) -> ApiKeyRecord | None:
        rows = self.db.connection().execute("SELECT data FROM api_keys WHERE key_hash = ?", (key_hash,)).fetchall()
        return ApiKeyRecord.model_validate_json(rows[0][0]) if rows else None

    def put_key(self, key_hash: str, record: ApiKeyRecord) -> None:
        try:
            self.db.connection().execute("INSERT INTO api_keys (key_hash, key_id, sort_key, data) VALUES (?, ?, ?, ?)",
                                         (key_hash, record.key_id, f"{record.created_at:012d}#{record.key_id}",
                                          record.model_dump_json()))
        except sqlite3.IntegrityError as exc:
            raise Conflict(KEY_EXISTS) from exc

    def list_keys(self) -> list[ApiKeyRecord]:
        rows = self.db.connection().execute("SELECT data FROM api_keys ORDER BY sort_key").fetchall()
        return [ApiKeyRecord.model_validate_json(row[0]) for row in rows]

    def revoke_key(self, key_id: str, now: int) -> ApiKeyRecord | None:
        with self.db.write() as c:
            # The first in listing order, as DynamoDBKeyStore walks the GSI.
            rows = c.execute("SELECT key_hash, data FROM api_keys WHERE key_id = ? ORDER BY sort_key LIMIT 1",
                             (key_id,)).fetchall()
            if not rows:
                return None
            row = rows[0]
            record = ApiKeyRecord.model_validate_json(row[1])
            if record.revoked_at is None:  # revoking twice keeps the first time
                record = record.model_copy(update={"revoked_at": now})
            c.execute("UPDATE api_keys SET data = ? WHERE key_hash = ?", (record.model_dump_json(), row[0]))
        return record
